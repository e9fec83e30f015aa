// The loss ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Loss.swift, CLBackend+Loss.swift). See CONTRIBUTING.md.

/// Layout of the fused supervised loss: logits and target (N, 1, H, W), embedding (N, D, H, W) or none (d = 0).
struct SegLossGeometry {
    let n: Int, d: Int, hw: Int

    init(_ logits: Tensor, _ embedding: Tensor?, _ target: Tensor, op: String) throws {
        if let embedding {
            let g = try LACGeometry(embedding, logits, target, op: op)
            n = g.n; d = g.d; hw = g.hw
            return
        }
        try logits.shape.expect(rank: 4, op: op, name: "logits")
        let (n, c, h, w) = logits.shape.nchw
        try target.shape.expect(equal: logits.shape, op: op)
        guard c == 1, n > 0, h * w > 0 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "logits \(logits.shape) must be (N, 1, H, W) with N, H, W > 0")
        }
        self.n = n; d = 0; hw = h * w
    }
}

/// Soft Dice layout: N images of `perImage` values each (any shape with the batch first).
struct DiceGeometry {
    let n: Int, perImage: Int

    init(n: Int, perImage: Int) { self.n = n; self.perImage = perImage }

    init(_ probs: Tensor, _ target: Tensor, op: String) throws {
        try target.shape.expect(equal: probs.shape, op: op)
        guard probs.shape.rank >= 2, probs.shape[0] > 0 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "probabilities \(probs.shape) must be (N, 1, H, W) with N > 0")
        }
        n = probs.shape[0]; perImage = probs.count / n
    }

    /// Σ p·y, Σ p and Σ y over image b.
    func sums(_ p: [Double], _ y: [Double], image b: Int) -> (inter: Double, p: Double, y: Double) {
        var inter = 0.0, sp = 0.0, sy = 0.0
        for i in (b * perImage)..<((b + 1) * perImage) {
            inter += p[i] * y[i]; sp += p[i]; sy += y[i]
        }
        return (inter, sp, sy)
    }
}

enum BarlowGeometry {
    /// D of a square (D, D) correlation matrix.
    static func side(of c: Tensor, op: String) throws -> Int {
        guard c.shape.rank == 2, c.shape[0] == c.shape[1] else {
            throw RefineSegError.shapeMismatch(op: op, detail: "correlation \(c.shape) must be square (D, D)")
        }
        return c.shape[0]
    }
}

/// Layout of the lesion-aware contrastive loss: embedding (N, D, H, W), logits and target (N, 1, H, W).
struct LACGeometry {
    let n: Int, d: Int, hw: Int

    init(n: Int, d: Int, hw: Int) { self.n = n; self.d = d; self.hw = hw }

    init(_ embedding: Tensor, _ logits: Tensor, _ target: Tensor, op: String) throws {
        try embedding.shape.expect(rank: 4, op: op, name: "embedding")
        let (n, d, h, w) = embedding.shape.nchw
        try logits.shape.expect(equal: [n, 1, h, w], op: op)
        try target.shape.expect(equal: [n, 1, h, w], op: op)
        guard n > 0, d > 0, h * w > 0 else {
            throw RefineSegError.invalidArgument("[\(op)] embedding \(embedding.shape) is empty")
        }
        self.n = n; self.d = d; self.hw = h * w
    }
}
