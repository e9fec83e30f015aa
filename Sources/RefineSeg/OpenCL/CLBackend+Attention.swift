extension CLBackend: AttentionOps {
    /// Local size of the kernels that reduce one plane per work-group (RS_WG in Kernels/common.h).
    static let reductionGroup = 64

    /// Launches `kernel` with one work-group per plane.
    func runPerGroup(_ kernel: String, file: String, _ args: [KernelArg], groups: Int) throws {
        let wg = Self.reductionGroup
        try run(kernel, file: file, args, global: [max(groups, 1) * wg], local: [wg])
    }

    public func spatialMeanMax(_ x: Tensor) throws -> (mean: Tensor, max: Tensor) {
        try x.shape.expect(rank: 4, op: "spatial_mean_max")
        let (n, c, h, w) = x.shape.nchw
        let mean = try empty([n, c], op: "spatial_mean_max"), peak = try empty([n, c], op: "spatial_mean_max")
        try runPerGroup("spatial_mean_max", file: "attention", [.tensor(x), .tensor(mean), .tensor(peak), .int(h * w)],
                        groups: n * c)
        return (mean, peak)
    }

    public func spatialMeanMaxBackward(dMean: Tensor, dMax: Tensor, input x: Tensor) throws -> Tensor {
        try AttentionGeometry.checkDescriptorGradients(dMean: dMean, dMax: dMax, input: x)
        let (n, c, h, w) = x.shape.nchw
        let dx = try empty(x.shape, op: "spatial_mean_max_backward")
        try runPerGroup("spatial_mean_max_backward", file: "attention",
                        [.tensor(dMean), .tensor(dMax), .tensor(x), .tensor(dx), .int(h * w)], groups: n * c)
        return dx
    }

    public func channelMeanMax(_ x: Tensor) throws -> Tensor {
        try x.shape.expect(rank: 4, op: "channel_mean_max")
        let (n, c, h, w) = x.shape.nchw
        let y = try empty([n, 2, h, w], op: "channel_mean_max")
        try run("channel_mean_max", file: "attention", [.tensor(x), .tensor(y), .int(n), .int(c), .int(h * w)],
                global: [n * h * w])
        return y
    }

    public func channelMeanMaxBackward(_ dy: Tensor, input x: Tensor) throws -> Tensor {
        try x.shape.expect(rank: 4, op: "channel_mean_max_backward")
        let (n, c, h, w) = x.shape.nchw
        try dy.shape.expect(equal: [n, 2, h, w], op: "channel_mean_max_backward")
        let dx = try empty(x.shape, op: "channel_mean_max_backward")
        try run("channel_mean_max_backward", file: "attention",
                [.tensor(dy), .tensor(x), .tensor(dx), .int(n), .int(c), .int(h * w)], global: [n * h * w])
        return dx
    }

    public func broadcastSpatial(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        let (n, c) = try AttentionGeometry.channels(of: x, op: "broadcast_spatial", height: height, width: width)
        let y = try empty([n, c, height, width], op: "broadcast_spatial")
        try run("broadcast_spatial", file: "attention", [.tensor(x), .tensor(y), .int(n * c), .int(height * width)],
                global: [y.count])
        return y
    }

    public func broadcastSpatialBackward(_ dy: Tensor) throws -> Tensor {
        try dy.shape.expect(rank: 4, op: "broadcast_spatial_backward")
        let (n, c, h, w) = dy.shape.nchw
        let dx = try empty([n, c, 1, 1], op: "broadcast_spatial_backward")
        try runPerGroup("broadcast_spatial_backward", file: "attention", [.tensor(dy), .tensor(dx), .int(h * w)], groups: n * c)
        return dx
    }
}
