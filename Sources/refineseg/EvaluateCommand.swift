import ArgumentParser
import Foundation
import RefineSeg

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate", abstract: "Evaluate a model on a labelled split; writes DIR/metrics.json and DIR/per_image.csv.")

    @Option(help: "Model checkpoint (model.safetensors).") var model: String?
    @Option(help: "Dataset folder (with --format, a public dataset as downloaded).") var data: String?
    @Option(help: "Split to evaluate.") var split: EvaluationSplit = .test
    @Option(help: "Output folder.") var out: String
    @Option(help: "Working size of busi and isic2018 images (default: the --size of the model's run, from RUN/config.json beside it, else 128).") var size: Int?
    @OptionGroup var shardOptions: PartFolderOptions
    @OptionGroup var inference: InferenceOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if !shardOptions.merge && (model == nil || data == nil) { throw ValidationError("--model and --data are required (or --merge --out DIR)") }
    }

    func run() throws {
        try runReportingErrors {
            if shardOptions.merge {
                let metrics = try mergeEvaluationParts(out: out)
                print(metricsTable([(split.rawValue, metrics.summary())]), terminator: "")
                print("merged \(metrics.rows.count) image(s) into \(out)/metrics.json and \(out)/per_image.csv")
                return
            }
            guard let model, let data else { return }
            let shard = try shardOptions.shard()
            let backend = try deviceOptions.open()
            let comm = Distributed.current
            let root = comm?.isRoot ?? true
            let net = try loadModel(model, backend: backend)
            // A made split and the working size come from the model's run folder when it has them,
            // so evaluate scores the images that run held out, at the size it trained at.
            let runDir = URL(fileURLWithPath: model).deletingLastPathComponent().path
            let runSize = (try? readRunRecord(runDir))?.config.size
            let runSplit = runDir + "/split.json"
            let splitFile = dataOptions.splitFile ?? (FileManager.default.fileExists(atPath: runSplit) ? runSplit : out + "/split.json")
            let part = split.part
            // Rank 0 first: a split made here is written once, then read by the other ranks.
            func load() throws -> [Sample] {
                try loadSplits(path: data, spec: dataOptions.spec(size: size ?? runSize ?? 128), parts: [part],
                               splitFile: splitFile).samples(part)
            }
            var samples = root ? try load() : []
            try comm?.barrier()
            if !root { samples = try load() }
            guard !samples.isEmpty else { throw RefineSegError.io(file: data, message: "the \(split.rawValue) split is empty") }
            let empty = masksWithoutLesion(samples)
            if root && !empty.isEmpty { print("\(empty.count) mask(s) without lesion pixels (allowed): \(listPreview(empty))") }
            let post = try inference.postProcessing(checkpoint: model)
            if root && !post.isNone { print("post-processing (chosen on validation): \(post)") }
            // Per-case (3-D) metrics need every slice of a case in one process.
            var cases = CaseAssembler()
            let metrics: MetricAccumulator
            if comm == nil && shard.count == 1 {
                metrics = try evaluate(model: net, backend: backend, samples: samples, progress: ProgressPrinter(),
                                       tta: inference.tta, postProcessing: post, cases: &cases)
            } else {
                guard let m = try evaluate(model: net, backend: backend, samples: samples, progress: root ? ProgressPrinter() : nil,
                                           shard: shard, comm: comm, tta: inference.tta, postProcessing: post) else { return }
                metrics = m
                if root && samples.contains(where: { $0.volume != nil }) { print("note: per-case (3-D) metrics are computed in a single process only; these are per slice") }
            }
            if comm == nil && shard.count > 1 {
                try writeEvaluationPart(metrics, to: out, shard: shard)
                print("wrote part \(shard.index) of \(shard.count) (\(metrics.rows.count) image(s)) to \(out)/\(shard.folderName); `refineseg evaluate --merge --out \(out)` when all parts are done")
                return
            }
            try writeEvaluation(metrics, to: out)
            if !cases.isEmpty { print("per slice (2-D):") }
            print(metricsTable([(split.rawValue, metrics.summary())]), terminator: "")
            if !cases.isEmpty {
                let rows = cases.cases()
                try writeCaseEvaluation(rows, to: out)
                print(caseMetricsTable(rows), terminator: "")
                print("wrote \(out)/metrics.json, \(out)/per_image.csv (per slice), \(out)/per_case.json and \(out)/per_case.csv")
            } else {
                print("wrote \(out)/metrics.json and \(out)/per_image.csv" + (comm.map { " (\($0.size) ranks)" } ?? ""))
            }
        }
    }
}
