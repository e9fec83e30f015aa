extension CPUBackend: ReduceOps, MatmulOps {
    public func reduce(_ x: Tensor, axes: Range<Int>, kind: ReduceKind, geometry g: ReduceGeometry) throws -> Tensor {
        let v = try values(x)
        var y = [Double](repeating: 0, count: g.outer * g.inner)
        for o in 0..<g.outer {
            for i in 0..<g.inner {
                var acc = kind == .max ? -Double.infinity : 0
                for r in 0..<g.reduced {
                    let e = v[(o * g.reduced + r) * g.inner + i]
                    acc = kind == .max ? max(acc, e) : acc + e
                }
                y[o * g.inner + i] = kind == .mean ? acc / Double(g.reduced) : acc
            }
        }
        return make(y, g.outputShape)
    }

    public func reduceBackward(_ dy: Tensor, input x: Tensor, axes: Range<Int>, kind: ReduceKind, geometry g: ReduceGeometry) throws -> Tensor {
        let v = try values(x), d = try values(dy)
        var dx = [Double](repeating: 0, count: x.count)
        for o in 0..<g.outer {
            for i in 0..<g.inner {
                let grad = d[o * g.inner + i]
                switch kind {
                case .sum, .mean:
                    let share = kind == .mean ? grad / Double(g.reduced) : grad
                    for r in 0..<g.reduced { dx[(o * g.reduced + r) * g.inner + i] = share }
                case .max:
                    var best = 0
                    for r in 1..<max(g.reduced, 1) where v[(o * g.reduced + r) * g.inner + i] > v[(o * g.reduced + best) * g.inner + i] {
                        best = r
                    }
                    dx[(o * g.reduced + best) * g.inner + i] = grad
                }
            }
        }
        return make(dx, x.shape)
    }

    public func sumPerChannel(_ x: Tensor, geometry g: PerChannelGeometry) throws -> Tensor {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let v = try values(x)
        var y = [Double](repeating: 0, count: c)
        for b in 0..<n { for ch in 0..<c { for p in 0..<(h * w) { y[ch] += v[(b * c + ch) * h * w + p] } } }
        return make(y, [c])
    }

    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, geometry g: MatmulGeometry) throws -> Tensor {
        let av = try values(a), bv = try values(b)
        var c = [Double](repeating: 0, count: g.m * g.n)
        for i in 0..<g.m {
            for j in 0..<g.n {
                var acc = 0.0
                for k in 0..<g.k {
                    let x = transposeA ? av[k * g.m + i] : av[i * g.k + k]     // A is (K, M) when transposed
                    let y = transposeB ? bv[j * g.k + k] : bv[k * g.n + j]     // B is (N, K) when transposed
                    acc += x * y
                }
                c[i * g.n + j] = acc
            }
        }
        return make(c, [g.m, g.n])
    }
}
