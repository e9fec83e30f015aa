import ArgumentParser
import Foundation
import RefineSeg
import RefineSegDiagnostics

/// `refineseg bench roofline`: the device's two roofs from our own probe kernels.
struct BenchRooflineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roofline",
        abstract: "Measure attainable GFLOP/s (FMA chains) and GB/s (streaming triad/copy) with Kernels/roofline.cl.")

    @Option(help: "Profiled runs of each probe (the best is kept).") var repeats: Int = 5
    @Option(help: "Write the roofs as JSON to this file.") var json: String?
    @Option(help: "Write an (empty) roofline plot of the two roofs to this SVG file.") var svg: String?
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats must be ≥ 1") }
    }

    func run() throws {
        try runReportingErrors {
            let backend = try deviceOptions.openCL()
            let peaks = try Roofline.measure(backend: backend, repeats: repeats)
            print("roofline on \(backend.name), best of \(repeats):")
            for (name, value) in peaks.probes.sorted(by: { $0.key < $1.key }) {
                print(pad(name, 14) + String(format: "%9.1f %@", value, name.hasPrefix("fma") ? "GFLOP/s" : "GB/s"))
            }
            print(String(format: "roofs: %.1f GFLOP/s, %.1f GB/s; ridge at %.1f FLOP/byte", peaks.gflops, peaks.gbps, peaks.ridge))
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                do { try encoder.encode(peaks).write(to: URL(fileURLWithPath: json)) } catch {
                    throw RefineSegError.io(file: json, message: "cannot write: \(error.localizedDescription)")
                }
            }
            if let svg {
                do {
                    try Roofline.svg(points: [], peaks: peaks, title: "Roofline: \(backend.info.name)")
                        .write(toFile: svg, atomically: true, encoding: .utf8)
                } catch { throw RefineSegError.io(file: svg, message: "cannot write: \(error.localizedDescription)") }
            }
        }
    }
}
