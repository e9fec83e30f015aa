extension CLBackend: NormOps {
    public func batchNormTrain(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                               momentum: Float, eps: Float, activation: NormActivation) throws -> (y: Tensor, saved: BatchNormSaved) {
        let g = try BatchNormGeometry(x, params: [weight, bias, runningMean, runningVar], op: "batch_norm_train")
        let mean = try empty([g.c], op: "batch_norm_train"), invStd = try empty([g.c], op: "batch_norm_train")
        let y = try empty(x.shape, op: "batch_norm_train")
        try run("bn_train", file: "norm", options: "-DACT=\(activation.rawValue)",
                [.tensor(x), .tensor(y), .tensor(mean), .tensor(invStd), .tensor(runningMean), .tensor(runningVar),
                 .tensor(weight), .tensor(bias), .int(g.n), .int(g.c), .int(g.hw), .float(momentum), .float(eps)],
                global: [g.c * KernelConstants.reductionGroup], local: [KernelConstants.reductionGroup], bytes: 8 * x.count)
        return (y, BatchNormSaved(mean: mean, invStd: invStd, activation: activation, bias: activation == .none ? nil : bias))
    }

    public func batchNormEval(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                              eps: Float, activation: NormActivation) throws -> Tensor {
        let g = try BatchNormGeometry(x, params: [weight, bias, runningMean, runningVar], op: "batch_norm_eval")
        let y = try empty(x.shape, op: "batch_norm_eval")
        try run("bn_eval", file: "norm", options: "-DACT=\(activation.rawValue)",
                [.tensor(x), .tensor(y), .tensor(runningMean), .tensor(runningVar), .tensor(weight), .tensor(bias),
                 .int(g.c), .int(g.hw), .float(eps)],
                global: [(g.hw + KernelConstants.normSpan - 1) / KernelConstants.normSpan, g.n * g.c], bytes: 8 * x.count)
        return y
    }

    public func batchNormBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, saved: BatchNormSaved) throws
        -> (dx: Tensor, dweight: Tensor, dbias: Tensor) {
        let activation = saved.bias == nil ? NormActivation.none : saved.activation
        let g = try BatchNormGeometry(x, params: [weight, saved.mean, saved.invStd] + (saved.bias.map { [$0] } ?? []),
                                      op: "batch_norm_backward")
        try dy.shape.expect(equal: x.shape, op: "batch_norm_backward")
        let dw = try empty([g.c], op: "batch_norm_backward"), db = try empty([g.c], op: "batch_norm_backward")
        let dx = try empty(x.shape, op: "batch_norm_backward")
        // Without an activation the bias argument is unused; any (C) tensor fills the slot.
        try run("bn_backward", file: "norm", options: "-DACT=\(activation.rawValue)",
                [.tensor(dy), .tensor(x), .tensor(saved.mean), .tensor(saved.invStd), .tensor(weight),
                 .tensor(saved.bias ?? weight), .tensor(dw), .tensor(db), .tensor(dx), .int(g.n), .int(g.c), .int(g.hw)],
                global: [g.c * KernelConstants.reductionGroup], local: [KernelConstants.reductionGroup], bytes: 12 * x.count)
        return (dx, dw, db)
    }

    public func foldBatchNorm(convWeight: Tensor, convBias: Tensor?, weight: Tensor, bias: Tensor, runningMean: Tensor,
                              runningVar: Tensor, eps: Float) throws -> (weight: Tensor, bias: Tensor) {
        let (cout, per) = try batchNormFoldGeometry(convWeight: convWeight, convBias: convBias,
                                                    params: [weight, bias, runningMean, runningVar])
        let fw = try empty(convWeight.shape, op: "fold_batch_norm"), fb = try empty([cout], op: "fold_batch_norm")
        // Without a conv bias the slot takes any tensor; hasBias = 0 keeps it unread.
        try run("bn_fold", file: "norm",
                [.tensor(convWeight), .tensor(convBias ?? bias), .int(convBias == nil ? 0 : 1), .tensor(weight), .tensor(bias),
                 .tensor(runningMean), .tensor(runningVar), .tensor(fw), .tensor(fb), .int(cout), .int(per), .float(eps)],
                global: [convWeight.count])
        return (fw, fb)
    }
}
