// The elementwise ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Elementwise.swift, CLBackend+Elementwise.swift). See CONTRIBUTING.md.

/// Validates a channel concat and returns the output shape.
func concatShapes(_ parts: [Tensor]) throws -> (output: Shape, channels: [Int]) {
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
    return ([first.shape[0], channels.reduce(0, +), first.shape[2], first.shape[3]], channels)
}

func sliceShape(_ x: Tensor, start: Int, count: Int) throws -> Shape {
    try x.shape.expect(rank: 4, op: "slice")
    guard start >= 0, count > 0, start + count <= x.shape[1] else {
        throw RefineSegError.shapeMismatch(op: "slice", detail: "channels \(start)..<\(start + count) outside \(x.shape)")
    }
    return [x.shape[0], count, x.shape[2], x.shape[3]]
}

func checkChannelGate(_ x: Tensor, _ gate: Tensor) throws {
    try x.shape.expect(rank: 4, op: "mul_channel_gate")
    let (n, c, _, _) = x.shape.nchw
    guard gate.count == n * c, gate.shape.dims.first == n else {
        throw RefineSegError.shapeMismatch(op: "mul_channel_gate", detail: "x \(x.shape) with gate \(gate.shape), expected [\(n), \(c)]")
    }
}

func checkPixelGate(_ x: Tensor, _ gate: Tensor) throws {
    try x.shape.expect(rank: 4, op: "mul_pixel_gate")
    let (n, _, h, w) = x.shape.nchw
    guard gate.shape == [n, 1, h, w] else {
        throw RefineSegError.shapeMismatch(op: "mul_pixel_gate", detail: "x \(x.shape) with gate \(gate.shape), expected [\(n), 1, \(h), \(w)]")
    }
}
