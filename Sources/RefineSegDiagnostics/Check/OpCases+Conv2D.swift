import RefineSeg

/// One convolution-family layer at one shape: the unit that the op cases and the kernel
/// bench (`refineseg bench kernels`) share, so that every benched shape is also a checked one.
public struct ConvLayerSpec: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case conv2d
        case convTranspose2x2 = "conv_transpose2d"
        case maxPool2x2 = "max_pool2d"
    }

    /// The DFR-UNet layer name(s) using this geometry, or a label for test geometries.
    public var name: String
    public var kind: Kind
    /// x (N, C, H, W).
    public var input: Shape
    /// OIHW for conv2d, (Cin, Cout, 2, 2) for the transposed conv, empty for pooling.
    public var weight: Shape
    public var params: Conv2DParams
    public var bias: Bool

    public init(_ name: String, _ kind: Kind, input: Shape, weight: Shape = [], params: Conv2DParams = Conv2DParams(),
                bias: Bool = false) {
        self.name = name; self.kind = kind; self.input = input; self.weight = weight
        self.params = params; self.bias = bias
    }

    /// Output shape.
    public var output: Shape {
        let (n, _, h, w) = input.nchw
        switch kind {
        case .conv2d:
            let o = params.outputSize(h: h, w: w, kh: weight[2], kw: weight[3])
            return [n, weight[0], o.h, o.w]
        case .convTranspose2x2: return [n, weight[1], 2 * h, 2 * w]
        case .maxPool2x2: return [n, input[1], h / 2, w / 2]
        }
    }

    /// Multiply-adds × 2 of one pass (the same for forward, backward-data and backward-weight);
    /// for pooling, the number of compared elements.
    public var flopsPerPass: Double {
        switch kind {
        case .conv2d: return 2 * Double(output.count) * Double(weight[1] * weight[2] * weight[3])
        case .convTranspose2x2: return 2 * Double(input.count) * Double(weight[1] * 4)
        case .maxPool2x2: return Double(output.count * 4)
        }
    }

    public var description: String {
        func dims(_ s: Shape) -> String { s.dims.map(String.init).joined(separator: "x") }
        let p = params
        let geometry = p.strideH == p.strideW && p.padH == p.padW && p.dilationH == p.dilationW
            ? "s\(p.strideH) p\(p.padH) d\(p.dilationH)"
            : "s\(p.strideH)x\(p.strideW) p\(p.padH)x\(p.padW) d\(p.dilationH)x\(p.dilationW)"
        switch kind {
        case .conv2d: return "x\(dims(input)) w\(dims(weight)) \(geometry)\(bias ? " +b" : "")"
        case .convTranspose2x2: return "x\(dims(input)) w\(dims(weight))\(bias ? " +b" : "")"
        case .maxPool2x2: return "x\(dims(input))"
        }
    }

    /// The op case: inputs (x, weight, bias?) → output; backward gives (dx, dweight, dbias?).
    public func opCase(gradCheck: Bool = true, tolerance: Tolerance = .sums, fill: InputFill = .uniform(-1, 1)) -> OpCase {
        let label = name.isEmpty ? description : "\(name) \(description)"
        switch kind {
        case .conv2d:
            var inputs = [OpInput("x", input, fill), OpInput("weight", weight)]
            if bias { inputs.append(OpInput("bias", [weight[0]])) }
            let params = self.params, weightShape = weight, hasBias = bias
            return OpCase(op: kind.rawValue, params: label, inputs: inputs, tolerance: tolerance, gradCheck: gradCheck,
                          forward: { b, x in [try b.conv2d(x[0], weight: x[1], bias: hasBias ? x[2] : nil, params: params)] },
                          backward: { b, x, _, g in
                              var grads: [Tensor?] = [
                                  try b.conv2dBackwardData(g[0], weight: x[1], inputShape: x[0].shape, params: params),
                                  try b.conv2dBackwardWeight(g[0], input: x[0], weightShape: weightShape, params: params),
                              ]
                              if hasBias { grads.append(try b.sumPerChannel(g[0])) }
                              return grads
                          })
        case .convTranspose2x2:
            var inputs = [OpInput("x", input, fill), OpInput("weight", weight)]
            if bias { inputs.append(OpInput("bias", [weight[1]])) }
            let hasBias = bias
            return OpCase(op: kind.rawValue, params: label, inputs: inputs, tolerance: tolerance, gradCheck: gradCheck,
                          forward: { b, x in [try b.convTranspose2x2(x[0], weight: x[1], bias: hasBias ? x[2] : nil)] },
                          backward: { b, x, _, g in
                              var grads: [Tensor?] = [
                                  try b.convTranspose2x2BackwardData(g[0], weight: x[1]),
                                  try b.convTranspose2x2BackwardWeight(g[0], input: x[0]),
                              ]
                              if hasBias { grads.append(try b.sumPerChannel(g[0])) }
                              return grads
                          })
        case .maxPool2x2:
            // Selection only: both sides pick the same element, so results are exact.
            return OpCase(op: kind.rawValue, params: label, inputs: [OpInput("x", input, fill)], tolerance: .exact,
                          gradCheck: gradCheck,
                          forward: { b, x in [try b.maxPool2x2(x[0])] },
                          backward: { b, x, _, g in [try b.maxPool2x2Backward(g[0], input: x[0])] })
        }
    }
}

extension OpCases {
    /// Small geometries that reach every code path: every dilation, padding smaller than, equal
    /// to and larger than the kernel's reach, sizes that are not multiples of any tile, Cin 1
    /// and 3, batch 1 and 3, stride 2, non-square kernels, channel counts up to 512, rows of
    /// whole, partial, interior and edge row tiles.
    static func convTestLayers() -> [ConvLayerSpec] {
        var specs = [ConvLayerSpec]()
        func conv(_ x: Shape, _ w: Shape, _ p: Conv2DParams, bias: Bool = false) {
            specs.append(ConvLayerSpec("", .conv2d, input: x, weight: w, params: p, bias: bias))
        }
        conv([3, 3, 13, 31], [5, 3, 1, 1], Conv2DParams(), bias: true)
        conv([1, 1, 1, 1], [1, 1, 1, 1], Conv2DParams(), bias: true)
        for pad in [0, 1, 3] { conv([1, 3, 13, 31], [4, 3, 3, 3], Conv2DParams(padding: pad)) }
        for d in [2, 4, 8] {
            for pad in [d - 1, d, d + 3] { conv([3, 2, 33, 17], [3, 2, 3, 3], Conv2DParams(padding: pad, dilation: d), bias: d == 4) }
        }
        conv([3, 2, 13, 31], [1, 2, 7, 7], Conv2DParams(padding: 3))
        conv([1, 3, 33, 17], [5, 3, 7, 7], Conv2DParams(padding: 1, dilation: 2), bias: true)
        conv([3, 3, 13, 31], [4, 3, 3, 5], Conv2DParams(strideH: 1, strideW: 1, padH: 1, padW: 2, dilationH: 1, dilationW: 1))
        conv([1, 2, 33, 17], [3, 2, 1, 3], Conv2DParams(strideH: 1, strideW: 1, padH: 0, padW: 2, dilationH: 1, dilationW: 2))
        conv([1, 2, 31, 13], [3, 2, 5, 1], Conv2DParams(strideH: 1, strideW: 1, padH: 4, padW: 0, dilationH: 2, dilationW: 1))
        conv([3, 3, 13, 31], [4, 3, 3, 3], Conv2DParams(stride: 2, padding: 1), bias: true)
        conv([1, 5, 33, 17], [3, 5, 1, 1], Conv2DParams(stride: 2))
        conv([1, 3, 13, 31], [6, 3, 2, 2], Conv2DParams(stride: 2))
        conv([1, 4, 13, 31], [5, 4, 3, 3], Conv2DParams(stride: 2, padding: 2, dilation: 2))
        conv([3, 1, 13, 31], [8, 1, 3, 3], Conv2DParams(padding: 1))
        conv([1, 19, 13, 9], [37, 19, 3, 3], Conv2DParams(padding: 2, dilation: 2), bias: true)
        // conv2d_rows_reg / conv2d_bwd_weight_rows (stride 1, ≥ 16 channels): rows with interior and
        // edge segments (W = 24), dilation, one and two channel vectors (partial last segments: the
        // W = 9 and 7 cases); both within the small-shape subset (`check --small`, Oclgrind).
        conv([1, 16, 3, 24], [17, 16, 3, 3], Conv2DParams(padding: 1), bias: true)
        conv([1, 12, 5, 24], [16, 12, 3, 3], Conv2DParams(padding: 2, dilation: 2))
        conv([1, 512, 5, 7], [3, 512, 3, 3], Conv2DParams(padding: 1))
        conv([1, 3, 5, 7], [512, 3, 1, 1], Conv2DParams(), bias: true)
        // conv2d_rows_reg at stride 2 (forward) and conv2d_bwd_weight_rows at stride 2 (OW = 16: two
        // 8-pixel blocks, edge and interior), with and without dilation, one and two channel vectors.
        conv([1, 3, 13, 31], [16, 3, 3, 3], Conv2DParams(stride: 2, padding: 1), bias: true)
        conv([1, 4, 13, 31], [33, 4, 3, 3], Conv2DParams(stride: 2, padding: 2, dilation: 2))
        for (x, w, b) in [(Shape([3, 5, 7, 13]), Shape([5, 4, 2, 2]), true), ([1, 1, 1, 1], [1, 3, 2, 2], true),
                          ([1, 3, 13, 31], [3, 7, 2, 2], false), ([3, 19, 5, 3], [19, 37, 2, 2], true),
                          // conv2d_rows_up (forward), conv2d_rows_reg at stride 2 (backward-data) and
                          // conv2d_bwd_weight_rows at stride 2 (input W a multiple of 8), one and two channel vectors.
                          ([2, 16, 3, 8], [16, 17, 2, 2], true), ([1, 33, 2, 16], [33, 16, 2, 2], false)] {
            specs.append(ConvLayerSpec("", .convTranspose2x2, input: x, weight: w, bias: b))
        }
        for x in [Shape([3, 5, 7, 13]), [1, 3, 13, 31], [1, 1, 2, 2], [3, 7, 33, 17], [1, 2, 3, 3]] {
            specs.append(ConvLayerSpec("", .maxPool2x2, input: x))
        }
        return specs
    }

    static func conv() -> [OpCase] {
        convTestLayers().map { $0.opCase() }
            + [ConvLayerSpec("ties", .maxPool2x2, input: [3, 2, 5, 7]).opCase(gradCheck: false, fill: .constant(0.5))]
            + dfrUNetConvLayers().map { $0.opCase(gradCheck: false) }
            + convActivationCases() + priorCases()
    }

    /// Backward passes that add a gradient which already reached x (`adding prior:`): conv
    /// backward-data in each CPU variant (conv2d_rows_reg: "same" stride 1 with ≥ 16 input
    /// channels, conv2d_rows_px: fewer, conv2d_igemm_reg: stride 2, all three in the small subset;
    /// the DFR-UNet 1×1 head shape) and max-pool backward (odd sizes floored).
    static func priorCases() -> [OpCase] {
        var cases = [OpCase]()
        let convs: [(Shape, Shape, Conv2DParams)] = [
            ([1, 17, 3, 10], [16, 17, 3, 3], Conv2DParams(padding: 1)),
            ([1, 3, 13, 31], [4, 3, 3, 3], Conv2DParams(padding: 2, dilation: 2)),
            ([1, 4, 7, 9], [5, 4, 3, 3], Conv2DParams(stride: 2, padding: 1)),
            ([2, 16, 16, 16], [1, 16, 1, 1], Conv2DParams()),
        ]
        for (x, w, p) in convs {
            let dy = ConvLayerSpec("", .conv2d, input: x, weight: w, params: p).output
            cases.append(OpCase(op: "conv2d_backward_data_acc", params: "x \(x) w \(w) \(p)",
                                inputs: [OpInput("dy", dy), OpInput("weight", w), OpInput("prior", x)], tolerance: .sums,
                                forward: { b, t in [try b.conv2dBackwardData(t[0], weight: t[1], inputShape: x, params: p, adding: t[2])] }))
        }
        for x in [Shape([3, 5, 7, 13]), [1, 3, 13, 31], [2, 16, 16, 16]] {
            let (n, c, h, w) = x.nchw
            cases.append(OpCase(op: "max_pool2d_backward_acc", params: "x \(x)",
                                inputs: [OpInput("x", x), OpInput("dy", [n, c, h / 2, w / 2]), OpInput("prior", x)], tolerance: .exact,
                                forward: { b, t in [try b.maxPool2x2Backward(t[1], input: t[0], adding: t[2])] }))
        }
        return cases
    }

    /// The forward conv with an activation in its store (the eval path of a folded ConvBN; no
    /// backward), one geometry per CPU kernel variant (conv2d_rows_reg: stride 1, ≥ 16 outputs;
    /// conv2d_igemm_reg: stride 2; conv2d_rows_px: the 7×7 spatial-attention conv), with and
    /// without bias, plus one DFR-UNet-sized layer. The activation is applied to the same float32
    /// sum as without it, so the plain conv's tolerance holds.
    static func convActivationCases() -> [OpCase] {
        let layers: [(Shape, Shape, Conv2DParams, Bool, NormActivation)] = [
            ([1, 16, 3, 24], [17, 16, 3, 3], Conv2DParams(padding: 1), true, .relu),
            ([1, 12, 5, 24], [16, 12, 3, 3], Conv2DParams(padding: 2, dilation: 2), false, .sigmoid),
            ([1, 4, 13, 31], [5, 4, 3, 3], Conv2DParams(stride: 2, padding: 2, dilation: 2), true, .relu),
            ([3, 3, 13, 31], [4, 3, 3, 3], Conv2DParams(stride: 2, padding: 1), false, .sigmoid),
            ([3, 2, 13, 31], [1, 2, 7, 7], Conv2DParams(padding: 3), true, .sigmoid),
            ([1, 2, 13, 31], [3, 2, 3, 3], Conv2DParams(padding: 1), false, .relu),
            ([2, 32, 16, 16], [32, 32, 3, 3], Conv2DParams(padding: 1), true, .relu),
        ]
        return layers.map { x, w, p, hasBias, act in
            var inputs = [OpInput("x", x), OpInput("weight", w)]
            if hasBias { inputs.append(OpInput("bias", [w[0]])) }
            return OpCase(op: "conv2d_act", params: "x \(x) w \(w) \(p)\(hasBias ? " +b" : "") \(act)", inputs: inputs,
                          tolerance: .sums,
                          forward: { b, t in [try b.conv2d(t[0], weight: t[1], bias: hasBias ? t[2] : nil, params: p, activation: act)] })
        }
    }
}
