import RefineSeg

/// How an op-case input is filled.
public enum InputFill: Sendable {
    /// Uniform in [lo, hi).
    case uniform(Float, Float)
    /// 0 or 1 with probability `p` of 1 (masks, targets).
    case binary(Float)
    /// Uniform in [lo, hi) but kept at least `gap` away from zero (inputs of relu-like kinks).
    case awayFromZero(Float, Float, gap: Float)
    /// A constant.
    case constant(Float)
}

/// One input of an op case.
public struct OpInput: Sendable {
    public var name: String
    public var shape: Shape
    public var fill: InputFill
    /// Whether the case's backward returns a gradient for it (checked by finite differences).
    public var differentiable: Bool

    public init(_ name: String, _ shape: Shape, _ fill: InputFill = .uniform(-1, 1), differentiable: Bool = true) {
        self.name = name; self.shape = shape; self.fill = fill; self.differentiable = differentiable
    }
}

/// Agreement limits. A comparison passes when NMSE ≤ `nmse` and
/// max |a − b| ≤ `maxAbs` · max(1, max |reference|).
public struct Tolerance: Sendable, CustomStringConvertible {
    public var nmse: Double
    public var maxAbs: Double
    public init(nmse: Double, maxAbs: Double) { self.nmse = nmse; self.maxAbs = maxAbs }

    /// Elementwise ops: both sides round the same float operations; only ulps differ.
    public static let exact = Tolerance(nmse: 1e-12, maxAbs: 1e-5)
    /// Sums of up to a few thousand float terms against double accumulation.
    public static let sums = Tolerance(nmse: 1e-9, maxAbs: 1e-4)
    public var description: String { String(format: "%.0e/%.0e", nmse, maxAbs) }
}

/// One entry of the op registry, in the style of ggml's test-backend-ops: an op at one shape
/// and parameter set, run forward (and backward with a random upstream gradient) on a backend
/// under test and on the CPU reference.
public struct OpCase {
    /// Registry op name (e.g. "conv2d"); `refineseg check --op NAME` filters on it.
    public var op: String
    /// Shapes and parameters, for the report.
    public var params: String
    public var inputs: [OpInput]
    /// Forward tolerance.
    public var tolerance: Tolerance
    /// Tolerance for the backward outputs (defaults to `tolerance`).
    public var gradTolerance: Tolerance
    /// Whether the finite-difference check runs (off for the largest layer cases, whose
    /// gradients are covered by smaller cases of the same code path).
    public var gradCheck: Bool
    /// Seed of the inputs.
    public var seed: UInt64
    /// Membership of the small-shape subset (`refineseg check --small`, run under Oclgrind in
    /// CI): nil decides by size (`isSmall`), true or false marks the case explicitly.
    public var smallMark: Bool?
    /// Forward: inputs → outputs. Ops that work in place return the tensors they changed.
    public var forward: (Backend, [Tensor]) throws -> [Tensor]
    /// Backward: (inputs, outputs, upstream gradients per output) → one gradient per input
    /// (nil for inputs that are not differentiable). nil when the op has no backward.
    public var backward: ((Backend, [Tensor], [Tensor], [Tensor]) throws -> [Tensor?])?

    public init(op: String, params: String, inputs: [OpInput], tolerance: Tolerance = .exact,
                gradTolerance: Tolerance? = nil, gradCheck: Bool = true, seed: UInt64 = 1, small: Bool? = nil,
                forward: @escaping (Backend, [Tensor]) throws -> [Tensor],
                backward: ((Backend, [Tensor], [Tensor], [Tensor]) throws -> [Tensor?])? = nil) {
        self.op = op; self.params = params; self.inputs = inputs; self.tolerance = tolerance
        self.gradTolerance = gradTolerance ?? tolerance; self.gradCheck = gradCheck && backward != nil
        self.seed = seed; self.forward = forward; self.backward = backward; self.smallMark = small
    }

    /// Input elements (all inputs together) up to which a case is in the small-shape subset
    /// unless marked otherwise: small enough that a simulator such as Oclgrind, which runs every
    /// work item one instruction at a time, gets through every op family in a few minutes.
    public static let smallElements = 4096

    /// Whether the case is in the small-shape subset: `smallMark` if set, else whether its
    /// inputs hold at most `smallElements` values together.
    public var isSmall: Bool { smallMark ?? (inputs.reduce(0) { $0 + $1.shape.count } <= Self.smallElements) }

    /// Host values of every input, deterministic for the case's seed.
    public func inputValues() -> [[Float]] {
        var rng = SeededRandom(seed: seed &* 0x2545_F491_4F6C_DD1D ^ UInt64(truncatingIfNeeded: op.hashValueStable))
        return inputs.map { input in
            (0..<input.shape.count).map { _ -> Float in
                switch input.fill {
                case let .uniform(lo, hi): return rng.uniform(lo, hi)
                case let .binary(p): return rng.nextUnit() < p ? 1 : 0
                case let .constant(v): return v
                case let .awayFromZero(lo, hi, gap):
                    var v = rng.uniform(lo, hi)
                    while abs(v) < gap { v = rng.uniform(lo, hi) }
                    return v
                }
            }
        }
    }
}
