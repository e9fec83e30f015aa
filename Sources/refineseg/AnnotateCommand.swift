import ArgumentParser
import Foundation
import RefineSeg

struct AnnotateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annotate",
        abstract: "Predict masks for a folder of images: OUT/masks, OUT/probabilities, OUT/overlays, OUT/review.csv (most uncertain first) and OUT/review.html (the review page).")

    @Option(help: "Model checkpoint (model.safetensors).") var model: String?
    @Option(help: "Folder of images (.png, .jpg) and/or NIfTI volumes (.nii, .nii.gz), or one such file.") var images: String?
    @Option(help: "Output folder.") var out: String
    @Option(help: "Axis NIfTI volumes are cut along into slices.") var axis: SliceAxis = .axial
    @Option(help: "Modalities of volumes stored one file per modality (CASE_flair.nii.gz …), in channel order (default: the model's run's --modalities, else flair,t1,t1ce,t2 for a 4-channel model).",
            transform: { try CommaList<String>.parse($0) })
    var modalities: CommaList<String>?
    @Flag(name: .customLong("continue"), help: "Skip images whose outputs are complete (from an earlier or killed run) and add the new outputs to OUT.") var resume = false
    @OptionGroup var shardOptions: PartFolderOptions
    @OptionGroup var inference: InferenceOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if !shardOptions.merge && (model == nil || images == nil) { throw ValidationError("--model and --images are required (or --merge --out DIR)") }
    }

    func run() throws {
        try runReportingErrors {
            if shardOptions.merge {
                let rows = try mergeAnnotationParts(out: out)
                print("merged \(rows.count) annotated image(s) into \(out); ranking in \(out)/review.csv")
                return
            }
            guard let model, let images else { return }
            let shard = try shardOptions.shard()
            let backend = try deviceOptions.open()
            let comm = Distributed.current
            let net = try loadModel(model, backend: backend)
            let post = try inference.postProcessing(checkpoint: model)
            var options = AnnotateOptions()
            options.axis = axis
            options.resume = resume
            let runModalities = (try? readRunRecord(URL(fileURLWithPath: model).deletingLastPathComponent().path))?.config.modalities
            options.modalities = modalities.map { $0.values.map { $0.lowercased() } } ?? runModalities
            let rows = try annotate(model: net, backend: backend, imagesDir: images, out: out,
                                    progress: (comm?.isRoot ?? true) ? ProgressPrinter() : nil, shard: shard, comm: comm,
                                    tta: inference.tta, postProcessing: post, options: options)
            if let comm, !comm.isRoot { return }
            if comm == nil && shard.count > 1 {
                print("annotated part \(shard.index) of \(shard.count) (\(rows.count) image(s)) into \(out)/\(shard.folderName); `refineseg annotate --merge --out \(out)` when all parts are done")
                return
            }
            print("annotated \(rows.count) image(s); review first: \(rows.prefix(3).map(\.name).joined(separator: ", "))")
            print("overlays in \(out)/overlays, ranking in \(out)/review.csv; review page: \(out)/review.html")
        }
    }
}
