import ArgumentParser
import Foundation
import RefineSeg

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train DFR-UNet on a dataset folder; writes RUN/model.safetensors (best validation Dice), last.safetensors, log.csv, config.json.")

    @Option(help: "Dataset folder (train/images, train/masks, test/…, optional val/…).") var data: String?
    @Option(help: "Run folder to write.") var out: String?
    @Option(help: "Fraction of the labelled training images whose masks are used, in (0, 1].") var labelFraction: Double = 1.0
    @Option(help: "Optimiser steps per epoch, each a batch drawn with replacement from the labelled images (default: one pass over all training images, labelled or not, so every label fraction trains as many steps).") var stepsPerEpoch: Int?
    @Option(name: .customLong("repeat"), help: "Earlier versions' epoch length: ⌈R × labelled / batch⌉ steps per epoch (use --steps-per-epoch).") var repeats: Int?
    @Option(name: .customLong("init"), help: "Checkpoint to start from: an encoder from `refineseg pretrain`, or a trained RUN/model.safetensors (all of it: fine-tuning, e.g. after `refineseg ingest`).") var initEncoder: String?
    @Option(help: "Epochs.") var epochs: Int = 40
    @Option(help: "Batch size (under mpirun/srun: the global batch, split over the ranks).") var batch: Int = 8
    @Option(help: "Training crop size (a multiple of 16); busi and isic2018 images are resized to size×size.") var size: Int = 128
    @Option(help: "Base width w of the network.") var width: Int = 16
    @Option(help: "Peak learning rate (AdamW, warm-up then cosine decay).") var lr: Double = 2e-3
    @Option(help: "Weight β of the lesion-aware contrastive loss (0 turns it off).") var lacWeight: Double = 0.1
    @Option(help: "Random seed (weights, split, order, augmentation).") var seed: UInt64 = 0
    @Option(help: "Training augmentation: nnunet (nnU-Net's rotation, scaling, mirroring, noise, blur, brightness, contrast, low resolution, gamma; 1/3 of crops centred on a lesion) or basic (crop, flips, 90° turns).") var augment: String = "nnunet"
    @Option(help: "Share of training crops centred on a lesion pixel (nnunet augmentation).") var foregroundOversample: Double?
    @Option(help: "Continue the run in this folder from its last.safetensors.") var resume: String?
    @Flag(help: "Under mpirun/srun: batch-norm statistics over the global batch (all ranks), not per rank.") var syncBn = false
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if resume == nil && (data == nil || out == nil) { throw ValidationError("--data and --out are required (or --resume RUN)") }
    }

    func run() throws {
        try runReportingErrors {
            installInterruptHandler()
            let trainer: Trainer
            if let resume {
                let record = try readRunRecord(resume)
                var config = record.config
                config.out = resume
                if epochs != 40 { config.epochs = epochs }
                try config.validate()
                let backend = try deviceOptions.open()
                trainer = try rankZeroFirst { try Trainer(config: config, backend: backend, resume: true) }
                if let comm = Distributed.current { try trainer.enableDataParallel(comm, syncBatchNorm: syncBn) }
                if Distributed.current?.isRoot ?? true { FileHandle.standardError.write("resuming \(resume) after epoch \(trainer.epoch) on \(backend.name)\(ranksNote)\n".data(using: .utf8)!) }
            } else if let data, let out {
                var config = TrainConfig(data: data, out: out)
                config.labelFraction = labelFraction; config.repeats = repeats; config.stepsPerEpoch = stepsPerEpoch; config.initEncoder = initEncoder; config.epochs = epochs
                config.batch = batch; config.size = size; config.width = width; config.lr = lr
                config.lacWeight = lacWeight; config.seed = seed; config.device = deviceOptions.index
                config.augment = augment == "nnunet" ? nil : augment; config.foregroundOversample = foregroundOversample
                config.format = dataOptions.formatName; config.modalities = dataOptions.modalityList
                config.splitSeed = dataOptions.splitSeed; config.splitFile = dataOptions.splitFile
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
            print(String(format: "best validation Dice %.4f; model: %@/model.safetensors", trainer.bestDice, trainer.config.out))
        }
    }
}
