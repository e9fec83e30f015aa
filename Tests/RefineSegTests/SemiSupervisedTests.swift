import Foundation
import XCTest
@testable import RefineSeg

/// Issue 20: the semi-supervised mean teacher (`MeanTeacher`) and the percentile
/// re-normalisation augmentation.
final class SemiSupervisedTests: XCTestCase {
    func testPseudoTargetsAreHardWhereConfidentAndTheTeacherElsewhere() {
        let (targets, confident) = MeanTeacher.pseudoTargets([0.95, 0.05, 0.6, 0.4, 0.9, 0.1, 0.89], threshold: 0.9)
        XCTAssertEqual(targets, [1, 0, 0.6, 0.4, 1, 0, 0.89])
        XCTAssertEqual(confident, 4)
        // τ = 0.5: every pixel gets a hard label (plain pseudo-labelling).
        XCTAssertEqual(MeanTeacher.pseudoTargets([0.7, 0.3, 0.5], threshold: 0.5).targets, [1, 0, 1])
    }

    func testTeacherIsAnExponentialMovingAverageOfTheStudent() throws {
        let backend = CPUBackend()
        let student = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 1)
        let semi = try MeanTeacher(student: student, backend: backend, unlabelled: [], settings: .init(), totalSteps: 100,
                                   batchSize: 2, size: 16, seed: 3, augmentation: nil)
        // A fresh teacher has its own initialisation; after the sync it is the student.
        let name = "head.weight"
        func value(_ m: DFRUNet) throws -> [Float] { try m.namedParameters().first { $0.0 == name }!.1.value.toArray() }
        XCTAssertNotEqual(try value(semi.teacher), try value(student))
        try semi.syncTeacher()
        XCTAssertEqual(try value(semi.teacher), try value(student))
        let before = try value(semi.teacher)
        // Move the student, then one update with m = 0.75.
        let p = student.namedParameters().first { $0.0 == name }!.1
        p.value = try backend.tensor(try p.value.toArray().map { $0 + 1 }, shape: p.value.shape)
        try semi.updateTeacher(momentum: 0.75)
        for (t, b) in zip(try value(semi.teacher), before) { XCTAssertEqual(t, b + 0.25, accuracy: 1e-5) }
        // Buffers (batch-norm statistics) follow too.
        let teacherBuffers = semi.teacher.namedParameters().filter { $0.1.isBuffer }
        XCTAssertFalse(teacherBuffers.isEmpty)
        // The mean-teacher warm-up and the default momentum from the run's length.
        XCTAssertEqual(semi.momentum(atStep: 0), 0)
        XCTAssertEqual(semi.momentum(atStep: 1), 0.5)
        XCTAssertEqual(semi.momentum(atStep: 1000), 0.9, accuracy: 1e-12)
        // λ ramps up from near 0 to the full weight at 30 % of the steps.
        XCTAssertLessThan(semi.weight(atStep: 0), 0.01)
        XCTAssertEqual(semi.weight(atStep: 30), 1, accuracy: 1e-12)
        XCTAssertEqual(semi.weight(atStep: 99), 1, accuracy: 1e-12)
    }

    func testStrongViewTurnsImageAndTargetTogether() throws {
        // Without intensity transforms the strong view of an image equal to its targets is
        // still equal to its targets: the flips and quarter turns move both alike.
        let backend = CPUBackend()
        let student = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 1)
        let semi = try MeanTeacher(student: student, backend: backend, unlabelled: [], settings: .init(), totalSteps: 10,
                                   batchSize: 4, size: 8, seed: 3, augmentation: SegmentationAugmentation.none)
        var rng = SeededRandom(seed: 5)
        let pattern = (0..<(4 * 64)).map { Float(($0 * 7919) % 13) / 13 }   // no symmetry
        var turnedAny = false
        for _ in 0..<5 {
            let (images, targets) = semi.strongView(Batch(count: 4, channels: 1, size: 8, images: pattern, masks: []), targets: pattern, rng: &rng)
            XCTAssertEqual(images, targets)
            XCTAssertEqual(images.sorted(), pattern.sorted())
            if images != pattern { turnedAny = true }
        }
        XCTAssertTrue(turnedAny, "no draw turned or flipped the crops")
    }

    /// A short semi-supervised run trains, learns from the unlabelled images (the teacher's
    /// pseudo-labels become confident) and is the same for the same seed.
    func testSemiSupervisedTrainingIsDeterministicAndUsesUnlabelledImages() throws {
        let backend = try openCLBackendOrSkip()
        var runs = [[Double]]()
        var shares = [Double]()
        for _ in 0..<2 {
            let dir = try temporaryDirectory("semi")
            let all = syntheticSamples(count: 6, size: 16, seed: 21)
            let split = TrainingSplit(labelled: Array(all[0..<2]), validation: syntheticSamples(count: 1, size: 16, seed: 22),
                                      unlabelled: all[2...].map { var s = $0; s.mask = nil; return s })
            var config = TrainConfig(data: "synthetic", out: dir.path)
            config.epochs = 3; config.stepsPerEpoch = 3; config.batch = 2; config.size = 16; config.width = 4
            config.lr = 1e-2; config.warmupEpochs = 0; config.lacWeight = 0
            var settings = MeanTeacher.Settings()
            settings.threshold = 0.6
            config.semiSupervised = settings
            let trainer = try Trainer(config: config, backend: backend, split: split)
            trainer.progress.quiet = true
            XCTAssertNotNil(trainer.meanTeacher)
            try trainer.run()
            XCTAssertTrue(trainer.epochLosses.allSatisfy(\.isFinite))
            runs.append(trainer.epochLosses + [try Double(trainer.model.namedParameters()[0].1.value.toArray()[0])])
            shares.append(trainer.meanTeacher!.lastConfidentShare)
        }
        XCTAssertEqual(runs[0], runs[1], "same seed, same run")
        XCTAssertEqual(shares[0], shares[1])
        XCTAssertGreaterThan(shares[0], 0, "the teacher never became confident on an unlabelled pixel")
    }

    func testSemiSupervisedSettingsAreValidated() {
        var s = MeanTeacher.Settings()
        s.threshold = 0.4
        XCTAssertThrowsError(try s.validate())
        s = .init(); s.weight = -1
        XCTAssertThrowsError(try s.validate())
        s = .init(); s.momentum = 1
        XCTAssertThrowsError(try s.validate())
        var c = TrainConfig(data: "d", out: "o")
        c.percentileAugment = 1.5
        XCTAssertThrowsError(try c.validate())
    }

    // MARK: percentile re-normalisation

    func testPercentileRenormalisationIsTheNormalisationWithOtherPercentiles() {
        // A dark disc covering < 1 % of a bright image: the image's 1st percentile lies in the
        // background. Re-normalised with a 0.01 % low tail, the disc's level is what the
        // normalisation gives an image whose low percentile lies in the disc.
        let h = 100, w = 100
        var raw = [Float](repeating: 1000, count: h * w)
        for i in raw.indices { raw[i] += Float((i * 7919) % 10007) / 100.07 }   // background 1000–1100
        for y in 48..<52 { for x in 48..<52 { raw[y * w + x] = 200 } }   // 16 px lesion, 0.16 %
        let s = Sample(name: "d", path: "g", channels: 1, height: h, width: w, image: normalizePercentiles(raw, channels: 1),
                       mask: raw.map { $0 < 500 ? 1 : 0 })
        let table = PercentileTable(s)
        XCTAssertEqual(PercentileTable.tails.first!, 0.01, accuracy: 1e-12)
        XCTAssertEqual(PercentileTable.tails.last!, 1, accuracy: 1e-12)
        XCTAssertEqual(table.low[0].last!, 0, accuracy: 1e-5, "the 1 % tail is the normalisation's own low point")
        XCTAssertLessThan(table.low[0].first!, -1, "the 0.01 % tail reaches the lesion")
        var aug = SegmentationAugmentation.none
        aug.renormaliseP = 1; aug.renormaliseExtension = 0
        var rng = SeededRandom(seed: 1)
        var lesionLevels = Set<Float>()
        for _ in 0..<20 {
            let (image, mask) = aug.apply(s, foreground: foregroundIndices(s), size: 100, percentiles: table, rng: &rng)
            let lesion = zip(image, mask).filter { $0.1 == 1 }.map(\.0)
            XCTAssertEqual(lesion.count, 16)
            XCTAssertTrue(image.allSatisfy(\.isFinite))
            lesionLevels.insert(lesion[0])
        }
        XCTAssertGreaterThan(lesionLevels.count, 3, "the re-normalisation should vary")
        XCTAssertTrue(lesionLevels.contains { $0 > -0.1 }, "no draw brought the lesion near the low end")
        // p 0 leaves the crop as it was.
        var rng2 = SeededRandom(seed: 1)
        let (plain, _) = SegmentationAugmentation.none.apply(s, foreground: [], size: 100, rng: &rng2)
        XCTAssertEqual(plain, s.image)
    }

    func testRenormalisationExtensionMovesTheEndsOutwards() {
        // With the extension the crop is still an increasing affine map of the image, x' = (x − lo) / (hi − lo),
        // but the ends may lie beyond the image's own percentiles (by up to 1 range each): the lesion-to-background
        // contrast then shrinks by up to 3×, as in an image with brighter or darker objects elsewhere.
        // The same seed draws the same ends.
        let s = FewLabelsTests.discSample(height: 40, width: 40, seed: 3)
        let table = PercentileTable(s)
        var aug = SegmentationAugmentation.none
        aug.renormaliseP = 1
        XCTAssertEqual(SegmentationAugmentation.nnunet.renormaliseExtension, 1)
        var a = SeededRandom(seed: 5), b = SeededRandom(seed: 5)
        var slopes = [Float]()
        let i0 = s.image.indices.min { s.image[$0] < s.image[$1] }!, i1 = s.image.indices.max { s.image[$0] < s.image[$1] }!
        for _ in 0..<60 {
            let x = aug.apply(s, foreground: [], size: 40, percentiles: table, rng: &a)
            XCTAssertEqual(x.image, aug.apply(s, foreground: [], size: 40, percentiles: table, rng: &b).image)
            let slope = (x.image[i1] - x.image[i0]) / (s.image[i1] - s.image[i0])
            for (v, u) in zip(x.image, s.image) { XCTAssertEqual(v, x.image[i0] + (u - s.image[i0]) * slope, accuracy: 1e-4) }
            slopes.append(slope)
        }
        // Without the extension the slope is 1 / (P_hi − P_lo) for tails of 0.01–1 %; with it, down to a third of that.
        let widest = 1 / (table.high[0].first! - table.low[0].first!)
        XCTAssertGreaterThan(slopes.max()!, widest * 0.99, "some draws are plain re-normalisations")
        XCTAssertLessThan(slopes.min()!, widest / 1.5, "no draw moved the ends far out")
        XCTAssertGreaterThan(slopes.min()!, 1 / (3 * (table.high[0].first! - table.low[0].first!)) * 0.99, "an end moved beyond 1 range")
    }
}
