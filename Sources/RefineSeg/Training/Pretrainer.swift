import Foundation

/// Settings of a Barlow Twins pre-training run (RUN/config.json).
public struct PretrainConfig: Codable, Equatable, Sendable {
    public var data: String
    public var out: String
    public var epochs: Int = 50
    public var batch: Int = 16
    public var size: Int = 128
    public var width: Int = 16
    public var projector: Int = 1024
    public var lambda: Double = 0.0051
    public var lr: Double = 1e-3
    public var weightDecay: Double = 1e-4
    public var warmupEpochs: Int = 2
    public var seed: UInt64 = 0
    public var device: Int?
    /// Dataset layout (nil: "folder"), BraTS modalities, made-split seed and split file (nil: OUT/split.json).
    public var format: String?
    public var modalities: [String]?
    public var splitSeed: UInt64?
    public var splitFile: String?

    public init(data: String, out: String) { self.data = data; self.out = out }

    /// How to read `data`.
    public func datasetSpec() throws -> DatasetSpec {
        DatasetSpec(format: try DatasetFormat(parsing: format ?? "folder"), modalities: modalities, size: size, splitSeed: splitSeed ?? 0)
    }

    public func validate() throws {
        func bad(_ m: String) -> RefineSegError { .invalidArgument(m) }
        _ = try datasetSpec()
        try checkBarlowTwinsBatch(batch)
        guard epochs >= 1 else { throw bad("--epochs must be at least 1 (got \(epochs))") }
        guard size >= 16, size % 16 == 0 else { throw bad("--size must be a positive multiple of 16 (got \(size))") }
        guard width >= 4, width % 4 == 0 else { throw bad("--width must be a positive multiple of 4 (got \(width))") }
        guard projector >= 1 else { throw bad("--projector must be at least 1 (got \(projector))") }
        guard lambda.isFinite, lambda >= 0 else { throw bad("--lambda must be finite and ≥ 0 (got \(lambda))") }
        guard lr.isFinite, lr > 0 else { throw bad("--lr must be a finite positive number (got \(lr))") }
    }
}

/// Barlow Twins pre-training of the DFR-UNet encoder on every training and unlabelled image: the
/// self-supervised objective of the shared `TrainingLoop` (RUN/log.csv, RUN/last.safetensors,
/// `refineseg pretrain --resume`), which also writes RUN/encoder.safetensors and
/// RUN/projector.safetensors after every epoch.
public final class Pretrainer {
    public private(set) var config: PretrainConfig
    public let backend: Backend
    public let model: DFRUNet
    public let projector: Projector
    public let images: [Sample]
    let standardize1: BatchNorm, standardize2: BatchNorm
    let optimizer: AdamW
    /// The epoch loop, schedule, loss reads, log.csv, last.safetensors and `--resume`
    /// (`progress`, `epoch`, `step`, `epochLosses` come from it: `LoopDriven`).
    public let loop: TrainingLoop
    /// Data-parallel pre-training over MPI (nil: one process).
    public private(set) var dataParallel: DataParallel?
    /// The current epoch's image order, view stream and position.
    private var order: [Int] = [], rng = SeededRandom(seed: 0), position = 0
    /// The cross-correlation matrix of the epoch's last step, on its way to the host.
    private var lastCorrelation: PendingRead?

    /// Optimiser steps in one epoch: whole batches of the shuffled images.
    public var stepsPerEpoch: Int { images.count / config.batch }

    /// Makes this pre-trainer one rank of a data-parallel job (rank 0's weights on every rank).
    /// The projector's standardising batch norms and the cross-correlation matrix always span
    /// the global batch (Barlow Twins needs them over the whole batch); the encoder's batch
    /// norms do with `syncBatchNorm`.
    public func enableDataParallel(_ comm: Communicator, syncBatchNorm: Bool) throws {
        guard config.batch >= comm.size else {
            throw RefineSegError.invalidArgument("--batch \(config.batch) is smaller than the \(comm.size) ranks: each rank needs at least one image per step")
        }
        let dp = DataParallel(comm: comm, backend: backend, syncBatchNorm: syncBatchNorm)
        try dp.broadcastParameters(model.namedParameters() + projector.namedParameters(prefix: "projector"))
        dataParallel = dp
        if !comm.isRoot { progress.quiet = true }
        loop.noteCheckpointForTermination()
    }

    /// Every train image (labelled or not) and every unlabeled/images image; never test.
    public static func pretrainingImages(_ folder: DatasetFolder) throws -> [Sample] {
        var all = try folder.load(split: "train", masks: false)
        if folder.hasSplit("val") { all += try folder.load(split: "val", masks: false) }
        if folder.hasSplit("unlabeled") { all += try folder.load(split: "unlabeled", masks: false) }
        return all
    }

    /// The same images of a dataset in any format: train (and val, unlabelled) without masks,
    /// never test; a made test split is read from or written to `splitFile`.
    public static func pretrainingImages(path: String, spec: DatasetSpec, splitFile: String?) throws -> [Sample] {
        if spec.format == .folder { return try pretrainingImages(try DatasetFolder(path)) }
        let splits = try loadSplits(path: path, spec: spec, parts: [.train, .val, .unlabeled], splitFile: splitFile)
        return (splits.train + (splits.validation ?? []) + splits.unlabeled).map { var s = $0; s.mask = nil; s.original = nil; return s }
    }

    /// Sets up a new run (or, with `resume`, continues RUN from last.safetensors; a run killed
    /// before it completed an epoch has none and starts again from epoch 1).
    public init(config: PretrainConfig, backend: Backend, images: [Sample]? = nil, resume: Bool = false) throws {
        try config.validate()
        self.config = config
        self.backend = backend
        self.images = try images ?? Self.pretrainingImages(path: config.data, spec: try config.datasetSpec(),
                                                            splitFile: config.splitFile ?? config.out + "/split.json")
        guard let channels = self.images.first?.channels else {
            throw RefineSegError.io(file: config.data, message: "no images to pre-train on")
        }
        guard config.batch <= self.images.count else {
            throw RefineSegError.invalidArgument("--batch \(config.batch) is larger than the \(self.images.count) pre-training image(s)")
        }
        model = try DFRUNet(backend, config: ModelConfig(inChannels: channels, width: config.width), seed: config.seed)
        var rng = SeededRandom(seed: config.seed ^ 0xB7)
        projector = try Projector(backend, inFeatures: 16 * config.width, dimension: config.projector, rng: &rng)
        standardize1 = try BatchNorm(backend, config.projector, affine: false)
        standardize2 = try BatchNorm(backend, config.projector, affine: false)
        let encoder = model.namedParameters().filter { n, _ in DFRUNet.encoderPrefixes.contains { n.hasPrefix($0) } }
        optimizer = try AdamW(encoder + projector.namedParameters(prefix: "projector"), backend: backend,
                              weightDecay: Float(config.weightDecay))
        loop = TrainingLoop(settings: .init(runDir: config.out, command: "pretrain", epochs: config.epochs,
                                            stepsPerEpoch: self.images.count / config.batch, baseLR: config.lr,
                                            warmupEpochs: config.warmupEpochs), backend: backend)
        if resume { _ = try loop.restore(self) }
    }

    /// L_BT of one pair of view batches (N, C, S, S); also returns c (D, D).
    func loss(_ v1: Tensor, _ v2: Tensor, _ g: Graph) throws -> (loss: Var, correlation: Var) {
        func embed(_ x: Tensor, _ bn: BatchNorm) throws -> Var {
            let ctx = try model.encode(g.constant(x), g).context
            let pooled = try g.reshape(try g.mean(ctx, axes: 2..<4), [x.shape[0], ctx.shape[1]])
            return try bn(try projector(pooled, g), g)
        }
        let z1 = try embed(v1, standardize1), z2 = try embed(v2, standardize2)
        var product = try g.matmul(z1, z2, transposeA: true, transposeB: false)
        if let dp = dataParallel { product = try g.allreduceSum(product, comm: dp.comm) }   // Σ over the global batch
        let c = try g.scale(product, by: 1 / Float(config.batch))
        return (try g.barlowTwinsFromCorrelation(c, lambda: Float(config.lambda)), c)
    }

    /// One pre-training step on a pair of view batches: forward, L_BT, backward, the
    /// data-parallel all-reduce and the AdamW update at `lr`. Returns the loss and the
    /// cross-correlation matrix (on the device; nothing waits for the kernels it queues).
    func trainStep(_ v1: Tensor, _ v2: Tensor, lr: Float) throws -> (loss: Tensor, correlation: Tensor) {
        let g = Graph(backend: backend, training: true)
        dataParallel?.attach(to: g, alwaysSync: [standardize1, standardize2])
        let (loss, c) = try self.loss(v1, v2, g)
        try g.backward(loss)
        // Every rank computed the same global loss: the summed gradients are the global ones.
        try dataParallel?.finishGradients()
        try optimizer.update(lr: lr)
        return (loss.value, c.value)
    }

    /// Makes both views of a batch of images on the host.
    /// Data-parallel ranks draw the views of the whole batch (the same random stream as one
    /// process) and keep those of their own block of images.
    func views(_ batch: [Sample], rng: inout SeededRandom) throws -> (Tensor, Tensor) {
        let s = config.size, c = batch[0].channels
        let mine = dataParallel.map { Shard(count: $0.comm.size, index: $0.comm.rank).range(of: batch.count) } ?? batch.indices
        var a = [Float](), b = [Float]()
        for (i, sample) in batch.enumerated() {
            let x = ViewAugmentation.view1.apply(sample, size: s, rng: &rng)
            let y = ViewAugmentation.view2.apply(sample, size: s, rng: &rng)
            if mine.contains(i) { a += x; b += y }
        }
        return (try backend.tensor(a, shape: [mine.count, c, s, s]), try backend.tensor(b, shape: [mine.count, c, s, s]))
    }

    /// Runs every epoch (or continues a resumed run), writing RUN/encoder.safetensors,
    /// RUN/projector.safetensors, RUN/last.safetensors and RUN/log.csv.
    public func run() throws {
        _ = try loop.run(self)
    }

    func saveCheckpoints(epoch: Int) throws {
        let meta = encoderMetadata(epoch: epoch)
        let encoderTensors = try model.namedParameters()
            .filter { n, _ in DFRUNet.encoderPrefixes.contains { n.hasPrefix($0) } }
            .map { n, p in (name: n, shape: p.value.shape.dims, values: try p.value.toArray()) }
        try SafeTensorsFile(tensors: encoderTensors, metadata: meta).write(to: config.out + "/encoder.safetensors")
        try Checkpoint.save(projector.asNamed(prefix: "projector"), metadata: meta, to: config.out + "/projector.safetensors")
    }

    func encoderMetadata(epoch: Int) -> [String: String] {
        var meta = model.config.metadata
        meta["epoch"] = "\(epoch)"; meta["projector_dim"] = "\(config.projector)"; meta["kind"] = "barlow-twins-encoder"
        return meta
    }
}

extension Pretrainer: LoopDriven {}

extension Pretrainer: TrainingObjective {
    var lossName: String { "Barlow Twins loss" }
    var lossOffset: Double { 0 }
    /// The cross-correlation matrix is all-reduced in the graph: every rank has the global loss.
    var lossIsRankShare: Bool { false }
    var logHeader: String { "epoch,step,loss,on_diagonal_mean,off_diagonal_mean,lr,seconds" }
    /// The whole model (its decoder stays as initialised) and the projector.
    var checkpointModule: Module { ModuleGroup([("", model), ("projector", projector)]) }

    func checkpointMetadata(epoch: Int, step: Int) -> [String: String] {
        var meta = encoderMetadata(epoch: epoch)
        meta["kind"] = "barlow-twins-run"; meta["seed"] = "\(config.seed)"
        return meta
    }

    var checkpointExtras: [(String, Tensor)] { [] }
    func restored(_ file: SafeTensorsFile, step: Int) throws {}

    func writeRunRecord(resumedAt epoch: Int) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(config), to: config.out + "/config.json")
    }

    func startEpoch(_ epoch: Int) throws {
        rng = SeededRandom(seed: config.seed &+ UInt64(epoch) &* 0x51ED)
        order = Array(images.indices)
        order.shuffle(using: &rng)
        position = 0
        lastCorrelation = nil
    }

    func step(lr: Float) throws -> (loss: Tensor, images: Int)? {
        let k = position
        guard k < stepsPerEpoch else { return nil }
        let batch = order[(k * config.batch)..<((k + 1) * config.batch)].map { images[$0] }
        let (v1, v2) = try views(batch, rng: &rng)
        let (loss, c) = try trainStep(v1, v2, lr: lr)
        // The last step's correlation is logged (its diagonal means), read at the end of the epoch.
        if k == stepsPerEpoch - 1 { lastCorrelation = try backend.startRead(c) }
        position += 1
        return (loss, batch.count)
    }

    func finishEpoch(_ e: EpochSummary, writes: Bool) throws -> (row: String, line: String) {
        var onDiag = 0.0, offDiag = 0.0
        if let read = lastCorrelation {
            let cv = try read.values(), d = config.projector
            var on = 0.0, off = 0.0
            for i in 0..<d { for j in 0..<d { if i == j { on += Double(cv[i * d + j]) } else { off += Double(cv[i * d + j]) } } }
            onDiag = on / Double(d); offDiag = off / Double(max(d * d - d, 1))
        }
        lastCorrelation = nil
        if writes { try saveCheckpoints(epoch: e.epoch) }
        return (String(format: "%d,%d,%.6f,%.6f,%.6f,%.6g,%.2f", e.epoch, e.step, e.meanLoss, onDiag, offDiag, e.lr, e.seconds),
                String(format: "pretrain epoch %d/%d  loss %.4f  on-diag %.3f  off-diag %.4f  %.1fs", e.epoch, e.epochs, e.meanLoss, onDiag, offDiag, e.seconds))
    }
}

/// A module view with a name prefix, for saving a submodule under its full names.
final class Prefixed: Module {
    let inner: Module, prefix: String
    init(_ inner: Module, prefix: String) { self.inner = inner; self.prefix = prefix }
    func collect(prefix p: String, into list: inout [(String, Parameter)]) { inner.collect(prefix: join(p, prefix), into: &list) }
}

extension Module {
    func asNamed(prefix: String) -> Module { Prefixed(self, prefix: prefix) }
}
