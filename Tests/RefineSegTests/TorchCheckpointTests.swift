import Foundation
import XCTest
@testable import RefineSeg

/// A checkpoint written by RefineSeg loads into the PyTorch DFR-UNet of scripts/torch_dfrunet.py
/// (built from docs/MODEL.md) and gives the same probabilities within 1e-3.
final class TorchCheckpointTests: XCTestCase {
    func torchOrSkip() throws {
        try pythonOrSkip("torch, safetensors", install: "pip install torch safetensors", skipped: "PyTorch cross-check")
    }

    func testCheckpointLoadsIntoPyTorchAndGivesTheSameProbabilities() throws {
        try torchOrSkip()
        let backend: Backend = (try? CLBackend()) ?? CPUBackend()
        let dir = try temporaryDirectory("torch")
        let checkpoint = try trainedCheckpoint(dir, width: 4, sampleSeed: 21, modelSeed: 4, backend: backend)

        // The sample image when present (a real 128×128 nuclei tile), else a synthetic one.
        let sampleDir = packageRoot.path + "/data/sample/test/images"
        var input: Sample = syntheticSamples(count: 1, size: 48, seed: 2)[0]
        if let first = try? DatasetFolder.imageNames(in: sampleDir).first {
            let raw = try PNGFile.read(sampleDir + "/" + first)
            input = Sample(name: first, path: sampleDir, channels: 1, height: raw.height, width: raw.width,
                           image: normalizePercentiles(raw.planarFloats(), channels: 1), mask: nil)
        }
        let ours = try Predictor(model: try loadModel(checkpoint, backend: backend), backend: backend).probabilities(input)

        let inputPath = dir.path + "/x.f32", outputPath = dir.path + "/p.f32"
        try input.image.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: inputPath)) }
        let p = try runPython([packageRoot.path + "/scripts/torch_dfrunet.py", "predict", "--checkpoint", checkpoint,
                               "--input", inputPath, "--shape", "1,1,\(input.height),\(input.width)", "--output", outputPath])
        XCTAssertEqual(p.status, 0, p.err)
        let data = try Data(contentsOf: URL(fileURLWithPath: outputPath))
        let theirs = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(theirs.count, ours.count)
        let maxDiff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(maxDiff, 1e-3, "max |p_refineseg − p_torch| = \(maxDiff)")
    }

    /// scripts/torch_dfrunet.py as a module: `load(path)` and `predict(model, image)` on raw
    /// intensities (an odd-sized image, a checkpoint without the lac head) give RefineSeg's
    /// probabilities, with and without mirror TTA.
    func testModuleLoadAndPredictMatchRefineSeg() throws {
        try torchOrSkip()
        let dir = try temporaryDirectory("torch-module")
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoint = dir.path + "/model.safetensors"
        try Fixtures.checkpoint(at: checkpoint, width: 4)
        var file = try SafeTensorsFile.read(checkpoint)
        file.tensors.removeAll { $0.name.hasPrefix("lac.") }
        try file.write(to: checkpoint)
        let (h, w) = (37, 50)
        var rng = SeededRandom(seed: 11)
        let raw = (0..<(h * w)).map { i -> Float in Float(i % w > 20 && i / w > 10 ? 180 : 40) + Float(rng.next() % 30) }
        let backend = CPUBackend()
        var predictor = Predictor(model: try loadModel(checkpoint, backend: backend), backend: backend)
        let sample = Sample(name: "x", path: "", channels: 1, height: h, width: w, image: normalizePercentiles(raw, channels: 1), mask: nil)
        let rawPath = dir.path + "/raw.f32"
        try raw.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: rawPath)) }
        for tta in [false, true] {
            predictor.mirrorTTA = tta
            let ours = try predictor.probabilities(sample)
            let out = dir.path + "/p\(tta).f32"
            let code = """
            import sys, numpy as np
            sys.path.insert(0, sys.argv[1])
            import torch_dfrunet
            model = torch_dfrunet.load(sys.argv[2])
            image = np.fromfile(sys.argv[3], dtype="<f4").reshape(\(h), \(w))
            torch_dfrunet.predict(model, image, tta=\(tta ? "True" : "False")).astype("<f4").tofile(sys.argv[4])
            """
            let p = try runPython(["-c", code, packageRoot.path + "/scripts", checkpoint, rawPath, out])
            XCTAssertEqual(p.status, 0, p.err)
            let theirs = try Data(contentsOf: URL(fileURLWithPath: out)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            XCTAssertEqual(theirs.count, ours.count)
            let maxDiff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(maxDiff, 1e-3, "tta \(tta): max |p_refineseg − p_torch| = \(maxDiff)")
        }
    }
}
