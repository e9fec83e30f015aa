import Foundation
import RefineSeg

extension SegmentationAugmentation {
    /// Median milliseconds to make one batch of `batch` S×S crops with this augmentation from
    /// seeded synthetic 2S×2S images (single-threaded host work, which the `BatchLoader` does on
    /// its own thread while the device runs the previous step), over `repeats` batches.
    public func millisecondsPerBatch(batch: Int, size: Int, channels: Int = 1, repeats: Int = 20, seed: UInt64 = 0) -> Double {
        let big = TrainBench.syntheticBatch(count: batch, channels: channels, size: 2 * size, seed: seed)
        let samples = (0..<batch).map { i in
            Sample(name: "b\(i)", path: "synthetic", channels: channels, height: 2 * size, width: 2 * size,
                   image: Array(big.images[(i * channels * 4 * size * size)..<((i + 1) * channels * 4 * size * size)]),
                   mask: Array(big.masks[(i * 4 * size * size)..<((i + 1) * 4 * size * size)]))
        }
        let foreground = samples.map(foregroundIndices)
        let tables = samples.map { PercentileTable($0) }
        var rng = SeededRandom(seed: seed)
        var times = [Double]()
        for _ in 0..<max(1, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            var images = [Float](), masks = [Float]()
            for ((s, f), t) in zip(zip(samples, foreground), tables) {
                let (im, m) = apply(s, foreground: f, size: size, percentiles: t, rng: &rng)
                images += im; masks += m
            }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            precondition(images.count == batch * channels * size * size && masks.count == batch * size * size)
        }
        return times.sorted()[times.count / 2]
    }
}
