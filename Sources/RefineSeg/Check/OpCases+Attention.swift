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
        // The context block's pool branch hands over (N, C, 1, 1).
        cases.append(OpCase(op: "broadcast_spatial", params: "[3, 64, 1, 1] → [3, 64, 5, 3]", inputs: [OpInput("x", [3, 64, 1, 1])],
                            tolerance: .sums,
                            forward: { b, x in [try b.broadcastSpatial(x[0], height: 5, width: 3)] },
                            backward: { b, _, _, g in [try b.broadcastSpatialBackward(g[0])] }))
        return cases
    }
}
