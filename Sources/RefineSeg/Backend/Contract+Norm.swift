// The norm ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Norm.swift, CLBackend+Norm.swift). See CONTRIBUTING.md.

// As for the convolutions (Contract+Conv2D.swift), the shapes are checked here, in front of every
// backend, which implements only the `geometry:` methods of `NormOps`.
extension NormOps {
    /// Training mode: normalises with the batch statistics (biased variance) and updates the
    /// running statistics in place; `activation` in the same pass (see `NormOps`).
    public func batchNormTrain(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                               momentum: Float, eps: Float, activation: NormActivation) throws -> (y: Tensor, saved: BatchNormSaved) {
        try batchNormTrain(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, momentum: momentum,
                           eps: eps, activation: activation,
                           geometry: try BatchNormGeometry(x, params: [weight, bias, runningMean, runningVar], op: "batch_norm_train"))
    }

    /// Training mode without an activation, with the channel-attention descriptors of the result
    /// (see `NormOps.batchNormTrainDescriptors`); x must also suit `channelDescriptors` (rank 4).
    public func batchNormTrainDescriptors(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                                          momentum: Float, eps: Float) throws
        -> (y: Tensor, saved: BatchNormSaved, descriptors: Tensor, argmax: Tensor) {
        let g = try BatchNormGeometry(x, params: [weight, bias, runningMean, runningVar], op: "batch_norm_train_descriptors")
        _ = try AttentionGeometry.descriptorInput(x)
        return try batchNormTrainDescriptors(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                             momentum: momentum, eps: eps, geometry: g)
    }

    /// Evaluation mode: normalises with the running statistics, then `activation`, same pass.
    public func batchNormEval(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                              eps: Float, activation: NormActivation) throws -> Tensor {
        try batchNormEval(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, eps: eps,
                          activation: activation,
                          geometry: try BatchNormGeometry(x, params: [weight, bias, runningMean, runningVar], op: "batch_norm_eval"))
    }

    /// (dx, dweight, dbias) of a training-mode batch norm from dy (like x) and its saved state.
    public func batchNormBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, saved: BatchNormSaved) throws
        -> (dx: Tensor, dweight: Tensor, dbias: Tensor) {
        let g = try BatchNormGeometry(x, params: [weight, saved.mean, saved.invStd] + (saved.bias.map { [$0] } ?? []),
                                      op: "batch_norm_backward")
        try dy.shape.expect(equal: x.shape, op: "batch_norm_backward")
        return try batchNormBackward(dy, input: x, weight: weight, saved: saved, geometry: g)
    }

    /// An eval-mode batch norm folded into the conv before it (see `NormOps`).
    public func foldBatchNorm(convWeight: Tensor, convBias: Tensor?, weight: Tensor, bias: Tensor, runningMean: Tensor,
                              runningVar: Tensor, eps: Float) throws -> (weight: Tensor, bias: Tensor) {
        try foldBatchNorm(convWeight: convWeight, convBias: convBias, weight: weight, bias: bias, runningMean: runningMean,
                          runningVar: runningVar, eps: eps,
                          geometry: try BatchNormFoldGeometry(convWeight: convWeight, convBias: convBias,
                                                              params: [weight, bias, runningMean, runningVar]))
    }
}

/// (Cout, values per output channel) of a conv weight a batch norm folds into; its per-channel
/// tensors must be (Cout).
public struct BatchNormFoldGeometry: Sendable {
    public let cout: Int, per: Int

    init(convWeight: Tensor, convBias: Tensor?, params: [Tensor]) throws {
        guard convWeight.shape.rank >= 2, convWeight.count > 0 else {
            throw RefineSegError.shapeMismatch(op: "fold_batch_norm", detail: "conv weight \(convWeight.shape) must be (Cout, …)")
        }
        let cout = convWeight.shape[0]
        for p in params + (convBias.map { [$0] } ?? []) where p.shape != [cout] {
            throw RefineSegError.shapeMismatch(op: "fold_batch_norm", detail: "per-channel tensor \(p.shape) must be [\(cout)] for conv weight \(convWeight.shape)")
        }
        self.cout = cout; per = convWeight.count / cout
    }
}

/// Batch-norm layout, shared by both backends: NCHW (or (N, C) read as (N, C, 1, 1)), one
/// statistic per channel over M = N·H·W values.
public struct BatchNormGeometry: Sendable {
    public let n: Int, c: Int, hw: Int
    /// Values per channel, M = N·H·W.
    public var count: Int { n * hw }

    init(_ x: Tensor, params: [Tensor], op: String) throws {
        guard x.shape.rank == 2 || x.shape.rank == 4 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "input \(x.shape) must be (N, C, H, W) or (N, C)")
        }
        let (n, c, h, w) = x.shape.nchw
        guard n * h * w > 0 else {
            throw RefineSegError.invalidArgument("[\(op)] input \(x.shape) has no values per channel")
        }
        for p in params where p.shape != [c] {
            throw RefineSegError.shapeMismatch(op: op, detail: "per-channel tensor \(p.shape) must be [\(c)] for input \(x.shape)")
        }
        self.n = n; self.c = c; self.hw = h * w
    }

    /// Flat index of element p (of H·W) of channel ch of image b.
    func index(_ b: Int, _ ch: Int, _ p: Int) -> Int { (b * c + ch) * hw + p }
}
