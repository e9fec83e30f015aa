extension CLBackend: LossOps {
    /// Elements per BCE partial sum (BCE_CHUNK in Kernels/losses.cl).
    static let bceChunk = 4096

    private func checkUpstream(_ dLoss: Tensor, op: String) throws {
        guard dLoss.count == 1 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "dLoss \(dLoss.shape) must have one element")
        }
    }

    /// out = (Σ partials in order) / divisor, on the device.
    func sumPartials(_ partials: Tensor, count: Int, divisor: Float, op: String) throws -> Tensor {
        let out = try empty([1], op: op)
        try run("sum_partials", file: "losses", [.tensor(partials), .int(count), .float(divisor), .tensor(out)], global: [1])
        return out
    }

    public func bceWithLogits(_ logits: Tensor, target: Tensor) throws -> Tensor {
        try target.shape.expect(equal: logits.shape, op: "bce_with_logits")
        let chunks = max(1, (logits.count + Self.bceChunk - 1) / Self.bceChunk)
        let partials = try empty([chunks], op: "bce_with_logits")
        try runPerGroup("bce_partial", file: "losses", [.tensor(logits), .tensor(target), .tensor(partials), .int(logits.count)],
                        groups: chunks)
        return try sumPartials(partials, count: chunks, divisor: Float(max(logits.count, 1)), op: "bce_with_logits")
    }

    public func bceWithLogitsBackward(_ dLoss: Tensor, logits: Tensor, target: Tensor) throws -> Tensor {
        try target.shape.expect(equal: logits.shape, op: "bce_with_logits_backward")
        try checkUpstream(dLoss, op: "bce_with_logits_backward")
        let dx = try empty(logits.shape, op: "bce_with_logits_backward")
        try run("bce_backward", file: "losses", [.tensor(dLoss), .tensor(logits), .tensor(target), .tensor(dx), .int(logits.count)],
                global: [logits.count])
        return dx
    }

    /// (N, 3) per-image Σp·y, Σp, Σy.
    private func diceSums(_ probs: Tensor, _ target: Tensor, _ g: DiceGeometry, op: String) throws -> Tensor {
        let stats = try empty([g.n, 3], op: op)
        try runPerGroup("dice_sums", file: "losses", [.tensor(probs), .tensor(target), .tensor(stats), .int(g.perImage)], groups: g.n)
        return stats
    }

    public func softDice(_ probs: Tensor, target: Tensor) throws -> Tensor {
        let g = try DiceGeometry(probs, target, op: "soft_dice")
        let stats = try diceSums(probs, target, g, op: "soft_dice")
        let out = try empty([1], op: "soft_dice")
        try run("dice_final", file: "losses", [.tensor(stats), .int(g.n), .tensor(out)], global: [1])
        return out
    }

    public func softDiceBackward(_ dLoss: Tensor, probs: Tensor, target: Tensor) throws -> Tensor {
        let g = try DiceGeometry(probs, target, op: "soft_dice_backward")
        try checkUpstream(dLoss, op: "soft_dice_backward")
        let stats = try diceSums(probs, target, g, op: "soft_dice_backward")
        let dp = try empty(probs.shape, op: "soft_dice_backward")
        try run("dice_backward", file: "losses",
                [.tensor(dLoss), .tensor(probs), .tensor(target), .tensor(stats), .tensor(dp), .int(g.n), .int(g.perImage)],
                global: [probs.count])
        return dp
    }

    public func barlowTwinsFromCorrelation(_ c: Tensor, lambda: Float) throws -> Tensor {
        let d = try BarlowGeometry.side(of: c, op: "barlow_twins")
        let rows = try empty([d], op: "barlow_twins")
        try runPerGroup("barlow_rows", file: "losses", [.tensor(c), .tensor(rows), .int(d), .float(lambda)], groups: d)
        return try sumPartials(rows, count: d, divisor: 1, op: "barlow_twins")
    }

    public func barlowTwinsFromCorrelationBackward(_ dLoss: Tensor, correlation c: Tensor, lambda: Float) throws -> Tensor {
        let d = try BarlowGeometry.side(of: c, op: "barlow_twins_backward")
        try checkUpstream(dLoss, op: "barlow_twins_backward")
        let dc = try empty([d, d], op: "barlow_twins_backward")
        try run("barlow_backward", file: "losses", [.tensor(dLoss), .tensor(c), .tensor(dc), .int(d), .float(lambda)],
                global: [d * d])
        return dc
    }

    /// The device state shared by the LAC forward and backward.
    private struct LACState {
        /// (N, D, H·W) normalised embedding; (N, H·W) clamped norms.
        let z: Tensor, norms: Tensor
        /// (N, 2, D) prototypes (lesion, background); (N) 1 when the image has both classes.
        let protos: Tensor, valid: Tensor
        /// (N, 2) Σωℓ and Σω per image.
        let imageSums: Tensor
    }

    private func lacState(_ e: Tensor, _ logits: Tensor, _ target: Tensor, _ params: LACParams, _ g: LACGeometry,
                          op: String) throws -> LACState {
        let pixels = g.n * g.hw
        let z = try empty(e.shape, op: op), norms = try empty([g.n, g.hw], op: op)
        try run("lac_normalise", file: "losses", [.tensor(e), .tensor(z), .tensor(norms), .int(g.n), .int(g.d), .int(g.hw)],
                global: [pixels])
        let sums = try empty([g.n, 2, g.d], op: op), counts = try empty([g.n, 2], op: op)
        try runPerGroup("lac_class_sums", file: "losses",
                        [.tensor(z), .tensor(target), .tensor(sums), .tensor(counts), .int(g.d), .int(g.hw)], groups: g.n * g.d)
        let protos = try empty([g.n, 2, g.d], op: op), valid = try empty([g.n], op: op)
        try run("lac_prototypes", file: "losses",
                [.tensor(sums), .tensor(counts), .tensor(protos), .tensor(valid), .int(g.n), .int(g.d)], global: [g.n])
        let terms = try empty([g.n, 2, g.hw], op: op)
        try run("lac_pixel", file: "losses",
                [.tensor(z), .tensor(logits), .tensor(target), .tensor(protos), .tensor(valid), .tensor(terms),
                 .int(g.n), .int(g.d), .int(g.hw), .float(params.tau), .float(params.gamma)], global: [pixels])
        let imageSums = try empty([g.n, 2], op: op)
        try runPerGroup("lac_image_sums", file: "losses", [.tensor(terms), .tensor(imageSums), .int(g.hw)], groups: g.n * 2)
        return LACState(z: z, norms: norms, protos: protos, valid: valid, imageSums: imageSums)
    }

    public func lesionContrastive(_ embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams) throws -> Tensor {
        let g = try LACGeometry(embedding, logits, target, op: "lesion_contrastive")
        let s = try lacState(embedding, logits, target, params, g, op: "lesion_contrastive")
        let out = try empty([1], op: "lesion_contrastive")
        try run("lac_final", file: "losses", [.tensor(s.imageSums), .tensor(s.valid), .int(g.n), .tensor(out)], global: [1])
        return out
    }

    public func lesionContrastiveBackward(_ dLoss: Tensor, embedding: Tensor, logits: Tensor, target: Tensor,
                                          params: LACParams) throws -> Tensor {
        let g = try LACGeometry(embedding, logits, target, op: "lesion_contrastive_backward")
        try checkUpstream(dLoss, op: "lesion_contrastive_backward")
        let s = try lacState(embedding, logits, target, params, g, op: "lesion_contrastive_backward")
        let de = try empty(embedding.shape, op: "lesion_contrastive_backward")
        try run("lac_backward", file: "losses",
                [.tensor(dLoss), .tensor(s.z), .tensor(s.norms), .tensor(logits), .tensor(target), .tensor(s.protos),
                 .tensor(s.valid), .tensor(s.imageSums), .tensor(de), .int(g.n), .int(g.d), .int(g.hw),
                 .float(params.tau), .float(params.gamma)], global: [g.n * g.hw])
        return de
    }
}
