import RefineSeg

extension OpCases {
    static func loss() -> [OpCase] {
        var cases = [OpCase]()
        let maps: [Shape] = [[1, 1, 1, 1], [3, 1, 13, 5], [2, 1, 33, 31], [1, 1, 64, 48]]
        for s in maps {
            for (fill, note) in [(InputFill.binary(0.3), "binary target"), (.uniform(0, 1), "soft target")] {
                let inputs = [OpInput("logits", s, .uniform(-8, 8)), OpInput("target", s, fill, differentiable: false)]
                cases.append(OpCase(op: "bce_with_logits", params: "\(s) \(note)", inputs: inputs, tolerance: .sums,
                                    forward: { b, x in [try b.bceWithLogits(x[0], target: x[1])] },
                                    backward: { b, x, _, g in [try b.bceWithLogitsBackward(g[0], logits: x[0], target: x[1]), nil] }))
            }
            for (fill, note) in [(InputFill.binary(0.3), "binary target"), (.constant(0), "all background")] {
                let inputs = [OpInput("probs", s, .uniform(0, 1)), OpInput("target", s, fill, differentiable: false)]
                cases.append(OpCase(op: "soft_dice", params: "\(s) \(note)", inputs: inputs, tolerance: .sums,
                                    forward: { b, x in [try b.softDice(x[0], target: x[1])] },
                                    backward: { b, x, _, g in [try b.softDiceBackward(g[0], probs: x[0], target: x[1]), nil] }))
            }
        }
        for d in [1, 7, 33, 128] {
            cases.append(OpCase(op: "barlow_twins", params: "[\(d), \(d)] λ=0.0051", inputs: [OpInput("c", [d, d])], tolerance: .sums,
                                forward: { b, x in [try b.barlowTwinsFromCorrelation(x[0], lambda: 0.0051)] },
                                backward: { b, x, _, g in [try b.barlowTwinsFromCorrelationBackward(g[0], correlation: x[0], lambda: 0.0051)] }))
        }
        // Sparse lesions on tiny images leave some images with one class only (skipped by the loss);
        // an all-background batch must give 0.
        let lac: [(Shape, Float, String)] = [
            ([1, 4, 5, 7], 0.3, ""), ([3, 8, 13, 5], 0.3, ""), ([2, 32, 16, 16], 0.2, ""),
            ([6, 5, 2, 2], 0.15, " sparse lesions"), ([2, 6, 5, 3], 0, " all background"),
        ]
        for (s, p, note) in lac {
            let (n, _, h, w) = s.nchw
            let inputs = [OpInput("embedding", s), OpInput("logits", [n, 1, h, w], .uniform(-3, 3), differentiable: false),
                          OpInput("target", [n, 1, h, w], p > 0 ? .binary(p) : .constant(0), differentiable: false)]
            // No finite-difference check here: the loss holds its prototypes constant, but finite
            // differences of the forward move them too. LossTests checks this gradient by finite
            // differences with fixed prototypes, and against PyTorch (scripts/golden_losses.py).
            cases.append(OpCase(op: "lesion_contrastive", params: "\(s) τ=0.1 γ=4\(note)", inputs: inputs, tolerance: .sums,
                                gradCheck: false,
                                forward: { b, x in [try b.lesionContrastive(x[0], logits: x[1], target: x[2], params: LACParams())] },
                                backward: { b, x, _, g in
                                    [try b.lesionContrastiveBackward(g[0], embedding: x[0], logits: x[1], target: x[2], params: LACParams()),
                                     nil, nil]
                                }))
        }
        cases += segmentation()
        return cases
    }

    /// The fused supervised loss (BCE + Dice on σ(x) + LAC) with MODEL.md's weights, with and
    /// without the embedding; odd H·W exercise the float4 tails.
    static func segmentation() -> [OpCase] {
        var cases = [OpCase]()
        let shapes: [(Shape, Float, String)] = [
            ([1, 4, 5, 7], 0.3, ""), ([3, 8, 13, 5], 0.3, ""), ([2, 32, 40, 40], 0.2, " 2 chunks"), ([2, 3, 33, 37], 0.25, " 2 CPU spans, odd tail"),
            ([6, 5, 2, 2], 0.15, " sparse lesions"), ([2, 6, 5, 3], 0, " all background"),
        ]
        for (s, p, note) in shapes {
            let (n, d, h, w) = s.nchw
            for withLAC in [false, true] {
                let weights = SegmentationLossWeights(bce: 0.5, dice: -0.5, lac: withLAC ? 0.1 : 0)
                var inputs = [OpInput("logits", [n, 1, h, w], .uniform(-3, 3)),
                              OpInput("target", [n, 1, h, w], p > 0 ? .binary(p) : .constant(0), differentiable: false)]
                if withLAC { inputs.append(OpInput("embedding", [n, d, h, w])) }
                // Finite differences only without LAC: the loss holds its prototypes and the hard-false-positive
                // weights constant, which perturbing the inputs would move (LossTests checks that gradient).
                cases.append(OpCase(op: "segmentation_loss", params: "\(s)\(withLAC ? " β=0.1" : " no LAC")\(note)", inputs: inputs,
                                    tolerance: .sums, gradCheck: !withLAC,
                                    forward: { b, x in
                                        [try b.segmentationLoss(logits: x[0], embedding: withLAC ? x[2] : nil, target: x[1], weights: weights,
                                                                lac: LACParams()).loss]
                                    },
                                    backward: { b, x, _, g in
                                        let e = withLAC ? x[2] : nil
                                        let saved = try b.segmentationLoss(logits: x[0], embedding: e, target: x[1], weights: weights,
                                                                           lac: LACParams()).saved
                                        let d = try b.segmentationLossBackward(g[0], logits: x[0], embedding: e, target: x[1], weights: weights,
                                                                               lac: LACParams(), saved: saved)
                                        return [d.logits, nil] + (withLAC ? [d.embedding] : [])
                                    }))
            }
        }
        return cases
    }
}
