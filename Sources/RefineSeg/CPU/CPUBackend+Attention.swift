import Foundation

extension CPUBackend: AttentionOps {
    public func spatialMeanMax(_ x: Tensor, geometry g: AttentionGeometry) throws -> (mean: Tensor, max: Tensor) {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let v = try values(x)                                   // (N, C, H, W)
        var mean = [Double](repeating: 0, count: n * c)         // (N, C)
        var peak = [Double](repeating: -.infinity, count: n * c) // (N, C)
        for nc in 0..<(n * c) {
            for p in 0..<(h * w) {
                let e = v[nc * h * w + p]
                mean[nc] += e
                peak[nc] = max(peak[nc], e)
            }
            mean[nc] /= Double(h * w)
        }
        return (make(mean, [n, c]), make(peak, [n, c]))
    }

    public func spatialMeanMaxBackward(dMean: Tensor, dMax: Tensor, input x: Tensor, geometry g: AttentionGeometry) throws -> Tensor {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let v = try values(x), dm = try values(dMean), dx1 = try values(dMax)
        var dx = [Double](repeating: 0, count: x.count)        // (N, C, H, W)
        for nc in 0..<(n * c) {
            var best = 0
            for p in 0..<(h * w) {
                dx[nc * h * w + p] = dm[nc] / Double(h * w)
                if v[nc * h * w + p] > v[nc * h * w + best] { best = p }
            }
            dx[nc * h * w + best] += dx1[nc]
        }
        return make(dx, x.shape)
    }

    public func channelMeanMax(_ x: Tensor, geometry g: AttentionGeometry) throws -> (y: Tensor, argmax: Tensor) {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let hw = h * w
        let v = try values(x)                                   // (N, C, H, W)
        var y = [Double](repeating: 0, count: n * 2 * hw)       // (N, 2, H, W): mean plane, then max plane
        var arg = [Double](repeating: 0, count: n * hw)         // (N, 1, H, W): the first maximal channel
        for b in 0..<n {
            for p in 0..<hw {
                var sum = 0.0, best = 0
                for ch in 0..<c {
                    let e = v[(b * c + ch) * hw + p]
                    sum += e
                    if e > v[(b * c + best) * hw + p] { best = ch }
                }
                y[(b * 2) * hw + p] = sum / Double(c)
                y[(b * 2 + 1) * hw + p] = v[(b * c + best) * hw + p]
                arg[b * hw + p] = Double(best)
            }
        }
        return (make(y, [n, 2, h, w]), make(arg, [n, 1, h, w]))
    }

    public func channelMeanMaxBackward(_ dy: Tensor, argmax: Tensor, adding prior: Tensor?, geometry g: AttentionGeometry) throws -> Tensor {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let hw = h * w
        let d = try values(dy), arg = try values(argmax)
        var dx = [Double](repeating: 0, count: n * c * hw)      // (N, C, H, W)
        for b in 0..<n {
            for p in 0..<hw {
                let share = d[(b * 2) * hw + p] / Double(c)
                for ch in 0..<c { dx[(b * c + ch) * hw + p] = share }
                dx[(b * c + Int(arg[b * hw + p])) * hw + p] += d[(b * 2 + 1) * hw + p]
            }
        }
        return try make(dx, g.shape, adding: prior)
    }

    public func broadcastSpatial(_ x: Tensor, relu: Bool, geometry g: AttentionGeometry) throws -> Tensor {
        let (n, c, height, width) = (g.n, g.c, g.h, g.w)
        let v = try values(x).map { relu ? max($0, 0) : $0 }   // (N, C)
        var y = [Double](repeating: 0, count: n * c * height * width)  // (N, C, H, W)
        for nc in 0..<(n * c) {
            for p in 0..<(height * width) { y[nc * height * width + p] = v[nc] }
        }
        return make(y, [n, c, height, width])
    }

    public func broadcastSpatialBackward(_ dy: Tensor, reluInput: Tensor?, geometry g: AttentionGeometry) throws -> Tensor {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let d = try values(dy)                                  // (N, C, H, W)
        let x = try reluInput.map { try values($0) }            // (N, C)
        var dx = [Double](repeating: 0, count: n * c)           // (N, C, 1, 1)
        for nc in 0..<(n * c) where x.map({ $0[nc] > 0 }) ?? true {
            for p in 0..<(h * w) { dx[nc] += d[nc * h * w + p] }
        }
        return make(dx, [n, c, 1, 1])
    }
}

extension CPUBackend {
    public func channelDescriptors(_ x: Tensor, geometry ag: AttentionGeometry) throws -> (descriptors: Tensor, argmax: Tensor) {
        let (n, c, hw) = (ag.n, ag.c, ag.hw)
        let v = try values(x)                                   // (N, C, H, W)
        var d = [Double](repeating: 0, count: 2 * n * c)        // (2N, C): means, then maxima
        var arg = [Double](repeating: 0, count: n * c)          // (N, C): first arg-max
        for nc in 0..<(n * c) {
            var sum = 0.0, best = 0
            for p in 0..<hw {
                sum += v[nc * hw + p]
                if v[nc * hw + p] > v[nc * hw + best] { best = p }
            }
            d[nc] = sum / Double(hw)
            d[n * c + nc] = v[nc * hw + best]
            arg[nc] = Double(best)
        }
        return (make(d, [2 * n, c]), make(arg, [n, c]))
    }

    public func channelDescriptorsBackward(_ d: Tensor, argmax: Tensor, adding prior: Tensor?, geometry ag: AttentionGeometry) throws -> Tensor {
        let (n, c, hw, inputShape) = (ag.n, ag.c, ag.hw, ag.shape)
        let g = try values(d), arg = try values(argmax)
        var dx = [Double](repeating: 0, count: inputShape.count) // (N, C, H, W)
        for nc in 0..<(n * c) {
            for p in 0..<hw { dx[nc * hw + p] = g[nc] / Double(hw) }
            dx[nc * hw + Int(arg[nc])] += g[n * c + nc]
        }
        return try make(dx, inputShape, adding: prior)
    }

    public func channelGate(_ x: Tensor, logits: Tensor, geometry: GateGeometry) throws -> Tensor {
        let (n, c, hw) = (geometry.n, geometry.c, geometry.hw)
        let v = try values(x), l = try values(logits)
        var y = [Double](repeating: 0, count: x.count)          // like x
        for nc in 0..<(n * c) {
            let s = 1 / (1 + exp(-(l[nc] + l[n * c + nc])))
            for p in 0..<hw { y[nc * hw + p] = v[nc * hw + p] * s }
        }
        return make(y, x.shape)
    }

    public func channelGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dlogits: Tensor) {
        let (n, c, hw) = (geometry.n, geometry.c, geometry.hw)
        let v = try values(x), l = try values(logits), g = try values(dy)
        var dx = [Double](repeating: 0, count: x.count)         // like x
        var dl = [Double](repeating: 0, count: 2 * n * c)       // (2N, C)
        for nc in 0..<(n * c) {
            let s = 1 / (1 + exp(-(l[nc] + l[n * c + nc])))
            var acc = 0.0
            for p in 0..<hw {
                dx[nc * hw + p] = g[nc * hw + p] * s
                acc += g[nc * hw + p] * v[nc * hw + p]
            }
            dl[nc] = s * (1 - s) * acc
            dl[n * c + nc] = dl[nc]
        }
        return (make(dx, x.shape), make(dl, logits.shape))
    }

    public func pixelGateAddReLU(_ x: Tensor, gate: Tensor, residual: Tensor, geometry: GateGeometry) throws -> Tensor {
        let (n, c, hw) = (geometry.n, geometry.c, geometry.hw)
        let v = try values(x), g = try values(gate), r = try values(residual)
        var y = [Double](repeating: 0, count: x.count)          // like x
        for b in 0..<n {
            for ch in 0..<c {
                for p in 0..<hw {
                    let i = (b * c + ch) * hw + p
                    y[i] = max(v[i] * g[b * hw + p] + r[i], 0)
                }
            }
        }
        return make(y, x.shape)
    }

    public func pixelGateAddReLUBackward(_ dy: Tensor, x: Tensor, gate: Tensor, residual: Tensor, geometry: GateGeometry) throws
        -> (dx: Tensor, dgate: Tensor, dresidual: Tensor) {
        let (n, c, hw) = (geometry.n, geometry.c, geometry.hw)
        let v = try values(x), g = try values(gate), r = try values(residual), d = try values(dy)
        var dx = [Double](repeating: 0, count: x.count)         // like x
        var dr = [Double](repeating: 0, count: x.count)         // like x
        var dg = [Double](repeating: 0, count: n * hw)          // (N, 1, H, W)
        for b in 0..<n {
            for ch in 0..<c {
                for p in 0..<hw {
                    let i = (b * c + ch) * hw + p
                    let ds = v[i] * g[b * hw + p] + r[i] > 0 ? d[i] : 0
                    dx[i] = ds * g[b * hw + p]
                    dr[i] = ds
                    dg[b * hw + p] += ds * v[i]
                }
            }
        }
        return (make(dx, x.shape), make(dg, gate.shape), make(dr, x.shape))
    }
    public func channelMLP(_ d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, geometry mg: ChannelMLPGeometry) throws
        -> (logits: Tensor, hidden: Tensor) {
        let (r, c, hd) = (mg.rows, mg.c, mg.hidden)
        let x = try values(d), a = try values(w1), ab = try values(b1), bw = try values(w2), bb = try values(b2)
        var hid = [Double](repeating: 0, count: r * hd)         // (R, Hd), after the ReLU
        var l = [Double](repeating: 0, count: r * c)            // (R, C)
        for row in 0..<r {
            for j in 0..<hd {
                var s = ab[j]
                for ch in 0..<c { s += a[j * c + ch] * x[row * c + ch] }
                hid[row * hd + j] = max(s, 0)
            }
            for ch in 0..<c {
                var s = bb[ch]
                for j in 0..<hd { s += bw[ch * hd + j] * hid[row * hd + j] }
                l[row * c + ch] = s
            }
        }
        return (make(l, [r, c]), make(hid, [r, hd]))
    }

    public func channelMLPGate(_ x: Tensor, descriptors d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                               geometry g: ChannelMLPGateGeometry) throws -> (y: Tensor, logits: Tensor, hidden: Tensor) {
        // The reference is the two ops it fuses.
        let (l, hidden) = try channelMLP(d, w1: w1, b1: b1, w2: w2, b2: b2, geometry: g.mlp)
        return (try channelGate(x, logits: l, geometry: g.gate), l, hidden)
    }

    public func channelMLPBackward(_ dlogits: Tensor, d: Tensor, w1: Tensor, w2: Tensor, hidden: Tensor, geometry mg: ChannelMLPGeometry) throws
        -> ChannelMLPGradients {
        let (r, c, hd) = (mg.rows, mg.c, mg.hidden)
        let g = try values(dlogits), x = try values(d), a = try values(w1), bw = try values(w2), hid = try values(hidden)
        var dh = [Double](repeating: 0, count: r * hd)          // (R, Hd), before the ReLU
        for row in 0..<r {
            for j in 0..<hd where hid[row * hd + j] > 0 {
                for ch in 0..<c { dh[row * hd + j] += g[row * c + ch] * bw[ch * hd + j] }
            }
        }
        var dd = [Double](repeating: 0, count: r * c)           // (R, C)
        var dw1 = [Double](repeating: 0, count: hd * c)         // (Hd, C)
        var db1 = [Double](repeating: 0, count: hd)             // (Hd)
        var dw2 = [Double](repeating: 0, count: c * hd)         // (C, Hd)
        var db2 = [Double](repeating: 0, count: c)              // (C)
        for row in 0..<r {
            for j in 0..<hd {
                db1[j] += dh[row * hd + j]
                for ch in 0..<c {
                    dw1[j * c + ch] += dh[row * hd + j] * x[row * c + ch]
                    dd[row * c + ch] += dh[row * hd + j] * a[j * c + ch]
                    dw2[ch * hd + j] += g[row * c + ch] * hid[row * hd + j]
                }
            }
            for ch in 0..<c { db2[ch] += g[row * c + ch] }
        }
        return ChannelMLPGradients(dd: make(dd, d.shape), dw1: make(dw1, w1.shape), db1: make(db1, [hd]),
                                   dw2: make(dw2, w2.shape), db2: make(db2, [c]))
    }
}
