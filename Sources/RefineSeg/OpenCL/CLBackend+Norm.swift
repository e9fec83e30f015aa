extension CLBackend: NormOps {
    public func batchNormTrain(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                               momentum: Float, eps: Float) throws -> (y: Tensor, saved: BatchNormSaved) {
        let g = try BatchNormGeometry(x, params: [weight, bias, runningMean, runningVar], op: "batch_norm_train")
        let mean = try empty([g.c], op: "batch_norm_train"), invStd = try empty([g.c], op: "batch_norm_train")
        try runPerGroup("bn_stats", file: "norm",
                        [.tensor(x), .tensor(mean), .tensor(invStd), .tensor(runningMean), .tensor(runningVar),
                         .int(g.n), .int(g.c), .int(g.hw), .float(momentum), .float(eps)], groups: g.c)
        let y = try apply(x, mean: mean, scale: invStd, weight: weight, bias: bias, eps: eps, fromVariance: false, g)
        return (y, BatchNormSaved(mean: mean, invStd: invStd))
    }

    public func batchNormEval(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                              eps: Float) throws -> Tensor {
        let g = try BatchNormGeometry(x, params: [weight, bias, runningMean, runningVar], op: "batch_norm_eval")
        return try apply(x, mean: runningMean, scale: runningVar, weight: weight, bias: bias, eps: eps, fromVariance: true, g)
    }

    /// y = (x − mean)·s·w + b with s = `scale` (an inverse std) or, `fromVariance`, 1/√(scale + eps).
    private func apply(_ x: Tensor, mean: Tensor, scale: Tensor, weight: Tensor, bias: Tensor, eps: Float,
                       fromVariance: Bool, _ g: BatchNormGeometry) throws -> Tensor {
        let y = try empty(x.shape, op: fromVariance ? "batch_norm_eval" : "batch_norm_train")
        try run("bn_apply", file: "norm", options: "-DFROM_VAR=\(fromVariance ? 1 : 0)",
                [.tensor(x), .tensor(y), .tensor(mean), .tensor(scale), .tensor(weight), .tensor(bias),
                 .int(g.c), .int(g.hw), .int(x.count), .float(eps)], global: [g.hw, g.n * g.c])
        return y
    }

    public func batchNormBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, saved: BatchNormSaved) throws
        -> (dx: Tensor, dweight: Tensor, dbias: Tensor) {
        let g = try BatchNormGeometry(x, params: [weight, saved.mean, saved.invStd], op: "batch_norm_backward")
        try dy.shape.expect(equal: x.shape, op: "batch_norm_backward")
        let dw = try empty([g.c], op: "batch_norm_backward"), db = try empty([g.c], op: "batch_norm_backward")
        try runPerGroup("bn_backward_reduce", file: "norm",
                        [.tensor(dy), .tensor(x), .tensor(saved.mean), .tensor(saved.invStd), .tensor(dw), .tensor(db),
                         .int(g.n), .int(g.c), .int(g.hw)], groups: g.c)
        let dx = try empty(x.shape, op: "batch_norm_backward")
        try run("bn_backward_dx", file: "norm",
                [.tensor(dy), .tensor(x), .tensor(saved.mean), .tensor(saved.invStd), .tensor(weight), .tensor(dw),
                 .tensor(db), .tensor(dx), .int(g.c), .int(g.hw), .int(g.count), .int(x.count)], global: [g.hw, g.n * g.c])
        return (dx, dw, db)
    }
}
