import Foundation

extension CPUBackend: NormOps {
    public func batchNormTrain(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                               momentum: Float, eps: Float, activation: NormActivation, geometry g: BatchNormGeometry) throws
        -> (y: Tensor, saved: BatchNormSaved) {
        let v = try values(x)                                       // (N, C, H, W) or (N, C)
        let wt = try values(weight), bs = try values(bias)          // (C)
        var rm = try values(runningMean), rv = try values(runningVar) // (C), updated in place
        var mean = [Double](repeating: 0, count: g.c)               // (C)
        var invStd = [Double](repeating: 0, count: g.c)             // (C)
        var y = [Double](repeating: 0, count: x.count)              // like x
        let m = Double(momentum)
        for ch in 0..<g.c {
            // Shifted two-pass statistics: the first element is subtracted before summing, so a
            // constant channel gets exactly its value as mean and exactly 0 as variance.
            let shift = v[g.index(0, ch, 0)]
            var sum = 0.0
            for b in 0..<g.n { for p in 0..<g.hw { sum += v[g.index(b, ch, p)] - shift } }
            let mu = shift + sum / Double(g.count)
            var sq = 0.0
            for b in 0..<g.n { for p in 0..<g.hw { let d = v[g.index(b, ch, p)] - mu; sq += d * d } }
            let biased = sq / Double(g.count)
            // PyTorch refuses one value per channel in training; we keep running_var finite by
            // using the biased variance (0) as the unbiased one in that case.
            let unbiased = g.count > 1 ? biased * Double(g.count) / Double(g.count - 1) : biased
            mean[ch] = mu
            invStd[ch] = 1 / (biased + Double(eps)).squareRoot()
            for b in 0..<g.n {
                for p in 0..<g.hw {
                    let i = g.index(b, ch, p)
                    let t = (v[i] - mu) * invStd[ch] * wt[ch] + bs[ch]
                    y[i] = activation.apply(t)
                }
            }
            rm[ch] = (1 - m) * rm[ch] + m * mu
            rv[ch] = (1 - m) * rv[ch] + m * unbiased
        }
        try overwrite(runningMean, rm)
        try overwrite(runningVar, rv)
        return (make(y, x.shape), BatchNormSaved(mean: make(mean, [g.c]), invStd: make(invStd, [g.c]), activation: activation, bias: activation == .none ? nil : bias))
    }

    public func batchNormEval(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                              eps: Float, activation: NormActivation, geometry g: BatchNormGeometry) throws -> Tensor {
        let v = try values(x)
        let wt = try values(weight), bs = try values(bias), rm = try values(runningMean), rv = try values(runningVar)
        var y = [Double](repeating: 0, count: x.count)              // like x
        for b in 0..<g.n {
            for ch in 0..<g.c {
                let inv = 1 / (rv[ch] + Double(eps)).squareRoot()
                for p in 0..<g.hw {
                    let i = g.index(b, ch, p)
                    let t = (v[i] - rm[ch]) * inv * wt[ch] + bs[ch]
                    y[i] = activation.apply(t)
                }
            }
        }
        return make(y, x.shape)
    }

    public func batchNormBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, saved: BatchNormSaved, geometry g: BatchNormGeometry) throws
        -> (dx: Tensor, dweight: Tensor, dbias: Tensor) {
        let v = try values(x)
        var d = try values(dy)
        if let actBias = saved.bias, saved.activation != .none {
            // Through the fused activation: dy times its derivative at t, the affine map.
            let wt = try values(weight), bs = try values(actBias), mean = try values(saved.mean), invStd = try values(saved.invStd)
            for ch in 0..<g.c {
                for b in 0..<g.n {
                    for p in 0..<g.hw {
                        let i = g.index(b, ch, p)
                        d[i] *= saved.activation.derivative((v[i] - mean[ch]) * invStd[ch] * wt[ch] + bs[ch])
                    }
                }
            }
        }
        let wt = try values(weight), mean = try values(saved.mean), invStd = try values(saved.invStd)
        var dx = [Double](repeating: 0, count: x.count)             // like x
        var dw = [Double](repeating: 0, count: g.c)                 // (C)
        var db = [Double](repeating: 0, count: g.c)                 // (C)
        for ch in 0..<g.c {
            for b in 0..<g.n {
                for p in 0..<g.hw {
                    let i = g.index(b, ch, p)
                    db[ch] += d[i]
                    dw[ch] += d[i] * (v[i] - mean[ch]) * invStd[ch]
                }
            }
            // dx = w·invStd/M · (M·dy − Σdy − x̂·Σ(dy·x̂)), M = N·H·W.
            let count = Double(g.count)
            for b in 0..<g.n {
                for p in 0..<g.hw {
                    let i = g.index(b, ch, p)
                    let xhat = (v[i] - mean[ch]) * invStd[ch]
                    dx[i] = wt[ch] * invStd[ch] / count * (count * d[i] - db[ch] - xhat * dw[ch])
                }
            }
        }
        return (make(dx, x.shape), make(dw, [g.c]), make(db, [g.c]))
    }
}

extension CPUBackend {
    public func foldBatchNorm(convWeight: Tensor, convBias: Tensor?, weight: Tensor, bias: Tensor, runningMean: Tensor,
                              runningVar: Tensor, eps: Float, geometry g: BatchNormFoldGeometry) throws -> (weight: Tensor, bias: Tensor) {
        let (cout, per) = (g.cout, g.per)
        let w = try values(convWeight), gamma = try values(weight), beta = try values(bias)
        let mean = try values(runningMean), variance = try values(runningVar)
        let cb = try convBias.map { try values($0) } ?? [Double](repeating: 0, count: cout)
        var fw = [Double](repeating: 0, count: convWeight.count)   // like convWeight
        var fb = [Double](repeating: 0, count: cout)               // (Cout)
        for o in 0..<cout {
            let s = gamma[o] / (variance[o] + Double(eps)).squareRoot()
            for k in 0..<per { fw[o * per + k] = w[o * per + k] * s }
            fb[o] = (cb[o] - mean[o]) * s + beta[o]
        }
        return (make(fw, convWeight.shape), make(fb, [cout]))
    }
}

extension NormActivation {
    /// The activation at t (CPU reference).
    func apply(_ t: Double) -> Double {
        switch self {
        case .none: return t
        case .relu: return max(t, 0)
        case .sigmoid: return 1 / (1 + exp(-t))
        }
    }

    /// Its derivative at t (ReLU: 1 where t > 0, else 0).
    func derivative(_ t: Double) -> Double {
        switch self {
        case .none: return 1
        case .relu: return t > 0 ? 1 : 0
        case .sigmoid: let s = apply(t); return s * (1 - s)
        }
    }
}
