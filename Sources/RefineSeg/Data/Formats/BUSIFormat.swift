import Foundation

/// Breast Ultrasound Images (Al-Dhabyani et al. 2020), as downloaded:
///
///     Dataset_BUSI_with_GT/benign/benign (1).png   benign (1)_mask.png   [benign (1)_mask_1.png …]
///     Dataset_BUSI_with_GT/malignant/…             Dataset_BUSI_with_GT/normal/… (empty masks)
///
/// `path` is Dataset_BUSI_with_GT itself or the folder holding it. Several masks of one image
/// are merged; the class is kept as the sample's "class" tag and stratifies the made test split.
/// Ultrasound is grey, so every image becomes one channel ((R + G + B) / 3, exactly R for grey
/// stored as RGB). Sizes differ, so images are resized to S×S (`resizedSample`).
struct BUSISource: DatasetSource {
    static let classes = ["benign", "malignant", "normal"]
    let root: String

    init(path: String) throws {
        try requireDirectory(path, "BUSI folder")
        root = isDirectory(path + "/Dataset_BUSI_with_GT") ? path + "/Dataset_BUSI_with_GT" : path
    }

    func entries() throws -> [DatasetEntry] {
        var out = [DatasetEntry]()
        let present = Self.classes.filter { isDirectory("\(root)/\($0)") }
        guard !present.isEmpty else {
            throw RefineSegError.io(file: root, message: "no BUSI class folders (benign, malignant, normal) in this folder")
        }
        for cls in present {
            let dir = "\(root)/\(cls)"
            let pngs = try listDirectory(dir).filter { $0.lowercased().hasSuffix(".png") }
            var images = [String](), masksOf = [String: [String]]()
            for name in pngs {
                let base = String(name.dropLast(4))
                if let r = base.range(of: "_mask", options: .backwards),
                   base[r.upperBound...].isEmpty || (base[r.upperBound...].hasPrefix("_") && Int(base[r.upperBound...].dropFirst()) != nil) {
                    masksOf[String(base[..<r.lowerBound]), default: []].append(name)
                } else {
                    images.append(name)
                }
            }
            let stems = Set(images.map { String($0.dropLast(4)) })
            if let orphan = masksOf.keys.sorted().first(where: { !stems.contains($0) }) {
                throw RefineSegError.io(file: "\(dir)/\(masksOf[orphan, default: []].sorted()[0])", message: "BUSI mask without its image \(orphan).png")
            }
            for name in images {
                let base = String(name.dropLast(4))
                guard let masks = masksOf[base] else {
                    throw RefineSegError.io(file: "\(dir)/\(name)", message: "BUSI image without a mask (expected \(base)_mask.png beside it)")
                }
                out.append(DatasetEntry(id: base, part: nil, tags: ["class": cls], files: ["image": "\(dir)/\(name)"],
                                        maskFiles: masks.sorted().map { "\(dir)/\($0)" }))
            }
        }
        return out.sorted { $0.id < $1.id }
    }

    func load(_ entry: DatasetEntry, spec: DatasetSpec) throws -> [Sample] {
        let path = entry.files["image", default: ""]
        let raw = try readImageFile(path)
        let mask = try mergedMask(entry.maskFiles, width: raw.width, height: raw.height, imagePath: path)
        return [resizedSample(name: entry.id, path: path, planar: greyPlanar(raw), channels: 1, height: raw.height, width: raw.width,
                              mask: mask, size: spec.size, keepOriginal: entry.part == .test || entry.part == .val, tags: entry.tags)]
    }
}
