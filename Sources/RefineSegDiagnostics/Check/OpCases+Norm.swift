import RefineSeg

extension Tolerance {
    /// Batch norm: the per-channel mean and variance are reductions over up to N·H·W ≈ 10⁴
    /// float terms, and dividing by a small standard deviation magnifies their rounding; the
    /// backward also subtracts two such sums from M·dy. Both sides agree to ~1e-6 relative.
    static let batchNorm = Tolerance(nmse: 1e-9, maxAbs: 2e-4)
}

extension OpCases {
    static func norm() -> [OpCase] {
        var cases = [OpCase]()
        // (shape, fill of x): odd NCHW shapes, BatchNorm1d (N, C) shapes, an offset input (the
        // variance must not come from E[x²] − E[x]²), one value per channel, and a constant input.
        let plans: [(Shape, InputFill, String)] = [
            ([3, 5, 7, 13], .uniform(-1, 1), ""), ([1, 3, 31, 33], .uniform(-1, 1), ""), ([3, 7, 13, 5], .uniform(-2, 3), ""),
            ([1, 16, 33, 31], .uniform(-1, 1), ""), ([2, 4, 9, 11], .uniform(99, 101), " x∈[99,101)"),
            ([5, 33], .uniform(-1, 1), ""), ([3, 31], .uniform(-1, 1), ""), ([8, 1024], .uniform(-1, 1), ""),
            ([1, 1, 1, 1], .uniform(-1, 1), " one value per channel"), ([1, 3], .uniform(-1, 1), " one value per channel"),
            ([3, 4, 5, 7], .constant(0.7), " constant"),
            // Planes of ≥ 256 values: the GPU variants' path (CLBackend.splitsNorm), small enough for Oclgrind.
            ([2, 3, 17, 19], .uniform(-1, 1), ""), ([2, 3, 17, 19], .uniform(99, 101), " x∈[99,101)"),
            ([2, 2, 16, 17], .constant(0.7), " constant"), ([2, 3, 67, 65], .uniform(-1, 1), " two chunks per plane"),
        ]
        for (s, fill, note) in plans {
            let c = s[1]
            let inputs = [OpInput("x", s, fill), OpInput("weight", [c], .uniform(0.5, 1.5)), OpInput("bias", [c]),
                          OpInput("running_mean", [c], differentiable: false),
                          OpInput("running_var", [c], .uniform(0.5, 1.5), differentiable: false)]
            let small = s.count <= 2048
            for momentum: Float in [0.1, 0] {
                for act in NormActivation.allCases {
                    // The running statistics are outputs too, so the in-place update is compared; they
                    // depend on x unless momentum is 0, which is why only momentum 0 is gradient-checked.
                    // The fused activations run on the small shapes (ReLU's kink makes finite differences of
                    // large ones unreliable; the plain shapes cover the rest of the kernel).
                    if momentum == 0 && !small { continue }
                    if act != .none && (!small || note == " constant") { continue }
                    cases.append(OpCase(
                        op: "batch_norm\(act.opSuffix)_train", params: "\(s) momentum \(momentum)\(note)",
                        inputs: inputs, tolerance: .batchNorm, gradCheck: momentum == 0,
                        forward: { b, x in
                            // Copies, so every run starts from the same running statistics.
                            let rm = try b.copy(x[3]), rv = try b.copy(x[4])
                            let r = try b.batchNormTrain(x[0], weight: x[1], bias: x[2], runningMean: rm, runningVar: rv,
                                                         momentum: momentum, eps: 1e-5, activation: act)
                            return [r.y, rm, rv]
                        },
                        backward: { b, x, _, g in
                            let saved = try b.batchNormTrain(x[0], weight: x[1], bias: x[2], runningMean: try b.copy(x[3]),
                                                             runningVar: try b.copy(x[4]), momentum: momentum, eps: 1e-5,
                                                             activation: act).saved
                            let r = try b.batchNormBackward(g[0], input: x[0], weight: x[1], saved: saved)
                            return [r.dx, r.dweight, r.dbias, nil, nil]
                        }))
                }
            }
            for act in NormActivation.allCases {
                cases.append(OpCase(
                    op: "batch_norm\(act.opSuffix)_eval", params: "\(s)\(note)", inputs: inputs,
                    tolerance: .batchNorm,
                    forward: { b, x in
                        [try b.batchNormEval(x[0], weight: x[1], bias: x[2], runningMean: x[3], runningVar: x[4], eps: 1e-5,
                                             activation: act)]
                    }))
            }
        }
        // Eval-mode folding into the conv before: 3×3 and 1×1 weights, with and without a conv bias.
        for (w, withBias) in [(Shape([5, 3, 3, 3]), false), ([7, 4, 1, 1], true), ([1, 2, 7, 7], false)] {
            let c = w[0]
            let inputs = [OpInput("conv_weight", w), OpInput("conv_bias", [c]), OpInput("weight", [c], .uniform(0.5, 1.5)),
                          OpInput("bias", [c]), OpInput("running_mean", [c]), OpInput("running_var", [c], .uniform(0.5, 1.5))]
            cases.append(OpCase(op: "fold_batch_norm", params: "\(w)\(withBias ? " with conv bias" : "")", inputs: inputs,
                                tolerance: .exact,
                                forward: { b, x in
                                    let r = try b.foldBatchNorm(convWeight: x[0], convBias: withBias ? x[1] : nil, weight: x[2], bias: x[3],
                                                                runningMean: x[4], runningVar: x[5], eps: 1e-5)
                                    return [r.weight, r.bias]
                                }))
        }
        // Batch norm with the channel-attention descriptors of its result from the same pass (the
        // refinement block's conv2): odd planes (8-value lanes and their tail), a DFR-UNet-like
        // shape, an offset input, and a constant one (every value ties: the first index wins).
        // The backward: the descriptors' gradient through channel_descriptors' backward, added to
        // y's, then the batch norm's.
        let withDescriptors: [(Shape, InputFill, String)] = [
            ([3, 5, 7, 13], .uniform(-1, 1), ""), ([1, 16, 33, 31], .uniform(-1, 1), ""), ([2, 32, 16, 16], .uniform(-1, 1), ""),
            ([2, 4, 9, 11], .uniform(99, 101), " x∈[99,101)"), ([2, 3, 4, 5], .constant(0.7), " constant"), ([1, 1, 1, 1], .uniform(-1, 1), ""),
        ]
        for (s, fill, note) in withDescriptors {
            let c = s[1]
            let inputs = [OpInput("x", s, fill), OpInput("weight", [c], .uniform(0.5, 1.5)), OpInput("bias", [c]),
                          OpInput("running_mean", [c], differentiable: false),
                          OpInput("running_var", [c], .uniform(0.5, 1.5), differentiable: false)]
            cases.append(OpCase(
                op: "batch_norm_train_descriptors", params: "\(s)\(note)", inputs: inputs, tolerance: .batchNorm,
                // (Constant: every value ties for the maximum, which has no derivative there.)
                gradCheck: s.count <= 2048 && note != " constant",
                forward: { b, x in
                    let rm = try b.copy(x[3]), rv = try b.copy(x[4])
                    let r = try b.batchNormTrainDescriptors(x[0], weight: x[1], bias: x[2], runningMean: rm, runningVar: rv,
                                                            momentum: 0, eps: 1e-5)
                    return [r.y, r.descriptors, r.argmax, rm, rv]
                },
                backward: { b, x, _, g in
                    let f = try b.batchNormTrainDescriptors(x[0], weight: x[1], bias: x[2], runningMean: try b.copy(x[3]),
                                                            runningVar: try b.copy(x[4]), momentum: 0, eps: 1e-5)
                    let dy = try b.channelDescriptorsBackward(g[1], argmax: f.argmax, inputShape: s, adding: g[0])
                    let r = try b.batchNormBackward(dy, input: x[0], weight: x[1], saved: f.saved)
                    return [r.dx, r.dweight, r.dbias, nil, nil]
                }))
        }
        return cases
    }
}

extension NormActivation {
    /// "", "_relu", "_sigmoid": the op name's infix in the registry.
    var opSuffix: String { self == .none ? "" : "_\(self)" }
}
