/// Profiling and memory statistics, asked of any backend by the benches and soak tests, so
/// that no diagnostic downcasts a backend. Counts come from what the real code launches
/// (STYLE.md rule 17): each launch carries its `flops:`/`bytes:` annotations.
public protocol DiagnosticsOps: AnyObject {
    /// Details of the device (nil for the CPU reference).
    var deviceInfo: DeviceInfo? { get }
    /// Device memory held by the buffer pool (nil where there is no pool: the CPU reference).
    var memoryStats: MemoryStats? { get }
    /// True when profiling records every launch with its device time, so a per-kernel table of
    /// a profiled step is complete (the CPU reference records its convolution family only).
    var profilesEveryLaunch: Bool { get }
    /// Starts recording launches. Calls nest: an inner start/stop pair (the conv tuner timing
    /// candidates) returns its own launches and leaves the outer recording running.
    func startProfiling()
    /// Waits for the device and returns the launches recorded since the matching `startProfiling`;
    /// they leave the recording, so an outer one does not see an inner pair's launches.
    func stopProfiling() throws -> [KernelTiming]
    /// Per-launch overhead measured with `launches` empty kernels (nil where there are no kernels).
    func launchOverhead(launches: Int) throws -> LaunchOverhead?
}

extension DiagnosticsOps {
    public var deviceInfo: DeviceInfo? { nil }
    public var memoryStats: MemoryStats? { nil }
    public var profilesEveryLaunch: Bool { false }
    public func startProfiling() {}
    public func stopProfiling() throws -> [KernelTiming] { [] }
    public func launchOverhead(launches: Int) throws -> LaunchOverhead? { nil }
}

/// What one kernel launch costs on a device beyond its work, measured with an empty kernel
/// (Kernels/roofline.cl `roofline_empty`, one work item).
public struct LaunchOverhead: Sendable, Codable {
    /// Empty kernels launched for each of the two figures.
    public var launches: Int
    /// Wall-clock microseconds per launch: `launches` enqueued back to back, then one finish,
    /// divided by `launches` (host enqueue plus the device's dispatch, serialised by the in-order queue).
    public var wallMicroseconds: Double
    /// Median profiling-event time (end − start) of one empty launch in microseconds: the part
    /// of the overhead that every kernel's own device time already contains.
    public var deviceMicroseconds: Double

    public init(launches: Int, wallMicroseconds: Double, deviceMicroseconds: Double) {
        self.launches = launches; self.wallMicroseconds = wallMicroseconds; self.deviceMicroseconds = deviceMicroseconds
    }
}

/// Device memory of a backend's buffer pool.
public struct MemoryStats: Sendable, Equatable {
    /// Bytes held by live tensors.
    public var inUse: Int
    /// High-water mark of all pooled memory (live and cached).
    public var peak: Int
    /// Buffers created so far (equal counts over a span: nothing was allocated in it).
    public var allocations: Int

    public init(inUse: Int, peak: Int, allocations: Int) {
        self.inUse = inUse; self.peak = peak; self.allocations = allocations
    }
}

/// One recorded launch: a kernel on OpenCL (device time from profiling events), an op of the
/// CPU reference (host time).
public struct KernelTiming: Sendable {
    public var name: String
    public var milliseconds: Double
    /// Useful floating-point operations of the launch, when its launcher stated them (nil: not stated).
    public var flops: Double? = nil
    /// Bytes the launch moves: what the launcher stated, else every buffer argument counted once
    /// (an estimate: low for a buffer both read and written, high for one only partly touched).
    public var bytes: Int = 0

    public init(name: String, milliseconds: Double, flops: Double? = nil, bytes: Int = 0) {
        self.name = name; self.milliseconds = milliseconds; self.flops = flops; self.bytes = bytes
    }
}

extension Array where Element == KernelTiming {
    /// Stated FLOPs of the convolution family (every launch whose name starts with "conv"):
    /// the figure benches divide by time. Launches that state none (weight packing, split sums) add nothing.
    public var convolutionFlops: Double {
        reduce(0) { $0 + ($1.name.hasPrefix("conv") ? $1.flops ?? 0 : 0) }
    }
}
