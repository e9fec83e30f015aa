import Foundation
import XCTest
@testable import RefineSeg

/// Small fixture copies of the public datasets' layouts, with their real naming, bit depths and
/// NIfTI headers (int16 modalities, uint8 segmentations, gzip'd and big-endian files).
enum FormatFixtures {
    /// A disc image: (value inside, value outside) per channel, plus a little seeded noise.
    static func disc(width: Int, height: Int, channels: Int, cx: Int, cy: Int, r: Int, rng: inout SeededRandom,
                     inside: [UInt16], outside: [UInt16]) -> (RawImage, [UInt16]) {
        var samples = [UInt16](repeating: 0, count: width * height * channels), mask = [UInt16](repeating: 0, count: width * height)
        for y in 0..<height { for x in 0..<width {
            let hit = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r
            if hit { mask[y * width + x] = 255 }
            let noise = UInt16(rng.next() % 20)
            for c in 0..<channels { samples[(y * width + x) * channels + c] = (hit ? inside[c] : outside[c]) + noise }
        } }
        return (RawImage(width: width, height: height, channels: channels, bitDepth: 8, samples: samples), mask)
    }

    static func writePNG(_ image: RawImage, _ path: String) throws {
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try PNGFile.write(image, to: path)
    }

    /// RGBA 8-bit PNG with alpha 255, as KDSB18 stores its images.
    static func writeRGBA(_ rgb: RawImage, _ path: String) throws {
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        var packed = [UInt8]()
        for p in 0..<(rgb.width * rgb.height) {
            for c in 0..<3 { packed.append(UInt8(rgb.samples[p * 3 + c])) }
            packed.append(255)
        }
        try PNGFile.encode(packedRows: packed, width: rgb.width, height: rgb.height, colorType: 6, bitDepth: 8).write(to: URL(fileURLWithPath: path))
    }

    static func maskImage(_ m: [UInt16], _ w: Int, _ h: Int) -> RawImage { RawImage(width: w, height: h, channels: 1, bitDepth: 8, samples: m) }

    /// stage1_train with `count` cases; case 0 is colour (H&E-like), the rest grey stored as RGB.
    /// Each case has two nuclei, one mask file each.
    static func kdsb18(_ root: String, count: Int = 8) throws -> [String] {
        var rng = SeededRandom(seed: 1)
        var ids = [String]()
        for i in 0..<count {
            let id = String(format: "%064x", 0xA5A5 &* (i + 1))
            ids.append(id)
            let w = 40 + 4 * (i % 3), h = 36 + 4 * (i % 2)
            let colour = i == 0
            let (img, m1) = disc(width: w, height: h, channels: 3, cx: 10, cy: 10, r: 5, rng: &rng,
                                 inside: colour ? [200, 90, 160] : [180, 180, 180], outside: colour ? [230, 200, 220] : [20, 20, 20])
            let (_, m2) = disc(width: w, height: h, channels: 1, cx: 28, cy: 24, r: 6, rng: &rng, inside: [1], outside: [0])
            var pixels = img.samples
            if !colour { for p in 0..<(w * h) where m2[p] != 0 { for c in 0..<3 { pixels[p * 3 + c] = 170 } } ; for p in 0..<(w * h) { pixels[p * 3 + 1] = pixels[p * 3]; pixels[p * 3 + 2] = pixels[p * 3] } }
            try writeRGBA(RawImage(width: w, height: h, channels: 3, bitDepth: 8, samples: pixels), "\(root)/stage1_train/\(id)/images/\(id).png")
            try writePNG(maskImage(m1, w, h), "\(root)/stage1_train/\(id)/masks/\(String(format: "%064x", i * 100 + 1)).png")
            try writePNG(maskImage(m2, w, h), "\(root)/stage1_train/\(id)/masks/\(String(format: "%064x", i * 100 + 2)).png")
        }
        return ids
    }

    /// Dataset_BUSI_with_GT with benign/malignant (one lesion) and normal (empty mask) images of
    /// differing sizes; "benign (2)" has a second mask file.
    static func busi(_ root: String, perClass: Int = 4) throws {
        var rng = SeededRandom(seed: 2)
        for cls in ["benign", "malignant", "normal"] {
            for n in 1...perClass {
                let w = 48 + 8 * n, h = 40 + 4 * n
                let base = "\(root)/Dataset_BUSI_with_GT/\(cls)/\(cls) (\(n))"
                let (img, m) = disc(width: w, height: h, channels: 3, cx: w / 2, cy: h / 2, r: cls == "normal" ? 0 : 9, rng: &rng,
                                    inside: [30, 30, 30], outside: [120, 120, 120])
                try writePNG(img, base + ".png")
                try writePNG(maskImage(cls == "normal" ? [UInt16](repeating: 0, count: w * h) : m, w, h), base + "_mask.png")
                if cls == "benign" && n == 2 {
                    let (_, m1) = disc(width: w, height: h, channels: 1, cx: 8, cy: 8, r: 4, rng: &rng, inside: [1], outside: [0])
                    try writePNG(maskImage(m1, w, h), base + "_mask_1.png")
                }
            }
        }
    }

    /// ISIC 2018 task 1 folders: RGB JPEGs of differing sizes, 8-bit 0/255 PNG ground truth;
    /// training, validation and (when `test`) test with ground truth, plus the text files the downloads hold.
    static func isic(_ root: String, train: Int = 8, test: Bool = true) throws {
        var rng = SeededRandom(seed: 3)
        var number = 0
        for (stage, count) in [("Training", train), ("Validation", 2), ("Test", test ? 3 : 0)] where count > 0 {
            let input = "\(root)/ISIC2018_Task1-2_\(stage)_Input", truth = "\(root)/ISIC2018_Task1_\(stage)_GroundTruth"
            try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: truth, withIntermediateDirectories: true)
            try Data("ISIC archive".utf8).write(to: URL(fileURLWithPath: input + "/ATTRIBUTION.txt"))
            for _ in 0..<count {
                let id = String(format: "ISIC_%07d", number); number += 1
                let w = 60 + 10 * (number % 3), h = 45 + 6 * (number % 2)
                let (img, m) = disc(width: w, height: h, channels: 3, cx: w / 2, cy: h / 2, r: 12, rng: &rng,
                                    inside: [90, 50, 40], outside: [210, 170, 150])
                try JPEGFile.write(img, to: "\(input)/\(id).jpg")
                try writePNG(maskImage(m, w, h), "\(truth)/\(id)_segmentation.png")
            }
        }
    }

    /// BraTS cases under MICCAI_BraTS_2018_Data_Training/{HGG,LGG}: int16 modalities and a uint8
    /// segmentation (labels 0, 1, 2, 4) of nx×ny×nz voxels; the brain is a box inside the grid and
    /// slices 0 and nz−1 are empty. Case 0 is written gzip'd, case 1 big-endian, the rest plain .nii.gz
    /// with scl_slope 0. Returns the case ids.
    static func brats(_ root: String, cases: Int = 6, nx: Int = 24, ny: Int = 20, nz: Int = 6) throws -> [String] {
        var rng = SeededRandom(seed: 4)
        var ids = [String]()
        for k in 0..<cases {
            let grade = k % 2 == 0 ? "HGG" : "LGG"
            let id = "Brats18_TCIA01_\(String(format: "%03d", k))_1"
            ids.append(id)
            let dir = "\(root)/MICCAI_BraTS_2018_Data_Training/\(grade)/\(id)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let n = nx * ny * nz
            var seg = [Float](repeating: 0, count: n)
            var brain = [Bool](repeating: false, count: n)
            for z in 1..<(nz - 1) { for y in 3..<(ny - 3) { for x in 2..<(nx - 4) {
                let i = (z * ny + y) * nx + x
                brain[i] = true
                let d = (x - nx / 2) * (x - nx / 2) + (y - ny / 2) * (y - ny / 2)
                if d <= 9 { seg[i] = [1, 2, 4][(x + y) % 3] } else if d <= 16 { seg[i] = 2 }
            } } }
            for (m, scale) in [("flair", 3.0), ("t1", 1.0), ("t1ce", 2.0), ("t2", 5.0)] as [(String, Double)] {
                let values = (0..<n).map { i -> Float in
                    brain[i] ? Float(Int((seg[i] > 0 ? 400 : 150) * scale) + Int(rng.next() % 40)) : 0
                }
                let ext = k == 1 ? ".nii" : ".nii.gz"
                try NIfTIFile.write(NIfTIVolume(dims: [nx, ny, nz], datatype: 4, values: values, pixdim: [1, 1, 1]),
                                    to: "\(dir)/\(id)_\(m)\(ext)", bigEndian: k == 1)
            }
            try NIfTIFile.write(NIfTIVolume(dims: [nx, ny, nz], datatype: 2, values: seg, pixdim: [1, 1, 1]),
                                to: "\(dir)/\(id)_seg\(k == 1 ? ".nii" : ".nii.gz")", bigEndian: k == 1)
        }
        return ids
    }
}

final class DatasetFormatsTests: XCTestCase {
    /// OpenCL when PoCL (or any device) runs conv2d here, else the CPU reference; tiny settings either way.
    func backend() -> Backend { (try? CLBackend(device: nil)) ?? CPUBackend() }

    /// Trains one epoch through `Trainer(config:)` (which reads the format and writes RUN/split.json),
    /// then evaluates the test part the run's split names; returns (config, test samples, metrics).
    func trainAndEvaluate(_ data: String, format: DatasetFormat, modalities: [String]? = nil) throws
        -> (TrainConfig, [Sample], MetricAccumulator) {
        let backend = backend()
        var config = TrainConfig(data: data, out: try temporaryDirectory("run-\(format.rawValue)").path)
        config.format = format.rawValue; config.modalities = modalities
        config.width = 4; config.size = 32; config.epochs = 1; config.batch = 2; config.warmupEpochs = 0
        let trainer = try Trainer(config: config, backend: backend)
        trainer.progress.quiet = true
        try trainer.run()
        XCTAssertEqual(trainer.epochLosses.count, 1)
        XCTAssertTrue(trainer.epochLosses.allSatisfy(\.isFinite))
        let model = try loadModel(config.out + "/model.safetensors", backend: backend)
        let test = try loadSplits(path: data, spec: try config.datasetSpec(), parts: [.test], splitFile: config.out + "/split.json").test
        XCTAssertFalse(test.isEmpty)
        let metrics = try evaluate(model: model, backend: backend, samples: test)
        XCTAssertEqual(metrics.rows.count, test.count)
        let summary = metrics.summary()
        XCTAssertTrue(summary.dice.isFinite && summary.dice >= 0 && summary.dice <= 1)
        return (config, test, metrics)
    }

    func splitRecord(_ path: String) throws -> SplitRecord {
        try JSONDecoder().decode(SplitRecord.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    // MARK: KDSB18

    func testKDSB18MergesNucleusMasksAndReducesToGrey() throws {
        let root = try temporaryDirectory("kdsb").path
        let ids = try FormatFixtures.kdsb18(root)
        let splits = try loadSplits(path: root, spec: DatasetSpec(format: .kdsb18), splitFile: root + "/split.json")
        XCTAssertEqual(splits.train.count + splits.test.count, ids.count)
        XCTAssertNil(splits.validation)
        XCTAssertTrue((splits.train + splits.test).allSatisfy { $0.channels == 1 })
        // Both nuclei are in the merged mask: pixel (10,10) and (28,24) are lesion.
        let s = (splits.train + splits.test).first { $0.name == ids[1] }!
        XCTAssertEqual(s.mask?[10 * s.width + 10], 1)
        XCTAssertEqual(s.mask?[24 * s.width + 28], 1)
        XCTAssertEqual(s.mask?[0], 0)
        // Grey rule: mean of RGB, = R for grey-as-RGB; the colour image's mean differs from its R.
        let colour = try PNGFile.read("\(root)/stage1_train/\(ids[0])/images/\(ids[0]).png")
        XCTAssertEqual(colour.channels, 3)
        XCTAssertEqual(greyPlanar(colour)[0], Float(colour.samples[0] + colour.samples[1] + colour.samples[2]) / 3)
        let record = try splitRecord(root + "/split.json")
        XCTAssertEqual(Set(record.test), Set(splits.test.map(\.name)))
        XCTAssertEqual(record.train.count + record.test.count, ids.count)
    }

    func testKDSB18TrainsAndEvaluates() throws {
        let root = try temporaryDirectory("kdsb").path
        _ = try FormatFixtures.kdsb18(root)
        let (config, test, _) = try trainAndEvaluate(root + "/stage1_train", format: .kdsb18)
        let record = try splitRecord(config.out + "/split.json")
        XCTAssertEqual(record.test.sorted(), test.map(\.name).sorted())
    }

    // MARK: BUSI

    func testBUSIMergesMasksKeepsClassAndStratifies() throws {
        let root = try temporaryDirectory("busi").path
        try FormatFixtures.busi(root, perClass: 5)
        let splits = try loadSplits(path: root, spec: DatasetSpec(format: .busi, size: 32), splitFile: root + "/split.json")
        let all = splits.train + splits.test
        XCTAssertEqual(all.count, 15)
        XCTAssertEqual(Set(all.map { $0.tags["class"] ?? "" }), ["benign", "malignant", "normal"])
        // One test image per class (20 % of 5, stratified).
        XCTAssertEqual(splits.test.map { $0.tags["class"] ?? "" }.sorted(), ["benign", "malignant", "normal"])
        XCTAssertTrue(all.allSatisfy { $0.width == 32 && $0.height == 32 && $0.channels == 1 })
        XCTAssertTrue(splits.test.allSatisfy { $0.original != nil }, "test images keep their original-size mask")
        XCTAssertTrue(splits.train.allSatisfy { $0.original == nil })
        // benign (2) has _mask and _mask_1: the corner disc of _mask_1 is in the merged mask.
        let b2 = try BUSISource(path: root)
        let entry = try b2.entries().first { $0.id == "benign (2)" }!
        XCTAssertEqual(entry.maskFiles.count, 2)
        var e = entry; e.part = .test
        let sample = try b2.load(e, spec: DatasetSpec(format: .busi, size: 32))[0]
        XCTAssertEqual(sample.original?.mask[8 * 64 + 8], 1)
        XCTAssertEqual(sample.original?.width, 64)
    }

    func testBUSITrainsAndEvaluatesAtTheOriginalSize() throws {
        let root = try temporaryDirectory("busi").path
        try FormatFixtures.busi(root)
        let (_, test, metrics) = try trainAndEvaluate(root, format: .busi)
        for (s, row) in zip(test, metrics.rows) {
            let o = try XCTUnwrap(s.original)
            XCTAssertEqual(row.tp + row.fp + row.fn + row.tn, o.width * o.height, "\(s.name) is scored at its own size")
            XCTAssertNotEqual(o.width, 32)
        }
    }

    // MARK: ISIC 2018

    func testISICUsesOfficialValidationAndTest() throws {
        let root = try temporaryDirectory("isic").path
        try FormatFixtures.isic(root)
        let splits = try loadSplits(path: root, spec: DatasetSpec(format: .isic2018, size: 32), splitFile: root + "/split.json")
        XCTAssertEqual(splits.train.count, 8)
        XCTAssertEqual(splits.validation?.count, 2)
        XCTAssertEqual(splits.test.count, 3)
        XCTAssertTrue(splits.train.allSatisfy { $0.channels == 3 && $0.width == 32 })
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/split.json"), "no split is made when the test ground truth is there")
    }

    func testISICWithoutTestGroundTruthMakesASplitAndReusesIt() throws {
        let root = try temporaryDirectory("isic").path
        try FormatFixtures.isic(root, train: 10, test: false)
        let file = root + "/out/split.json"
        let first = try loadSplits(path: root, spec: DatasetSpec(format: .isic2018, size: 32, splitSeed: 7), parts: [.test], splitFile: file)
        XCTAssertEqual(first.test.count, 2)
        // Another seed with the file present reads the file: the same test images.
        let again = try loadSplits(path: root, spec: DatasetSpec(format: .isic2018, size: 32, splitSeed: 99), parts: [.test], splitFile: file)
        XCTAssertEqual(again.test.map(\.name), first.test.map(\.name))
        XCTAssertEqual(try splitRecord(file).seed, 7)
    }

    func testISICTrainsAndEvaluates() throws {
        let root = try temporaryDirectory("isic").path
        try FormatFixtures.isic(root)
        let (_, test, metrics) = try trainAndEvaluate(root, format: .isic2018)
        XCTAssertEqual(test.count, 3)
        for (s, row) in zip(test, metrics.rows) {
            let o = try XCTUnwrap(s.original)
            XCTAssertEqual(row.tp + row.fp + row.fn + row.tn, o.width * o.height)
        }
    }

    // MARK: BraTS 2018

    func testBraTSReadsGzipAndBigEndianVolumesAsSlicesPerCase() throws {
        let root = try temporaryDirectory("brats").path
        let ids = try FormatFixtures.brats(root)
        let splits = try loadSplits(path: root, spec: DatasetSpec(format: .brats2018), splitFile: root + "/split.json")
        let all = splits.train + splits.test
        // Slices 0 and 5 have no brain: 4 slices per case.
        XCTAssertEqual(all.count, ids.count * 4)
        XCTAssertTrue(all.allSatisfy { $0.channels == 4 && $0.width == 18 && $0.height == 14 }, "cropped to the brain box")
        // Whole split units: no case has slices on both sides.
        XCTAssertTrue(Set(splits.train.map(\.groupID)).isDisjoint(with: Set(splits.test.map(\.groupID))))
        XCTAssertEqual(try splitRecord(root + "/split.json").test.sorted(), Set(splits.test.map(\.groupID)).sorted())
        // Whole tumour: labels 1, 2 and 4 are all target.
        let s = all.first { $0.name == "\(ids[0])_z002" }!
        XCTAssertEqual(s.mask?[(10 - 3) * 18 + (12 - 2)], 1)
        XCTAssertEqual(s.mask?[0], 0)
        // Per-volume normalisation: the 99.8th percentile of a volume's brain maps near 1 in
        // some slice but not necessarily in each; the slices of one case share one scale.
        let caseSlices = all.filter { $0.groupID == ids[2] }
        let maxima = caseSlices.map { $0.image[0..<(14 * 18)].max()! }
        XCTAssertEqual(maxima.max()!, 1, accuracy: 0.1)
        // The big-endian .nii case reads like the others (same value ranges).
        let be = all.filter { $0.groupID == ids[1] }
        XCTAssertEqual(be.count, 4)
        XCTAssertEqual(be[0].mask?.reduce(0, +), s.mask?.reduce(0, +))
    }

    func testBraTSModalitySubsetPicksChannelsInOrder() throws {
        let root = try temporaryDirectory("brats").path
        let ids = try FormatFixtures.brats(root, cases: 3)
        let subset = try BraTS2018Source(path: root, modalities: ["t2", "flair"])
        let allFour = try BraTS2018Source(path: root, modalities: nil)
        let entry = try allFour.entries().first { $0.id == ids[0] }!
        let two = try subset.load(entry, spec: DatasetSpec(format: .brats2018))
        let four = try allFour.load(entry, spec: DatasetSpec(format: .brats2018))
        XCTAssertEqual(two[0].channels, 2)
        let plane = two[0].width * two[0].height
        XCTAssertEqual(Array(two[0].image[0..<plane]), Array(four[0].image[(3 * plane)..<(4 * plane)]), "channel 0 is t2")
        XCTAssertEqual(Array(two[0].image[plane..<(2 * plane)]), Array(four[0].image[0..<plane]), "channel 1 is flair")
        XCTAssertThrowsError(try BraTS2018Source(path: root, modalities: ["flair", "dwi"]))
    }

    func testBraTSTrainsAndEvaluatesByCase() throws {
        let root = try temporaryDirectory("brats").path
        _ = try FormatFixtures.brats(root, cases: 8)
        let (config, test, _) = try trainAndEvaluate(root, format: .brats2018, modalities: ["flair", "t2"])
        let record = try splitRecord(config.out + "/split.json")
        XCTAssertEqual(Set(test.map(\.groupID)), Set(record.test))
        XCTAssertTrue(test.allSatisfy { $0.channels == 2 })
        // The validation hold-out and the label fraction keep cases whole too.
        let split = try TrainingSplit(config: config)
        let groupsOf = { (s: [Sample]) in Set(s.map(\.groupID)) }
        XCTAssertTrue(groupsOf(split.labelled).isDisjoint(with: groupsOf(split.validation)))
        XCTAssertTrue(groupsOf(split.labelled).isDisjoint(with: groupsOf(split.unlabelled)))
        XCTAssertTrue(groupsOf(split.validation).isDisjoint(with: Set(record.test)))
    }

    /// Pre-training reads the same layouts and never sees the made test split.
    func testPretrainingImagesExcludeTheMadeTestSplit() throws {
        let root = try temporaryDirectory("busi").path
        try FormatFixtures.busi(root, perClass: 5)
        let out = try temporaryDirectory("pre").path
        let images = try Pretrainer.pretrainingImages(path: root, spec: DatasetSpec(format: .busi, size: 32), splitFile: out + "/split.json")
        let record = try splitRecord(out + "/split.json")
        XCTAssertEqual(Set(images.map(\.name)), Set(record.train))
        XCTAssertTrue(images.allSatisfy { $0.mask == nil && $0.original == nil })
    }

    /// The study reads a format, keeps its split in OUT/split.json and evaluates on its test part.
    func testStudyRunsOnAFormat() throws {
        let root = try temporaryDirectory("busi").path
        try FormatFixtures.busi(root, perClass: 4)
        var settings = StudySettings(data: root, out: try temporaryDirectory("study").path)
        settings.format = "busi"; settings.fractions = [1.0]; settings.seeds = 1; settings.epochs = 1
        settings.pretrainEpochs = 1; settings.batch = 2; settings.size = 32; settings.width = 4; settings.projector = 8
        let study = try Study(settings: settings, backend: backend())
        study.progress.quiet = true
        let results = try study.run()
        XCTAssertEqual(results.count, StudyVariant.allCases.count)
        let record = try splitRecord(settings.out + "/split.json")
        XCTAssertEqual(record.test.count, 3)
        XCTAssertTrue(results.allSatisfy { $0.metrics.dice.isFinite })
    }

    // MARK: Bad files: one line naming the file and the problem

    func assertOneLineError(_ body: @autoclosure () throws -> Any, mentions parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("no error", file: file, line: line)
        } catch {
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            for p in parts { XCTAssertTrue(text.contains(p), "\(text) should mention \(p)", file: file, line: line) }
        }
    }

    func testBadLayoutsGiveOneLineErrorsNamingTheFile() throws {
        // KDSB18 case without its masks folder.
        let kdsb = try temporaryDirectory("kdsb").path
        let ids = try FormatFixtures.kdsb18(kdsb, count: 3)
        try FileManager.default.removeItem(atPath: "\(kdsb)/stage1_train/\(ids[1])/masks")
        assertOneLineError(try loadSplits(path: kdsb, spec: DatasetSpec(format: .kdsb18)), mentions: [ids[1], "masks"])

        // BUSI image without a mask.
        let busi = try temporaryDirectory("busi").path
        try FormatFixtures.busi(busi, perClass: 2)
        try FileManager.default.removeItem(atPath: "\(busi)/Dataset_BUSI_with_GT/malignant/malignant (2)_mask.png")
        assertOneLineError(try loadSplits(path: busi, spec: DatasetSpec(format: .busi)), mentions: ["malignant (2).png", "without a mask"])

        // ISIC image whose ground truth is missing.
        let isic = try temporaryDirectory("isic").path
        try FormatFixtures.isic(isic, train: 3, test: false)
        try FileManager.default.removeItem(atPath: "\(isic)/ISIC2018_Task1_Training_GroundTruth/ISIC_0000001_segmentation.png")
        assertOneLineError(try loadSplits(path: isic, spec: DatasetSpec(format: .isic2018)), mentions: ["ISIC_0000001.jpg", "ground truth missing"])

        // BraTS case missing a modality; then modalities of differing shapes.
        let brats = try temporaryDirectory("brats").path
        let cases = try FormatFixtures.brats(brats, cases: 3)
        let caseDir = "\(brats)/MICCAI_BraTS_2018_Data_Training/HGG/\(cases[2])"
        try FileManager.default.removeItem(atPath: "\(caseDir)/\(cases[2])_t1ce.nii.gz")
        assertOneLineError(try loadSplits(path: brats, spec: DatasetSpec(format: .brats2018)), mentions: [cases[2], "t1ce"])
        // Without t1ce in --modalities the case is complete.
        XCTAssertNoThrow(try loadSplits(path: brats, spec: DatasetSpec(format: .brats2018, modalities: ["flair", "t1", "t2"]), parts: [.train]))
        try NIfTIFile.write(NIfTIVolume(dims: [24, 20, 5], datatype: 4, values: [Float](repeating: 1, count: 24 * 20 * 5)),
                            to: "\(caseDir)/\(cases[2])_t1ce.nii.gz")
        assertOneLineError(try loadSplits(path: brats, spec: DatasetSpec(format: .brats2018), splitFile: nil),
                           mentions: ["\(cases[2])_t1ce.nii.gz", "24×20×5", "24×20×6"])
    }
}

final class DatasetFormatsCLITests: XCTestCase {
    /// train and evaluate with --format through the CLI: evaluate finds RUN/split.json and the
    /// run's size beside the model, and bad options are refused before any work.
    func testTrainAndEvaluateWithFormatOnTheCommandLine() throws {
        let root = try temporaryDirectory("cli-brats").path
        _ = try FormatFixtures.brats(root, cases: 6)
        let run = try temporaryDirectory("cli-run").path
        let device = (try? CLBackend(device: nil)) == nil ? ["--device", "cpu"] : []
        let env = ["POCL_CACHE_DIR": NSHomeDirectory() + "/.cache/refineseg/pocl"]
        let train = try runCLI(["train", "--data", root, "--format", "brats2018", "--modalities", "flair,t2", "--out", run,
                                "--width", "4", "--size", "32", "--epochs", "1", "--batch", "2"] + device, environment: env)
        XCTAssertEqual(train.status, 0, train.err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/split.json"))
        let evalDir = try temporaryDirectory("cli-eval").path
        let eval = try runCLI(["evaluate", "--model", run + "/model.safetensors", "--data", root, "--format", "brats2018",
                               "--modalities", "flair,t2", "--out", evalDir] + device, environment: env)
        XCTAssertEqual(eval.status, 0, eval.err)
        let csv = try String(contentsOfFile: evalDir + "/per_image.csv", encoding: .utf8)
        let record = try JSONDecoder().decode(SplitRecord.self, from: Data(contentsOf: URL(fileURLWithPath: run + "/split.json")))
        let evaluatedCases = Set(csv.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0].dropLast(5)) })
        XCTAssertEqual(evaluatedCases, Set(record.test), "evaluate scores the run's test cases")
        XCTAssertFalse(FileManager.default.fileExists(atPath: evalDir + "/split.json"), "the run's split was reused, not remade")

        let bad = try runCLI(["train", "--data", root, "--format", "brats", "--out", run + "-x"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("'brats' is invalid for '--format <format>'. Please provide one of"), bad.err)
        let wrong = try runCLI(["train", "--data", root, "--format", "busi", "--modalities", "flair", "--out", run + "-y"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.err.contains("--modalities applies to --format brats2018 only"), wrong.err)
    }
}
