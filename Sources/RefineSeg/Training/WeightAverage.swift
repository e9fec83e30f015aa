import Foundation

/// The uniform average of the weights over the last part of a run (stochastic weight averaging,
/// Izmailov et al. 2018, over the tail of the cosine schedule instead of a cyclic one): the
/// model `train` saves and evaluates with `TrainConfig.averageLast` > 0.
///
/// Every tensor of the model, the batch-norm running statistics included, is averaged over the
/// weights after each of the last `steps` optimiser steps: `average += θ / steps` in place after
/// every update of the window (one `accumulate` per tensor; nothing before the window), so after
/// the last step `average` is the mean of the `steps` models. The batch-norm statistics are the
/// mean of the running estimates, i.e. of the statistics of the window's batches (each running
/// estimate spans about ten batches); the weights move little at the tail of the cosine schedule,
/// so they fit the averaged weights without a re-estimation pass.
///
/// Why: with 1–2 labelled images the last epochs' models differ by up to 0.27 in validation Dice
/// (docs/study-real), so the final model is one draw of that noise; the average is its mean.
public final class WeightAverage {
    /// The steps averaged and the global step (1-based, after its update) the window starts after.
    public let steps: Int
    public let startAfter: Int
    let model: DFRUNet
    let backend: Backend
    /// The running sum of θ / steps, one tensor per model tensor (nil before the window).
    private(set) var sum: [(String, Tensor)]?
    /// Steps added so far.
    public private(set) var added = 0

    /// Tensor names of the sum in RUN/last.safetensors (`Checkpoint` accepts the prefix).
    static let prefix = "average."

    /// The average of the last ⌈share · totalSteps⌉ steps (at least 1, at most all).
    public init(model: DFRUNet, backend: Backend, share: Double, totalSteps: Int) {
        let total = max(totalSteps, 1)
        steps = min(total, max(1, Int((share * Double(total)).rounded(.up))))
        startAfter = total - steps
        self.model = model
        self.backend = backend
    }

    /// After the update of global step `step` (1-based): adds the model to the sum if the step is
    /// in the window. Queues device work only; never waits.
    public func update(afterStep step: Int) throws {
        guard step > startAfter, added < steps else { return }
        let params = model.namedParameters()
        if sum == nil { sum = try params.map { ($0.0, try backend.zeros($0.1.value.shape)) } }
        let alpha = 1 / Float(steps)
        for ((_, s), (_, p)) in zip(sum!, params) { try backend.accumulate(s, p.value, alpha: alpha) }
        added += 1
    }

    /// True once every step of the window is in the sum.
    public var isComplete: Bool { added == steps }

    /// A model holding the average (new tensors; the trained model is left as it is).
    public func averagedModel() throws -> DFRUNet {
        guard let sum, isComplete else { throw RefineSegError.invalidArgument("the weight average is incomplete (\(added) of \(steps) steps)") }
        let averaged = try DFRUNet(backend, config: model.config, seed: 0)
        for ((_, a), (_, s)) in zip(averaged.namedParameters(), sum) { a.value = try backend.copy(s) }
        return averaged
    }

    /// The sum's tensors for RUN/last.safetensors (empty before the window), so `--resume`
    /// continues the average.
    public func checkpointTensors() -> [(String, Tensor)] {
        (sum ?? []).map { (Self.prefix + $0.0, $0.1) }
    }

    /// Metadata of RUN/last.safetensors: the steps in the saved sum.
    public var checkpointMetadata: [String: String] { ["average_added": "\(added)"] }

    /// Restores the sum from RUN/last.safetensors after a resume to global step `step`. A file
    /// written at Ctrl-C holds the steps of the unfinished epoch too, which the resumed run does
    /// again: the sum is then rescaled to count as the steps before `step`.
    public func restore(_ file: SafeTensorsFile, step: Int) throws {
        added = max(0, min(step - startAfter, steps))
        guard added > 0 else { sum = nil; return }
        let saved = file.metadata["average_added"].flatMap(Int.init) ?? added
        var byName = [String: (shape: [Int], values: [Float])]()
        for t in file.tensors where t.name.hasPrefix(Self.prefix) { byName[String(t.name.dropFirst(Self.prefix.count))] = (t.shape, t.values) }
        sum = try model.namedParameters().map { name, p in
            guard let t = byName[name] else {
                throw RefineSegError.io(file: "last.safetensors", message: "lacks the weight average's \(Self.prefix + name) (step \(step) is in the averaged window)")
            }
            let scale = Float(added) / Float(max(saved, 1))
            return (name, try backend.tensor(saved == added ? t.values : t.values.map { $0 * scale }, shape: Shape(t.shape)))
        }
    }
}
