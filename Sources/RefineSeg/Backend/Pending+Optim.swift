// TEMPORARY during development: ops not yet implemented throw `unsupported`.
// Each op family's owner deletes its section when the real implementation lands.
// MARK: OptimOps on CLBackend
extension CLBackend: OptimOps {
    public func adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams) throws { throw RefineSegError.unsupported(op: "adamStep", backend: name) }
    public func sgdStep(param: Tensor, grad: Tensor, momentumBuffer: Tensor, lr: Float, momentum: Float, weightDecay: Float) throws { throw RefineSegError.unsupported(op: "sgdStep", backend: name) }
    public func sumOfSquares(_ tensors: [Tensor]) throws -> Tensor { throw RefineSegError.unsupported(op: "sumOfSquares", backend: name) }
    public func clipByGlobalNorm(_ tensors: [Tensor], sumOfSquares: Tensor, maxNorm: Float) throws { throw RefineSegError.unsupported(op: "clipByGlobalNorm", backend: name) }
}
