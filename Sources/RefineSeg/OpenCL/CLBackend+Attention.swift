extension CLBackend: AttentionOps {
    public func spatialMeanMax(_ x: Tensor, geometry g: AttentionGeometry) throws -> (mean: Tensor, max: Tensor) {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let mean = try empty([n, c], op: "spatial_mean_max"), peak = try empty([n, c], op: "spatial_mean_max")
        try runPerGroup("spatial_mean_max", file: "attention", [.tensor(x), .tensor(mean), .tensor(peak), .int(h * w)],
                        groups: n * c)
        return (mean, peak)
    }

    public func spatialMeanMaxBackward(dMean: Tensor, dMax: Tensor, input x: Tensor, geometry g: AttentionGeometry) throws -> Tensor {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let dx = try empty(x.shape, op: "spatial_mean_max_backward")
        try runPerGroup("spatial_mean_max_backward", file: "attention",
                        [.tensor(dMean), .tensor(dMax), .tensor(x), .tensor(dx), .int(h * w)], groups: n * c)
        return dx
    }

    public func channelMeanMax(_ x: Tensor, geometry g: AttentionGeometry) throws -> (y: Tensor, argmax: Tensor) {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let y = try empty([n, 2, h, w], op: "channel_mean_max"), arg = try empty([n, 1, h, w], op: "channel_mean_max")
        let args: [KernelArg] = [.tensor(x), .tensor(y), .tensor(arg), .int(n), .int(c), .int(h * w)]
        let bytes = 4 * (x.count + y.count + arg.count)
        if gpuGlue {
            try runPixels("channel_mean_max_pix", args, hw: h * w, rows: n, bytes: bytes)
        } else {
            try runItems("channel_mean_max", file: "attention", args, items: [pixelSpans(h * w), n], bytes: bytes)
        }
        return (y, arg)
    }

    public func channelMeanMaxBackward(_ dy: Tensor, argmax: Tensor, adding prior: Tensor?, geometry g: AttentionGeometry) throws -> Tensor {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let dx = try empty(g.shape, op: "channel_mean_max_backward")
        // dx written, dy and the arg-max plane read; the prior read too when there is one.
        let bytes = 4 * ((prior == nil ? 1 : 2) * dx.count + dy.count + argmax.count)
        let args: [KernelArg] = [.tensor(dy), .tensor(argmax), .tensor(prior ?? dy), .tensor(dx), .int(n), .int(c), .int(h * w),
                                 .int(prior == nil ? 0 : 1)]
        if gpuGlue {
            try runPixels("channel_mean_max_backward_pix", args, hw: h * w, rows: n, bytes: bytes)
        } else {
            let chunks = (h * w + KernelConstants.channelBackwardChunk - 1) / KernelConstants.channelBackwardChunk
            try runItems("channel_mean_max_backward", file: "attention", args, items: [chunks, n], bytes: bytes)
        }
        return dx
    }

    public func broadcastSpatial(_ x: Tensor, relu: Bool, geometry g: AttentionGeometry) throws -> Tensor {
        let y = try empty(g.shape, op: "broadcast_spatial")
        try run("broadcast_spatial", file: "attention", [.tensor(x), .tensor(y), .int(g.n * g.c), .int(g.hw), .int(relu ? 1 : 0)],
                global: [y.count], bytes: 4 * (x.count + y.count))
        return y
    }

    public func broadcastSpatialBackward(_ dy: Tensor, reluInput: Tensor?, geometry g: AttentionGeometry) throws -> Tensor {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let dx = try empty([n, c, 1, 1], op: "broadcast_spatial_backward")
        let mask: [KernelArg] = [.tensor(reluInput ?? dx), .int(reluInput == nil ? 0 : 1)]
        if gpuGlue {
            try runPerGroup("broadcast_spatial_backward", file: "attention", [.tensor(dy), .tensor(dx), .int(h * w)] + mask, groups: n * c,
                            bytes: 4 * (dy.count + dx.count))
        } else {
            try runItems("broadcast_spatial_backward_cpu", file: "attention", [.tensor(dy), .tensor(dx), .int(n * c), .int(h * w)] + mask,
                         items: [n * c], bytes: 4 * (dy.count + dx.count))
        }
        return dx
    }

    private func spans(_ hw: Int) -> Int { (hw + KernelConstants.attentionSpan - 1) / KernelConstants.attentionSpan }
    /// Items along a plane of the CPU kernels that walk channels (CM_SPAN pixels each).
    private func pixelSpans(_ hw: Int) -> Int { (hw + KernelConstants.channelSpan - 1) / KernelConstants.channelSpan }

    /// Launches a *_pix kernel: 2-D, `hw` pixels rounded up to whole groups, by `rows`; nothing
    /// when there are no pixels (the kernels check the pixel index, not the row).
    private func runPixels(_ kernel: String, _ args: [KernelArg], hw: Int, rows: Int, bytes: Int) throws {
        guard hw > 0, rows > 0 else { return }
        let g = Self.pixelGroup
        try run(kernel, file: "attention", args, global: [(hw + g - 1) / g * g, rows], local: [g, 1], bytes: bytes)
    }

    public func channelDescriptors(_ x: Tensor, geometry g: AttentionGeometry) throws -> (descriptors: Tensor, argmax: Tensor) {
        let (n, c, hw) = (g.n, g.c, g.hw)
        let d = try empty([2 * n, c], op: "channel_descriptors"), arg = try empty([n, c], op: "channel_descriptors")
        let args: [KernelArg] = [.tensor(x), .tensor(d), .tensor(arg), .int(n * c), .int(hw)]
        if gpuGlue {
            try runPerGroup("channel_descriptors", file: "attention", args, groups: n * c, bytes: 4 * x.count)
        } else {
            try runItems("channel_descriptors_cpu", file: "attention", args, items: [n * c], bytes: 4 * x.count)
        }
        return (d, arg)
    }

    public func channelDescriptorsBackward(_ d: Tensor, argmax: Tensor, adding prior: Tensor?, geometry g: AttentionGeometry) throws -> Tensor {
        let (n, c, hw) = (g.n, g.c, g.hw)
        let dx = try empty(g.shape, op: "channel_descriptors_backward")
        // dx written; the prior read too when there is one.
        let bytes = 4 * (prior == nil ? 1 : 2) * dx.count
        let args: [KernelArg] = [.tensor(d), .tensor(argmax), .tensor(prior ?? d), .tensor(dx), .int(n * c), .int(hw), .int(prior == nil ? 0 : 1)]
        if gpuGlue {
            try runPixels("channel_descriptors_backward_pix", args, hw: hw, rows: n * c, bytes: bytes)
        } else {
            try runItems("channel_descriptors_backward", file: "attention", args, items: [spans(hw), n * c], bytes: bytes)
        }
        return dx
    }

    public func channelGate(_ x: Tensor, logits: Tensor, geometry: GateGeometry) throws -> Tensor {
        let (n, c, hw) = (geometry.n, geometry.c, geometry.hw)
        let y = try empty(x.shape, op: "channel_gate")
        let args: [KernelArg] = [.tensor(x), .tensor(logits), .tensor(y), .int(n * c), .int(hw)]
        if gpuGlue {
            try runPixels("channel_gate_pix", args, hw: hw, rows: n * c, bytes: 8 * x.count)
        } else {
            try runItems("channel_gate", file: "attention", args, items: [spans(hw), n * c], bytes: 8 * x.count)
        }
        return y
    }

    public func channelGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dlogits: Tensor) {
        let (n, c, hw) = (geometry.n, geometry.c, geometry.hw)
        let dx = try empty(x.shape, op: "channel_gate_backward"), dl = try empty(logits.shape, op: "channel_gate_backward")
        let args: [KernelArg] = [.tensor(dy), .tensor(x), .tensor(logits), .tensor(dx), .tensor(dl), .int(n * c), .int(hw)]
        if gpuGlue {
            try runPerGroup("channel_gate_backward", file: "attention", args, groups: n * c, bytes: 12 * x.count)
        } else {
            try runItems("channel_gate_backward_cpu", file: "attention", args, items: [n * c], bytes: 12 * x.count)
        }
        return (dx, dl)
    }

    public func pixelGateAddReLU(_ x: Tensor, gate: Tensor, residual: Tensor, geometry: GateGeometry) throws -> Tensor {
        let (n, c, hw) = (geometry.n, geometry.c, geometry.hw)
        let y = try empty(x.shape, op: "pixel_gate_add_relu")
        let args: [KernelArg] = [.tensor(x), .tensor(gate), .tensor(residual), .tensor(y), .int(c), .int(hw)]
        if gpuGlue {
            try runPixels("pixel_gate_add_relu_pix", args, hw: hw, rows: n * c, bytes: 12 * x.count + 4 * gate.count)
        } else {
            try runItems("pixel_gate_add_relu", file: "attention", args, items: [spans(hw), n], bytes: 12 * x.count + 4 * gate.count)
        }
        return y
    }

    public func pixelGateAddReLUBackward(_ dy: Tensor, x: Tensor, gate: Tensor, residual: Tensor, geometry: GateGeometry) throws
        -> (dx: Tensor, dgate: Tensor, dresidual: Tensor) {
        let (n, c, hw) = (geometry.n, geometry.c, geometry.hw)
        let dx = try empty(x.shape, op: "pixel_gate_add_relu_backward"), dr = try empty(x.shape, op: "pixel_gate_add_relu_backward")
        let dg = try empty(gate.shape, op: "pixel_gate_add_relu_backward")
        let args: [KernelArg] = [.tensor(dy), .tensor(x), .tensor(gate), .tensor(residual), .tensor(dx), .tensor(dg), .tensor(dr),
                                 .int(c), .int(hw)]
        if gpuGlue {
            try runPixels("pixel_gate_add_relu_backward_pix", args, hw: hw, rows: n, bytes: 20 * x.count + 8 * gate.count)
        } else {
            let chunks = (hw + KernelConstants.pixelChunk - 1) / KernelConstants.pixelChunk
            try runItems("pixel_gate_add_relu_backward", file: "attention", args, items: [chunks, n],
                         bytes: 20 * x.count + 8 * gate.count)
        }
        return (dx, dg, dr)
    }
    public func channelMLP(_ d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, geometry g: ChannelMLPGeometry) throws
        -> (logits: Tensor, hidden: Tensor) {
        let (r, c, hd) = (g.rows, g.c, g.hidden)
        let hid = try empty([r, hd], op: "channel_mlp"), l = try empty([r, c], op: "channel_mlp")
        try run("channel_mlp", file: "attention",
                [.tensor(d), .tensor(w1), .tensor(b1), .tensor(w2), .tensor(b2), .tensor(hid), .tensor(l), .int(c), .int(hd)],
                global: [r], flops: Double(4 * r * c * hd), bytes: 4 * (2 * r * c + 2 * c * hd + r * hd))
        return (l, hid)
    }

    public func channelMLPGate(_ x: Tensor, descriptors d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                               geometry g: ChannelMLPGateGeometry) throws -> (y: Tensor, logits: Tensor, hidden: Tensor) {
        let (n, c, hw, hd) = (g.gate.n, g.gate.c, g.gate.hw, g.mlp.hidden)
        guard !gpuGlue, hd <= KernelConstants.mlpHiddenMax else {
            // GPU layout (one item per value), or a hidden layer too wide for private memory: two launches.
            let (l, hid) = try channelMLP(d, w1: w1, b1: b1, w2: w2, b2: b2, geometry: g.mlp)
            return (try channelGate(x, logits: l, geometry: g.gate), l, hid)
        }
        let op = "channel_mlp_gate"
        let y = try empty(x.shape, op: op), l = try empty([2 * n, c], op: op), hid = try empty([2 * n, hd], op: op)
        // Planes per item: a work-group recomputes the 2·Hd·C multiply-adds of its image's MLP rows,
        // once for all its items (several spans of a plane where the plane is large); where a plane
        // is one span, an item takes enough planes to move at least as many values (2·block·span),
        // and no more: one plane per item streams best (bench train: walking all C planes per item
        // was 2× slower).
        let span = min(hw, KernelConstants.attentionSpan)
        let block = spans(hw) > 1 ? 1 : min(c, max(1, (hd * c + span - 1) / span))
        let blocks = (c + block - 1) / block
        try runItems(op, file: "attention",
                     [.tensor(x), .tensor(d), .tensor(w1), .tensor(b1), .tensor(w2), .tensor(b2), .tensor(hid), .tensor(l), .tensor(y),
                      .int(n), .int(c), .int(hd), .int(hw), .int(block)],
                     items: [spans(hw), n * blocks], bytes: 8 * x.count)
        return (y, l, hid)
    }

    /// The gate's backward and the MLP's in one launch on CPU devices (channel_gate_mlp_backward_cpu:
    /// one item per plane as channel_gate_backward_cpu, then the last item to finish runs the MLP's
    /// backward); the GPU layout runs the two ops. Results bit-identical to the two ops'.
    public func channelMLPGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor, descriptors d: Tensor, w1: Tensor, w2: Tensor,
                                       hidden: Tensor, geometry g: ChannelMLPGateGeometry) throws -> (dx: Tensor, mlp: ChannelMLPGradients) {
        // The counter's ordering is what x86's locked atomic_inc gives (see the kernel): CPU devices
        // only, so a GPU forced onto the CPU glue layout (REFINESEG_GLUE_VARIANT=cpu) takes two launches.
        guard !gpuGlue, info.type == "CPU" else {
            let gate = try channelGateBackward(dy, x: x, logits: logits, geometry: g.gate)
            return (gate.dx, try channelMLPBackward(gate.dlogits, d: d, w1: w1, w2: w2, hidden: hidden, geometry: g.mlp))
        }
        let (n, c, hw, r, hd) = (g.gate.n, g.gate.c, g.gate.hw, g.mlp.rows, g.mlp.hidden)
        let op = "channel_gate_mlp_backward_cpu"
        let dx = try empty(x.shape, op: op), dl = try empty(logits.shape, op: op), dh = try empty([r, hd], op: op)
        let dd = try empty(d.shape, op: op), dw1 = try empty(w1.shape, op: op), db1 = try empty([hd], op: op)
        let dw2 = try empty(w2.shape, op: op), db2 = try empty([c], op: op)
        let counter: CLBuffer
        if let made = gateMLPCounter {
            counter = made
        } else {
            counter = try ctx.pool.take(bytes: 4, op: op)
            try ctx.upload([0], to: counter, op: op)          // float +0 and int 0 share their bits
            gateMLPCounter = counter
        }
        let done = Tensor(shape: [1], storage: CLStorage(counter), backend: self)
        // Bytes: the gate's stream (dy, x read, dx written: 12·|x|) plus channel_mlp_backward's.
        try runItems(op, file: "attention",
                     [.tensor(dy), .tensor(x), .tensor(logits), .tensor(dx), .tensor(dl), .tensor(d), .tensor(w1), .tensor(w2),
                      .tensor(hidden), .tensor(dh), .tensor(dd), .tensor(dw1), .tensor(db1), .tensor(dw2), .tensor(db2), .tensor(done),
                      .int(n * c), .int(hw), .int(c), .int(hd)],
                     items: [n * c], flops: Double(8 * r * c * hd), bytes: 12 * x.count + 4 * (3 * r * c + 4 * c * hd + 3 * r * hd))
        return (dx, ChannelMLPGradients(dd: dd, dw1: dw1, db1: db1, dw2: dw2, db2: db2))
    }

    public func channelMLPBackward(_ dlogits: Tensor, d: Tensor, w1: Tensor, w2: Tensor, hidden: Tensor, geometry g: ChannelMLPGeometry) throws
        -> ChannelMLPGradients {
        let (r, c, hd) = (g.rows, g.c, g.hidden)
        let op = "channel_mlp_backward"
        let dh = try empty([r, hd], op: op)
        let dd = try empty(d.shape, op: op), dw1 = try empty(w1.shape, op: op), db1 = try empty([hd], op: op)
        let dw2 = try empty(w2.shape, op: op), db2 = try empty([c], op: op)
        // One work-group: the parameter gradients need every row's dh (a barrier apart).
        let wg = KernelConstants.reductionGroup
        try run(op, file: "attention",
                [.tensor(dlogits), .tensor(d), .tensor(w1), .tensor(w2), .tensor(hidden), .tensor(dh),
                 .tensor(dd), .tensor(dw1), .tensor(db1), .tensor(dw2), .tensor(db2), .int(r), .int(c), .int(hd)],
                global: [wg], local: [wg], flops: Double(8 * r * c * hd),
                bytes: 4 * (3 * r * c + 4 * c * hd + 3 * r * hd))
        return ChannelMLPGradients(dd: dd, dw1: dw1, db1: db1, dw2: dw2, db2: db2)
    }
}
