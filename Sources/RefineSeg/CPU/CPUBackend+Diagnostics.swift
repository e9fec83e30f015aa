import Foundation

/// Profiling of the CPU reference: its convolution-family ops record their host time with the
/// FLOPs of their geometry (the same annotation the OpenCL launchers give their kernels), so
/// FLOP counts come from what a real forward runs on either backend. Other ops are not recorded
/// (`profilesEveryLaunch` is false); there is no device memory (`memoryStats` is nil).
extension CPUBackend: DiagnosticsOps {
    public func startProfiling() { profile.starts.append(profile.records.count) }

    public func stopProfiling() throws -> [KernelTiming] {
        let first = min(profile.starts.popLast() ?? 0, profile.records.count)
        defer { profile.records.removeSubrange(first...) }
        return Array(profile.records[first...])
    }

    /// Host clock for `recordLaunch` (nil when not profiling, so unprofiled runs read no clock).
    func launchStart() -> UInt64? {
        profile.starts.isEmpty ? nil : DispatchTime.now().uptimeNanoseconds
    }

    /// Records op `name` begun at `start` (from `launchStart`) with the FLOPs it computed.
    func recordLaunch(_ name: String, since start: UInt64?, flops: Double) {
        guard let start else { return }
        profile.records.append(KernelTiming(name: name, milliseconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6,
                                            flops: flops))
    }
}

/// The launches `CPUBackend` recorded since each open `startProfiling` (innermost last).
final class CPUProfile {
    var starts: [Int] = []
    var records: [KernelTiming] = []
}
