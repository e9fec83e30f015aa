/// The supervised loss of docs/MODEL.md:
/// L = 0.5 · BCEWithLogits + 0.5 · (1 − softDice(sigmoid(logit))) + β · L_LAC.
public struct SegmentationLoss {
    /// Weight of the lesion-aware contrastive term; 0 turns it off (and skips the embedding head).
    public var beta: Float = 0.1
    public var lac = LACParams()
    public init(beta: Float = 0.1) { self.beta = beta }

    /// The differentiable part (constant 0.5 omitted) and the host-side constant to add for reporting.
    public func callAsFunction(_ out: DFRUNetOutput, target: Tensor, _ g: Graph) throws -> (loss: Var, offset: Float) {
        let bce = try g.bceWithLogits(out.logits, target: target)
        let dice = try g.softDice(try g.sigmoid(out.logits), target: target)
        var total = try g.add(try g.scale(bce, by: 0.5), try g.scale(dice, by: -0.5))
        if beta > 0, let e = out.embedding {
            let l = try g.lesionContrastive(e, logits: out.logits.value, target: target, params: lac)
            total = try g.add(total, try g.scale(l, by: beta))
        }
        return (total, 0.5)
    }
}
