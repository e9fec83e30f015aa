import ArgumentParser
import Foundation
import RefineSeg

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train DFR-UNet on a dataset folder; writes RUN/model.safetensors (the final model, its weights averaged over the last 25 % of the steps; --checkpoint best: the best validation Dice), last.safetensors, log.csv, config.json.")

    @OptionGroup var runFolder: RunFolderOptions
    @Option(help: "Fraction of the labelled training images whose masks are used, in (0, 1] (default 1).") var labelFraction: Double?
    @Option(help: "How the labelled images of --label-fraction are chosen: \(LabelSelection.rules)") var labelSelection: LabelSelection?
    @Option(help: "Optimiser steps per epoch, each a batch drawn with replacement from the labelled images (default: one pass over all training images, labelled or not, so every label fraction trains as many steps; at least \(TrainConfig.defaultMinimumStepsPerEpoch)).") var stepsPerEpoch: Int?
    @Option(name: .customLong("repeat"), help: "Earlier versions' epoch length: ⌈R × labelled / batch⌉ steps per epoch (use --steps-per-epoch).") var repeats: Int?
    @Option(name: .customLong("init"), help: "Checkpoint to start from: an encoder from `refineseg pretrain`, or a trained RUN/model.safetensors (all of it: fine-tuning, e.g. after `refineseg ingest`).") var initEncoder: String?
    @OptionGroup var optimiser: OptimiserOptions
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Weight β of the lesion-aware contrastive loss (default 0: off, which did better on the real benchmark; the paper uses 0.1).") var lacWeight: Double?
    @OptionGroup var seedOptions: SeedOptions
    @Option(help: "Training augmentation: nnunet (the default: nnU-Net's rotation, scaling, mirroring, noise, blur, brightness, contrast, low resolution, gamma; 1/3 of crops centred on a lesion) or basic (crop, flips, 90° turns).") var augment: AugmentChoice?
    @Option(help: "Share of training crops centred on a lesion pixel (nnunet augmentation).") var foregroundOversample: Double?
    @Option(help: "Probability of re-normalising a training crop with other percentiles of its image (tails 0.01–1 %; nnunet augmentation; default 0.3).") var percentileAugment: Double?
    @Option(help: "Probability of multiplying a training crop by a factor in 1/3–3 (log-uniform; spans images whose few very bright objects put the rest at a third of the level; nnunet augmentation; default 0: it helped dsb and hurt bacteria, docs/study-real).") var intensityAugment: Double?
    @Option(help: "What RUN/model.safetensors holds: final (the default: the end of the run, as nnU-Net's checkpoint_final, averaged over its last steps, --average-last) or best (the epoch with the best validation Dice).") var checkpoint: CheckpointChoice?
    @Option(help: "Share of the last optimiser steps whose weights RUN/model.safetensors averages, in [0, 1] (stochastic weight averaging over the tail of the schedule; default \(TrainConfig.defaultAverageLast); 0: the final weights; ignored with --checkpoint best).") var averageLast: Double?
    @Flag(help: "Also learn from the unlabelled training images: a mean teacher with confidence-thresholded pseudo-labels, consistency under augmentation (see SemiSupervised.swift).") var semiSupervised = false
    @Option(help: "With --semi-supervised: confidence τ of a hard pseudo-label, in [0.5, 1] (default 0.9).") var pseudoThreshold: Double?
    @Option(help: "With --semi-supervised: weight λ of the unlabelled loss after its ramp-up (default 1).") var unlabelledWeight: Double?
    @Option(help: "With --semi-supervised: EMA momentum of the teacher, in [0, 1) (default 1 − 10 / total steps, clamped to [0.5, 0.999]).") var teacherMomentum: Double?
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        let named: [(String, Bool)] = [("--label-fraction", labelFraction != nil), ("--label-selection", labelSelection != nil), ("--steps-per-epoch", stepsPerEpoch != nil), ("--repeat", repeats != nil),
                                       ("--init", initEncoder != nil), ("--lac-weight", lacWeight != nil),
                                       ("--augment", augment != nil), ("--foreground-oversample", foregroundOversample != nil),
                                       ("--percentile-augment", percentileAugment != nil),
                                       ("--intensity-augment", intensityAugment != nil), ("--checkpoint", checkpoint != nil),
                                       ("--average-last", averageLast != nil), ("--semi-supervised", semiSupervised),
                                       ("--pseudo-threshold", pseudoThreshold != nil), ("--unlabelled-weight", unlabelledWeight != nil),
                                       ("--teacher-momentum", teacherMomentum != nil)]
        try runFolder.refuseWithResume(optimiser.givenBesidesEpochs + modelOptions.given + seedOptions.given + named.filter(\.1).map(\.0) + dataOptions.given)
        if !semiSupervised && (pseudoThreshold != nil || unlabelledWeight != nil || teacherMomentum != nil) {
            throw ValidationError("--pseudo-threshold, --unlabelled-weight and --teacher-momentum need --semi-supervised")
        }
    }

    /// The settings of a new run: TrainConfig's defaults, then every option given.
    func newConfig(data: String, out: String) -> TrainConfig {
        var config = TrainConfig(data: data, out: out)
        optimiser.apply(to: &config)
        modelOptions.apply(to: &config)
        if let labelFraction { config.labelFraction = labelFraction }
        if let labelSelection { config.labelSelection = labelSelection }
        config.repeats = repeats; config.stepsPerEpoch = stepsPerEpoch; config.initEncoder = initEncoder
        if let lacWeight { config.lacWeight = lacWeight }
        seedOptions.apply(to: &config)
        config.augment = augment == .basic ? AugmentChoice.basic.rawValue : nil
        config.foregroundOversample = foregroundOversample
        config.percentileAugment = percentileAugment
        config.intensityAugment = intensityAugment
        config.checkpoint = checkpoint?.rawValue
        if let averageLast { config.averageLast = averageLast }
        if semiSupervised {
            var semi = MeanTeacher.Settings()
            if let pseudoThreshold { semi.threshold = pseudoThreshold }
            if let unlabelledWeight { semi.weight = unlabelledWeight }
            semi.momentum = teacherMomentum
            config.semiSupervised = semi
        }
        config.device = deviceOptions.index
        config.format = dataOptions.formatName; config.modalities = dataOptions.modalityList
        config.splitSeed = dataOptions.splitSeed ?? 0; config.splitFile = dataOptions.splitFile
        return config
    }

    func run() throws {
        let resume = runFolder.resume, data = runFolder.data, out = runFolder.out, syncBn = runFolder.syncBn
        try runReportingErrors {
            installInterruptHandler()
            let trainer: Trainer
            if let resume {
                let record = try readRunRecord(resume)
                var config = record.config
                config.out = resume
                if let epochs = optimiser.epochs { config.epochs = epochs }
                try config.validate()
                let backend = try deviceOptions.open()
                trainer = try rankZeroFirst { try Trainer(config: config, backend: backend, resume: true) }
                if let comm = Distributed.current { try trainer.enableDataParallel(comm, syncBatchNorm: syncBn) }
                if Distributed.current?.isRoot ?? true { FileHandle.standardError.write("resuming \(resume) after epoch \(trainer.epoch) on \(backend.name)\(ranksNote)\n".data(using: .utf8)!) }
            } else if let data, let out {
                let config = newConfig(data: data, out: out)
                try config.validate()
                let backend = try deviceOptions.open()
                trainer = try rankZeroFirst { try Trainer(config: config, backend: backend) }
                let root = Distributed.current?.isRoot ?? true
                if let initEncoder {
                    let report = try trainer.loadEncoder(from: initEncoder)
                    if root {
                        if let note = Checkpoint.freshHeadNote(report, path: initEncoder) {
                            print("loaded \(report.loaded.count) tensors from \(initEncoder); " + note)
                        } else {
                            print("loaded \(report.loaded.count) \(report.fresh.isEmpty ? "" : "encoder ")tensors from \(initEncoder); \(report.fresh.count) initialised fresh\(report.fresh.isEmpty ? "" : " (decoder, head, lac)")")
                        }
                    }
                }
                if let comm = Distributed.current { try trainer.enableDataParallel(comm, syncBatchNorm: syncBn) }
                if root {
                print("training on \(backend.name)\(ranksNote): \(trainer.split.labelled.count) labelled, \(trainer.split.validation.count) validation, \(trainer.split.unlabelled.count) unlabelled image(s); \(trainer.stepsPerEpoch) step(s) of \(config.batch) per epoch")
                let empty = masksWithoutLesion(trainer.split.labelled + trainer.split.validation)
                if !empty.isEmpty { print("\(empty.count) mask(s) without lesion pixels (allowed): \(listPreview(empty))") }
                }
            } else { return }
            try trainer.run()
            if interruptRequested != 0 { throw ExitCode(130) }   // stopped by Ctrl-C after writing last.safetensors
            guard Distributed.current?.isRoot ?? true else { return }
            print(String(format: "validation Dice %.4f (%@; best %.4f); model: %@/model.safetensors", trainer.modelDice,
                         trainer.config.keepsBest ? "best epoch" : "final epoch", trainer.bestDice, trainer.config.out))
        }
    }
}
