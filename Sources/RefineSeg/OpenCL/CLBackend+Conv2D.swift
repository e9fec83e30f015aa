extension CLBackend: ConvOps {
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, params: Conv2DParams) throws -> Tensor { throw RefineSegError.unsupported(op: "conv2d", backend: name) }
    public func conv2dBackwardData(_ dy: Tensor, weight: Tensor, inputShape: Shape, params: Conv2DParams) throws -> Tensor { throw RefineSegError.unsupported(op: "conv2dBackwardData", backend: name) }
    public func conv2dBackwardWeight(_ dy: Tensor, input x: Tensor, weightShape: Shape, params: Conv2DParams) throws -> Tensor { throw RefineSegError.unsupported(op: "conv2dBackwardWeight", backend: name) }
    public func convTranspose2x2(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor { throw RefineSegError.unsupported(op: "convTranspose2x2", backend: name) }
    public func convTranspose2x2BackwardData(_ dy: Tensor, weight: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "convTranspose2x2BackwardData", backend: name) }
    public func convTranspose2x2BackwardWeight(_ dy: Tensor, input x: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "convTranspose2x2BackwardWeight", backend: name) }
    public func maxPool2x2(_ x: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "maxPool2x2", backend: name) }
    public func maxPool2x2Backward(_ dy: Tensor, input x: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "maxPool2x2Backward", backend: name) }
}
