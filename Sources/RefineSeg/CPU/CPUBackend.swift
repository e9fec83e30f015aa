/// Host storage of the CPU reference: values kept as Double so long sums accumulate exactly
/// enough; in float32 mode every op output is rounded to Float, so the reference behaves like
/// float32 storage with double accumulators.
public final class CPUStorage: TensorStorage {
    private var own: [Double]
    /// Set for a view (`CPUBackend.view`): the values are `base`'s `range`.
    private let base: CPUStorage?
    private let range: Range<Int>

    init(_ data: [Double]) { own = data; base = nil; range = 0..<data.count }
    /// A view of `range` of `base` (a storage that is not itself a view).
    init(viewOf base: CPUStorage, range: Range<Int>) {
        precondition(base.base == nil && range.upperBound <= base.own.count)
        own = []; self.base = base; self.range = range
    }

    /// A view of `range` of this storage (views of views resolve to the root).
    func view(_ r: Range<Int>) -> CPUStorage {
        if let base { return CPUStorage(viewOf: base, range: (range.lowerBound + r.lowerBound) ..< (range.lowerBound + r.upperBound)) }
        return CPUStorage(viewOf: self, range: r)
    }

    public var data: [Double] {
        get { base.map { Array($0.own[range]) } ?? own }
        set {
            if let base { precondition(newValue.count == range.count); base.own.replaceSubrange(range, with: newValue) } else { own = newValue }
        }
    }
}

/// The CPU reference backend: plain loops, written to be read, never tuned for speed.
/// It is the ground truth that every OpenCL kernel is checked against.
public final class CPUBackend: BackendCore {
    public enum Precision: Sendable { case float32, float64 }

    /// `.float32` rounds op outputs to Float (the reference for kernels); `.float64` keeps
    /// Doubles throughout (finite-difference gradient checks).
    public let precision: Precision

    /// Launch records while profiling (`CPUBackend+Diagnostics.swift`).
    let profile = CPUProfile()

    public init(precision: Precision = .float32) { self.precision = precision }

    public var name: String { precision == .float32 ? "cpu" : "cpu-f64" }

    // MARK: storage helpers shared by every CPUBackend+*.swift file

    /// The values behind `t` (throws if `t` belongs to another backend).
    func values(_ t: Tensor) throws -> [Double] { try storage(t).data }

    func storage(_ t: Tensor) throws -> CPUStorage {
        guard let s = t.storage as? CPUStorage else {
            throw RefineSegError.invalidArgument("tensor of \(t.backend.name) used on the \(name) backend")
        }
        return s
    }

    /// Wraps computed values as a tensor, rounding to Float in float32 mode.
    /// `make(data + prior)`: a backward's result with a gradient that already reached its input
    /// added (the `adding prior:` ops, whose entry points checked that the prior has the result's shape).
    func make(_ data: [Double], _ shape: Shape, adding prior: Tensor?) throws -> Tensor {
        guard let prior else { return make(data, shape) }
        return make(zip(data, try values(prior)).map { $0 + $1 }, shape)
    }

    func make(_ data: [Double], _ shape: Shape) -> Tensor {
        precondition(data.count == shape.count, "CPUBackend.make: \(data.count) values for \(shape)")
        let stored = precision == .float32 ? data.map { Double(Float($0)) } : data
        return Tensor(shape: shape, storage: CPUStorage(stored), backend: self)
    }

    /// Replaces the values of `t` in place (rounding as `make` does).
    func overwrite(_ t: Tensor, _ data: [Double]) throws {
        let s = try storage(t)
        precondition(data.count == s.data.count)
        s.data = precision == .float32 ? data.map { Double(Float($0)) } : data
    }

    /// Uploads Doubles without rounding (float64 gradient checks).
    public func tensor(doubles values: [Double], shape: Shape) throws -> Tensor {
        make(values, try UploadGeometry(count: values.count, shape: shape).shape)
    }

    /// Reads values as Doubles (float64 gradient checks).
    public func readDoubles(_ t: Tensor) throws -> [Double] { try values(t) }

    // MARK: BackendCore

    public func tensor(_ values: [Float], geometry g: UploadGeometry) throws -> Tensor {
        make(values.map(Double.init), g.shape)
    }

    public func full(_ shape: Shape, value: Float) throws -> Tensor {
        make([Double](repeating: Double(value), count: shape.count), shape)
    }

    public func read(_ tensor: Tensor) throws -> [Float] { try values(tensor).map { Float($0) } }

    public func synchronize() throws {}
}
