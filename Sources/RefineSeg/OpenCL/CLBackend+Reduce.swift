extension CLBackend: ReduceOps, MatmulOps {
    private func kindCode(_ kind: ReduceKind) -> Int {
        switch kind { case .sum: return 0; case .mean: return 1; case .max: return 2 }
    }

    public func reduce(_ x: Tensor, axes: Range<Int>, kind: ReduceKind, geometry g: ReduceGeometry) throws -> Tensor {
        let y = try empty(g.outputShape, op: "reduce")
        if gpuGlue && g.inner == 1 {
            try runPerGroup("reduce_fwd_group", file: "reduce", [.tensor(x), .tensor(y), .int(g.outer), .int(g.reduced), .int(kindCode(kind))],
                            groups: g.outer, bytes: 4 * (x.count + y.count))
            return y
        }
        try run("reduce_fwd", file: "reduce",
                [.tensor(x), .tensor(y), .int(g.outer), .int(g.reduced), .int(g.inner), .int(kindCode(kind))],
                global: [g.outer * g.inner])
        return y
    }

    public func reduceBackward(_ dy: Tensor, input x: Tensor, axes: Range<Int>, kind: ReduceKind, geometry g: ReduceGeometry) throws -> Tensor {
        let dx = try empty(x.shape, op: "reduce_backward")
        if gpuGlue && kind != .max {
            let wg = Self.pixelGroup
            try run("reduce_backward_spread", file: "reduce",
                    [.tensor(dy), .tensor(dx), .int(g.outer), .int(g.reduced), .int(g.inner), .int(kindCode(kind))],
                    global: [(x.count + wg - 1) / wg * wg], local: [wg], bytes: 4 * (x.count + dy.count))
            return dx
        }
        try run("reduce_backward", file: "reduce",
                [.tensor(dy), .tensor(x), .tensor(dx), .int(g.outer), .int(g.reduced), .int(g.inner), .int(kindCode(kind))],
                global: [g.outer * g.inner])
        return dx
    }

    public func sumPerChannel(_ x: Tensor, geometry g: PerChannelGeometry) throws -> Tensor {
        let (n, c, h, w) = (g.n, g.c, g.h, g.w)
        let y = try empty([c], op: "sum_per_channel")
        let hw = h * w
        guard gpuGlue, c > 0 else {
            try runItems("sum_per_channel", file: "reduce", [.tensor(x), .tensor(y), .int(n), .int(c), .int(hw)], items: [(c + 7) / 8],
                         bytes: 4 * x.count)
            return y
        }
        let (chunks, per) = gpuChunks(n: n, hw: hw)
        let partials = try empty([c * per], op: "sum_per_channel")
        let wg = KernelConstants.gpuGroup
        try run("sum_per_channel_partial", file: "reduce", [.tensor(x), .tensor(partials), .int(n), .int(c), .int(hw), .int(chunks)],
                global: [c * per * wg], local: [wg], bytes: 4 * x.count)
        try run("sum_per_channel_final", file: "reduce", [.tensor(partials), .tensor(y), .int(c), .int(per)], global: [c],
                bytes: 4 * partials.count)
        return y
    }

    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, geometry g: MatmulGeometry) throws -> Tensor {
        let c = try empty([g.m, g.n], op: "matmul")
        try run("matmul_naive", file: "matmul",
                [.tensor(a), .tensor(b), .tensor(c), .int(g.m), .int(g.n), .int(g.k), .int(transposeA ? 1 : 0), .int(transposeB ? 1 : 0)],
                global: [g.n, g.m])
        return c
    }
}
