import Foundation
import RefineSeg

/// One benched (layer, pass): device times from profiling events, validated first.
public struct KernelBenchResult: Codable, Sendable {
    public var op: String
    /// "forward", "backward_data" or "backward_weights".
    public var pass: String
    /// DFR-UNet layer names using this geometry.
    public var layer: String
    /// Shapes and geometry.
    public var params: [String: String]
    public var median_ms: Double
    public var min_ms: Double
    public var p90_ms: Double
    /// 2·MACs / median (for pooling: compared elements / median).
    public var gflops: Double
    /// Compulsory traffic (every input read once, the output written once) / median.
    public var gbps: Double
    /// Kernel configuration the launcher (or the tuner) chose.
    public var variant: String
    /// One run of the CPU reference (release build: plain loops, double accumulators).
    public var cpu_reference_ms: Double
    /// NMSE against the CPU reference (a case that fails validation is reported, never timed).
    public var nmse: Double
    public var validated: Bool
    public var repeats: Int
}

/// The report `refineseg bench kernels --json` writes.
public struct KernelBenchReport: Codable, Sendable {
    public var device: DeviceInfo
    public var driver: String
    public var git_commit: String
    public var environment: [String: String]
    public var command: String
    public var results: [KernelBenchResult]

    public init(device: DeviceInfo, driver: String, git_commit: String, environment: [String: String],
                command: String, results: [KernelBenchResult]) {
        self.device = device; self.driver = driver; self.git_commit = git_commit
        self.environment = environment; self.command = command; self.results = results
    }
}

/// Times the convolution-family kernels on the DFR-UNet layer geometries (the op cases of
/// `OpCases.dfrUNetConvLayers`). Each (layer, pass) is validated against the CPU reference
/// before it is timed; warm-up runs come first (they include tuning and PoCL's per
/// work-group-size compile), then `repeats` profiled runs, each summing the device time of all
/// kernels of one op call.
public enum KernelBench {
    public static func passes(of kind: ConvLayerSpec.Kind) -> [ConvPass] {
        kind == .maxPool2x2 ? [.forward, .backwardData] : ConvPass.allCases
    }

    public static func run(_ spec: ConvLayerSpec, pass: ConvPass, on backend: CLBackend, repeats: Int = 20,
                           warmups: Int = 3, reference: CPUBackend = CPUBackend()) throws -> KernelBenchResult {
        let opCase = spec.opCase(gradCheck: false)
        let values = opCase.inputValues()
        var rng = SeededRandom(seed: 0xBE4C)
        let dyValues = (0..<spec.output.count).map { _ in rng.uniform(-1, 1) }
        func upload(_ b: Backend) throws -> (inputs: [Tensor], dy: Tensor) {
            (try zip(values, opCase.inputs).map { try b.tensor($0, shape: $1.shape) }, try b.tensor(dyValues, shape: spec.output))
        }
        let host = try upload(reference)
        let cpuStart = DispatchTime.now().uptimeNanoseconds
        let want = try perform(spec, pass, reference, host.inputs, host.dy).toArray()
        let cpuMs = Double(DispatchTime.now().uptimeNanoseconds - cpuStart) / 1e6
        let dev = try upload(backend)
        let got = try perform(spec, pass, backend, dev.inputs, dev.dy).toArray()
        let cmp = Comparison.between(got, want, tolerance: opCase.tolerance)
        var result = KernelBenchResult(op: spec.kind.rawValue, pass: pass.rawValue, layer: spec.name,
                                       params: parameters(spec), median_ms: .nan, min_ms: .nan, p90_ms: .nan,
                                       gflops: .nan, gbps: .nan, variant: "", cpu_reference_ms: cpuMs,
                                       nmse: cmp.nmse, validated: cmp.passes(opCase.tolerance), repeats: 0)
        guard result.validated else { return result }

        func device() throws { _ = try perform(spec, pass, backend, dev.inputs, dev.dy) }
        for _ in 0..<warmups { try device() }
        try backend.synchronize()
        result.variant = spec.kind == .maxPool2x2 ? "pool" : backend.lastConvKernel
        var times = [Double]()
        for _ in 0..<max(repeats, 1) {
            backend.startProfiling()
            try device()
            times.append(try backend.stopProfiling().reduce(0) { $0 + $1.milliseconds })
        }
        times.sort()
        result.repeats = times.count
        result.median_ms = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        result.min_ms = times[0]
        result.p90_ms = times[min(times.count - 1, Int((Double(times.count) * 0.9).rounded(.up)) - 1)]
        result.gflops = spec.flopsPerPass / (result.median_ms * 1e6)
        result.gbps = Double(compulsoryBytes(spec, pass)) / (result.median_ms * 1e6)
        return result
    }

    /// One pass of `spec` on backend `b`: inputs are (x, weight, bias?) as the op case lists them.
    static func perform(_ spec: ConvLayerSpec, _ pass: ConvPass, _ b: Backend, _ inputs: [Tensor], _ dy: Tensor) throws -> Tensor {
        let x = inputs[0]
        switch (spec.kind, pass) {
        case (.conv2d, .forward):
            return try b.conv2d(x, weight: inputs[1], bias: spec.bias ? inputs[2] : nil, params: spec.params)
        case (.conv2d, .backwardData):
            return try b.conv2dBackwardData(dy, weight: inputs[1], inputShape: spec.input, params: spec.params)
        case (.conv2d, .backwardWeights):
            return try b.conv2dBackwardWeight(dy, input: x, weightShape: spec.weight, params: spec.params)
        case (.convTranspose2x2, .forward):
            return try b.convTranspose2x2(x, weight: inputs[1], bias: spec.bias ? inputs[2] : nil)
        case (.convTranspose2x2, .backwardData):
            return try b.convTranspose2x2BackwardData(dy, weight: inputs[1])
        case (.convTranspose2x2, .backwardWeights):
            return try b.convTranspose2x2BackwardWeight(dy, input: x)
        case (.maxPool2x2, .forward):
            return try b.maxPool2x2(x)
        case (.maxPool2x2, _):
            return try b.maxPool2x2Backward(dy, input: x)
        }
    }

    /// Bytes every correct implementation must move: inputs read once, output written once.
    static func compulsoryBytes(_ spec: ConvLayerSpec, _ pass: ConvPass) -> Int {
        let x = spec.input.count, y = spec.output.count, w = spec.weight.count
        switch (spec.kind, pass) {
        case (.maxPool2x2, .forward): return 4 * (x + y)
        case (.maxPool2x2, _): return 4 * (y + 2 * x)
        case (_, .forward): return 4 * (x + w + y)
        case (_, .backwardData): return 4 * (y + w + x)
        case (_, .backwardWeights): return 4 * (y + x + w)
        }
    }

    static func parameters(_ spec: ConvLayerSpec) -> [String: String] {
        var p = ["input": spec.input.description, "output": spec.output.description]
        if !spec.weight.dims.isEmpty {
            p["weight"] = spec.weight.description
            p["bias"] = spec.bias ? "true" : "false"
        }
        if spec.kind == .conv2d {
            p["kernel"] = "\(spec.weight[2])x\(spec.weight[3])"
            p["stride"] = "\(spec.params.strideH)"
            p["padding"] = "\(spec.params.padH)"
            p["dilation"] = "\(spec.params.dilationH)"
        }
        return p
    }

    /// POCL_* and REFINESEG_* variables, the host name and the CPU count.
    public static func environment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("POCL_") || $0.key.hasPrefix("REFINESEG_") }
        env["hostname"] = ProcessInfo.processInfo.hostName
        env["cpu_count"] = "\(ProcessInfo.processInfo.activeProcessorCount)"
        return env
    }
}
