/// A value in the computation graph: the tensor and, after `Graph.backward`, its gradient.
public final class Var {
    public let value: Tensor
    public internal(set) var grad: Tensor?
    let needsGrad: Bool
    /// Maps this node's gradient to one gradient per input (nil where an input needs none). Its
    /// second argument is each input's gradient so far (`Graph.recordAccumulating`; all nil otherwise).
    let backwardFn: ((Tensor, [Tensor?]) throws -> [Tensor?])?
    /// Whether `backwardFn` adds the gradients it is handed into its results (`Graph.recordAccumulating`).
    var absorbsPriors = false
    let inputs: [Var]
    /// Set for parameter leaves: where the gradient accumulates.
    let parameter: Parameter?
    /// Set for the hidden node of an op with several results (`Graph.recordJoint`): the results,
    /// whose gradients this node hands to `jointBackward` together, once.
    var jointOutputs: [Var] = []
    /// Maps the results' gradients (nil where a result got none) to one gradient per input.
    var jointBackward: (([Tensor?]) throws -> [Tensor?])?

    init(_ value: Tensor, needsGrad: Bool, inputs: [Var] = [], parameter: Parameter? = nil,
         backward: ((Tensor, [Tensor?]) throws -> [Tensor?])? = nil) {
        self.value = value; self.needsGrad = needsGrad; self.inputs = inputs
        self.parameter = parameter; self.backwardFn = backward
    }

    public var shape: Shape { value.shape }
}

/// One convolution-family op as a `Graph` ran it (`Graph.onConvolution`).
package struct ConvolutionRecord {
    package enum Op: Equatable { case conv2d(Conv2DParams), convTranspose2x2, maxPool2x2 }
    package var op: Op
    /// x (N, C, H, W).
    package var input: Shape
    /// The weight's parameter (nil for pooling, or for a weight that is not a parameter leaf).
    package var weight: Parameter?
    /// OIHW for conv2d, (Cin, Cout, 2, 2) for the transposed conv, empty for pooling.
    package var weightShape: Shape
    package var hasBias: Bool
}

/// Reverse-mode automatic differentiation over backend ops: a tape of nodes recorded in the
/// forward pass, walked in reverse by `backward`. With `training == false` nothing is
/// recorded, so evaluation keeps no intermediate tensors alive.
public final class Graph {
    public let backend: Backend
    /// Training mode: BatchNorm uses batch statistics and the tape records.
    public let training: Bool
    private var tape: [Var] = []
    /// Data-parallel hook: called in `backward` once per parameter as soon as its gradient is
    /// final (no earlier node of the tape adds to it), so its all-reduce can start while the
    /// rest of the backward pass runs (see `DataParallel`). Nil for a single process.
    public var onGradientReady: ((Parameter) throws -> Void)?
    /// Data-parallel hook: a training-mode batch norm whose statistics span all ranks
    /// (`--sync-bn`, see `SyncBatchNorm`); returning nil keeps the usual per-process batch norm.
    public var batchNormOverride: ((Var, BatchNorm, Graph) throws -> Var?)?
    /// Diagnostics hook: told of every convolution-family op this graph runs, with its input
    /// shape and weight, so that the op cases and benches list a model's layers from its real
    /// forward (STYLE.md rule 17; `OpCases.dfrUNetConvLayers`). Nil in training and inference.
    package var onConvolution: ((ConvolutionRecord) -> Void)?

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
        let v = Var(value, needsGrad: needs, inputs: needs ? inputs : [], backward: needs ? { g, _ in try backward(g) } : nil)
        if needs { tape.append(v) }
        return v
    }

    /// Like `record`, for ops whose backward kernels can add a gradient that already reached an
    /// input (a tensor with several consumers) into their own result in the same pass, instead of
    /// an extra `add` launch. `backward(g, priors)` gets each input's gradient so far (nil where
    /// there is none yet, and for a repeated input after its first position) and must return,
    /// wherever a prior is non-nil and its result is non-nil, prior + its own contribution.
    func recordAccumulating(_ value: Tensor, _ inputs: [Var], backward: @escaping (Tensor, [Tensor?]) throws -> [Tensor?]) -> Var {
        let needs = training && inputs.contains { $0.needsGrad }
        let v = Var(value, needsGrad: needs, inputs: needs ? inputs : [], backward: needs ? backward : nil)
        v.absorbsPriors = true
        if needs { tape.append(v) }
        return v
    }

    /// Records an op with several results as one node: `backward` runs once, with the gradient
    /// of every result (nil for a result that received none), and maps them to the inputs'
    /// gradients. The results are leaves of the tape that this node reads.
    func recordJoint(_ values: [Tensor], _ inputs: [Var], backward: @escaping ([Tensor?]) throws -> [Tensor?]) -> [Var] {
        let needs = training && inputs.contains { $0.needsGrad }
        guard needs else { return values.map { Var($0, needsGrad: false) } }
        let outputs = values.map { Var($0, needsGrad: true) }
        // The joint node precedes its results on the tape, so the reverse walk reaches it only
        // after every consumer of every result has sent its gradient.
        let joint = Var(values[0], needsGrad: true, inputs: inputs)
        joint.jointOutputs = outputs
        joint.jointBackward = backward
        tape.append(joint)
        return outputs
    }

    /// Back-propagates from a one-element `loss` (seed gradient 1), accumulating into every
    /// parameter's `grad`, then releases the tape.
    public func backward(_ loss: Var) throws {
        guard loss.value.count == 1 else {
            throw RefineSegError.shapeMismatch(op: "backward", detail: "loss \(loss.shape) must have one element")
        }
        // The seed as a (non-blocking) upload of its one value, not a fill kernel.
        loss.grad = try backend.tensor([1], shape: loss.shape)
        defer { tape.removeAll() }
        // With the gradient-ready hook: each parameter's earliest node on the tape, where its
        // gradient becomes final in the reverse walk.
        var firstUse = [ObjectIdentifier: Int]()
        if onGradientReady != nil {
            for (i, node) in tape.enumerated() {
                if let p = node.parameter, firstUse[ObjectIdentifier(p)] == nil { firstUse[ObjectIdentifier(p)] = i }
            }
        }
        for (index, node) in tape.enumerated().reversed() {
            if let fn = node.jointBackward {
                let outputGrads = node.jointOutputs.map(\.grad)
                for output in node.jointOutputs { output.grad = nil }
                guard outputGrads.contains(where: { $0 != nil }) else { continue }
                try send(try fn(outputGrads), to: node.inputs)
                continue
            }
            if let p = node.parameter {
                if let g = node.grad { try p.accumulateGradient(g, backend: backend) }
                if let ready = onGradientReady, p.grad != nil, firstUse[ObjectIdentifier(p)] == index { try ready(p) }
                continue
            }
            guard let g = node.grad else { continue }
            guard let fn = node.backwardFn else { continue }
            guard node.absorbsPriors else {
                try send(try fn(g, node.inputs.map { _ in nil }), to: node.inputs)
                node.grad = nil
                continue
            }
            var seen = Set<ObjectIdentifier>()
            let priors: [Tensor?] = node.inputs.map { input in
                input.needsGrad && seen.insert(ObjectIdentifier(input)).inserted ? input.grad : nil
            }
            let grads = try fn(g, priors)
            // A result that includes its input's prior replaces it (send then assigns it).
            for (i, input) in node.inputs.enumerated() where priors[i] != nil && i < grads.count && grads[i] != nil {
                input.grad = nil
            }
            try send(grads, to: node.inputs)
            node.grad = nil
        }
    }

    /// Adds each gradient to its input's (an input reached twice gets the sum).
    private func send(_ grads: [Tensor?], to inputs: [Var]) throws {
        for (input, grad) in zip(inputs, grads) where input.needsGrad {
            guard let grad else { continue }
            try grad.shape.expect(equal: input.shape, op: "backward")
            input.grad = try input.grad.map { try backend.add($0, grad) } ?? grad
        }
    }
}
