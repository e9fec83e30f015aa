import Foundation

/// One image with its (optional) mask, normalised and ready for the network.
public struct Sample: Sendable {
    public var name: String
    /// Source file of the image (for messages).
    public var path: String
    public var channels: Int
    public var height: Int
    public var width: Int
    /// (C, H, W), normalised per docs/MODEL.md.
    public var image: [Float]
    /// (H, W) binary 0/1, or nil for unlabelled images.
    public var mask: [Float]?
    /// The unit that splits keep together: the case of a volume's slices, else the image itself
    /// (nil means `name`). Hold-outs and label fractions never separate one group.
    public var group: String? = nil
    /// Metadata of the source format (e.g. BUSI's "class": benign, malignant or normal).
    public var tags: [String: String] = [:]
    /// For images resized to the working size when loaded: the mask at the file's own size,
    /// which evaluation scores against (see `Predictor.originalSizeProbabilities`).
    public var original: OriginalMask? = nil
    /// For a slice of a volume: where it sits, so `evaluate` can score each case in 3-D.
    public var volume: VolumeSlice? = nil

    /// The split unit (the case for volume slices, the image otherwise).
    public var groupID: String { group ?? name }

    package init(name: String, path: String, channels: Int, height: Int, width: Int, image: [Float], mask: [Float]? = nil,
                 group: String? = nil, tags: [String: String] = [:], original: OriginalMask? = nil, volume: VolumeSlice? = nil) {
        self.name = name; self.path = path; self.channels = channels; self.height = height; self.width = width
        self.image = image; self.mask = mask; self.group = group; self.tags = tags; self.original = original; self.volume = volume
    }
}

/// A mask at its file's own size, kept for images the loader resized.
public struct OriginalMask: Sendable {
    public var height: Int
    public var width: Int
    /// (H, W) row-major, 1 for lesion, 0 elsewhere (bytes, since these masks can be large).
    public var mask: [UInt8]
}

/// Image files RefineSeg reads, by extension.
let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

/// True for NIfTI volume file names (.nii, .nii.gz).
func isNIfTIName(_ name: String) -> Bool {
    let n = name.lowercased()
    return n.hasSuffix(".nii") || n.hasSuffix(".nii.gz")
}

/// The slices of a volume (one or more channels) as samples named NAME_zNNN (NNN the slice
/// index along `axis`), all of group NAME, each with its `VolumeSlice`. Normalised with volume
/// statistics (`normalizeVolume`); slices without foreground are left out unless the volume has
/// none. `mask` (one channel, same dims) gives each slice its mask.
func volumeSamples(name: String, path: String, volume: NIfTIVolume, mask: NIfTIVolume?, axis: SliceAxis = .axial) -> [Sample] {
    var channels = (0..<volume.channels).map { Array(volume.channel($0)) }
    let foreground = normalizeVolume(&channels)
    let g = axis.geometry(volume.dims), spacing = axis.spacing(volume.pixdim)
    let anyForeground = foreground.contains(true)
    var out = [Sample]()
    for k in 0..<g.slices {
        if anyForeground {
            var has = false
            for r in 0..<g.height where !has { for c in 0..<g.width where foreground[axis.voxel(volume.dims, slice: k, row: r, column: c)] { has = true; break } }
            if !has { continue }
        }
        let image = channels.flatMap { volumePlane($0[...], dims: volume.dims, axis: axis, slice: k) }
        let m = mask.map { volumePlane($0.values[...], dims: volume.dims, axis: axis, slice: k).map { $0 != 0 ? Float(1) : 0 } }
        var s = Sample(name: "\(name)_z\(String(format: "%03d", k))", path: path, channels: channels.count,
                       height: g.height, width: g.width, image: image, mask: m)
        s.group = name
        s.volume = VolumeSlice(volume: name, slice: k, spacing: spacing)
        out.append(s)
    }
    return out
}

/// Reads a PNG or JPEG image file.
public func readImageFile(_ path: String) throws -> RawImage {
    switch URL(fileURLWithPath: path).pathExtension.lowercased() {
    case "jpg", "jpeg": return try JPEGFile.read(path)
    default: return try PNGFile.read(path)
    }
}

/// The dataset folder layout:
///
///     DATASET/train/images/NAME.png   DATASET/train/masks/NAME.png
///     DATASET/test/images/…           DATASET/test/masks/…
///     DATASET/val/…                   (optional)
///     DATASET/unlabeled/images/…      (optional; pre-training only)
public struct DatasetFolder {
    public let root: String

    public init(_ root: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw RefineSegError.io(file: root, message: "dataset folder not found")
        }
        self.root = root
    }

    public func hasSplit(_ split: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(root)/\(split)/images")
    }

    /// Image file names (sorted) of a folder; throws if the folder is missing or holds no images.
    static func imageNames(in dir: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw RefineSegError.io(file: dir, message: "folder not found")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { !$0.hasPrefix(".") && (imageExtensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) || isNIfTIName($0)) }
            .sorted()
        guard !names.isEmpty else { throw RefineSegError.io(file: dir, message: "no images (.png, .jpg, .nii, .nii.gz) in this folder") }
        return names
    }

    /// Loads a split. With `masks`, every image needs a mask of the same stem and size (and vice versa).
    public func load(split: String, masks: Bool) throws -> [Sample] {
        try Self.load(imageDir: "\(root)/\(split)/images", maskDir: "\(root)/\(split)/masks", masks: masks)
    }

    /// The images of a plain folder (.png, .jpg, and NIfTI volumes as their slices), without masks.
    public static func loadImages(in dir: String) throws -> [Sample] {
        try load(imageDir: dir, maskDir: dir, masks: false)
    }

    static func load(imageDir: String, maskDir: String, masks: Bool) throws -> [Sample] {
        let images = try Self.imageNames(in: imageDir)
        var maskByStem = [String: String]()
        if masks {
            let maskNames = try Self.imageNames(in: maskDir)
            for m in maskNames { maskByStem[stem(m)] = m }
            let imageStems = Set(images.map(stem))
            let missingMasks = images.filter { maskByStem[stem($0)] == nil }
            let orphanMasks = maskNames.filter { !imageStems.contains(stem($0)) }
            if !missingMasks.isEmpty || !orphanMasks.isEmpty {
                var parts = [String]()
                if !missingMasks.isEmpty { parts.append("images without a mask: " + listPreview(missingMasks)) }
                if !orphanMasks.isEmpty { parts.append("masks without an image: " + listPreview(orphanMasks)) }
                throw RefineSegError.io(file: URL(fileURLWithPath: imageDir).deletingLastPathComponent().path, message: parts.joined(separator: "; "))
            }
        }
        var samples = [Sample]()
        var channels: Int?
        for name in images {
            let path = "\(imageDir)/\(name)"
            if isNIfTIName(name) {
                // A volume (3-D, or 4-D with one volume per channel): its axial slices, by case.
                let volume = try NIfTIFile.read(path, channels: true)
                if let c = channels, c != volume.channels {
                    throw RefineSegError.io(file: path, message: "has \(volume.channels) channel(s) but earlier images have \(c)")
                }
                channels = volume.channels
                var maskVolume: NIfTIVolume?
                if masks, let m = maskByStem[stem(name)] {
                    let maskPath = "\(maskDir)/\(m)"
                    guard isNIfTIName(m) else { throw RefineSegError.io(file: maskPath, message: "the mask of volume \(name) must be a NIfTI volume") }
                    let mv = try NIfTIFile.read(maskPath)
                    guard mv.dims == volume.dims else {
                        throw RefineSegError.io(file: maskPath, message: "mask is \(mv.dims.map(String.init).joined(separator: "×")) but its volume \(name) is \(volume.dims.map(String.init).joined(separator: "×"))")
                    }
                    maskVolume = mv
                }
                samples += volumeSamples(name: stem(name), path: path, volume: volume, mask: maskVolume)
                continue
            }
            let raw = try readImageFile(path)
            if let c = channels, c != raw.channels {
                throw RefineSegError.io(file: path, message: "has \(raw.channels) channel(s) but earlier images have \(c): a dataset must not mix grey and colour images")
            }
            channels = raw.channels
            var mask: [Float]?
            if masks, let m = maskByStem[stem(name)] {
                let maskPath = "\(maskDir)/\(m)"
                let rawMask = try readImageFile(maskPath)
                guard rawMask.width == raw.width, rawMask.height == raw.height else {
                    throw RefineSegError.io(file: maskPath, message: "mask is \(rawMask.width)×\(rawMask.height) but its image \(name) is \(raw.width)×\(raw.height)")
                }
                mask = rawMask.maskValues()
            }
            samples.append(Sample(name: stem(name), path: path, channels: raw.channels, height: raw.height, width: raw.width,
                                  image: normalizePercentiles(raw.planarFloats(), channels: raw.channels), mask: mask))
        }
        return samples
    }
}

func stem(_ name: String) -> String {
    let base = URL(fileURLWithPath: name).lastPathComponent
    if base.lowercased().hasSuffix(".nii.gz") { return String(base.dropLast(7)) }
    return URL(fileURLWithPath: base).deletingPathExtension().lastPathComponent
}

/// Names (sorted) of the samples whose mask has no lesion pixel (allowed: they teach the background,
/// but a dataset made mostly of them is worth knowing about).
public func masksWithoutLesion(_ samples: [Sample]) -> [String] {
    samples.filter { s in s.mask.map { !$0.contains { $0 > 0 } } ?? false }.map(\.name).sorted()
}

/// Up to `limit` names, then how many more.
public func listPreview(_ names: [String], limit: Int = 5) -> String {
    names.count <= limit ? names.joined(separator: ", ") : names.prefix(limit).joined(separator: ", ") + " and \(names.count - limit) more"
}

/// The labelled training set after the validation hold-out and the label fraction.
public struct TrainingSplit {
    public var labelled: [Sample]
    public var validation: [Sample]
    /// Training images whose masks are not used (the rest of the label fraction).
    public var unlabelled: [Sample]
    /// Training images before the label fraction (labelled + unlabelled when the split was made;
    /// kept when a caller drops `unlabelled`): the default epoch length counts them.
    public var trainingImages: Int
    /// How the labelled images were chosen (nil: given by the caller).
    public var selection: LabelSelection?

    public init(labelled: [Sample], validation: [Sample], unlabelled: [Sample]) {
        self.labelled = labelled; self.validation = validation; self.unlabelled = unlabelled
        trainingImages = labelled.count + unlabelled.count
    }

    /// Without a val split, a seeded 15 % (at least one image) of the labelled training images
    /// is held out; then `labelFraction` (at least one image) of the rest keeps its mask, chosen by `selection`.
    public init(folder: DatasetFolder, labelFraction: Double, seed: UInt64, selection: LabelSelection = .default) throws {
        let train = try folder.load(split: "train", masks: true)
        let val = folder.hasSplit("val") ? try folder.load(split: "val", masks: true) : nil
        try self.init(train: train, validation: val, labelFraction: labelFraction, seed: seed, source: "\(folder.root)/train",
                      selection: selection)
    }

    /// The same rule on loaded splits, by group (`Sample.groupID`): the slices of one case stay
    /// together in the hold-out and in the labelled fraction, which count groups, not images.
    /// For data where every image is its own group this is exactly the folder rule above.
    /// `selection` picks the labelled groups (`LabelSelection`: the paper's seeded shuffle by
    /// default, or typical images that cover the data).
    public init(train pool: [Sample], validation val: [Sample]?, labelFraction: Double, seed: UInt64, source: String,
                selection: LabelSelection = .default) throws {
        var groups = Self.groups(pool)
        if let val {
            validation = val
        } else {
            guard groups.count >= 2 else {
                throw RefineSegError.io(file: source, message: "needs at least 2 labelled images (or cases) to hold one out for validation (or add a val split)")
            }
            var rng = SeededRandom(seed: seed ^ 0x7A11)
            groups.shuffle(using: &rng)
            let held = max(1, Int((Double(groups.count) * 0.15).rounded()))
            validation = groups.prefix(held).flatMap { $0 }.sorted { $0.name < $1.name }
            groups = Array(groups.dropFirst(held))
        }
        groups.sort { $0[0].groupID < $1[0].groupID }
        let keep = max(1, Int((Double(groups.count) * labelFraction).rounded()))
        groups = selection.order(groups, labelling: keep, seed: seed).map { groups[$0] }
        labelled = groups.prefix(keep).flatMap { $0 }.sorted { $0.name < $1.name }
        unlabelled = groups.dropFirst(keep).flatMap { $0 }.map { var s = $0; s.mask = nil; return s }
        trainingImages = labelled.count + unlabelled.count
        self.selection = selection
    }

    /// Samples gathered by group, groups in order of first appearance.
    static func groups(_ samples: [Sample]) -> [[Sample]] {
        var index = [String: Int](), out = [[Sample]]()
        for s in samples {
            if let i = index[s.groupID] { out[i].append(s) } else { index[s.groupID] = out.count; out.append([s]) }
        }
        return out
    }
}
