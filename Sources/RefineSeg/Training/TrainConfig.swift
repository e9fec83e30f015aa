import Foundation

/// Every setting of a training run; written to RUN/config.json.
public struct TrainConfig: Codable, Equatable, Sendable {
    public var data: String
    public var format: String = "folder"
    /// BraTS modalities used as channels (nil: all four).
    public var modalities: [String]?
    /// Seed of the test split made for datasets without one (nil: 0).
    public var splitSeed: UInt64?
    /// The split.json to read or write (nil: RUN/split.json).
    public var splitFile: String?
    public var out: String
    public var labelFraction: Double = 1.0
    /// How the labelled images of a fraction are chosen (`LabelSelection`; new configs start at
    /// its default, `.stratified`). nil is a config.json written before the option existed, whose
    /// run (and `--resume`) used the seeded shuffle (`.random`).
    public var labelSelection: LabelSelection? = .default
    public var initEncoder: String?
    public var epochs: Int = 40
    public var batch: Int = 8
    public var size: Int = 128
    public var width: Int = 16
    public var lr: Double = 2e-3
    public var weightDecay: Double = 1e-4
    public var warmupEpochs: Int = 2
    /// Optimiser steps per epoch (nnU-Net's convention: an epoch is a fixed number of steps,
    /// each a batch drawn with replacement from the labelled images). nil: as many steps as one
    /// pass over all training images of the split, labelled or not, in batches of `batch`, so a
    /// run at 10 % labels trains as many steps as the 100 % run (see `resolvedStepsPerEpoch`).
    public var stepsPerEpoch: Int?
    /// `--repeat R` of earlier versions: an epoch of ⌈R · labelled / batch⌉ steps (R passes'
    /// worth over the labelled images). Kept so old command lines and run folders still work.
    public var repeats: Int?
    /// The least number of steps of an epoch when neither `stepsPerEpoch` nor `repeats` sets it:
    /// a dataset of a dozen images otherwise trains 2 steps an epoch, 80 in a 40-epoch run, too few
    /// to converge. New configs start at `defaultMinimumStepsPerEpoch`; nil is a config.json
    /// written before the floor existed, whose run (and `--resume`) had none.
    public var minimumStepsPerEpoch: Int? = TrainConfig.defaultMinimumStepsPerEpoch
    /// 6: on the real benchmark (docs/study-real, 5 seeds, 240 steps instead of 80) it raised
    /// `bacteria` at 10 % (0.898 → 0.911) and 100 % (0.871 → 0.900) and `dsb` at 10 % (0.927 →
    /// 0.938), 20 % (0.916 → 0.935, with `stratified`'s richest images) and 100 % (0.916 → 0.942);
    /// `cho` (55 images: 7 steps an epoch) is unchanged.
    public static let defaultMinimumStepsPerEpoch = 6
    /// The steps of one epoch for `labelled` labelled images out of `trainingImages` training
    /// images (before the label fraction): `stepsPerEpoch`, else `repeats`' rule, else
    /// ⌈trainingImages / batch⌉ but at least `minimumStepsPerEpoch`.
    public func resolvedStepsPerEpoch(labelled: Int, trainingImages: Int) -> Int {
        if let stepsPerEpoch { return stepsPerEpoch }
        if let repeats { return max(1, (labelled * repeats + batch - 1) / batch) }
        return max(1, minimumStepsPerEpoch ?? 1, (max(trainingImages, labelled) + batch - 1) / batch)
    }
    public var seed: UInt64 = 0
    /// Weight β of the lesion-aware contrastive loss (docs/MODEL.md; the paper's 0.1). 0, the
    /// default, turns it off: on the real benchmark it lowered recall and test Dice at every label
    /// fraction of `bacteria` and at 10–20 % on `dsb` (docs/study-real).
    public var lacWeight: Double = 0
    public var device: Int?
    /// Training augmentation: "nnunet" (nil; `SegmentationAugmentation.nnunet`) or "basic"
    /// (random crop, flips and 90° rotations only).
    public var augment: String?
    /// Share of crops centred on a lesion pixel (nil: nnU-Net's 1/3); "nnunet" augmentation only.
    public var foregroundOversample: Double?
    /// Probability of the percentile re-normalisation of a crop (nil: `SegmentationAugmentation`'s
    /// default); "nnunet" augmentation only.
    public var percentileAugment: Double?
    /// Probability of the intensity rescaling of a crop (nil: `SegmentationAugmentation`'s
    /// default); "nnunet" augmentation only.
    public var intensityAugment: Double?
    /// Which weights RUN/model.safetensors holds: "final" (nil; the last epoch's, as nnU-Net's
    /// checkpoint_final) or "best" (the epoch with the best validation Dice).
    public var checkpoint: String?
    /// Semi-supervised fine-tuning on the unlabelled training images (`MeanTeacher`; nil: off).
    public var semiSupervised: MeanTeacher.Settings?

    /// Share of the last optimiser steps whose weights RUN/model.safetensors averages
    /// (`WeightAverage`; 0: the final weights themselves). Applies to the "final" checkpoint
    /// only. New configs start at `defaultAverageLast`; nil is a config.json written before the
    /// option existed, whose run (and `--resume`) keeps the final weights.
    public var averageLast: Double? = TrainConfig.defaultAverageLast
    /// The last quarter: on the real benchmark (docs/study-real, 5 seeds) it raised the weakest
    /// `bacteria` seeds (10 %: 0.812 → 0.856; 20 %: 0.740 → 0.756) and left `cho` and `dsb` as
    /// they were; half or three quarters of the run averaged in undertrained weights.
    public static let defaultAverageLast = 0.25
    public var resolvedAverageLast: Double { averageLast ?? 0 }
    /// True when RUN/model.safetensors holds the average of the last steps' weights.
    public var averagesWeights: Bool { !keepsBest && resolvedAverageLast > 0 }

    /// True when RUN/model.safetensors keeps the epoch with the best validation Dice.
    public var keepsBest: Bool { checkpoint == "best" }

    /// The augmentation the loader applies (nil: the basic crop).
    public func augmentation() -> SegmentationAugmentation? {
        guard (augment ?? "nnunet") == "nnunet" else { return nil }
        var a = SegmentationAugmentation.nnunet
        if let f = foregroundOversample { a.foregroundOversample = f }
        if let p = percentileAugment { a.renormaliseP = p }
        if let p = intensityAugment { a.intensityScaleP = p }
        return a
    }

    public init(data: String, out: String) { self.data = data; self.out = out }

    /// Refuses settings that are out of range, naming the flag.
    public func validate() throws {
        func bad(_ msg: String) -> RefineSegError { .invalidArgument(msg) }
        guard labelFraction > 0, labelFraction <= 1, labelFraction.isFinite else { throw bad("--label-fraction must be in (0, 1] (got \(labelFraction))") }
        guard epochs >= 1 else { throw bad("--epochs must be at least 1 (got \(epochs))") }
        guard batch >= 1 else { throw bad("--batch must be at least 1 (got \(batch))") }
        guard size >= 16, size % 16 == 0 else { throw bad("--size must be a positive multiple of 16 (got \(size))") }
        guard width >= 4, width % 4 == 0 else { throw bad("--width must be a positive multiple of 4 (got \(width))") }
        guard lr.isFinite, lr > 0 else { throw bad("--lr must be a finite positive number (got \(lr))") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw bad("--weight-decay must be finite and ≥ 0 (got \(weightDecay))") }
        guard lacWeight.isFinite, lacWeight >= 0 else { throw bad("--lac-weight must be finite and ≥ 0 (got \(lacWeight))") }
        guard (repeats ?? 1) >= 1 else { throw bad("--repeat must be at least 1 (got \(repeats ?? 1))") }
        guard (stepsPerEpoch ?? 1) >= 1 else { throw bad("--steps-per-epoch must be at least 1 (got \(stepsPerEpoch ?? 1))") }
        guard (minimumStepsPerEpoch ?? 1) >= 1 else { throw bad("the minimum steps per epoch must be at least 1 (got \(minimumStepsPerEpoch ?? 1))") }
        guard repeats == nil || stepsPerEpoch == nil else {
            throw bad("--repeat and --steps-per-epoch both set the length of an epoch: give only --steps-per-epoch")
        }
        guard ["nnunet", "basic"].contains(augment ?? "nnunet") else { throw bad("--augment must be nnunet or basic (got \(augment ?? ""))") }
        if let f = foregroundOversample { guard f >= 0, f <= 1 else { throw bad("--foreground-oversample must be in [0, 1] (got \(f))") } }
        if let p = percentileAugment { guard p >= 0, p <= 1 else { throw bad("--percentile-augment must be in [0, 1] (got \(p))") } }
        if let p = intensityAugment { guard p >= 0, p <= 1 else { throw bad("--intensity-augment must be in [0, 1] (got \(p))") } }
        guard ["final", "best"].contains(checkpoint ?? "final") else { throw bad("--checkpoint must be final or best (got \(checkpoint ?? ""))") }
        if let a = averageLast { guard a >= 0, a <= 1 else { throw bad("--average-last must be in [0, 1] (got \(a))") } }
        try semiSupervised?.validate()
        guard warmupEpochs >= 0 else { throw bad("--warmup-epochs must be ≥ 0 (got \(warmupEpochs))") }
        _ = try datasetSpec()
    }

    /// How to read `data` (format, modalities, working size, split seed).
    public func datasetSpec() throws -> DatasetSpec {
        DatasetSpec(format: try DatasetFormat(parsing: format), modalities: modalities, size: size, splitSeed: splitSeed ?? 0)
    }
}

/// The current git commit of the working directory's repository, or "unknown".
public func gitCommit() -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "rev-parse", "HEAD"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return "unknown" }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return process.terminationStatus == 0 && !text.isEmpty ? text : "unknown"
}
