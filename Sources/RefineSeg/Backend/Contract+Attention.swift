// The attention ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Attention.swift, CLBackend+Attention.swift). See CONTRIBUTING.md.

/// Shape rules shared by both backends' attention ops.
enum AttentionGeometry {
    /// (N, C, H·W) of a descriptor input; H·W must stay below 2^24 (arg-max indices travel as floats).
    static func descriptorInput(_ x: Tensor) throws -> (n: Int, c: Int, hw: Int) {
        try x.shape.expect(rank: 4, op: "channel_descriptors")
        let (n, c, h, w) = x.shape.nchw
        guard h * w > 0, h * w < 1 << 24 else {
            throw RefineSegError.invalidArgument("[channel_descriptors] input \(x.shape) needs 1 ≤ H·W < 2^24")
        }
        return (n, c, h * w)
    }

    static func descriptorGradients(_ d: Tensor, argmax: Tensor, inputShape: Shape) throws -> (n: Int, c: Int, hw: Int) {
        guard inputShape.rank == 4 else {
            throw RefineSegError.shapeMismatch(op: "channel_descriptors_backward", detail: "input shape \(inputShape) must be (N, C, H, W)")
        }
        let (n, c, h, w) = inputShape.nchw
        try d.shape.expect(equal: [2 * n, c], op: "channel_descriptors_backward")
        try argmax.shape.expect(equal: [n, c], op: "channel_descriptors_backward")
        return (n, c, h * w)
    }

    static func channelGate(_ x: Tensor, logits: Tensor) throws -> (n: Int, c: Int, hw: Int) {
        try x.shape.expect(rank: 4, op: "channel_gate")
        let (n, c, h, w) = x.shape.nchw
        try logits.shape.expect(equal: [2 * n, c], op: "channel_gate")
        return (n, c, h * w)
    }

    static func pixelGateAdd(_ x: Tensor, gate: Tensor, residual: Tensor) throws -> (n: Int, c: Int, hw: Int) {
        try checkPixelGate(x, gate)
        try residual.shape.expect(equal: x.shape, op: "pixel_gate_add_relu")
        let (n, c, h, w) = x.shape.nchw
        return (n, c, h * w)
    }

    /// (R, C, Hd) of the channel-attention MLP: d (R, C), W1 (Hd, C), b1 (Hd), W2 (C, Hd), b2 (C).
    static func channelMLP(_ d: Tensor, w1: Tensor, b1: Tensor? = nil, w2: Tensor, b2: Tensor? = nil,
                           op: String = "channel_mlp") throws -> (rows: Int, c: Int, hidden: Int) {
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
        return (r, c, hd)
    }

    /// The backward's gradient and saved state: dlogits like d, hidden (R, Hd).
    static func channelMLPBackward(_ dl: Tensor, d: Tensor, w1: Tensor, w2: Tensor, hidden: Tensor) throws -> (rows: Int, c: Int, hidden: Int) {
        let g = try channelMLP(d, w1: w1, w2: w2, op: "channel_mlp_backward")
        try dl.shape.expect(equal: d.shape, op: "channel_mlp_backward dlogits")
        try hidden.shape.expect(equal: [g.rows, g.hidden], op: "channel_mlp_backward hidden")
        return g
    }

    /// (N, C) of a per-channel tensor given as (N, C) or (N, C, 1, 1).
    static func channels(of x: Tensor, op: String, height: Int, width: Int) throws -> (n: Int, c: Int) {
        guard x.shape.rank == 2 || (x.shape.rank == 4 && x.shape[2] == 1 && x.shape[3] == 1) else {
            throw RefineSegError.shapeMismatch(op: op, detail: "input \(x.shape) must be (N, C) or (N, C, 1, 1)")
        }
        guard height > 0, width > 0 else {
            throw RefineSegError.invalidArgument("[\(op)] target size \(height)×\(width) must be positive")
        }
        return (x.shape[0], x.shape[1])
    }

    /// dMean and dMax must each hold one value per (n, c) of the NCHW input.
    static func checkDescriptorGradients(dMean: Tensor, dMax: Tensor, input x: Tensor) throws {
        try x.shape.expect(rank: 4, op: "spatial_mean_max_backward")
        let (n, c, _, _) = x.shape.nchw
        for (name, d) in [("dMean", dMean), ("dMax", dMax)] where d.count != n * c || d.shape[0] != n {
            throw RefineSegError.shapeMismatch(op: "spatial_mean_max_backward",
                                               detail: "\(name) \(d.shape) must be (\(n), \(c)) for input \(x.shape)")
        }
    }
}
