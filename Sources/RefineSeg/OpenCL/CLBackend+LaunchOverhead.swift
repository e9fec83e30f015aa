import Foundation

extension CLBackend {
    /// Launch overhead of the device: `launches` empty kernels timed wall-clock, then
    /// the same number with profiling events, after a warm-up launch that builds the kernel.
    func measureLaunchOverhead(launches: Int) throws -> LaunchOverhead {
        precondition(launches >= 1)
        let out = try empty([1], op: "launch overhead")
        func launch() throws { try run("roofline_empty", file: "roofline", [.tensor(out)], global: [1], local: [1]) }
        try launch()
        try synchronize()
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<launches { try launch() }
        try synchronize()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e3 / Double(launches)
        startProfiling()
        for _ in 0..<launches { try launch() }
        let events = try stopProfiling().map { $0.milliseconds * 1e3 }
        guard events.count == launches, wall.isFinite, wall > 0 else {
            throw RefineSegError.numerical("[launch overhead] \(events.count) profiling events for \(launches) launches, \(wall) µs wall per launch")
        }
        return LaunchOverhead(launches: launches, wallMicroseconds: wall, deviceMicroseconds: DistanceTransform.percentile(events, 50))
    }
}
