import Foundation

// The optim ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Optim.swift, CLBackend+Optim.swift). See CONTRIBUTING.md.

/// The per-step constants of Adam, computed once on the host in double precision as
/// torch.optim does (Python floats) and rounded to Float when they reach the kernel.
struct AdamConstants {
    /// lr / (1 − β1^t).
    let stepSize: Float
    /// √(1 − β2^t).
    let bc2Sqrt: Float
    /// AdamW's weight factor 1 − lr·wd.
    let decay: Float

    init(_ p: AdamParams, shapes tensors: [Tensor], op: String) throws {
        guard p.step >= 1 else { throw RefineSegError.invalidArgument("[\(op)] step \(p.step) must be ≥ 1 (1-based)") }
        for t in tensors.dropFirst() { try t.shape.expect(equal: tensors[0].shape, op: op) }
        stepSize = Float(Double(p.lr) / (1 - pow(Double(p.beta1), Double(p.step))))
        bc2Sqrt = Float((1 - pow(Double(p.beta2), Double(p.step))).squareRoot())
        decay = Float(1 - Double(p.lr) * Double(p.weightDecay))
    }
}

enum ClipGeometry {
    /// torch.nn.utils.clip_grad_norm_'s guard: factor = maxNorm / (norm + 1e-6).
    static let epsilon = 1e-6

    static func check(_ sumOfSquares: Tensor, maxNorm: Float) throws -> Tensor {
        guard sumOfSquares.count == 1 else {
            throw RefineSegError.shapeMismatch(op: "clip_by_global_norm", detail: "sumOfSquares \(sumOfSquares.shape) must have one element")
        }
        try check(maxNorm: maxNorm)
        return sumOfSquares
    }

    static func check(maxNorm: Float) throws {
        guard maxNorm > 0, maxNorm.isFinite else {
            throw RefineSegError.invalidArgument("[clip_by_global_norm] maxNorm \(maxNorm) must be positive and finite")
        }
    }
}

/// Checks shared by both backends' flat-buffer ops.
enum FlatGeometry {
    static func checkView(_ flat: Tensor, offset: Int, shape: Shape, alignment: Int) throws {
        guard flat.shape.rank == 1 else {
            throw RefineSegError.shapeMismatch(op: "view", detail: "flat tensor \(flat.shape) must be rank 1")
        }
        guard offset >= 0, offset % alignment == 0, offset + shape.count <= flat.count else {
            throw RefineSegError.invalidArgument("[view] offset \(offset) with \(shape.count) elements does not fit \(flat.shape) at alignment \(alignment)")
        }
    }

    static func check(_ ranges: [Range<Int>], in flat: Tensor, op: String) throws {
        guard flat.shape.rank == 1 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "flat tensor \(flat.shape) must be rank 1")
        }
        for r in ranges where r.lowerBound < 0 || r.upperBound > flat.count {
            throw RefineSegError.invalidArgument("[\(op)] range \(r) outside \(flat.shape)")
        }
    }
}
