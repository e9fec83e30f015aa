import Foundation

/// What RUN/config.json holds: every setting, the device and the code version.
public struct RunRecord: Codable {
    public var config: TrainConfig
    public var device: String
    public var gitCommit: String
    public var started: String
    /// Names of the labelled training images (nil in records written before it was kept).
    public var labelled: [String]?
}

/// Supervised training of DFR-UNet on a dataset folder (docs/MODEL.md's loss, AdamW, warm-up +
/// cosine): the segmentation objective of the shared `TrainingLoop`.
public final class Trainer {
    public private(set) var config: TrainConfig
    public let backend: Backend
    public let model: DFRUNet
    public let optimizer: AdamW
    public let split: TrainingSplit
    public let lossFunction: SegmentationLoss
    /// The epoch loop, schedule, loss reads, log.csv, last.safetensors and `--resume`
    /// (`progress`, `epoch`, `step`, `logRows`, `epochLosses` come from it: `LoopDriven`).
    public let loop: TrainingLoop
    public private(set) var bestDice: Double = -1
    /// Validation Dice of the weights in RUN/model.safetensors (the last epoch's with
    /// `checkpoint` "final", the best epoch's with "best"); -1 before the first epoch.
    public private(set) var modelDice: Double = -1
    /// The semi-supervised part of a step (`--semi-supervised`; nil: supervised only).
    public private(set) var meanTeacher: MeanTeacher?
    /// The average of the last steps' weights that RUN/model.safetensors holds at the end
    /// (`TrainConfig.averageLast`; nil: the final weights themselves, `--average-last 0`).
    public private(set) var weightAverage: WeightAverage?
    /// Data-parallel training over MPI (nil: one process); see `enableDataParallel`.
    public private(set) var dataParallel: DataParallel?
    /// Rank 0 (or the only process) writes the run folder and reports progress.
    var writesRun: Bool { dataParallel?.comm.isRoot ?? true }
    /// The batches of the current epoch.
    private var loader: BatchLoader?

    static let logHeader = "epoch,step,train_loss,val_dice,lr,seconds,images_per_second"

    var runDir: String { config.out }
    var lastPath: String { loop.lastPath }
    var modelPath: String { runDir + "/model.safetensors" }

    /// Sets up a new run (or, with `resume`, continues RUN from last.safetensors; a run killed
    /// before it completed an epoch has none and starts again from epoch 1).
    public init(config: TrainConfig, backend: Backend, split: TrainingSplit? = nil, resume: Bool = false) throws {
        try config.validate()
        self.config = config
        self.backend = backend
        let s = try split ?? TrainingSplit(config: config)
        self.split = s
        guard let channels = s.labelled.first?.channels else {
            throw RefineSegError.io(file: config.data, message: "no labelled training images")
        }
        // Batches are drawn with replacement, so any batch size works with any number of labels;
        // the resolved epoch length is recorded in config.json, so `--resume` keeps it.
        let stepsPerEpoch = config.resolvedStepsPerEpoch(labelled: s.labelled.count, trainingImages: s.trainingImages)
        self.config.stepsPerEpoch = stepsPerEpoch
        if let selection = s.selection { self.config.labelSelection = selection }
        model = try DFRUNet(backend, config: ModelConfig(inChannels: channels, width: config.width), seed: config.seed)
        optimizer = try AdamW(model.trainableParameters(), backend: backend, weightDecay: Float(config.weightDecay))
        lossFunction = SegmentationLoss(beta: Float(config.lacWeight))
        if let semi = config.semiSupervised {
            meanTeacher = try MeanTeacher(student: model, backend: backend, unlabelled: s.unlabelled, settings: semi,
                                          totalSteps: config.epochs * stepsPerEpoch, batchSize: config.batch,
                                          size: config.size, seed: config.seed, augmentation: config.augmentation())
        }
        if config.averagesWeights {
            weightAverage = WeightAverage(model: model, backend: backend, share: config.resolvedAverageLast,
                                          totalSteps: config.epochs * stepsPerEpoch)
        }
        loop = TrainingLoop(settings: .init(runDir: config.out, command: "train", epochs: config.epochs, stepsPerEpoch: stepsPerEpoch,
                                            baseLR: config.lr, warmupEpochs: config.warmupEpochs), backend: backend)
        if resume, let report = try loop.restore(self), let note = Checkpoint.freshHeadNote(report, path: loop.lastPath) {
            progress.line(note)
        }
    }

    /// Loads the starting weights of `--init`: every model tensor of a whole DFR-UNet checkpoint
    /// (one with `head.weight`; a missing `lac` head stays fresh), else the encoder tensors of a
    /// Barlow Twins checkpoint. Returns which were loaded and which stay fresh.
    @discardableResult
    public func loadEncoder(from path: String) throws -> Checkpoint.LoadReport {
        let file = try SafeTensorsFile.read(path)
        let cfg = try Checkpoint.modelConfig(file, path: path)
        guard cfg.width == config.width else {
            throw RefineSegError.io(file: path, message: "encoder has width \(cfg.width) but --width is \(config.width)")
        }
        let whole = file.tensors.contains { $0.name == "head.weight" }
        return try Checkpoint.load(file, path: path, into: model, backend: backend, only: whole ? nil : DFRUNet.encoderPrefixes)
    }

    /// Optimiser steps in one epoch (resolved in `init`).
    public var stepsPerEpoch: Int { config.stepsPerEpoch ?? 1 }

    /// Makes this trainer one rank of a data-parallel job: rank 0's weights (fresh, loaded or
    /// resumed) are copied to every rank; from then on every step all-reduces the gradients.
    public func enableDataParallel(_ comm: Communicator, syncBatchNorm: Bool) throws {
        guard meanTeacher == nil else { throw RefineSegError.invalidArgument("--semi-supervised does not run data-parallel (mpirun/srun); train it in one process") }
        let dp = DataParallel(comm: comm, backend: backend, syncBatchNorm: syncBatchNorm)
        try dp.broadcastParameters(model.namedParameters())
        dataParallel = dp
        if !comm.isRoot { progress.quiet = true }
        loop.noteCheckpointForTermination()
    }

    /// Trains until `config.epochs` epochs are complete (or Ctrl-C), writing RUN/ as it goes.
    public func run() throws {
        if try loop.run(self) && FileManager.default.fileExists(atPath: modelPath) { try choosePostProcessing() }
    }

    /// Chooses the post-processing of RUN/model.safetensors (the final or the best epoch's weights,
    /// `TrainConfig.checkpoint`) on the validation split (predicted
    /// with mirror TTA, as `evaluate` and `annotate` do by default) and records it in the
    /// checkpoint's metadata (`PostProcessing`).
    public func choosePostProcessing() throws {
        var file = try SafeTensorsFile.read(modelPath)
        let saved = try loadModel(modelPath, backend: backend)
        var predictor = Predictor(model: saved, backend: backend)
        predictor.mirrorTTA = true
        var validation = [(probabilities: [Float], label: [Float], width: Int, height: Int)]()
        for s in split.validation {
            guard let mask = s.mask else { continue }
            let (p, h, w) = try scoredProbabilities(s, predictor: predictor)
            validation.append((p, s.original.map { $0.mask.map(Float.init) } ?? mask, w, h))
        }
        guard !validation.isEmpty else { return }
        let candidates = PostProcessing.candidates(trainingMasks: split.labelled.compactMap { s in s.mask.map { ($0, s.width, s.height) } })
        let (choice, dice, baseline) = try PostProcessing.choose(candidates: candidates, validation: validation)
        file.metadata[PostProcessing.metadataKey] = choice.metadataValue
        file.metadata["postprocess_val_dice"] = String(format: "%.6f", dice)
        file.metadata["tta_val_dice"] = String(format: "%.6f", baseline)
        try file.write(to: modelPath)
        progress.line(String(format: "post-processing chosen on validation: %@ (val Dice with mirror TTA %.4f, after post-processing %.4f)",
                             choice.description, baseline, dice))
    }

    /// Forward, backward and update on one batch; returns the loss (one element, on the device).
    func trainStep(_ batch: Batch, lr: Float) throws -> Tensor {
        if let meanTeacher { return try meanTeacher.step(batch, step: step, loss: lossFunction, optimizer: optimizer, lr: lr) }
        return try Self.supervisedStep(batch, model: model, loss: lossFunction, optimizer: optimizer, backend: backend, lr: lr,
                                dataParallel: dataParallel)
    }

    /// One supervised step (upload, forward, loss, backward, AdamW update), shared with
    /// `TrainBench` so that the benchmark times exactly what training runs. Does not wait for the kernels it queues.
    package static func supervisedStep(_ batch: Batch, model: DFRUNet, loss lossFunction: SegmentationLoss, optimizer: AdamW,
                               backend: Backend, lr: Float, dataParallel dp: DataParallel? = nil) throws -> Tensor {
        let n = batch.count, c = batch.channels, s = batch.size
        let x = try backend.tensor(batch.images, shape: [n, c, s, s])
        let y = try backend.tensor(batch.masks, shape: [n, 1, s, s])
        let g = Graph(backend: backend, training: true)
        dp?.attach(to: g)
        let out = try model(g.constant(x), g, withEmbedding: lossFunction.beta > 0)
        var (loss, _) = try lossFunction(out, target: y, g)
        // Data-parallel: this rank's share n/N of the global batch, so the summed gradient is the global one.
        if let dp { loss = try g.scale(loss, by: dp.weight) }
        try g.backward(loss)
        // The hook between backward and the optimiser step: the all-reduced gradients.
        try dp?.finishGradients()
        try optimizer.update(lr: lr)
        return loss.value
    }

    /// Mean per-image Dice of the validation images (whole images, docs/MODEL.md's definition).
    public func validationDice() throws -> Double { try validationDice(of: model) }

    /// Mean per-image Dice of `model` on the validation images.
    func validationDice(of model: DFRUNet) throws -> Double {
        let predictor = Predictor(model: model, backend: backend)
        var metrics = MetricAccumulator()
        for s in split.validation {
            guard let mask = s.mask else { continue }
            try score(s, mask: mask, predictor: predictor, into: &metrics)
        }
        return metrics.summary().dice
    }

    func saveLast() throws { try loop.saveLast(self) }
}

extension Trainer: LoopDriven {}

extension Trainer: TrainingObjective {
    var lossName: String { "training loss" }
    var lossOffset: Double { 0.5 }
    /// Each rank's loss is scaled by its share of the global batch (`DataParallel.weight`).
    var lossIsRankShare: Bool { true }
    var logHeader: String { Self.logHeader }
    var checkpointModule: Module { model }

    func checkpointMetadata(epoch: Int, step: Int) -> [String: String] {
        var m = model.config.metadata
        m["epoch"] = "\(epoch)"; m["step"] = "\(step)"; m["seed"] = "\(config.seed)"
        m["best_dice"] = "\(bestDice)"; m["label_fraction"] = "\(config.labelFraction)"
        m["label_selection"] = (config.labelSelection ?? .random).rawValue
        if let weightAverage { m.merge(weightAverage.checkpointMetadata) { $1 } }
        return m
    }

    var checkpointExtras: [(String, Tensor)] { weightAverage?.checkpointTensors() ?? [] }

    func restored(_ file: SafeTensorsFile, step: Int) throws {
        let metadata = file.metadata
        try weightAverage?.restore(file, step: step)
        bestDice = metadata["best_dice"].flatMap(Double.init) ?? -1
        modelDice = (try? SafeTensorsFile.read(modelPath).metadata["val_dice"].flatMap(Double.init)) ?? bestDice
    }

    func writeRunRecord(resumedAt epoch: Int) throws {
        let path = runDir + "/config.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if epoch == 0 {
            let record = RunRecord(config: config, device: backend.name, gitCommit: gitCommit(),
                                   started: ISO8601DateFormatter().string(from: Date()), labelled: split.labelled.map(\.name))
            try writeAtomically(try encoder.encode(record), to: path)
        } else if var record = try? JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: path))),
                  record.config != config {
            // `--resume RUN --epochs N` changed the run: the record says so, so that the next
            // `--resume` continues with N.
            record.config = config
            try writeAtomically(try encoder.encode(record), to: path)
        }
    }

    func startEpoch(_ epoch: Int) throws {
        loader = BatchLoader(drawingWithReplacement: split.labelled, batches: stepsPerEpoch, batchSize: config.batch,
                             size: config.size, seed: config.seed &+ UInt64(epoch) &* 0x9E37_79B9,
                             augmentation: config.augmentation())
    }

    func step(lr: Float) throws -> (loss: Tensor, images: Int)? {
        guard let batch = loader?.next() else { loader = nil; return nil }
        let loss = try trainStep(dataParallel?.shard(batch) ?? batch, lr: lr)
        if writesRun { try weightAverage?.update(afterStep: loop.step + 1) }
        return (loss, batch.count)
    }

    func finishEpoch(_ e: EpochSummary, writes: Bool) throws -> (row: String, line: String) {
        // Rank 0 alone validates and writes.
        let dice = writes ? try validationDice() : -1
        let improved = writes && dice > bestDice
        if improved { bestDice = dice }
        // model.safetensors: every epoch's weights ("final": after the last epoch, the final
        // model, or the average of the last steps' weights once it is complete), or only an
        // epoch that improved the best validation Dice ("best").
        if writes && (!config.keepsBest || improved) {
            var saved = model, savedDice = dice, kind = config.keepsBest ? "best" : "final"
            if let weightAverage, weightAverage.isComplete {
                saved = try weightAverage.averagedModel()
                savedDice = try validationDice(of: saved)
                kind = "average"
            }
            modelDice = savedDice
            var metadata = checkpointMetadata(epoch: e.epoch, step: e.step)
            metadata["val_dice"] = "\(savedDice)"; metadata["checkpoint"] = kind
            if kind == "average" {
                metadata["averaged_steps"] = "\(weightAverage?.steps ?? 0)"; metadata["final_val_dice"] = "\(dice)"
            }
            try Checkpoint.save(saved, metadata: metadata, to: modelPath)
        }
        return (String(format: "%d,%d,%.6f,%.6f,%.6g,%.2f,%.2f", e.epoch, e.step, e.meanLoss, dice, e.lr, e.seconds, Double(e.images) / e.seconds),
                String(format: "epoch %d/%d  loss %.4f  val dice %.4f  lr %.2e  %.1fs", e.epoch, e.epochs, e.meanLoss, dice, e.lr, e.seconds))
    }
}

extension TrainingSplit {
    /// The split of a run: `config.data` read in `config.format`; a made test split is read from
    /// or written to `config.splitFile` (default RUN/split.json), and kept in RUN/split.json.
    public init(config: TrainConfig) throws {
        let runSplit = config.out + "/split.json"
        let file = config.splitFile ?? runSplit
        let splits = try loadSplits(path: config.data, spec: try config.datasetSpec(), parts: [.train, .val], splitFile: file)
        if file != runSplit, FileManager.default.fileExists(atPath: file), !FileManager.default.fileExists(atPath: runSplit) {
            try FileManager.default.createDirectory(atPath: config.out, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: file, toPath: runSplit)
        }
        try self.init(train: splits.train, validation: splits.validation, labelFraction: config.labelFraction,
                      seed: config.seed, source: config.format == DatasetFormat.folder.rawValue ? config.data + "/train" : config.data,
                      selection: config.labelSelection ?? .random)
    }
}
