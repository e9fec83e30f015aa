import Foundation

/// Semi-supervised fine-tuning (`train --semi-supervised`, study variant `semi`): a mean teacher
/// (Tarvainen & Valpola 2017) with confidence-thresholded pseudo-labels (FixMatch-style,
/// Sohn et al. 2020), learning from the training images whose masks the label fraction left out.
///
/// Each step, besides the supervised batch (docs/MODEL.md's loss), draws a batch of crops from
/// the unlabelled images (spatial augmentation only: the weak view). The teacher, an exponential
/// moving average of the student's weights and batch-norm statistics, predicts the weak view in
/// eval mode; the student sees the strong view (the same crop after nnU-Net's intensity
/// transforms and a random flip / 90° turn, `SquareSymmetry`, the teacher's prediction turned with it). The target
/// of each pixel is the teacher's hard label where it is confident (max(p, 1 − p) ≥ τ) and its
/// probability elsewhere (mean-teacher consistency); the student's loss adds
/// λ(t) · BCEWithLogits(student, target), λ ramped up as exp(−5 (1 − t/T)²) over the first
/// 30 % of the steps. The teacher is the student at the first step, then
/// teacher ← m · teacher + (1 − m) · student after every update, with
/// m = min(1 − 1/(t + 1), `momentum`) (the mean-teacher warm-up); the default momentum follows
/// the run's length, 1 − 10 / total steps clamped to [0.5, 0.999], so the teacher averages
/// about the last tenth of the run. Only the student is saved and evaluated.
///
/// Deterministic for a seed: the unlabelled batches and their augmentation come from the run's
/// seed and epoch. A run without unlabelled images (100 % labels) trains as plain supervised.
public final class MeanTeacher {
    public struct Settings: Codable, Equatable, Sendable {
        /// Confidence threshold τ of the hard pseudo-labels.
        public var threshold: Double = 0.9
        /// Weight λ of the unlabelled loss (after the ramp-up).
        public var weight: Double = 1.0
        /// EMA momentum of the teacher (nil: 1 − 10 / total steps, clamped to [0.5, 0.999]).
        public var momentum: Double?
        public init() {}

        public func validate() throws {
            guard threshold.isFinite, threshold >= 0.5, threshold <= 1 else {
                throw RefineSegError.invalidArgument("--pseudo-threshold must be in [0.5, 1] (got \(threshold))")
            }
            guard weight.isFinite, weight >= 0 else { throw RefineSegError.invalidArgument("--unlabelled-weight must be finite and ≥ 0 (got \(weight))") }
            if let m = momentum, !(m >= 0 && m < 1) { throw RefineSegError.invalidArgument("--teacher-momentum must be in [0, 1) (got \(m))") }
        }
    }

    public let settings: Settings
    public let teacher: DFRUNet
    let student: DFRUNet
    let backend: Backend
    let unlabelled: [Sample]
    let totalSteps: Int
    let batchSize: Int, size: Int, seed: UInt64
    let augmentation: SegmentationAugmentation
    private var loader: BatchLoader?
    private var synced = false
    /// Share of confident pixels in the last unlabelled batch (for tests and logs).
    public private(set) var lastConfidentShare: Double = 0

    public init(student: DFRUNet, backend: Backend, unlabelled: [Sample], settings: Settings, totalSteps: Int,
                batchSize: Int, size: Int, seed: UInt64, augmentation: SegmentationAugmentation?) throws {
        try settings.validate()
        self.settings = settings
        self.student = student
        self.backend = backend
        self.unlabelled = unlabelled.map { var s = $0; s.mask = nil; return s }
        self.totalSteps = max(totalSteps, 1)
        self.batchSize = batchSize; self.size = size; self.seed = seed
        self.augmentation = augmentation ?? .nnunet
        teacher = try DFRUNet(backend, config: student.config, seed: seed)
    }

    /// The EMA momentum at step `t` (0-based), with the mean-teacher warm-up.
    public func momentum(atStep t: Int) -> Double {
        let target = settings.momentum ?? min(0.999, max(0.5, 1 - 10 / Double(totalSteps)))
        return min(1 - 1 / Double(t + 1), target)
    }

    /// λ at step `t` (0-based): the sigmoid-shaped ramp-up over the first 30 % of the steps.
    public func weight(atStep t: Int) -> Double {
        let rampSteps = max(1.0, 0.3 * Double(totalSteps))
        let x = min(Double(t) / rampSteps, 1)
        return settings.weight * exp(-5 * (1 - x) * (1 - x))
    }

    /// Per-pixel targets from teacher probabilities: 1 or 0 where max(p, 1 − p) ≥ τ, else p.
    /// Also returns how many pixels were confident.
    public static func pseudoTargets(_ probabilities: [Float], threshold: Double) -> (targets: [Float], confident: Int) {
        let t = Float(threshold)
        var confident = 0
        let targets = probabilities.map { p -> Float in
            if p >= t { confident += 1; return 1 }
            if 1 - p >= t { confident += 1; return 0 }
            return p
        }
        return (targets, confident)
    }

    /// Copies every student tensor (parameters and batch-norm statistics) into the teacher.
    public func syncTeacher() throws {
        for ((_, t), (_, s)) in zip(teacher.namedParameters(), student.namedParameters()) { t.value = try backend.copy(s.value) }
        synced = true
    }

    /// teacher ← m · teacher + (1 − m) · student, as new tensors (so the eval-mode batch-norm
    /// fold sees them as changed).
    public func updateTeacher(momentum m: Double) throws {
        for ((_, t), (_, s)) in zip(teacher.namedParameters(), student.namedParameters()) {
            t.value = try backend.add(try backend.scale(t.value, by: Float(m)), try backend.scale(s.value, by: Float(1 - m)))
        }
    }

    /// The weak-view batch of unlabelled crops (spatial augmentation only) for global step `t`,
    /// from one loader that makes the batches of steps t..<total (seeded by the seed and t, so a
    /// resumed run draws its own).
    func nextUnlabelledBatch(step t: Int) -> Batch? {
        guard !unlabelled.isEmpty, t < totalSteps else { return nil }
        if let b = loader?.next() { return b }
        var weak = SegmentationAugmentation.none
        weak.rotationP = augmentation.rotationP; weak.scaleP = augmentation.scaleP; weak.scaleRange = augmentation.scaleRange
        weak.mirrorP = augmentation.mirrorP
        loader = BatchLoader(drawingWithReplacement: unlabelled, batches: totalSteps - t, batchSize: batchSize, size: size,
                             seed: seed ^ 0x5E41_7EAC ^ (UInt64(t) &* 0x9E37_79B9_7F4A_7C15), augmentation: weak)
        return loader?.next()
    }

    /// The strong view of a weak-view batch and its targets: nnU-Net's intensity transforms, then
    /// a random flip / 90° turn (`SquareSymmetry`) applied to the image and to the teacher's targets alike.
    func strongView(_ weak: Batch, targets: [Float], rng: inout SeededRandom) -> (images: [Float], targets: [Float]) {
        let n = weak.size * weak.size, c = weak.channels, s = weak.size
        var images = [Float](), out = [Float]()
        images.reserveCapacity(weak.images.count); out.reserveCapacity(targets.count)
        for b in 0..<weak.count {
            var image = Array(weak.images[(b * c * n)..<((b + 1) * c * n)])
            augmentation.applyIntensity(&image, channels: c, size: s, rng: &rng)
            let symmetry = SquareSymmetry(&rng)
            for k in 0..<c { images += Self.transformed(image[(k * n)..<((k + 1) * n)], size: s, by: symmetry) }
            out += Self.transformed(targets[(b * n)..<((b + 1) * n)], size: s, by: symmetry)
        }
        return (images, out)
    }

    /// An S×S plane under a square symmetry.
    static func transformed(_ plane: ArraySlice<Float>, size s: Int, by symmetry: SquareSymmetry) -> [Float] {
        let base = plane.startIndex
        return (0..<(s * s)).map { i in
            let (y, x) = symmetry.source(i / s, i % s, size: s)
            return plane[base + y * s + x]
        }
    }

    /// Global training step `t` (0-based): the supervised loss on `batch` plus the weighted
    /// unlabelled loss, one backward and one AdamW update, then the teacher update. Returns the
    /// supervised loss (what the log reports, comparable with supervised runs).
    public func step(_ batch: Batch, step t: Int, loss lossFunction: SegmentationLoss, optimizer: AdamW, lr: Float) throws -> Tensor {
        if !synced { try syncTeacher() }
        let n = batch.count, c = batch.channels, s = batch.size
        let g = Graph(backend: backend, training: true)
        let x = try backend.tensor(batch.images, shape: [n, c, s, s])
        let y = try backend.tensor(batch.masks, shape: [n, 1, s, s])
        let out = try student(g.constant(x), g, withEmbedding: lossFunction.beta > 0)
        let (supervised, _) = try lossFunction(out, target: y, g)
        var total = supervised
        let lambda = weight(atStep: t)
        if lambda > 0, let weak = nextUnlabelledBatch(step: t) {
            let m = weak.count
            let teacherGraph = Graph(backend: backend, training: false)
            let logits = try teacher(teacherGraph.constant(try backend.tensor(weak.images, shape: [m, c, s, s])), teacherGraph).logits.value
            let probabilities = try backend.sigmoid(logits).toArray()
            let (targets, confident) = Self.pseudoTargets(probabilities, threshold: settings.threshold)
            lastConfidentShare = Double(confident) / Double(max(targets.count, 1))
            var rng = SeededRandom(seed: seed ^ 0xC0A5_1575 ^ (UInt64(t) &* 0x9E37_79B9_7F4A_7C15))
            let strong = strongView(weak, targets: targets, rng: &rng)
            let xs = try backend.tensor(strong.images, shape: [m, c, s, s])
            let ys = try backend.tensor(strong.targets, shape: [m, 1, s, s])
            let studentOut = try student(g.constant(xs), g)
            let unsupervised = try g.bceWithLogits(studentOut.logits, target: ys)
            total = try g.add(total, try g.scale(unsupervised, by: Float(lambda)))
        }
        try g.backward(total)
        try optimizer.update(lr: lr)
        try updateTeacher(momentum: momentum(atStep: t))
        return supervised.value
    }
}
