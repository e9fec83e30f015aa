/// A value in the computation graph: the tensor and, after `Graph.backward`, its gradient.
public final class Var {
    public let value: Tensor
    public internal(set) var grad: Tensor?
    let needsGrad: Bool
    /// Maps this node's gradient to one gradient per input (nil where an input needs none).
    let backwardFn: ((Tensor) throws -> [Tensor?])?
    let inputs: [Var]
    /// Set for parameter leaves: where the gradient accumulates.
    let parameter: Parameter?

    init(_ value: Tensor, needsGrad: Bool, inputs: [Var] = [], parameter: Parameter? = nil,
         backward: ((Tensor) throws -> [Tensor?])? = nil) {
        self.value = value; self.needsGrad = needsGrad; self.inputs = inputs
        self.parameter = parameter; self.backwardFn = backward
    }

    public var shape: Shape { value.shape }
}

/// Reverse-mode automatic differentiation over backend ops: a tape of nodes recorded in the
/// forward pass, walked in reverse by `backward`. With `training == false` nothing is
/// recorded, so evaluation keeps no intermediate tensors alive.
public final class Graph {
    public let backend: Backend
    /// Training mode: BatchNorm uses batch statistics and the tape records.
    public let training: Bool
    private var tape: [Var] = []

    public init(backend: Backend, training: Bool) {
        self.backend = backend
        self.training = training
    }

    /// A leaf that needs no gradient (inputs, targets).
    public func constant(_ t: Tensor) -> Var { Var(t, needsGrad: false) }

    /// A leaf whose gradient accumulates into `p.grad`.
    public func parameter(_ p: Parameter) -> Var {
        let v = Var(p.value, needsGrad: training && !p.isBuffer, parameter: p)
        if v.needsGrad { tape.append(v) }
        return v
    }

    /// Records an op's result. `backward` maps the result's gradient to the inputs' gradients.
    func record(_ value: Tensor, _ inputs: [Var], backward: @escaping (Tensor) throws -> [Tensor?]) -> Var {
        let needs = training && inputs.contains { $0.needsGrad }
        let v = Var(value, needsGrad: needs, inputs: needs ? inputs : [], backward: needs ? backward : nil)
        if needs { tape.append(v) }
        return v
    }

    /// Back-propagates from a one-element `loss` (seed gradient 1), accumulating into every
    /// parameter's `grad`, then releases the tape.
    public func backward(_ loss: Var) throws {
        guard loss.value.count == 1 else {
            throw RefineSegError.shapeMismatch(op: "backward", detail: "loss \(loss.shape) must have one element")
        }
        loss.grad = try backend.full(loss.shape, value: 1)
        defer { tape.removeAll() }
        for node in tape.reversed() {
            guard let g = node.grad else { continue }
            if let p = node.parameter {
                if let existing = p.grad { try backend.accumulate(existing, g, alpha: 1) } else { p.grad = try backend.copy(g) }
                continue
            }
            guard let fn = node.backwardFn else { continue }
            let grads = try fn(g)
            for (input, grad) in zip(node.inputs, grads) where input.needsGrad {
                guard let grad else { continue }
                try grad.shape.expect(equal: input.shape, op: "backward")
                input.grad = try input.grad.map { try backend.add($0, grad) } ?? grad
            }
            node.grad = nil
        }
    }
}
