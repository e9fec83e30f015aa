import Foundation

extension CPUBackend: OptimOps {
    public func adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams, constants k: AdamConstants) throws {
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
                        weightDecay: Float, geometry g: SGDGeometry) throws {
        var p = try values(param), buf = try values(momentumBuffer)
        let gv = try values(grad)
        for i in p.indices {
            buf[i] = Double(momentum) * buf[i] + (gv[i] + Double(weightDecay) * p[i])
            p[i] -= Double(lr) * buf[i]
        }
        try overwrite(param, p); try overwrite(momentumBuffer, buf)
    }

    public func sumOfSquares(_ tensors: [Tensor]) throws -> Tensor {
        var total = 0.0
        for t in tensors { for e in try values(t) { total += e * e } }
        return make([total], [1])
    }

    public func clipByGlobalNorm(_ tensors: [Tensor], sumOfSquares: Tensor, geometry g: ClipGeometry) throws {
        let factor = min(1, Double(g.maxNorm) / (try values(sumOfSquares)[0].squareRoot() + ClipGeometry.epsilon))
        for t in tensors { try overwrite(t, try values(t).map { $0 * factor }) }
    }
}

extension CPUBackend {
    /// Views may start anywhere; 4 keeps the offsets the same as an OpenCL device's would round to.
    public var viewAlignment: Int { 4 }

    public func view(_ flat: Tensor, geometry g: ViewGeometry) throws -> Tensor {
        let s = try storage(flat)
        return Tensor(shape: g.shape, storage: s.view(g.offset ..< g.offset + g.shape.count), backend: self)
    }

    public func assign(_ target: Tensor, from source: Tensor, geometry g: AssignGeometry) throws {
        try storage(target).data = try values(source)
    }

    public func flatSumOfSquares(_ flat: Tensor, geometry g: FlatGeometry) throws -> SquaredNormPartials {
        let x = try values(flat)
        let total = g.ranges.reduce(0.0) { sum, r in x[r].reduce(sum) { $0 + $1 * $1 } }
        return SquaredNormPartials(partials: make([total], [1]))
    }

    public func flatAdamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams,
                             clip: (norm: SquaredNormPartials, maxNorm: Float)?, constants k: AdamConstants, geometry fg: FlatGeometry) throws {
        var factor = 1.0
        if let clip {
            let total = try values(clip.norm.partials).reduce(0, +)
            factor = min(1, Double(clip.maxNorm) / (total.squareRoot() + ClipGeometry.epsilon))
        }
        var p = try values(param), mm = try values(m), vv = try values(v)
        let g = try values(grad)
        let wd = Double(params.weightDecay), b1 = Double(params.beta1), b2 = Double(params.beta2), eps = Double(params.eps)
        for r in fg.ranges {
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
