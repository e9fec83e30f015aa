import ArgumentParser
import Foundation
import RefineSeg
import RefineSegDiagnostics

struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time the convolution kernels on the DFR-UNet layer shapes (width 16, 128×128).",
        discussion: """
        Each (layer, pass) is checked against the CPU reference first, then warmed up (tuning and \
        PoCL's per-work-group-size compile happen here) and timed with profiling events. Build with \
        `swift build -c release` and run `.build/release/refineseg bench kernels`.
        """)

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Only this op: conv2d, conv_transpose2d or max_pool2d.")
    var op: String?

    @Option(help: "Only layers whose name contains this text (e.g. enc3.conv2).")
    var layer: String?

    @Option(help: "Only this pass: forward, backward_data or backward_weights.")
    var pass: String?

    @Option(name: .customLong("repeat"), help: "Profiled runs per (layer, pass).")
    var repeats = 20

    @Option(help: "Warm-up runs before timing.")
    var warmup = 3

    @Option(help: "Write the report as JSON to this file.")
    var json: String?

    @Flag(inversion: .prefixedNo, help: "Measure the device's roofs (Kernels/roofline.cl) and report each kernel's arithmetic intensity and share of the roof.")
    var roofline = true

    @Option(help: "Write a roofline plot (SVG, one point per timed kernel) to this file.")
    var rooflineSvg: String?

    func validate() throws {
        let kinds = ["conv2d", "conv_transpose2d", "max_pool2d"]
        if let op, !kinds.contains(op) { throw ValidationError("--op must be one of \(kinds.joined(separator: ", "))") }
        if let pass, ConvPass(rawValue: pass) == nil {
            throw ValidationError("--pass must be one of \(ConvPass.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if repeats < 1 { throw ValidationError("--repeat must be at least 1") }
        if warmup < 1 { throw ValidationError("--warmup must be at least 1 (the first run compiles and tunes)") }
    }

    func run() throws {
        try runReportingErrors {
            let backend = try deviceOptions.openCL()
            let specs = OpCases.dfrUNetConvLayers().filter { spec in
                (op == nil || spec.kind.rawValue == op) && (layer.map { spec.name.contains($0) } ?? true)
            }
            print("device: \(backend.name), driver \(backend.info.driverVersion)")
            print(pad("layer", 34) + pad("pass", 17) + pad("median ms", 10, right: true) + pad("min", 9, right: true)
                  + pad("p90", 9, right: true) + pad("GFLOP/s", 9, right: true) + pad("GB/s", 8, right: true)
                  + pad("cpu ms", 10, right: true) + "  variant")
            var results = [KernelBenchResult]()
            var failed = 0
            for spec in specs {
                for p in KernelBench.passes(of: spec.kind) where pass == nil || p.rawValue == pass {
                    let r = try KernelBench.run(spec, pass: p, on: backend, repeats: repeats, warmups: warmup)
                    results.append(r)
                    let name = spec.name.count > 33 ? String(spec.name.prefix(32)) + "…" : spec.name
                    guard r.validated else {
                        failed += 1
                        print(pad(name, 34) + pad(p.rawValue, 17) + "  NOT TIMED: differs from the CPU reference (NMSE \(r.nmse))")
                        continue
                    }
                    print(pad(name, 34) + pad(p.rawValue, 17) + pad(String(format: "%.3f", r.median_ms), 10, right: true)
                          + pad(String(format: "%.3f", r.min_ms), 9, right: true) + pad(String(format: "%.3f", r.p90_ms), 9, right: true)
                          + pad(String(format: "%.1f", r.gflops), 9, right: true) + pad(String(format: "%.1f", r.gbps), 8, right: true)
                          + pad(String(format: "%.1f", r.cpu_reference_ms), 10, right: true) + "  " + r.variant)
                }
            }
            if roofline || rooflineSvg != nil {
                let peaks = try Roofline.measure(backend: backend)
                print(String(format: "\nroofline: %.1f GFLOP/s, %.1f GB/s (ridge %.1f FLOP/byte); per kernel:", peaks.gflops, peaks.gbps, peaks.ridge))
                print(pad("layer", 34) + pad("pass", 17) + pad("FLOP/byte", 10, right: true) + pad("roof", 9, right: true) + pad("share", 8, right: true))
                var points = [RooflinePoint]()
                for r in results where r.validated && r.gbps > 0 {
                    let intensity = r.gflops / r.gbps
                    let roof = min(peaks.gflops, intensity * peaks.gbps)
                    let name = r.layer.count > 33 ? String(r.layer.prefix(32)) + "…" : r.layer
                    print(pad(name, 34) + pad(r.pass, 17) + pad(String(format: "%.1f", intensity), 10, right: true)
                          + pad(String(format: "%.1f", roof), 9, right: true) + pad(String(format: "%.0f%%", 100 * r.gflops / roof), 8, right: true))
                    points.append(RooflinePoint(name: "\(r.layer.split(separator: ",").first ?? "") \(r.pass)", gflops: r.gflops, gbps: r.gbps))
                }
                if let rooflineSvg {
                    do {
                        try Roofline.svg(points: points, peaks: peaks, title: "Roofline: \(backend.info.name)")
                            .write(toFile: rooflineSvg, atomically: true, encoding: .utf8)
                    } catch { throw RefineSegError.io(file: rooflineSvg, message: "cannot write: \(error.localizedDescription)") }
                }
            }
            if let json {
                let report = KernelBenchReport(device: backend.info, driver: backend.info.driverVersion,
                                               git_commit: gitCommit(), environment: KernelBench.environment(),
                                               command: CommandLine.arguments.joined(separator: " "), results: results)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try writeAtomically(try encoder.encode(report), to: json)
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
