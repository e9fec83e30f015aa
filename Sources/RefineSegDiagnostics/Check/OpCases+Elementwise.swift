import RefineSeg

extension OpCases {
    /// Feature-map shapes with odd sizes, batch 1 and 3, non-square images.
    static let oddShapes: [Shape] = [[1, 1, 1, 1], [3, 5, 7, 13], [1, 3, 31, 33], [3, 7, 13, 5], [1, 16, 33, 31]]

    static func elementwise() -> [OpCase] {
        var cases = [OpCase]()
        for s in oddShapes {
            let two = [OpInput("a", s), OpInput("b", s)]
            cases.append(OpCase(op: "add", params: "\(s)", inputs: two,
                                forward: { b, x in [try b.add(x[0], x[1])] },
                                backward: { _, _, _, g in [g[0], g[0]] }))
            cases.append(OpCase(op: "sub", params: "\(s)", inputs: two,
                                forward: { b, x in [try b.sub(x[0], x[1])] },
                                backward: { b, _, _, g in [g[0], try b.scale(g[0], by: -1)] }))
            cases.append(OpCase(op: "mul", params: "\(s)", inputs: two,
                                forward: { b, x in [try b.mul(x[0], x[1])] },
                                backward: { b, x, _, g in [try b.mul(g[0], x[1]), try b.mul(g[0], x[0])] }))
            cases.append(OpCase(op: "scale", params: "\(s) ×-2.5", inputs: [OpInput("a", s)],
                                forward: { b, x in [try b.scale(x[0], by: -2.5)] },
                                backward: { b, _, _, g in [try b.scale(g[0], by: -2.5)] }))
            cases.append(OpCase(op: "relu", params: "\(s)", inputs: [OpInput("x", s, .awayFromZero(-1, 1, gap: 1e-3))],
                                forward: { b, x in [try b.relu(x[0])] },
                                backward: { b, _, y, g in [try b.reluBackward(g[0], output: y[0])] }))
            cases.append(OpCase(op: "sigmoid", params: "\(s)", inputs: [OpInput("x", s, .uniform(-6, 6))],
                                forward: { b, x in [try b.sigmoid(x[0])] },
                                backward: { b, _, y, g in [try b.sigmoidBackward(g[0], output: y[0])] }))
            cases.append(OpCase(op: "copy", params: "\(s)", inputs: [OpInput("x", s)],
                                forward: { b, x in [try b.copy(x[0])] },
                                backward: { _, _, _, g in [g[0]] }))
            cases.append(OpCase(op: "fill", params: "\(s) =0.75", inputs: [OpInput("x", s, differentiable: false)],
                                forward: { b, x in let y = try b.copy(x[0]); try b.fill(y, value: 0.75); return [y] }))
            cases.append(OpCase(op: "accumulate", params: "\(s) α=0.5", inputs: two,
                                forward: { b, x in let y = try b.copy(x[0]); try b.accumulate(y, x[1], alpha: 0.5); return [y] },
                                backward: { b, _, _, g in [g[0], try b.scale(g[0], by: 0.5)] }))
            let (n, c, h, w) = s.nchw
            cases.append(OpCase(op: "mul_channel_gate", params: "\(s)", inputs: [OpInput("x", s), OpInput("gate", [n, c], .uniform(0, 1))],
                                tolerance: .sums,
                                forward: { b, x in [try b.mulChannelGate(x[0], x[1])] },
                                backward: { b, x, _, g in
                                    let r = try b.mulChannelGateBackward(g[0], x: x[0], gate: x[1]); return [r.dx, r.dgate] }))
            cases.append(OpCase(op: "mul_pixel_gate", params: "\(s)", inputs: [OpInput("x", s), OpInput("gate", [n, 1, h, w], .uniform(0, 1))],
                                tolerance: .sums,
                                forward: { b, x in [try b.mulPixelGate(x[0], x[1])] },
                                backward: { b, x, _, g in
                                    let r = try b.mulPixelGateBackward(g[0], x: x[0], gate: x[1]); return [r.dx, r.dgate] }))
        }
        // Channel concat and slice (the decoder's skip concat: upsampled first).
        for (n, ca, cb, h, w) in [(1, 1, 3, 5, 7), (3, 8, 8, 13, 31), (2, 16, 16, 33, 17)] {
            let a: Shape = [n, ca, h, w], b2: Shape = [n, cb, h, w]
            cases.append(OpCase(op: "concat", params: "\(a) ‖ \(b2)", inputs: [OpInput("a", a), OpInput("b", b2)],
                                forward: { b, x in [try b.concatChannels([x[0], x[1]])] },
                                backward: { b, _, _, g in
                                    [try b.sliceChannels(g[0], start: 0, count: ca), try b.sliceChannels(g[0], start: ca, count: cb)] }))
            let whole: Shape = [n, ca + cb, h, w]
            cases.append(OpCase(op: "slice", params: "\(whole)[\(ca)..<\(ca + cb)]", inputs: [OpInput("x", whole)],
                                forward: { b, x in [try b.sliceChannels(x[0], start: ca, count: cb)] },
                                backward: { b, _, _, g in [try b.concatChannels([try b.zeros([n, ca, h, w]), g[0]])] }))
        }
        // The context block's concat with its pool branch broadcast as the last channels (ReLU
        // fused: pooled values away from the kink, so no finite-difference step crosses it): one
        // part, a pooled (N, Cb) given without its 1×1, planes of several copy spans with a tail
        // (67·65), five parts (one more than a fused launch takes), and the DFR-UNet's context block
        // at batch 8, width 16 (four 64-channel branches).
        for (n, cs, cb, h, w, relu, rank2) in [(1, [1], 1, 1, 1, true, false), (2, [3, 4], 3, 5, 7, true, false),
                                                (2, [2], 5, 3, 3, false, true), (1, [2, 3], 3, 67, 65, true, false),
                                                (2, [1, 3, 2, 1, 2], 2, 3, 5, true, false),
                                                (8, [64, 64, 64, 64], 64, 8, 8, true, false)] {
            let pooledShape: Shape = rank2 ? [n, cb] : [n, cb, 1, 1]
            let inputs = cs.enumerated().map { OpInput("part\($0.offset)", [n, $0.element, h, w]) }
                + [OpInput("pooled", pooledShape, .awayFromZero(-1, 1, gap: 0.05))]
            cases.append(OpCase(op: "concat_broadcast", params: "\(cs.map { [n, $0, h, w] }) ‖ \(pooledShape)\(relu ? " relu" : "")",
                                inputs: inputs, tolerance: .sums, gradCheck: n * h * w * (cs.reduce(0, +) + cb) <= 4096,
                                forward: { b, x in [try b.concatBroadcast(Array(x.dropLast()), pooled: x[x.count - 1], relu: relu)] },
                                backward: { b, x, _, g in
                                    let r = try b.concatBroadcastBackward(g[0], channels: cs, reluInput: relu ? x[x.count - 1] : nil)
                                    return r.parts + [try r.pooled.reshaped(pooledShape)]
                                }))
        }
        return cases
    }

    static func reduce() -> [OpCase] {
        var cases = [OpCase]()
        // (shape, axes): spatial (attention descriptors), channel, batch (BatchNorm1d), everything.
        let plans: [(Shape, Range<Int>)] = [
            ([3, 5, 7, 13], 2..<4), ([1, 3, 31, 33], 1..<2), ([3, 7, 13, 5], 0..<1), ([2, 3, 5, 7], 0..<4),
            ([1, 1, 1, 1], 2..<4), ([5, 33], 0..<1), ([3, 31], 1..<2),
            // Planes of more than one GPU work-group (reduce_fwd_group strides), and the DFR-UNet
            // context block's global pool (N, 16w, H/16, W/16).
            ([2, 3, 17, 19], 2..<4), ([8, 256, 8, 8], 2..<4),
        ]
        for (shape, axes) in plans {
            for kind in ReduceKind.allCases {
                cases.append(OpCase(op: "reduce_\(kind.rawValue)", params: "\(shape) axes \(axes.lowerBound)..<\(axes.upperBound)",
                                    inputs: [OpInput("x", shape)], tolerance: .sums,
                                    forward: { b, x in [try b.reduce(x[0], axes: axes, kind: kind)] },
                                    backward: { b, x, _, g in [try b.reduceBackward(g[0], input: x[0], axes: axes, kind: kind)] }))
            }
        }
        // [2, 3, 67, 65]: planes of 4355 values, more than one chunk of the GPU variant (4096) and
        // not a multiple of its work-group; [8, 16, 128, 128]: the DFR-UNet's first-level bias gradient.
        for s in [Shape([1, 1, 1, 1]), [3, 5, 7, 13], [2, 16, 33, 31], [2, 3, 67, 65], [8, 16, 128, 128]] {
            cases.append(OpCase(op: "sum_per_channel", params: "\(s)", inputs: [OpInput("x", s)], tolerance: .sums,
                                gradCheck: s.count < 100_000, small: s == [2, 3, 67, 65] ? true : nil,
                                forward: { b, x in [try b.sumPerChannel(x[0])] },
                                backward: { b, x, _, g in
                                    let (n, c, h, w) = x[0].shape.nchw
                                    // Broadcast (C) back over H, W, then repeat over N: the gradient of a per-channel sum.
                                    let one = try b.broadcastSpatial(try g[0].reshaped([1, c]), height: h, width: w)
                                    return [try b.concatChannels([Tensor](repeating: one, count: n)).reshaped(x[0].shape)]
                                }))
        }
        for (m, k, n) in [(1, 1, 1), (5, 7, 3), (13, 31, 33), (64, 8, 64)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a: Shape = ta ? [k, m] : [m, k], bShape: Shape = tb ? [n, k] : [k, n]
                cases.append(OpCase(op: "matmul", params: "\(m)x\(k)x\(n) tA=\(ta) tB=\(tb)",
                                    inputs: [OpInput("A", a), OpInput("B", bShape)], tolerance: .sums,
                                    forward: { b, x in [try b.matmul(x[0], x[1], transposeA: ta, transposeB: tb)] },
                                    backward: { b, x, _, g in
                                        // C = op(A)·op(B): dop(A) = dC·op(B)ᵀ, dop(B) = op(A)ᵀ·dC.
                                        let dA = ta ? try b.matmul(x[1], g[0], transposeA: tb, transposeB: true)
                                                    : try b.matmul(g[0], x[1], transposeA: false, transposeB: !tb)
                                        let dB = tb ? try b.matmul(g[0], x[0], transposeA: true, transposeB: ta)
                                                    : try b.matmul(x[0], g[0], transposeA: !ta, transposeB: false)
                                        return [dA, dB]
                                    }))
            }
        }
        return cases
    }
}
