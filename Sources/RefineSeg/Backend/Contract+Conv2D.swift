/// The shapes of one 2-D convolution: x (N, Cin, H, W) ⊛ weight (Cout, Cin, KH, KW) → (N, Cout, OH, OW).
/// Shared by both backends so that every shape error reads the same.
struct Conv2DGeometry: Hashable, CustomStringConvertible {
    let n: Int, cin: Int, h: Int, w: Int
    let cout: Int, kh: Int, kw: Int
    let oh: Int, ow: Int
    let params: Conv2DParams

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

    var inputShape: Shape { [n, cin, h, w] }
    var weightShape: Shape { [cout, cin, kh, kw] }
    var outputShape: Shape { [n, cout, oh, ow] }
    /// 2·N·Cout·OH·OW·Cin·KH·KW: the FLOPs of the forward pass, and of each backward pass.
    var flops: Double { 2 * Double(n * oh * ow) * Double(cout * cin * kh * kw) }
    /// Multiply-adds of one pass (forward, backward-data and backward-weight each do this many).
    var macs: Int { n * cout * oh * ow * cin * kh * kw }

    var description: String { "x \(inputShape) w \(weightShape) \(params)" }
}

/// The shapes of a kernel-2, stride-2 transposed convolution:
/// x (N, Cin, H, W), weight (Cin, Cout, 2, 2) → y (N, Cout, 2H, 2W).
struct ConvTranspose2x2Geometry {
    let n: Int, cin: Int, h: Int, w: Int, cout: Int

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

    var inputShape: Shape { [n, cin, h, w] }
    var weightShape: Shape { [cin, cout, 2, 2] }
    var outputShape: Shape { [n, cout, 2 * h, 2 * w] }
    /// 2·N·Cin·H·W·Cout·4: the FLOPs of the forward pass, and of each backward pass.
    var flops: Double { 2 * Double(n * h * w) * Double(cin * cout * 4) }
}
