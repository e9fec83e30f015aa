extension CLBackend {
    public func maxPool2x2(_ x: Tensor, geometry g: MaxPool2x2Geometry) throws -> Tensor {
        let y = try empty(g.outputShape, op: "max_pool2d")
        try run("max_pool2x2_fwd", file: "pool", [.tensor(x), .tensor(y), .int(g.h), .int(g.w), .int(g.n * g.c)],
                global: [g.ow, g.oh, g.n * g.c])
        return y
    }

    public func maxPool2x2Backward(_ dy: Tensor, input x: Tensor, geometry g: MaxPool2x2Geometry, adding prior: Tensor?) throws -> Tensor {
        let dx = try empty(x.shape, op: "max_pool2d_backward")
        try run("max_pool2x2_bwd", file: "pool",
                [.tensor(dy), .tensor(x), .tensor(prior ?? dy), .tensor(dx), .int(g.h), .int(g.w), .int(g.n * g.c), .int(prior == nil ? 0 : 1)],
                global: [g.w, g.h, g.n * g.c])
        return dx
    }
}
