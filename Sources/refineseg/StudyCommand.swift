import ArgumentParser
import Foundation
import RefineSeg

struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "Label-fraction study: scratch, scratch + lesion-aware loss, Barlow Twins with and without the lesion-aware loss, semi-supervised, per fraction and seed; resumable.")

    @Option(help: "Dataset folder (with --format, a public dataset as downloaded).") var data: String
    @Option(help: "Study folder (results.csv, summary.md, dice_vs_labels.svg, runs/).") var out: String
    @Option(help: "Comma-separated label fractions, each in (0, 1] (default 0.05,0.1,0.2,0.5,1.0).", transform: { try CommaList<Double>.parse($0) })
    var fractions: CommaList<Double>?
    @Option(help: "Seeds per setting (default 3).") var seeds: Int?
    @OptionGroup var optimiser: OptimiserOptions
    @Option(help: "Pre-training epochs per seed (default 20).") var pretrainEpochs: Int?
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Projector dimension for pre-training (default 256).") var projector: Int?
    @Option(help: "Optimiser steps per epoch of every run (default: one pass's worth over all training images, at least \(TrainConfig.defaultMinimumStepsPerEpoch), so every fraction trains as many steps as the 100 % run).") var stepsPerEpoch: Int?
    @Option(help: "Comma-separated variants to run (default all): scratch, scratch+lac, bt (the Barlow Twins encoder, no lesion-aware loss), bt+lac (pre-training runs only for bt and bt+lac), semi (scratch + the semi-supervised mean teacher).",
            transform: { try CommaList<StudyVariant>.parse($0) })
    var variants: CommaList<StudyVariant>?
    @Option(help: "Share of the last steps whose weights each run's model averages (default: train's, \(TrainConfig.defaultAverageLast); 0: the final weights).") var averageLast: Double?
    @Option(help: "Probability of the percentile re-normalisation augmentation in every run (default: train's, 0.3; 0 turns it off).") var percentileAugment: Double?
    @Option(help: "How every run picks its labelled images: \(LabelSelection.rules)") var labelSelection: LabelSelection?
    @Flag(help: "Earlier versions' equal-steps mode; every study trains equal steps now (accepted, has no effect).") var equalSteps = false
    @OptionGroup var shardOptions: ShardOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if dataOptions.splitFile != nil { throw ValidationError("study keeps its split in OUT/split.json; --split-file is for train, pretrain and evaluate") }
    }
    func run() throws {
        try runReportingErrors {
            installInterruptHandler()
            var settings = StudySettings(data: data, out: out)
            optimiser.apply(to: &settings)
            modelOptions.apply(to: &settings)
            if let fractions { settings.fractions = fractions.values }
            if let seeds { settings.seeds = seeds }
            if let pretrainEpochs { settings.pretrainEpochs = pretrainEpochs }
            if let projector { settings.projector = projector }
            settings.device = deviceOptions.index
            settings.stepsPerEpoch = stepsPerEpoch; settings.percentileAugment = percentileAugment
            settings.averageLast = averageLast
            if let labelSelection { settings.labelSelection = labelSelection }
            settings.variants = variants?.values.map(\.rawValue)
            if equalSteps { print("note: --equal-steps is the default now (an epoch is a fixed number of steps at every fraction); it has no effect") }
            settings.format = dataOptions.formatName; settings.modalities = dataOptions.modalityList
            settings.splitSeed = dataOptions.splitSeed ?? 0
            let backend = try deviceOptions.open()
            let study = try Study(settings: settings, backend: backend)
            // Part K of N runs the seeds s with s mod N = K.
            let shard = try shardOptions.shard()
            let comm = Distributed.current
            let results = try study.run(shard: shard, comm: comm)
            if let comm, !comm.isRoot { return }
            if comm == nil && shard.count > 1 {
                print("part \(shard.index) of \(shard.count): \(results.count) run(s) done; when every part is done, the same command without --num-parts/--part-id reuses them all and writes the reports")
                return
            }
            print(try String(contentsOfFile: out + "/summary.md", encoding: .utf8))
            print("\(results.count) run(s); \(out)/results.csv, \(out)/summary.md, \(out)/dice_vs_labels.svg")
        }
    }
}
