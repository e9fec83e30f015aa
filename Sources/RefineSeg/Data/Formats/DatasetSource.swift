import Foundation

/// The dataset layouts RefineSeg reads directly (`--format`).
public enum DatasetFormat: String, CaseIterable, Codable, Sendable {
    /// The project's own layout (`DatasetFolder`).
    case folder
    /// 2018 Data Science Bowl nuclei: stage1_train/ID/{images,masks}.
    case kdsb18
    /// Breast ultrasound images: Dataset_BUSI_with_GT/{benign,malignant,normal}.
    case busi
    /// ISIC 2018 task 1 lesion boundary segmentation.
    case isic2018
    /// BraTS 2018 brain tumour volumes (NIfTI-1), trained on axial slices.
    case brats2018

    /// Parses a `--format` value, naming the choices on failure.
    public init(parsing name: String) throws {
        guard let f = DatasetFormat(rawValue: name.lowercased()) else {
            throw RefineSegError.invalidArgument("--format \(name) is not one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = f
    }
}

/// How to read a dataset: its format and the format's settings.
public struct DatasetSpec: Equatable, Sendable {
    public var format: DatasetFormat = .folder
    /// BraTS modalities to stack as channels, in this order (nil: flair, t1, t1ce, t2).
    public var modalities: [String]?
    /// Working size S: BUSI and ISIC images are resized to S×S when loaded (other formats keep their size).
    public var size: Int = 128
    /// Seed of the test split made for datasets without an official one; fixed (not the run's
    /// seed) so that runs with different seeds score the same test images.
    public var splitSeed: UInt64 = 0

    public init(format: DatasetFormat = .folder, modalities: [String]? = nil, size: Int = 128, splitSeed: UInt64 = 0) {
        self.format = format; self.modalities = modalities; self.size = size; self.splitSeed = splitSeed
    }
}

/// The parts of a dataset a command needs.
public enum DatasetPart: String, CaseIterable, Codable, Sendable {
    case train, val, test, unlabeled
}

/// A dataset's samples by part. `validation` is nil when the dataset has no official
/// validation part (TrainingSplit then holds one out of `train`).
public struct DatasetSplits {
    public var train: [Sample] = []
    public var validation: [Sample]?
    public var test: [Sample] = []
    public var unlabeled: [Sample] = []

    public init(train: [Sample] = [], validation: [Sample]? = nil, test: [Sample] = [], unlabeled: [Sample] = []) {
        self.train = train; self.validation = validation; self.test = test; self.unlabeled = unlabeled
    }

    /// The samples of one part (`val` is empty when there is none).
    public func samples(_ part: DatasetPart) -> [Sample] {
        switch part {
        case .train: return train
        case .val: return validation ?? []
        case .test: return test
        case .unlabeled: return unlabeled
        }
    }
}

/// One split unit of a dataset, listed without decoding pixels: an image with its mask
/// files, or a BraTS case with its volumes.
public struct DatasetEntry: Sendable {
    /// The split unit's name (image stem or case id), unique in the dataset.
    public var id: String
    /// The part the dataset itself puts it in, or nil where the test split is made here.
    public var part: DatasetPart?
    /// Metadata kept on every sample (e.g. "class"); also the strata of the made split.
    public var tags: [String: String] = [:]
    /// The files the format reads for this entry (format-specific meaning).
    public var files: [String: String] = [:]
    /// The mask files merged into one binary mask (KDSB18 nuclei, BUSI's _mask_N).
    public var maskFiles: [String] = []
}

/// A dataset layout: lists its entries (checking the layout), then decodes entries on demand.
protocol DatasetSource {
    /// Every entry, sorted by id. Throws a one-line error naming the file and the problem for
    /// a broken layout (an image without its mask, a case without a modality, …).
    func entries() throws -> [DatasetEntry]
    /// The samples of one entry (one image, or the kept slices of one case).
    func load(_ entry: DatasetEntry, spec: DatasetSpec) throws -> [Sample]
}

/// Which entries form the test split of a dataset without an official one: written to
/// OUT/split.json by the first run and reused by every later run that is given the file.
public struct SplitRecord: Codable, Equatable {
    public var format: String
    public var seed: UInt64
    public var testFraction: Double
    /// Entry ids (images or cases) of each part.
    public var train: [String]
    public var test: [String]

    enum CodingKeys: String, CodingKey {
        case format, seed, train, test
        case testFraction = "test_fraction"
    }
}

/// Fraction of entries made into the test split where a dataset has none (stratified by class).
public let madeTestFraction = 0.2

/// Loads the dataset at `path` in the layout `spec.format`, decoding only `parts`.
///
/// Datasets without an official test part get one here: a seeded `madeTestFraction` of the
/// entries (cases for BraTS, images otherwise; stratified by the "class" tag where there is one),
/// read from `splitFile` when that file exists and written to it otherwise.
public func loadSplits(path: String, spec: DatasetSpec, parts: Set<DatasetPart> = Set(DatasetPart.allCases),
                       splitFile: String? = nil) throws -> DatasetSplits {
    let source: DatasetSource
    switch spec.format {
    case .folder: return try FolderSource(root: path).loadSplits(parts: parts)
    case .kdsb18: source = try KDSB18Source(path: path)
    case .busi: source = try BUSISource(path: path)
    case .isic2018: source = try ISIC2018Source(path: path)
    case .brats2018: source = try BraTS2018Source(path: path, modalities: spec.modalities)
    }
    var entries = try source.entries()
    if entries.contains(where: { $0.part == nil }) {
        let assignment = try madeSplit(entries.filter { $0.part == nil }, spec: spec, splitFile: splitFile, root: path)
        for i in entries.indices where entries[i].part == nil { entries[i].part = assignment[entries[i].id] }
    }
    var splits = DatasetSplits()
    var channels: Int?
    for entry in entries {
        guard let part = entry.part, parts.contains(part) else { continue }
        let samples = try source.load(entry, spec: spec)
        for s in samples {
            if let c = channels, c != s.channels {
                throw RefineSegError.io(file: s.path, message: "has \(s.channels) channel(s) but earlier images have \(c)")
            }
            channels = s.channels
        }
        switch part {
        case .train: splits.train += samples
        case .val: splits.validation = (splits.validation ?? []) + samples
        case .test: splits.test += samples
        case .unlabeled: splits.unlabeled += samples
        }
    }
    return splits
}

/// The made split: from `splitFile` when it exists (checked against the dataset), else seeded
/// and stratified by the "class" tag, then written to `splitFile`.
func madeSplit(_ entries: [DatasetEntry], spec: DatasetSpec, splitFile: String?, root: String) throws -> [String: DatasetPart] {
    let ids = Set(entries.map(\.id))
    if let splitFile, FileManager.default.fileExists(atPath: splitFile) {
        guard let data = FileManager.default.contents(atPath: splitFile),
              let record = try? JSONDecoder().decode(SplitRecord.self, from: data) else {
            throw RefineSegError.io(file: splitFile, message: "not a RefineSeg split file (expected format, seed, test_fraction, train, test)")
        }
        guard record.format == spec.format.rawValue else {
            throw RefineSegError.io(file: splitFile, message: "is a split of a \(record.format) dataset, not \(spec.format.rawValue)")
        }
        let listed = Set(record.train + record.test)
        if let missing = ids.subtracting(listed).sorted().first {
            throw RefineSegError.io(file: splitFile, message: "does not list \(missing) of \(root): the dataset changed since the split was made (remove the file to make a new split)")
        }
        if let gone = listed.subtracting(ids).sorted().first {
            throw RefineSegError.io(file: splitFile, message: "lists \(gone), which is not in \(root) (remove the file to make a new split)")
        }
        var out = [String: DatasetPart]()
        for id in record.train { out[id] = .train }
        for id in record.test { out[id] = .test }
        return out
    }
    guard entries.count >= 2 else {
        throw RefineSegError.io(file: root, message: "needs at least 2 labelled images (or cases) to make a test split")
    }
    var strata = [String: [String]]()
    for e in entries { strata[e.tags["class"] ?? "", default: []].append(e.id) }
    var rng = SeededRandom(seed: spec.splitSeed ^ 0x5E17)
    var test = [String]()
    for key in strata.keys.sorted() {
        var ids = strata[key, default: []].sorted()
        ids.shuffle(using: &rng)
        let n = Int((Double(ids.count) * madeTestFraction).rounded())
        test += ids.prefix(n)
    }
    if test.isEmpty, let first = entries.map(\.id).sorted().first { test = [first] }
    let testSet = Set(test)
    let record = SplitRecord(format: spec.format.rawValue, seed: spec.splitSeed, testFraction: madeTestFraction,
                             train: ids.subtracting(testSet).sorted(), test: test.sorted())
    if let splitFile {
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: splitFile).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(record), to: splitFile)
    }
    var out = [String: DatasetPart]()
    for id in ids { out[id] = testSet.contains(id) ? .test : .train }
    return out
}

// MARK: - Helpers shared by the formats

/// The directory at `path`, or a one-line error naming it.
func requireDirectory(_ path: String, _ what: String) throws {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
        throw RefineSegError.io(file: path, message: "\(what) not found")
    }
}

func isDirectory(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
}

/// Visible names in a directory, sorted.
func listDirectory(_ path: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
}

/// One grey channel from an RGB image: (R + G + B) / 3, which is exactly R for grey stored as
/// RGB (R = G = B). Grey images pass through. Planar (1, H, W) raw values.
func greyPlanar(_ raw: RawImage) -> [Float] {
    if raw.channels == 1 { return raw.planarFloats() }
    let plane = raw.width * raw.height
    var out = [Float](repeating: 0, count: plane) // [H*W]
    for p in 0..<plane {
        var sum: Float = 0
        for c in 0..<3 { sum += Float(raw.samples[p * raw.channels + c]) }
        out[p] = sum / 3
    }
    return out
}

/// The union of several mask files of one image (lesion where any is non-zero), checking sizes.
func mergedMask(_ files: [String], width: Int, height: Int, imagePath: String) throws -> [Float] {
    var mask = [Float](repeating: 0, count: width * height) // [H*W]
    for file in files {
        let m = try readImageFile(file)
        guard m.width == width, m.height == height else {
            throw RefineSegError.io(file: file, message: "mask is \(m.width)×\(m.height) but its image \(imagePath) is \(width)×\(height)")
        }
        for (i, v) in m.maskValues().enumerated() where v != 0 { mask[i] = 1 }
    }
    return mask
}

/// Bilinear resize of (C, H, W) planes to (C, newH, newW), pixel centres aligned
/// (align_corners = false, edges clamped), like PIL/torch bilinear without antialiasing.
public func resizeBilinear(_ data: [Float], channels: Int, height: Int, width: Int, toHeight newH: Int, toWidth newW: Int) -> [Float] {
    if height == newH && width == newW { return data }
    var out = [Float](repeating: 0, count: channels * newH * newW) // [C, newH, newW]
    let sy = Float(height) / Float(newH), sx = Float(width) / Float(newW)
    for c in 0..<channels {
        for y in 0..<newH {
            let fy = (Float(y) + 0.5) * sy - 0.5
            for x in 0..<newW {
                out[(c * newH + y) * newW + x] = bilinear(data, c: c, h: height, w: width, y: fy, x: (Float(x) + 0.5) * sx - 0.5)
            }
        }
    }
    return out
}

/// Nearest-neighbour resize of one (H, W) plane (for masks, which must stay binary).
public func resizeNearest(_ data: [Float], height: Int, width: Int, toHeight newH: Int, toWidth newW: Int) -> [Float] {
    if height == newH && width == newW { return data }
    var out = [Float](repeating: 0, count: newH * newW) // [newH, newW]
    for y in 0..<newH {
        let syy = min(height - 1, Int((Float(y) + 0.5) * Float(height) / Float(newH)))
        for x in 0..<newW {
            out[y * newW + x] = data[syy * width + min(width - 1, Int((Float(x) + 0.5) * Float(width) / Float(newW)))]
        }
    }
    return out
}

/// A 2-D image sample resized to S×S for the resize formats (BUSI, ISIC): the image is resized
/// bilinearly and then normalised at S×S (percentiles of the pixels the network sees, and
/// cheap for ISIC's largest photographs); the mask is resized nearest. `keepOriginal` keeps
/// the mask at the file's own size, which evaluation scores against.
func resizedSample(name: String, path: String, planar: [Float], channels: Int, height: Int, width: Int,
                   mask: [Float], size: Int, keepOriginal: Bool, tags: [String: String]) -> Sample {
    let image = normalizePercentiles(resizeBilinear(planar, channels: channels, height: height, width: width,
                                                    toHeight: size, toWidth: size), channels: channels)
    let small = resizeNearest(mask, height: height, width: width, toHeight: size, toWidth: size)
    var s = Sample(name: name, path: path, channels: channels, height: size, width: size, image: image, mask: small)
    s.tags = tags
    if keepOriginal { s.original = OriginalMask(height: height, width: width, mask: mask.map { $0 != 0 ? 1 : 0 }) }
    return s
}
