// The norm ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Norm.swift, CLBackend+Norm.swift). See CONTRIBUTING.md.

/// (Cout, values per output channel) of a conv weight a batch norm folds into; its per-channel
/// tensors must be (Cout).
func batchNormFoldGeometry(convWeight: Tensor, convBias: Tensor?, params: [Tensor]) throws -> (cout: Int, per: Int) {
    guard convWeight.shape.rank >= 2, convWeight.count > 0 else {
        throw RefineSegError.shapeMismatch(op: "fold_batch_norm", detail: "conv weight \(convWeight.shape) must be (Cout, …)")
    }
    let cout = convWeight.shape[0]
    for p in params + (convBias.map { [$0] } ?? []) where p.shape != [cout] {
        throw RefineSegError.shapeMismatch(op: "fold_batch_norm", detail: "per-channel tensor \(p.shape) must be [\(cout)] for conv weight \(convWeight.shape)")
    }
    return (cout, convWeight.count / cout)
}

/// Batch-norm layout, shared by both backends: NCHW (or (N, C) read as (N, C, 1, 1)), one
/// statistic per channel over M = N·H·W values.
struct BatchNormGeometry {
    let n: Int, c: Int, hw: Int
    /// Values per channel, M = N·H·W.
    var count: Int { n * hw }

    init(_ x: Tensor, params: [Tensor], op: String) throws {
        guard x.shape.rank == 2 || x.shape.rank == 4 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "input \(x.shape) must be (N, C, H, W) or (N, C)")
        }
        let (n, c, h, w) = x.shape.nchw
        guard n * h * w > 0 else {
            throw RefineSegError.invalidArgument("[\(op)] input \(x.shape) has no values per channel")
        }
        for p in params where p.shape != [c] {
            throw RefineSegError.shapeMismatch(op: op, detail: "per-channel tensor \(p.shape) must be [\(c)] for input \(x.shape)")
        }
        self.n = n; self.c = c; self.hw = h * w
    }

    /// Flat index of element p (of H·W) of channel ch of image b.
    func index(_ b: Int, _ ch: Int, _ p: Int) -> Int { (b * c + ch) * hw + p }
}
