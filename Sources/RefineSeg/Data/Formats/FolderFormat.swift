import Foundation

/// The project's own layout (`DatasetFolder`): its splits are the folders, as they are.
struct FolderSource {
    let folder: DatasetFolder

    init(root: String) throws { folder = try DatasetFolder(root) }

    /// train and test are required when asked for; val and unlabeled are read where present
    /// (and required when they are the only part asked for, e.g. `evaluate --split val`).
    func loadSplits(parts: Set<DatasetPart>) throws -> DatasetSplits {
        var splits = DatasetSplits()
        if parts.contains(.train) { splits.train = try folder.load(split: "train", masks: true) }
        if parts.contains(.val), folder.hasSplit("val") || parts == [.val] { splits.validation = try folder.load(split: "val", masks: true) }
        if parts.contains(.test) { splits.test = try folder.load(split: "test", masks: true) }
        if parts.contains(.unlabeled), folder.hasSplit("unlabeled") || parts == [.unlabeled] { splits.unlabeled = try folder.load(split: "unlabeled", masks: false) }
        return splits
    }
}
