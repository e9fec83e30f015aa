// TEMPORARY during development: ops not yet implemented throw `unsupported`.
// Each op family's owner deletes its section when the real implementation lands.
// MARK: LossOps on CLBackend
extension CLBackend: LossOps {
    public func bceWithLogits(_ logits: Tensor, target: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "bceWithLogits", backend: name) }
    public func bceWithLogitsBackward(_ dLoss: Tensor, logits: Tensor, target: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "bceWithLogitsBackward", backend: name) }
    public func softDice(_ probs: Tensor, target: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "softDice", backend: name) }
    public func softDiceBackward(_ dLoss: Tensor, probs: Tensor, target: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "softDiceBackward", backend: name) }
    public func barlowTwinsFromCorrelation(_ c: Tensor, lambda: Float) throws -> Tensor { throw RefineSegError.unsupported(op: "barlowTwinsFromCorrelation", backend: name) }
    public func barlowTwinsFromCorrelationBackward(_ dLoss: Tensor, correlation c: Tensor, lambda: Float) throws -> Tensor { throw RefineSegError.unsupported(op: "barlowTwinsFromCorrelationBackward", backend: name) }
    public func lesionContrastive(_ embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams) throws -> Tensor { throw RefineSegError.unsupported(op: "lesionContrastive", backend: name) }
    public func lesionContrastiveBackward(_ dLoss: Tensor, embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams) throws -> Tensor { throw RefineSegError.unsupported(op: "lesionContrastiveBackward", backend: name) }
}
