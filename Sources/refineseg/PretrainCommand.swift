import ArgumentParser
import Foundation
import RefineSeg

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Barlow Twins pre-training of the encoder on every training and unlabelled image (never test); writes RUN/encoder.safetensors.")

    @OptionGroup var runFolder: RunFolderOptions
    @OptionGroup var optimiser: OptimiserOptions
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Projector dimension d (default 1024).") var projector: Int?
    @Option(help: "Off-diagonal weight λ of the Barlow Twins loss (default 0.0051).") var lambda: Double?
    @OptionGroup var seedOptions: SeedOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        let named: [(String, Bool)] = [("--projector", projector != nil), ("--lambda", lambda != nil)]
        try runFolder.refuseWithResume(optimiser.givenBesidesEpochs + modelOptions.given + seedOptions.given + named.filter(\.1).map(\.0) + dataOptions.given)
    }

    func run() throws {
        let resume = runFolder.resume, data = runFolder.data, out = runFolder.out, syncBn = runFolder.syncBn
        try runReportingErrors {
            installInterruptHandler()
            var config: PretrainConfig
            if let resume {
                config = try readPretrainConfig(resume)
                config.out = resume
                if let epochs = optimiser.epochs { config.epochs = epochs }
            } else if let data, let out {
                config = PretrainConfig(data: data, out: out)
                optimiser.apply(to: &config)
                modelOptions.apply(to: &config)
                if let projector { config.projector = projector }
                if let lambda { config.lambda = lambda }
                seedOptions.apply(to: &config)
                config.device = deviceOptions.index
                config.format = dataOptions.formatName; config.modalities = dataOptions.modalityList
                config.splitSeed = dataOptions.splitSeed ?? 0; config.splitFile = dataOptions.splitFile
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
