import ArgumentParser
import Foundation
import RefineSeg

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Add corrected masks (and accepted predictions) to a dataset's training labels, with provenance, for `train --init RUN/model.safetensors`.")

    @Option(help: "Folder dataset to add to (DATA/train/images, DATA/train/masks; DATA/provenance.csv records each label).") var data: String
    @Option(help: "Folder of the images the masks belong to (the folder `annotate` read).") var images: String
    @Option(help: "Folder of corrected masks NAME.png (any non-zero pixel is lesion), e.g. annotate's masks edited in napari, ITK-SNAP or CVAT.") var corrections: String?
    @Option(help: "review-decisions.csv exported by review.html: its accepted predictions are added too (needs --annotations).") var decisions: String?
    @Option(help: "The annotate output folder (holds masks/) the decisions refer to.") var annotations: String?

    func validate() throws {
        if corrections == nil && decisions == nil { throw ValidationError("give --corrections DIR, --decisions FILE (with --annotations OUT), or both") }
        if decisions != nil && annotations == nil { throw ValidationError("--decisions needs --annotations (the annotate output holding masks/)") }
    }

    func run() throws {
        try runReportingErrors {
            let report = try ingestLabels(data: data, images: images, corrections: corrections, decisions: decisions, annotations: annotations)
            let corrected = report.added.filter { $0.source == .corrected }.count
            let replaced = report.added.filter(\.replaced).count
            print("added \(report.added.count) label(s) to \(data)/train (\(corrected) corrected, \(report.added.count - corrected) accepted predictions; \(replaced) replaced an earlier mask); provenance in \(data)/provenance.csv")
            if !report.awaitingCorrection.isEmpty {
                print("\(report.awaitingCorrection.count) image(s) marked needs correction have no corrected mask yet: \(listPreview(report.awaitingCorrection))")
            }
        }
    }
}
