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
