import Foundation

/// What RUN/config.json holds: every setting, the device and the code version.
public struct RunRecord: Codable {
    public var config: TrainConfig
    public var device: String
    public var gitCommit: String
    public var started: String
}

/// Supervised training of DFR-UNet on a dataset folder (docs/MODEL.md's loss, AdamW, warm-up + cosine).
public final class Trainer {
    public private(set) var config: TrainConfig
    public let backend: Backend
    public let model: DFRUNet
    public let optimizer: AdamW
    public let split: TrainingSplit
    public let lossFunction: SegmentationLoss
    public var progress = ProgressPrinter()
    /// Epochs completed so far.
    public private(set) var epoch = 0
    public private(set) var step = 0
    public private(set) var bestDice: Double = -1
    /// One line per completed epoch (log.csv without its header).
    public private(set) var logRows: [String] = []
    /// Mean training loss of each completed epoch (for tests and summaries).
    public private(set) var epochLosses: [Double] = []
    /// Data-parallel training over MPI (nil: one process); see `enableDataParallel`.
    public private(set) var dataParallel: DataParallel?
    /// Rank 0 (or the only process) writes the run folder and reports progress.
    var writesRun: Bool { dataParallel?.comm.isRoot ?? true }

    static let logHeader = "epoch,step,train_loss,val_dice,lr,seconds,images_per_second"

    var runDir: String { config.out }
    var lastPath: String { runDir + "/last.safetensors" }
    var bestPath: String { runDir + "/model.safetensors" }

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
        self.config.stepsPerEpoch = config.resolvedStepsPerEpoch(labelled: s.labelled.count, trainingImages: s.trainingImages)
        model = try DFRUNet(backend, config: ModelConfig(inChannels: channels, width: config.width), seed: config.seed)
        optimizer = try AdamW(model.trainableParameters(), backend: backend, weightDecay: Float(config.weightDecay))
        lossFunction = SegmentationLoss(beta: Float(config.lacWeight))
        if resume && FileManager.default.fileExists(atPath: lastPath) { try restore() }
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

    private func restore() throws {
        let file = try SafeTensorsFile.read(lastPath)
        let report = try Checkpoint.load(file, path: lastPath, into: model, backend: backend)
        if let note = Checkpoint.freshHeadNote(report, path: lastPath) { progress.line(note) }
        var state = [String: Tensor]()
        for t in file.tensors where t.name.hasPrefix("optimizer.") { state[t.name] = try backend.tensor(t.values, shape: Shape(t.shape)) }
        guard let e = file.metadata["epoch"].flatMap(Int.init), let st = file.metadata["step"].flatMap(Int.init) else {
            throw RefineSegError.io(file: lastPath, message: "metadata lacks epoch/step: not a training checkpoint")
        }
        try optimizer.restore(state, step: st)
        // After Ctrl-C mid-epoch the file holds that epoch's partial updates (and the optimizer
        // counts them), but the epoch itself is redone: the schedule and log count whole epochs.
        epoch = e; step = min(st, e * stepsPerEpoch)
        bestDice = file.metadata["best_dice"].flatMap(Double.init) ?? -1
        let logPath = runDir + "/log.csv"
        if let text = try? String(contentsOfFile: logPath, encoding: .utf8) {
            logRows = Array(text.split(separator: "\n").dropFirst().prefix(epoch).map(String.init))
            epochLosses = logRows.compactMap { row in row.split(separator: ",").dropFirst(2).first.flatMap { Double(String($0)) } }
        }
    }

    /// Optimiser steps in one epoch (resolved in `init`).
    public var stepsPerEpoch: Int { config.stepsPerEpoch ?? 1 }

    /// Learning rate at a global step: linear warm-up, then cosine decay to 1 % of the base.
    func learningRate(at step: Int) throws -> Float {
        try WarmupCosineSchedule(baseLR: Float(config.lr), minLR: Float(config.lr) * 0.01,
                                 warmupSteps: min(config.warmupEpochs * stepsPerEpoch, config.epochs * stepsPerEpoch - 1),
                                 totalSteps: config.epochs * stepsPerEpoch).lr(at: step)
    }

    /// Makes this trainer one rank of a data-parallel job: rank 0's weights (fresh, loaded or
    /// resumed) are copied to every rank; from then on every step all-reduces the gradients.
    public func enableDataParallel(_ comm: Communicator, syncBatchNorm: Bool) throws {
        let dp = DataParallel(comm: comm, backend: backend, syncBatchNorm: syncBatchNorm)
        try dp.broadcastParameters(model.namedParameters())
        dataParallel = dp
        if !comm.isRoot { progress.quiet = true }
        noteCheckpointForTermination()
    }

    /// What each rank says if the job is stopped because another rank died.
    func noteCheckpointForTermination() {
        Distributed.setTerminationNote(FileManager.default.fileExists(atPath: lastPath)
            ? "the last checkpoint \(lastPath) (epoch \(epoch)) is intact; `refineseg train --resume \(runDir)` continues"
            : "no epoch was completed, so there is no checkpoint yet")
    }

    /// Trains until `config.epochs` epochs are complete (or Ctrl-C), writing RUN/ as it goes.
    public func run() throws {
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        if writesRun { removeStaleTemporaryFiles(in: runDir) }
        if epoch == 0 && writesRun {
            let record = RunRecord(config: config, device: backend.name, gitCommit: gitCommit(),
                                   started: ISO8601DateFormatter().string(from: Date()))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically(try encoder.encode(record), to: runDir + "/config.json")
        }
        let totalSteps = config.epochs * stepsPerEpoch
        let runStart = Date()
        let stepsAtStart = step
        while epoch < config.epochs {
            let epochStart = Date()
            let loader = BatchLoader(drawingWithReplacement: split.labelled, batches: stepsPerEpoch, batchSize: config.batch,
                                     size: config.size, seed: config.seed &+ UInt64(epoch) &* 0x9E37_79B9,
                                     augmentation: config.augmentation())
            let lossSum = try backend.zeros([1])
            var images = 0, batches = 0
            var lr: Float = 0
            // One scalar read per step, one step behind: step k's loss is looked at once step k + 1
            // is queued, so the device never waits for the host. It still names the exact step that
            // diverged, before a NaN can reach a checkpoint (every read is checked before a save).
            var pending: (read: PendingRead, step: Int, batch: Int)?
            func checkPending() throws {
                guard let p = pending else { return }
                pending = nil
                let value = Double(try p.read.values()[0]) + 0.5
                guard value.isFinite else { throw divergence(value, batch: p.batch, atStep: p.step) }
            }
            var rankLossSum = 0.0
            while let batch = loader.next() {
                lr = try learningRate(at: step + 1)   // the schedule is 0 at step 0
                let loss = try trainStep(dataParallel?.shard(batch) ?? batch, lr: lr)
                step += 1; batches += 1; images += batch.count
                if let dp = dataParallel {
                    // Data-parallel ranks add up their weighted losses and stop flags at once (a
                    // blocking read): they all see the global loss and stop together.
                    let sums = try dp.sum([Double(try loss.scalar()), interruptRequested != 0 ? 1 : 0])
                    rankLossSum += sums[0]
                    guard (sums[0] + 0.5).isFinite else { throw divergence(sums[0] + 0.5, batch: batches) }
                    if sums[1] > 0 { interruptRequested = 1; break }
                } else {
                    try backend.accumulate(lossSum, loss, alpha: 1)
                    let read = try backend.startRead(loss)
                    try checkPending()
                    pending = (read, step, batches)
                    if interruptRequested != 0 { break }
                }
                let elapsed = Date().timeIntervalSince(runStart)
                let rate = Double(step - stepsAtStart) / max(elapsed, 1e-9)
                progress.update("epoch \(epoch + 1)/\(config.epochs) step \(batches)/\(stepsPerEpoch) · \(String(format: "%.1f", Double(images) / Date().timeIntervalSince(epochStart))) img/s · left \(formatDuration(Double(totalSteps - step) / rate))")
            }
            try checkPending()
            let meanLoss = (dataParallel == nil ? Double(try lossSum.scalar()) : rankLossSum) / Double(max(batches, 1)) + 0.5
            guard meanLoss.isFinite else { throw divergence(meanLoss, batch: batches) }
            if interruptRequested != 0 {
                if writesRun { try saveLast() }
                progress.line("interrupted: weights saved to \(lastPath); `--resume \(runDir)` restarts epoch \(epoch + 1)")
                return
            }
            let seconds = Date().timeIntervalSince(epochStart)
            // Rank 0 alone validates and writes; the other ranks go on to the next epoch and
            // wait for it in the first all-reduce.
            let dice = writesRun ? try validationDice() : -1
            epoch += 1
            epochLosses.append(meanLoss)
            logRows.append(String(format: "%d,%d,%.6f,%.6f,%.6g,%.2f,%.2f", epoch, step, meanLoss, dice, lr, seconds, Double(images) / seconds))
            guard writesRun else { continue }
            if dice > bestDice {
                bestDice = dice
                try Checkpoint.save(model, metadata: checkpointMetadata(), to: bestPath)
            }
            // log.csv before last.safetensors: a kill between the two leaves the log one row
            // ahead, and `restore` keeps only the rows of the epochs the checkpoint holds.
            try writeAtomically(Data(([Self.logHeader] + logRows).joined(separator: "\n").appending("\n").utf8), to: runDir + "/log.csv")
            try saveLast()
            noteCheckpointForTermination()
            progress.line(String(format: "epoch %d/%d  loss %.4f  val dice %.4f  lr %.2e  %.1fs", epoch, config.epochs, meanLoss, dice, lr, seconds))
        }
        if epoch == config.epochs && FileManager.default.fileExists(atPath: bestPath) { try choosePostProcessing() }
    }

    /// Chooses the post-processing of the best checkpoint on the validation split (predicted
    /// with mirror TTA, as `evaluate` and `annotate` do by default) and records it in the
    /// checkpoint's metadata (`PostProcessing`).
    public func choosePostProcessing() throws {
        var file = try SafeTensorsFile.read(bestPath)
        let best = try loadModel(bestPath, backend: backend)
        var predictor = Predictor(model: best, backend: backend)
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
        try file.write(to: bestPath)
        progress.line(String(format: "post-processing chosen on validation: %@ (val Dice with mirror TTA %.4f, after post-processing %.4f)",
                             choice.description, baseline, dice))
    }

    /// The error for a non-finite loss: the step, and the checkpoint that is still good.
    func divergence(_ value: Double, batch: Int, atStep: Int? = nil) -> RefineSegError {
        let kept = FileManager.default.fileExists(atPath: lastPath)
            ? "the last good checkpoint \(lastPath) (epoch \(epoch)) is kept"
            : "no checkpoint was written (no epoch completed)"
        return .numerical("training loss became \(value.isNaN ? "NaN" : "\(value)") at step \(atStep ?? step) (epoch \(epoch + 1), batch \(batch)); stopped: \(kept); try a lower --lr")
    }

    /// Forward, backward and update on one batch; returns the loss (one element, on the device).
    func trainStep(_ batch: Batch, lr: Float) throws -> Tensor {
        try Self.supervisedStep(batch, model: model, loss: lossFunction, optimizer: optimizer, backend: backend, lr: lr,
                                dataParallel: dataParallel)
    }

    /// One supervised step (upload, forward, loss, backward, AdamW update), shared with
    /// `TrainBench` so that the benchmark times exactly what training runs. Does not wait for the kernels it queues.
    static func supervisedStep(_ batch: Batch, model: DFRUNet, loss lossFunction: SegmentationLoss, optimizer: AdamW,
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
    public func validationDice() throws -> Double {
        let predictor = Predictor(model: model, backend: backend)
        var metrics = MetricAccumulator()
        for s in split.validation {
            guard let mask = s.mask else { continue }
            try score(s, mask: mask, predictor: predictor, into: &metrics)
        }
        return metrics.summary().dice
    }

    func checkpointMetadata() -> [String: String] {
        var m = model.config.metadata
        m["epoch"] = "\(epoch)"; m["step"] = "\(step)"; m["seed"] = "\(config.seed)"
        m["best_dice"] = "\(bestDice)"; m["label_fraction"] = "\(config.labelFraction)"
        return m
    }

    /// Removes `.NAME.tmp-PID` files that an atomic write of a killed process left behind
    /// (they are never read, but they would pile up).
    func removeStaleTemporaryFiles(in dir: String) {
        let fm = FileManager.default
        let own = ".tmp-\(getpid())"
        for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") && !name.hasSuffix(own) {
            try? fm.removeItem(atPath: dir + "/" + name)
        }
    }

    func saveLast() throws {
        try Checkpoint.save(model, extra: optimizer.stateTensors(), metadata: checkpointMetadata(), to: lastPath)
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
                      seed: config.seed, source: config.format == DatasetFormat.folder.rawValue ? config.data + "/train" : config.data)
    }
}
