import ArgumentParser
import Foundation
import RefineSeg

/// Options shared by every command that reads a dataset: its layout and how it is split.
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset layout (default folder: train/ test/ val/ unlabeled/; see docs/DATASETS.md).")
    var format: DatasetFormat?
    @Option(help: "brats2018: comma-separated modalities used as channels, in this order (default flair,t1,t1ce,t2).",
            transform: { try CommaList<BraTSModality>.parse($0) })
    var modalities: CommaList<BraTSModality>?
    @Option(help: "Seed of the test split made for datasets without an official one (kdsb18, busi, brats2018; isic2018 without test ground truth; default 0).")
    var splitSeed: UInt64?
    @Option(help: "split.json to reuse (or write) instead of OUT/split.json.")
    var splitFile: String?

    func validate() throws {
        if modalities != nil && datasetFormat != .brats2018 {
            throw ValidationError("--modalities applies to --format brats2018 only (got --format \(datasetFormat.rawValue))")
        }
        if let list = modalityList, Set(list).count != list.count {
            throw ValidationError("--modalities must name each modality at most once (got \(list.joined(separator: ",")))")
        }
    }

    /// The format given, else the project's own layout.
    var datasetFormat: DatasetFormat { format ?? .folder }

    /// The format as stored in configs (lower case).
    var formatName: String { datasetFormat.rawValue }

    var modalityList: [String]? { modalities?.values.map(\.rawValue) }

    /// The reading settings with a working size.
    func spec(size: Int) -> DatasetSpec {
        DatasetSpec(format: datasetFormat, modalities: modalityList, size: size, splitSeed: splitSeed ?? 0)
    }

    /// The options given (a resumed run reads its dataset settings from its record).
    var given: [String] {
        [("--format", format != nil), ("--modalities", modalities != nil), ("--split-seed", splitSeed != nil), ("--split-file", splitFile != nil)]
            .filter(\.1).map(\.0)
    }
}
