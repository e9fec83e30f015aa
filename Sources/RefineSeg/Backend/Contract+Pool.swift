// The pool ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Pool.swift, CLBackend+Pool.swift). See CONTRIBUTING.md.

// As for the convolutions (Contract+Conv2D.swift), the shapes are checked here, in front of every
// backend, which implements only the `geometry:` methods of `ConvOps`.
extension ConvOps {
    /// Max pool 2×2, stride 2 (H, W even or floored) → (N, C, H/2, W/2).
    public func maxPool2x2(_ x: Tensor) throws -> Tensor {
        try maxPool2x2(x, geometry: try MaxPool2x2Geometry(x.shape, op: "max_pool2d"))
    }

    /// Routes dy to the first maximal element of each window of x; with `prior` (like x), prior + dx
    /// in the same pass.
    public func maxPool2x2Backward(_ dy: Tensor, input x: Tensor, adding prior: Tensor? = nil) throws -> Tensor {
        let g = try MaxPool2x2Geometry(x.shape, op: "max_pool2d_backward")
        try dy.shape.expect(equal: g.outputShape, op: "max_pool2d_backward dy")
        if let prior { try prior.shape.expect(equal: x.shape, op: "max_pool2d_backward prior") }
        return try maxPool2x2Backward(dy, input: x, geometry: g, adding: prior)
    }
}

/// The shapes of a 2×2, stride-2 max pool: x (N, C, H, W) → (N, C, ⌊H/2⌋, ⌊W/2⌋) (odd sizes floor, as in PyTorch).
public struct MaxPool2x2Geometry: Sendable {
    public let n: Int, c: Int, h: Int, w: Int
    public var oh: Int { h / 2 }
    public var ow: Int { w / 2 }
    public var inputShape: Shape { [n, c, h, w] }
    public var outputShape: Shape { [n, c, oh, ow] }

    init(_ input: Shape, op: String) throws {
        try input.expect(rank: 4, op: op)
        (n, c, h, w) = (input[0], input[1], input[2], input[3])
        guard h >= 2, w >= 2 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "input \(input) is smaller than the 2×2 window")
        }
    }
}
