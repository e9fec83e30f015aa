/// He/Kaiming-normal initial values: N(0, 2 / fanIn), for layers followed by ReLU.
func kaimingNormal(_ count: Int, fanIn: Int, rng: inout SeededRandom) -> [Float] {
    let std = (2.0 / Float(max(fanIn, 1))).squareRoot()
    return (0..<count).map { _ in rng.normal() * std }
}

/// Conv2d with OIHW weight `weight` and optional `bias` (names `weight`, `bias`).
public final class Conv2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let params: Conv2DParams

    public init(_ backend: Backend, _ cin: Int, _ cout: Int, kernel: Int, padding: Int = 0, dilation: Int = 1,
                bias: Bool, rng: inout SeededRandom) throws {
        let fanIn = cin * kernel * kernel
        weight = Parameter(try backend.tensor(kaimingNormal(cout * fanIn, fanIn: fanIn, rng: &rng),
                                              shape: [cout, cin, kernel, kernel]))
        self.bias = bias ? Parameter(try backend.zeros([cout])) : nil
        params = Conv2DParams(stride: 1, padding: padding, dilation: dilation)
    }

    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var {
        try g.conv2d(x, weight: g.parameter(weight), bias: bias.map { g.parameter($0) }, params: params)
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        list.append((join(prefix, "weight"), weight))
        if let bias { list.append((join(prefix, "bias"), bias)) }
    }
}

/// A fully connected layer (out, in) applied as a 1×1 convolution to (N, in, 1, 1), so it
/// reuses the convolution kernels; the checkpoint keeps PyTorch's Linear layout (out, in).
public final class PointwiseLinear: Module {
    public let weight: Parameter
    public let bias: Parameter

    public init(_ backend: Backend, _ inFeatures: Int, _ outFeatures: Int, rng: inout SeededRandom) throws {
        weight = Parameter(try backend.tensor(kaimingNormal(outFeatures * inFeatures, fanIn: inFeatures, rng: &rng),
                                              shape: [outFeatures, inFeatures]))
        bias = Parameter(try backend.zeros([outFeatures]))
    }

    /// x (N, in) → (N, out).
    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var {
        let n = x.shape[0], out = weight.value.shape[0], inF = weight.value.shape[1]
        let w = try g.reshape(g.parameter(weight), [out, inF, 1, 1])
        let y = try g.conv2d(try g.reshape(x, [n, inF, 1, 1]), weight: w, bias: g.parameter(bias), params: Conv2DParams())
        return try g.reshape(y, [n, out])
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        list.append((join(prefix, "weight"), weight))
        list.append((join(prefix, "bias"), bias))
    }
}

/// BatchNorm2d / BatchNorm1d: eps 1e-5, momentum 0.1 (docs/MODEL.md conventions).
public final class BatchNorm: Module {
    public let weight: Parameter, bias: Parameter
    public let runningMean: Parameter, runningVar: Parameter
    public let eps: Float = 1e-5
    public let momentum: Float = 0.1

    /// `affine: false` keeps weight 1 and bias 0 fixed (untrained, like PyTorch's affine=False).
    public init(_ backend: Backend, _ channels: Int, affine: Bool = true) throws {
        weight = Parameter(try backend.full([channels], value: 1), isBuffer: !affine)
        bias = Parameter(try backend.zeros([channels]), isBuffer: !affine)
        runningMean = Parameter(try backend.zeros([channels]), isBuffer: true)
        runningVar = Parameter(try backend.full([channels], value: 1), isBuffer: true)
    }

    /// `activation` after the normalisation, fused into its kernels.
    public func callAsFunction(_ x: Var, _ g: Graph, activation: NormActivation = .none) throws -> Var {
        try g.batchNorm(x, self, activation: activation)
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        list.append((join(prefix, "weight"), weight))
        list.append((join(prefix, "bias"), bias))
        list.append((join(prefix, "running_mean"), runningMean))
        list.append((join(prefix, "running_var"), runningVar))
    }
}

/// Linear without bias, (out, in), for the Barlow Twins projector.
public final class Linear: Module {
    public let weight: Parameter

    public init(_ backend: Backend, _ inFeatures: Int, _ outFeatures: Int, rng: inout SeededRandom) throws {
        weight = Parameter(try backend.tensor(kaimingNormal(outFeatures * inFeatures, fanIn: inFeatures, rng: &rng),
                                              shape: [outFeatures, inFeatures]))
    }

    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var { try g.linear(x, weight: g.parameter(weight)) }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        list.append((join(prefix, "weight"), weight))
    }
}

/// ConvTranspose2d, kernel 2, stride 2, with bias; weight (Cin, Cout, 2, 2).
public final class Up: Module {
    public let weight: Parameter, bias: Parameter

    public init(_ backend: Backend, _ cin: Int, _ cout: Int, rng: inout SeededRandom) throws {
        weight = Parameter(try backend.tensor(kaimingNormal(cin * cout * 4, fanIn: cin, rng: &rng), shape: [cin, cout, 2, 2]))
        bias = Parameter(try backend.zeros([cout]))
    }

    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var {
        try g.convTranspose2x2(x, weight: g.parameter(weight), bias: g.parameter(bias))
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        list.append((join(prefix, "weight"), weight))
        list.append((join(prefix, "bias"), bias))
    }
}
