import RefineSeg

extension OpCases {
    static func attention() -> [OpCase] {
        var cases = [OpCase]()
        for s in oddShapes {
            let (n, c, h, w) = s.nchw
            // Uniform inputs make ties (where a max's gradient is ambiguous) vanishingly unlikely.
            cases.append(OpCase(op: "spatial_mean_max", params: "\(s)", inputs: [OpInput("x", s)], tolerance: .sums,
                                forward: { b, x in let r = try b.spatialMeanMax(x[0]); return [r.mean, r.max] },
                                backward: { b, x, _, g in [try b.spatialMeanMaxBackward(dMean: g[0], dMax: g[1], input: x[0])] }))
            cases.append(OpCase(op: "channel_mean_max", params: "\(s)", inputs: [OpInput("x", s)], tolerance: .sums,
                                forward: { b, x in [try b.channelMeanMax(x[0])] },
                                backward: { b, x, _, g in [try b.channelMeanMaxBackward(g[0], input: x[0])] }))
            cases.append(OpCase(op: "broadcast_spatial", params: "[\(n), \(c)] → \(s)", inputs: [OpInput("x", [n, c])],
                                tolerance: .sums,
                                forward: { b, x in [try b.broadcastSpatial(x[0], height: h, width: w)] },
                                backward: { b, _, _, g in [try b.broadcastSpatialBackward(g[0]).reshaped([n, c])] }))
        }
        // The refinement blocks' fused attention ops, at odd shapes and one DFR-UNet-like shape.
        for s in oddShapes + [[2, 32, 16, 16]] {
            let (n, c, h, w) = s.nchw
            cases.append(OpCase(op: "channel_descriptors", params: "\(s) → [\(2 * n), \(c)]", inputs: [OpInput("x", s)],
                                tolerance: .sums,
                                forward: { b, x in let r = try b.channelDescriptors(x[0]); return [r.descriptors, r.argmax] },
                                backward: { b, x, y, g in [try b.channelDescriptorsBackward(g[0], argmax: y[1], inputShape: x[0].shape)] }))
            cases.append(OpCase(op: "channel_gate", params: "\(s) with logits [\(2 * n), \(c)]",
                                inputs: [OpInput("x", s), OpInput("logits", [2 * n, c], .uniform(-2, 2))], tolerance: .sums,
                                forward: { b, x in [try b.channelGate(x[0], logits: x[1])] },
                                backward: { b, x, _, g in let r = try b.channelGateBackward(g[0], x: x[0], logits: x[1]); return [r.dx, r.dlogits] }))
            // |x·gate| ≤ 1/16 stays below the residual's distance from 0, so no finite-difference
            // step crosses the ReLU's kink.
            cases.append(OpCase(op: "pixel_gate_add_relu", params: "\(s) gate [\(n), 1, \(h), \(w)]",
                                inputs: [OpInput("x", s, .uniform(-0.25, 0.25)), OpInput("gate", [n, 1, h, w], .uniform(-0.25, 0.25)),
                                         OpInput("residual", s, .awayFromZero(-1, 1, gap: 0.1))],
                                tolerance: .sums,
                                forward: { b, x in [try b.pixelGateAddReLU(x[0], gate: x[1], residual: x[2])] },
                                backward: { b, x, _, g in
                                    let r = try b.pixelGateAddReLUBackward(g[0], x: x[0], gate: x[1], residual: x[2])
                                    return [r.dx, r.dgate, r.dresidual]
                                }))
        }
        // The backward kernels that add a gradient which already reached x (`adding prior:`, x feeding
        // several consumers): the backward as a function of its upstream gradient and the prior.
        for s in oddShapes + [[2, 32, 16, 16]] {
            let (n, c, h, w) = s.nchw
            cases.append(OpCase(op: "channel_mean_max_backward_acc", params: "\(s)",
                                inputs: [OpInput("x", s), OpInput("dy", [n, 2, h, w]), OpInput("prior", s)], tolerance: .sums,
                                forward: { b, t in [try b.channelMeanMaxBackward(t[1], input: t[0], adding: t[2])] }))
            cases.append(OpCase(op: "channel_descriptors_backward_acc", params: "\(s)",
                                inputs: [OpInput("x", s), OpInput("dd", [2 * n, c]), OpInput("prior", s)], tolerance: .sums,
                                forward: { b, t in
                                    let argmax = try b.channelDescriptors(t[0]).argmax
                                    return [try b.channelDescriptorsBackward(t[1], argmax: argmax, inputShape: s, adding: t[2])]
                                }))
        }
        // The channel-attention MLP (R = 2N stacked descriptor rows, C channels, Hd = max(4, C/16)
        // hidden units): odd sizes (1, primes, C not a multiple of the kernel's 8 lanes), and the
        // DFR-UNet's enc1 and bottleneck at batch 8. The forward returns only the logits (the
        // hidden activations are the backward's saved state, recomputed here for the backward).
        for (r, c, hd) in [(2, 1, 1), (6, 5, 4), (2, 13, 7), (4, 16, 4), (16, 16, 4), (16, 256, 16)] {
            cases.append(OpCase(op: "channel_mlp", params: "d [\(r), \(c)], hidden \(hd)",
                                inputs: [OpInput("d", [r, c]), OpInput("w1", [hd, c]), OpInput("b1", [hd]),
                                         OpInput("w2", [c, hd]), OpInput("b2", [c])],
                                tolerance: .sums,
                                forward: { b, x in [try b.channelMLP(x[0], w1: x[1], b1: x[2], w2: x[3], b2: x[4]).logits] },
                                backward: { b, x, _, g in
                                    let hidden = try b.channelMLP(x[0], w1: x[1], b1: x[2], w2: x[3], b2: x[4]).hidden
                                    let r = try b.channelMLPBackward(g[0], d: x[0], w1: x[1], w2: x[3], hidden: hidden)
                                    return [r.dd, r.dw1, r.db1, r.dw2, r.db2]
                                }))
        }
        // The MLP and the gate fused (channel_mlp_gate): odd shapes (C not a multiple of 8, one
        // pixel, planes not a multiple of the span, a last block of planes shorter than the others), DFR-UNet's enc1 and bottleneck at batch 8, and a
        // hidden layer wider than MLP_HD_MAX (the two-kernel fallback). The backward is
        // channelMLPGateBackward (the gate's, then the MLP's; one kernel in the CPU layout), from the
        // logits and hidden activations that the fused op saved (run again here).
        for (s, hd) in [([1, 5, 3, 3], 4), ([2, 13, 7, 5], 7), ([3, 16, 1, 1], 4), ([2, 16, 17, 19], 4), ([1, 50, 4, 4], 9),
                        ([8, 16, 128, 128], 4), ([8, 256, 8, 8], 16), ([2, 130, 3, 3], 65)] as [(Shape, Int)] {
            let (n, c, _, _) = s.nchw
            cases.append(OpCase(op: "channel_mlp_gate", params: "\(s), hidden \(hd)",
                                inputs: [OpInput("x", s), OpInput("d", [2 * n, c]), OpInput("w1", [hd, c]), OpInput("b1", [hd]),
                                         OpInput("w2", [c, hd]), OpInput("b2", [c])],
                                tolerance: .sums, gradCheck: s.count <= 4096,
                                forward: { b, x in
                                    [try b.channelMLPGate(x[0], descriptors: x[1], w1: x[2], b1: x[3], w2: x[4], b2: x[5]).y]
                                },
                                backward: { b, x, _, g in
                                    let r = try b.channelMLPGate(x[0], descriptors: x[1], w1: x[2], b1: x[3], w2: x[4], b2: x[5])
                                    let (dx, m) = try b.channelMLPGateBackward(g[0], x: x[0], logits: r.logits, descriptors: x[1],
                                                                               w1: x[2], w2: x[4], hidden: r.hidden)
                                    return [dx, m.dd, m.dw1, m.db1, m.dw2, m.db2]
                                }))
        }
        // The context block's pool branch hands over (N, C, 1, 1), its ReLU fused (inputs away from
        // the kink, so no finite-difference step crosses it).
        for s in [[1, 1, 1, 1], [2, 3, 5, 7], [8, 64, 8, 8]] as [Shape] {
            let (n, c, h, w) = s.nchw
            cases.append(OpCase(op: "broadcast_spatial_relu", params: "[\(n), \(c), 1, 1] → \(s)",
                                inputs: [OpInput("x", [n, c, 1, 1], .awayFromZero(-1, 1, gap: 0.05))], tolerance: .sums,
                                forward: { b, x in [try b.broadcastSpatial(x[0], height: h, width: w, relu: true)] },
                                backward: { b, x, _, g in [try b.broadcastSpatialBackward(g[0], reluInput: x[0])] }))
        }
        // The context block's pool branch hands over (N, C, 1, 1).
        cases.append(OpCase(op: "broadcast_spatial", params: "[3, 64, 1, 1] → [3, 64, 5, 3]", inputs: [OpInput("x", [3, 64, 1, 1])],
                            tolerance: .sums,
                            forward: { b, x in [try b.broadcastSpatial(x[0], height: 5, width: 3)] },
                            backward: { b, _, _, g in [try b.broadcastSpatialBackward(g[0])] }))
        return cases
    }
}
