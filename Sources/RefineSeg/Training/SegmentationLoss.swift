/// The supervised loss of docs/MODEL.md:
/// L = 0.5 · BCEWithLogits + 0.5 · (1 − softDice(sigmoid(logit))) + β · L_LAC,
/// evaluated as one fused graph node (`Graph.segmentationLoss`).
public struct SegmentationLoss {
    /// Weight of the lesion-aware contrastive term; 0 turns it off (and skips the embedding head).
    public var beta: Float = 0.1
    public var lac = LACParams()
    public init(beta: Float = 0.1) { self.beta = beta }

    /// The differentiable part (constant 0.5 omitted) and the host-side constant to add for reporting.
    public func callAsFunction(_ out: DFRUNetOutput, target: Tensor, _ g: Graph) throws -> (loss: Var, offset: Float) {
        let embedding = beta > 0 ? out.embedding : nil
        let loss = try g.segmentationLoss(logits: out.logits, embedding: embedding, target: target,
                                          weights: SegmentationLossWeights(bce: 0.5, dice: -0.5, lac: embedding == nil ? 0 : beta),
                                          lac: lac)
        return (loss, 0.5)
    }
}
