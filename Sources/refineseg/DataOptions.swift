import ArgumentParser
import Foundation
import RefineSeg

/// Options shared by every command that reads a dataset: its layout and how it is split.
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset layout: folder (train/ test/ val/ unlabeled/, the default), kdsb18, busi, isic2018 or brats2018 (see docs/DATASETS.md).")
    var format: String = "folder"
    @Option(help: "brats2018: comma-separated modalities used as channels, in this order (default flair,t1,t1ce,t2).")
    var modalities: String?
    @Option(help: "Seed of the test split made for datasets without an official one (kdsb18, busi, brats2018; isic2018 without test ground truth).")
    var splitSeed: UInt64 = 0
    @Option(help: "split.json to reuse (or write) instead of OUT/split.json.")
    var splitFile: String?

    func validate() throws {
        guard let parsed = DatasetFormat(rawValue: format.lowercased()) else {
            throw ValidationError("--format must be one of \(DatasetFormat.allCases.map(\.rawValue).joined(separator: ", ")) (got \(format))")
        }
        if modalities != nil && parsed != .brats2018 {
            throw ValidationError("--modalities applies to --format brats2018 only (got --format \(format))")
        }
        if let list = modalityList {
            let known = ["flair", "t1", "t1ce", "t2"]
            if let bad = list.first(where: { !known.contains($0) }) {
                throw ValidationError("--modalities: \(bad) is not a BraTS modality (\(known.joined(separator: ", ")))")
            }
            if list.isEmpty || Set(list).count != list.count {
                throw ValidationError("--modalities must name each modality at most once, at least one (got \(modalities ?? ""))")
            }
        }
    }

    /// The format as stored in configs (lower case).
    var formatName: String { format.lowercased() }

    var modalityList: [String]? {
        modalities.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }
    }

    /// The reading settings with a working size.
    func spec(size: Int) throws -> DatasetSpec {
        DatasetSpec(format: try DatasetFormat(parsing: format), modalities: modalityList, size: size, splitSeed: splitSeed)
    }
}
