// The reduce and matmul ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Reduce.swift, CLBackend+Reduce.swift). See CONTRIBUTING.md.

// As for the convolutions (Contract+Conv2D.swift), the shapes are checked here, in front of every
// backend, which implements only the `geometry:` methods of `ReduceOps` and `MatmulOps`.
extension ReduceOps {
    /// Reduces the contiguous axes `axes` of x; the output keeps them with extent 1.
    public func reduce(_ x: Tensor, axes: Range<Int>, kind: ReduceKind) throws -> Tensor {
        try reduce(x, axes: axes, kind: kind, geometry: try ReduceGeometry(x.shape, axes: axes))
    }

    /// dx for `reduce` from dy (the reduced shape); for max the gradient goes to the first maximal element of each group.
    public func reduceBackward(_ dy: Tensor, input x: Tensor, axes: Range<Int>, kind: ReduceKind) throws -> Tensor {
        let g = try ReduceGeometry(x.shape, axes: axes)
        try dy.shape.expect(equal: g.outputShape, op: "reduce_backward")
        return try reduceBackward(dy, input: x, axes: axes, kind: kind, geometry: g)
    }

    /// Σ over N, H, W per channel of an NCHW tensor → shape (C) (bias gradients).
    public func sumPerChannel(_ x: Tensor) throws -> Tensor {
        try sumPerChannel(x, geometry: try PerChannelGeometry(x))
    }
}

extension MatmulOps {
    /// C = op(A) · op(B) of rank-2 tensors, op = transpose when asked.
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> Tensor {
        try matmul(a, b, transposeA: transposeA, transposeB: transposeB,
                   geometry: try MatmulGeometry(a.shape, b.shape, transposeA: transposeA, transposeB: transposeB))
    }
}

/// A reduction seen as (outer, reduced, inner): axes before, inside and after the reduced run.
public struct ReduceGeometry: Sendable {
    public let outer: Int, reduced: Int, inner: Int
    public let outputShape: Shape

    init(_ shape: Shape, axes: Range<Int>) throws {
        guard !axes.isEmpty, axes.lowerBound >= 0, axes.upperBound <= shape.rank else {
            throw RefineSegError.invalidArgument("[reduce] axes \(axes) invalid for shape \(shape)")
        }
        outer = shape.dims[..<axes.lowerBound].reduce(1, *)
        reduced = shape.dims[axes].reduce(1, *)
        inner = shape.dims[axes.upperBound...].reduce(1, *)
        var out = shape.dims
        for a in axes { out[a] = 1 }
        outputShape = Shape(out)
    }
}

/// (N, C, H, W) of a tensor of rank 1…4 read as NCHW (`Shape.nchw`), for the per-channel sum.
public struct PerChannelGeometry: Sendable {
    public let n: Int, c: Int, h: Int, w: Int

    init(_ x: Tensor) throws {
        (n, c, h, w) = try x.shape.nchw(op: "sum_per_channel")
    }
}

/// C (M, N) = op(A) · op(B) with the shared extent K.
public struct MatmulGeometry: Sendable {
    public let m: Int, n: Int, k: Int

    init(_ a: Shape, _ b: Shape, transposeA: Bool, transposeB: Bool) throws {
        try a.expect(rank: 2, op: "matmul", name: "A")
        try b.expect(rank: 2, op: "matmul", name: "B")
        let (am, ak) = transposeA ? (a[1], a[0]) : (a[0], a[1])
        let (bk, bn) = transposeB ? (b[1], b[0]) : (b[0], b[1])
        guard ak == bk else {
            throw RefineSegError.shapeMismatch(op: "matmul", detail: "A \(a)\(transposeA ? "ᵀ" : "") · B \(b)\(transposeB ? "ᵀ" : "") inner extents \(ak) ≠ \(bk)")
        }
        m = am; n = bn; k = ak
    }
}
