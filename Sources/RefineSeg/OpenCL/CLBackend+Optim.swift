extension CLBackend: OptimOps {
    public func adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params p: AdamParams, constants k: AdamConstants) throws {
        try run("adam_step", file: "optim", options: "-DDECOUPLED=\(p.decoupled ? 1 : 0)",
                [.tensor(param), .tensor(grad), .tensor(m), .tensor(v), .int(param.count), .float(p.beta1), .float(p.beta2),
                 .float(p.eps), .float(p.weightDecay), .float(k.decay), .float(k.stepSize), .float(k.bc2Sqrt)],
                global: [param.count])
    }

    public func sgdStep(param: Tensor, grad: Tensor, momentumBuffer: Tensor, lr: Float, momentum: Float,
                        weightDecay: Float, geometry g: SGDGeometry) throws {
        try run("sgd_step", file: "optim",
                [.tensor(param), .tensor(grad), .tensor(momentumBuffer), .int(g.count), .float(lr), .float(momentum),
                 .float(weightDecay)], global: [g.count])
    }

    public func sumOfSquares(_ tensors: [Tensor]) throws -> Tensor {
        let chunks = tensors.map { ($0.count + KernelConstants.sumsqChunk - 1) / KernelConstants.sumsqChunk }
        let total = chunks.reduce(0, +)
        let partials = try empty([max(total, 1)], op: "sum_of_squares")
        if total == 0 { try fill(partials, value: 0) }
        var offset = 0
        for (t, n) in zip(tensors, chunks) where n > 0 {
            try runPerGroup("sumsq_partial", file: "optim", [.tensor(t), .int(t.count), .tensor(partials), .int(offset)], groups: n)
            offset += n
        }
        return try sumPartials(partials, count: max(total, 1), divisor: 1, op: "sum_of_squares")
    }

    public func clipByGlobalNorm(_ tensors: [Tensor], sumOfSquares: Tensor, geometry g: ClipGeometry) throws {
        for t in tensors where t.count > 0 {
            try run("clip_scale", file: "optim", [.tensor(t), .int(t.count), .tensor(sumOfSquares), .float(g.maxNorm)], global: [t.count])
        }
    }

    // MARK: fused optimiser over flat buffers

    public var viewAlignment: Int { max(ctx.baseAddressAlignBytes / 4, 4) }

    /// FOR_VEC4's layout (Kernels/common.h): contiguous slices per work-item on CPU devices, where a
    /// group's items run one after another (7× faster flat_adam on PoCL than interleaved float4s),
    /// interleaved on GPUs.
    var itemLayoutOption: String { "-DCONTIGUOUS_ITEMS=\(info.type == "CPU" ? 1 : 0)" }

    /// Pixels per item of lac_norms and seg_backward (LAC_SPAN, Kernels/losses.cl, which chooses by
    /// CONTIGUOUS_ITEMS alike): a contiguous run of KernelConstants.lacSpan pixels on CPU devices (the
    /// embedding planes in the outer loop), one float4 per item on GPUs (neighbouring items,
    /// neighbouring addresses).
    var lacSpan: Int { info.type == "CPU" ? KernelConstants.lacSpan : 4 }

    public func view(_ flat: Tensor, geometry g: ViewGeometry) throws -> Tensor {
        let sub = try ctx.subBuffer(try buffer(flat), offsetBytes: g.offset * 4, bytes: g.shape.count * 4, op: "view")
        return Tensor(shape: g.shape, storage: CLStorage(sub), backend: self)
    }

    public func assign(_ target: Tensor, from source: Tensor, geometry g: AssignGeometry) throws {
        try ctx.copy(from: try buffer(source), to: try buffer(target), bytes: g.count * 4, op: "assign")
    }

    public func flatSumOfSquares(_ flat: Tensor, geometry g: FlatGeometry) throws -> SquaredNormPartials {
        let ranges = g.ranges
        let groups = ranges.map { ($0.count + KernelConstants.flatChunk - 1) / KernelConstants.flatChunk }
        let total = groups.reduce(0, +)
        let partials = try empty([max(total, 1)], op: "flat_sum_of_squares")
        if total == 0 { try fill(partials, value: 0) }
        var offset = 0
        for (r, n) in zip(ranges, groups) where n > 0 {
            try runPerGroup("flat_sumsq", file: "optim", options: "-DDECOUPLED=1 " + itemLayoutOption, [.tensor(flat), .int(r.lowerBound), .int(r.upperBound), .tensor(partials), .int(offset)],
                            groups: n, bytes: 4 * r.count)
            offset += n
        }
        return SquaredNormPartials(partials: partials)
    }

    public func flatAdamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params p: AdamParams,
                             clip: (norm: SquaredNormPartials, maxNorm: Float)?, constants k: AdamConstants, geometry g: FlatGeometry) throws {
        let partials = clip?.norm.partials ?? param
        for r in g.ranges where !r.isEmpty {
            try runPerGroup("flat_adam", file: "optim", options: "-DDECOUPLED=\(p.decoupled ? 1 : 0) " + itemLayoutOption,
                            [.tensor(param), .tensor(grad), .tensor(m), .tensor(v), .int(r.lowerBound), .int(r.upperBound),
                             .tensor(partials), .int(clip == nil ? 0 : partials.count), .float(clip?.maxNorm ?? 0),
                             .float(p.beta1), .float(p.beta2), .float(p.eps), .float(p.weightDecay), .float(k.decay),
                             .float(k.stepSize), .float(k.bc2Sqrt)],
                            groups: (r.count + KernelConstants.flatChunk - 1) / KernelConstants.flatChunk,
                            bytes: 28 * r.count)   // p, g, m, v read; p, m, v written
        }
    }
}
