/// numpy.percentile's default ("linear"): position q/100·(n−1) between order statistics.
public func percentile(sorted values: [Float], _ q: Double) -> Float {
    precondition(!values.isEmpty)
    let pos = q / 100 * Double(values.count - 1)
    let lo = Int(pos.rounded(.down)), hi = min(lo + 1, values.count - 1)
    let frac = pos - Double(lo)
    return Float(Double(values[lo]) + (Double(values[hi]) - Double(values[lo])) * frac)
}

/// docs/MODEL.md input normalisation, per image and channel: x' = (x − p1) / (p99.8 − p1 + 1e-6), not clipped.
/// `planar` is (C, H·W) in channel-major order.
public func normalizePercentiles(_ planar: [Float], channels: Int) -> [Float] {
    let plane = planar.count / max(channels, 1)
    var out = [Float](repeating: 0, count: planar.count)
    for c in 0..<channels {
        let slice = planar[(c * plane)..<((c + 1) * plane)]
        let sorted = slice.sorted()
        let lo = percentile(sorted: sorted, 1), hi = percentile(sorted: sorted, 99.8)
        let scale = 1 / (hi - lo + 1e-6)
        for i in 0..<plane { out[c * plane + i] = (planar[c * plane + i] - lo) * scale }
    }
    return out
}

/// Index of `i` reflected into 0..<n like numpy's 'reflect' mode (edge not repeated).
@inline(__always) func reflectIndex(_ i: Int, _ n: Int) -> Int {
    if n == 1 { return 0 }
    let period = 2 * (n - 1)
    var j = i % period
    if j < 0 { j += period }
    return j < n ? j : period - j
}

/// Pads (C, H, W) planar data at the bottom and right by reflection to (C, newH, newW).
public func reflectPad(_ planar: [Float], channels: Int, height: Int, width: Int, toHeight newH: Int, toWidth newW: Int) -> [Float] {
    if newH == height && newW == width { return planar }
    var out = [Float](repeating: 0, count: channels * newH * newW)
    for c in 0..<channels {
        for y in 0..<newH {
            let sy = reflectIndex(y, height)
            for x in 0..<newW {
                out[(c * newH + y) * newW + x] = planar[(c * height + sy) * width + reflectIndex(x, width)]
            }
        }
    }
    return out
}

/// The next multiple of 16 at or above `n`.
@inline(__always) public func roundUpTo16(_ n: Int) -> Int { (n + 15) / 16 * 16 }
