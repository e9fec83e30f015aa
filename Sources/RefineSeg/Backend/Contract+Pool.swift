// The pool ops' contract: shape rules and constants that every backend checks and uses
// (CPUBackend+Pool.swift, CLBackend+Pool.swift). See CONTRIBUTING.md.

/// The shapes of a 2×2, stride-2 max pool: x (N, C, H, W) → (N, C, ⌊H/2⌋, ⌊W/2⌋) (odd sizes floor, as in PyTorch).
struct MaxPool2x2Geometry {
    let n: Int, c: Int, h: Int, w: Int
    var oh: Int { h / 2 }
    var ow: Int { w / 2 }
    var outputShape: Shape { [n, c, oh, ow] }

    init(_ input: Shape, op: String) throws {
        try input.expect(rank: 4, op: op)
        (n, c, h, w) = (input[0], input[1], input[2], input[3])
        guard h >= 2, w >= 2 else {
            throw RefineSegError.shapeMismatch(op: op, detail: "input \(input) is smaller than the 2×2 window")
        }
    }
}
