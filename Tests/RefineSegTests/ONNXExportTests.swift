import Foundation
import XCTest
@testable import RefineSeg
@testable import RefineSegONNX

/// `refineseg export`: the ONNX graph runs in onnxruntime and gives RefineSeg's probabilities
/// within 1e-4 on real sample images at two sizes; bad checkpoints are refused, nothing half-written.
final class ONNXExportTests: XCTestCase {

    /// The sample's four test tiles as one 256×256 image (raw values), cropped to `height`×`width`.
    func sampleImage(height: Int, width: Int) throws -> Sample {
        let dir = packageRoot.path + "/data/sample/test/images"
        var raw = [Float](repeating: 0, count: 256 * 256)
        for name in try DatasetFolder.imageNames(in: dir) {
            // kdsb18_yYYY_xXXX: the tile's origin in the 512×512 original; the test quadrant starts at 256.
            let parts = name.split(separator: "_")
            guard parts.count == 3, let y0 = Int(parts[1].dropFirst()), let x0 = Int(parts[2].dropFirst().prefix { $0.isNumber }) else { continue }
            let tile = try PNGFile.read(dir + "/" + name)
            for y in 0..<tile.height { for x in 0..<tile.width {
                raw[(y0 - 256 + y) * 256 + x0 - 256 + x] = Float(tile.samples[y * tile.width + x])
            } }
        }
        var crop = [Float](repeating: 0, count: height * width)
        for y in 0..<height { for x in 0..<width { crop[y * width + x] = raw[y * 256 + x] } }
        return Sample(name: "crop", path: dir, channels: 1, height: height, width: width,
                      image: normalizePercentiles(crop, channels: 1), mask: nil)
    }

    func onnxRuntimeOrSkip() throws {
        if !pythonImports("onnx, onnxruntime, numpy") {
            throw XCTSkip("python3 with onnx and onnxruntime not available (pip install onnx onnxruntime): ONNX export check skipped")
        }
    }

    func testExportRunsInOnnxRuntimeAndMatchesAtTwoSizes() throws {
        try onnxRuntimeOrSkip()
        let backend: Backend = (try? CLBackend()) ?? CPUBackend()
        let dir = try temporaryDirectory("onnx")
        let checkpoint = try trainedCheckpoint(dir, width: 8, sampleSeed: 5, modelSeed: 3, backend: backend)
        let onnxPath = dir.path + "/model.onnx"
        let report = try exportONNX(checkpoint: checkpoint, to: onnxPath)
        XCTAssertGreaterThanOrEqual(report.opset, 17)
        XCTAssertEqual(report.bytes, try FileManager.default.attributesOfItem(atPath: onnxPath)[.size] as? Int)
        let sidecar = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: onnxPath + ".json"))) as? [String: Any])
        XCTAssertEqual(sidecar["threshold"] as? Double, 0.5)
        XCTAssertEqual((sidecar["padding"] as? [String: Any])?["multiple"] as? Int, 16)
        XCTAssertEqual((sidecar["normalisation"] as? [String: Any])?["low_percentile"] as? Double, 1.0)
        XCTAssertEqual((sidecar["normalisation"] as? [String: Any])?["high_percentile"] as? Double, 99.8)
        XCTAssertEqual((sidecar["input"] as? [String: Any])?["channel_order"] as? [String], ["grey"])
        XCTAssertEqual((sidecar["architecture"] as? [String: Any])?["width"] as? Int, 8)
        XCTAssertEqual((sidecar["post_processing"] as? [String: Any])?["keep_largest"] as? Bool, false)
        let predictor = Predictor(model: try loadModel(checkpoint, backend: backend), backend: backend)
        let torchAvailable = pythonImports("torch, safetensors")   // the PyTorch module as a second reference

        for (h, w) in [(128, 128), (176, 240)] {
            let sample = try sampleImage(height: h, width: w)
            let ours = try predictor.probabilities(sample)
            let input = dir.path + "/x\(h).f32", output = dir.path + "/p\(h).f32", torchOutput = dir.path + "/t\(h).f32"
            try sample.image.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: input)) }
            let p = try runPython([packageRoot.path + "/scripts/onnx_check.py", "--model", onnxPath, "--input", input,
                                   "--shape", "1,1,\(h),\(w)", "--output", output]
                                  + (torchAvailable ? ["--checkpoint", checkpoint, "--torch-output", torchOutput] : []))
            let outText = p.out
            XCTAssertEqual(p.status, 0, p.err)
            let info = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(outText.utf8)) as? [String: Any], outText)
            XCTAssertEqual(info["opset"] as? Int, 17)
            XCTAssertEqual(info["input"] as? [AnyHashable], ["N", 1, "H", "W"] as [AnyHashable])
            XCTAssertFalse((info["ops"] as? [String] ?? ["?"]).contains("BatchNormalization"), "BatchNorm should be folded")
            let theirs = try Data(contentsOf: URL(fileURLWithPath: output)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            XCTAssertEqual(theirs.count, h * w)
            let maxDiff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(maxDiff, 1e-4, "\(h)×\(w): max |p_refineseg − p_onnxruntime| = \(maxDiff)")
            print("ONNX export \(h)×\(w): max |p_refineseg − p_onnxruntime| = \(maxDiff), vs PyTorch \(info["max_abs_diff_onnx_vs_torch"] ?? "not run")")
            if torchAvailable {
                XCTAssertLessThan(try XCTUnwrap(info["max_abs_diff_onnx_vs_torch"] as? Double), 1e-4, "\(h)×\(w): ONNX graph vs PyTorch module")
            }
        }
    }

    func testUnexportableCheckpointsAreRefusedWithoutAFile() throws {
        let dir = try temporaryDirectory("onnx-bad")
        let backend = CPUBackend()
        let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 1)
        // An encoder-only checkpoint (what `pretrain` writes): the decoder is missing.
        var file = SafeTensorsFile(metadata: model.config.metadata)
        for (name, p) in model.namedParameters() where DFRUNet.encoderPrefixes.contains(where: { name.hasPrefix($0) }) {
            file.tensors.append((name, p.value.shape.dims, try p.value.toArray()))
        }
        try file.write(to: dir.path + "/encoder.safetensors")
        // Unknown width: no metadata.
        try SafeTensorsFile(tensors: file.tensors, metadata: [:]).write(to: dir.path + "/nometa.safetensors")
        // Wrong width in the metadata.
        try SafeTensorsFile(tensors: file.tensors, metadata: ["in_channels": "1", "width": "6"]).write(to: dir.path + "/width6.safetensors")
        // Renamed tensors.
        var renamed = SafeTensorsFile(metadata: model.config.metadata)
        for (name, p) in model.namedParameters() { renamed.tensors.append(("model." + name, p.value.shape.dims, try p.value.toArray())) }
        try renamed.write(to: dir.path + "/renamed.safetensors")

        for (name, expect) in [("encoder", "up4.weight is missing"), ("nometa", "metadata lacks in_channels and width"),
                               ("width6", "width 6"), ("renamed", "enc1.conv1.conv.weight is missing")] {
            let onnx = dir.path + "/\(name).onnx"
            XCTAssertThrowsError(try exportONNX(checkpoint: dir.path + "/\(name).safetensors", to: onnx), name) { error in
                XCTAssertTrue("\(error)".contains(expect), "\(name): \(error)")
                XCTAssertFalse("\(error)".contains("\n"), "\(name): the error is one line")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: onnx), "\(name): no .onnx left behind")
            XCTAssertFalse(FileManager.default.fileExists(atPath: onnx + ".json"), "\(name): no sidecar left behind")
        }
        // Through the CLI: one error line, non-zero status, no file.
        let result = try runCLI(["export", "--model", dir.path + "/encoder.safetensors", "--onnx", dir.path + "/cli.onnx"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.err.split(separator: "\n").count, 1, result.err)
        XCTAssertTrue(result.err.contains("encoder.safetensors"), result.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/cli.onnx"))
    }
}
