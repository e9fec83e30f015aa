import Foundation

/// Device storage: a pooled buffer.
final class CLStorage: TensorStorage {
    let buffer: CLBuffer
    init(_ buffer: CLBuffer) { self.buffer = buffer }
}

/// The OpenCL backend: every op is one or a few hand-written kernels from Kernels/.
public final class CLBackend: BackendCore {
    let ctx: CLContext
    /// channel_gate_mlp_backward_cpu's completion counter: one int, 0 between launches (zeroed when
    /// made, on first use; the kernel's last item sets it back). A buffer, not a tensor: a tensor
    /// would hold the backend that holds it.
    var gateMLPCounter: CLBuffer?

    /// Opens device `device` (nil: `REFINESEG_DEVICE` or the default, see `OpenCLDevices`).
    public init(device: Int? = nil) throws { ctx = try CLContext(device: device) }

    public var info: DeviceInfo { ctx.info }
    public var name: String { "opencl:\(ctx.info.index) (\(ctx.info.name))" }

    // MARK: helpers shared by every CLBackend+*.swift file

    func buffer(_ t: Tensor) throws -> CLBuffer {
        guard let s = t.storage as? CLStorage else {
            throw RefineSegError.invalidArgument("tensor of \(t.backend.name) used on the \(name) backend")
        }
        return s.buffer
    }

    /// A new uninitialised tensor from the pool.
    package func empty(_ shape: Shape, op: String) throws -> Tensor {
        // Kernels index with 32-bit ints (Kernels/common.h). Above the device's largest allocation
        // the pool's refusal comes first, since it names the bytes and the limit.
        let limit = ctx.pool.maxAllocationBytes
        if shape.count > Int(Int32.max) && (limit <= 0 || shape.count * 4 <= limit) {
            throw RefineSegError.invalidArgument("[\(op)] tensor \(shape) has \(shape.count) elements; OpenCL kernels index below 2^31")
        }
        return Tensor(shape: shape, storage: CLStorage(try ctx.pool.take(bytes: shape.count * 4, op: op)), backend: self)
    }

    /// Launches `kernel` from `Kernels/<file>.cl`; tensors become buffer arguments. `flops`
    /// (useful operations) and `bytes` (traffic) only annotate profiling records, for the benches.
    package func run(_ kernel: String, file: String, options: String = "", _ args: [KernelArg],
             global: [Int], local: [Int]? = nil, flops: Double? = nil, bytes: Int? = nil) throws {
        let resolved: [CLArg] = try args.map { arg in
            switch arg {
            case let .tensor(t): return .buffer(try buffer(t))
            case let .int(v): return .int(v)
            case let .float(v): return .float(v)
            case let .local(bytes): return .local(bytes)
            }
        }
        try ctx.launch(kernel, file: file, options: options, args: resolved, global: global, local: local,
                       flops: flops, bytes: bytes)
    }

    /// Kernel arguments as the op files write them.
    package enum KernelArg {
        case tensor(Tensor)
        case int(Int)
        case float(Float)
        case local(Int)
    }

    // MARK: BackendCore

    public func tensor(_ values: [Float], geometry g: UploadGeometry) throws -> Tensor {
        let t = try empty(g.shape, op: "upload")
        try ctx.upload(values, to: try buffer(t), op: "upload")
        return t
    }

    public func full(_ shape: Shape, value: Float) throws -> Tensor {
        let t = try empty(shape, op: "fill")
        try fill(t, value: value)
        return t
    }

    public func read(_ tensor: Tensor) throws -> [Float] {
        try ctx.download(try buffer(tensor), count: tensor.count, op: "read")
    }

    public func synchronize() throws { try ctx.finish() }

    public func startRead(_ tensor: Tensor) throws -> PendingRead {
        PendingRead(try ctx.startDownload(try buffer(tensor), count: tensor.count, op: "read"))
    }
}

/// Pool statistics and profiling events (`DiagnosticsOps`), for benches and soak tests.
extension CLBackend: DiagnosticsOps {
    public var deviceInfo: DeviceInfo? { ctx.info }

    public var memoryStats: MemoryStats? {
        MemoryStats(inUse: ctx.pool.bytesInUse, peak: ctx.pool.peakBytes, allocations: ctx.pool.allocations)
    }

    /// Every kernel launch records a profiling event.
    public var profilesEveryLaunch: Bool { true }

    public func startProfiling() { ctx.startProfiling() }

    public func stopProfiling() throws -> [KernelTiming] { try ctx.stopProfiling() }

    public func launchOverhead(launches: Int) throws -> LaunchOverhead? {
        try measureLaunchOverhead(launches: launches)
    }
}
