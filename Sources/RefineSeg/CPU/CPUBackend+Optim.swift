import Foundation

extension CPUBackend: OptimOps {
    public func adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams) throws {
        let k = try AdamConstants(params, shapes: [param, grad, m, v], op: "adam_step")
        var p = try values(param), mm = try values(m), vv = try values(v)
        let g = try values(grad)
        let wd = Double(params.weightDecay)
        let b1 = Double(params.beta1), b2 = Double(params.beta2), eps = Double(params.eps)
        for i in p.indices {
            var gi = g[i]
            if params.decoupled { p[i] *= Double(k.decay) } else { gi += wd * p[i] }
            mm[i] = b1 * mm[i] + (1 - b1) * gi
            vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
            // torch.optim.Adam(W): p −= (lr / bc1) · m / (√v / √bc2 + eps).
            p[i] -= Double(k.stepSize) * mm[i] / (vv[i].squareRoot() / Double(k.bc2Sqrt) + eps)
        }
        try overwrite(param, p); try overwrite(m, mm); try overwrite(v, vv)
    }

    public func sgdStep(param: Tensor, grad: Tensor, momentumBuffer: Tensor, lr: Float, momentum: Float,
                        weightDecay: Float) throws {
        for t in [grad, momentumBuffer] { try t.shape.expect(equal: param.shape, op: "sgd_step") }
        var p = try values(param), buf = try values(momentumBuffer)
        let g = try values(grad)
        for i in p.indices {
            buf[i] = Double(momentum) * buf[i] + (g[i] + Double(weightDecay) * p[i])
            p[i] -= Double(lr) * buf[i]
        }
        try overwrite(param, p); try overwrite(momentumBuffer, buf)
    }

    public func sumOfSquares(_ tensors: [Tensor]) throws -> Tensor {
        var total = 0.0
        for t in tensors { for e in try values(t) { total += e * e } }
        return make([total], [1])
    }

    public func clipByGlobalNorm(_ tensors: [Tensor], sumOfSquares: Tensor, maxNorm: Float) throws {
        let s = try ClipGeometry.check(sumOfSquares, maxNorm: maxNorm)
        let factor = min(1, Double(maxNorm) / (try values(s)[0].squareRoot() + ClipGeometry.epsilon))
        for t in tensors { try overwrite(t, try values(t).map { $0 * factor }) }
    }
}

extension CPUBackend {
    /// Views may start anywhere; 4 keeps the offsets the same as an OpenCL device's would round to.
    public var viewAlignment: Int { 4 }

    public func view(_ flat: Tensor, offset: Int, shape: Shape) throws -> Tensor {
        try FlatGeometry.checkView(flat, offset: offset, shape: shape, alignment: viewAlignment)
        let s = try storage(flat)
        return Tensor(shape: shape, storage: s.view(offset ..< offset + shape.count), backend: self)
    }

    public func assign(_ target: Tensor, from source: Tensor) throws {
        guard target.count == source.count else {
            throw RefineSegError.shapeMismatch(op: "assign", detail: "\(source.shape) into \(target.shape)")
        }
        try storage(target).data = try values(source)
    }

    public func flatSumOfSquares(_ flat: Tensor, ranges: [Range<Int>]) throws -> SquaredNormPartials {
        try FlatGeometry.check(ranges, in: flat, op: "flat_sum_of_squares")
        let x = try values(flat)
        let total = ranges.reduce(0.0) { sum, r in x[r].reduce(sum) { $0 + $1 * $1 } }
        return SquaredNormPartials(partials: make([total], [1]))
    }

    public func flatAdamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, ranges: [Range<Int>], params: AdamParams,
                             clip: (norm: SquaredNormPartials, maxNorm: Float)?) throws {
        let k = try AdamConstants(params, shapes: [param, grad, m, v], op: "flat_adam_step")
        try FlatGeometry.check(ranges, in: param, op: "flat_adam_step")
        var factor = 1.0
        if let clip {
            try ClipGeometry.check(maxNorm: clip.maxNorm)
            let total = try values(clip.norm.partials).reduce(0, +)
            factor = min(1, Double(clip.maxNorm) / (total.squareRoot() + ClipGeometry.epsilon))
        }
        var p = try values(param), mm = try values(m), vv = try values(v)
        let g = try values(grad)
        let wd = Double(params.weightDecay), b1 = Double(params.beta1), b2 = Double(params.beta2), eps = Double(params.eps)
        for r in ranges {
            for i in r {
                var gi = g[i] * factor
                if params.decoupled { p[i] *= Double(k.decay) } else { gi += wd * p[i] }
                mm[i] = b1 * mm[i] + (1 - b1) * gi
                vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
                p[i] -= Double(k.stepSize) * mm[i] / (vv[i].squareRoot() / Double(k.bc2Sqrt) + eps)
            }
        }
        try overwrite(param, p); try overwrite(m, mm); try overwrite(v, vv)
    }
}

/// The per-step constants of Adam, computed once on the host in double precision as
/// torch.optim does (Python floats) and rounded to Float when they reach the kernel.
struct AdamConstants {
    /// lr / (1 − β1^t).
    let stepSize: Float
    /// √(1 − β2^t).
    let bc2Sqrt: Float
    /// AdamW's weight factor 1 − lr·wd.
    let decay: Float

    init(_ p: AdamParams, shapes tensors: [Tensor], op: String) throws {
        guard p.step >= 1 else { throw RefineSegError.invalidArgument("[\(op)] step \(p.step) must be ≥ 1 (1-based)") }
        for t in tensors.dropFirst() { try t.shape.expect(equal: tensors[0].shape, op: op) }
        stepSize = Float(Double(p.lr) / (1 - pow(Double(p.beta1), Double(p.step))))
        bc2Sqrt = Float((1 - pow(Double(p.beta2), Double(p.step))).squareRoot())
        decay = Float(1 - Double(p.lr) * Double(p.weightDecay))
    }
}

enum ClipGeometry {
    /// torch.nn.utils.clip_grad_norm_'s guard: factor = maxNorm / (norm + 1e-6).
    static let epsilon = 1e-6

    static func check(_ sumOfSquares: Tensor, maxNorm: Float) throws -> Tensor {
        guard sumOfSquares.count == 1 else {
            throw RefineSegError.shapeMismatch(op: "clip_by_global_norm", detail: "sumOfSquares \(sumOfSquares.shape) must have one element")
        }
        try check(maxNorm: maxNorm)
        return sumOfSquares
    }

    static func check(maxNorm: Float) throws {
        guard maxNorm > 0, maxNorm.isFinite else {
            throw RefineSegError.invalidArgument("[clip_by_global_norm] maxNorm \(maxNorm) must be positive and finite")
        }
    }
}

/// Checks shared by both backends' flat-buffer ops.
enum FlatGeometry {
    static func checkView(_ flat: Tensor, offset: Int, shape: Shape, alignment: Int) throws {
        guard flat.shape.rank == 1 else {
            throw RefineSegError.shapeMismatch(op: "view", detail: "flat tensor \(flat.shape) must be rank 1")
        }
        guard offset >= 0, offset % alignment == 0, offset + shape.count <= flat.count else {
            throw RefineSegError.invalidArgument("[view] offset \(offset) with \(shape.count) elements does not fit \(flat.shape) at alignment \(alignment)")
        }
    }

    static func check(_ ranges: [Range<Int>], in flat: Tensor, op: String) throws {
        guard flat.shape.rank == 1 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "flat tensor \(flat.shape) must be rank 1")
        }
        for r in ranges where r.lowerBound < 0 || r.upperBound > flat.count {
            throw RefineSegError.invalidArgument("[\(op)] range \(r) outside \(flat.shape)")
        }
    }
}
