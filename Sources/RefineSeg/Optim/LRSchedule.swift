import Foundation

/// Linear warm-up followed by cosine decay, the schedule of HuggingFace's
/// `get_cosine_schedule_with_warmup` with a floor `minLR`.
///
/// For the 0-based step s (the number of optimiser updates already taken, so the first
/// update uses `lr(at: 0)`), with W = `warmupSteps` and T = `totalSteps`:
///
///     s < W:   lr = baseLR · s / W                                   (0 at s = 0, baseLR at s = W)
///     s ≥ W:   lr = minLR + (baseLR − minLR) · ½ · (1 + cos(π · q)),  q = min(1, (s − W) / max(1, T − W))
///
/// so the rate is baseLR at s = W, minLR from s = T on. Evaluated in double precision and
/// rounded to Float once.
public struct WarmupCosineSchedule: Equatable, Sendable {
    public let baseLR: Float
    public let minLR: Float
    public let warmupSteps: Int
    public let totalSteps: Int

    /// Throws `invalidArgument` unless 0 ≤ minLR ≤ baseLR, baseLR > 0 and 0 ≤ warmupSteps ≤ totalSteps.
    public init(baseLR: Float, minLR: Float = 0, warmupSteps: Int, totalSteps: Int) throws {
        guard baseLR > 0, baseLR.isFinite else {
            throw RefineSegError.invalidArgument("learning-rate schedule: base lr \(baseLR) must be positive")
        }
        guard minLR >= 0, minLR <= baseLR else {
            throw RefineSegError.invalidArgument("learning-rate schedule: min lr \(minLR) must lie in [0, \(baseLR)]")
        }
        guard warmupSteps >= 0, totalSteps >= warmupSteps else {
            throw RefineSegError.invalidArgument(
                "learning-rate schedule: warm-up steps \(warmupSteps) must lie in [0, total steps \(totalSteps)]")
        }
        self.baseLR = baseLR; self.minLR = minLR; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// The learning rate of the update with 0-based index `step` (negative steps read as 0).
    public func lr(at step: Int) -> Float {
        let s = max(step, 0)
        let base = Double(baseLR), floor = Double(minLR)
        if s < warmupSteps { return Float(base * Double(s) / Double(warmupSteps)) }
        let q = min(1, Double(s - warmupSteps) / Double(max(1, totalSteps - warmupSteps)))
        return Float(floor + (base - floor) * 0.5 * (1 + cos(Double.pi * q)))
    }
}
