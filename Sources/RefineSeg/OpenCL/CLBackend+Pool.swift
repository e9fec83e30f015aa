extension CLBackend {
    public func maxPool2x2(_ x: Tensor, geometry g: MaxPool2x2Geometry) throws -> Tensor {
        let y = try empty(g.outputShape, op: "max_pool2d")
        let args: [KernelArg] = [.tensor(x), .tensor(y), .int(g.h), .int(g.w), .int(g.n * g.c)]
        let bytes = 4 * (x.count + y.count)
        if gpuGlue {
            try run("max_pool2x2_fwd", file: "pool", args, global: [g.ow, g.oh, g.n * g.c], bytes: bytes)
        } else {
            try runItems("max_pool2x2_fwd_cpu", file: "pool", args, items: [g.oh, g.n * g.c], bytes: bytes)
        }
        return y
    }

    public func maxPool2x2Backward(_ dy: Tensor, input x: Tensor, geometry g: MaxPool2x2Geometry, adding prior: Tensor?) throws -> Tensor {
        let dx = try empty(x.shape, op: "max_pool2d_backward")
        let args: [KernelArg] = [.tensor(dy), .tensor(x), .tensor(prior ?? dy), .tensor(dx), .int(g.h), .int(g.w), .int(g.n * g.c),
                                 .int(prior == nil ? 0 : 1)]
        // dy and x read, dx written; the prior read too when there is one.
        let bytes = 4 * (dy.count + (prior == nil ? 2 : 3) * x.count)
        if gpuGlue {
            try run("max_pool2x2_bwd", file: "pool", args, global: [g.w, g.h, g.n * g.c], bytes: bytes)
        } else {
            try runItems("max_pool2x2_bwd_cpu", file: "pool", args, items: [(g.h + 1) / 2, g.n * g.c], bytes: bytes)
        }
        return dx
    }
}
