import Foundation
import XCTest
@testable import RefineSeg
@testable import RefineSegDiagnostics

/// The training-step bench machinery (never its timings) and its FLOP counter.
final class TrainBenchTests: XCTestCase {
    static let requiredKeys = ["step_ms_median", "step_ms_min", "step_ms_max", "step_ms_p90", "images_per_second", "gflops",
                               "peak_device_bytes", "kernels", "device", "git_commit", "settings", "forward_gflop", "step_gflop"]

    func tinySettings() -> TrainBenchSettings {
        var s = TrainBenchSettings()
        s.batch = 2; s.size = 32; s.width = 4; s.steps = 2; s.warmup = 1; s.profileSteps = 2; s.launchProbe = 20
        return s
    }

    /// Round-trips the report through JSON text, as `--json` writes it.
    func parsedJSON(_ report: TrainBenchReport) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: try report.jsonData())
        return try XCTUnwrap(object as? [String: Any])
    }

    func assertPositive(_ json: [String: Any], _ key: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let v = json[key] as? Double else { return XCTFail("\(key) is not a number: \(String(describing: json[key]))", file: file, line: line) }
        XCTAssert(v.isFinite && v > 0, "\(key) = \(v)", file: file, line: line)
    }

    func testTwoStepsOnTheCPUReferenceWriteEveryKey() throws {
        let report = try TrainBench.run(tinySettings(), backend: CPUBackend())
        let json = try parsedJSON(report)
        for key in Self.requiredKeys { XCTAssertNotNil(json[key], "missing \(key)") }
        for key in ["step_ms_median", "step_ms_min", "step_ms_max", "step_ms_p90", "images_per_second", "gflops",
                    "forward_gflop", "step_gflop", "loss_first", "loss_last", "host_enqueue_ms_median"] {
            assertPositive(json, key)
        }
        XCTAssertEqual((json["step_ms_all"] as? [Double])?.count, 2)
        // The CPU reference has no device memory and no profiling events: explicit nulls and an empty table.
        XCTAssert(json["peak_device_bytes"] is NSNull)
        XCTAssertEqual((json["kernels"] as? [Any])?.count, 0)
        XCTAssert(json["step_breakdown"] is NSNull && json["launch_overhead"] is NSNull, "no kernels, no breakdown")
        XCTAssertEqual(json["mode"] as? String, "train")
        XCTAssertEqual(report.stepFlops, 3 * report.forwardFlops)
    }

    func testEvalModeTimesTheForwardOnly() throws {
        var settings = tinySettings()
        settings.eval = true
        let report = try TrainBench.run(settings, backend: CPUBackend())
        let json = try parsedJSON(report)
        XCTAssertEqual(json["mode"] as? String, "eval")
        assertPositive(json, "step_ms_median")
        XCTAssertEqual(report.stepFlops, report.forwardFlops)
        XCTAssertNotNil(json["logit_sum_first"] as? Double)
    }

    func testOpenCLReportHasAKernelTableAndMemoryFigures() throws {
        let backend = try openCLBackendOrSkip()
        let report: TrainBenchReport
        do { report = try TrainBench.run(tinySettings(), backend: backend) } catch let error as RefineSegError
            where error.description.contains("not supported") {
            throw XCTSkip("an op of the training step has no OpenCL kernel yet: \(error)")
        }
        let json = try parsedJSON(report)
        for key in Self.requiredKeys { XCTAssertNotNil(json[key], "missing \(key)") }
        assertPositive(json, "step_ms_median")
        XCTAssertGreaterThan(try XCTUnwrap(json["peak_device_bytes"] as? Int), 0)
        let kernels = try XCTUnwrap(json["kernels"] as? [[String: Any]])
        XCTAssertFalse(kernels.isEmpty)
        for k in kernels {
            for key in ["name", "calls", "total_ms", "share", "gflops", "gbps"] { XCTAssertNotNil(k[key], "kernel row lacks \(key)") }
            XCTAssertGreaterThan(try XCTUnwrap(k["calls"] as? Double), 0)
        }
        let totals = kernels.compactMap { $0["total_ms"] as? Double }
        XCTAssertEqual(totals, totals.sorted(by: >), "kernel rows must be sorted, largest first")
        try assertBreakdownAddsUp(json, kernels: kernels)
    }

    /// The step breakdown: wall = kernels + idle, launches = the table's calls, launch overhead
    /// = launches × the probe's per-launch time; relations only, never a time.
    func assertBreakdownAddsUp(_ json: [String: Any], kernels: [[String: Any]]) throws {
        let b = try XCTUnwrap(json["step_breakdown"] as? [String: Any], "step_breakdown missing")
        let wall = try XCTUnwrap(b["wall_ms"] as? Double), kernel = try XCTUnwrap(b["kernel_ms"] as? Double)
        let idle = try XCTUnwrap(b["idle_ms"] as? Double), launches = try XCTUnwrap(b["launches"] as? Double)
        XCTAssert(wall > 0 && kernel > 0, "\(b)")
        XCTAssertEqual(wall, kernel + idle, accuracy: 1e-9 * wall)
        XCTAssertEqual(kernel, try XCTUnwrap(json["kernel_ms_per_step"] as? Double), accuracy: 1e-12 * kernel)
        XCTAssertEqual(launches, kernels.reduce(0) { $0 + ($1["calls"] as? Double ?? 0) }, accuracy: 1e-9)
        XCTAssertEqual(launches, try XCTUnwrap(json["launches_per_step"] as? Double))
        XCTAssertEqual((json["profiled_step_ms_all"] as? [Double])?.count, 2)
        let probe = try XCTUnwrap(json["launch_overhead"] as? [String: Any], "launch_overhead missing")
        XCTAssertEqual(probe["launches"] as? Int, 20)
        let perLaunch = try XCTUnwrap(probe["wall_us_per_launch"] as? Double)
        let perLaunchDevice = try XCTUnwrap(probe["device_us_per_launch"] as? Double)
        XCTAssert(perLaunch > 0 && perLaunchDevice >= 0, "\(probe)")
        let overhead = try XCTUnwrap(b["launch_overhead_ms"] as? Double)
        XCTAssertEqual(overhead, launches * perLaunch / 1e3, accuracy: 1e-9 * max(overhead, 1))
        XCTAssertEqual(try XCTUnwrap(b["launch_overhead_device_ms"] as? Double), launches * perLaunchDevice / 1e3,
                       accuracy: 1e-9 * max(overhead, 1))
        XCTAssertEqual(try XCTUnwrap(b["launch_overhead_share"] as? Double), overhead / wall, accuracy: 1e-12)
    }

    func testTheLaunchProbeCountsEveryLaunchAndCanBeSkipped() throws {
        let backend = try openCLBackendOrSkip()
        let o = try XCTUnwrap(backend.launchOverhead(launches: 7))
        XCTAssertEqual(o.launches, 7)
        XCTAssert(o.wallMicroseconds > 0 && o.deviceMicroseconds >= 0, "\(o)")
        var settings = tinySettings()
        settings.launchProbe = 0; settings.profileSteps = 0
        let report = try TrainBench.run(settings, backend: backend)
        XCTAssertNil(report.launchOverhead)
        XCTAssertNil(report.idleMsPerStep)
        let json = try parsedJSON(report)
        XCTAssert(json["launch_overhead"] is NSNull && json["step_breakdown"] is NSNull)
        settings.launchProbe = -1
        XCTAssertThrowsError(try settings.validate())
    }

    func testSyntheticBatchHasImagesWithAndWithoutLesions() {
        let b = TrainBench.syntheticBatch(count: 8, channels: 1, size: 32, seed: 3)
        let lesionPixels = (0..<8).map { i in b.masks[(i * 1024)..<((i + 1) * 1024)].reduce(0, +) }
        XCTAssertEqual(lesionPixels[7], 0)
        XCTAssert(lesionPixels[0..<7].allSatisfy { $0 > 0 }, "\(lesionPixels)")
        XCTAssertEqual(b.masks, TrainBench.syntheticBatch(count: 8, channels: 1, size: 32, seed: 3).masks, "seeded")
    }

    /// DFR-UNet at width 4 on 1×16×16 images: the FLOPs that one real forward's convolution
    /// launches state, on every backend, equal a hand count from docs/MODEL.md's architecture.
    func testForwardFLOPsFromTheLaunchesMatchAHandCount() throws {
        // RefineBlock(cin, cout) at s×s: conv1 3×3, conv2 3×3, shortcut 1×1, spatial attention 7×7
        // on 2 channels. Channel attention's fc1/fc2 run in the fused channel-MLP op, not as
        // convolutions, so they are not in the count.
        func block(_ cin: Double, _ cout: Double, _ s: Double) -> Double {
            let px = s * s
            return 2 * px * cout * cin * 9 + 2 * px * cout * cout * 9 + 2 * px * cout * cin + 2 * px * 2 * 49
        }
        let encoder = block(1, 4, 16) + block(4, 8, 8) + block(8, 16, 4) + block(16, 32, 2) + block(32, 64, 1)
        // Context at 1×1 with b = 16: four dilated 3×3 branches (all 9 taps counted), the pool 1×1, the fuse 80→64.
        let context = Double(4 * (2 * 16 * 64 * 9) + 2 * 16 * 64 + 2 * 64 * 80 as Int)
        // Transposed 2×2: 2·Cin·IH·IW·Cout·4.
        let ups = Double(2 * 64 * 1 * 32 * 4 + 2 * 32 * 4 * 16 * 4 + 2 * 16 * 16 * 8 * 4 + 2 * 8 * 64 * 4 * 4 as Int)
        let decoder = block(64, 32, 2) + block(32, 16, 4) + block(16, 8, 8) + block(8, 4, 16)
        let head = Double(2 * 256 * 1 * 4 as Int), lac = Double(2 * 256 * 32 * 4 as Int)
        for backend in backendsUnderTest() {
            let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 0)
            func counted(batch: Int, embedding: Bool, training: Bool = true) throws -> Double {
                try TrainBench.forwardConvolutionFlops(model, batch: TrainBench.syntheticBatch(count: batch, channels: 1, size: 16, seed: 1),
                                                       training: training, withEmbedding: embedding, backend: backend)
            }
            XCTAssertEqual(try counted(batch: 1, embedding: false), encoder + context + ups + decoder + head, backend.name)
            XCTAssertEqual(try counted(batch: 1, embedding: true), encoder + context + ups + decoder + head + lac, backend.name)
            XCTAssertEqual(try counted(batch: 1, embedding: false, training: false), encoder + context + ups + decoder + head,
                           "eval mode runs the same convolutions on \(backend.name)")
            // Batch scales every layer linearly.
            XCTAssertEqual(try counted(batch: 3, embedding: false), 3 * (encoder + context + ups + decoder + head), backend.name)
            // The count is taken inside an outer recording without disturbing it.
            backend.startProfiling()
            _ = try counted(batch: 1, embedding: false)
            XCTAssert(try backend.stopProfiling().isEmpty, "the inner recording took its launches on \(backend.name)")
        }
    }

    func testRooflineSVGHasTheRoofAndOneLabelledDotPerPoint() {
        let peaks = RooflinePeaks(gflops: 200, gbps: 20)
        let points = [RooflinePoint(name: "conv<a>", intensity: 30, gflops: 120), RooflinePoint(name: "ew", gflops: 1, gbps: 8),
                      RooflinePoint(name: "none", intensity: 0, gflops: 0)]
        let svg = Roofline.svg(points: points, peaks: peaks)
        XCTAssert(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 2, "the zero point is left out")
        XCTAssert(svg.contains("conv&lt;a&gt;"), "labels are escaped")
        XCTAssert(svg.contains("<polyline"))
        XCTAssertEqual(peaks.ridge, 10)
    }

    func testRooflineProbesReachPositiveRoofs() throws {
        let backend = try openCLBackendOrSkip()
        let peaks = try Roofline.measure(backend: backend, repeats: 1)
        XCTAssert(peaks.gflops.isFinite && peaks.gflops > 0, "\(peaks)")
        XCTAssert(peaks.gbps.isFinite && peaks.gbps > 0, "\(peaks)")
        XCTAssertEqual(Set(peaks.probes.keys), ["fma float4", "fma float8", "fma float16", "triad", "copy"])
    }
}
