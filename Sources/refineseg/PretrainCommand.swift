import ArgumentParser
import Foundation
import RefineSeg

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Barlow Twins pre-training of the encoder on every training and unlabelled image (never test); writes RUN/encoder.safetensors.")

    @Option(help: "Dataset folder (with --format, a public dataset as downloaded).") var data: String?
    @Option(help: "Run folder to write.") var out: String?
    @Option(help: "Epochs (default 50; with --resume, the run's own).") var epochs: Int?
    @Option(help: "Batch size (at least 2: the loss standardises over the batch; under mpirun/srun the global batch, split over the ranks).") var batch: Int = 16
    @Option(help: "View size (a multiple of 16).") var size: Int = 128
    @Option(help: "Base width w of the network.") var width: Int = 16
    @Option(help: "Projector dimension d.") var projector: Int = 1024
    @Option(help: "Off-diagonal weight λ of the Barlow Twins loss.") var lambda: Double = 0.0051
    @Option(help: "Peak learning rate (AdamW, warm-up then cosine decay).") var lr: Double = 1e-3
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Continue the pre-training run in this folder from its last.safetensors (with its own settings; --epochs may extend it).") var resume: String?
    @Flag(help: "Under mpirun/srun: the encoder's batch-norm statistics over the global batch (the projector's always are).") var syncBn = false
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if resume == nil && (data == nil || out == nil) { throw ValidationError("--data and --out are required (or --resume RUN)") }
    }

    func run() throws {
        try runReportingErrors {
            installInterruptHandler()
            var config: PretrainConfig
            if let resume {
                config = try readPretrainConfig(resume)
                config.out = resume
                if let epochs { config.epochs = epochs }
            } else if let data, let out {
                config = PretrainConfig(data: data, out: out)
                if let epochs { config.epochs = epochs }
                config.batch = batch; config.size = size; config.width = width
                config.projector = projector; config.lambda = lambda; config.lr = lr; config.seed = seed
                config.device = deviceOptions.index
                config.format = dataOptions.formatName; config.modalities = dataOptions.modalityList
                config.splitSeed = dataOptions.splitSeed; config.splitFile = dataOptions.splitFile
            } else { return }
            try config.validate()
            let backend = try deviceOptions.open()
            let trainer = try rankZeroFirst { try Pretrainer(config: config, backend: backend, resume: resume != nil) }
            if let comm = Distributed.current { try trainer.enableDataParallel(comm, syncBatchNorm: syncBn) }
            let root = Distributed.current?.isRoot ?? true
            if root {
                if let resume {
                    FileHandle.standardError.write(Data("resuming \(resume) after epoch \(trainer.epoch) on \(backend.name)\(ranksNote)\n".utf8))
                } else {
                    print("pre-training on \(backend.name)\(ranksNote) with \(trainer.images.count) image(s)")
                }
            }
            try trainer.run()
            if interruptRequested != 0 { throw ExitCode(130) }   // stopped by Ctrl-C after writing last.safetensors
            guard root else { return }
            print("encoder: \(config.out)/encoder.safetensors (use with `refineseg train --init`)")
        }
    }
}
