import Foundation
import XCTest
@testable import RefineSeg
@testable import RefineSegDiagnostics

/// The convolution family: kernels against the CPU reference (both kernel variants), gradient
/// checks, run-to-run determinism, the tuner's cache and the kernel bench's report.
final class Conv2DTests: XCTestCase {
    private var smallCases: [OpCase] { OpCases.convTestLayers().map { $0.opCase() } }

    func testSmallCasesAgreeWithTheReferenceInBothVariants() throws {
        let backend = try openCLBackendOrSkip()
        for variant in ["reg", "rows", "lmem"] {
            setenv("REFINESEG_CONV_VARIANT", variant, 1)
            defer { unsetenv("REFINESEG_CONV_VARIANT") }
            for c in smallCases {
                for row in OpCheck.run(c, on: backend) {
                    XCTAssertTrue(row.passed, "\(variant) \(row.op) \(row.params) \(row.pass): \(row.message)")
                }
            }
        }
    }

    func testReferenceGradientsMatchFiniteDifferences() {
        for c in smallCases where c.gradCheck {
            let row = OpCheck.gradCheck(c)
            XCTAssertTrue(row.passed, "\(row.op) \(row.params): \(row.message)")
        }
    }

    func testTransposedConvMatchesAHandComputedExample() throws {
        // x (1, 1, 1, 2) = [1, 2]; weight (1, 1, 2, 2) = [1, 2, 3, 4]; bias 0.5 → each input pixel
        // becomes its own 2×2 block scaled by the kernel.
        let cpu = CPUBackend()
        let y = try cpu.convTranspose2x2(try cpu.tensor([1, 2], shape: [1, 1, 1, 2]),
                                         weight: try cpu.tensor([1, 2, 3, 4], shape: [1, 1, 2, 2]),
                                         bias: try cpu.tensor([0.5], shape: [1]))
        XCTAssertEqual(try y.toArray(), [1.5, 2.5, 2.5, 4.5, 3.5, 4.5, 6.5, 8.5])
    }

    func testMaxPoolBackwardRoutesTiesToTheFirstElement() throws {
        let cpu = CPUBackend()
        let x = try cpu.tensor([Float](repeating: 1, count: 9), shape: [1, 1, 3, 3])
        let dx = try cpu.maxPool2x2Backward(try cpu.tensor([7], shape: [1, 1, 1, 1]), input: x)
        XCTAssertEqual(try dx.toArray(), [7, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    func testRerunsAreBitIdenticalIncludingBackward() throws {
        let backend = try openCLBackendOrSkip()
        for c in smallCases {
            let inputs = try zip(c.inputValues(), c.inputs).map { try backend.tensor($0, shape: $1.shape) }
            func once() throws -> [[Float]] {
                let out = try c.forward(backend, inputs)
                let up = try out.map { try backend.full($0.shape, value: 0.25) }
                let grads = try c.backward?(backend, inputs, out, up) ?? []
                return try (out + grads.compactMap { $0 }).map { try $0.toArray() }
            }
            XCTAssertEqual(try once(), try once(), "\(c.op) \(c.params) differs between runs")
        }
    }

    func testShapeErrorsNameTheOpAndShapes() throws {
        let cpu = CPUBackend()
        let x = try cpu.zeros([1, 3, 5, 5]), w = try cpu.zeros([4, 2, 3, 3])
        XCTAssertThrowsError(try cpu.conv2d(x, weight: w, bias: nil, params: Conv2DParams())) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("[conv2d]") && text.contains("[1, 3, 5, 5]") && text.contains("[4, 2, 3, 3]"), text)
        }
        XCTAssertThrowsError(try cpu.conv2d(try cpu.zeros([1, 2, 2, 2]), weight: w, bias: nil, params: Conv2DParams()))
    }

    func testTunerUsesItsCacheAndCanBeTurnedOff() throws {
        let dir = try temporaryDirectory("refineseg-tuner")
        defer { try? FileManager.default.removeItem(at: dir) }
        let candidates = [ConvKernelConfig(variant: "reg", tm: 16, tn: 8), ConvKernelConfig(variant: "reg", tm: 8, tn: 16)]
        var measured = 0
        let tuner = CLTuner(environment: ["XDG_CACHE_HOME": dir.path])
        let first = try tuner.choose(key: "k", candidates: candidates) { c in measured += 1; return c.tm == 8 ? 1 : 2 }
        XCTAssertEqual(first, candidates[1])
        XCTAssertEqual(measured, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path + "/refineseg/tuning.json"))
        // A new process (a new tuner) reads the winner back and measures nothing.
        let again = try CLTuner(environment: ["XDG_CACHE_HOME": dir.path]).choose(key: "k", candidates: candidates) { _ in
            measured += 1; return 0
        }
        XCTAssertEqual(again, candidates[1])
        XCTAssertEqual(measured, 2)
        let off = try CLTuner(environment: ["XDG_CACHE_HOME": dir.path + "/other", "REFINESEG_TUNE": "0"])
            .choose(key: "k", candidates: candidates) { _ in measured += 1; return 0 }
        XCTAssertEqual(off, candidates[0])
        XCTAssertEqual(measured, 2)
    }

    func testDFRUNetLayerListMatchesTheModel() {
        let layers = OpCases.dfrUNetConvLayers()
        func find(_ name: String) -> ConvLayerSpec? { layers.first { $0.name.split(separator: ",").contains(Substring(name)) } }
        XCTAssertEqual(find("context.branches.3")?.params, Conv2DParams(padding: 8, dilation: 8))
        XCTAssertEqual(find("context.fuse")?.weight, [256, 320, 1, 1])
        XCTAssertEqual(find("dec4.conv1")?.input, [2, 256, 16, 16])
        XCTAssertEqual(find("up1")?.weight, [32, 16, 2, 2])
        XCTAssertEqual(find("enc1.sa")?.weight, [1, 2, 7, 7])
        XCTAssertEqual(find("lac")?.weight, [32, 16, 1, 1])
        XCTAssertNotNil(find("enc4.conv2"))
        XCTAssertEqual(find("enc1.conv1(rgb)")?.weight, [16, 3, 3, 3])
        XCTAssertEqual(find("pool4")?.input, [2, 128, 16, 16])
        XCTAssertEqual(find("context.pool")?.input, [2, 256, 1, 1])
    }

    /// The layer list extrapolates three small forwards; at settings it was not fitted on (a
    /// third width, a third size) it must equal the forward run there.
    func testDFRUNetLayerExtrapolationEqualsTheForward() {
        for (inChannels, w, s) in [(1, 12, 16), (3, 4, 48)] {
            func described(_ layers: [(name: String, record: ConvolutionRecord)]) -> [String] {
                layers.map { "\($0.name) \(OpCases.layerSpec($0.name, $0.record).kind) \(OpCases.layerSpec($0.name, $0.record))" }
            }
            XCTAssertEqual(described(OpCases.extrapolatedLayers(inChannels: inChannels, width: w, size: s)),
                           described(OpCases.recordedLayers(inChannels: inChannels, width: w, size: s)), "in \(inChannels) width \(w) size \(s)")
        }
    }

    func testBenchKernelsWritesAValidatedReport() throws {
        _ = try openCLBackendOrSkip()
        let dir = try temporaryDirectory("refineseg-bench")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bench.json").path
        let r = try runCLI(["bench", "kernels", "--op", "max_pool2d", "--layer", "pool4", "--repeat", "2", "--json", path])
        XCTAssertEqual(r.status, 0, r.err)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        XCTAssertNotNil(object?["device"])
        XCTAssertNotNil(object?["git_commit"])
        let results = object?["results"] as? [[String: Any]] ?? []
        XCTAssertEqual(results.count, 2)
        for row in results {
            for key in ["op", "pass", "params", "median_ms", "gflops", "gbps", "variant"] { XCTAssertNotNil(row[key], key) }
            XCTAssertEqual(row["validated"] as? Bool, true)
        }
    }
}
