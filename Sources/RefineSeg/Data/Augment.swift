import Foundation

/// A training batch on the host: images (N, C, S, S) and masks (N, 1, S, S).
public struct Batch: Sendable {
    public var count: Int
    public var channels: Int
    public var size: Int
    public var images: [Float]
    public var masks: [Float]

    package init(count: Int, channels: Int, size: Int, images: [Float], masks: [Float]) {
        self.count = count; self.channels = channels; self.size = size; self.images = images; self.masks = masks
    }
}

/// Random S×S crop (reflect-padded first if the image is smaller), random horizontal and
/// vertical flips and a random multiple of 90° rotation; image and mask move together.
func augmentedCrop(_ s: Sample, size: Int, rng: inout SeededRandom) -> (image: [Float], mask: [Float]) {
    let h = max(s.height, size), w = max(s.width, size)
    let image = reflectPad(s.image, channels: s.channels, height: s.height, width: s.width, toHeight: h, toWidth: w)
    let mask = reflectPad(s.mask ?? [Float](repeating: 0, count: s.height * s.width), channels: 1,
                          height: s.height, width: s.width, toHeight: h, toWidth: w)
    let oy = Int(rng.next() % UInt64(h - size + 1)), ox = Int(rng.next() % UInt64(w - size + 1))
    let symmetry = SquareSymmetry(&rng)
    /// Source (y, x) in the crop for output (y, x): rotate, then flip.
    func source(_ y: Int, _ x: Int) -> (Int, Int) {
        let (yy, xx) = symmetry.source(y, x, size: size)
        return (oy + yy, ox + xx)
    }
    var outImage = [Float](repeating: 0, count: s.channels * size * size)
    var outMask = [Float](repeating: 0, count: size * size)
    for y in 0..<size {
        for x in 0..<size {
            let (sy, sx) = source(y, x)
            for c in 0..<s.channels { outImage[(c * size + y) * size + x] = image[(c * h + sy) * w + sx] }
            outMask[y * size + x] = mask[sy * w + sx]
        }
    }
    return (outImage, outMask)
}

/// Batches of one epoch in a seeded order, made on a background thread ahead of the device.
/// `@unchecked Sendable`: `queue` and `finished` are only touched with `condition` locked.
public final class BatchLoader: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [Batch] = []
    private var finished = false
    private let capacity: Int

    /// Starts producing the batches of one epoch: `samples` shuffled with `seed`, cut into
    /// batches of `batchSize` (the last one smaller), each image augmented: with `augmentation`
    /// (nnU-Net's transforms, `SegmentationAugmentation`), else by `augmentedCrop` (crop, flips, 90° turns).
    public convenience init(samples: [Sample], batchSize: Int, size: Int, seed: UInt64, capacity: Int = 3,
                            augmentation: SegmentationAugmentation? = nil) {
        self.init(samples: samples, size: size, seed: seed, capacity: capacity, augmentation: augmentation) { rng in
            var order = Array(samples.indices)
            order.shuffle(using: &rng)
            return stride(from: 0, to: order.count, by: batchSize).map { Array(order[$0..<min($0 + batchSize, order.count)]) }
        }
    }

    /// Starts producing `batches` batches of `batchSize` images, each drawn uniformly with
    /// replacement from `samples` (nnU-Net's sampler) and augmented, all from `seed`: any number
    /// of samples, even one, fills any batch.
    public convenience init(drawingWithReplacement samples: [Sample], batches: Int, batchSize: Int, size: Int, seed: UInt64, capacity: Int = 3,
                            augmentation: SegmentationAugmentation? = nil) {
        precondition(!samples.isEmpty && batchSize >= 1)
        self.init(samples: samples, size: size, seed: seed, capacity: capacity, augmentation: augmentation) { rng in
            (0..<batches).map { _ in (0..<batchSize).map { _ in Int(rng.next() % UInt64(samples.count)) } }
        }
    }

    /// Produces the batches `plan` lists (indices into `samples`), in order, on a background thread.
    private init(samples: [Sample], size: Int, seed: UInt64, capacity: Int, augmentation: SegmentationAugmentation?,
                 plan: @escaping @Sendable (inout SeededRandom) -> [[Int]]) {
        self.capacity = capacity
        let thread = Thread { [self] in
            var rng = SeededRandom(seed: seed)
            let foreground = augmentation == nil ? [] : samples.map(foregroundIndices)
            // Percentile tables of the re-normalisation, made when an image is first drawn.
            var tables = [Int: PercentileTable]()
            for idx in plan(&rng) where !idx.isEmpty {
                var images = [Float](), masks = [Float]()
                for i in idx {
                    var table: PercentileTable?
                    if let a = augmentation, a.renormaliseP > 0, samples[i].volume == nil {
                        table = tables[i] ?? PercentileTable(samples[i])
                        tables[i] = table
                    }
                    let (im, m) = augmentation.map { $0.apply(samples[i], foreground: foreground[i], size: size, percentiles: table, rng: &rng) }
                        ?? augmentedCrop(samples[i], size: size, rng: &rng)
                    images += im; masks += m
                }
                self.push(Batch(count: idx.count, channels: samples[idx[0]].channels, size: size, images: images, masks: masks))
            }
            self.finish()
        }
        thread.start()
    }

    private func push(_ b: Batch) {
        condition.lock()
        while queue.count >= capacity { condition.wait() }
        queue.append(b)
        condition.broadcast()
        condition.unlock()
    }

    private func finish() {
        condition.lock(); finished = true; condition.broadcast(); condition.unlock()
    }

    /// The next batch, waiting for the producer if needed; nil at the end of the epoch.
    public func next() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !finished { condition.wait() }
        if queue.isEmpty { return nil }
        let b = queue.removeFirst()
        condition.broadcast()
        return b
    }
}

