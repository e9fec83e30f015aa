/// Exact Euclidean distance transform and the HD95 surface distance.
///
/// The transform is Felzenszwalb & Huttenlocher's ("Distance Transforms of Sampled
/// Functions", 2012): the 1-D lower envelope of parabolas run over columns, then rows, on
/// squared distances. Squared distances between pixel centres are integers, exact in Double.
package enum DistanceTransform {
    /// Stands in for +∞ in the sampled function: larger than any squared distance in an image
    /// (sides below 10^7), small enough that differences of it stay exact in Double.
    static let far = 1e15

    /// Squared Euclidean distance from every pixel to the nearest `true` pixel of `seeds`
    /// (row-major, `width * height`); `far` everywhere when `seeds` has none.
    static func squaredEDT(_ seeds: [Bool], width: Int, height: Int) -> [Double] {
        var d = seeds.map { $0 ? 0.0 : far }                 // (height, width)
        var column = [Double](repeating: 0, count: height)
        var out = [Double](repeating: 0, count: max(width, height))
        for x in 0..<width {
            for y in 0..<height { column[y] = d[y * width + x] }
            envelope(column, count: height, into: &out)
            for y in 0..<height { d[y * width + x] = out[y] }
        }
        var row = [Double](repeating: 0, count: width)
        for y in 0..<height {
            for x in 0..<width { row[x] = d[y * width + x] }
            envelope(row, count: width, into: &out)
            for x in 0..<width { d[y * width + x] = out[x] }
        }
        return d
    }

    /// Squared Euclidean distance (with `spacing` per axis) from every voxel of a 3-D array
    /// (`dims` [d0, d1, d2], d2 fastest) to the nearest `true` voxel of `seeds`; `far` when none.
    static func squaredEDT(_ seeds: [Bool], dims: [Int], spacing: [Double]) -> [Double] {
        var d = seeds.map { $0 ? 0.0 : far }
        let strides = [dims[1] * dims[2], dims[2], 1]
        var line = [Double](repeating: 0, count: dims.max() ?? 0), out = line
        for axis in 0..<3 {
            let n = dims[axis], stride = strides[axis], w2 = spacing[axis] * spacing[axis]
            let others = (0..<3).filter { $0 != axis }
            for a in 0..<dims[others[0]] {
                for b in 0..<dims[others[1]] {
                    let base = a * strides[others[0]] + b * strides[others[1]]
                    for q in 0..<n { line[q] = d[base + q * stride] }
                    envelope(line, count: n, into: &out, weight: w2)
                    for q in 0..<n { d[base + q * stride] = out[q] }
                }
            }
        }
        return d
    }

    /// Voxels of `mask` (3-D, `dims`) with a 6-neighbour that is background or outside the array.
    static func boundary(_ mask: [Bool], dims: [Int]) -> [Bool] {
        var edge = [Bool](repeating: false, count: mask.count)
        for z in 0..<dims[0] { for y in 0..<dims[1] { for x in 0..<dims[2] {
            let i = (z * dims[1] + y) * dims[2] + x
            guard mask[i] else { continue }
            let interior = z > 0 && z < dims[0] - 1 && y > 0 && y < dims[1] - 1 && x > 0 && x < dims[2] - 1
                && mask[i - 1] && mask[i + 1] && mask[i - dims[2]] && mask[i + dims[2]]
                && mask[i - dims[1] * dims[2]] && mask[i + dims[1] * dims[2]]
            edge[i] = !interior
        } } }
        return edge
    }

    /// medpy's hd95 in 3-D (connectivity 1, `spacing` per axis): the pooled 95th percentile of
    /// the surface distances both ways; nil when either mask is empty.
    static func hd95(_ a: [Bool], _ b: [Bool], dims: [Int], spacing: [Double]) -> Double? {
        guard a.contains(true), b.contains(true) else { return nil }
        let edgeA = boundary(a, dims: dims), edgeB = boundary(b, dims: dims)
        let toA = squaredEDT(edgeA, dims: dims, spacing: spacing), toB = squaredEDT(edgeB, dims: dims, spacing: spacing)
        var distances: [Double] = []
        for i in 0..<edgeA.count where edgeA[i] { distances.append(toB[i].squareRoot()) }
        for i in 0..<edgeB.count where edgeB[i] { distances.append(toA[i].squareRoot()) }
        return percentile(distances, 95)
    }

    /// out[q] = min_p weight·(q − p)² + f[p] for q in 0..<count.
    private static func envelope(_ f: [Double], count n: Int, into out: inout [Double], weight: Double = 1) {
        var v = [Int](repeating: 0, count: n)                 // parabola vertices of the envelope
        var z = [Double](repeating: 0, count: n + 1)          // boundaries between them
        var k = 0
        z[0] = -.infinity
        z[1] = .infinity
        for q in 1..<max(n, 1) {
            var s: Double
            repeat {
                let p = v[k]
                s = ((f[q] + weight * Double(q * q)) - (f[p] + weight * Double(p * p))) / (2 * weight * Double(q - p))
                if s <= z[k] { k -= 1 } else { break }
            } while k >= 0
            k += 1
            v[k] = q
            z[k] = s
            z[k + 1] = .infinity
        }
        k = 0
        for q in 0..<n {
            while z[k + 1] < Double(q) { k += 1 }
            let p = v[k]
            out[q] = weight * Double((q - p) * (q - p)) + f[p]
        }
    }

    /// The 95th percentile of the symmetric boundary distances between `a` and `b`, in pixels;
    /// nil when either mask is empty.
    ///
    /// Exactly medpy.metric.binary.hd95 (voxel spacing 1, connectivity 1): the distances from
    /// each boundary pixel of `a` to the nearest boundary pixel of `b`, and from each boundary
    /// pixel of `b` to the nearest of `a`, pooled into one list, then numpy.percentile(·, 95)
    /// with its default linear interpolation between order statistics.
    static func hd95(_ a: BinaryMask, _ b: BinaryMask) -> Double? {
        precondition(a.width == b.width && a.height == b.height, "hd95 of masks of different size")
        guard !a.isEmpty, !b.isEmpty else { return nil }
        let edgeA = a.boundary(), edgeB = b.boundary()
        let toA = squaredEDT(edgeA, width: a.width, height: a.height)
        let toB = squaredEDT(edgeB, width: a.width, height: a.height)
        var distances: [Double] = []
        for i in 0..<edgeA.count where edgeA[i] { distances.append(toB[i].squareRoot()) }
        for i in 0..<edgeB.count where edgeB[i] { distances.append(toA[i].squareRoot()) }
        return percentile(distances, 95)
    }

    /// numpy.percentile's default ("linear"): position q/100·(n−1) between sorted values.
    package static func percentile(_ values: [Double], _ q: Double) -> Double {
        precondition(!values.isEmpty, "percentile of no values")
        let sorted = values.sorted()
        let position = q / 100 * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let t = position - Double(lower)
        let a = sorted[lower], b = sorted[upper]
        // numpy's _lerp form, so results match it to the last bit.
        return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t
    }
}
