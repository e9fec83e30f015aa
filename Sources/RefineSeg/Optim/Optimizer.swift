/// AdamW (or Adam) over a module's trainable parameters, state on the device, fused as PyTorch's
/// `AdamW(fused=True)`: every parameter, its gradient and its m and v live as views in one flat
/// buffer per role (each view at an offset aligned for the device, the gaps zero), so one update
/// is at most two launches per run of consecutive parameters that have a gradient (usually one
/// run): the clipping norm's partial sums, and the update that applies the clip factor read on
/// the device. Nothing waits for the device.
public final class AdamW {
    public let parameters: [(String, Parameter)]
    /// Views of the flat m and v buffers, one per parameter (what checkpoints save).
    public private(set) var m: [Tensor]
    public private(set) var v: [Tensor]
    /// Steps taken so far (bias correction uses step + 1 for the next one).
    public private(set) var step: Int = 0
    public var beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
    public var weightDecay: Float
    /// Global-norm gradient clip (0 turns it off).
    public var clipNorm: Float
    private let backend: Backend
    /// Flat buffers: values, gradients, m, v (rank 1, `layout.total` elements).
    private let flatValue: Tensor, flatGrad: Tensor, flatM: Tensor, flatV: Tensor
    private let layout: FlatLayout
    /// Per parameter, the views into `flatValue` and `flatGrad`.
    private let valueViews: [Tensor], gradViews: [Tensor]

    public init(_ parameters: [(String, Parameter)], backend: Backend, weightDecay: Float = 1e-4, clipNorm: Float = 5) throws {
        let params = parameters.filter { !$0.1.isBuffer }
        let layout = FlatLayout(counts: params.map { $0.1.value.count }, alignment: backend.viewAlignment)
        func flat() throws -> Tensor { try backend.zeros([layout.total]) }
        func views(_ flat: Tensor) throws -> [Tensor] {
            try params.indices.map { i in try backend.view(flat, offset: layout.offsets[i], shape: params[i].1.value.shape) }
        }
        let fv = try flat(), fg = try flat(), fm = try flat(), fs = try flat()
        self.parameters = params
        self.backend = backend
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        self.layout = layout
        flatValue = fv; flatGrad = fg; flatM = fm; flatV = fs
        valueViews = try views(fv); gradViews = try views(fg)
        m = try views(fm); v = try views(fs)
        for (i, (_, p)) in self.parameters.enumerated() {
            try adopt(i, p)
            p.gradientSlot = gradViews[i]
        }
    }

    /// Makes parameter i's value (and gradient, when it has one) the views into the flat buffers,
    /// copying in whatever was put there since (a checkpoint load replaces `value`).
    private func adopt(_ i: Int, _ p: Parameter) throws {
        if p.value !== valueViews[i] {
            try backend.assign(valueViews[i], from: p.value)
            p.value = valueViews[i]
        }
        if let g = p.grad, g !== gradViews[i] {
            try backend.assign(gradViews[i], from: g)
            p.grad = gradViews[i]
        }
        p.gradientSlot = gradViews[i]
    }

    /// Clips the gradients by global norm, applies one AdamW update at `lr`, clears the gradients.
    /// Parameters without a gradient (unused this step) are left as they are, as PyTorch does.
    public func update(lr: Float) throws {
        step += 1
        var active = [Int]()
        for (i, (_, p)) in parameters.enumerated() where p.grad != nil {
            try adopt(i, p)
            active.append(i)
        }
        let ranges = layout.runs(of: active)
        guard !ranges.isEmpty else { return }
        let norm = clipNorm > 0 ? try backend.flatSumOfSquares(flatGrad, ranges: ranges) : nil
        let hp = AdamParams(lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, decoupled: true, step: step)
        try backend.flatAdamStep(param: flatValue, grad: flatGrad, m: flatM, v: flatV, ranges: ranges, params: hp,
                                 clip: norm.map { ($0, clipNorm) })
        for i in active { parameters[i].1.grad = nil }
    }

    /// Optimiser state as named tensors for checkpoints: `optimizer.m.NAME`, `optimizer.v.NAME`.
    public func stateTensors() -> [(String, Tensor)] {
        parameters.indices.flatMap { i in
            [("optimizer.m." + parameters[i].0, m[i]), ("optimizer.v." + parameters[i].0, v[i])]
        }
    }

    /// Restores the state written by `stateTensors` (shapes checked first, then copied into the
    /// flat buffers) and the step count.
    public func restore(_ tensors: [String: Tensor], step: Int) throws {
        var pairs = [(Tensor, Tensor)]()
        for (i, (name, p)) in parameters.enumerated() {
            guard let mt = tensors["optimizer.m." + name], let vt = tensors["optimizer.v." + name] else {
                throw RefineSegError.invalidArgument("optimizer state for \(name) missing from the checkpoint")
            }
            try mt.shape.expect(equal: p.value.shape, op: "restore optimizer.m.\(name)")
            try vt.shape.expect(equal: p.value.shape, op: "restore optimizer.v.\(name)")
            pairs += [(m[i], mt), (v[i], vt)]
        }
        for (view, t) in pairs { try backend.assign(view, from: t) }
        self.step = step
    }
}

/// Where each of a list of tensors sits in a flat buffer: back to back, each starting at a
/// multiple of `alignment` elements.
package struct FlatLayout: Equatable {
    package let offsets: [Int]
    package let counts: [Int]
    /// Elements of the flat buffer (a multiple of the alignment, at least one).
    package let total: Int
    package let alignment: Int

    package init(counts: [Int], alignment: Int) {
        var offsets = [Int](), end = 0
        for c in counts {
            offsets.append(end)
            end += (c + alignment - 1) / alignment * alignment
        }
        self.offsets = offsets; self.counts = counts; self.alignment = alignment
        total = max(end, alignment)
    }

    /// The element ranges of the tensors `indices` (ascending), neighbours merged into one range
    /// (the gap between them is padding, zero in every buffer, and stays zero under Adam).
    func runs(of indices: [Int]) -> [Range<Int>] {
        var runs = [Range<Int>]()
        var last = -2
        for i in indices where counts[i] > 0 {
            let r = offsets[i] ..< offsets[i] + counts[i]
            if i == last + 1, let prev = runs.last { runs[runs.count - 1] = prev.lowerBound ..< r.upperBound } else { runs.append(r) }
            last = i
        }
        return runs
    }
}
