import Foundation

extension CPUBackend: LossOps {
    /// The upstream gradient of a loss: its single value (one element, checked by the entry point).
    private func upstream(_ dLoss: Tensor) throws -> Double { try values(dLoss)[0] }

    public func bceWithLogits(_ logits: Tensor, target: Tensor, geometry g: BCEGeometry) throws -> Tensor {
        let x = try values(logits), y = try values(target)
        var total = 0.0
        for (a, t) in zip(x, y) { total += max(a, 0) - a * t + log1p(exp(-abs(a))) }
        return make([total / Double(max(x.count, 1))], [1])
    }

    public func bceWithLogitsBackward(_ dLoss: Tensor, logits: Tensor, target: Tensor, geometry g: BCEGeometry) throws -> Tensor {
        let up = try upstream(dLoss) / Double(max(g.count, 1))
        let x = try values(logits), y = try values(target)
        return make(zip(x, y).map { a, t in (1 / (1 + exp(-a)) - t) * up }, logits.shape)
    }

    public func softDice(_ probs: Tensor, target: Tensor, geometry g: DiceGeometry) throws -> Tensor {
        let p = try values(probs), y = try values(target)
        var total = 0.0
        for b in 0..<g.n {
            let s = g.sums(p, y, image: b)
            total += (2 * s.inter + 1) / (s.p + s.y + 1)
        }
        return make([total / Double(g.n)], [1])
    }

    public func softDiceBackward(_ dLoss: Tensor, probs: Tensor, target: Tensor, geometry g: DiceGeometry) throws -> Tensor {
        let up = try upstream(dLoss) / Double(g.n)
        let p = try values(probs), y = try values(target)
        var dp = [Double](repeating: 0, count: probs.count)     // like probs
        for b in 0..<g.n {
            let s = g.sums(p, y, image: b)
            let den = s.p + s.y + 1
            // d/dp_i of (2I + 1)/(P + Y + 1) = (2y_i·den − (2I + 1)) / den².
            for i in (b * g.perImage)..<((b + 1) * g.perImage) {
                dp[i] = up * (2 * y[i] * den - (2 * s.inter + 1)) / (den * den)
            }
        }
        return make(dp, probs.shape)
    }

    public func barlowTwinsFromCorrelation(_ c: Tensor, lambda: Float, geometry g: BarlowGeometry) throws -> Tensor {
        let d = g.d
        let v = try values(c)                                   // (D, D)
        var onDiag = 0.0, offDiag = 0.0
        for i in 0..<d {
            for j in 0..<d {
                let e = v[i * d + j]
                if i == j { onDiag += (1 - e) * (1 - e) } else { offDiag += e * e }
            }
        }
        return make([onDiag + Double(lambda) * offDiag], [1])
    }

    public func barlowTwinsFromCorrelationBackward(_ dLoss: Tensor, correlation c: Tensor, lambda: Float, geometry g: BarlowGeometry) throws -> Tensor {
        let d = g.d
        let up = try upstream(dLoss)
        let v = try values(c)
        var dc = [Double](repeating: 0, count: d * d)           // (D, D)
        for i in 0..<d {
            for j in 0..<d {
                let e = v[i * d + j]
                dc[i * d + j] = up * (i == j ? -2 * (1 - e) : 2 * Double(lambda) * e)
            }
        }
        return make(dc, [d, d])
    }

    public func lesionContrastive(_ embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams, geometry g: LACGeometry) throws -> Tensor {
        let lac = LACReference(g, params: params, embedding: try values(embedding), logits: try values(logits),
                               target: try values(target))
        return make([lac.loss(prototypes: lac.prototypes())], [1])
    }

    public func lesionContrastiveBackward(_ dLoss: Tensor, embedding: Tensor, logits: Tensor, target: Tensor,
                                          params: LACParams, geometry g: LACGeometry) throws -> Tensor {
        let up = try upstream(dLoss)
        let lac = LACReference(g, params: params, embedding: try values(embedding), logits: try values(logits),
                               target: try values(target))
        return make(lac.gradient(prototypes: lac.prototypes()).map { $0 * up }, embedding.shape)
    }

    /// The reference keeps nothing: its backward evaluates the terms again from the inputs.
    public func segmentationLoss(logits: Tensor, embedding: Tensor?, target: Tensor, weights: SegmentationLossWeights,
                                 lac: LACParams, geometry g: SegLossGeometry) throws -> (loss: Tensor, saved: SegmentationLossSaved) {
        let x = try values(logits), y = try values(target)
        var bce = 0.0
        for (a, t) in zip(x, y) { bce += max(a, 0) - a * t + log1p(exp(-abs(a))) }
        let p = x.map { 1 / (1 + exp(-$0)) }
        let dice = DiceGeometry(n: g.n, perImage: g.hw)
        var diceMean = 0.0
        for b in 0..<g.n { let s = dice.sums(p, y, image: b); diceMean += (2 * s.inter + 1) / (s.p + s.y + 1) }
        var total = Double(weights.bce) * bce / Double(x.count) + Double(weights.dice) * diceMean / Double(g.n)
        if let embedding {
            let ref = LACReference(LACGeometry(n: g.n, d: g.d, hw: g.hw), params: lac, embedding: try values(embedding), logits: x, target: y)
            total += Double(weights.lac) * ref.loss(prototypes: ref.prototypes())
        }
        return (make([total], [1]), SegmentationLossSaved(tensors: []))
    }

    public func segmentationLossBackward(_ dLoss: Tensor, logits: Tensor, embedding: Tensor?, target: Tensor,
                                         weights: SegmentationLossWeights, lac: LACParams, saved: SegmentationLossSaved,
                                         geometry g: SegLossGeometry) throws -> (logits: Tensor, embedding: Tensor?) {
        let up = try upstream(dLoss)
        let x = try values(logits), y = try values(target)
        let p = x.map { 1 / (1 + exp(-$0)) }
        let dice = DiceGeometry(n: g.n, perImage: g.hw)
        var dx = [Double](repeating: 0, count: x.count)            // like logits
        for b in 0..<g.n {
            let s = dice.sums(p, y, image: b)
            let den = s.p + s.y + 1
            for i in (b * g.hw)..<((b + 1) * g.hw) {
                let dBCE = (p[i] - y[i]) / Double(x.count)
                // d/dp_i of (2I + 1)/(P + Y + 1) = (2y_i·den − (2I + 1)) / den², times dp/dx = p(1 − p).
                let dDice = (2 * y[i] * den - (2 * s.inter + 1)) / (den * den) / Double(g.n) * p[i] * (1 - p[i])
                dx[i] = up * (Double(weights.bce) * dBCE + Double(weights.dice) * dDice)
            }
        }
        var de: Tensor?
        if let embedding {
            let ref = LACReference(LACGeometry(n: g.n, d: g.d, hw: g.hw), params: lac, embedding: try values(embedding), logits: x, target: y)
            de = make(ref.gradient(prototypes: ref.prototypes()).map { $0 * up * Double(weights.lac) }, embedding.shape)
        }
        return (make(dx, logits.shape), de)
    }
}

/// The lesion-aware contrastive loss of docs/MODEL.md in plain double loops, split so the
/// prototypes can be held fixed (the loss treats them as constants; tests differentiate
/// `loss(prototypes:)` by finite differences with prototypes from the unperturbed input).
///
/// A pixel is lesion when its target is > 0.5. The hard-false-positive test
/// sigmoid(logit) > 0.5 is evaluated as logit > 0 (the same set, without rounding).
struct LACReference {
    /// F.normalize's floor on the norm.
    static let normFloor = 1e-12

    let g: LACGeometry
    let tau: Double, gamma: Double
    /// z: the embedding L2-normalised per pixel, (N, D, H·W).
    let z: [Double]
    /// max(‖e_pixel‖, 1e-12), (N, H·W).
    let norms: [Double]
    let logits: [Double], target: [Double]

    init(_ g: LACGeometry, params: LACParams, embedding e: [Double], logits: [Double], target: [Double]) {
        self.g = g; tau = Double(params.tau); gamma = Double(params.gamma)
        self.logits = logits; self.target = target
        var z = e
        var norms = [Double](repeating: 0, count: g.n * g.hw)
        for b in 0..<g.n {
            for p in 0..<g.hw {
                var sq = 0.0
                for k in 0..<g.d { let v = e[(b * g.d + k) * g.hw + p]; sq += v * v }
                let norm = max(sq.squareRoot(), Self.normFloor)
                norms[b * g.hw + p] = norm
                for k in 0..<g.d { z[(b * g.d + k) * g.hw + p] /= norm }
            }
        }
        self.z = z; self.norms = norms
    }

    func isLesion(_ b: Int, _ p: Int) -> Bool { target[b * g.hw + p] > 0.5 }

    /// Per image, (p_fg, p_bg) each (D), or nil when the image lacks lesion or background pixels.
    func prototypes() -> [(fg: [Double], bg: [Double])?] {
        (0..<g.n).map { b in
            var fg = [Double](repeating: 0, count: g.d), bg = fg
            var nf = 0, nb = 0
            for p in 0..<g.hw {
                let lesion = isLesion(b, p)
                if lesion { nf += 1 } else { nb += 1 }
                for k in 0..<g.d {
                    if lesion { fg[k] += z[(b * g.d + k) * g.hw + p] } else { bg[k] += z[(b * g.d + k) * g.hw + p] }
                }
            }
            guard nf > 0, nb > 0 else { return nil }
            return (Self.normalised(fg.map { $0 / Double(nf) }), Self.normalised(bg.map { $0 / Double(nb) }))
        }
    }

    static func normalised(_ v: [Double]) -> [Double] {
        let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), normFloor)
        return v.map { $0 / norm }
    }

    /// Pixel p of image b: its weight ω, and the logit margin t = (z·p_other − z·p_own)/τ, so ℓ = softplus(t).
    private func pixel(_ b: Int, _ p: Int, _ proto: (fg: [Double], bg: [Double])) -> (weight: Double, margin: Double) {
        var sf = 0.0, sb = 0.0
        for k in 0..<g.d {
            let v = z[(b * g.d + k) * g.hw + p]
            sf += v * proto.fg[k]; sb += v * proto.bg[k]
        }
        let lesion = isLesion(b, p)
        let weight = 1 + (!lesion && logits[b * g.hw + p] > 0 ? gamma : 0)
        return (weight, (lesion ? sb - sf : sf - sb) / tau)
    }

    static func softplus(_ t: Double) -> Double { max(t, 0) + log1p(exp(-abs(t))) }

    /// Mean over images with both classes of Σωℓ/Σω; 0 when no image has both.
    func loss(prototypes: [(fg: [Double], bg: [Double])?]) -> Double {
        var total = 0.0, images = 0
        for b in 0..<g.n {
            guard let proto = prototypes[b] else { continue }
            var num = 0.0, den = 0.0
            for p in 0..<g.hw {
                let px = pixel(b, p, proto)
                num += px.weight * Self.softplus(px.margin); den += px.weight
            }
            total += num / den; images += 1
        }
        return images == 0 ? 0 : total / Double(images)
    }

    /// d loss / d embedding (N, D, H·W) with the prototypes held constant.
    func gradient(prototypes: [(fg: [Double], bg: [Double])?]) -> [Double] {
        var de = [Double](repeating: 0, count: z.count)
        let images = prototypes.filter { $0 != nil }.count
        guard images > 0 else { return de }
        for b in 0..<g.n {
            guard let proto = prototypes[b] else { continue }
            var den = 0.0
            for p in 0..<g.hw { den += pixel(b, p, proto).weight }
            for p in 0..<g.hw {
                let px = pixel(b, p, proto)
                // dℓ/dt = σ(t); t = ±(z·p_bg − z·p_fg)/τ, so dℓ/dz = q·(p_bg − p_fg)/τ with q = ±σ(t).
                let sig = 1 / (1 + exp(-px.margin))
                let q = px.weight / den / Double(images) * (isLesion(b, p) ? sig : -sig) / tau
                var dz = [Double](repeating: 0, count: g.d)
                var zDotDz = 0.0
                for k in 0..<g.d {
                    dz[k] = q * (proto.bg[k] - proto.fg[k])
                    zDotDz += z[(b * g.d + k) * g.hw + p] * dz[k]
                }
                // Through z = e / max(‖e‖, 1e-12): de = (dz − z·(z·dz)) / ‖e‖ above the floor, dz / 1e-12 below.
                let norm = norms[b * g.hw + p]
                let above = norm > Self.normFloor
                for k in 0..<g.d {
                    let i = (b * g.d + k) * g.hw + p
                    de[i] = (dz[k] - (above ? z[i] * zDotDz : 0)) / norm
                }
            }
        }
        return de
    }
}
