import Foundation

/// What one training objective gives the shared `TrainingLoop` (STYLE.md rule 18: one training
/// loop, a new objective plugs into it). Supervised fine-tuning (`Trainer`, docs/MODEL.md's
/// loss) and Barlow Twins pre-training (`Pretrainer`) are the two objectives; the loop owns the
/// epoch loop, the warm-up + cosine schedule, the one-step-behind loss read and its NaN check,
/// Ctrl-C, log.csv, RUN/last.safetensors and `--resume`.
protocol TrainingObjective: AnyObject {
    /// Names the loss in the divergence message ("training loss", "Barlow Twins loss").
    var lossName: String { get }
    /// Added on the host to every step's loss value before it is checked, summed and logged
    /// (the segmentation loss leaves its constant 0.5 out of the graph).
    var lossOffset: Double { get }
    /// Under data parallelism: true if a rank's step loss is its share of the global loss (the
    /// ranks add them up, a blocking all-reduce per step); false if every rank computes the
    /// global loss itself (read one step behind, as in one process).
    var lossIsRankShare: Bool { get }
    var dataParallel: DataParallel? { get }
    /// The columns of log.csv (its first line).
    var logHeader: String { get }
    /// What RUN/last.safetensors holds besides the optimiser state; `--resume` loads it back.
    var checkpointModule: Module { get }
    var optimizer: AdamW { get }
    /// Metadata of RUN/last.safetensors besides `epoch` and `step` (which the loop adds).
    func checkpointMetadata(epoch: Int, step: Int) -> [String: String]
    /// Tensors of RUN/last.safetensors besides the module and the optimiser state (the
    /// trainer's weight average); `restored` reads them back.
    var checkpointExtras: [(String, Tensor)] { get }
    /// Reads back what `checkpointMetadata` and `checkpointExtras` stored, after `--resume`
    /// restored the weights to global step `step`.
    func restored(_ file: SafeTensorsFile, step: Int) throws
    /// Writes RUN/config.json (rank 0, at the start of every `run`).
    func writeRunRecord(resumedAt epoch: Int) throws
    /// Starts epoch `epoch` (0-based): draws its batches from the epoch's own seed, so a resumed
    /// run draws what an uninterrupted one would.
    func startEpoch(_ epoch: Int) throws
    /// Queues the next step of the epoch (forward, backward, the data-parallel all-reduce and the
    /// optimiser update at `lr`) without waiting for the device; returns the loss (one element,
    /// on the device) and the images of the batch, or nil when the epoch has no more steps.
    func step(lr: Float) throws -> (loss: Tensor, images: Int)?
    /// After a completed epoch, on every rank: validates and saves the objective's own files when
    /// `writes` (rank 0); returns the log.csv row and the progress line.
    func finishEpoch(_ summary: EpochSummary, writes: Bool) throws -> (row: String, line: String)
}

/// What the loop measured in one completed epoch.
struct EpochSummary {
    /// The epoch just completed (1-based) and the global step after it.
    var epoch: Int, step: Int
    var epochs: Int
    var meanLoss: Double
    /// The learning rate of the epoch's last step.
    var lr: Float
    var seconds: Double
    var images: Int
}

/// The epoch loop shared by every objective. It keeps the position of the run (epoch, step,
/// log rows) and writes RUN/log.csv and RUN/last.safetensors (weights, AdamW state, epoch and
/// step) after every epoch; `restore` continues from there exactly (the batches of an epoch
/// come from the epoch's seed, the schedule from the step).
public final class TrainingLoop {
    struct Settings {
        var runDir: String
        /// The command that resumes the run (`refineseg COMMAND --resume RUN`).
        var command: String
        var epochs: Int
        var stepsPerEpoch: Int
        var baseLR: Double
        var warmupEpochs: Int
    }
    var settings: Settings
    let backend: Backend
    var progress = ProgressPrinter()
    /// Epochs completed so far, and optimiser steps.
    private(set) var epoch = 0
    private(set) var step = 0
    /// One line per completed epoch (log.csv without its header).
    private(set) var logRows: [String] = []
    /// Mean loss of each completed epoch.
    private(set) var epochLosses: [Double] = []
    /// Stops after this many completed epochs, as a kill right after that epoch's checkpoint
    /// would (tests of `--resume`); nil: run to `settings.epochs`.
    var stopAfterEpochs: Int?

    init(settings: Settings, backend: Backend) {
        self.settings = settings
        self.backend = backend
    }

    var runDir: String { settings.runDir }
    var lastPath: String { runDir + "/last.safetensors" }
    var logPath: String { runDir + "/log.csv" }

    /// Learning rate at a global step: linear warm-up, then cosine decay to 1 % of the base.
    func learningRate(at step: Int) throws -> Float {
        let spe = settings.stepsPerEpoch, total = settings.epochs * spe
        return try WarmupCosineSchedule(baseLR: Float(settings.baseLR), minLR: Float(settings.baseLR) * 0.01,
                                        warmupSteps: min(settings.warmupEpochs * spe, total - 1), totalSteps: total).lr(at: step)
    }

    /// Continues from RUN/last.safetensors if there is one (a run killed before it completed an
    /// epoch has none and starts again from epoch 1). Returns what was loaded, or nil.
    func restore(_ objective: TrainingObjective) throws -> Checkpoint.LoadReport? {
        guard FileManager.default.fileExists(atPath: lastPath) else { return nil }
        let file = try SafeTensorsFile.read(lastPath)
        let report = try Checkpoint.load(file, path: lastPath, into: objective.checkpointModule, backend: backend)
        var state = [String: Tensor]()
        for t in file.tensors where t.name.hasPrefix("optimizer.") { state[t.name] = try backend.tensor(t.values, shape: Shape(t.shape)) }
        guard let e = file.metadata["epoch"].flatMap(Int.init), let st = file.metadata["step"].flatMap(Int.init) else {
            throw RefineSegError.io(file: lastPath, message: "metadata lacks epoch/step: not a checkpoint `refineseg \(settings.command) --resume` can continue")
        }
        try objective.optimizer.restore(state, step: st)
        // After Ctrl-C mid-epoch the file holds that epoch's partial updates (and the optimizer
        // counts them), but the epoch itself is redone: the schedule and log count whole epochs.
        epoch = e; step = min(st, e * settings.stepsPerEpoch)
        try objective.restored(file, step: step)
        if let text = try? String(contentsOfFile: logPath, encoding: .utf8) {
            logRows = Array(text.split(separator: "\n").dropFirst().prefix(epoch).map(String.init))
            epochLosses = logRows.compactMap { row in row.split(separator: ",").dropFirst(2).first.flatMap { Double(String($0)) } }
        }
        return report
    }

    func saveLast(_ objective: TrainingObjective) throws {
        var metadata = objective.checkpointMetadata(epoch: epoch, step: step)
        metadata["epoch"] = "\(epoch)"; metadata["step"] = "\(step)"
        try Checkpoint.save(objective.checkpointModule, extra: objective.optimizer.stateTensors() + objective.checkpointExtras, metadata: metadata, to: lastPath)
    }

    /// What each rank says if the job is stopped because another rank died.
    func noteCheckpointForTermination() {
        Distributed.setTerminationNote(FileManager.default.fileExists(atPath: lastPath)
            ? "the last checkpoint \(lastPath) (epoch \(epoch)) is intact; `refineseg \(settings.command) --resume \(runDir)` continues"
            : "no epoch was completed, so there is no checkpoint yet")
    }

    /// The error for a non-finite loss: the step, and the checkpoint that is still good.
    func divergence(_ objective: TrainingObjective, _ value: Double, batch: Int, atStep: Int? = nil) -> RefineSegError {
        let kept = FileManager.default.fileExists(atPath: lastPath)
            ? "the last good checkpoint \(lastPath) (epoch \(epoch)) is kept"
            : "no checkpoint was written (no epoch completed)"
        return .numerical("\(objective.lossName) became \(value.isNaN ? "NaN" : "\(value)") at step \(atStep ?? step) (epoch \(epoch + 1), batch \(batch)); stopped: \(kept); try a lower --lr")
    }

    /// Trains until `settings.epochs` epochs are complete, writing RUN/ as it goes. Returns false
    /// if it stopped early (Ctrl-C, after saving RUN/last.safetensors; or `stopAfterEpochs`).
    func run(_ objective: TrainingObjective) throws -> Bool {
        let dp = objective.dataParallel
        let writes = dp?.comm.isRoot ?? true
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        if writes {
            removeStaleTemporaryFiles(in: runDir)
            try objective.writeRunRecord(resumedAt: epoch)
        }
        let spe = settings.stepsPerEpoch, totalSteps = settings.epochs * spe
        let runStart = Date()
        let stepsAtStart = step
        while epoch < settings.epochs {
            if let stop = stopAfterEpochs, epoch >= stop { return false }
            let epochStart = Date()
            try objective.startEpoch(epoch)
            var lossSum = 0.0, images = 0, batches = 0
            var lr: Float = 0
            var shown = "…"
            // One scalar read per step, one step behind: step k's loss is looked at once step k + 1
            // is queued (its backward and update too), so the device never waits for the host. It
            // still names the exact step that diverged, before a NaN can reach a checkpoint (every
            // read is checked before a save).
            var pending: (read: PendingRead, step: Int, batch: Int)?
            func take(_ raw: Double, step: Int, batch: Int) throws {
                let value = raw + objective.lossOffset
                guard value.isFinite else { throw divergence(objective, value, batch: batch, atStep: step) }
                lossSum += raw
                shown = String(format: "%.4f", value)
            }
            func checkPending() throws {
                guard let p = pending else { return }
                pending = nil
                try take(Double(try p.read.values()[0]), step: p.step, batch: p.batch)
            }
            while true {
                let stepLR = try learningRate(at: step + 1)   // the schedule is 0 at step 0
                guard let (loss, n) = try objective.step(lr: stepLR) else { break }
                lr = stepLR
                step += 1; batches += 1; images += n
                let stop: Bool
                if let dp, objective.lossIsRankShare {
                    // Data-parallel ranks add up their weighted losses and stop flags at once (a
                    // blocking read): they all see the global loss and stop together.
                    let sums = try dp.sum([Double(try loss.scalar()), interruptRequested != 0 ? 1 : 0])
                    try take(sums[0], step: step, batch: batches)
                    stop = sums[1] > 0
                } else {
                    let read = try backend.startRead(loss)
                    try checkPending()
                    pending = (read, step, batches)
                    stop = try dp.map { try $0.sum([interruptRequested != 0 ? 1 : 0])[0] > 0 } ?? (interruptRequested != 0)
                }
                if stop { interruptRequested = 1; break }
                let elapsed = Date().timeIntervalSince(runStart)
                let rate = Double(step - stepsAtStart) / max(elapsed, 1e-9)
                progress.update("\(settings.command) epoch \(epoch + 1)/\(settings.epochs) step \(batches)/\(spe) · loss \(shown) · \(String(format: "%.1f", Double(images) / Date().timeIntervalSince(epochStart))) img/s · left \(formatDuration(Double(totalSteps - step) / rate))")
            }
            try checkPending()
            let meanLoss = lossSum / Double(max(batches, 1)) + objective.lossOffset
            guard meanLoss.isFinite else { throw divergence(objective, meanLoss, batch: batches) }
            if interruptRequested != 0 {
                if writes { try saveLast(objective) }
                progress.line("interrupted: weights saved to \(lastPath); `--resume \(runDir)` restarts epoch \(epoch + 1)")
                return false
            }
            let seconds = Date().timeIntervalSince(epochStart)
            epoch += 1
            epochLosses.append(meanLoss)
            let (row, line) = try objective.finishEpoch(EpochSummary(epoch: epoch, step: step, epochs: settings.epochs, meanLoss: meanLoss,
                                                                     lr: lr, seconds: seconds, images: images), writes: writes)
            logRows.append(row)
            // The other ranks go on to the next epoch and wait for rank 0 in the first all-reduce.
            guard writes else { continue }
            // log.csv before last.safetensors: a kill between the two leaves the log one row
            // ahead, and `restore` keeps only the rows of the epochs the checkpoint holds.
            try writeAtomically(Data(([objective.logHeader] + logRows).joined(separator: "\n").appending("\n").utf8), to: logPath)
            try saveLast(objective)
            noteCheckpointForTermination()
            progress.line(line)
        }
        return true
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
}

/// A run driven by a `TrainingLoop` (`Trainer`, `Pretrainer`): its position and progress are the loop's.
public protocol LoopDriven: AnyObject {
    var loop: TrainingLoop { get }
}

extension LoopDriven {
    /// Where progress goes (stderr; quiet on the non-root ranks).
    public var progress: ProgressPrinter {
        get { loop.progress }
        set { loop.progress = newValue }
    }
    /// Epochs completed so far, and optimiser steps.
    public var epoch: Int { loop.epoch }
    public var step: Int { loop.step }
    /// One line per completed epoch (log.csv without its header).
    public var logRows: [String] { loop.logRows }
    /// Mean loss of each completed epoch (for tests and summaries).
    public var epochLosses: [Double] { loop.epochLosses }
}

/// Several modules saved and loaded as one (each under its own name prefix; "" keeps the names).
final class ModuleGroup: Module {
    let parts: [(prefix: String, module: Module)]
    init(_ parts: [(prefix: String, module: Module)]) { self.parts = parts }
    func collect(prefix p: String, into list: inout [(String, Parameter)]) {
        for part in parts { part.module.collect(prefix: part.prefix.isEmpty ? p : join(p, part.prefix), into: &list) }
    }
}
