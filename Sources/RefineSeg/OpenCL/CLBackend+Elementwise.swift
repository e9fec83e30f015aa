extension CLBackend: ElementwiseOps {
    /// Items for `count` values, EW_SPAN per item.
    func ewItems(_ count: Int) -> Int { (count + KernelConstants.elementwiseSpan - 1) / KernelConstants.elementwiseSpan }

    /// y = a (op `code`) b, shapes checked equal by `BinaryGeometry`.
    private func binary(_ op: String, code: Int, _ a: Tensor, _ b: Tensor, _ g: BinaryGeometry) throws -> Tensor {
        let y = try empty(a.shape, op: op)
        try run("ew_binary", file: "elementwise", [.tensor(a), .tensor(b), .tensor(y), .int(g.count), .int(code)], global: [ewItems(g.count)],
                bytes: 12 * g.count)
        return y
    }

    /// y = kernel(x) for a unary map of the same shape.
    private func unary(_ kernel: String, _ x: Tensor) throws -> Tensor {
        let y = try empty(x.shape, op: kernel)
        try run(kernel, file: "elementwise", [.tensor(x), .tensor(y), .int(x.count)], global: [ewItems(x.count)], bytes: 8 * x.count)
        return y
    }

    /// dx = kernel(dy, saved) for an activation's backward (saved shaped like dy: `BinaryGeometry`).
    private func activationBackward(_ kernel: String, _ dy: Tensor, _ saved: Tensor, _ g: BinaryGeometry) throws -> Tensor {
        let dx = try empty(dy.shape, op: kernel)
        try run(kernel, file: "elementwise", [.tensor(dy), .tensor(saved), .tensor(dx), .int(g.count)], global: [ewItems(g.count)],
                bytes: 12 * g.count)
        return dx
    }

    public func add(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { try binary("add", code: 0, a, b, g) }
    public func sub(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { try binary("sub", code: 1, a, b, g) }
    public func mul(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { try binary("mul", code: 2, a, b, g) }

    public func scale(_ a: Tensor, by factor: Float) throws -> Tensor {
        let y = try empty(a.shape, op: "scale")
        try run("ew_scale", file: "elementwise", [.tensor(a), .tensor(y), .int(a.count), .float(factor)], global: [ewItems(a.count)],
                bytes: 8 * a.count)
        return y
    }

    public func accumulate(_ target: Tensor, _ source: Tensor, alpha: Float, geometry g: BinaryGeometry) throws {
        try run("ew_axpy", file: "elementwise", [.tensor(target), .tensor(source), .int(g.count), .float(alpha)],
                global: [ewItems(g.count)], bytes: 12 * g.count)
    }

    public func relu(_ x: Tensor) throws -> Tensor { try unary("ew_relu", x) }
    public func sigmoid(_ x: Tensor) throws -> Tensor { try unary("ew_sigmoid", x) }

    public func reluBackward(_ dy: Tensor, output y: Tensor, geometry g: BinaryGeometry) throws -> Tensor {
        try activationBackward("ew_relu_backward", dy, y, g)
    }

    public func sigmoidBackward(_ dy: Tensor, output y: Tensor, geometry g: BinaryGeometry) throws -> Tensor {
        try activationBackward("ew_sigmoid_backward", dy, y, g)
    }

    public func copy(_ x: Tensor) throws -> Tensor {
        let y = try empty(x.shape, op: "copy")
        try ctx.copy(from: try buffer(x), to: try buffer(y), bytes: x.count * 4, op: "copy")
        return y
    }

    public func fill(_ x: Tensor, value: Float) throws {
        try run("ew_fill", file: "elementwise", [.tensor(x), .int(x.count), .float(value)], global: [ewItems(x.count)], bytes: 4 * x.count)
    }

    /// Copies `count` channels between NCHW tensors with the same N, H, W.
    private func copyChannels(_ src: Tensor, srcStart: Int, _ dst: Tensor, dstStart: Int, count: Int, op: String) throws {
        let (n, cs, h, w) = src.shape.nchw
        let cd = dst.shape[1]
        guard count > 0, n * h * w > 0 else { return }
        try runItems("copy_channels", file: "elementwise",
                     [.tensor(src), .tensor(dst), .int(n), .int(count), .int(h * w), .int(cs), .int(srcStart), .int(cd), .int(dstStart)],
                     items: [ewItems(h * w), n * count], bytes: 8 * n * count * h * w)
    }

    public func concatChannels(_ parts: [Tensor], geometry shapes: ConcatGeometry) throws -> Tensor {
        let y = try empty(shapes.output, op: "concat")
        var offset = 0
        for (part, c) in zip(parts, shapes.channels) {
            try copyChannels(part, srcStart: 0, y, dstStart: offset, count: c, op: "concat")
            offset += c
        }
        return y
    }

    /// The parts one `copy_channels_broadcast` / `copy_channels_sum` launch takes.
    private static let fusedParts = 4

    /// Up to `fusedParts` tensors and their channel counts as the fused kernels' arguments (an
    /// absent part: 0 channels and a stand-in buffer, never read or written).
    private func partArgs(_ parts: ArraySlice<Tensor>, _ channels: ArraySlice<Int>, standIn: Tensor) -> [KernelArg] {
        let ts = Array(parts) + Array(repeating: standIn, count: Self.fusedParts - parts.count)
        let cs = Array(channels) + Array(repeating: 0, count: Self.fusedParts - channels.count)
        return ts.map { .tensor($0) } + cs.map { .int($0) }
    }

    public func concatBroadcast(_ parts: [Tensor], pooled: Tensor, relu: Bool, geometry g: ConcatBroadcastGeometry) throws -> Tensor {
        let op = "concat_broadcast"
        let y = try empty(g.output, op: op)
        let (n, hw, cd) = (g.n, g.hw, g.output[1])
        // Parts before the last four by copy_channels; the last four and the broadcast in one launch.
        let lead = max(0, parts.count - Self.fusedParts)
        var offset = 0
        for (part, c) in zip(parts[..<lead], g.channels[..<lead]) {
            try copyChannels(part, srcStart: 0, y, dstStart: offset, count: c, op: op)
            offset += c
        }
        guard n * hw > 0 else { return y }
        let copied = g.channels[lead...].reduce(0, +)
        try runItems("copy_channels_broadcast", file: "elementwise",
                     partArgs(parts[lead...], g.channels[lead...], standIn: y)
                        + [.tensor(y), .int(n), .int(hw), .int(cd), .int(offset), .tensor(pooled), .int(g.pooled), .int(relu ? 1 : 0)],
                     items: [ewItems(hw), n * (copied + g.pooled)], bytes: 4 * (2 * n * copied * hw + n * g.pooled * (hw + 1)))
        return y
    }

    public func concatBroadcastBackward(_ dy: Tensor, reluInput: Tensor?, geometry g: ConcatBroadcastGeometry) throws
        -> (parts: [Tensor], pooled: Tensor) {
        let op = "concat_broadcast_backward"
        let (n, hw, cs) = (g.n, g.hw, g.output[1])
        let parts = try g.channels.map { try empty([n, $0, g.h, g.w], op: op) }
        // Parts before the last four by copy_channels; the last four (and, on CPU devices, the
        // pooled part's sums) in one launch.
        let lead = max(0, parts.count - Self.fusedParts)
        var start = 0
        for (part, c) in zip(parts[..<lead], g.channels[..<lead]) {
            try copyChannels(dy, srcStart: start, part, dstStart: 0, count: c, op: op)
            start += c
        }
        let copied = g.channels[lead...].reduce(0, +)
        // The GPU layout sums with work-groups (broadcast_spatial_backward's) on a slice.
        let sums = gpuGlue ? 0 : g.pooled
        let dp = try empty([n, g.pooled, 1, 1], op: op)
        if n * hw > 0 {
            try runItems("copy_channels_sum", file: "elementwise",
                         [.tensor(dy), .int(n), .int(hw), .int(cs), .int(start)] + partArgs(parts[lead...], g.channels[lead...], standIn: dp)
                            + [.tensor(dp), .int(sums), .tensor(reluInput ?? dp), .int(reluInput == nil ? 0 : 1)],
                         items: [ewItems(hw), n * (copied + sums)], bytes: 4 * (2 * n * copied * hw + n * sums * (hw + 1)))
        }
        if gpuGlue {
            let tail = try sliceChannels(dy, start: start + copied, count: g.pooled)
            return (parts, try broadcastSpatialBackward(tail, reluInput: reluInput))
        }
        return (parts, dp)
    }

    public func sliceChannels(_ x: Tensor, geometry g: SliceGeometry) throws -> Tensor {
        let y = try empty(g.output, op: "slice")
        try copyChannels(x, srcStart: g.start, y, dstStart: 0, count: g.count, op: "slice")
        return y
    }

    public func mulChannelGate(_ x: Tensor, _ gate: Tensor, geometry: GateGeometry) throws -> Tensor {
        let (n, c, h, w) = x.shape.nchw
        let y = try empty(x.shape, op: "mul_channel_gate")
        try run("gate_channel", file: "elementwise", [.tensor(x), .tensor(gate), .tensor(y), .int(n * c), .int(h * w)], global: [x.count])
        return y
    }

    public func mulChannelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dgate: Tensor) {
        let (n, c, h, w) = x.shape.nchw
        let dx = try empty(x.shape, op: "mul_channel_gate_backward")
        let dg = try empty(gate.shape, op: "mul_channel_gate_backward")
        try run("gate_channel_backward_x", file: "elementwise", [.tensor(dy), .tensor(gate), .tensor(dx), .int(n * c), .int(h * w)], global: [x.count])
        try run("gate_channel_backward_g", file: "elementwise", [.tensor(dy), .tensor(x), .tensor(dg), .int(n * c), .int(h * w)], global: [n * c])
        return (dx, dg)
    }

    public func mulPixelGate(_ x: Tensor, _ gate: Tensor, geometry: GateGeometry) throws -> Tensor {
        let (n, c, h, w) = x.shape.nchw
        let y = try empty(x.shape, op: "mul_pixel_gate")
        try run("gate_pixel", file: "elementwise", [.tensor(x), .tensor(gate), .tensor(y), .int(n), .int(c), .int(h * w)], global: [x.count])
        return y
    }

    public func mulPixelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dgate: Tensor) {
        let (n, c, h, w) = x.shape.nchw
        let dx = try empty(x.shape, op: "mul_pixel_gate_backward")
        let dg = try empty(gate.shape, op: "mul_pixel_gate_backward")
        try run("gate_pixel_backward_x", file: "elementwise", [.tensor(dy), .tensor(gate), .tensor(dx), .int(n), .int(c), .int(h * w)], global: [x.count])
        try run("gate_pixel_backward_g", file: "elementwise", [.tensor(dy), .tensor(x), .tensor(dg), .int(n), .int(c), .int(h * w)], global: [n * h * w])
        return (dx, dg)
    }
}
