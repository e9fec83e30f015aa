// The attention ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Attention.swift, CLBackend+Attention.swift). See CONTRIBUTING.md.

// As for the convolutions (Contract+Conv2D.swift), the shapes are checked here, in front of every
// backend, which implements only the `geometry:` methods of `AttentionOps`.
extension AttentionOps {
    /// Channel attention descriptors: mean and max over H, W of x (N, C, H, W) → two (N, C) tensors, one pass.
    public func spatialMeanMax(_ x: Tensor) throws -> (mean: Tensor, max: Tensor) {
        try spatialMeanMax(x, geometry: try AttentionGeometry(x.shape, op: "spatial_mean_max"))
    }

    /// dx from the gradients of both descriptors, each (N, C).
    public func spatialMeanMaxBackward(dMean: Tensor, dMax: Tensor, input x: Tensor) throws -> Tensor {
        try spatialMeanMaxBackward(dMean: dMean, dMax: dMax, input: x,
                                   geometry: try AttentionGeometry.descriptorGradients(dMean: dMean, dMax: dMax, input: x))
    }

    /// Spatial attention input: concat[mean over C, max over C] of x (N, C, H, W) → (N, 2, H, W), one pass.
    public func channelMeanMax(_ x: Tensor) throws -> Tensor { try channelMeanMaxWithArgmax(x).y }

    /// `channelMeanMax`, and the first maximal channel of every pixel (N, 1, H, W) that the backward takes.
    public func channelMeanMaxWithArgmax(_ x: Tensor) throws -> (y: Tensor, argmax: Tensor) {
        try channelMeanMax(x, geometry: try AttentionGeometry(x.shape, op: "channel_mean_max"))
    }

    /// dx (`inputShape`, N·C·H·W) from d of the (N, 2, H, W) output and the forward's arg-max plane;
    /// with `prior` (like dx): prior + dx in the same pass.
    public func channelMeanMaxBackward(_ dy: Tensor, argmax: Tensor, inputShape: Shape, adding prior: Tensor? = nil) throws -> Tensor {
        let op = "channel_mean_max_backward"
        let g = try AttentionGeometry(inputShape, op: op)
        try dy.shape.expect(equal: [g.n, 2, g.h, g.w], op: op)
        try argmax.shape.expect(equal: [g.n, 1, g.h, g.w], op: op + " argmax")
        if let prior { try prior.shape.expect(equal: inputShape, op: op + " prior") }
        return try channelMeanMaxBackward(dy, argmax: argmax, adding: prior, geometry: g)
    }

    /// The same from the forward's input x (its arg-max plane recomputed: one forward pass more).
    public func channelMeanMaxBackward(_ dy: Tensor, input x: Tensor, adding prior: Tensor? = nil) throws -> Tensor {
        let op = "channel_mean_max_backward"
        let g = try AttentionGeometry(x.shape, op: op)
        try dy.shape.expect(equal: [g.n, 2, g.h, g.w], op: op)
        if let prior { try prior.shape.expect(equal: x.shape, op: op + " prior") }
        return try channelMeanMaxBackward(dy, argmax: try channelMeanMax(x, geometry: g).argmax, adding: prior, geometry: g)
    }

    /// Broadcasts (N, C) or (N, C, 1, 1) to (N, C, height, width) (the context block's pool branch);
    /// with `relu`, relu(x) in the same pass.
    public func broadcastSpatial(_ x: Tensor, height: Int, width: Int, relu: Bool = false) throws -> Tensor {
        try broadcastSpatial(x, relu: relu, geometry: try AttentionGeometry.broadcast(x, height: height, width: width))
    }

    /// Backward of `broadcastSpatial`: Σ over H, W of dy (N, C, H, W) → (N, C, 1, 1). With
    /// `reluInput` (the forward's x of a `relu: true` broadcast, N·C values): the ReLU's backward too.
    public func broadcastSpatialBackward(_ dy: Tensor, reluInput: Tensor? = nil) throws -> Tensor {
        let op = "broadcast_spatial_backward"
        let g = try AttentionGeometry(dy.shape, op: op)
        if let x = reluInput, x.count != g.n * g.c || x.shape.dims.first != g.n {
            throw RefineSegError.shapeMismatch(op: op, detail: "relu input \(x.shape) must hold (\(g.n), \(g.c)) for dy \(dy.shape)")
        }
        return try broadcastSpatialBackward(dy, reluInput: reluInput, geometry: g)
    }

    /// The stacked channel-attention descriptors (2N, C) of x (N, C, H, W) and their arg-max (see `AttentionOps`).
    public func channelDescriptors(_ x: Tensor) throws -> (descriptors: Tensor, argmax: Tensor) {
        try channelDescriptors(x, geometry: try AttentionGeometry.descriptorInput(x))
    }

    /// dx (shape `inputShape`) from the descriptors' gradient (2N, C) and the saved arg-max (N, C).
    /// With `prior` (shape `inputShape`): prior + dx in the same pass.
    public func channelDescriptorsBackward(_ d: Tensor, argmax: Tensor, inputShape: Shape, adding prior: Tensor? = nil) throws -> Tensor {
        let g = try AttentionGeometry.descriptorGradients(d, argmax: argmax, inputShape: inputShape)
        if let prior { try prior.shape.expect(equal: inputShape, op: "channel_descriptors_backward prior") }
        return try channelDescriptorsBackward(d, argmax: argmax, adding: prior, geometry: g)
    }

    /// logits = W2·relu(W1·d + b1) + b2 for every row of d (R, C), and the hidden activations (see `AttentionOps`).
    public func channelMLP(_ d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) throws -> (logits: Tensor, hidden: Tensor) {
        try channelMLP(d, w1: w1, b1: b1, w2: w2, b2: b2, geometry: try ChannelMLPGeometry(d, w1: w1, b1: b1, w2: w2, b2: b2))
    }

    /// `channelMLP` of the stacked descriptors d (2N, C) and `channelGate` of x (N, C, H, W) with
    /// its logits in one op: (y, logits (2N, C), hidden (2N, Hd)) (see `AttentionOps`).
    public func channelMLPGate(_ x: Tensor, descriptors d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) throws
        -> (y: Tensor, logits: Tensor, hidden: Tensor) {
        try channelMLPGate(x, descriptors: d, w1: w1, b1: b1, w2: w2, b2: b2,
                           geometry: try ChannelMLPGateGeometry(x, descriptors: d, w1: w1, b1: b1, w2: w2, b2: b2))
    }

    /// Every gradient of `channelMLP` from dlogits (R, C) and the saved hidden activations (R, Hd).
    public func channelMLPBackward(_ dlogits: Tensor, d: Tensor, w1: Tensor, w2: Tensor, hidden: Tensor) throws -> ChannelMLPGradients {
        try channelMLPBackward(dlogits, d: d, w1: w1, w2: w2, hidden: hidden,
                               geometry: try ChannelMLPGeometry.backward(dlogits, d: d, w1: w1, w2: w2, hidden: hidden))
    }

    /// (dx, the MLP's gradients) of `channelMLPGate` from dy (like x) and the state it saved:
    /// logits (2N, C) and hidden (2N, Hd) (see `AttentionOps`).
    public func channelMLPGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor, descriptors d: Tensor, w1: Tensor, w2: Tensor,
                                       hidden: Tensor) throws -> (dx: Tensor, mlp: ChannelMLPGradients) {
        try channelMLPGateBackward(dy, x: x, logits: logits, descriptors: d, w1: w1, w2: w2, hidden: hidden,
                                   geometry: try ChannelMLPGateGeometry.backward(dy, x: x, logits: logits, descriptors: d, w1: w1, w2: w2,
                                                                                 hidden: hidden))
    }

    /// The channel gate from the stacked MLP outputs l (2N, C): y = x · σ(l[n, c] + l[N + n, c]).
    public func channelGate(_ x: Tensor, logits: Tensor) throws -> Tensor {
        try channelGate(x, logits: logits, geometry: try AttentionGeometry.channelGate(x, logits: logits))
    }

    /// (dx, dlogits (2N, C)) of `channelGate` from dy (like x).
    public func channelGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor) throws -> (dx: Tensor, dlogits: Tensor) {
        let g = try AttentionGeometry.channelGate(x, logits: logits)
        try dy.shape.expect(equal: x.shape, op: "channel_gate_backward")
        return try channelGateBackward(dy, x: x, logits: logits, geometry: g)
    }

    /// y = relu(x · gate[n, 0, h, w] + residual), gate (N, 1, H, W), residual like x, in one pass.
    public func pixelGateAddReLU(_ x: Tensor, gate: Tensor, residual: Tensor) throws -> Tensor {
        try pixelGateAddReLU(x, gate: gate, residual: residual,
                             geometry: try AttentionGeometry.pixelGateAdd(x, gate: gate, residual: residual))
    }

    /// (dx, dgate, dresidual) of `pixelGateAddReLU` from dy (like x).
    public func pixelGateAddReLUBackward(_ dy: Tensor, x: Tensor, gate: Tensor, residual: Tensor) throws
        -> (dx: Tensor, dgate: Tensor, dresidual: Tensor) {
        let g = try AttentionGeometry.pixelGateAdd(x, gate: gate, residual: residual)
        try dy.shape.expect(equal: x.shape, op: "pixel_gate_add_relu_backward")
        return try pixelGateAddReLUBackward(dy, x: x, gate: gate, residual: residual, geometry: g)
    }
}

/// (N, C, H, W) of the NCHW tensor an attention op reads (its input, or for `broadcastSpatial`
/// its output), checked by the entry points above.
public struct AttentionGeometry: Sendable {
    public let n: Int, c: Int, h: Int, w: Int
    public var hw: Int { h * w }
    public var shape: Shape { [n, c, h, w] }

    /// A rank-4 (N, C, H, W) shape.
    init(_ shape: Shape, op: String) throws {
        try shape.expect(rank: 4, op: op)
        (n, c, h, w) = shape.nchw
    }

    private init(n: Int, c: Int, h: Int, w: Int) { self.n = n; self.c = c; self.h = h; self.w = w }

    /// A descriptor input; H·W must stay below 2^24 (arg-max indices travel as floats).
    static func descriptorInput(_ x: Tensor) throws -> AttentionGeometry {
        let g = try AttentionGeometry(x.shape, op: "channel_descriptors")
        guard g.hw > 0, g.hw < 1 << 24 else {
            throw RefineSegError.invalidArgument("[channel_descriptors] input \(x.shape) needs 1 ≤ H·W < 2^24")
        }
        return g
    }

    /// The input of `channelDescriptorsBackward`, with d (2N, C) and the arg-max (N, C).
    static func descriptorGradients(_ d: Tensor, argmax: Tensor, inputShape: Shape) throws -> AttentionGeometry {
        guard inputShape.rank == 4 else {
            throw RefineSegError.shapeMismatch(op: "channel_descriptors_backward", detail: "input shape \(inputShape) must be (N, C, H, W)")
        }
        let g = try AttentionGeometry(inputShape, op: "channel_descriptors_backward")
        try d.shape.expect(equal: [2 * g.n, g.c], op: "channel_descriptors_backward")
        try argmax.shape.expect(equal: [g.n, g.c], op: "channel_descriptors_backward")
        return g
    }

    /// dMean and dMax must each hold one value per (n, c) of the NCHW input.
    static func descriptorGradients(dMean: Tensor, dMax: Tensor, input x: Tensor) throws -> AttentionGeometry {
        let g = try AttentionGeometry(x.shape, op: "spatial_mean_max_backward")
        for (name, d) in [("dMean", dMean), ("dMax", dMax)] where d.count != g.n * g.c || d.shape[0] != g.n {
            throw RefineSegError.shapeMismatch(op: "spatial_mean_max_backward",
                                               detail: "\(name) \(d.shape) must be (\(g.n), \(g.c)) for input \(x.shape)")
        }
        return g
    }

    /// The output (N, C, height, width) of broadcasting x, given as (N, C) or (N, C, 1, 1).
    static func broadcast(_ x: Tensor, height: Int, width: Int) throws -> AttentionGeometry {
        let op = "broadcast_spatial"
        guard x.shape.rank == 2 || (x.shape.rank == 4 && x.shape[2] == 1 && x.shape[3] == 1) else {
            throw RefineSegError.shapeMismatch(op: op, detail: "input \(x.shape) must be (N, C) or (N, C, 1, 1)")
        }
        guard height > 0, width > 0 else {
            throw RefineSegError.invalidArgument("[\(op)] target size \(height)×\(width) must be positive")
        }
        return AttentionGeometry(n: x.shape[0], c: x.shape[1], h: height, w: width)
    }

    static func channelGate(_ x: Tensor, logits: Tensor) throws -> GateGeometry {
        let g = try GateGeometry(x, op: "channel_gate")
        try logits.shape.expect(equal: [2 * g.n, g.c], op: "channel_gate")
        return g
    }

    static func pixelGateAdd(_ x: Tensor, gate: Tensor, residual: Tensor) throws -> GateGeometry {
        let g = try checkPixelGate(x, gate)
        try residual.shape.expect(equal: x.shape, op: "pixel_gate_add_relu")
        return g
    }
}

/// (R, C, Hd) of the channel-attention MLP: d (R, C), W1 (Hd, C), b1 (Hd), W2 (C, Hd), b2 (C).
public struct ChannelMLPGeometry: Sendable {
    public let rows: Int, c: Int, hidden: Int

    init(_ d: Tensor, w1: Tensor, b1: Tensor? = nil, w2: Tensor, b2: Tensor? = nil, op: String = "channel_mlp") throws {
        try d.shape.expect(rank: 2, op: op)
        try w1.shape.expect(rank: 2, op: op)
        let (r, c, hd) = (d.shape[0], d.shape[1], w1.shape[0])
        try w1.shape.expect(equal: [hd, c], op: op + " w1")
        try w2.shape.expect(equal: [c, hd], op: op + " w2")
        if let b1 { try b1.shape.expect(equal: [hd], op: op + " b1") }
        if let b2 { try b2.shape.expect(equal: [c], op: op + " b2") }
        guard r > 0, c > 0, hd > 0 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "d \(d.shape) and w1 \(w1.shape) need R, C, Hd ≥ 1")
        }
        rows = r; self.c = c; hidden = hd
    }

    /// The backward's gradient and saved state: dlogits like d, hidden (R, Hd).
    static func backward(_ dl: Tensor, d: Tensor, w1: Tensor, w2: Tensor, hidden: Tensor) throws -> ChannelMLPGeometry {
        let g = try ChannelMLPGeometry(d, w1: w1, w2: w2, op: "channel_mlp_backward")
        try dl.shape.expect(equal: d.shape, op: "channel_mlp_backward dlogits")
        try hidden.shape.expect(equal: [g.rows, g.hidden], op: "channel_mlp_backward hidden")
        return g
    }
}

/// `channelMLPGate`: x (N, C, H, W) and the MLP on its stacked descriptors d (2N, C).
public struct ChannelMLPGateGeometry: Sendable {
    public let gate: GateGeometry, mlp: ChannelMLPGeometry

    init(_ x: Tensor, descriptors d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) throws {
        let op = "channel_mlp_gate"
        gate = try GateGeometry(x, op: op)
        mlp = try ChannelMLPGeometry(d, w1: w1, b1: b1, w2: w2, b2: b2, op: op)
        try d.shape.expect(equal: [2 * gate.n, gate.c], op: op + " descriptors")
    }

    private init(gate: GateGeometry, mlp: ChannelMLPGeometry) { self.gate = gate; self.mlp = mlp }

    /// The backward's gradient dy (like x) and saved state: logits (2N, C) like d, hidden (2N, Hd).
    static func backward(_ dy: Tensor, x: Tensor, logits: Tensor, descriptors d: Tensor, w1: Tensor, w2: Tensor,
                         hidden: Tensor) throws -> ChannelMLPGateGeometry {
        let op = "channel_mlp_gate_backward"
        let gate = try GateGeometry(x, op: op)
        try dy.shape.expect(equal: x.shape, op: op + " dy")
        try d.shape.expect(equal: [2 * gate.n, gate.c], op: op + " descriptors")
        try logits.shape.expect(equal: d.shape, op: op + " logits")
        let mlp = try ChannelMLPGeometry(d, w1: w1, w2: w2, op: op)
        try hidden.shape.expect(equal: [mlp.rows, mlp.hidden], op: op + " hidden")
        return ChannelMLPGateGeometry(gate: gate, mlp: mlp)
    }
}
