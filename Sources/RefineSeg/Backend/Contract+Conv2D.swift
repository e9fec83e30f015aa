// The convolution ops' contract (CPUBackend+Conv2D.swift, CLBackend+Conv2D.swift; see CONTRIBUTING.md).
// The public entry points below check the shapes once, in front of every backend, and hand the
// backend the checked geometry: a backend implements only the `geometry:` methods of `ConvOps`,
// so it cannot skip a check.

extension ConvOps {
    /// x (N, Cin, H, W), weight (Cout, Cin, KH, KW), bias (Cout) or nil → (N, Cout, OH, OW), with
    /// `activation` applied in the same kernel (eval only; see `ConvOps.conv2d(_:weight:bias:geometry:activation:)`).
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, params: Conv2DParams, activation: NormActivation) throws -> Tensor {
        let g = try Conv2DGeometry(input: x.shape, weight: weight.shape, params: params, op: "conv2d")
        if let bias { try bias.shape.expect(equal: [g.cout], op: "conv2d bias") }
        return try conv2d(x, weight: weight, bias: bias, geometry: g, activation: activation)
    }

    /// dx (shape `inputShape`) from dy (N, Cout, OH, OW); with `prior` (shaped like dx), prior + dx
    /// in the same pass (a gradient that already reached x, which feeds several layers).
    public func conv2dBackwardData(_ dy: Tensor, weight: Tensor, inputShape: Shape, params: Conv2DParams,
                                   adding prior: Tensor? = nil) throws -> Tensor {
        let g = try Conv2DGeometry(input: inputShape, weight: weight.shape, params: params, op: "conv2d_backward_data")
        try dy.shape.expect(equal: g.outputShape, op: "conv2d_backward_data dy")
        if let prior { try prior.shape.expect(equal: inputShape, op: "conv2d_backward_data prior") }
        return try conv2dBackwardData(dy, weight: weight, geometry: g, adding: prior)
    }

    /// dweight (Cout, Cin, KH, KW) from dy and x. (The bias gradient is `sumPerChannel(dy)`.)
    public func conv2dBackwardWeight(_ dy: Tensor, input x: Tensor, weightShape: Shape, params: Conv2DParams) throws -> Tensor {
        let g = try Conv2DGeometry(input: x.shape, weight: weightShape, params: params, op: "conv2d_backward_weight")
        try dy.shape.expect(equal: g.outputShape, op: "conv2d_backward_weight dy")
        return try conv2dBackwardWeight(dy, input: x, geometry: g)
    }

    /// Transposed conv, kernel 2, stride 2: x (N, Cin, H, W), weight (Cin, Cout, 2, 2), bias (Cout) → (N, Cout, 2H, 2W).
    public func convTranspose2x2(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        let g = try ConvTranspose2x2Geometry(input: x.shape, weight: weight.shape, op: "conv_transpose2d")
        if let bias { try bias.shape.expect(equal: [g.cout], op: "conv_transpose2d bias") }
        return try convTranspose2x2(x, weight: weight, bias: bias, geometry: g)
    }

    /// dx (N, Cin, H, W) from dy (N, Cout, 2H, 2W).
    public func convTranspose2x2BackwardData(_ dy: Tensor, weight: Tensor) throws -> Tensor {
        let g = try ConvTranspose2x2Geometry(gradient: dy.shape, weight: weight.shape, op: "conv_transpose2d_backward_data")
        return try convTranspose2x2BackwardData(dy, weight: weight, geometry: g)
    }

    /// dweight (Cin, Cout, 2, 2) from dy (N, Cout, 2H, 2W) and x (N, Cin, H, W).
    public func convTranspose2x2BackwardWeight(_ dy: Tensor, input x: Tensor) throws -> Tensor {
        let g = try ConvTranspose2x2Geometry(input: x.shape, gradient: dy.shape, op: "conv_transpose2d_backward_weight")
        return try convTranspose2x2BackwardWeight(dy, input: x, geometry: g)
    }
}

/// The shapes of one 2-D convolution: x (N, Cin, H, W) ⊛ weight (Cout, Cin, KH, KW) → (N, Cout, OH, OW).
/// Checked in front of every backend, so that every shape error reads the same.
public struct Conv2DGeometry: Hashable, Sendable, CustomStringConvertible {
    public let n: Int, cin: Int, h: Int, w: Int
    public let cout: Int, kh: Int, kw: Int
    public let oh: Int, ow: Int
    public let params: Conv2DParams

    init(input: Shape, weight: Shape, params: Conv2DParams, op: String) throws {
        try input.expect(rank: 4, op: op, name: "input")
        try weight.expect(rank: 4, op: op, name: "weight")
        guard input[1] == weight[1] else {
            throw RefineSegError.shapeMismatch(op: op, detail: "input \(input) has \(input[1]) channels, weight \(weight) expects \(weight[1])")
        }
        guard params.strideH > 0, params.strideW > 0, params.dilationH > 0, params.dilationW > 0,
              params.padH >= 0, params.padW >= 0 else {
            throw RefineSegError.invalidArgument("[\(op)] invalid geometry \(params)")
        }
        (n, cin, h, w) = (input[0], input[1], input[2], input[3])
        (cout, kh, kw) = (weight[0], weight[2], weight[3])
        (oh, ow) = params.outputSize(h: h, w: w, kh: kh, kw: kw)
        self.params = params
        guard oh > 0, ow > 0 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "kernel \(weight) with \(params) does not fit input \(input)")
        }
    }

    public var inputShape: Shape { [n, cin, h, w] }
    public var weightShape: Shape { [cout, cin, kh, kw] }
    public var outputShape: Shape { [n, cout, oh, ow] }
    /// 2·N·Cout·OH·OW·Cin·KH·KW: the FLOPs of the forward pass, and of each backward pass.
    public var flops: Double { 2 * Double(n * oh * ow) * Double(cout * cin * kh * kw) }
    /// Multiply-adds of one pass (forward, backward-data and backward-weight each do this many).
    public var macs: Int { n * cout * oh * ow * cin * kh * kw }

    public var description: String { "x \(inputShape) w \(weightShape) \(params)" }
}

/// The shapes of a kernel-2, stride-2 transposed convolution:
/// x (N, Cin, H, W), weight (Cin, Cout, 2, 2) → y (N, Cout, 2H, 2W).
public struct ConvTranspose2x2Geometry: Hashable, Sendable {
    public let n: Int, cin: Int, h: Int, w: Int, cout: Int

    init(input: Shape, weight: Shape, op: String) throws {
        try input.expect(rank: 4, op: op, name: "input")
        try weight.expect(rank: 4, op: op, name: "weight")
        guard weight[0] == input[1], weight[2] == 2, weight[3] == 2 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "weight \(weight) must be (\(input[1]), Cout, 2, 2) for input \(input)")
        }
        (n, cin, h, w, cout) = (input[0], input[1], input[2], input[3], weight[1])
    }

    init(gradient dy: Shape, weight: Shape, op: String) throws {
        try dy.expect(rank: 4, op: op, name: "dy")
        try weight.expect(rank: 4, op: op, name: "weight")
        guard weight[1] == dy[1], weight[2] == 2, weight[3] == 2, dy[2] % 2 == 0, dy[3] % 2 == 0 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "dy \(dy) does not match weight \(weight)")
        }
        (n, cin, h, w, cout) = (dy[0], weight[0], dy[2] / 2, dy[3] / 2, dy[1])
    }

    init(input: Shape, gradient dy: Shape, op: String) throws {
        try input.expect(rank: 4, op: op, name: "input")
        try dy.expect(rank: 4, op: op, name: "dy")
        guard dy[0] == input[0], dy[2] == 2 * input[2], dy[3] == 2 * input[3] else {
            throw RefineSegError.shapeMismatch(op: op, detail: "dy \(dy) must be (\(input[0]), Cout, \(2 * input[2]), \(2 * input[3])) for input \(input)")
        }
        (n, cin, h, w, cout) = (input[0], input[1], input[2], input[3], dy[1])
    }

    public var inputShape: Shape { [n, cin, h, w] }
    public var weightShape: Shape { [cin, cout, 2, 2] }
    public var outputShape: Shape { [n, cout, 2 * h, 2 * w] }
    /// 2·N·Cin·H·W·Cout·4: the FLOPs of the forward pass, and of each backward pass.
    public var flops: Double { 2 * Double(n * h * w) * Double(cin * cout * 4) }
}
