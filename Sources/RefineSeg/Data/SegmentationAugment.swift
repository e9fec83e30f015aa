import Foundation

/// Training augmentation for segmentation, after nnU-Net v2's default 2-D transforms
/// (`nnUNetTrainer.get_training_transforms`), applied on the host by the `BatchLoader`'s thread:
///
/// - crop: with probability `foregroundOversample` (nnU-Net: 1/3 of a batch) the crop is centred
///   on a random lesion pixel of the image (when it has one), else placed uniformly;
/// - spatial (one resampling): rotation by an angle in [−π, π) (p 0.2), scaling by a factor in
///   [0.7, 1.4] (p 0.2; > 1 zooms out), elastic deformation (p `elasticP`: a smooth random
///   displacement field of up to `elasticMagnitude`·S pixels; nnU-Net v2 ships it off, 0 here too
///   unless set), then mirroring along each axis (p 0.5 each). Image bilinear, mask bilinear
///   thresholded at 0.5, out-of-image coordinates reflected;
/// - intensity: Gaussian noise (p 0.1, variance U(0, 0.1) of the crop's std²), Gaussian blur
///   (p 0.2, σ U(0.5, 1)), multiplicative brightness (p 0.15, U(0.75, 1.25)), contrast
///   (p 0.15, U(0.75, 1.25) about the mean, clipped to the crop's range), low-resolution
///   simulation (p 0.25, down by U(0.5, 1) nearest, up bilinear), gamma on the inverted image
///   (p 0.1) and on the image (p 0.3), γ U(0.7, 1.5), mean and std kept;
/// - percentile re-normalisation (not in nnU-Net; p `renormaliseP`, before the intensity
///   transforms): the crop is normalised as docs/MODEL.md's per-image normalisation would have
///   done with other percentiles, x' = (x − P_a) / (P_{100−b} − P_a) with the tails a, b drawn
///   from `PercentileTable.tails` (0.01–1 %, log-spaced) and P over the whole image. The
///   normalisation's 1st percentile lies in the background when lesions cover < 1 % of an image
///   (early `bacteria` frames: dark colonies at −1.4, later frames at +0.1), so a model trained
///   on such images alone learns a lesion level that images with more lesion never show; this
///   shows it the same image as it would look with a different lesion share. Each end is
///   also, with probability 1/2, moved outwards by up to `renormaliseExtension` (1) times
///   P_{100−b} − P_a: the image as it would be normalised with brighter or darker objects
///   elsewhere in it (the `dsb` tiles with a few very bright nuclei show the others at half the
///   level; later `bacteria` frames' bright halos compress the colony contrast ~5×). Volume
///   slices (normalised per volume) are left out.
/// - intensity rescaling (not in nnU-Net; p `intensityScaleP`, off by default, after the
///   re-normalisation): the crop is multiplied by a factor drawn log-uniformly from
///   `intensityScaleRange` (1/3–3). The normalisation divides by the image's 99.8th percentile,
///   so a few very bright objects put everything else at a lower level: the `dsb` tiles with
///   bright nuclei show their nuclei at 0.24–0.36 against 0.50–0.63 in the others. At p 0.5 it
///   raised the Dice of `dsb` models on tiles of the other kind, but it cost `bacteria` (where
///   the background, not 0, is the reference level) more than it gave (docs/study-real), so it
///   is an option (`--intensity-augment`), not the default.
///
/// Every random number comes from the caller's seeded generator in a fixed order, so a seed
/// gives the same crops on every run.
public struct SegmentationAugmentation: Codable, Equatable, Sendable {
    public var foregroundOversample: Double = 1.0 / 3.0
    public var rotationP: Double = 0.2
    public var scaleP: Double = 0.2
    public var scaleRange: ClosedRange<Double> = 0.7...1.4
    public var elasticP: Double = 0
    public var elasticMagnitude: Double = 0.06
    public var mirrorP: Double = 0.5
    public var noiseP: Double = 0.1
    public var blurP: Double = 0.2
    public var brightnessP: Double = 0.15
    public var contrastP: Double = 0.15
    public var lowResP: Double = 0.25
    public var gammaInvertedP: Double = 0.1
    public var gammaP: Double = 0.3
    public var renormaliseP: Double = 0.3
    public var renormaliseExtension: Double = 1
    public var intensityScaleP: Double = 0
    public var intensityScaleRange: ClosedRange<Double> = (1.0 / 3)...3

    public init() {}

    /// nnU-Net v2's default 2-D probabilities.
    public static let nnunet = SegmentationAugmentation()

    /// No spatial or intensity change beyond a uniform crop (for tests and ablations).
    public static var none: SegmentationAugmentation {
        var a = SegmentationAugmentation()
        a.foregroundOversample = 0; a.rotationP = 0; a.scaleP = 0; a.elasticP = 0; a.mirrorP = 0
        a.noiseP = 0; a.blurP = 0; a.brightnessP = 0; a.contrastP = 0; a.lowResP = 0; a.gammaInvertedP = 0; a.gammaP = 0
        a.renormaliseP = 0; a.intensityScaleP = 0
        return a
    }

    /// The spatial part drawn for one crop: output (y, x) reads source (y', x') =
    /// centre + A·(mirrored (y, x) − S/2 + elastic(y, x)), in pixel-index coordinates.
    struct Geometry {
        var centreY: Double, centreX: Double
        var a00 = 1.0, a01 = 0.0, a10 = 0.0, a11 = 1.0
        var flipY = false, flipX = false
        /// Displacement on a coarse (g, g) grid, bilinearly interpolated over the crop (nil: none).
        var elastic: (grid: Int, dy: [Double], dx: [Double])?
    }

    func drawGeometry(_ s: Sample, foreground: [Int], size: Int, rng: inout SeededRandom) -> Geometry {
        let half = Double(size) / 2
        var cy: Double, cx: Double
        if rng.unitDouble() < foregroundOversample && !foreground.isEmpty {
            let i = foreground[Int(rng.next() % UInt64(foreground.count))]
            cy = Double(i / s.width); cx = Double(i % s.width)
        } else {
            // A uniform crop at whole-pixel offsets inside the image (centred when it is smaller).
            cy = s.height > size ? half + Double(rng.next() % UInt64(s.height - size + 1)) : Double(s.height) / 2
            cx = s.width > size ? half + Double(rng.next() % UInt64(s.width - size + 1)) : Double(s.width) / 2
        }
        var g = Geometry(centreY: cy, centreX: cx)
        var angle = 0.0, scale = 1.0
        if rng.unitDouble() < rotationP { angle = (rng.unitDouble() * 2 - 1) * Double.pi }
        if rng.unitDouble() < scaleP { scale = scaleRange.lowerBound + rng.unitDouble() * (scaleRange.upperBound - scaleRange.lowerBound) }
        g.a00 = cos(angle) * scale; g.a01 = -sin(angle) * scale; g.a10 = sin(angle) * scale; g.a11 = cos(angle) * scale
        if rng.unitDouble() < elasticP {
            let grid = 5, mag = elasticMagnitude * Double(size)
            var dy = [Double](), dx = [Double]()
            for _ in 0..<(grid * grid) { dy.append((rng.unitDouble() * 2 - 1) * mag); dx.append((rng.unitDouble() * 2 - 1) * mag) }
            g.elastic = (grid, dy, dx)
        }
        g.flipY = rng.unitDouble() < mirrorP; g.flipX = rng.unitDouble() < mirrorP
        return g
    }

    /// One augmented S×S crop of `s`: image (C, S, S) and mask (S, S). `foreground` lists the
    /// lesion pixel indices of `s` (see `foregroundIndices`); `percentiles` is `s`'s table for
    /// the re-normalisation (nil: made here, which sorts the image; the loader keeps one per image).
    public func apply(_ s: Sample, foreground: [Int], size: Int, percentiles: PercentileTable? = nil,
                      rng: inout SeededRandom) -> (image: [Float], mask: [Float]) {
        let g = drawGeometry(s, foreground: foreground, size: size, rng: &rng)
        let n = size * size, c = s.channels, h = s.height, w = s.width
        var image = [Float](repeating: 0, count: c * n)
        var mask = [Float](repeating: 0, count: n)
        let mid = Double(size / 2)
        let maskData = s.mask
        s.image.withUnsafeBufferPointer { src in
            for y in 0..<size {
                for x in 0..<size {
                    var oy = Double(g.flipY ? size - 1 - y : y) - mid, ox = Double(g.flipX ? size - 1 - x : x) - mid
                    if let e = g.elastic {
                        let (ddy, ddx) = Self.interpolate(e, y: Double(y), x: Double(x), size: size)
                        oy += ddy; ox += ddx
                    }
                    let sy = g.centreY + g.a00 * oy + g.a01 * ox
                    let sx = g.centreX + g.a10 * oy + g.a11 * ox
                    let (y0, y1, fy) = Self.reflectPair(sy, h), (x0, x1, fx) = Self.reflectPair(sx, w)
                    for k in 0..<c {
                        let b = k * h * w
                        let top = src[b + y0 * w + x0] * (1 - fx) + src[b + y0 * w + x1] * fx
                        let bottom = src[b + y1 * w + x0] * (1 - fx) + src[b + y1 * w + x1] * fx
                        image[k * n + y * size + x] = top * (1 - fy) + bottom * fy
                    }
                    if let m = maskData {
                        let top = m[y0 * w + x0] * (1 - fx) + m[y0 * w + x1] * fx
                        let bottom = m[y1 * w + x0] * (1 - fx) + m[y1 * w + x1] * fx
                        mask[y * size + x] = top * (1 - fy) + bottom * fy >= 0.5 ? 1 : 0
                    }
                }
            }
        }
        if renormaliseP > 0 && s.volume == nil && rng.unitDouble() < renormaliseP {
            let table = percentiles ?? PercentileTable(s)
            let a = Int(rng.next() % UInt64(PercentileTable.tails.count)), b = Int(rng.next() % UInt64(PercentileTable.tails.count))
            // Each end, with probability 1/2, moved outwards by up to `renormaliseExtension` times
            // the range: darker or brighter objects elsewhere in the image.
            let below = rng.unitDouble() < 0.5 ? Float(rng.unitDouble() * renormaliseExtension) : 0
            let above = rng.unitDouble() < 0.5 ? Float(rng.unitDouble() * renormaliseExtension) : 0
            for k in 0..<c {
                let range = table.high[k][b] - table.low[k][a]
                let lo = table.low[k][a] - below * range, hi = table.high[k][b] + above * range
                let scale = 1 / max(hi - lo, 1e-6)
                for i in (k * n)..<((k + 1) * n) { image[i] = (image[i] - lo) * scale }
            }
        }
        if intensityScaleP > 0 && rng.unitDouble() < intensityScaleP {
            let lo = log(intensityScaleRange.lowerBound), hi = log(intensityScaleRange.upperBound)
            let factor = Float(exp(lo + rng.unitDouble() * (hi - lo)))
            for i in image.indices { image[i] *= factor }
        }
        applyIntensity(&image, channels: c, size: size, rng: &rng)
        return (image, mask)
    }

    /// Bilinear neighbours (reflected into 0..<n) and weight of the second, for a real coordinate.
    @inline(__always) static func reflectPair(_ v: Double, _ n: Int) -> (Int, Int, Float) {
        let f = v.rounded(.down)
        let i = Int(f)
        return (reflectIndex(i, n), reflectIndex(i + 1, n), Float(v - f))
    }

    @inline(__always) static func interpolate(_ e: (grid: Int, dy: [Double], dx: [Double]), y: Double, x: Double, size: Int) -> (Double, Double) {
        let g = e.grid
        let gy = y / Double(max(size - 1, 1)) * Double(g - 1), gx = x / Double(max(size - 1, 1)) * Double(g - 1)
        let y0 = min(Int(gy), g - 2), x0 = min(Int(gx), g - 2)
        let fy = gy - Double(y0), fx = gx - Double(x0)
        func at(_ a: [Double]) -> Double {
            let t = a[y0 * g + x0] * (1 - fx) + a[y0 * g + x0 + 1] * fx
            let b = a[(y0 + 1) * g + x0] * (1 - fx) + a[(y0 + 1) * g + x0 + 1] * fx
            return t * (1 - fy) + b * fy
        }
        return (at(e.dy), at(e.dx))
    }

    /// nnU-Net's intensity transforms in its order, per channel.
    func applyIntensity(_ image: inout [Float], channels: Int, size: Int, rng: inout SeededRandom) {
        let n = size * size
        func stats(_ k: Int) -> (mean: Float, std: Float, lo: Float, hi: Float) {
            var sum: Float = 0, sq: Float = 0, lo = Float.infinity, hi = -Float.infinity
            for i in (k * n)..<((k + 1) * n) { let v = image[i]; sum += v; sq += v * v; lo = min(lo, v); hi = max(hi, v) }
            let mean = sum / Float(n)
            return (mean, max(sq / Float(n) - mean * mean, 0).squareRoot(), lo, hi)
        }
        if rng.unitDouble() < noiseP {
            let variance = Float(rng.unitDouble() * 0.1)
            for k in 0..<channels {
                let std = variance.squareRoot() * max(stats(k).std, 1e-3)
                for i in (k * n)..<((k + 1) * n) { image[i] += rng.normal() * std }
            }
        }
        if rng.unitDouble() < blurP {
            for k in 0..<channels where rng.unitDouble() < 0.5 {
                let sigma = Float(0.5 + rng.unitDouble() * 0.5)
                let plane = gaussianBlur(Array(image[(k * n)..<((k + 1) * n)]), channels: 1, size: size, sigma: sigma)
                image.replaceSubrange((k * n)..<((k + 1) * n), with: plane)
            }
        }
        if rng.unitDouble() < brightnessP {
            let m = Float(0.75 + rng.unitDouble() * 0.5)
            for i in image.indices { image[i] *= m }
        }
        if rng.unitDouble() < contrastP {
            let f = Float(0.75 + rng.unitDouble() * 0.5)
            for k in 0..<channels {
                let st = stats(k)
                for i in (k * n)..<((k + 1) * n) { image[i] = min(max((image[i] - st.mean) * f + st.mean, st.lo), st.hi) }
            }
        }
        if rng.unitDouble() < lowResP {
            for k in 0..<channels where rng.unitDouble() < 0.5 {
                let zoom = 0.5 + rng.unitDouble() * 0.5
                let small = max(1, Int((Double(size) * zoom).rounded()))
                var down = [Float](repeating: 0, count: small * small)
                for y in 0..<small { for x in 0..<small {
                    let sy = min(size - 1, Int((Double(y) + 0.5) * Double(size) / Double(small)))
                    let sx = min(size - 1, Int((Double(x) + 0.5) * Double(size) / Double(small)))
                    down[y * small + x] = image[k * n + sy * size + sx]
                } }
                let up = resizeBilinear(down, channels: 1, height: small, width: small, toHeight: size, toWidth: size)
                image.replaceSubrange((k * n)..<((k + 1) * n), with: up)
            }
        }
        for (p, inverted) in [(gammaInvertedP, true), (gammaP, false)] where rng.unitDouble() < p {
            // batchgenerators: half the time γ < 1, else γ > 1.
            let gamma = Float(rng.unitDouble() < 0.5 ? 0.7 + rng.unitDouble() * 0.3 : 1 + rng.unitDouble() * 0.5)
            for k in 0..<channels {
                let st = stats(k)
                let range = max(st.hi - st.lo, 1e-7)
                for i in (k * n)..<((k + 1) * n) {
                    var v = (image[i] - st.lo) / range
                    if inverted { v = 1 - v }
                    v = pow(max(v, 0), gamma)
                    if inverted { v = 1 - v }
                    image[i] = v * range + st.lo
                }
                // Keep the mean and std of the plane (nnU-Net's retain_stats).
                let after = stats(k)
                let scale = after.std > 1e-7 ? st.std / after.std : 1
                for i in (k * n)..<((k + 1) * n) { image[i] = (image[i] - after.mean) * scale + st.mean }
            }
        }
    }
}

/// An image's values at its low and high percentiles, per channel, for the percentile
/// re-normalisation of `SegmentationAugmentation` (numpy.percentile's rule, as docs/MODEL.md's
/// normalisation). The image is already normalised, an increasing affine map, so its
/// percentiles are the normalised percentiles of the raw image.
public struct PercentileTable: Sendable {
    /// Tails in percent, log-spaced from 0.01 to 1 (17 values).
    public static let tails: [Double] = (0...16).map { pow(10, -2 + Double($0) / 8) }
    /// low[c][i]: channel c at percentile tails[i]; high[c][i]: at 100 − tails[i].
    public let low: [[Float]], high: [[Float]]

    public init(_ s: Sample) {
        let plane = s.height * s.width
        var low = [[Float]](), high = [[Float]]()
        for c in 0..<s.channels {
            let sorted = s.image[(c * plane)..<((c + 1) * plane)].sorted()
            low.append(Self.tails.map { percentile(sorted: sorted, $0) })
            high.append(Self.tails.map { percentile(sorted: sorted, 100 - $0) })
        }
        self.low = low; self.high = high
    }
}

/// Indices (row-major) of the lesion pixels of a sample's mask; empty without a mask.
public func foregroundIndices(_ s: Sample) -> [Int] {
    guard let m = s.mask else { return [] }
    var out = [Int]()
    for (i, v) in m.enumerated() where v > 0 { out.append(i) }
    return out
}

extension SeededRandom {
    /// A uniform Double in [0, 1) (24 random bits, as `nextUnit`).
    @inline(__always) mutating func unitDouble() -> Double { Double(nextUnit()) }
}
