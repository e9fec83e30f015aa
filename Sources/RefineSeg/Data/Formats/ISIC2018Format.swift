import Foundation

/// ISIC 2018 task 1 (lesion boundary segmentation), as downloaded:
///
///     ISIC2018_Task1-2_Training_Input/ISIC_NNNNNNN.jpg   ISIC2018_Task1_Training_GroundTruth/ISIC_NNNNNNN_segmentation.png
///     ISIC2018_Task1-2_Validation_Input/…                ISIC2018_Task1_Validation_GroundTruth/…   (optional)
///     ISIC2018_Task1-2_Test_Input/…                      ISIC2018_Task1_Test_GroundTruth/…         (optional)
///
/// `path` is the folder holding these folders. Validation and test are the official parts
/// where both their input and ground-truth folders are present; without the test ground truth
/// `loadSplits` makes a test split from the training images. Images are RGB (3 channels) of
/// differing sizes, resized to S×S (`resizedSample`); test and validation images keep their
/// ground truth at the original size for scoring.
struct ISIC2018Source: DatasetSource {
    let root: String

    init(path: String) throws {
        try requireDirectory(path, "ISIC 2018 folder")
        root = path
        try requireDirectory("\(path)/ISIC2018_Task1-2_Training_Input", "ISIC 2018 training input folder")
        try requireDirectory("\(path)/ISIC2018_Task1_Training_GroundTruth", "ISIC 2018 training ground truth folder")
    }

    func entries() throws -> [DatasetEntry] {
        var out = [DatasetEntry]()
        let officialTest = isDirectory("\(root)/ISIC2018_Task1-2_Test_Input") && isDirectory("\(root)/ISIC2018_Task1_Test_GroundTruth")
        for (stage, part) in [("Training", officialTest ? DatasetPart.train : nil), ("Validation", DatasetPart.val), ("Test", DatasetPart.test)] as [(String, DatasetPart?)] {
            let inputDir = "\(root)/ISIC2018_Task1-2_\(stage)_Input", truthDir = "\(root)/ISIC2018_Task1_\(stage)_GroundTruth"
            guard isDirectory(inputDir), isDirectory(truthDir) else { continue }
            let images = try listDirectory(inputDir).filter { ["jpg", "jpeg", "png"].contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
            guard !images.isEmpty else { throw RefineSegError.io(file: inputDir, message: "no ISIC images (.jpg) in this folder") }
            let truths = Set(try listDirectory(truthDir).filter { $0.hasSuffix("_segmentation.png") })
            let stems = Set(images.map(stem))
            if let orphan = truths.sorted().first(where: { !stems.contains(String($0.dropLast("_segmentation.png".count))) }) {
                throw RefineSegError.io(file: "\(truthDir)/\(orphan)", message: "ISIC ground truth without its image in \(inputDir)")
            }
            for image in images {
                let truth = "\(stem(image))_segmentation.png"
                guard truths.contains(truth) else {
                    throw RefineSegError.io(file: "\(inputDir)/\(image)", message: "ISIC ground truth missing (expected \(truthDir)/\(truth))")
                }
                out.append(DatasetEntry(id: stem(image), part: part, files: ["image": "\(inputDir)/\(image)"], maskFiles: ["\(truthDir)/\(truth)"]))
            }
        }
        return out.sorted { $0.id < $1.id }
    }

    func load(_ entry: DatasetEntry, spec: DatasetSpec) throws -> [Sample] {
        let path = entry.files["image", default: ""]
        let raw = try readImageFile(path)
        guard raw.channels == 3 else {
            throw RefineSegError.io(file: path, message: "ISIC image has \(raw.channels) channel(s), expected RGB")
        }
        let mask = try mergedMask(entry.maskFiles, width: raw.width, height: raw.height, imagePath: path)
        return [resizedSample(name: entry.id, path: path, planar: raw.planarFloats(), channels: 3, height: raw.height, width: raw.width,
                              mask: mask, size: spec.size, keepOriginal: entry.part == .test || entry.part == .val, tags: entry.tags)]
    }
}
