import Foundation
import XCTest
@testable import RefineSeg

/// Issue 20 (few labels): nnU-Net augmentation, mirror test-time augmentation, post-processing
/// chosen on validation, and the study's paired statistics.
final class FewLabelsTests: XCTestCase {
    /// A sample whose mask is exactly `image > 0.5`: bright discs on a dark ramp.
    static func discSample(height: Int, width: Int, seed: UInt64, discs: Int = 3) -> Sample {
        var rng = SeededRandom(seed: seed)
        var image = [Float](repeating: 0, count: height * width)
        for y in 0..<height { for x in 0..<width { image[y * width + x] = 0.3 * Float(x + y) / Float(height + width) } }
        for _ in 0..<discs {
            let cy = rng.uniform(4, Float(height) - 4), cx = rng.uniform(4, Float(width) - 4), r = rng.uniform(2, 5)
            for y in 0..<height { for x in 0..<width where (Float(y) - cy) * (Float(y) - cy) + (Float(x) - cx) * (Float(x) - cx) <= r * r {
                image[y * width + x] = 0.9
            } }
        }
        return Sample(name: "disc\(seed)", path: "generated", channels: 1, height: height, width: width,
                      image: image, mask: image.map { $0 > 0.5 ? 1 : 0 })
    }

    func testNnUNetAugmentationIsSeededAndVaries() {
        let s = Self.discSample(height: 40, width: 56, seed: 1)
        let fg = foregroundIndices(s)
        var a = SeededRandom(seed: 7), b = SeededRandom(seed: 7)
        var distinct = Set<[Float]>()
        for _ in 0..<30 {
            let x = SegmentationAugmentation.nnunet.apply(s, foreground: fg, size: 32, rng: &a)
            let y = SegmentationAugmentation.nnunet.apply(s, foreground: fg, size: 32, rng: &b)
            XCTAssertEqual(x.image, y.image, "same seed, same crop")
            XCTAssertEqual(x.mask, y.mask)
            XCTAssertTrue(x.image.allSatisfy(\.isFinite))
            XCTAssertTrue(x.mask.allSatisfy { $0 == 0 || $0 == 1 })
            distinct.insert(x.image)
        }
        XCTAssertEqual(distinct.count, 30, "every draw should differ")
    }

    func testSpatialAugmentationMovesImageAndMaskTogether() {
        // Rotation by any angle, scaling, elastic deformation and mirroring resample image and
        // mask with the same coordinates: without intensity changes the image thresholded at 0.5
        // is the mask, pixel for pixel (the image here is 0/1, so bilinear values match).
        var aug = SegmentationAugmentation.none
        aug.rotationP = 1; aug.scaleP = 1; aug.elasticP = 1; aug.mirrorP = 0.5; aug.foregroundOversample = 0.5
        var rng = SeededRandom(seed: 3)
        for k in 0..<40 {
            var s = Self.discSample(height: 30 + k % 5 * 7, width: 44, seed: UInt64(k))
            s.image = s.mask!
            let (image, mask) = aug.apply(s, foreground: foregroundIndices(s), size: 32, rng: &rng)
            XCTAssertEqual(image.map { $0 >= 0.5 ? Float(1) : 0 }, mask, "draw \(k) moved image and mask differently")
        }
    }

    func testIdentityAugmentationIsACrop() {
        // With every probability 0 the output is a plain crop of the image at integer offsets.
        let s = Self.discSample(height: 48, width: 48, seed: 4)
        var rng = SeededRandom(seed: 1)
        let (image, mask) = SegmentationAugmentation.none.apply(s, foreground: [], size: 16, rng: &rng)
        var found = false
        for oy in 0...32 { for ox in 0...32 {
            var same = true
            for y in 0..<16 where same { for x in 0..<16 where abs(s.image[(oy + y) * 48 + ox + x] - image[y * 16 + x]) > 1e-5 { same = false; break } }
            if same { found = true; XCTAssertEqual(mask, (0..<256).map { s.mask![(oy + $0 / 16) * 48 + ox + $0 % 16] }) }
        } }
        XCTAssertTrue(found, "no crop of the image matches the output")
    }

    func testForegroundOversamplingCentresOnLesions() {
        // One small disc in a large image: with oversampling 1 every crop holds lesion pixels,
        // with 0 most crops hold none.
        let s = Self.discSample(height: 200, width: 200, seed: 9, discs: 1)
        let fg = foregroundIndices(s)
        var always = SegmentationAugmentation.none, never = SegmentationAugmentation.none
        always.foregroundOversample = 1; never.foregroundOversample = 0
        var rng = SeededRandom(seed: 2)
        var hitsAlways = 0, hitsNever = 0
        for _ in 0..<50 {
            if always.apply(s, foreground: fg, size: 16, rng: &rng).mask.contains(1) { hitsAlways += 1 }
            if never.apply(s, foreground: fg, size: 16, rng: &rng).mask.contains(1) { hitsNever += 1 }
        }
        XCTAssertEqual(hitsAlways, 50)
        XCTAssertLessThan(hitsNever, 25)
    }

    func testIntensityAugmentationKeepsGeometry() {
        // Intensity transforms never move pixels: with every intensity transform on and no
        // spatial one, the mask is the unaugmented crop's mask.
        var aug = SegmentationAugmentation.none
        aug.noiseP = 1; aug.blurP = 1; aug.brightnessP = 1; aug.contrastP = 1; aug.lowResP = 1; aug.gammaP = 1; aug.gammaInvertedP = 1
        let s = Self.discSample(height: 32, width: 32, seed: 5)
        var r1 = SeededRandom(seed: 8)
        let (image, mask) = aug.apply(s, foreground: [], size: 32, rng: &r1)
        XCTAssertEqual(mask, s.mask!)
        XCTAssertTrue(image.allSatisfy(\.isFinite))
        XCTAssertNotEqual(image, s.image)
    }

    func testIntensityRescalingMultipliesTheCropBySeededFactorsInItsRange() {
        // Alone, the rescaling is the plain crop times one factor per crop, log-uniform in
        // 1/3–3: both sides of 1 are drawn, never outside the range, the same for a seed.
        var aug = SegmentationAugmentation.none
        aug.intensityScaleP = 1
        let s = Self.discSample(height: 24, width: 24, seed: 6)
        var a = SeededRandom(seed: 4), b = SeededRandom(seed: 4)
        var factors = [Float]()
        for _ in 0..<40 {
            let x = aug.apply(s, foreground: [], size: 24, rng: &a), y = aug.apply(s, foreground: [], size: 24, rng: &b)
            XCTAssertEqual(x.image, y.image, "same seed, same factor")
            XCTAssertEqual(x.mask, s.mask!)
            let i = s.image.indices.max { s.image[$0] < s.image[$1] }!
            let f = x.image[i] / s.image[i]
            for (v, u) in zip(x.image, s.image) { XCTAssertEqual(v, u * f, accuracy: 1e-5) }
            factors.append(f)
        }
        XCTAssertGreaterThanOrEqual(factors.min()!, 1.0 / 3 - 1e-5)
        XCTAssertLessThanOrEqual(factors.max()!, 3 + 1e-5)
        XCTAssertLessThan(factors.min()!, 0.6, "no factor well below 1")
        XCTAssertGreaterThan(factors.max()!, 1.6, "no factor well above 1")
        // Off in the default recipe (it cost `bacteria` more than it gave `dsb`, docs/study-real); --intensity-augment P.
        XCTAssertEqual(SegmentationAugmentation.nnunet.intensityScaleP, 0)
        var c = TrainConfig(data: "d", out: "o")
        XCTAssertEqual(c.augmentation()?.intensityScaleP, 0)
        XCTAssertEqual(c.lacWeight, 0, "train's default is scratch (the study's winner), not scratch + LAC")
        c.intensityAugment = 0.5
        XCTAssertEqual(c.augmentation()?.intensityScaleP, 0.5)
        c.intensityAugment = 1.5
        XCTAssertThrowsError(try c.validate())
    }

    // MARK: which checkpoint

    func testModelCheckpointIsTheFinalEpochByDefaultOrTheBest() throws {
        // "final" without averaging (`--average-last 0`; nnU-Net's checkpoint_final):
        // model.safetensors holds the weights of the last epoch, exactly last.safetensors' model
        // tensors. "best": the epoch with the best validation Dice, which its metadata records.
        // (The default averages the final weights: testAveragedCheckpointResumesToTheSameModel.)
        XCTAssertEqual(TrainConfig(data: "d", out: "o").averageLast, 0.25)
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainConfig(data: "d", out: "o"))) as? [String: Any])
        json["averageLast"] = nil
        let old = try JSONDecoder().decode(TrainConfig.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertNil(old.averageLast, "a config.json from before the option")
        XCTAssertFalse(old.averagesWeights, "resumes without averaging")
        let backend = try openCLBackendOrSkip()
        for choice in [nil, "best"] as [String?] {
            let dir = try temporaryDirectory("checkpoint")
            defer { try? FileManager.default.removeItem(at: dir) }
            let split = try TrainingSplitForTests(train: syntheticSamples(count: 4, size: 32, seed: 8),
                                                  validation: syntheticSamples(count: 2, size: 32, seed: 9))
            var config = TrainConfig(data: "synthetic", out: dir.path)
            config.epochs = 4; config.batch = 2; config.size = 32; config.width = 4; config.stepsPerEpoch = 2
            config.checkpoint = choice
            if choice == nil { config.averageLast = 0 }
            let trainer = try Trainer(config: config, backend: backend, split: split)
            trainer.progress.quiet = true
            try trainer.run()
            let model = try SafeTensorsFile.read(dir.path + "/model.safetensors")
            let last = try SafeTensorsFile.read(dir.path + "/last.safetensors")
            let dice = trainer.logRows.map { Double($0.split(separator: ",")[3])! }
            if choice == nil {
                XCTAssertEqual(model.metadata["checkpoint"], "final")
                XCTAssertEqual(model.metadata["epoch"], "4")
                for t in model.tensors {
                    XCTAssertEqual(last.tensors.first { $0.name == t.name }?.values, t.values, t.name)
                }
                XCTAssertEqual(trainer.modelDice, dice.last!, accuracy: 1e-5)
            } else {
                XCTAssertEqual(model.metadata["checkpoint"], "best")
                let best = dice.indices.max { dice[$0] < dice[$1] || (dice[$0] == dice[$1] && $0 > $1) }!
                XCTAssertEqual(model.metadata["epoch"], "\(best + 1)")
                XCTAssertEqual(trainer.modelDice, dice.max()!, accuracy: 1e-5)
            }
            XCTAssertEqual(trainer.bestDice, dice.max()!, accuracy: 1e-5)
        }
        var bad = TrainConfig(data: "d", out: "o")
        bad.checkpoint = "latest"
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("--checkpoint"), "\($0)") }
    }

    // MARK: weight averaging

    func testWeightAverageIsTheMeanOfTheWindowsModels() throws {
        // The last ⌈share · total⌉ steps' weights, every tensor (batch-norm statistics too),
        // each counted once; steps before the window are not in it.
        let backend = try openCLBackendOrSkip()
        let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 1)
        let average = WeightAverage(model: model, backend: backend, share: 0.3, totalSteps: 10)
        XCTAssertEqual(average.steps, 3)
        XCTAssertEqual(average.startAfter, 7)
        let params = model.namedParameters()
        for step in 1...10 {
            for (_, p) in params { p.value = try backend.full(p.value.shape, value: Float(step)) }
            try average.update(afterStep: step)
            XCTAssertEqual(average.isComplete, step == 10)
        }
        XCTAssertThrowsError(try WeightAverage(model: model, backend: backend, share: 0.3, totalSteps: 10).averagedModel())
        let averaged = try average.averagedModel()
        for ((name, a), (_, p)) in zip(averaged.namedParameters(), params) {
            for v in try a.value.toArray() { XCTAssertEqual(v, 9, accuracy: 1e-5, name) }   // (8 + 9 + 10) / 3
            XCTAssertEqual(try p.value.toArray().first, 10, "the trained model is left as it is")
        }
        XCTAssertEqual(WeightAverage(model: model, backend: backend, share: 1e-9, totalSteps: 10).steps, 1)
        XCTAssertEqual(WeightAverage(model: model, backend: backend, share: 1, totalSteps: 10).startAfter, 0)
        var bad = TrainConfig(data: "d", out: "o")
        bad.averageLast = 1.5
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("--average-last"), "\($0)") }
    }

    func testAveragedCheckpointResumesToTheSameModel() throws {
        // model.safetensors holds the average (metadata "average"); last.safetensors the final
        // weights and the running sum, so a run stopped inside the window and resumed saves the
        // same average as an uninterrupted one.
        let backend = try openCLBackendOrSkip()
        func config(_ dir: URL) -> TrainConfig {
            var c = TrainConfig(data: "synthetic", out: dir.path)
            c.epochs = 4; c.batch = 2; c.size = 32; c.width = 4; c.stepsPerEpoch = 2; c.averageLast = 0.75
            return c
        }
        let split = try TrainingSplitForTests(train: syntheticSamples(count: 4, size: 32, seed: 8),
                                              validation: syntheticSamples(count: 2, size: 32, seed: 9))
        let straight = try temporaryDirectory("average"), stopped = try temporaryDirectory("average-resumed")
        defer { for d in [straight, stopped] { try? FileManager.default.removeItem(at: d) } }
        let a = try Trainer(config: config(straight), backend: backend, split: split)
        a.progress.quiet = true
        try a.run()
        let b = try Trainer(config: config(stopped), backend: backend, split: split)
        b.progress.quiet = true
        b.loop.stopAfterEpochs = 2
        try b.run()
        let resumed = try Trainer(config: config(stopped), backend: backend, split: split, resume: true)
        resumed.progress.quiet = true
        try resumed.run()
        let model = try SafeTensorsFile.read(straight.path + "/model.safetensors")
        let last = try SafeTensorsFile.read(straight.path + "/last.safetensors")
        XCTAssertEqual(model.metadata["checkpoint"], "average")
        XCTAssertEqual(model.metadata["averaged_steps"], "6")
        XCTAssertFalse(model.tensors.contains { $0.name.hasPrefix("average.") })
        let other = try SafeTensorsFile.read(stopped.path + "/model.safetensors")
        var differsFromFinal = false
        for t in model.tensors {
            let r = try XCTUnwrap(other.tensors.first { $0.name == t.name }, t.name).values
            for (x, y) in zip(t.values, r) { XCTAssertEqual(x, y, accuracy: 1e-6, t.name) }
            if last.tensors.first(where: { $0.name == t.name })?.values != t.values { differsFromFinal = true }
        }
        XCTAssertTrue(differsFromFinal, "the average is not the final weights")
        _ = try loadModel(straight.path + "/last.safetensors", backend: backend)   // the sum's tensors do not stop a load
    }

    // MARK: post-processing

    /// A mask from rows of text: "#" lesion, "." background.
    static func mask(_ rows: [String]) -> (pixels: [Bool], width: Int, height: Int) {
        (rows.joined().map { $0 == "#" }, rows[0].count, rows.count)
    }

    func testFillHolesFillsOnlyEnclosedBackground() {
        let m = Self.mask(["......",
                           ".####.",
                           ".#..#.",
                           ".####.",
                           "##....",
                           ".#...."])
        let filled = PostProcessing(fillHoles: true).apply(m.pixels, width: m.width, height: m.height)
        XCTAssertEqual(filled, Self.mask(["......", ".####.", ".####.", ".####.", "##....", ".#...."]).pixels)
    }

    func testRemoveSmallComponentsAndKeepLargest() {
        let m = Self.mask(["##....#",
                           "##.....",
                           ".......",
                           "...###.",
                           "...###.",
                           "#..###."])
        XCTAssertEqual(PostProcessing(minComponentSize: 2).apply(m.pixels, width: m.width, height: m.height),
                       Self.mask(["##.....", "##.....", ".......", "...###.", "...###.", "...###."]).pixels)
        XCTAssertEqual(PostProcessing(keepLargest: true).apply(m.pixels, width: m.width, height: m.height),
                       Self.mask([".......", ".......", ".......", "...###.", "...###.", "...###."]).pixels)
        // 8-connectivity: diagonal neighbours are one component.
        let d = Self.mask(["#..", ".#.", "..#"])
        XCTAssertEqual(PostProcessing(minComponentSize: 3).apply(d.pixels, width: 3, height: 3), d.pixels)
        XCTAssertEqual(PostProcessing.none.apply(m.pixels, width: m.width, height: m.height), m.pixels)
    }

    func testPostProcessingIsChosenOnValidationOnlyWhenItHelps() throws {
        // Validation predictions with speckle false positives: removing small components helps.
        let label = Self.mask(["........",
                               ".###....",
                               ".###....",
                               ".###....",
                               "........",
                               "....####",
                               "....####",
                               "....####"])
        let noisy = Self.mask(["......#.",
                               ".###....",
                               ".###...#",
                               ".###....",
                               "........",
                               "....####",
                               "#...####",
                               "....####"])
        let training = [(mask: label.pixels.map { $0 ? Float(1) : 0 }, width: 8, height: 8)]
        let candidates = PostProcessing.candidates(trainingMasks: training)
        XCTAssertTrue(candidates.contains { $0.minComponentSize > 1 })
        XCTAssertFalse(candidates.contains { $0.keepLargest }, "training masks hold two objects: keep-largest is not a candidate")
        let val = [(probabilities: noisy.pixels.map { $0 ? Float(0.9) : 0.1 }, label: label.pixels.map { $0 ? Float(1) : 0 }, width: 8, height: 8)]
        let (choice, dice, baseline) = try PostProcessing.choose(candidates: candidates, validation: val)
        XCTAssertGreaterThan(choice.minComponentSize, 1)
        XCTAssertEqual(dice, 1, accuracy: 1e-9)
        XCTAssertLessThan(baseline, 1)
        // Clean predictions: nothing helps, nothing is chosen.
        let clean = [(probabilities: label.pixels.map { $0 ? Float(0.9) : 0.1 }, label: val[0].label, width: 8, height: 8)]
        XCTAssertEqual(try PostProcessing.choose(candidates: candidates, validation: clean).choice, .none)
        // Metadata round trip, and a bad record is refused naming the file.
        let p = PostProcessing(fillHoles: true, minComponentSize: 7, keepLargest: false)
        XCTAssertEqual(try PostProcessing(metadata: ["postprocess": p.metadataValue], path: "x"), p)
        XCTAssertEqual(try PostProcessing(metadata: [:], path: "x"), .none)
        XCTAssertThrowsError(try PostProcessing(metadata: ["postprocess": "{oops"], path: "m.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("m.safetensors"))
        }
    }

    // MARK: test-time augmentation

    func testMirrorIsItsOwnInverse() {
        var rng = SeededRandom(seed: 1)
        let data = (0..<(2 * 5 * 7)).map { _ in rng.nextUnit() }
        for (fy, fx) in [(false, true), (true, false), (true, true)] {
            let once = mirror(data, channels: 2, height: 5, width: 7, flipY: fy, flipX: fx)
            XCTAssertNotEqual(once, data)
            XCTAssertEqual(mirror(once, channels: 2, height: 5, width: 7, flipY: fy, flipX: fx), data)
        }
        XCTAssertEqual(mirror([1, 2, 3, 4, 5, 6], channels: 1, height: 2, width: 3, flipY: false, flipX: true), [3, 2, 1, 6, 5, 4])
    }

    func testMirrorTTAIsEquivariant() throws {
        // TTA averages the four mirrors, so predicting a mirrored image with TTA gives the
        // mirrored TTA prediction of the original (up to float rounding).
        let backend = CPUBackend()
        let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 3)
        var predictor = Predictor(model: model, backend: backend)
        predictor.mirrorTTA = true
        let s = Self.discSample(height: 20, width: 28, seed: 2)
        var flipped = s
        flipped.image = mirror(s.image, channels: 1, height: 20, width: 28, flipY: false, flipX: true)
        let a = try predictor.probabilities(s)
        let b = mirror(try predictor.probabilities(flipped), channels: 1, height: 20, width: 28, flipY: false, flipX: true)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        predictor.mirrorTTA = false
        let plain = try predictor.probabilities(s)
        XCTAssertGreaterThan(zip(a, plain).map { abs($0 - $1) }.max() ?? 0, 0, "TTA should change the prediction of an untrained model")
    }

    // MARK: study statistics

    func testPairedComparisonAgainstScratch() throws {
        func result(_ v: String, _ f: Double, _ seed: Int, _ dice: Double) -> StudyResult {
            StudyResult(variant: v, fraction: f, seed: seed, metrics: MetricSummary(
                images: 1, precision: dice, recall: dice, dice: dice, iou: dice, miou: dice, thresholdedJaccard: dice,
                fdr: 1 - dice, fpr: 0, fpComponentsMean: 0, fpImageShare: 0, hd95: nil))
        }
        // Differences 0.1, 0.2, 0.3 over three seeds: mean 0.2, sd 0.1, half-width t(2)·0.1/√3.
        let results = [result("scratch", 0.1, 0, 0.5), result("scratch", 0.1, 1, 0.6), result("scratch", 0.1, 2, 0.4),
                       result("bt+lac", 0.1, 0, 0.6), result("bt+lac", 0.1, 1, 0.8), result("bt+lac", 0.1, 2, 0.7),
                       result("bt+lac", 0.2, 0, 0.9), result("scratch+lac", 0.1, 5, 0.9)]
        let p = try XCTUnwrap(Study.paired(results, variant: "bt+lac", fraction: 0.1))
        XCTAssertEqual(p.pairs, 3)
        XCTAssertEqual(p.wins, 3)
        XCTAssertEqual(p.meanDifference, 0.2, accuracy: 1e-12)
        let half = 4.303 * 0.1 / 3.0.squareRoot()
        XCTAssertEqual(try XCTUnwrap(p.interval).lowerBound, 0.2 - half, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(p.interval).upperBound, 0.2 + half, accuracy: 1e-9)
        // No scratch run at 0.2, and no scratch run of seed 5: nothing to pair.
        XCTAssertNil(Study.paired(results, variant: "bt+lac", fraction: 0.2))
        XCTAssertNil(Study.paired(results, variant: "scratch+lac", fraction: 0.1))
        // One pair: a difference but no interval.
        let one = try XCTUnwrap(Study.paired(Array(results.prefix(4)), variant: "bt+lac", fraction: 0.1))
        XCTAssertEqual(one.pairs, 1); XCTAssertNil(one.interval)
        XCTAssertEqual(Study.studentT975(degreesOfFreedom: 4), 2.776)
        XCTAssertEqual(Study.studentT975(degreesOfFreedom: 1000), 1.96)
        XCTAssertEqual(Study.meanStd([1, 2, 3]).1, 1, accuracy: 1e-12)
    }

    // MARK: end to end

    func testTrainChoosesPostProcessingThatEvaluateAndAnnotateApply() throws {
        // A small run through the CLI: train (nnU-Net augmentation by default) records the
        // post-processing in model.safetensors; evaluate and annotate run with TTA (default) and
        // without, and accept --postprocess none.
        let root = try temporaryDirectory("fewlabels-e2e")
        defer { try? FileManager.default.removeItem(at: root) }
        func path(_ p: String) -> String { root.appendingPathComponent(p).path }
        try Fixtures.dataset(at: root.appendingPathComponent("ds"), train: 6, test: 2, size: 32)
        let t = try CLIProcess.run(["train", "--data", path("ds"), "--out", path("run"), "--epochs", "2", "--size", "32", "--width", "4",
                                    "--batch", "2", "--steps-per-epoch", "2", "--label-fraction", "0.5", "--device", "cpu"])
        XCTAssertEqual(t.status, 0, t.err)
        XCTAssertTrue(t.out.contains("post-processing chosen on validation") || t.err.contains("post-processing chosen on validation"), t.out + t.err)
        let meta = try SafeTensorsFile.read(path("run/model.safetensors")).metadata
        XCTAssertNotNil(meta["postprocess"])
        XCTAssertNoThrow(try PostProcessing.of(checkpoint: path("run/model.safetensors")))
        let config = try String(contentsOfFile: path("run/config.json"), encoding: .utf8)
        XCTAssertFalse(config.contains("\"augment\""), "the default augmentation is nnU-Net's (not written)")
        for extra in [[String](), ["--no-tta", "--postprocess", "none"]] {
            let e = try CLIProcess.run(["evaluate", "--model", path("run/model.safetensors"), "--data", path("ds"), "--out", path("eval"), "--device", "cpu"] + extra)
            XCTAssertEqual(e.status, 0, e.err)
            XCTAssertTrue(FileManager.default.fileExists(atPath: path("eval/metrics.json")))
            let a = try CLIProcess.run(["annotate", "--model", path("run/model.safetensors"), "--images", path("ds/test/images"), "--out", path("ann"), "--device", "cpu"] + extra)
            XCTAssertEqual(a.status, 0, a.err)
            XCTAssertTrue(FileManager.default.fileExists(atPath: path("ann/masks/t0.png")))
        }
        let bad = try CLIProcess.run(["evaluate", "--model", path("run/model.safetensors"), "--data", path("ds"), "--out", path("eval2"), "--postprocess", "maybe", "--device", "cpu"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("--postprocess"), bad.err)
        let badAug = try CLIProcess.run(["train", "--data", path("ds"), "--out", path("run2"), "--augment", "heavy", "--device", "cpu"])
        XCTAssertNotEqual(badAug.status, 0)
        XCTAssertTrue(badAug.err.contains("--augment"), badAug.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run2")), "a refused run writes nothing")
    }
}
