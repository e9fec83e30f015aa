/// AdamW (or Adam) over a module's trainable parameters, state on the device.
public final class AdamW {
    public let parameters: [(String, Parameter)]
    public private(set) var m: [Tensor]
    public private(set) var v: [Tensor]
    /// Steps taken so far (bias correction uses step + 1 for the next one).
    public private(set) var step: Int = 0
    public var beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
    public var weightDecay: Float
    /// Global-norm gradient clip (0 turns it off).
    public var clipNorm: Float
    private let backend: Backend

    public init(_ parameters: [(String, Parameter)], backend: Backend, weightDecay: Float = 1e-4, clipNorm: Float = 5) throws {
        self.parameters = parameters.filter { !$0.1.isBuffer }
        self.backend = backend
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        m = try self.parameters.map { try backend.zeros($0.1.value.shape) }
        v = try self.parameters.map { try backend.zeros($0.1.value.shape) }
    }

    /// Clips the gradients by global norm, applies one AdamW update at `lr`, clears the gradients.
    /// Parameters without a gradient (unused this step) are left as they are.
    public func update(lr: Float) throws {
        step += 1
        let grads = parameters.compactMap { $0.1.grad }
        if clipNorm > 0, !grads.isEmpty {
            let sq = try backend.sumOfSquares(grads)
            try backend.clipByGlobalNorm(grads, sumOfSquares: sq, maxNorm: clipNorm)
        }
        let hp = AdamParams(lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, decoupled: true, step: step)
        for (i, (_, p)) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            try backend.adamStep(param: p.value, grad: g, m: m[i], v: v[i], params: hp)
            p.grad = nil
        }
    }

    /// Optimiser state as named tensors for checkpoints: `optimizer.m.NAME`, `optimizer.v.NAME`.
    public func stateTensors() -> [(String, Tensor)] {
        parameters.indices.flatMap { i in
            [("optimizer.m." + parameters[i].0, m[i]), ("optimizer.v." + parameters[i].0, v[i])]
        }
    }

    /// Restores the state written by `stateTensors` (shapes checked) and the step count.
    public func restore(_ tensors: [String: Tensor], step: Int) throws {
        for (i, (name, p)) in parameters.enumerated() {
            guard let mt = tensors["optimizer.m." + name], let vt = tensors["optimizer.v." + name] else {
                throw RefineSegError.invalidArgument("optimizer state for \(name) missing from the checkpoint")
            }
            try mt.shape.expect(equal: p.value.shape, op: "restore optimizer.m.\(name)")
            try vt.shape.expect(equal: p.value.shape, op: "restore optimizer.v.\(name)")
            m[i] = mt; v[i] = vt
        }
        self.step = step
    }
}
