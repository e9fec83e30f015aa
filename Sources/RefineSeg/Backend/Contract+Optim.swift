import Foundation

// The optim ops' contract: shape rules and constants that every backend uses
// (CPUBackend+Optim.swift, CLBackend+Optim.swift). See CONTRIBUTING.md.

// As for the convolutions (Contract+Conv2D.swift), the shapes and hyper-parameters are checked
// here, in front of every backend, which implements only the methods of `OptimOps` that take the
// checked values (`constants:`, `geometry:`).
extension OptimOps {
    /// In place on param, m and v (all the same shape as grad).
    public func adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams) throws {
        try adamStep(param: param, grad: grad, m: m, v: v, params: params,
                     constants: try AdamConstants(params, shapes: [param, grad, m, v], op: "adam_step"))
    }

    /// In place: buf ← momentum·buf + (grad + wd·param); param −= lr·buf (PyTorch SGD, dampening 0).
    public func sgdStep(param: Tensor, grad: Tensor, momentumBuffer: Tensor, lr: Float, momentum: Float,
                        weightDecay: Float) throws {
        try sgdStep(param: param, grad: grad, momentumBuffer: momentumBuffer, lr: lr, momentum: momentum,
                    weightDecay: weightDecay, geometry: try SGDGeometry(param, grad: grad, momentumBuffer: momentumBuffer))
    }

    /// In place: every tensor is multiplied by min(1, maxNorm / (√sumOfSquares + 1e-6)) (see `OptimOps`).
    public func clipByGlobalNorm(_ tensors: [Tensor], sumOfSquares: Tensor, maxNorm: Float) throws {
        try clipByGlobalNorm(tensors, sumOfSquares: sumOfSquares, geometry: try ClipGeometry(sumOfSquares: sumOfSquares, maxNorm: maxNorm))
    }

    /// A tensor of `shape` sharing the storage of the rank-1 tensor `flat` from `offset` on (see `OptimOps`).
    public func view(_ flat: Tensor, offset: Int, shape: Shape) throws -> Tensor {
        try view(flat, geometry: try ViewGeometry(flat, offset: offset, shape: shape, alignment: viewAlignment))
    }

    /// In place: `target` takes the values of `source` (equal element counts).
    public func assign(_ target: Tensor, from source: Tensor) throws {
        try assign(target, from: source, geometry: try AssignGeometry(target, source))
    }

    /// Σ x² of `flat` over `ranges`, as partial sums (see `OptimOps`).
    public func flatSumOfSquares(_ flat: Tensor, ranges: [Range<Int>]) throws -> SquaredNormPartials {
        try flatSumOfSquares(flat, geometry: try FlatGeometry(ranges, in: flat, op: "flat_sum_of_squares"))
    }

    /// One Adam/AdamW step over the elements of `ranges` of flat buffers, optionally clipped (see `OptimOps`).
    public func flatAdamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, ranges: [Range<Int>], params: AdamParams,
                             clip: (norm: SquaredNormPartials, maxNorm: Float)?) throws {
        let k = try AdamConstants(params, shapes: [param, grad, m, v], op: "flat_adam_step")
        let g = try FlatGeometry(ranges, in: param, op: "flat_adam_step")
        if let clip { _ = try ClipGeometry(maxNorm: clip.maxNorm) }
        try flatAdamStep(param: param, grad: grad, m: m, v: v, params: params, clip: clip, constants: k, geometry: g)
    }
}

/// The per-step constants of Adam, computed once on the host in double precision as
/// torch.optim does (Python floats) and rounded to Float when they reach the kernel; building them
/// checks the step and that param, grad, m and v have one shape.
public struct AdamConstants: Sendable {
    /// lr / (1 − β1^t).
    public let stepSize: Float
    /// √(1 − β2^t).
    public let bc2Sqrt: Float
    /// AdamW's weight factor 1 − lr·wd.
    public let decay: Float

    init(_ p: AdamParams, shapes tensors: [Tensor], op: String) throws {
        guard p.step >= 1 else { throw RefineSegError.invalidArgument("[\(op)] step \(p.step) must be ≥ 1 (1-based)") }
        for t in tensors.dropFirst() { try t.shape.expect(equal: tensors[0].shape, op: op) }
        stepSize = Float(Double(p.lr) / (1 - pow(Double(p.beta1), Double(p.step))))
        bc2Sqrt = Float((1 - pow(Double(p.beta2), Double(p.step))).squareRoot())
        decay = Float(1 - Double(p.lr) * Double(p.weightDecay))
    }
}

/// An SGD step's buffers: grad and momentum buffer shaped like param, `count` values each.
public struct SGDGeometry: Sendable {
    public let count: Int

    init(_ param: Tensor, grad: Tensor, momentumBuffer: Tensor) throws {
        for t in [grad, momentumBuffer] { try t.shape.expect(equal: param.shape, op: "sgd_step") }
        count = param.count
    }
}

/// A checked global-norm clip: `maxNorm` positive and finite, the sum of squares one element.
public struct ClipGeometry: Sendable {
    /// torch.nn.utils.clip_grad_norm_'s guard: factor = maxNorm / (norm + 1e-6).
    public static let epsilon = 1e-6

    public let maxNorm: Float

    init(sumOfSquares: Tensor, maxNorm: Float) throws {
        guard sumOfSquares.count == 1 else {
            throw RefineSegError.shapeMismatch(op: "clip_by_global_norm", detail: "sumOfSquares \(sumOfSquares.shape) must have one element")
        }
        try self.init(maxNorm: maxNorm)
    }

    init(maxNorm: Float) throws {
        guard maxNorm > 0, maxNorm.isFinite else {
            throw RefineSegError.invalidArgument("[clip_by_global_norm] maxNorm \(maxNorm) must be positive and finite")
        }
        self.maxNorm = maxNorm
    }
}

/// A view that fits its rank-1 flat tensor: elements `offset ..< offset + shape.count`, the offset
/// a multiple of the backend's `viewAlignment`.
public struct ViewGeometry: Sendable {
    public let offset: Int
    public let shape: Shape

    init(_ flat: Tensor, offset: Int, shape: Shape, alignment: Int) throws {
        guard flat.shape.rank == 1 else {
            throw RefineSegError.shapeMismatch(op: "view", detail: "flat tensor \(flat.shape) must be rank 1")
        }
        guard offset >= 0, offset % alignment == 0, offset + shape.count <= flat.count else {
            throw RefineSegError.invalidArgument("[view] offset \(offset) with \(shape.count) elements does not fit \(flat.shape) at alignment \(alignment)")
        }
        self.offset = offset; self.shape = shape
    }
}

/// `assign`'s source and target: `count` values each.
public struct AssignGeometry: Sendable {
    public let count: Int

    init(_ target: Tensor, _ source: Tensor) throws {
        guard target.count == source.count else {
            throw RefineSegError.shapeMismatch(op: "assign", detail: "\(source.shape) into \(target.shape)")
        }
        count = source.count
    }
}

/// Ranges inside a rank-1 flat tensor (the flat-buffer ops).
public struct FlatGeometry: Sendable {
    public let ranges: [Range<Int>]

    init(_ ranges: [Range<Int>], in flat: Tensor, op: String) throws {
        guard flat.shape.rank == 1 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "flat tensor \(flat.shape) must be rank 1")
        }
        for r in ranges where r.lowerBound < 0 || r.upperBound > flat.count {
            throw RefineSegError.invalidArgument("[\(op)] range \(r) outside \(flat.shape)")
        }
        self.ranges = ranges
    }
}
