// TEMPORARY during development: ops not yet implemented throw `unsupported`.
// Each op family's owner deletes its section when the real implementation lands.
// MARK: NormOps on CLBackend
extension CLBackend: NormOps {
    public func batchNormTrain(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, momentum: Float, eps: Float) throws -> (y: Tensor, saved: BatchNormSaved) { throw RefineSegError.unsupported(op: "batchNormTrain", backend: name) }
    public func batchNormEval(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, eps: Float) throws -> Tensor { throw RefineSegError.unsupported(op: "batchNormEval", backend: name) }
    public func batchNormBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, saved: BatchNormSaved) throws -> (dx: Tensor, dweight: Tensor, dbias: Tensor) { throw RefineSegError.unsupported(op: "batchNormBackward", backend: name) }
}
