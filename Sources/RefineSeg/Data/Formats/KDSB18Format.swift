import Foundation

/// 2018 Data Science Bowl (stage 1) nuclei, as downloaded from Kaggle:
///
///     stage1_train/ID/images/ID.png     (RGBA, alpha all 255; most are grey stored as RGB)
///     stage1_train/ID/masks/*.png       (one binary mask per nucleus, merged into one mask)
///
/// `path` is stage1_train itself or the folder holding it. Every image becomes one grey channel,
/// (R + G + B) / 3 (exactly R for the grey images, where R = G = B), so the few colour (H&E)
/// images have the channel count of the rest; alpha is dropped by the PNG reader. Images keep
/// their size (256×256 to 1388×1040); training crops them. There is no labelled test split
/// in stage 1, so `loadSplits` makes one by image.
struct KDSB18Source: DatasetSource {
    let root: String

    init(path: String) throws {
        try requireDirectory(path, "KDSB18 folder")
        root = isDirectory(path + "/stage1_train") ? path + "/stage1_train" : path
    }

    func entries() throws -> [DatasetEntry] {
        var out = [DatasetEntry]()
        for id in try listDirectory(root) where isDirectory("\(root)/\(id)") {
            let caseDir = "\(root)/\(id)"
            let image = "\(caseDir)/images/\(id).png"
            guard FileManager.default.fileExists(atPath: image) else {
                throw RefineSegError.io(file: caseDir, message: "KDSB18 case has no images/\(id).png")
            }
            guard isDirectory(caseDir + "/masks") else {
                throw RefineSegError.io(file: caseDir, message: "KDSB18 case has no masks/ folder (stage1_train cases need their per-nucleus masks)")
            }
            let masks = try listDirectory(caseDir + "/masks").filter { $0.lowercased().hasSuffix(".png") }
            guard !masks.isEmpty else {
                throw RefineSegError.io(file: caseDir + "/masks", message: "KDSB18 masks folder holds no .png masks")
            }
            out.append(DatasetEntry(id: id, part: nil, files: ["image": image], maskFiles: masks.map { "\(caseDir)/masks/\($0)" }))
        }
        guard !out.isEmpty else {
            throw RefineSegError.io(file: root, message: "no KDSB18 cases (ID/images/ID.png) in this folder")
        }
        return out
    }

    func load(_ entry: DatasetEntry, spec: DatasetSpec) throws -> [Sample] {
        let path = entry.files["image", default: ""]
        let raw = try readImageFile(path)
        let mask = try mergedMask(entry.maskFiles, width: raw.width, height: raw.height, imagePath: path)
        return [Sample(name: entry.id, path: path, channels: 1, height: raw.height, width: raw.width,
                       image: normalizePercentiles(greyPlanar(raw), channels: 1), mask: mask)]
    }
}
