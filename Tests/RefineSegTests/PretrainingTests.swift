import Foundation
import XCTest
@testable import RefineSeg

/// Barlow Twins pre-training and the label-fraction study (issue: pre-training, fine-tuning,
/// the study): augmentations keep geometry, the encoder loads by name, pre-training lowers its
/// loss, and an interrupted study picks up where it stopped.
final class PretrainingTests: XCTestCase {
    /// A 1-channel sample whose mask is exactly `image > 0.5` (bright discs on a dark ramp).
    private func discSample(size: Int, seed: UInt64) -> Sample {
        var rng = SeededRandom(seed: seed)
        var image = [Float](repeating: 0, count: size * size)
        for y in 0..<size { for x in 0..<size { image[y * size + x] = 0.3 * Float(x + y) / Float(2 * size) } }
        for _ in 0..<3 {
            let cy = rng.uniform(4, Float(size) - 4), cx = rng.uniform(4, Float(size) - 4), r = rng.uniform(2, 5)
            for y in 0..<size { for x in 0..<size where (Float(y) - cy) * (Float(y) - cy) + (Float(x) - cx) * (Float(x) - cx) <= r * r {
                image[y * size + x] = 0.9
            } }
        }
        return Sample(name: "disc\(seed)", path: "generated", channels: 1, height: size, width: size,
                      image: image, mask: image.map { $0 > 0.5 ? 1 : 0 })
    }

    func testSupervisedAugmentationMovesImageAndMaskTogether() {
        // Crops, flips and 90° rotations must move image and mask identically: the mask of the
        // augmented crop is still exactly the augmented image thresholded, pixel for pixel.
        var rng = SeededRandom(seed: 11)
        var distinct = Set<[Float]>()
        for k in 0..<40 {
            let s = discSample(size: 24 + (k % 3) * 8, seed: UInt64(k))
            let (image, mask) = augmentedCrop(s, size: 16, rng: &rng)
            XCTAssertEqual(image.count, 16 * 16)
            XCTAssertEqual(mask.count, 16 * 16)
            XCTAssertEqual(image.map { $0 > 0.5 ? Float(1) : 0 }, mask, "augmentation \(k) moved image and mask differently")
            distinct.insert(mask)
        }
        XCTAssertGreaterThan(distinct.count, 20, "augmentations should differ from draw to draw")
    }

    func testBarlowTwinsViewsDifferButKeepShapeAndStayFinite() {
        let s = discSample(size: 40, seed: 3)
        var rng = SeededRandom(seed: 5)
        let a = ViewAugmentation.view1.apply(s, size: 32, rng: &rng)
        let b = ViewAugmentation.view2.apply(s, size: 32, rng: &rng)
        XCTAssertEqual(a.count, 32 * 32)
        XCTAssertEqual(b.count, 32 * 32)
        XCTAssertTrue(a.allSatisfy(\.isFinite) && b.allSatisfy(\.isFinite))
        let diff = zip(a, b).map { abs($0 - $1) }.reduce(0, +) / Float(a.count)
        XCTAssertGreaterThan(diff, 0.01, "the two views of one image must differ")
        // Seeded: the same draw gives the same view.
        var r1 = SeededRandom(seed: 9), r2 = SeededRandom(seed: 9)
        XCTAssertEqual(ViewAugmentation.view2.apply(s, size: 32, rng: &r1), ViewAugmentation.view2.apply(s, size: 32, rng: &r2))
    }

    private func tinyPretrainer(_ backend: Backend, out: String, epochs: Int = 1, resume: Bool = false) throws -> Pretrainer {
        var config = PretrainConfig(data: "generated", out: out)
        config.epochs = epochs; config.batch = 4; config.size = 32; config.width = 4; config.projector = 32
        config.lr = 1e-3; config.warmupEpochs = 0
        try config.validate()
        let images = (0..<8).map { k -> Sample in var s = discSample(size: 40, seed: UInt64(100 + k)); s.mask = nil; return s }
        return try Pretrainer(config: config, backend: backend, images: images, resume: resume)
    }

    func testPretrainingStepsLowerTheBarlowTwinsLossOnAFixedBatch() throws {
        let backend = try openCLBackendOrSkip()
        let pre = try tinyPretrainer(backend, out: try temporaryDirectory("bt-steps").path)
        var rng = SeededRandom(seed: 1)
        let (v1, v2) = try pre.views(Array(pre.images.prefix(4)), rng: &rng)
        func lossValue() throws -> Float {
            let g = Graph(backend: backend, training: true)
            return try pre.loss(v1, v2, g).loss.value.scalar()
        }
        let before = try lossValue()
        for _ in 0..<8 { _ = try pre.trainStep(v1, v2, lr: 1e-3) }   // the step `Pretrainer.run` takes
        let after = try lossValue()
        XCTAssertTrue(before.isFinite && after.isFinite)
        XCTAssertLessThan(after, before * 0.95, "8 AdamW steps on one fixed batch should lower the Barlow Twins loss (\(before) → \(after))")
    }

    /// `pretrain --resume`: a run stopped after its first epoch's checkpoint (as a kill right
    /// after it would leave it) and resumed ends exactly where an uninterrupted run ends: the same
    /// bytes in every checkpoint and the same losses in log.csv.
    func testResumedPretrainingEndsExactlyAsAnUninterruptedRun() throws {
        let backend = CPUBackend()
        let whole = try temporaryDirectory("bt-whole").path, split = try temporaryDirectory("bt-resumed").path
        defer { try? FileManager.default.removeItem(atPath: whole); try? FileManager.default.removeItem(atPath: split) }
        let reference = try tinyPretrainer(backend, out: whole, epochs: 2)
        reference.progress.quiet = true
        try reference.run()
        XCTAssertEqual(reference.epoch, 2)

        let first = try tinyPretrainer(backend, out: split, epochs: 2)
        first.progress.quiet = true
        first.loop.stopAfterEpochs = 1
        try first.run()
        XCTAssertEqual(first.epoch, 1)
        let resumed = try tinyPretrainer(backend, out: split, epochs: 2, resume: true)
        XCTAssertEqual(resumed.epoch, 1, "resumes after the epoch in last.safetensors")
        XCTAssertEqual(resumed.step, first.step)
        resumed.progress.quiet = true
        try resumed.run()
        XCTAssertEqual(resumed.epoch, 2)
        // Epochs before the resume are read back from log.csv (6 decimals); the rest are exact.
        XCTAssertEqual(resumed.epochLosses.count, 2)
        XCTAssertEqual(resumed.epochLosses[0], reference.epochLosses[0], accuracy: 1e-6)
        XCTAssertEqual(resumed.epochLosses[1], reference.epochLosses[1])
        for file in ["encoder.safetensors", "projector.safetensors", "last.safetensors"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: split + "/" + file)),
                           try Data(contentsOf: URL(fileURLWithPath: whole + "/" + file)), "\(file) differs from the uninterrupted run")
        }
        // log.csv: the same rows but for the seconds column.
        func rows(_ dir: String) throws -> [String] {
            try String(contentsOfFile: dir + "/log.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").dropLast().joined(separator: ",") }
        }
        XCTAssertEqual(try rows(split), try rows(whole))
        XCTAssertEqual(try rows(split).count, 3)
    }

    func testEncoderLoadsIntoTheSegmentationModelByName() throws {
        let backend = try openCLBackendOrSkip()
        let dir = try temporaryDirectory("bt-encoder").path
        try tinyPretrainer(backend, out: dir).run()
        let path = dir + "/encoder.safetensors"
        let file = try SafeTensorsFile.read(path)
        // A fresh model of another seed: the encoder tensors must come from the file, the rest stay.
        let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 77)
        let before = Dictionary(uniqueKeysWithValues: try model.namedParameters().map { ($0.0, try $0.1.value.toArray()) })
        let report = try Checkpoint.load(file, path: path, into: model, backend: backend, only: DFRUNet.encoderPrefixes)
        let names = model.namedParameters().map(\.0)
        let encoderNames = names.filter { n in DFRUNet.encoderPrefixes.contains { n.hasPrefix($0) } }
        XCTAssertFalse(encoderNames.isEmpty)
        XCTAssertEqual(Set(report.loaded), Set(encoderNames), "every encoder tensor is loaded, by its spec name")
        XCTAssertEqual(Set(report.fresh), Set(names).subtracting(encoderNames), "decoder and head are reported as fresh")
        let fileValues = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.values) })
        for (name, p) in model.namedParameters() {
            let now = try p.value.toArray()
            if let stored = fileValues[name], encoderNames.contains(name) {
                XCTAssertEqual(now, stored, "\(name) should hold the pre-trained values")
            } else {
                XCTAssertEqual(now, before[name], "\(name) is not in the encoder and must keep its initialisation")
            }
        }
        // A width that does not match is refused, naming the file.
        let wide = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 8), seed: 0)
        XCTAssertThrowsError(try Checkpoint.load(file, path: path, into: wide, backend: backend, only: DFRUNet.encoderPrefixes)) { error in
            XCTAssertTrue("\(error)".contains("encoder.safetensors"), "\(error)")
        }
    }

    /// `bt` is the Barlow Twins encoder with `train`'s default loss (β = 0); `bt+lac` adds the
    /// lesion-aware term; both (and only they) need the seed's pre-training.
    func testStudyVariantsNameTheirPretrainingAndLoss() throws {
        XCTAssertEqual(StudyVariant.allCases.map(\.rawValue), ["scratch", "scratch+lac", "bt", "bt+lac", "semi"])
        XCTAssertEqual(StudyVariant.allCases.filter(\.usesPretraining), [.barlowTwins, .barlowTwinsLAC])
        XCTAssertEqual(StudyVariant.allCases.filter(\.usesLAC), [.scratchLAC, .barlowTwinsLAC])
        var settings = StudySettings(data: "d", out: "o")
        settings.variants = ["bt", "scratch"]
        XCTAssertEqual(settings.activeVariants, [.scratch, .barlowTwins], "in the study's order")
    }

    func testInterruptedStudyPicksUpWhereItStopped() throws {
        let backend = try openCLBackendOrSkip()
        let root = try temporaryDirectory("study-resume")
        try Fixtures.dataset(at: root.appendingPathComponent("ds"), train: 6, test: 2, size: 32)
        var settings = StudySettings(data: root.appendingPathComponent("ds").path, out: root.appendingPathComponent("study").path)
        settings.fractions = [0.5, 1.0]; settings.seeds = 1; settings.epochs = 1; settings.pretrainEpochs = 1
        settings.batch = 2; settings.size = 32; settings.width = 4; settings.projector = 16
        let first = try Study(settings: settings, backend: backend).run()
        let runCount = 2 * StudyVariant.allCases.count
        XCTAssertEqual(first.count, runCount, "2 fractions × every variant × 1 seed")
        let out = settings.out
        // Each variant's run is set up as named: the Barlow Twins ones start from the seed's
        // encoder, with the lesion-aware loss only where the name says so.
        for variant in StudyVariant.allCases {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(out)/runs/\(variant.rawValue)-f0.500-s0/config.json"))
            let config = try JSONDecoder().decode(RunRecord.self, from: data).config
            XCTAssertEqual(config.initEncoder, variant.usesPretraining ? "\(out)/runs/pretrain-s0/encoder.safetensors" : nil, variant.rawValue)
            XCTAssertEqual(config.lacWeight, variant.usesLAC ? 0.1 : 0, variant.rawValue)
            XCTAssertEqual(config.semiSupervised != nil, variant == .semi, variant.rawValue)
        }
        for file in ["results.csv", "summary.md", "dice_vs_labels.svg", "study.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), file)
        }
        // Interrupt: one run lost its evaluation (killed before it finished), the others are done.
        let runs = try FileManager.default.contentsOfDirectory(atPath: out + "/runs").filter { !$0.hasPrefix("pretrain") }.sorted()
        XCTAssertEqual(runs.count, runCount)
        let victim = runs[0]
        try FileManager.default.removeItem(atPath: "\(out)/runs/\(victim)/eval")
        func modified(_ run: String) throws -> Date {
            try FileManager.default.attributesOfItem(atPath: "\(out)/runs/\(run)/eval/metrics.json")[.modificationDate] as! Date
        }
        let stamps = try Dictionary(uniqueKeysWithValues: runs.dropFirst().map { ($0, try modified($0)) })
        let encoderStamp = try FileManager.default.attributesOfItem(atPath: "\(out)/runs/pretrain-s0/encoder.safetensors")[.modificationDate] as! Date
        Thread.sleep(forTimeInterval: 1.1)
        let second = try Study(settings: settings, backend: backend).run()
        XCTAssertEqual(second.count, runCount)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/runs/\(victim)/eval/metrics.json"), "the unfinished run is redone")
        for (run, stamp) in stamps { XCTAssertEqual(try modified(run), stamp, "\(run) finished before and must be reused, not retrained") }
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: "\(out)/runs/pretrain-s0/encoder.safetensors")[.modificationDate] as? Date,
                       encoderStamp, "the finished pre-training is reused")
        // The reused results are the same numbers.
        let key = { (r: StudyResult) in "\(r.variant) \(r.fraction) \(r.seed)" }
        let a = Dictionary(uniqueKeysWithValues: first.map { (key($0), $0.metrics.dice) })
        for r in second where !key(r).isEmpty { XCTAssertEqual(r.metrics.dice, a[key(r)]!, accuracy: 1e-12, key(r)) }
        // Other settings in the same folder are refused instead of mixing results.
        var other = settings
        other.epochs = 2
        XCTAssertThrowsError(try Study(settings: other, backend: backend).run()) { error in
            XCTAssertTrue("\(error)".contains("other settings"), "\(error)")
        }
    }
}
