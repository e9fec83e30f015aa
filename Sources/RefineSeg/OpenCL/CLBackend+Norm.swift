extension CLBackend: NormOps {
    public func batchNormTrain(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                               momentum: Float, eps: Float, activation: NormActivation, geometry g: BatchNormGeometry) throws
        -> (y: Tensor, saved: BatchNormSaved) {
        let mean = try empty([g.c], op: "batch_norm_train"), invStd = try empty([g.c], op: "batch_norm_train")
        let y = try empty(x.shape, op: "batch_norm_train")
        if splitsNorm(g) {
            let (chunks, per) = gpuChunks(n: g.n, hw: g.hw)
            let partials = try empty([2 * g.c * per], op: "batch_norm_train")
            let options = "-DACT=\(activation.rawValue)"
            try run("bn_stats_partial", file: "norm", options: options,
                    [.tensor(x), .tensor(partials), .int(g.n), .int(g.c), .int(g.hw), .int(chunks)],
                    global: [g.c * per * KernelConstants.gpuGroup], local: [KernelConstants.gpuGroup], bytes: 4 * x.count)
            try run("bn_stats_final", file: "norm", options: options,
                    [.tensor(partials), .tensor(x), .tensor(mean), .tensor(invStd), .tensor(runningMean), .tensor(runningVar),
                     .int(g.n), .int(g.c), .int(g.hw), .int(per), .float(momentum), .float(eps)], global: [g.c])
            try run("bn_apply", file: "norm", options: options,
                    [.tensor(x), .tensor(y), .tensor(mean), .tensor(invStd), .tensor(weight), .tensor(bias), .int(g.c), .int(g.hw)],
                    global: planeGrid(g), local: [Self.pixelGroup, 1], bytes: 8 * x.count)
            return (y, BatchNormSaved(mean: mean, invStd: invStd, activation: activation, bias: activation == .none ? nil : bias))
        }
        if !gpuGlue {
            // DESC=0: the descriptor arguments are unused; any buffer fills them.
            try runItems("bn_train_cpu", file: "norm", options: "-DACT=\(activation.rawValue) -DDESC=0",
                         [.tensor(x), .tensor(y), .tensor(mean), .tensor(invStd), .tensor(runningMean), .tensor(runningVar),
                          .tensor(weight), .tensor(bias), .tensor(mean), .tensor(mean), .int(g.n), .int(g.c), .int(g.hw),
                          .float(momentum), .float(eps)],
                         items: [g.c], bytes: 8 * x.count)
            return (y, BatchNormSaved(mean: mean, invStd: invStd, activation: activation, bias: activation == .none ? nil : bias))
        }
        try run("bn_train", file: "norm", options: "-DACT=\(activation.rawValue)",
                [.tensor(x), .tensor(y), .tensor(mean), .tensor(invStd), .tensor(runningMean), .tensor(runningVar),
                 .tensor(weight), .tensor(bias), .int(g.n), .int(g.c), .int(g.hw), .float(momentum), .float(eps)],
                global: [g.c * KernelConstants.reductionGroup], local: [KernelConstants.reductionGroup], bytes: 8 * x.count)
        return (y, BatchNormSaved(mean: mean, invStd: invStd, activation: activation, bias: activation == .none ? nil : bias))
    }

    public func batchNormTrainDescriptors(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                                          momentum: Float, eps: Float, geometry g: BatchNormGeometry) throws
        -> (y: Tensor, saved: BatchNormSaved, descriptors: Tensor, argmax: Tensor) {
        guard !gpuGlue else {
            // GPU layout: the split batch norm, then the descriptors' own kernel.
            let (y, saved) = try batchNormTrain(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                                momentum: momentum, eps: eps, activation: .none, geometry: g)
            let (d, argmax) = try channelDescriptors(y)
            return (y, saved, d, argmax)
        }
        let op = "batch_norm_train_descriptors"
        let mean = try empty([g.c], op: op), invStd = try empty([g.c], op: op), y = try empty(x.shape, op: op)
        let d = try empty([2 * g.n, g.c], op: op), argmax = try empty([g.n, g.c], op: op)
        try runItems("bn_train_cpu", file: "norm", options: "-DACT=0 -DDESC=1",
                     [.tensor(x), .tensor(y), .tensor(mean), .tensor(invStd), .tensor(runningMean), .tensor(runningVar),
                      .tensor(weight), .tensor(bias), .tensor(d), .tensor(argmax), .int(g.n), .int(g.c), .int(g.hw),
                      .float(momentum), .float(eps)],
                     items: [g.c], bytes: 8 * x.count)
        return (y, BatchNormSaved(mean: mean, invStd: invStd, activation: .none, bias: nil), d, argmax)
    }

    public func batchNormEval(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                              eps: Float, activation: NormActivation, geometry g: BatchNormGeometry) throws -> Tensor {
        let y = try empty(x.shape, op: "batch_norm_eval")
        try run("bn_eval", file: "norm", options: "-DACT=\(activation.rawValue)",
                [.tensor(x), .tensor(y), .tensor(runningMean), .tensor(runningVar), .tensor(weight), .tensor(bias),
                 .int(g.c), .int(g.hw), .float(eps)],
                global: [(g.hw + KernelConstants.normSpan - 1) / KernelConstants.normSpan, g.n * g.c], bytes: 8 * x.count)
        return y
    }

    /// Whether training-mode batch norm runs the GPU variants (Kernels/norm.cl): on `gpuGlue`
    /// devices, for planes of at least one GPU work-group of values (smaller planes, BatchNorm1d's
    /// HW = 1 among them, keep the one-group-per-channel kernels).
    private func splitsNorm(_ g: BatchNormGeometry) -> Bool { gpuGlue && g.hw >= KernelConstants.gpuGroup }

    /// 2-D launch of bn_apply / bn_grad_dx: the plane's values rounded up to whole groups, by N·C planes.
    private func planeGrid(_ g: BatchNormGeometry) -> [Int] {
        [(g.hw + Self.pixelGroup - 1) / Self.pixelGroup * Self.pixelGroup, g.n * g.c]
    }

    public func batchNormBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, saved: BatchNormSaved, geometry g: BatchNormGeometry) throws
        -> (dx: Tensor, dweight: Tensor, dbias: Tensor) {
        let activation = saved.bias == nil ? NormActivation.none : saved.activation
        let dw = try empty([g.c], op: "batch_norm_backward"), db = try empty([g.c], op: "batch_norm_backward")
        let dx = try empty(x.shape, op: "batch_norm_backward")
        // Without an activation the bias argument is unused; any (C) tensor fills the slot.
        if splitsNorm(g) {
            let (chunks, per) = gpuChunks(n: g.n, hw: g.hw)
            let partials = try empty([2 * g.c * per], op: "batch_norm_backward")
            let options = "-DACT=\(activation.rawValue)"
            let stats: [KernelArg] = [.tensor(saved.mean), .tensor(saved.invStd), .tensor(weight), .tensor(saved.bias ?? weight)]
            try run("bn_grad_partial", file: "norm", options: options,
                    [.tensor(dy), .tensor(x)] + stats + [.tensor(partials), .int(g.n), .int(g.c), .int(g.hw), .int(chunks)],
                    global: [g.c * per * KernelConstants.gpuGroup], local: [KernelConstants.gpuGroup], bytes: 8 * x.count)
            try run("bn_grad_final", file: "norm", options: options, [.tensor(partials), .tensor(dw), .tensor(db), .int(g.c), .int(per)],
                    global: [g.c])
            try run("bn_grad_dx", file: "norm", options: options,
                    [.tensor(dy), .tensor(x)] + stats + [.tensor(dw), .tensor(db), .tensor(dx), .int(g.n), .int(g.c), .int(g.hw)],
                    global: planeGrid(g), local: [Self.pixelGroup, 1], bytes: 12 * x.count)
            return (dx, dw, db)
        }
        if !gpuGlue {
            try runItems("bn_backward_cpu", file: "norm", options: "-DACT=\(activation.rawValue)",
                         [.tensor(dy), .tensor(x), .tensor(saved.mean), .tensor(saved.invStd), .tensor(weight),
                          .tensor(saved.bias ?? weight), .tensor(dw), .tensor(db), .tensor(dx), .int(g.n), .int(g.c), .int(g.hw)],
                         items: [g.c], bytes: 12 * x.count)
            return (dx, dw, db)
        }
        try run("bn_backward", file: "norm", options: "-DACT=\(activation.rawValue)",
                [.tensor(dy), .tensor(x), .tensor(saved.mean), .tensor(saved.invStd), .tensor(weight),
                 .tensor(saved.bias ?? weight), .tensor(dw), .tensor(db), .tensor(dx), .int(g.n), .int(g.c), .int(g.hw)],
                global: [g.c * KernelConstants.reductionGroup], local: [KernelConstants.reductionGroup], bytes: 12 * x.count)
        return (dx, dw, db)
    }

    public func foldBatchNorm(convWeight: Tensor, convBias: Tensor?, weight: Tensor, bias: Tensor, runningMean: Tensor,
                              runningVar: Tensor, eps: Float, geometry g: BatchNormFoldGeometry) throws -> (weight: Tensor, bias: Tensor) {
        let (cout, per) = (g.cout, g.per)
        let fw = try empty(convWeight.shape, op: "fold_batch_norm"), fb = try empty([cout], op: "fold_batch_norm")
        // Without a conv bias the slot takes any tensor; hasBias = 0 keeps it unread.
        try run("bn_fold", file: "norm",
                [.tensor(convWeight), .tensor(convBias ?? bias), .int(convBias == nil ? 0 : 1), .tensor(weight), .tensor(bias),
                 .tensor(runningMean), .tensor(runningVar), .tensor(fw), .tensor(fb), .int(cout), .int(per), .float(eps)],
                global: [convWeight.count])
        return (fw, fb)
    }
}
