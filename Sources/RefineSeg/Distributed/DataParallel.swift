import Foundation

/// What the gradient all-reduce of data-parallel training cost, summed over steps.
public struct AllreduceStats: Codable, Equatable, Sendable {
    public var steps = 0
    /// Bytes all-reduced (float32 gradients), over all steps.
    public var bytes = 0
    public var buckets = 0
    /// Seconds from each step's first bucket start to its last bucket's completion.
    public var communicationSeconds = 0.0
    /// Seconds the step waited for the all-reduce after backward had finished (not hidden).
    public var exposedSeconds = 0.0
    /// Seconds reading gradients from and writing them back to the device.
    public var copySeconds = 0.0

    /// Share of the all-reduce time hidden behind backward: 1 − exposed / communication.
    public var overlap: Double { communicationSeconds > 0 ? max(0, 1 - exposedSeconds / communicationSeconds) : 0 }
}

/// Data-parallel training over MPI, as PyTorch's DistributedDataParallel does it: every rank
/// holds the whole model; each step every rank takes its own contiguous block of the same
/// global batch; gradients are summed over ranks by all-reduce in buckets that start as soon
/// as their gradients are final (`Graph.onGradientReady`), so communication overlaps the rest
/// of backward; then every rank applies the same optimiser step, so the weights stay equal.
///
/// Scaling: a rank with n of the N images of a global batch seeds its backward with n/N, so
/// the summed gradient is exactly the gradient of the single-process loss when the loss is a
/// mean of per-image terms (BCE over pixels of equal-size crops and MODEL.md's per-image soft
/// Dice are; the lesion-aware contrastive term and per-rank BatchNorm are computed within each
/// rank's images, as in PyTorch DDP). With `--sync-bn` batch-norm statistics (and their
/// gradients) span the global batch, which makes a step equal to the single-process one up to
/// float rounding.
public final class DataParallel {
    public let comm: Communicator
    public let backend: Backend
    public let syncBatchNorm: Bool
    /// Gradients are all-reduced in buckets of about this many bytes (the last bucket of a step
    /// takes what is left).
    public var bucketBytes = 1 << 20
    public private(set) var stats = AllreduceStats()

    private var current: [Parameter] = []
    private var currentCount = 0
    private var pending: [(reduce: PendingAllreduce, parameters: [Parameter])] = []
    private var stepStart: Date?
    /// This rank's share n/N of the current global batch (0 when it has no image of it).
    public private(set) var weight: Float = 1
    private var syncBN: SyncBatchNorm?

    public init(comm: Communicator, backend: Backend, syncBatchNorm: Bool) {
        self.comm = comm
        self.backend = backend
        self.syncBatchNorm = syncBatchNorm
        syncBN = SyncBatchNorm(comm: comm)
    }

    /// This rank's block of a global batch, and its weight n/N. A rank left without an image
    /// (a last batch smaller than the number of ranks) computes on the first image with weight
    /// 0, so it still takes part in every collective but adds nothing.
    public func shard(_ batch: Batch) -> Batch {
        let part = Shard(count: comm.size, index: comm.rank).range(of: batch.count)
        let per = batch.channels * batch.size * batch.size, perMask = batch.size * batch.size
        let take = part.isEmpty ? 0..<1 : part
        weight = Float(part.count) / Float(batch.count)
        return Batch(count: take.count, channels: batch.channels, size: batch.size,
                     images: Array(batch.images[(take.lowerBound * per)..<(take.upperBound * per)]),
                     masks: Array(batch.masks[(take.lowerBound * perMask)..<(take.upperBound * perMask)]))
    }

    /// Copies rank 0's parameters and buffers to every rank (after initialisation or a resume).
    public func broadcastParameters(_ parameters: [(String, Parameter)]) throws {
        for (_, p) in parameters {
            var values = comm.isRoot ? try backend.read(p.value) : [Float](repeating: 0, count: p.value.count)
            try comm.broadcast(&values)
            if !comm.isRoot { p.value = try backend.tensor(values, shape: p.value.shape) }
        }
    }

    /// Makes `graph` report finished gradients to this object (and use synchronised batch
    /// norm with `--sync-bn`; `alwaysSync` batch norms are synchronised in any case).
    public func attach(to graph: Graph, alwaysSync: [BatchNorm] = []) {
        graph.onGradientReady = { [unowned self] p in try self.ready(p) }
        let all = syncBatchNorm
        let always = Set(alwaysSync.map(ObjectIdentifier.init))
        if let sync = syncBN, all || !always.isEmpty {
            sync.active = weight > 0
            graph.batchNormOverride = { x, bn, g in
                guard all || always.contains(ObjectIdentifier(bn)) else { return nil }
                return try sync.batchNorm(x, bn, g)
            }
        }
    }

    /// A parameter's gradient is final: add it to the open bucket, start the bucket's
    /// all-reduce once it is full, and let MPI progress the reductions already started.
    func ready(_ p: Parameter) throws {
        if stepStart == nil { stepStart = Date() }
        current.append(p)
        currentCount += p.value.count
        if currentCount * 4 >= bucketBytes { try launch() }
        for r in pending { try r.reduce.test() }
    }

    private func launch() throws {
        guard !current.isEmpty else { return }
        let t0 = Date()
        var values = [Float]()
        values.reserveCapacity(currentCount)
        for p in current { values += try backend.read(p.grad!) }
        stats.copySeconds += Date().timeIntervalSince(t0)
        pending.append((try PendingAllreduce(values, comm: comm), current))
        stats.bytes += values.count * 4
        stats.buckets += 1
        current = []; currentCount = 0
    }

    /// After backward: starts the last bucket, waits for every reduction and puts the summed
    /// gradients back on the device. All ranks must call it once per step.
    public func finishGradients() throws {
        try launch()
        let backwardDone = Date()
        for r in pending { try r.reduce.wait() }
        let allDone = Date()
        let t0 = Date()
        for (reduce, parameters) in pending {
            var offset = 0
            for p in parameters {
                let n = p.value.count
                p.grad = try backend.tensor(Array(reduce.buffer[offset..<(offset + n)]), shape: p.value.shape)
                offset += n
            }
        }
        stats.copySeconds += Date().timeIntervalSince(t0)
        if let start = pending.first?.reduce.started ?? stepStart {
            stats.communicationSeconds += allDone.timeIntervalSince(start)
        }
        stats.exposedSeconds += allDone.timeIntervalSince(backwardDone)
        stats.steps += 1
        pending = []; stepStart = nil
    }

    /// Sums per-step scalars over ranks (the weighted loss, the stop flag): one small all-reduce.
    public func sum(_ values: [Double]) throws -> [Double] {
        var v = values
        try comm.allreduceSum(&v)
        return v
    }

    public func resetStats() { stats = AllreduceStats() }
}

/// Batch norm whose statistics span every rank's images (PyTorch's SyncBatchNorm), composed of
/// the backend's batch-norm ops and two small all-reduces per layer and direction:
///
/// forward: each rank's per-channel mean and biased variance (from `batchNormTrain` on scratch
/// running buffers) are combined as Σn·mean and Σn·(var + mean²) over ranks, in double; y is
/// `batchNormEval` with the global mean and variance; the running statistics move as one
/// process's would (unbiased variance over the global count).
///
/// backward: `batchNormBackward` with the global statistics gives the local Σdy and Σdy·x̂
/// (dbias, dweight) and a dx that used the local count; Σdy and Σdy·x̂ are all-reduced and the
/// difference is added as a per-channel affine map of x̂ (again `batchNormEval`):
/// dx = w·invStd·(dy − Σdy/N − x̂·Σdy·x̂/N). dweight and dbias stay local sums: the gradient
/// all-reduce adds them up.
final class SyncBatchNorm {
    let comm: Communicator
    /// False on a rank that holds no image of this batch (it counts for nothing).
    var active = true

    init(comm: Communicator) { self.comm = comm }

    func batchNorm(_ x: Var, _ bn: BatchNorm, _ g: Graph) throws -> Var {
        let b = g.backend
        let w = g.parameter(bn.weight), bias = g.parameter(bn.bias)
        let c = x.shape[1], localCount = x.value.count / c
        let count = active ? Double(localCount) : 0
        let (_, local) = try b.batchNormTrain(x.value, weight: w.value, bias: bias.value, runningMean: try b.copy(bn.runningMean.value),
                                              runningVar: try b.copy(bn.runningVar.value), momentum: bn.momentum, eps: bn.eps)
        let m = try b.read(local.mean), inv = try b.read(local.invStd)
        let eps = Double(bn.eps)
        var sums = [Double](repeating: 0, count: 2 * c + 1)
        for ch in 0..<c {
            let mean = Double(m[ch]), variance = max(1 / (Double(inv[ch]) * Double(inv[ch])) - eps, 0)
            sums[ch] = count * mean
            sums[c + ch] = count * (variance + mean * mean)
        }
        sums[2 * c] = count
        try comm.allreduceSum(&sums)
        let total = sums[2 * c]
        var mean = [Float](repeating: 0, count: c), variance = [Float](repeating: 0, count: c), invStd = [Float](repeating: 0, count: c)
        var unbiased = [Double](repeating: 0, count: c)
        for ch in 0..<c {
            let mu = sums[ch] / total
            let v = max(sums[c + ch] / total - mu * mu, 0)
            mean[ch] = Float(mu); variance[ch] = Float(v); invStd[ch] = Float(1 / (v + eps).squareRoot())
            unbiased[ch] = total > 1 ? v * total / (total - 1) : v
        }
        let meanT = try b.tensor(mean, shape: [c]), varT = try b.tensor(variance, shape: [c]), invT = try b.tensor(invStd, shape: [c])
        let y = try b.batchNormEval(x.value, weight: w.value, bias: bias.value, runningMean: meanT, runningVar: varT, eps: bn.eps)
        let momentum = Double(bn.momentum)
        let rm = try b.read(bn.runningMean.value), rv = try b.read(bn.runningVar.value)
        bn.runningMean.value = try b.tensor((0..<c).map { Float((1 - momentum) * Double(rm[$0]) + momentum * Double(mean[$0])) }, shape: [c])
        bn.runningVar.value = try b.tensor((0..<c).map { Float((1 - momentum) * Double(rv[$0]) + momentum * unbiased[$0]) }, shape: [c])
        let active = self.active, comm = self.comm
        return g.record(y, [x, w, bias]) { dy in
            let r = try b.batchNormBackward(dy, input: x.value, weight: w.value, saved: BatchNormSaved(mean: meanT, invStd: invT))
            let db = try b.read(r.dbias), dw = try b.read(r.dweight)
            var global = db.map(Double.init) + dw.map(Double.init)
            try comm.allreduceSum(&global)
            guard active else { return [try b.zeros(x.shape), r.dweight, r.dbias] }
            let wv = try b.read(w.value)
            let n = Double(localCount)
            var scaleT = [Float](repeating: 0, count: c), shiftT = [Float](repeating: 0, count: c)
            for ch in 0..<c {
                let k = Double(wv[ch]) * Double(invStd[ch])
                shiftT[ch] = Float(k * (Double(db[ch]) / n - global[ch] / total))
                scaleT[ch] = Float(k * (Double(dw[ch]) / n - global[c + ch] / total))
            }
            let correction = try b.batchNormEval(x.value, weight: try b.tensor(scaleT, shape: [c]), bias: try b.tensor(shiftT, shape: [c]),
                                                 runningMean: meanT, runningVar: varT, eps: bn.eps)
            return [try b.add(r.dx, correction), r.dweight, r.dbias]
        }
    }
}

extension Graph {
    /// The sum of `x` over all ranks (forward); the gradient passes through unchanged, as every
    /// rank computes the same loss from the summed value (Barlow Twins' cross-correlation).
    func allreduceSum(_ x: Var, comm: Communicator) throws -> Var {
        var values = try backend.read(x.value).map(Double.init)
        try comm.allreduceSum(&values)
        return record(try backend.tensor(values.map(Float.init), shape: x.shape), [x]) { g in [g] }
    }
}
