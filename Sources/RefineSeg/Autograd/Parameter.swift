/// A named, trainable tensor (or a buffer such as a BatchNorm running statistic) of a module.
/// Its `value` is updated in place by optimisers; `grad` is filled by `Graph.backward`.
public final class Parameter {
    public var value: Tensor
    public var grad: Tensor?
    /// Buffers (running statistics) are saved in checkpoints but never trained.
    public let isBuffer: Bool

    /// Where this step's gradient goes when an optimiser keeps gradients in a flat buffer (a view
    /// into it, see `AdamW`); nil: each step's gradient is a fresh tensor.
    public internal(set) var gradientSlot: Tensor?

    public init(_ value: Tensor, isBuffer: Bool = false) {
        self.value = value
        self.isBuffer = isBuffer
    }

    /// Adds one gradient contribution (called by `Graph.backward` for every gradient reaching this
    /// leaf): the first of a step is copied into `gradientSlot` (or a fresh tensor), later ones added.
    func accumulateGradient(_ g: Tensor, backend: Backend) throws {
        if let existing = grad {
            try backend.accumulate(existing, g, alpha: 1)
        } else if let slot = gradientSlot {
            try backend.assign(slot, from: g)
            grad = slot
        } else {
            grad = try backend.copy(g)
        }
    }
}

/// Anything with named parameters, named like the checkpoint tensors of docs/MODEL.md.
public protocol Module: AnyObject {
    /// Appends (dotted name, parameter) pairs, parameters and buffers alike, in a fixed order.
    func collect(prefix: String, into list: inout [(String, Parameter)])
}

extension Module {
    /// Every parameter and buffer with its full dotted name.
    public func namedParameters(prefix: String = "") -> [(String, Parameter)] {
        var list = [(String, Parameter)]()
        collect(prefix: prefix, into: &list)
        return list
    }

    /// Only the trainable parameters.
    public func trainableParameters() -> [(String, Parameter)] { namedParameters().filter { !$0.1.isBuffer } }
}

/// "prefix.name", or "name" at the top.
@inline(__always) func join(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }
