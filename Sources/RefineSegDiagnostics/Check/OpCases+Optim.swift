import RefineSeg

extension OpCases {
    static func optim() -> [OpCase] {
        var cases = [OpCase]()
        let shapes: [Shape] = [[1], [7, 13], [33, 31, 3], [16, 8, 3, 3]]
        let adam: [(AdamParams, String)] = [
            (AdamParams(lr: 1e-3, weightDecay: 1e-2, decoupled: true, step: 1), "AdamW wd 0.01 step 1"),
            (AdamParams(lr: 3e-4, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, decoupled: true, step: 37), "AdamW wd 0.1 step 37"),
            (AdamParams(lr: 1e-2, weightDecay: 5e-4, decoupled: false, step: 5), "Adam L2 5e-4 step 5"),
        ]
        for s in shapes {
            let inputs = [OpInput("param", s), OpInput("grad", s), OpInput("m", s, .uniform(-0.1, 0.1)),
                          OpInput("v", s, .uniform(0, 0.01))]
            for (p, note) in adam {
                cases.append(OpCase(op: "adam_step", params: "\(s) \(note)", inputs: inputs,
                                    forward: { b, x in
                                        // Copies: the step works in place and every run must start from the same state.
                                        let param = try b.copy(x[0]), m = try b.copy(x[2]), v = try b.copy(x[3])
                                        try b.adamStep(param: param, grad: x[1], m: m, v: v, params: p)
                                        return [param, m, v]
                                    }))
            }
            for (bufFill, note) in [(InputFill.constant(0), "first step"), (.uniform(-0.5, 0.5), "later step")] {
                let inputs = [OpInput("param", s), OpInput("grad", s), OpInput("buf", s, bufFill)]
                cases.append(OpCase(op: "sgd_step", params: "\(s) lr 0.01 momentum 0.9 wd 5e-4 \(note)", inputs: inputs,
                                    forward: { b, x in
                                        let param = try b.copy(x[0]), buf = try b.copy(x[2])
                                        try b.sgdStep(param: param, grad: x[1], momentumBuffer: buf, lr: 0.01, momentum: 0.9,
                                                      weightDecay: 5e-4)
                                        return [param, buf]
                                    }))
            }
        }
        let lists: [[Shape]] = [[[1]], [[7, 13], [3, 5, 7, 13], [1]], [[256, 128, 3, 3], [256], [3, 1000]]]
        for list in lists {
            let inputs = list.enumerated().map { OpInput("t\($0.offset)", $0.element) }
            let text = list.map(\.description).joined(separator: " ")
            cases.append(OpCase(op: "sum_of_squares", params: text, inputs: inputs, tolerance: .sums,
                                forward: { b, x in [try b.sumOfSquares(x)] }))
            for maxNorm: Float in [0.5, 1e6] {
                cases.append(OpCase(op: "clip_by_global_norm", params: "\(text) max \(maxNorm)", inputs: inputs, tolerance: .sums,
                                    forward: { b, x in
                                        let copies = try x.map { try b.copy($0) }
                                        try b.clipByGlobalNorm(copies, sumOfSquares: try b.sumOfSquares(copies), maxNorm: maxNorm)
                                        return copies
                                    }))
            }
        }
        cases += flatOptim()
        return cases
    }

    /// The fused optimiser's flat-buffer ops: views, sum of squares and AdamW over ranges.
    static func flatOptim() -> [OpCase] {
        var cases = [OpCase]()
        // Element ranges of a flat buffer: one run, a run with a vector tail, several runs with gaps
        // (parameters without a gradient), and one over several FLAT_CHUNKs.
        let layouts: [(Int, [Range<Int>], String)] = [
            (7, [0 ..< 7], "one run of 7"),
            (333, [0 ..< 5, 32 ..< 101, 130 ..< 333], "three runs"),
            (40_003, [3 ..< 40_003], "3 chunks, unaligned start"),
        ]
        for (count, ranges, note) in layouts {
            let inputs = [OpInput("param", [count]), OpInput("grad", [count], .uniform(-2, 2)), OpInput("m", [count], .uniform(-0.1, 0.1)),
                          OpInput("v", [count], .uniform(0, 0.01))]
            cases.append(OpCase(op: "flat_sum_of_squares", params: "[\(count)] \(note)", inputs: [inputs[1]], tolerance: .sums,
                                forward: { b, x in
                                    let s = try b.flatSumOfSquares(x[0], ranges: ranges)
                                    return [try b.reduce(s.partials, axes: 0..<1, kind: .sum)]
                                }))
            for (maxNorm, decoupled) in [(Float(0), true), (0.5, true), (1e6, true), (1, false)] {
                let p = AdamParams(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, decoupled: decoupled, step: 3)
                let clipText = maxNorm > 0 ? "clip \(maxNorm)" : "no clip"
                cases.append(OpCase(op: "flat_adam_step", params: "[\(count)] \(note) \(clipText) \(decoupled ? "AdamW" : "Adam L2")",
                                    inputs: inputs, tolerance: .sums,
                                    forward: { b, x in
                                        let param = try b.copy(x[0]), m = try b.copy(x[2]), v = try b.copy(x[3])
                                        let norm = maxNorm > 0 ? try b.flatSumOfSquares(x[1], ranges: ranges) : nil
                                        try b.flatAdamStep(param: param, grad: x[1], m: m, v: v, ranges: ranges, params: p,
                                                           clip: norm.map { ($0, maxNorm) })
                                        return [param, m, v]
                                    }))
            }
        }
        // Views at the backend's alignment: writes through each view land in the flat buffer and
        // leave their neighbours alone.
        let shapes: [Shape] = [[3], [2, 5], [1], [4, 3, 3, 3]]
        cases.append(OpCase(op: "flat_view", params: shapes.map(\.description).joined(separator: " "),
                            inputs: shapes.enumerated().map { OpInput("t\($0.offset)", $0.element) },
                            forward: { b, x in
                                let layout = FlatLayout(counts: shapes.map(\.count), alignment: b.viewAlignment)
                                let flat = try b.full([layout.total], value: 7)
                                let views = try shapes.indices.map { try b.view(flat, offset: layout.offsets[$0], shape: shapes[$0]) }
                                for (view, t) in zip(views, x) { try b.assign(view, from: t) }
                                try b.accumulate(views[1], views[1], alpha: 1)      // in place through a view
                                return try shapes.indices.map { i in try b.view(flat, offset: layout.offsets[i], shape: shapes[i]) }
                            }))
        return cases
    }
}
