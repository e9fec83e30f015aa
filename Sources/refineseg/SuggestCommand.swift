import ArgumentParser
import Foundation
import RefineSeg

struct SuggestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suggest",
        abstract: "List the images to annotate: the ones `train --label-fraction F --seed K --label-selection S` labels (by default a seeded random share; diverse: typical images that together cover the folder), one file name a line.")

    @Option(help: "A folder of images (.png, .jpg) and/or NIfTI volumes, or a dataset folder (its train/images).") var data: String
    @Option(help: "Share of the images to list, in (0, 1] (default 0.1; a volume counts once; at least one).") var fraction: Double?
    @Option(help: "How many images to list (instead of --fraction).") var count: Int?
    @Option(help: "Seed of the starting choices (default 0; `train --seed K` picks as --seed K does).") var seed: UInt64 = 0
    @Option(help: "random (the default: a seeded shuffle, the paper's protocol) or diverse (typical images that cover the data: k-medoids over intensity and texture descriptors; worse on dsb, docs/study-real).") var labelSelection: LabelSelection = .default
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
