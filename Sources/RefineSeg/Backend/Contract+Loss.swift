// The loss ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Loss.swift, CLBackend+Loss.swift). See CONTRIBUTING.md.

// As for the convolutions (Contract+Conv2D.swift), the shapes are checked here, in front of every
// backend, which implements only the `geometry:` methods of `LossOps`.
extension LossOps {
    /// Mean over all elements of the stable BCE-with-logits of logits and a target like them (see `LossOps`).
    public func bceWithLogits(_ logits: Tensor, target: Tensor) throws -> Tensor {
        try bceWithLogits(logits, target: target, geometry: try BCEGeometry(target, logits, op: "bce_with_logits"))
    }

    public func bceWithLogitsBackward(_ dLoss: Tensor, logits: Tensor, target: Tensor) throws -> Tensor {
        let g = try BCEGeometry(target, logits, op: "bce_with_logits_backward")
        try checkUpstream(dLoss, op: "bce_with_logits_backward")
        return try bceWithLogitsBackward(dLoss, logits: logits, target: target, geometry: g)
    }

    /// Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij² of a square cross-correlation matrix c (D, D).
    public func barlowTwinsFromCorrelation(_ c: Tensor, lambda: Float) throws -> Tensor {
        try barlowTwinsFromCorrelation(c, lambda: lambda, geometry: try BarlowGeometry(c, op: "barlow_twins"))
    }

    public func barlowTwinsFromCorrelationBackward(_ dLoss: Tensor, correlation c: Tensor, lambda: Float) throws -> Tensor {
        let g = try BarlowGeometry(c, op: "barlow_twins_backward")
        try checkUpstream(dLoss, op: "barlow_twins_backward")
        return try barlowTwinsFromCorrelationBackward(dLoss, correlation: c, lambda: lambda, geometry: g)
    }

    /// Batch mean of the per-image soft Dice of probabilities p (N, 1, H, W) and a target like p (see `LossOps`).
    public func softDice(_ probs: Tensor, target: Tensor) throws -> Tensor {
        try softDice(probs, target: target, geometry: try DiceGeometry(probs, target, op: "soft_dice"))
    }

    public func softDiceBackward(_ dLoss: Tensor, probs: Tensor, target: Tensor) throws -> Tensor {
        let g = try DiceGeometry(probs, target, op: "soft_dice_backward")
        try checkUpstream(dLoss, op: "soft_dice_backward")
        return try softDiceBackward(dLoss, probs: probs, target: target, geometry: g)
    }

    /// The lesion-aware contrastive loss of embedding (N, D, H, W), logits and target (N, 1, H, W) (see `LossOps`).
    public func lesionContrastive(_ embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams) throws -> Tensor {
        try lesionContrastive(embedding, logits: logits, target: target, params: params,
                              geometry: try LACGeometry(embedding, logits, target, op: "lesion_contrastive"))
    }

    public func lesionContrastiveBackward(_ dLoss: Tensor, embedding: Tensor, logits: Tensor, target: Tensor,
                                          params: LACParams) throws -> Tensor {
        let g = try LACGeometry(embedding, logits, target, op: "lesion_contrastive_backward")
        try checkUpstream(dLoss, op: "lesion_contrastive_backward")
        return try lesionContrastiveBackward(dLoss, embedding: embedding, logits: logits, target: target, params: params, geometry: g)
    }

    /// The fused supervised loss of logits (N, 1, H, W), target like them and optional embedding (N, D, H, W) (see `LossOps`).
    public func segmentationLoss(logits: Tensor, embedding: Tensor?, target: Tensor, weights: SegmentationLossWeights,
                                 lac: LACParams) throws -> (loss: Tensor, saved: SegmentationLossSaved) {
        try segmentationLoss(logits: logits, embedding: embedding, target: target, weights: weights, lac: lac,
                             geometry: try SegLossGeometry(logits, embedding, target, op: "segmentation_loss"))
    }

    public func segmentationLossBackward(_ dLoss: Tensor, logits: Tensor, embedding: Tensor?, target: Tensor,
                                         weights: SegmentationLossWeights, lac: LACParams, saved: SegmentationLossSaved) throws
        -> (logits: Tensor, embedding: Tensor?) {
        let g = try SegLossGeometry(logits, embedding, target, op: "segmentation_loss_backward")
        try checkUpstream(dLoss, op: "segmentation_loss_backward")
        return try segmentationLossBackward(dLoss, logits: logits, embedding: embedding, target: target, weights: weights, lac: lac,
                                            saved: saved, geometry: g)
    }
}

/// The upstream gradient of a loss (a backward's `dLoss`) must have one element.
private func checkUpstream(_ dLoss: Tensor, op: String) throws {
    guard dLoss.count == 1 else {
        throw RefineSegError.shapeMismatch(op: op, detail: "dLoss \(dLoss.shape) must have one element")
    }
}

/// BCE-with-logits layout: logits and target of one shape, `count` values each, the same check
/// as an elementwise binary op's (`BinaryGeometry`; built as (target, logits), so a mismatch reads
/// "target vs logits").
public typealias BCEGeometry = BinaryGeometry

/// Layout of the fused supervised loss: logits and target (N, 1, H, W), embedding (N, D, H, W) or none (d = 0).
public struct SegLossGeometry: Sendable {
    public let n: Int, d: Int, hw: Int

    init(_ logits: Tensor, _ embedding: Tensor?, _ target: Tensor, op: String) throws {
        if let embedding {
            let g = try LACGeometry(embedding, logits, target, op: op)
            n = g.n; d = g.d; hw = g.hw
            return
        }
        try logits.shape.expect(rank: 4, op: op, name: "logits")
        let (n, c, h, w) = logits.shape.nchw
        try target.shape.expect(equal: logits.shape, op: op)
        guard c == 1, n > 0, h * w > 0 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "logits \(logits.shape) must be (N, 1, H, W) with N, H, W > 0")
        }
        self.n = n; d = 0; hw = h * w
    }
}

/// Soft Dice layout: N images of `perImage` values each (any shape with the batch first).
public struct DiceGeometry: Sendable {
    public let n: Int, perImage: Int

    init(n: Int, perImage: Int) { self.n = n; self.perImage = perImage }

    init(_ probs: Tensor, _ target: Tensor, op: String) throws {
        try target.shape.expect(equal: probs.shape, op: op)
        guard probs.shape.rank >= 2, probs.shape[0] > 0 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "probabilities \(probs.shape) must be (N, 1, H, W) with N > 0")
        }
        n = probs.shape[0]; perImage = probs.count / n
    }

    /// Σ p·y, Σ p and Σ y over image b.
    func sums(_ p: [Double], _ y: [Double], image b: Int) -> (inter: Double, p: Double, y: Double) {
        var inter = 0.0, sp = 0.0, sy = 0.0
        for i in (b * perImage)..<((b + 1) * perImage) {
            inter += p[i] * y[i]; sp += p[i]; sy += y[i]
        }
        return (inter, sp, sy)
    }
}

/// A square (D, D) cross-correlation matrix (Barlow Twins).
public struct BarlowGeometry: Sendable {
    public let d: Int

    init(_ c: Tensor, op: String) throws {
        guard c.shape.rank == 2, c.shape[0] == c.shape[1] else {
            throw RefineSegError.shapeMismatch(op: op, detail: "correlation \(c.shape) must be square (D, D)")
        }
        d = c.shape[0]
    }
}

/// Layout of the lesion-aware contrastive loss: embedding (N, D, H, W), logits and target (N, 1, H, W).
public struct LACGeometry: Sendable {
    public let n: Int, d: Int, hw: Int

    init(n: Int, d: Int, hw: Int) { self.n = n; self.d = d; self.hw = hw }

    init(_ embedding: Tensor, _ logits: Tensor, _ target: Tensor, op: String) throws {
        try embedding.shape.expect(rank: 4, op: op, name: "embedding")
        let (n, d, h, w) = embedding.shape.nchw
        try logits.shape.expect(equal: [n, 1, h, w], op: op)
        try target.shape.expect(equal: [n, 1, h, w], op: op)
        guard n > 0, d > 0, h * w > 0 else {
            throw RefineSegError.invalidArgument("[\(op)] embedding \(embedding.shape) is empty")
        }
        self.n = n; self.d = d; self.hw = h * w
    }
}
