import Foundation

/// Bilinear sample of plane `c` of (C, H, W) data at real coordinates (y, x), edges clamped.
@inline(__always) func bilinear(_ data: [Float], c: Int, h: Int, w: Int, y: Float, x: Float) -> Float {
    let yy = min(max(y, 0), Float(h - 1)), xx = min(max(x, 0), Float(w - 1))
    let y0 = Int(yy), x0 = Int(xx), y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
    let fy = yy - Float(y0), fx = xx - Float(x0)
    let base = c * h * w
    let top = data[base + y0 * w + x0] * (1 - fx) + data[base + y0 * w + x1] * fx
    let bottom = data[base + y1 * w + x0] * (1 - fx) + data[base + y1 * w + x1] * fx
    return top * (1 - fy) + bottom * fy
}

/// The augmentation of one Barlow Twins view (docs/MODEL.md): random resized crop (area 0.5–1,
/// aspect 3/4–4/3) to S×S, flips, 90° rotations, brightness/contrast jitter (±0.4),
/// gaussian blur with probability `blurP`, additive gaussian noise, solarize with probability `solarizeP`.
public struct ViewAugmentation: Sendable {
    public var blurP: Float
    public var solarizeP: Float
    public var jitter: Float = 0.4
    public var noiseStd: Float = 0.05

    public static let view1 = ViewAugmentation(blurP: 1.0, solarizeP: 0.0)
    public static let view2 = ViewAugmentation(blurP: 0.1, solarizeP: 0.2)

    public init(blurP: Float, solarizeP: Float) { self.blurP = blurP; self.solarizeP = solarizeP }

    /// One augmented S×S view of `s` (C, S, S).
    public func apply(_ s: Sample, size: Int, rng: inout SeededRandom) -> [Float] {
        let c = s.channels, h = s.height, w = s.width
        // Random resized crop.
        let area = Float(h * w) * rng.uniform(0.5, 1.0)
        let aspect = exp(rng.uniform(log(3.0 / 4.0), log(4.0 / 3.0)))
        let ch = min(Float(h), (area / aspect).squareRoot()), cw = min(Float(w), (area * aspect).squareRoot())
        let oy = rng.uniform(0, Float(h) - ch + 1e-3), ox = rng.uniform(0, Float(w) - cw + 1e-3)
        let symmetry = SquareSymmetry(&rng)
        var out = [Float](repeating: 0, count: c * size * size)
        for y in 0..<size {
            for x in 0..<size {
                let (yy, xx) = symmetry.source(y, x, size: size)
                // Pixel centres of the S×S grid mapped into the crop box.
                let sy = oy + (Float(yy) + 0.5) * ch / Float(size) - 0.5
                let sx = ox + (Float(xx) + 0.5) * cw / Float(size) - 0.5
                for k in 0..<c { out[(k * size + y) * size + x] = bilinear(s.image, c: k, h: h, w: w, y: sy, x: sx) }
            }
        }
        // Brightness and contrast jitter (around the view's mean).
        let brightness = rng.uniform(-jitter, jitter) * 0.5, contrast = 1 + rng.uniform(-jitter, jitter)
        let mean = out.reduce(0, +) / Float(max(out.count, 1))
        for i in out.indices { out[i] = (out[i] - mean) * contrast + mean + brightness }
        if rng.nextUnit() < blurP { out = gaussianBlur(out, channels: c, size: size, sigma: rng.uniform(0.1, 2.0)) }
        for i in out.indices { out[i] += rng.normal() * noiseStd }
        if rng.nextUnit() < solarizeP { for i in out.indices where out[i] > 0.5 { out[i] = 1 - out[i] } }
        return out
    }
}

/// Separable gaussian blur of (C, S, S) planes, radius ⌈3σ⌉, edges clamped.
func gaussianBlur(_ data: [Float], channels: Int, size: Int, sigma: Float) -> [Float] {
    gaussianBlur(data, channels: channels, height: size, width: size, sigma: sigma)
}

/// Separable gaussian blur of (C, H, W) planes, radius ⌈3σ⌉, edges clamped.
func gaussianBlur(_ data: [Float], channels: Int, height: Int, width: Int, sigma: Float) -> [Float] {
    let r = max(1, Int((3 * sigma).rounded(.up)))
    var kernel = (-r...r).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
    let total = kernel.reduce(0, +)
    kernel = kernel.map { $0 / total }
    var tmp = data, out = data
    for c in 0..<channels {
        let base = c * height * width
        for y in 0..<height { for x in 0..<width {
            var acc: Float = 0
            for (k, wgt) in kernel.enumerated() { acc += wgt * data[base + y * width + min(max(x + k - r, 0), width - 1)] }
            tmp[base + y * width + x] = acc
        } }
        for y in 0..<height { for x in 0..<width {
            var acc: Float = 0
            for (k, wgt) in kernel.enumerated() { acc += wgt * tmp[base + min(max(y + k - r, 0), height - 1) * width + x] }
            out[base + y * width + x] = acc
        } }
    }
    return out
}
