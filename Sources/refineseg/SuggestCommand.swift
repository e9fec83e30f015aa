import ArgumentParser
import Foundation
import RefineSeg

struct SuggestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suggest",
        abstract: "List the images to annotate, one file name a line: a share of the folder chosen by `train`'s rule (--label-selection; by default the image with the most content in each cluster of similar images). For a dataset folder with a val split, the images `train --label-fraction F --seed K` labels; without one, train first holds out 15 % for validation, and RUN/config.json lists the images it labelled.")

    @Option(help: "A folder of images (.png, .jpg) and/or NIfTI volumes, or a dataset folder (its train/images).") var data: String
    @Option(help: "Share of the images to list, in (0, 1] (default 0.1; a volume counts once; at least one).") var fraction: Double?
    @Option(help: "How many images to list (instead of --fraction).") var count: Int?
    @Option(help: "Seed of the choice (default 0; the rule of `train --seed K`).") var seed: UInt64 = 0
    @Option(help: "\(LabelSelection.rules)") var labelSelection: LabelSelection = .default
    @Flag(help: "Print full paths instead of file names.") var paths = false

    func validate() throws {
        if fraction != nil && count != nil { throw ValidationError("give --fraction or --count, not both") }
        if let fraction, !(fraction > 0 && fraction <= 1) { throw ValidationError("--fraction must be in (0, 1] (got \(fraction))") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1 (got \(count))") }
    }

    func run() throws {
        try runReportingErrors {
            let folder = FileManager.default.fileExists(atPath: data + "/train/images") ? data + "/train/images" : data
            let samples = try DatasetFolder.loadImages(in: folder)
            let names = suggestedFiles(samples, fraction: fraction ?? 0.1, count: count, seed: seed, selection: labelSelection)
            for path in names { print(paths ? path : URL(fileURLWithPath: path).lastPathComponent) }
            FileHandle.standardError.write(Data("\(names.count) of \(Set(samples.map(\.path)).count) file(s) in \(folder) to annotate (\(labelSelection.rawValue) selection, seed \(seed))\n".utf8))
        }
    }
}
