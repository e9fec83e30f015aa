// The elementwise ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Elementwise.swift, CLBackend+Elementwise.swift). See CONTRIBUTING.md.

/// Two tensors of one shape (the binary elementwise ops), `count` values each.
public struct BinaryGeometry: Sendable {
    public let count: Int

    init(_ a: Tensor, _ b: Tensor, op: String) throws {
        try a.shape.expect(equal: b.shape, op: op)
        count = a.count
    }
}

/// A checked channel concat of NCHW parts with equal N, H, W: the output shape and each part's channels.
public struct ConcatGeometry: Sendable {
    public let output: Shape
    public let channels: [Int]

    init(_ parts: [Tensor]) throws {
        guard let first = parts.first else { throw RefineSegError.invalidArgument("[concat] no inputs") }
        try first.shape.expect(rank: 4, op: "concat")
        var channels = [Int]()
        for p in parts {
            try p.shape.expect(rank: 4, op: "concat")
            guard p.shape[0] == first.shape[0], p.shape[2] == first.shape[2], p.shape[3] == first.shape[3] else {
                throw RefineSegError.shapeMismatch(op: "concat", detail: "\(first.shape) vs \(p.shape) differ outside the channel axis")
            }
            channels.append(p.shape[1])
        }
        output = [first.shape[0], channels.reduce(0, +), first.shape[2], first.shape[3]]
        self.channels = channels
    }

    /// Parts of `channels` channels, each (n, c, h, w) (already checked by `ConcatBroadcastGeometry`).
    init(channels: [Int], n: Int, h: Int, w: Int) {
        self.channels = channels
        output = [n, channels.reduce(0, +), h, w]
    }
}

/// `concatBroadcast`: parts (N, Ci, H, W) with `channels` Ci, then the pooled part's `pooled`
/// channels broadcast over H, W; the output (N, ΣCi + Cb, H, W).
public struct ConcatBroadcastGeometry: Sendable {
    public let n: Int, h: Int, w: Int
    public let channels: [Int]
    public let pooled: Int
    public var hw: Int { h * w }
    public var output: Shape { [n, channels.reduce(0, +) + pooled, h, w] }

    /// The forward's parts and pooled part, (N, Cb, 1, 1) or (N, Cb).
    init(_ parts: [Tensor], pooled: Tensor) throws {
        let c = try ConcatGeometry(parts)
        (n, _, h, w) = c.output.nchw
        let b = try AttentionGeometry.broadcast(pooled, height: h, width: w)
        guard b.n == n else {
            throw RefineSegError.shapeMismatch(op: "concat_broadcast", detail: "pooled \(pooled.shape) vs parts of \(c.output): N differs")
        }
        channels = c.channels
        self.pooled = b.c
    }

    /// The backward's dy (N, C, H, W) and the forward's parts' channels (the pooled part has the rest).
    init(_ dy: Tensor, channels: [Int]) throws {
        let op = "concat_broadcast_backward"
        try dy.shape.expect(rank: 4, op: op)
        (n, _, h, w) = dy.shape.nchw
        let total = channels.reduce(0, +)
        guard !channels.isEmpty, channels.allSatisfy({ $0 > 0 }), total < dy.shape[1] else {
            throw RefineSegError.shapeMismatch(op: op, detail: "parts of \(channels) channels and at least one pooled channel must make dy \(dy.shape)")
        }
        self.channels = channels
        pooled = dy.shape[1] - total
    }
}

/// A checked channel slice `start ..< start + count` of an NCHW tensor, and its output shape.
public struct SliceGeometry: Sendable {
    public let start: Int, count: Int
    public let output: Shape

    init(_ x: Tensor, start: Int, count: Int) throws {
        try x.shape.expect(rank: 4, op: "slice")
        guard start >= 0, count > 0, start + count <= x.shape[1] else {
            throw RefineSegError.shapeMismatch(op: "slice", detail: "channels \(start)..<\(start + count) outside \(x.shape)")
        }
        self.start = start; self.count = count
        output = [x.shape[0], count, x.shape[2], x.shape[3]]
    }
}

// As for the convolutions (Contract+Conv2D.swift), the shapes of the binary ops, concat, slice and
// the gates are checked here, in front of every backend, which implements only the `geometry:` methods.
extension ElementwiseOps {
    public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try add(a, b, geometry: try BinaryGeometry(a, b, op: "add")) }
    public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try sub(a, b, geometry: try BinaryGeometry(a, b, op: "sub")) }
    public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try mul(a, b, geometry: try BinaryGeometry(a, b, op: "mul")) }

    /// In place: `target += alpha * source` (gradient accumulation).
    public func accumulate(_ target: Tensor, _ source: Tensor, alpha: Float) throws {
        try accumulate(target, source, alpha: alpha, geometry: try BinaryGeometry(target, source, op: "accumulate"))
    }

    /// dx = dy where y > 0, else 0 (y is relu's output).
    public func reluBackward(_ dy: Tensor, output y: Tensor) throws -> Tensor {
        try reluBackward(dy, output: y, geometry: try BinaryGeometry(dy, y, op: "relu_backward"))
    }

    /// dx = dy · y · (1 − y) (y is sigmoid's output).
    public func sigmoidBackward(_ dy: Tensor, output y: Tensor) throws -> Tensor {
        try sigmoidBackward(dy, output: y, geometry: try BinaryGeometry(dy, y, op: "sigmoid_backward"))
    }

    /// Channel concat of NCHW tensors with equal N, H, W.
    public func concatChannels(_ parts: [Tensor]) throws -> Tensor {
        try concatChannels(parts, geometry: try ConcatGeometry(parts))
    }

    /// `concatChannels` of `parts` and the pooled part (N, Cb, 1, 1) or (N, Cb) broadcast over
    /// their H, W (with `relu`, relu of it) as the last Cb channels, in one op (see `ElementwiseOps`).
    public func concatBroadcast(_ parts: [Tensor], pooled: Tensor, relu: Bool = false) throws -> Tensor {
        try concatBroadcast(parts, pooled: pooled, relu: relu, geometry: try ConcatBroadcastGeometry(parts, pooled: pooled))
    }

    /// Backward of `concatBroadcast` from dy: the parts' gradients (the forward's parts had
    /// `channels`), and the pooled part's (N, Cb, 1, 1), Cb the rest of dy's channels; with
    /// `reluInput` (the forward's pooled part, N·Cb values) the ReLU's backward too.
    public func concatBroadcastBackward(_ dy: Tensor, channels: [Int], reluInput: Tensor? = nil) throws -> (parts: [Tensor], pooled: Tensor) {
        let g = try ConcatBroadcastGeometry(dy, channels: channels)
        if let x = reluInput, x.count != g.n * g.pooled || x.shape.dims.first != g.n {
            throw RefineSegError.shapeMismatch(op: "concat_broadcast_backward",
                                               detail: "relu input \(x.shape) must hold (\(g.n), \(g.pooled)) for dy \(dy.shape)")
        }
        return try concatBroadcastBackward(dy, reluInput: reluInput, geometry: g)
    }

    /// Channels `start ..< start + count` of an NCHW tensor.
    public func sliceChannels(_ x: Tensor, start: Int, count: Int) throws -> Tensor {
        try sliceChannels(x, geometry: try SliceGeometry(x, start: start, count: count))
    }

    /// y = x[n, c, h, w] · gate[n, c]   (channel gate, gate shape (N, C)).
    public func mulChannelGate(_ x: Tensor, _ gate: Tensor) throws -> Tensor {
        try mulChannelGate(x, gate, geometry: try checkChannelGate(x, gate))
    }

    /// (dx, dgate) of `mulChannelGate` from dy (like x).
    public func mulChannelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor) throws -> (dx: Tensor, dgate: Tensor) {
        let g = try checkChannelGate(x, gate)
        try dy.shape.expect(equal: x.shape, op: "mul_channel_gate_backward")
        return try mulChannelGateBackward(dy, x: x, gate: gate, geometry: g)
    }

    /// y = x[n, c, h, w] · gate[n, 0, h, w]   (pixel gate, gate shape (N, 1, H, W)).
    public func mulPixelGate(_ x: Tensor, _ gate: Tensor) throws -> Tensor {
        try mulPixelGate(x, gate, geometry: try checkPixelGate(x, gate))
    }

    /// (dx, dgate) of `mulPixelGate` from dy (like x).
    public func mulPixelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor) throws -> (dx: Tensor, dgate: Tensor) {
        let g = try checkPixelGate(x, gate)
        try dy.shape.expect(equal: x.shape, op: "mul_pixel_gate_backward")
        return try mulPixelGateBackward(dy, x: x, gate: gate, geometry: g)
    }
}

/// (N, C, H·W) of an NCHW tensor x whose gate was checked against it (`checkChannelGate`,
/// `checkPixelGate`, `AttentionGeometry.channelGate`, `AttentionGeometry.pixelGateAdd`).
public struct GateGeometry: Sendable {
    public let n: Int, c: Int, hw: Int

    /// x must be (N, C, H, W).
    init(_ x: Tensor, op: String) throws {
        try x.shape.expect(rank: 4, op: op)
        let (n, c, h, w) = x.shape.nchw
        self.n = n; self.c = c; hw = h * w
    }
}

func checkChannelGate(_ x: Tensor, _ gate: Tensor) throws -> GateGeometry {
    let g = try GateGeometry(x, op: "mul_channel_gate")
    guard gate.count == g.n * g.c, gate.shape.dims.first == g.n else {
        throw RefineSegError.shapeMismatch(op: "mul_channel_gate", detail: "x \(x.shape) with gate \(gate.shape), expected [\(g.n), \(g.c)]")
    }
    return g
}

func checkPixelGate(_ x: Tensor, _ gate: Tensor) throws -> GateGeometry {
    let g = try GateGeometry(x, op: "mul_pixel_gate")
    let (n, _, h, w) = x.shape.nchw
    guard gate.shape == [n, 1, h, w] else {
        throw RefineSegError.shapeMismatch(op: "mul_pixel_gate", detail: "x \(x.shape) with gate \(gate.shape), expected [\(n), 1, \(h), \(w)]")
    }
    return g
}
