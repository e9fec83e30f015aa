extension CPUBackend: AttentionOps {
    public func spatialMeanMax(_ x: Tensor) throws -> (mean: Tensor, max: Tensor) {
        try x.shape.expect(rank: 4, op: "spatial_mean_max")
        let (n, c, h, w) = x.shape.nchw
        let v = try values(x)                                   // (N, C, H, W)
        var mean = [Double](repeating: 0, count: n * c)         // (N, C)
        var peak = [Double](repeating: -.infinity, count: n * c) // (N, C)
        for nc in 0..<(n * c) {
            for p in 0..<(h * w) {
                let e = v[nc * h * w + p]
                mean[nc] += e
                peak[nc] = max(peak[nc], e)
            }
            mean[nc] /= Double(h * w)
        }
        return (make(mean, [n, c]), make(peak, [n, c]))
    }

    public func spatialMeanMaxBackward(dMean: Tensor, dMax: Tensor, input x: Tensor) throws -> Tensor {
        try AttentionGeometry.checkDescriptorGradients(dMean: dMean, dMax: dMax, input: x)
        let (n, c, h, w) = x.shape.nchw
        let v = try values(x), dm = try values(dMean), dx1 = try values(dMax)
        var dx = [Double](repeating: 0, count: x.count)        // (N, C, H, W)
        for nc in 0..<(n * c) {
            var best = 0
            for p in 0..<(h * w) {
                dx[nc * h * w + p] = dm[nc] / Double(h * w)
                if v[nc * h * w + p] > v[nc * h * w + best] { best = p }
            }
            dx[nc * h * w + best] += dx1[nc]
        }
        return make(dx, x.shape)
    }

    public func channelMeanMax(_ x: Tensor) throws -> Tensor {
        try x.shape.expect(rank: 4, op: "channel_mean_max")
        let (n, c, h, w) = x.shape.nchw
        let hw = h * w
        let v = try values(x)                                   // (N, C, H, W)
        var y = [Double](repeating: 0, count: n * 2 * hw)       // (N, 2, H, W): mean plane, then max plane
        for b in 0..<n {
            for p in 0..<hw {
                var sum = 0.0, peak = -Double.infinity
                for ch in 0..<c {
                    let e = v[(b * c + ch) * hw + p]
                    sum += e
                    peak = max(peak, e)
                }
                y[(b * 2) * hw + p] = sum / Double(c)
                y[(b * 2 + 1) * hw + p] = peak
            }
        }
        return make(y, [n, 2, h, w])
    }

    public func channelMeanMaxBackward(_ dy: Tensor, input x: Tensor) throws -> Tensor {
        try x.shape.expect(rank: 4, op: "channel_mean_max_backward")
        let (n, c, h, w) = x.shape.nchw
        try dy.shape.expect(equal: [n, 2, h, w], op: "channel_mean_max_backward")
        let hw = h * w
        let v = try values(x), d = try values(dy)
        var dx = [Double](repeating: 0, count: x.count)         // (N, C, H, W)
        for b in 0..<n {
            for p in 0..<hw {
                let share = d[(b * 2) * hw + p] / Double(c)
                var best = 0
                for ch in 0..<c {
                    dx[(b * c + ch) * hw + p] = share
                    if v[(b * c + ch) * hw + p] > v[(b * c + best) * hw + p] { best = ch }
                }
                dx[(b * c + best) * hw + p] += d[(b * 2 + 1) * hw + p]
            }
        }
        return make(dx, x.shape)
    }

    public func broadcastSpatial(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        let (n, c) = try AttentionGeometry.channels(of: x, op: "broadcast_spatial", height: height, width: width)
        let v = try values(x)                                   // (N, C)
        var y = [Double](repeating: 0, count: n * c * height * width)  // (N, C, H, W)
        for nc in 0..<(n * c) {
            for p in 0..<(height * width) { y[nc * height * width + p] = v[nc] }
        }
        return make(y, [n, c, height, width])
    }

    public func broadcastSpatialBackward(_ dy: Tensor) throws -> Tensor {
        try dy.shape.expect(rank: 4, op: "broadcast_spatial_backward")
        let (n, c, h, w) = dy.shape.nchw
        let d = try values(dy)                                  // (N, C, H, W)
        var dx = [Double](repeating: 0, count: n * c)           // (N, C, 1, 1)
        for nc in 0..<(n * c) {
            for p in 0..<(h * w) { dx[nc] += d[nc * h * w + p] }
        }
        return make(dx, [n, c, 1, 1])
    }
}

/// Shape rules shared by both backends' attention ops.
enum AttentionGeometry {
    /// (N, C) of a per-channel tensor given as (N, C) or (N, C, 1, 1).
    static func channels(of x: Tensor, op: String, height: Int, width: Int) throws -> (n: Int, c: Int) {
        guard x.shape.rank == 2 || (x.shape.rank == 4 && x.shape[2] == 1 && x.shape[3] == 1) else {
            throw RefineSegError.shapeMismatch(op: op, detail: "input \(x.shape) must be (N, C) or (N, C, 1, 1)")
        }
        guard height > 0, width > 0 else {
            throw RefineSegError.invalidArgument("[\(op)] target size \(height)×\(width) must be positive")
        }
        return (x.shape[0], x.shape[1])
    }

    /// dMean and dMax must each hold one value per (n, c) of the NCHW input.
    static func checkDescriptorGradients(dMean: Tensor, dMax: Tensor, input x: Tensor) throws {
        try x.shape.expect(rank: 4, op: "spatial_mean_max_backward")
        let (n, c, _, _) = x.shape.nchw
        for (name, d) in [("dMean", dMean), ("dMax", dMax)] where d.count != n * c || d.shape[0] != n {
            throw RefineSegError.shapeMismatch(op: "spatial_mean_max_backward",
                                               detail: "\(name) \(d.shape) must be (\(n), \(c)) for input \(x.shape)")
        }
    }
}
