// The reduce and matmul ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Reduce.swift, CLBackend+Reduce.swift). See CONTRIBUTING.md.

/// A reduction seen as (outer, reduced, inner): axes before, inside and after the reduced run.
struct ReduceGeometry {
    let outer: Int, reduced: Int, inner: Int
    let outputShape: Shape

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

/// C (M, N) = op(A) · op(B) with the shared extent K.
struct MatmulGeometry {
    let m: Int, n: Int, k: Int

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
