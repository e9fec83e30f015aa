import Foundation

extension CPUBackend: ConvOps {
    /// Calls `tap(output, input, weight)` with the flat indices of y (N, Cout, OH, OW), x (N, Cin,
    /// H, W) and w (Cout, Cin, KH, KW) of every product of the convolution that reads a real (not
    /// padded) input, in the order n, co, oy, ox, ci, ky, kx: the one loop nest that the forward
    /// and both backward passes walk (each sum then runs in this order).
    private func forEachTap(_ g: Conv2DGeometry, _ tap: (_ output: Int, _ input: Int, _ weight: Int) -> Void) {
        let params = g.params
        for n in 0..<g.n {
            for co in 0..<g.cout {
                for oy in 0..<g.oh {
                    for ox in 0..<g.ow {
                        let output = ((n * g.cout + co) * g.oh + oy) * g.ow + ox
                        for ci in 0..<g.cin {
                            for ky in 0..<g.kh {
                                let iy = oy * params.strideH - params.padH + ky * params.dilationH
                                guard iy >= 0 && iy < g.h else { continue }
                                for kx in 0..<g.kw {
                                    let ix = ox * params.strideW - params.padW + kx * params.dilationW
                                    guard ix >= 0 && ix < g.w else { continue }
                                    tap(output, ((n * g.cin + ci) * g.h + iy) * g.w + ix, ((co * g.cin + ci) * g.kh + ky) * g.kw + kx)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2DGeometry, activation: NormActivation) throws -> Tensor {
        let start = launchStart()
        let xv = try values(x)                        // (N, Cin, H, W)
        let wv = try values(weight)                   // (Cout, Cin, KH, KW)
        let bv = try bias.map { try values($0) }      // (Cout)
        var y = [Double](repeating: 0, count: g.outputShape.count)   // (N, Cout, OH, OW)
        if let bv {
            for i in y.indices { y[i] = bv[i / (g.oh * g.ow) % g.cout] }
        }
        forEachTap(g) { o, i, k in y[o] += xv[i] * wv[k] }
        switch activation {
        case .none: break
        case .relu: y = y.map { max($0, 0) }
        case .sigmoid: y = y.map { 1 / (1 + exp(-$0)) }
        }
        recordLaunch("conv2d", since: start, flops: g.flops)
        return make(y, g.outputShape)
    }

    public func conv2dBackwardData(_ dy: Tensor, weight: Tensor, geometry g: Conv2DGeometry, adding prior: Tensor?) throws -> Tensor {
        let start = launchStart()
        let dv = try values(dy)                       // (N, Cout, OH, OW)
        let wv = try values(weight)                   // (Cout, Cin, KH, KW)
        var dx = [Double](repeating: 0, count: g.inputShape.count)   // (N, Cin, H, W)
        // Scatter form: every output element hands dy·w back to each input it read.
        forEachTap(g) { o, i, k in dx[i] += dv[o] * wv[k] }
        recordLaunch("conv2d_backward_data", since: start, flops: g.flops)
        return try make(dx, g.inputShape, adding: prior)
    }

    public func conv2dBackwardWeight(_ dy: Tensor, input x: Tensor, geometry g: Conv2DGeometry) throws -> Tensor {
        let start = launchStart()
        let dv = try values(dy)                       // (N, Cout, OH, OW)
        let xv = try values(x)                        // (N, Cin, H, W)
        var dw = [Double](repeating: 0, count: g.weightShape.count)  // (Cout, Cin, KH, KW)
        forEachTap(g) { o, i, k in dw[k] += dv[o] * xv[i] }
        recordLaunch("conv2d_backward_weight", since: start, flops: g.flops)
        return make(dw, g.weightShape)
    }

    public func convTranspose2x2(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvTranspose2x2Geometry) throws -> Tensor {
        let start = launchStart()
        let xv = try values(x)                        // (N, Cin, H, W)
        let wv = try values(weight)                   // (Cin, Cout, 2, 2)
        let bv = try bias.map { try values($0) }      // (Cout)
        var y = [Double](repeating: 0, count: g.outputShape.count)   // (N, Cout, 2H, 2W)
        for n in 0..<g.n {
            for co in 0..<g.cout {
                for oy in 0..<(2 * g.h) {
                    for ox in 0..<(2 * g.w) {
                        // Each output pixel comes from exactly one input pixel and one kernel tap.
                        var acc = bv?[co] ?? 0
                        for ci in 0..<g.cin {
                            acc += xv[((n * g.cin + ci) * g.h + oy / 2) * g.w + ox / 2]
                                * wv[((ci * g.cout + co) * 2 + oy % 2) * 2 + ox % 2]
                        }
                        y[((n * g.cout + co) * 2 * g.h + oy) * 2 * g.w + ox] = acc
                    }
                }
            }
        }
        recordLaunch("conv_transpose2d", since: start, flops: g.flops)
        return make(y, g.outputShape)
    }

    public func convTranspose2x2BackwardData(_ dy: Tensor, weight: Tensor, geometry g: ConvTranspose2x2Geometry) throws -> Tensor {
        let start = launchStart()
        let dv = try values(dy)                       // (N, Cout, 2H, 2W)
        let wv = try values(weight)                   // (Cin, Cout, 2, 2)
        var dx = [Double](repeating: 0, count: g.inputShape.count)   // (N, Cin, H, W)
        for n in 0..<g.n {
            for ci in 0..<g.cin {
                for iy in 0..<g.h {
                    for ix in 0..<g.w {
                        var acc = 0.0
                        for co in 0..<g.cout {
                            for a in 0..<2 {
                                for b in 0..<2 {
                                    acc += dv[((n * g.cout + co) * 2 * g.h + 2 * iy + a) * 2 * g.w + 2 * ix + b]
                                        * wv[((ci * g.cout + co) * 2 + a) * 2 + b]
                                }
                            }
                        }
                        dx[((n * g.cin + ci) * g.h + iy) * g.w + ix] = acc
                    }
                }
            }
        }
        recordLaunch("conv_transpose2d_backward_data", since: start, flops: g.flops)
        return make(dx, g.inputShape)
    }

    public func convTranspose2x2BackwardWeight(_ dy: Tensor, input x: Tensor, geometry g: ConvTranspose2x2Geometry) throws -> Tensor {
        let start = launchStart()
        let dv = try values(dy)                       // (N, Cout, 2H, 2W)
        let xv = try values(x)                        // (N, Cin, H, W)
        var dw = [Double](repeating: 0, count: g.weightShape.count)  // (Cin, Cout, 2, 2)
        for ci in 0..<g.cin {
            for co in 0..<g.cout {
                for a in 0..<2 {
                    for b in 0..<2 {
                        var acc = 0.0
                        for n in 0..<g.n {
                            for iy in 0..<g.h {
                                for ix in 0..<g.w {
                                    acc += xv[((n * g.cin + ci) * g.h + iy) * g.w + ix]
                                        * dv[((n * g.cout + co) * 2 * g.h + 2 * iy + a) * 2 * g.w + 2 * ix + b]
                                }
                            }
                        }
                        dw[((ci * g.cout + co) * 2 + a) * 2 + b] = acc
                    }
                }
            }
        }
        recordLaunch("conv_transpose2d_backward_weight", since: start, flops: g.flops)
        return make(dw, g.weightShape)
    }
}
