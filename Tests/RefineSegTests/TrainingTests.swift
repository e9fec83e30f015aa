import Foundation
import XCTest
@testable import RefineSeg

/// Small generated samples: soft blobs on noise, masks where the blob is.
func syntheticSamples(count: Int, size: Int, channels: Int = 1, seed: UInt64) -> [Sample] {
    var rng = SeededRandom(seed: seed)
    return (0..<count).map { i in
        let cy = Float(rng.uniform(0.25, 0.75)) * Float(size), cx = Float(rng.uniform(0.25, 0.75)) * Float(size)
        let r = Float(size) * rng.uniform(0.12, 0.25)
        var mask = [Float](repeating: 0, count: size * size)
        var image = [Float](repeating: 0, count: channels * size * size)
        for y in 0..<size {
            for x in 0..<size {
                let inside = (Float(y) - cy) * (Float(y) - cy) + (Float(x) - cx) * (Float(x) - cx) < r * r
                mask[y * size + x] = inside ? 1 : 0
                for c in 0..<channels { image[(c * size + y) * size + x] = (inside ? 0.8 : 0.2) + rng.uniform(-0.1, 0.1) }
            }
        }
        return Sample(name: "s\(i)", path: "synthetic/s\(i)", channels: channels, height: size, width: size, image: image, mask: mask)
    }
}

final class TrainingTests: XCTestCase {
    /// The same seed on the CPU reference and on OpenCL gives the same losses step by step.
    func testTrainingStepsAgreeBetweenCPUReferenceAndOpenCL() throws {
        let cl = try openCLBackendOrSkip()
        let samples = syntheticSamples(count: 4, size: 32, seed: 3)
        var losses = [[Float]]()
        for backend in [CPUBackend() as Backend, cl as Backend] {
            let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 11)
            let optimizer = try AdamW(model.trainableParameters(), backend: backend)
            let lossFn = SegmentationLoss()
            var trace = [Float]()
            for step in 0..<4 {
                let batch = [samples[step % 4], samples[(step + 1) % 4]]
                let x = try backend.tensor(batch.flatMap(\.image), shape: [2, 1, 32, 32])
                let y = try backend.tensor(batch.flatMap { $0.mask ?? [] }, shape: [2, 1, 32, 32])
                let g = Graph(backend: backend, training: true)
                let out = try model(g.constant(x), g, withEmbedding: true)
                let (loss, offset) = try lossFn(out, target: y, g)
                try g.backward(loss)
                try optimizer.update(lr: 1e-3)
                trace.append(try loss.value.scalar() + offset)
            }
            losses.append(trace)
        }
        for (a, b) in zip(losses[0], losses[1]) {
            XCTAssertEqual(a, b, accuracy: 2e-3 * max(1, abs(a)), "CPU \(losses[0]) vs OpenCL \(losses[1])")
        }
        XCTAssertTrue(losses[0].allSatisfy { $0.isFinite })
    }

    /// A few epochs on an easy synthetic task lower the loss and give a useful Dice.
    func testTrainingLearnsAnEasyTask() throws {
        let backend = try openCLBackendOrSkip()
        let dir = try temporaryDirectory("train")
        var split = try TrainingSplitForTests(train: syntheticSamples(count: 8, size: 32, seed: 5),
                                              validation: syntheticSamples(count: 2, size: 32, seed: 6))
        split.unlabelled = []
        var config = TrainConfig(data: "synthetic", out: dir.path)
        config.epochs = 12; config.batch = 4; config.size = 32; config.width = 4; config.lr = 1e-2; config.warmupEpochs = 1
        let trainer = try Trainer(config: config, backend: backend, split: split)
        trainer.progress.quiet = true
        try trainer.run()
        XCTAssertLessThan(trainer.epochLosses.last ?? 9, trainer.epochLosses.first ?? 0)
        XCTAssertGreaterThan(trainer.bestDice, 0.6)
        for file in ["model.safetensors", "last.safetensors", "log.csv", "config.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path + "/" + file), file)
        }
        let log = try String(contentsOfFile: dir.path + "/log.csv", encoding: .utf8)
        XCTAssertEqual(log.split(separator: "\n").count, 13)
        // The best checkpoint loads back and predicts the same as the trained model.
        let reloaded = try loadModel(dir.path + "/model.safetensors", backend: backend)
        XCTAssertEqual(reloaded.config, ModelConfig(inChannels: 1, width: 4))
    }

    /// Same seed, same device: identical losses and identical masks.
    func testRerunsWithTheSameSeedAreIdentical() throws {
        let backend = try openCLBackendOrSkip()
        var results = [[Double]]()
        var masks = [[Float]]()
        for _ in 0..<2 {
            let dir = try temporaryDirectory("rerun")
            let split = try TrainingSplitForTests(train: syntheticSamples(count: 4, size: 32, seed: 8),
                                                  validation: syntheticSamples(count: 1, size: 32, seed: 9))
            var config = TrainConfig(data: "synthetic", out: dir.path)
            config.epochs = 2; config.batch = 2; config.size = 32; config.width = 4
            let trainer = try Trainer(config: config, backend: backend, split: split)
            trainer.progress.quiet = true
            try trainer.run()
            results.append(trainer.epochLosses)
            masks.append(try Predictor(model: trainer.model, backend: backend).probabilities(split.validation[0]))
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(masks[0], masks[1])
    }
}

/// A split made from in-memory samples.
func TrainingSplitForTests(train: [Sample], validation: [Sample]) throws -> TrainingSplit {
    TrainingSplit(labelled: train, validation: validation, unlabelled: [])
}
