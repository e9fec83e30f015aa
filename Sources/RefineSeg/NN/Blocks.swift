/// ConvBN(cin, cout, k, dilation d): conv k×k, padding d·(k−1)/2, no bias → BatchNorm.
/// Names `conv.weight`, `bn.*`.
public final class ConvBN: Module {
    public let conv: Conv2d
    public let bn: BatchNorm

    public init(_ backend: Backend, _ cin: Int, _ cout: Int, kernel: Int, dilation: Int = 1, rng: inout SeededRandom) throws {
        conv = try Conv2d(backend, cin, cout, kernel: kernel, padding: dilation * (kernel - 1) / 2, dilation: dilation,
                          bias: false, rng: &rng)
        bn = try BatchNorm(backend, cout)
    }

    /// `activation` after the batch norm, fused into it. In eval mode the batch norm is folded
    /// into the conv's weights and bias (computed once, then reused, see `folded`) and the
    /// activation into the conv's store, so the layer is one conv kernel.
    public func callAsFunction(_ x: Var, _ g: Graph, activation: NormActivation = .none) throws -> Var {
        guard !g.training else {
            // A training step changes the weights and running statistics in place.
            folded = nil
            return try bn(try conv(x, g), g, activation: activation)
        }
        // Eval records nothing (no gradient), so the backend op is called directly.
        let f = try foldedWeights(g.backend)
        return g.constant(try g.backend.conv2d(x.value, weight: f.weight, bias: f.bias, params: conv.params, activation: activation))
    }

    /// The eval-mode fold and the tensors it was made from. It stays valid while those are the
    /// same tensors (loading a checkpoint replaces them) and no training forward ran since
    /// (training updates them in place, and clears this first).
    private var folded: (weight: Tensor, bias: Tensor, sources: [Tensor])?

    private func foldedWeights(_ b: Backend) throws -> (weight: Tensor, bias: Tensor) {
        let sources = [conv.weight.value, bn.weight.value, bn.bias.value, bn.runningMean.value, bn.runningVar.value]
            + (conv.bias.map { [$0.value] } ?? [])
        if let f = folded, f.sources.count == sources.count,
           zip(f.sources, sources).allSatisfy({ $0 === $1 }) {
            return (f.weight, f.bias)
        }
        let r = try b.foldBatchNorm(convWeight: conv.weight.value, convBias: conv.bias?.value, weight: bn.weight.value,
                                    bias: bn.bias.value, runningMean: bn.runningMean.value, runningVar: bn.runningVar.value,
                                    eps: bn.eps)
        folded = (r.weight, r.bias, sources)
        return r
    }

    /// The layer (no activation) and the channel-attention descriptors of its result: in training
    /// the batch norm computes them in its own pass (`Graph.batchNormDescriptors`); in eval, the
    /// folded conv, then `channelDescriptors`.
    public func withDescriptors(_ x: Var, _ g: Graph) throws -> (y: Var, descriptors: Var) {
        guard !g.training else {
            folded = nil
            return try g.batchNormDescriptors(try conv(x, g), bn)
        }
        let y = try self(x, g)
        return (y, try g.channelDescriptors(y))
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        conv.collect(prefix: join(prefix, "conv"), into: &list)
        bn.collect(prefix: join(prefix, "bn"), into: &list)
    }
}

/// CBAM channel gate: g = sigmoid(fc2(relu(fc1(mean))) + fc2(relu(fc1(max)))), hidden max(4, C/16).
public final class ChannelAttention: Module {
    public let fc1: PointwiseLinear, fc2: PointwiseLinear

    public init(_ backend: Backend, _ channels: Int, rng: inout SeededRandom) throws {
        let hidden = max(4, channels / 16)
        fc1 = try PointwiseLinear(backend, channels, hidden, rng: &rng)
        fc2 = try PointwiseLinear(backend, hidden, channels, rng: &rng)
    }

    /// The mean and max descriptors go through the shared MLP as one (2N, C) batch; the MLP
    /// (fc1, ReLU, fc2) and the gate (the two halves added, σ, times x) are one fused op.
    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var { try self(x, descriptors: try g.channelDescriptors(x), g) }

    /// The gate of x from its stacked descriptors d (2N, C) = `channelDescriptors(x)`, computed by
    /// the producer of x (`ConvBN.withDescriptors`).
    public func callAsFunction(_ x: Var, descriptors d: Var, _ g: Graph) throws -> Var {
        try g.channelMLPGate(x, descriptors: d, w1: g.parameter(fc1.weight), b1: g.parameter(fc1.bias),
                             w2: g.parameter(fc2.weight), b2: g.parameter(fc2.bias))
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        fc1.collect(prefix: join(prefix, "fc1"), into: &list)
        fc2.collect(prefix: join(prefix, "fc2"), into: &list)
    }
}

/// Spatial attention (spatial information compression): g = sigmoid(BN(conv7×7([mean_C, max_C]))).
/// The conv and batch norm are a `ConvBN` (7×7, padding 3, no bias: the same names `conv.weight`,
/// `bn.*`), so eval folds the batch norm into the conv and the sigmoid into its store.
public final class SpatialAttention: Module {
    public let convBN: ConvBN
    public var conv: Conv2d { convBN.conv }
    public var bn: BatchNorm { convBN.bn }

    public init(_ backend: Backend, rng: inout SeededRandom) throws {
        convBN = try ConvBN(backend, 2, 1, kernel: 7, rng: &rng)
    }

    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var { try g.mulPixelGate(x, try gate(x, g)) }

    /// The (N, 1, H, W) gate, the sigmoid fused into the batch norm (eval: into the folded conv).
    public func gate(_ x: Var, _ g: Graph) throws -> Var {
        try convBN(try g.channelMeanMax(x), g, activation: .sigmoid)
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) { convBN.collect(prefix: prefix, into: &list) }
}

/// y = relu(sa(ca(conv2(relu(conv1(x))))) + shortcut(x)).
public final class RefineBlock: Module {
    public let conv1: ConvBN, conv2: ConvBN
    public let ca: ChannelAttention
    public let sa: SpatialAttention
    public let shortcut: ConvBN

    public init(_ backend: Backend, _ cin: Int, _ cout: Int, rng: inout SeededRandom) throws {
        conv1 = try ConvBN(backend, cin, cout, kernel: 3, rng: &rng)
        conv2 = try ConvBN(backend, cout, cout, kernel: 3, rng: &rng)
        ca = try ChannelAttention(backend, cout, rng: &rng)
        sa = try SpatialAttention(backend, rng: &rng)
        shortcut = try ConvBN(backend, cin, cout, kernel: 1, rng: &rng)
    }

    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var {
        // conv2's batch norm computes ca's descriptors in its own pass (training).
        let h = try conv2.withDescriptors(try conv1(x, g, activation: .relu), g)
        let a = try ca(h.y, descriptors: h.descriptors, g)
        // sa's gate, the shortcut add and the ReLU in one kernel.
        return try g.pixelGateAddReLU(a, gate: try sa.gate(a, g), residual: try shortcut(x, g))
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        conv1.collect(prefix: join(prefix, "conv1"), into: &list)
        conv2.collect(prefix: join(prefix, "conv2"), into: &list)
        ca.collect(prefix: join(prefix, "ca"), into: &list)
        sa.collect(prefix: join(prefix, "sa"), into: &list)
        shortcut.collect(prefix: join(prefix, "shortcut"), into: &list)
    }
}

/// The dilated context block at 1/16 resolution: four dilated branches (1, 2, 4, 8) and a
/// global-pool branch, fused by a 1×1 ConvBN and added to the input.
public final class DilatedContext: Module {
    public let branches: [ConvBN]
    public let pool: Conv2d
    public let fuse: ConvBN

    public init(_ backend: Backend, _ channels: Int, rng: inout SeededRandom) throws {
        let b = channels / 4
        branches = try (0..<4).map { i in try ConvBN(backend, channels, b, kernel: 3, dilation: 1 << i, rng: &rng) }
        pool = try Conv2d(backend, channels, b, kernel: 1, bias: true, rng: &rng)
        fuse = try ConvBN(backend, 5 * b, channels, kernel: 1, rng: &rng)
    }

    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var {
        let parts = try branches.map { try $0(x, g, activation: .relu) }
        // The pool branch's ReLU and broadcast are fused into the concat.
        let pooled = try pool(try g.mean(x, axes: 2..<4), g)
        return try g.add(x, try fuse(try g.concatBroadcast(parts, pooled: pooled, relu: true), g, activation: .relu))
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        for (i, branch) in branches.enumerated() { branch.collect(prefix: join(prefix, "branches.\(i)"), into: &list) }
        pool.collect(prefix: join(prefix, "pool"), into: &list)
        fuse.collect(prefix: join(prefix, "fuse"), into: &list)
    }
}
