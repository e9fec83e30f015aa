import ArgumentParser
import Foundation
import RefineSeg

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train DFR-UNet on a dataset folder; writes RUN/model.safetensors (best validation Dice), last.safetensors, log.csv, config.json.")

    @Option(help: "Dataset folder (train/images, train/masks, test/…, optional val/…).") var data: String?
    @Option(help: "Run folder to write.") var out: String?
    @Option(help: "Fraction of the labelled training images whose masks are used, in (0, 1].") var labelFraction: Double = 1.0
    @Option(help: "Optimiser steps per epoch, each a batch drawn with replacement from the labelled images (default: one pass over all training images, labelled or not, so every label fraction trains as many steps).") var stepsPerEpoch: Int?
    @Option(name: .customLong("repeat"), help: "Earlier versions' epoch length: ⌈R × labelled / batch⌉ steps per epoch (use --steps-per-epoch).") var repeats: Int?
    @Option(name: .customLong("init"), help: "Checkpoint to start from: an encoder from `refineseg pretrain`, or a trained RUN/model.safetensors (all of it: fine-tuning, e.g. after `refineseg ingest`).") var initEncoder: String?
    @Option(help: "Epochs.") var epochs: Int = 40
    @Option(help: "Batch size (under mpirun/srun: the global batch, split over the ranks).") var batch: Int = 8
    @Option(help: "Training crop size (a multiple of 16); busi and isic2018 images are resized to size×size.") var size: Int = 128
    @Option(help: "Base width w of the network.") var width: Int = 16
    @Option(help: "Peak learning rate (AdamW, warm-up then cosine decay).") var lr: Double = 2e-3
    @Option(help: "Weight β of the lesion-aware contrastive loss (0 turns it off).") var lacWeight: Double = 0.1
    @Option(help: "Random seed (weights, split, order, augmentation).") var seed: UInt64 = 0
    @Option(help: "Training augmentation: nnunet (nnU-Net's rotation, scaling, mirroring, noise, blur, brightness, contrast, low resolution, gamma; 1/3 of crops centred on a lesion) or basic (crop, flips, 90° turns).") var augment: String = "nnunet"
    @Option(help: "Share of training crops centred on a lesion pixel (nnunet augmentation).") var foregroundOversample: Double?
    @Option(help: "Continue the run in this folder from its last.safetensors.") var resume: String?
    @Flag(help: "Under mpirun/srun: batch-norm statistics over the global batch (all ranks), not per rank.") var syncBn = false
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if resume == nil && (data == nil || out == nil) { throw ValidationError("--data and --out are required (or --resume RUN)") }
    }

    func run() throws {
        try runReportingErrors {
            installInterruptHandler()
            let trainer: Trainer
            if let resume {
                let record = try readRunRecord(resume)
                var config = record.config
                config.out = resume
                if epochs != 40 { config.epochs = epochs }
                try config.validate()
                let backend = try deviceOptions.open()
                trainer = try rankZeroFirst { try Trainer(config: config, backend: backend, resume: true) }
                if let comm = Distributed.current { try trainer.enableDataParallel(comm, syncBatchNorm: syncBn) }
                if Distributed.current?.isRoot ?? true { FileHandle.standardError.write("resuming \(resume) after epoch \(trainer.epoch) on \(backend.name)\(ranksNote)\n".data(using: .utf8)!) }
            } else if let data, let out {
                var config = TrainConfig(data: data, out: out)
                config.labelFraction = labelFraction; config.repeats = repeats; config.stepsPerEpoch = stepsPerEpoch; config.initEncoder = initEncoder; config.epochs = epochs
                config.batch = batch; config.size = size; config.width = width; config.lr = lr
                config.lacWeight = lacWeight; config.seed = seed; config.device = deviceOptions.index
                config.augment = augment == "nnunet" ? nil : augment; config.foregroundOversample = foregroundOversample
                config.format = dataOptions.formatName; config.modalities = dataOptions.modalityList
                config.splitSeed = dataOptions.splitSeed; config.splitFile = dataOptions.splitFile
                try config.validate()
                let backend = try deviceOptions.open()
                trainer = try rankZeroFirst { try Trainer(config: config, backend: backend) }
                let root = Distributed.current?.isRoot ?? true
                if let initEncoder {
                    let report = try trainer.loadEncoder(from: initEncoder)
                    if root {
                        if let note = Checkpoint.freshHeadNote(report, path: initEncoder) {
                            print("loaded \(report.loaded.count) tensors from \(initEncoder); " + note)
                        } else {
                            print("loaded \(report.loaded.count) \(report.fresh.isEmpty ? "" : "encoder ")tensors from \(initEncoder); \(report.fresh.count) initialised fresh\(report.fresh.isEmpty ? "" : " (decoder, head, lac)")")
                        }
                    }
                }
                if let comm = Distributed.current { try trainer.enableDataParallel(comm, syncBatchNorm: syncBn) }
                if root {
                print("training on \(backend.name)\(ranksNote): \(trainer.split.labelled.count) labelled, \(trainer.split.validation.count) validation, \(trainer.split.unlabelled.count) unlabelled image(s); \(trainer.stepsPerEpoch) step(s) of \(config.batch) per epoch")
                let empty = masksWithoutLesion(trainer.split.labelled + trainer.split.validation)
                if !empty.isEmpty { print("\(empty.count) mask(s) without lesion pixels (allowed): \(listPreview(empty))") }
                }
            } else { return }
            try trainer.run()
            if interruptRequested != 0 { throw ExitCode(130) }   // stopped by Ctrl-C after writing last.safetensors
            guard Distributed.current?.isRoot ?? true else { return }
            print(String(format: "best validation Dice %.4f; model: %@/model.safetensors", trainer.bestDice, trainer.config.out))
        }
    }
}

/// " (rank 0 of N, global batch B)" under MPI, else "".
var ranksNote: String { Distributed.current.map { " (rank \($0.rank) of \($0.size) ranks, data-parallel)" } ?? "" }

/// Runs `body` on rank 0 first, then on the other ranks (so files it makes, such as a split,
/// are written once); in a single process just runs it.
func rankZeroFirst<T>(_ body: () throws -> T) throws -> T {
    guard let comm = Distributed.current else { return try body() }
    if comm.isRoot { let r = try body(); try comm.barrier(); return r }
    try comm.barrier()
    return try body()
}

func readRunRecord(_ run: String) throws -> RunRecord {
    let path = run + "/config.json"
    guard let data = FileManager.default.contents(atPath: path) else {
        throw RefineSegError.io(file: path, message: "not found: is \(run) a training run folder?")
    }
    do { return try JSONDecoder().decode(RunRecord.self, from: data) } catch {
        throw RefineSegError.io(file: path, message: "not a RefineSeg run record (\(error.localizedDescription))")
    }
}

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate", abstract: "Evaluate a model on a labelled split; writes DIR/metrics.json and DIR/per_image.csv.")

    @Option(help: "Model checkpoint (model.safetensors).") var model: String?
    @Option(help: "Dataset folder (with --format, a public dataset as downloaded).") var data: String?
    @Option(help: "Split to evaluate: test, val or train.") var split: String = "test"
    @Option(help: "Output folder.") var out: String
    @Option(help: "Working size of busi and isic2018 images (default: the --size of the model's run, from RUN/config.json beside it, else 128).") var size: Int?
    @OptionGroup var shardOptions: ShardOptions
    @Flag(inversion: .prefixedNo, help: "Mirror test-time augmentation (mean of 4 mirrored predictions).") var tta = true
    @Option(help: "Post-processing: auto (what training chose on validation, from the checkpoint's metadata) or none.") var postprocess: String = "auto"
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard let part = DatasetPart(rawValue: split), part != .unlabeled else { throw ValidationError("--split must be test, val or train (got \(split))") }
        if !shardOptions.merge && (model == nil || data == nil) { throw ValidationError("--model and --data are required (or --merge --out DIR)") }
        guard ["auto", "none"].contains(postprocess) else { throw ValidationError("--postprocess must be auto or none (got \(postprocess))") }
    }

    func run() throws {
        try runReportingErrors {
            if shardOptions.merge {
                let metrics = try mergeEvaluationParts(out: out)
                print(metricsTable([(split, metrics.summary())]), terminator: "")
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
            let part = DatasetPart(rawValue: split) ?? .test
            // Rank 0 first: a split made here is written once, then read by the other ranks.
            func load() throws -> [Sample] {
                try loadSplits(path: data, spec: try dataOptions.spec(size: size ?? runSize ?? 128), parts: [part],
                               splitFile: splitFile).samples(part)
            }
            var samples = root ? try load() : []
            try comm?.barrier()
            if !root { samples = try load() }
            guard !samples.isEmpty else { throw RefineSegError.io(file: data, message: "the \(split) split is empty") }
            let empty = masksWithoutLesion(samples)
            if root && !empty.isEmpty { print("\(empty.count) mask(s) without lesion pixels (allowed): \(listPreview(empty))") }
            let post = postprocess == "auto" ? try PostProcessing.of(checkpoint: model) : .none
            if root && !post.isNone { print("post-processing (chosen on validation): \(post)") }
            // Per-case (3-D) metrics need every slice of a case in one process.
            var cases = CaseAssembler()
            let metrics: MetricAccumulator
            if comm == nil && shard.count == 1 {
                metrics = try evaluate(model: net, backend: backend, samples: samples, progress: ProgressPrinter(),
                                       tta: tta, postProcessing: post, cases: &cases)
            } else {
                guard let m = try evaluate(model: net, backend: backend, samples: samples, progress: root ? ProgressPrinter() : nil,
                                           shard: shard, comm: comm, tta: tta, postProcessing: post) else { return }
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
            print(metricsTable([(split, metrics.summary())]), terminator: "")
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

struct AnnotateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annotate",
        abstract: "Predict masks for a folder of images: OUT/masks, OUT/probabilities, OUT/overlays, OUT/review.csv (most uncertain first) and OUT/review.html (the review page).")

    @Option(help: "Model checkpoint (model.safetensors).") var model: String?
    @Option(help: "Folder of images (.png, .jpg) and/or NIfTI volumes (.nii, .nii.gz), or one such file.") var images: String?
    @Option(help: "Output folder.") var out: String
    @Option(help: "Axis NIfTI volumes are cut along into slices: axial, coronal or sagittal.") var axis: String = "axial"
    @Option(help: "Modalities of volumes stored one file per modality (CASE_flair.nii.gz …), in channel order (default: the model's run's --modalities, else flair,t1,t1ce,t2 for a 4-channel model).") var modalities: String?
    @Flag(name: .customLong("continue"), help: "Skip images whose outputs are complete (from an earlier or killed run) and add the new outputs to OUT.") var resume = false
    @OptionGroup var shardOptions: ShardOptions
    @Flag(inversion: .prefixedNo, help: "Mirror test-time augmentation (mean of 4 mirrored predictions).") var tta = true
    @Option(help: "Post-processing: auto (what training chose on validation, from the checkpoint's metadata) or none.") var postprocess: String = "auto"
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if !shardOptions.merge && (model == nil || images == nil) { throw ValidationError("--model and --images are required (or --merge --out DIR)") }
        guard ["auto", "none"].contains(postprocess) else { throw ValidationError("--postprocess must be auto or none (got \(postprocess))") }
    }

    func run() throws {
        try runReportingErrors {
            if shardOptions.merge {
                let rows = try mergeAnnotationParts(out: out)
                print("merged \(rows.count) annotated image(s) into \(out); ranking in \(out)/review.csv")
                return
            }
            guard let model, let images else { return }
            let shard = try shardOptions.shard()
            let backend = try deviceOptions.open()
            let comm = Distributed.current
            let net = try loadModel(model, backend: backend)
            let post = postprocess == "auto" ? try PostProcessing.of(checkpoint: model) : .none
            var options = AnnotateOptions()
            guard let sliceAxis = SliceAxis(rawValue: axis.lowercased()) else {
                throw RefineSegError.invalidArgument("--axis must be axial, coronal or sagittal (got \(axis))")
            }
            options.axis = sliceAxis
            options.resume = resume
            let runModalities = (try? readRunRecord(URL(fileURLWithPath: model).deletingLastPathComponent().path))?.config.modalities
            options.modalities = modalities.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } } ?? runModalities
            let rows = try annotate(model: net, backend: backend, imagesDir: images, out: out,
                                    progress: (comm?.isRoot ?? true) ? ProgressPrinter() : nil, shard: shard, comm: comm,
                                    tta: tta, postProcessing: post, options: options)
            if let comm, !comm.isRoot { return }
            if comm == nil && shard.count > 1 {
                print("annotated part \(shard.index) of \(shard.count) (\(rows.count) image(s)) into \(out)/\(shard.folderName); `refineseg annotate --merge --out \(out)` when all parts are done")
                return
            }
            print("annotated \(rows.count) image(s); review first: \(rows.prefix(3).map(\.name).joined(separator: ", "))")
            print("overlays in \(out)/overlays, ranking in \(out)/review.csv; review page: \(out)/review.html")
        }
    }
}

/// Splitting a command's images across the tasks of a job array (without MPI).
struct ShardOptions: ParsableArguments {
    @Option(help: "Split the images into this many parts (for a job array without MPI); this task does --part-id. Under mpirun/srun the ranks split them by themselves.")
    var numParts: Int = 1
    @Option(help: "Which part this task does, 0 ..< --num-parts; writes OUT/part-K-of-N/.") var partId: Int = 0
    @Flag(help: "Merge the finished OUT/part-K-of-N/ folders into OUT as one run would have written it.") var merge = false

    func shard() throws -> Shard {
        let s = Shard(count: numParts, index: partId)
        try s.validate()
        if numParts > 1, let comm = try Distributed.start() {
            throw RefineSegError.invalidArgument("--num-parts is for job arrays without MPI; under \(comm.launcher.name) the \(comm.size) ranks split the images by themselves")
        }
        return s
    }
}
