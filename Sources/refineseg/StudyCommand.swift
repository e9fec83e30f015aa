import ArgumentParser
import Foundation
import RefineSeg

struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "Label-fraction study: scratch, scratch + lesion-aware loss, Barlow Twins + lesion-aware loss, per fraction and seed; resumable.")

    @Option(help: "Dataset folder (with --format, a public dataset as downloaded).") var data: String
    @Option(help: "Study folder (results.csv, summary.md, dice_vs_labels.svg, runs/).") var out: String
    @Option(help: "Comma-separated label fractions.") var fractions: String = "0.05,0.1,0.2,0.5,1.0"
    @Option(help: "Seeds per setting.") var seeds: Int = 3
    @Option(help: "Training epochs per run.") var epochs: Int = 20
    @Option(help: "Pre-training epochs per seed.") var pretrainEpochs: Int = 20
    @Option(help: "Batch size.") var batch: Int = 8
    @Option(help: "Crop size.") var size: Int = 128
    @Option(help: "Base width.") var width: Int = 16
    @Option(help: "Projector dimension for pre-training.") var projector: Int = 256
    @Option(help: "Peak learning rate of the training runs.") var lr: Double = 2e-3
    @Option(help: "Optimiser steps per epoch of every run (default: one pass's worth over all training images, so every fraction trains as many steps as the 100 % run).") var stepsPerEpoch: Int?
    @Option(help: "Comma-separated variants to run (default all): scratch, scratch+lac, bt+lac (pre-training runs only for bt+lac).") var variants: String?
    @Flag(help: "Earlier versions' equal-steps mode; every study trains equal steps now (accepted, has no effect).") var equalSteps = false
    @Option(help: "Split the study into this many parts by seed (for a job array without MPI); this task does --part-id. Under mpirun/srun the ranks share the runs by themselves.") var numParts: Int = 1
    @Option(help: "Which part this task does, 0 ..< --num-parts (the seeds s with s mod N = K).") var partId: Int = 0
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if dataOptions.splitFile != nil { throw ValidationError("study keeps its split in OUT/split.json; --split-file is for train, pretrain and evaluate") }
    }
    func run() throws {
        try runReportingErrors {
            installInterruptHandler()
            let parsed = fractions.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else {
                throw RefineSegError.invalidArgument("--fractions must be comma-separated numbers, e.g. 0.1,0.2,0.5,1.0 (got \(fractions))")
            }
            var settings = StudySettings(data: data, out: out)
            settings.fractions = parsed.compactMap { $0 }; settings.seeds = seeds; settings.epochs = epochs
            settings.pretrainEpochs = pretrainEpochs; settings.batch = batch; settings.size = size
            settings.width = width; settings.projector = projector; settings.device = deviceOptions.index
            settings.lr = lr; settings.stepsPerEpoch = stepsPerEpoch
            settings.variants = variants.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            if equalSteps { print("note: --equal-steps is the default now (an epoch is a fixed number of steps at every fraction); it has no effect") }
            settings.format = dataOptions.formatName; settings.modalities = dataOptions.modalityList
            settings.splitSeed = dataOptions.splitSeed
            let backend = try deviceOptions.open()
            let study = try Study(settings: settings, backend: backend)
            let shard = Shard(count: numParts, index: partId)
            try shard.validate()
            let comm = Distributed.current
            if comm != nil && numParts > 1 { throw RefineSegError.invalidArgument("--num-parts is for job arrays without MPI; under mpirun/srun the ranks share the runs by themselves") }
            let results = try study.run(shard: shard, comm: comm)
            if let comm, !comm.isRoot { return }
            if comm == nil && numParts > 1 {
                print("part \(partId) of \(numParts): \(results.count) run(s) done; when every part is done, the same command without --num-parts/--part-id reuses them all and writes the reports")
                return
            }
            print(try String(contentsOfFile: out + "/summary.md", encoding: .utf8))
            print("\(results.count) run(s); \(out)/results.csv, \(out)/summary.md, \(out)/dice_vs_labels.svg")
        }
    }
}
