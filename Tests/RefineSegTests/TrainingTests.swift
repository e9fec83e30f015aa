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
                let pair = [samples[step % 4], samples[(step + 1) % 4]]
                let batch = Batch(count: 2, channels: 1, size: 32, images: pair.flatMap(\.image), masks: pair.flatMap { $0.mask ?? [] })
                // The step `Trainer` runs (and `bench train` times); the loss leaves out its constant 0.5.
                let loss = try Trainer.supervisedStep(batch, model: model, loss: lossFn, optimizer: optimizer, backend: backend, lr: 1e-3)
                trace.append(try loss.scalar() + 0.5)
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

    /// nnU-Net's epochs: a fixed number of steps, batches drawn with replacement, so one
    /// labelled image fills a batch of 8 and every label fraction trains as many steps.
    func testEpochsAreAFixedNumberOfStepsWithReplacement() throws {
        var config = TrainConfig(data: "d", out: "o")
        config.batch = 8
        // A dozen images: ⌈10 / 8⌉ = 2 steps, raised to the floor of 6.
        XCTAssertEqual(config.minimumStepsPerEpoch, 6)
        XCTAssertEqual(config.resolvedStepsPerEpoch(labelled: 1, trainingImages: 10), 6)
        XCTAssertEqual(config.resolvedStepsPerEpoch(labelled: 10, trainingImages: 10), 6)
        XCTAssertEqual(config.resolvedStepsPerEpoch(labelled: 55, trainingImages: 55), 7)
        XCTAssertEqual(config.resolvedStepsPerEpoch(labelled: 2000, trainingImages: 2000), 250)
        XCTAssertEqual(config.resolvedStepsPerEpoch(labelled: 200, trainingImages: 2000), 250)
        // A config.json from before the floor (no key) keeps its run's length on --resume.
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any])
        XCTAssertEqual(json.removeValue(forKey: "minimumStepsPerEpoch") as? Int, 6)
        let old = try JSONDecoder().decode(TrainConfig.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertNil(old.minimumStepsPerEpoch)
        XCTAssertEqual(old.resolvedStepsPerEpoch(labelled: 1, trainingImages: 10), 2)
        config.repeats = 5   // earlier versions' --repeat: ⌈5 · 2 / 8⌉
        XCTAssertEqual(config.resolvedStepsPerEpoch(labelled: 2, trainingImages: 10), 2)
        config.repeats = nil; config.stepsPerEpoch = 7
        XCTAssertEqual(config.resolvedStepsPerEpoch(labelled: 2, trainingImages: 10), 7)

        let samples = syntheticSamples(count: 2, size: 16, seed: 3)
        func drawn(seed: UInt64) -> [Batch] {
            let loader = BatchLoader(drawingWithReplacement: samples, batches: 5, batchSize: 8, size: 16, seed: seed)
            var out = [Batch]()
            while let b = loader.next() { out.append(b) }
            return out
        }
        let a = drawn(seed: 1), b = drawn(seed: 1), c = drawn(seed: 2)
        XCTAssertEqual(a.map(\.count), [8, 8, 8, 8, 8])
        XCTAssertEqual(a.map(\.images), b.map(\.images), "same seed, same batches")
        XCTAssertNotEqual(a.map(\.images), c.map(\.images))
    }

    /// `train --label-fraction 0.1` with the default batch (8) on a 10-image dataset: 1 labelled
    /// image, which the sampler draws 8 times per batch (it stopped with "--batch 8 is larger").
    func testDefaultBatchTrainsOnOneLabelledImage() throws {
        let root = try temporaryDirectory("fewlabels")
        defer { try? FileManager.default.removeItem(at: root) }
        try Fixtures.dataset(at: root.appendingPathComponent("ds"), train: 10, test: 2)
        let out = root.appendingPathComponent("run").path
        let r = try runCLI(["train", "--data", root.appendingPathComponent("ds").path, "--out", out, "--label-fraction", "0.1",
                            "--device", "cpu", "--width", "4", "--size", "32", "--epochs", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("1 labelled"), r.out)
        XCTAssertTrue(r.out.contains("6 step(s) of 8 per epoch"), r.out)   // 8 training images, batch 8: 1 step, raised to the floor of 6
        let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/config.json")))
        XCTAssertEqual(record.config.stepsPerEpoch, 6)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
    }

    /// A checkpoint with only docs/MODEL.md's inference tensors (no `lac` head, as a PyTorch
    /// export or a run with the lesion-aware term off) evaluates, annotates and fine-tunes; the
    /// fine-tune says in one line that it initialised the head fresh. A missing inference
    /// tensor is still refused.
    func testCheckpointWithoutTheLACHeadPredictsAndFineTunes() throws {
        let root = try temporaryDirectory("nolac")
        defer { try? FileManager.default.removeItem(at: root) }
        let ds = root.appendingPathComponent("ds").path
        try Fixtures.dataset(at: root.appendingPathComponent("ds"), train: 4, test: 2)
        let full = root.appendingPathComponent("full.safetensors").path
        try Fixtures.checkpoint(at: full)
        var file = try SafeTensorsFile.read(full)
        XCTAssertTrue(file.tensors.contains { $0.name == "lac.weight" })
        file.tensors.removeAll { $0.name.hasPrefix("lac.") }
        let bare = root.appendingPathComponent("bare.safetensors").path
        try file.write(to: bare)
        let backend = CPUBackend()
        let model = try loadModel(bare, backend: backend)
        let withHead = try loadModel(full, backend: backend)
        let sample = syntheticSamples(count: 1, size: 32, seed: 4)[0]
        XCTAssertEqual(try Predictor(model: model, backend: backend).probabilities(sample),
                       try Predictor(model: withHead, backend: backend).probabilities(sample), "lac does not change predictions")

        let ev = try runCLI(["evaluate", "--model", bare, "--data", ds, "--out", root.appendingPathComponent("eval").path, "--device", "cpu"])
        XCTAssertEqual(ev.status, 0, ev.err)
        let an = try runCLI(["annotate", "--model", bare, "--images", ds + "/test/images", "--out", root.appendingPathComponent("ann").path, "--device", "cpu"])
        XCTAssertEqual(an.status, 0, an.err)
        let tr = try runCLI(["train", "--data", ds, "--out", root.appendingPathComponent("run").path, "--init", bare,
                             "--device", "cpu", "--width", "4", "--size", "32", "--batch", "2", "--epochs", "1"])
        XCTAssertEqual(tr.status, 0, tr.err)
        let notes = tr.out.split(separator: "\n").filter { $0.contains("no lac head") }
        XCTAssertEqual(notes.count, 1, tr.out)
        XCTAssertTrue(notes.first?.contains("initialised fresh") ?? false, tr.out)

        file.tensors.removeAll { $0.name == "head.bias" }
        try file.write(to: bare)
        XCTAssertThrowsError(try loadModel(bare, backend: backend)) { error in
            XCTAssertTrue("\(error)".contains("head.bias"), "\(error)")
        }
    }
}

/// A split made from in-memory samples.
func TrainingSplitForTests(train: [Sample], validation: [Sample]) throws -> TrainingSplit {
    TrainingSplit(labelled: train, validation: validation, unlabelled: [])
}
