extension CLBackend: OptimOps {
    /// Elements per partial sum of squares (SUMSQ_CHUNK in Kernels/optim.cl).
    static let sumsqChunk = 4096

    public func adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params p: AdamParams) throws {
        let k = try AdamConstants(p, shapes: [param, grad, m, v], op: "adam_step")
        try run("adam_step", file: "optim", options: "-DDECOUPLED=\(p.decoupled ? 1 : 0)",
                [.tensor(param), .tensor(grad), .tensor(m), .tensor(v), .int(param.count), .float(p.beta1), .float(p.beta2),
                 .float(p.eps), .float(p.weightDecay), .float(k.decay), .float(k.stepSize), .float(k.bc2Sqrt)],
                global: [param.count])
    }

    public func sgdStep(param: Tensor, grad: Tensor, momentumBuffer: Tensor, lr: Float, momentum: Float,
                        weightDecay: Float) throws {
        for t in [grad, momentumBuffer] { try t.shape.expect(equal: param.shape, op: "sgd_step") }
        try run("sgd_step", file: "optim",
                [.tensor(param), .tensor(grad), .tensor(momentumBuffer), .int(param.count), .float(lr), .float(momentum),
                 .float(weightDecay)], global: [param.count])
    }

    public func sumOfSquares(_ tensors: [Tensor]) throws -> Tensor {
        let chunks = tensors.map { ($0.count + Self.sumsqChunk - 1) / Self.sumsqChunk }
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

    public func clipByGlobalNorm(_ tensors: [Tensor], sumOfSquares: Tensor, maxNorm: Float) throws {
        let s = try ClipGeometry.check(sumOfSquares, maxNorm: maxNorm)
        for t in tensors where t.count > 0 {
            try run("clip_scale", file: "optim", [.tensor(t), .int(t.count), .tensor(s), .float(maxNorm)], global: [t.count])
        }
    }
}
