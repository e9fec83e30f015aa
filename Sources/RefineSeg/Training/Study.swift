import Foundation

/// The label-fraction study: for each fraction and seed, (a) from scratch without the
/// lesion-aware loss, (b) from scratch with it, (c) from the Barlow Twins encoder without it,
/// (d) from the Barlow Twins encoder with it, (e) from scratch with the semi-supervised mean
/// teacher (`MeanTeacher`).
public struct StudySettings: Codable, Equatable, Sendable {
    public var data: String
    public var out: String
    public var fractions: [Double] = [0.05, 0.1, 0.2, 0.5, 1.0]
    public var seeds: Int = 3
    public var epochs: Int = 20
    public var pretrainEpochs: Int = 20
    public var batch: Int = 8
    public var size: Int = 128
    public var width: Int = 16
    public var lr: Double = 2e-3
    public var projector: Int = 256
    public var device: Int?
    /// Dataset layout (nil: "folder"), BraTS modalities and made-split seed; the split is OUT/split.json.
    public var format: String?
    public var modalities: [String]?
    public var splitSeed: UInt64?
    /// Steps per epoch of every run (nil: `TrainConfig`'s default, one pass's worth over all
    /// training images but at least its floor, so every fraction trains as many steps as the 100 % run).
    public var stepsPerEpoch: Int?
    /// Probability of the percentile re-normalisation in every run (nil: `TrainConfig`'s default).
    public var percentileAugment: Double?
    /// Share of the last steps whose weights every run's model averages (nil: `TrainConfig`'s default).
    public var averageLast: Double?
    /// How every run picks its labelled images (new settings start at `LabelSelection.default`,
    /// `.stratified`). nil is a study.json written before the option existed, whose runs used the
    /// seeded shuffle (`.random`).
    public var labelSelection: LabelSelection? = .default
    /// The variants to run (nil: all of `StudyVariant`, in that order).
    public var variants: [String]?
    public var activeVariants: [StudyVariant] {
        guard let variants else { return StudyVariant.allCases }
        return StudyVariant.allCases.filter { variants.contains($0.rawValue) }
    }
    /// How batches are drawn: "with-replacement" (nnU-Net's sampler, epochs of a fixed number of
    /// steps). Study folders of earlier versions (nil, one pass per epoch, `equalSteps`) are
    /// refused rather than mixed with new runs.
    public var sampler: String? = "with-replacement"
    /// Earlier versions' `--equal-steps` (now what every study does); only read from old study.json files.
    public var equalSteps: Bool?

    public init(data: String, out: String) { self.data = data; self.out = out }

    /// How to read `data`.
    public func datasetSpec() throws -> DatasetSpec {
        DatasetSpec(format: try DatasetFormat(parsing: format ?? "folder"), modalities: modalities, size: size, splitSeed: splitSeed ?? 0)
    }
}

/// One finished run of the study.
public struct StudyResult: Codable {
    public var variant: String
    public var fraction: Double
    public var seed: Int
    public var metrics: MetricSummary
}

public enum StudyVariant: String, CaseIterable, Codable, Sendable {
    case scratch = "scratch"
    case scratchLAC = "scratch+lac"
    /// The Barlow Twins encoder fine-tuned with `train`'s default loss (no lesion-aware term).
    case barlowTwins = "bt"
    case barlowTwinsLAC = "bt+lac"
    /// Scratch (no lesion-aware loss) plus the semi-supervised mean teacher (`MeanTeacher`).
    case semi = "semi"

    var usesLAC: Bool { self == .scratchLAC || self == .barlowTwinsLAC }
    var usesSemiSupervision: Bool { self == .semi }
    var usesPretraining: Bool { self == .barlowTwins || self == .barlowTwinsLAC }
}

public final class Study {
    public let settings: StudySettings
    public let backend: Backend
    public var progress = ProgressPrinter()

    public init(settings: StudySettings, backend: Backend) throws {
        guard !settings.fractions.isEmpty, settings.fractions.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
            throw RefineSegError.invalidArgument("--fractions must be values in (0, 1], e.g. 0.1,0.2,0.5,1.0 (got \(settings.fractions))")
        }
        if let v = settings.variants {
            let known = StudyVariant.allCases.map(\.rawValue)
            guard !v.isEmpty, v.allSatisfy(known.contains) else {
                throw RefineSegError.invalidArgument("--variants must be a comma-separated subset of \(known.joined(separator: ",")) (got \(v.joined(separator: ",")))")
            }
        }
        guard settings.seeds >= 1 else { throw RefineSegError.invalidArgument("--seeds must be at least 1 (got \(settings.seeds))") }
        // Every run's settings are checked before the study folder is created.
        var train = TrainConfig(data: settings.data, out: settings.out)
        train.epochs = settings.epochs; train.batch = settings.batch; train.size = settings.size
        train.width = settings.width; train.lr = settings.lr; train.stepsPerEpoch = settings.stepsPerEpoch
        train.percentileAugment = settings.percentileAugment
        try train.validate()
        var pre = PretrainConfig(data: settings.data, out: settings.out)
        pre.epochs = settings.pretrainEpochs; pre.batch = settings.batch; pre.size = settings.size
        pre.width = settings.width; pre.projector = settings.projector
        try pre.validate()
        self.settings = settings
        self.backend = backend
    }

    func runDir(_ v: StudyVariant, _ f: Double, _ seed: Int) -> String {
        "\(settings.out)/runs/\(v.rawValue)-f\(String(format: "%.3f", f))-s\(seed)"
    }

    /// Runs (or reuses) every run, then writes results.csv, summary.md and dice_vs_labels.svg.
    @discardableResult
    public func run() throws -> [StudyResult] { try run(shard: .whole, comm: nil) }

    /// `run` split across processes. With `comm` (an MPI job) the pre-trainings, then the
    /// training runs, are dealt to the ranks in turn; rank 0 then writes the reports from every
    /// run's eval/metrics.json, as one process would (the others return their own results).
    /// With `shard` alone (a job array) part K does every seed s with s mod N = K, pre-training
    /// and runs, and writes no reports: the same command without --num-parts, once every part
    /// is done, reuses all the runs and writes them.
    @discardableResult
    public func run(shard: Shard, comm: Communicator?) throws -> [StudyResult] {
        try shard.validate()
        let isRoot = comm?.isRoot ?? true
        if !isRoot { try comm?.barrier() }   // rank 0 reads the data and makes the split and study.json first
        let fm = FileManager.default
        // The dataset is read (and checked) before the study folder is created.
        let spec = try settings.datasetSpec()
        let splits = try loadSplits(path: settings.data, spec: spec, splitFile: settings.out + "/split.json")
        let test = splits.test
        // Pre-training sees every non-test image, without masks (as `Pretrainer.pretrainingImages`).
        let pretrainingImages = (splits.train + (splits.validation ?? []) + splits.unlabeled).map { s -> Sample in
            var s = s; s.mask = nil; s.original = nil; return s
        }
        try fm.createDirectory(atPath: settings.out + "/runs", withIntermediateDirectories: true)
        // A study folder belongs to one set of settings: refuse to mix results.
        let settingsPath = settings.out + "/study.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = fm.contents(atPath: settingsPath), let old = try? JSONDecoder().decode(StudySettings.self, from: data) {
            var a = old, b = settings
            a.device = nil; b.device = nil
            a.labelSelection = a.labelSelection ?? .random; b.labelSelection = b.labelSelection ?? .random
            guard a == b else {
                throw RefineSegError.invalidArgument("\(settingsPath) holds a study with other settings; use another --out or the same settings to resume")
            }
        } else if isRoot {
            try writeAtomically(try encoder.encode(settings), to: settingsPath)
        }
        if isRoot { try comm?.barrier() }
        let part = comm.map { Shard(count: $0.size, index: $0.rank) } ?? shard
        func mine(_ i: Int) -> Bool { i % part.count == part.index }
        func encoderPath(_ seed: Int) -> String { "\(settings.out)/runs/pretrain-s\(seed)/encoder.safetensors" }
        // One Barlow Twins encoder per seed, shared by every fraction.
        func pretrain(_ seed: Int) throws {
            guard settings.activeVariants.contains(where: \.usesPretraining) else { return }
            let dir = "\(settings.out)/runs/pretrain-s\(seed)"
            // A pre-training that finished is reused. One that stopped part-way (its
            // last.safetensors holds fewer epochs than asked) continues from there, as
            // `pretrain --resume` does, rather than handing a partial encoder on; a folder of an
            // earlier version (an encoder without last.safetensors) counts as finished.
            if fm.fileExists(atPath: encoderPath(seed)) && !fm.fileExists(atPath: dir + "/last.safetensors") { return }
            var pc = PretrainConfig(data: settings.data, out: dir)
            pc.epochs = settings.pretrainEpochs; pc.batch = settings.batch; pc.size = settings.size
            pc.width = settings.width; pc.projector = settings.projector; pc.seed = UInt64(seed); pc.device = settings.device
            pc.format = settings.format; pc.modalities = settings.modalities; pc.splitSeed = settings.splitSeed
            pc.splitFile = settings.out + "/split.json"
            let pre = try Pretrainer(config: pc, backend: backend, images: pretrainingImages, resume: true)
            guard pre.epoch < pc.epochs else { return }
            progress.line("study: pre-training the Barlow Twins encoder for seed \(seed)" + (pre.epoch > 0 ? " (continuing after epoch \(pre.epoch))" : ""))
            pre.progress = progress
            try pre.run()
            if interruptRequested != 0 { throw RefineSegError.invalidArgument("interrupted; run the same command again to resume") }
        }
        func finished(_ variant: StudyVariant, _ fraction: Double, _ seed: Int) -> StudyResult? {
            let metricsPath = runDir(variant, fraction, seed) + "/eval/metrics.json"
            guard let data = fm.contents(atPath: metricsPath), let m = try? JSONDecoder().decode(MetricSummary.self, from: data) else { return nil }
            return StudyResult(variant: variant.rawValue, fraction: fraction, seed: seed, metrics: m)
        }
        // MPI: every encoder first (dealt to the ranks), so that any rank can run any bt or bt+lac run.
        if let comm {
            for seed in 0..<settings.seeds where mine(seed) { try pretrain(seed) }
            try comm.barrier()
        }
        var results = [StudyResult]()
        var index = 0
        for seed in 0..<settings.seeds {
            if comm == nil {
                guard mine(seed) else { continue }
                try pretrain(seed)
            }
            let encoderPath = encoderPath(seed)
            for fraction in settings.fractions {
                for variant in settings.activeVariants {
                    index += 1
                    if comm != nil && !mine(index - 1) { continue }
                    let dir = runDir(variant, fraction, seed)
                    if let done = finished(variant, fraction, seed) {
                        results.append(done)
                        continue
                    }
                    try? fm.removeItem(atPath: dir)        // an unfinished run starts over
                    var config = TrainConfig(data: settings.data, out: dir)
                    config.labelFraction = fraction; config.epochs = settings.epochs; config.stepsPerEpoch = settings.stepsPerEpoch; config.size = settings.size
                    config.width = settings.width; config.lr = settings.lr; config.seed = UInt64(seed)
                    config.lacWeight = variant.usesLAC ? 0.1 : 0; config.device = settings.device
                    config.initEncoder = variant.usesPretraining ? encoderPath : nil
                    config.semiSupervised = variant.usesSemiSupervision ? MeanTeacher.Settings() : nil
                    config.percentileAugment = settings.percentileAugment
                    if let a = settings.averageLast { config.averageLast = a }
                    config.format = spec.format.rawValue; config.modalities = settings.modalities
                    config.splitSeed = settings.splitSeed; config.splitFile = settings.out + "/split.json"
                    let selection = settings.labelSelection ?? .random
                    config.labelSelection = selection
                    let split = try TrainingSplit(train: splits.train, validation: splits.validation, labelFraction: fraction,
                                                  seed: UInt64(seed), source: settings.data, selection: selection)
                    config.batch = settings.batch
                    progress.line("study: \(variant.rawValue) at \(Int(fraction * 100)) % labels, seed \(seed) (\(split.labelled.count) labelled)")
                    let trainer = try Trainer(config: config, backend: backend, split: split)
                    trainer.progress = progress
                    if variant.usesPretraining { try trainer.loadEncoder(from: encoderPath) }
                    try trainer.run()
                    if interruptRequested != 0 { throw RefineSegError.invalidArgument("interrupted; run the same command again to resume") }
                    let model = try loadModel(dir + "/model.safetensors", backend: backend)
                    // Scored as `evaluate` does by default: mirror TTA and the post-processing chosen on validation.
                    let metrics = try evaluate(model: model, backend: backend, samples: test, tta: true,
                                               postProcessing: try PostProcessing.of(checkpoint: dir + "/model.safetensors"))
                    try writeEvaluation(metrics, to: dir + "/eval")
                    results.append(StudyResult(variant: variant.rawValue, fraction: fraction, seed: seed, metrics: metrics.summary()))
                }
            }
        }
        if comm == nil && part.count > 1 { return results }   // a part of a job array: the reports come later
        if let comm {
            try comm.barrier()
            guard comm.isRoot else { return results }
            // Every run is finished now: rank 0 collects them in the order one process runs them.
            results = try (0..<settings.seeds).flatMap { seed in
                try settings.fractions.flatMap { fraction in
                    try settings.activeVariants.map { variant in
                        guard let r = finished(variant, fraction, seed) else {
                            throw RefineSegError.io(file: runDir(variant, fraction, seed), message: "has no eval/metrics.json after every rank finished")
                        }
                        return r
                    }
                }
            }
        }
        try writeReports(results)
        return results
    }

    func writeReports(_ results: [StudyResult]) throws {
        var csv = "variant,fraction,seed,precision,recall,dice,iou,miou,fdr,fpr,fp_components_mean,fp_image_share,hd95\n"
        for r in results {
            let m = r.metrics
            let values: [Double] = [m.precision, m.recall, m.dice, m.iou, m.miou, m.fdr, m.fpr,
                                    m.fpComponentsMean, m.fpImageShare, m.hd95 ?? Double.nan]
            let cells = values.map { String(format: "%.6f", $0) }.joined(separator: ",")
            csv += "\(r.variant),\(r.fraction),\(r.seed),\(cells)\n"
        }
        try writeAtomically(Data(csv.utf8), to: settings.out + "/results.csv")
        try writeAtomically(Data(summaryMarkdown(results).utf8), to: settings.out + "/summary.md")
        try writeAtomically(Data(diceSVG(results).utf8), to: settings.out + "/dice_vs_labels.svg")
    }

    /// Paired comparison of `variant` against scratch at one fraction: the Dice difference of
    /// each seed run both ways (variant − scratch), its mean, and the t-based 95 % interval of the
    /// mean over seeds (nil with fewer than 2 pairs).
    public struct Paired: Equatable {
        public var pairs: Int
        public var meanDifference: Double
        public var interval: ClosedRange<Double>?
        /// Pairs where the variant beat scratch.
        public var wins: Int
    }

    public static func paired(_ results: [StudyResult], variant: String, against base: String = StudyVariant.scratch.rawValue,
                              fraction: Double, metric: (MetricSummary) -> Double = { $0.dice }) -> Paired? {
        var baseBySeed = [Int: Double]()
        for r in results where r.variant == base && r.fraction == fraction { baseBySeed[r.seed] = metric(r.metrics) }
        let diffs = results.filter { $0.variant == variant && $0.fraction == fraction }
            .compactMap { r in baseBySeed[r.seed].map { metric(r.metrics) - $0 } }
        guard !diffs.isEmpty else { return nil }
        let (mean, sd) = meanStd(diffs)
        var interval: ClosedRange<Double>?
        if diffs.count >= 2 {
            let half = studentT975(degreesOfFreedom: diffs.count - 1) * sd / Double(diffs.count).squareRoot()
            interval = (mean - half)...(mean + half)
        }
        return Paired(pairs: diffs.count, meanDifference: mean, interval: interval, wins: diffs.filter { $0 > 0 }.count)
    }

    /// The 97.5 % quantile of Student's t distribution (two-sided 95 % intervals).
    public static func studentT975(degreesOfFreedom df: Int) -> Double {
        let table: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                               2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                               2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
        precondition(df >= 1, "t quantile needs at least 1 degree of freedom")
        if df <= table.count { return table[df - 1] }
        if df <= 40 { return 2.042 + (2.021 - 2.042) * Double(df - 30) / 10 }
        if df <= 60 { return 2.021 + (2.000 - 2.021) * Double(df - 40) / 20 }
        if df <= 120 { return 2.000 + (1.980 - 2.000) * Double(df - 60) / 60 }
        return 1.960
    }

    /// The paired-comparison table of summary.md.
    func pairedMarkdown(_ results: [StudyResult]) -> String {
        let present = Set(results.map(\.variant))
        let variants = StudyVariant.allCases.map(\.rawValue).filter { $0 != StudyVariant.scratch.rawValue && present.contains($0) }
        var text = "\n## Paired comparison with scratch (test Dice, same seed)\n\n"
        text += "Difference variant − scratch per seed (the seed fixes the labelled images and the initialisation), "
        text += "mean and t-based 95 % interval over seeds; wins = seeds where the variant is better.\n\n"
        text += "| labels | variant | pairs | mean difference | 95 % interval | wins |\n|---|---|---|---|---|---|\n"
        for f in settings.fractions {
            for v in variants {
                guard let p = Self.paired(results, variant: v, fraction: f) else { continue }
                let ci = p.interval.map { String(format: "[%+.3f, %+.3f]", $0.lowerBound, $0.upperBound) } ?? "—"
                text += "| \(Int((f * 100).rounded())) % | \(v) | \(p.pairs) | \(String(format: "%+.3f", p.meanDifference)) | \(ci) | \(p.wins)/\(p.pairs) |\n"
            }
        }
        return text
    }

    static func meanStd(_ v: [Double]) -> (Double, Double) {
        let mean = v.reduce(0, +) / Double(max(v.count, 1))
        let variance = v.count > 1 ? v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count - 1) : 0
        return (mean, variance.squareRoot())
    }

    func summaryMarkdown(_ results: [StudyResult]) -> String {
        var text = "# Label-fraction study\n\nData: `\(settings.data)`, \(settings.seeds) seed(s), "
        text += "\(settings.epochs) epochs of " + (settings.stepsPerEpoch.map { "\($0) steps" } ?? "one pass's worth of steps over all training images (at least \(TrainConfig.defaultMinimumStepsPerEpoch))")
            + " (batches drawn with replacement from the labelled images: every fraction trains as many steps), "
        text += "crop \(settings.size), batch \(settings.batch), lr \(settings.lr), "
        text += "Barlow Twins pre-training \(settings.pretrainEpochs) epochs, width \(settings.width). Test split metrics, mean ± std over seeds.\n\n"
        text += "| labels | variant | precision | Dice | mIoU | FDR | FP components |\n|---|---|---|---|---|---|---|\n"
        for f in settings.fractions {
            for v in settings.activeVariants {
                let rs = results.filter { $0.fraction == f && $0.variant == v.rawValue }
                guard !rs.isEmpty else { continue }
                func cell(_ key: (MetricSummary) -> Double) -> String {
                    let (m, s) = Self.meanStd(rs.map { key($0.metrics) })
                    return String(format: "%.3f ± %.3f", m, s)
                }
                text += "| \(Int((f * 100).rounded())) % | \(v.rawValue) | \(cell { $0.precision }) | \(cell { $0.dice }) | \(cell { $0.miou }) | \(cell { $0.fdr }) | \(cell { $0.fpComponentsMean }) |\n"
            }
        }
        return text + pairedMarkdown(results)
    }

    func diceSVG(_ results: [StudyResult]) -> String {
        let w = 560.0, h = 360.0, left = 60.0, right = 150.0, top = 20.0, bottom = 50.0
        let fractions = settings.fractions.sorted()
        let xs: (Double) -> Double = { f in
            let i = Double(fractions.firstIndex(of: f) ?? 0)
            return left + (fractions.count > 1 ? i / Double(fractions.count - 1) : 0.5) * (w - left - right)
        }
        let ys: (Double) -> Double = { d in top + (1 - d) * (h - top - bottom) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(ys(0))\" x2=\"\(w - right)\" y2=\"\(ys(0))\" stroke=\"black\"/><line x1=\"\(left)\" y1=\"\(ys(0))\" x2=\"\(left)\" y2=\"\(ys(1))\" stroke=\"black\"/>\n"
        for t in stride(from: 0.0, through: 1.0, by: 0.2) {
            svg += "<text x=\"\(left - 8)\" y=\"\(ys(t) + 4)\" text-anchor=\"end\">\(String(format: "%.1f", t))</text><line x1=\"\(left)\" y1=\"\(ys(t))\" x2=\"\(w - right)\" y2=\"\(ys(t))\" stroke=\"#ddd\"/>\n"
        }
        for f in fractions { svg += "<text x=\"\(xs(f))\" y=\"\(h - bottom + 18)\" text-anchor=\"middle\">\(Int((f * 100).rounded())) %</text>\n" }
        svg += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 10)\" text-anchor=\"middle\">labelled fraction</text>\n"
        svg += "<text x=\"15\" y=\"\((top + h - bottom) / 2)\" transform=\"rotate(-90 15 \((top + h - bottom) / 2))\" text-anchor=\"middle\">test Dice</text>\n"
        let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
        for (k, v) in settings.activeVariants.enumerated() {
            let colour = palette[k % palette.count]
            var points = [(Double, Double, Double)]()
            for f in fractions {
                let d = results.filter { $0.fraction == f && $0.variant == v.rawValue }.map(\.metrics.dice)
                guard !d.isEmpty else { continue }
                let (m, s) = Self.meanStd(d)
                points.append((f, m, s))
            }
            let path = points.map { "\(xs($0.0)),\(ys($0.1))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            for (f, m, s) in points {
                svg += "<line x1=\"\(xs(f))\" y1=\"\(ys(min(1, m + s)))\" x2=\"\(xs(f))\" y2=\"\(ys(max(0, m - s)))\" stroke=\"\(colour)\"/>"
                svg += "<circle cx=\"\(xs(f))\" cy=\"\(ys(m))\" r=\"3\" fill=\"\(colour)\"/>\n"
            }
            svg += "<line x1=\"\(w - right + 10)\" y1=\"\(top + 20 + Double(k) * 20)\" x2=\"\(w - right + 30)\" y2=\"\(top + 20 + Double(k) * 20)\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(w - right + 35)\" y=\"\(top + 24 + Double(k) * 20)\">\(v.rawValue)</text>\n"
        }
        return svg + "</svg>\n"
    }
}
