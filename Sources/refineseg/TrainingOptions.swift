import ArgumentParser
import Foundation
import RefineSeg
import RefineSegDiagnostics

// The model and optimiser options, declared once and shared by the commands that build or train
// a DFR-UNet. Every option is optional: nil means "not given", and the command's settings type
// (`TrainConfig`, `PretrainConfig`, `StudySettings`, `TrainBenchSettings`, the demo's) keeps
// its own default, so there is one source of truth for each default and `--resume RUN --epochs N`
// can tell "N given" from "the default".

/// Settings that hold a network shape.
protocol ModelSettings {
    var width: Int { get set }
    var size: Int { get set }
}

/// Settings that hold an optimiser schedule.
protocol OptimiserSettings {
    var epochs: Int { get set }
    var batch: Int { get set }
    var lr: Double { get set }
}

/// Settings that hold a random seed.
protocol SeededSettings {
    var seed: UInt64 { get set }
}

extension TrainConfig: ModelSettings, OptimiserSettings, SeededSettings {}
extension PretrainConfig: ModelSettings, OptimiserSettings, SeededSettings {}
extension StudySettings: ModelSettings, OptimiserSettings {}
extension TrainBenchSettings: ModelSettings, SeededSettings {}

private let trainDefaults = TrainConfig(data: "", out: "")
private let pretrainDefaults = PretrainConfig(data: "", out: "")
private let studyDefaults = StudySettings(data: "", out: "")

/// `--width`, `--size`: the network and its input.
struct ModelOptions: ParsableArguments {
    @Option(help: "Base width w of the network, a multiple of 4 (default \(trainDefaults.width)).")
    var width: Int?
    @Option(help: "Input size, a multiple of 16: the training crop, pre-training view or benchmark input (default \(trainDefaults.size); demo \(DemoCommand.defaultSize)); busi and isic2018 images are resized to size×size.")
    var size: Int?

    /// The options given.
    var given: [String] { (width == nil ? [] : ["--width"]) + (size == nil ? [] : ["--size"]) }

    func apply<S: ModelSettings>(to settings: inout S) {
        if let width { settings.width = width }
        if let size { settings.size = size }
    }
}

/// `--epochs`, `--batch`, `--lr`: AdamW with linear warm-up and cosine decay.
struct OptimiserOptions: ParsableArguments {
    @Option(help: "Epochs (default: train \(trainDefaults.epochs), pretrain \(pretrainDefaults.epochs), study \(studyDefaults.epochs) per run, demo \(DemoCommand.defaultEpochs); with --resume, the run's own unless given).")
    var epochs: Int?
    @Option(help: "Batch size (default: train \(trainDefaults.batch), pretrain \(pretrainDefaults.batch), at least 2 there: the loss standardises over the batch; under mpirun/srun the global batch, split over the ranks).")
    var batch: Int?
    @Option(help: "Peak learning rate of AdamW, warm-up then cosine decay (default: train \(trainDefaults.lr), pretrain \(pretrainDefaults.lr), demo \(DemoCommand.defaultLR)).")
    var lr: Double?

    /// The options given other than `--epochs` (which `--resume` accepts).
    var givenBesidesEpochs: [String] {
        (batch == nil ? [] : ["--batch"]) + (lr == nil ? [] : ["--lr"])
    }

    func apply<S: OptimiserSettings>(to settings: inout S) {
        if let epochs { settings.epochs = epochs }
        if let batch { settings.batch = batch }
        if let lr { settings.lr = lr }
    }
}

/// `--seed`: every random choice of a run.
struct SeedOptions: ParsableArguments {
    @Option(help: "Random seed: weights, data split, batch order, augmentation; the benchmark's synthetic data (default \(trainDefaults.seed)).")
    var seed: UInt64?

    /// The option given.
    var given: [String] { seed == nil ? [] : ["--seed"] }

    func apply<S: SeededSettings>(to settings: inout S) {
        if let seed { settings.seed = seed }
    }
}

/// `--tta/--no-tta`, `--postprocess`: how evaluate and annotate turn the model's output into masks.
struct InferenceOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "Mirror test-time augmentation (mean of 4 mirrored predictions).") var tta = true
    @Option(help: "Post-processing: auto (what training chose on validation, from the checkpoint's metadata) or none.") var postprocess: PostprocessChoice = .auto

    /// The post-processing to apply: the checkpoint's stored choice for `auto`, nothing for `none`.
    func postProcessing(checkpoint: String) throws -> PostProcessing {
        postprocess == .auto ? try PostProcessing.of(checkpoint: checkpoint) : .none
    }
}
