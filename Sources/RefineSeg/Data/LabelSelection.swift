import Foundation

/// Which training images (groups) a label fraction keeps the masks of.
///
/// - `stratified` (the default): of each of k clusters of the images (k = the number labelled;
///   `diverse`'s k-medoids over standardised per-image descriptors, `LabelSelection.descriptor`)
///   the image with the most `content` (objects standing out from the background; ties: the
///   seed's shuffle decides), so the labelled images cover the kinds of image the data holds and
///   none of the labels goes to a near-empty image where a richer one of its kind exists. One
///   image to label: one cluster, the richest image of all. On the real benchmark (docs/study-real,
///   5 seeds): clustering brought `cho` 10 %'s seed std from 0.042 to 0.013 against the seeded
///   shuffle (the seed that drew three near-empty top slices); the richest image instead of a
///   seeded member took `dsb` 10 % from 0.905 ± 0.050 to 0.927 ± 0.014, `bacteria` 10 % from
///   0.856 ± 0.087 to 0.898 ± 0.009 and `bacteria` 20 % (with the 6-step floor) from 0.882 ±
///   0.038 to 0.898 ± 0.008 (the seeds' picks had included t00–t03, 0.7–0.9 % lesion; two seeds
///   labelled no late frame at all). The cost: `cho` 10 % −0.011 (paired), its richest slices
///   gathering on one time point.
/// - `random`: a seeded shuffle, the paper's protocol (a seed can label two near-identical
///   images, e.g. two early frames of a time-lapse); records without a rule mean this one.
/// - `diverse`: typical images that together cover the data (cold-start selection: the medoids
///   themselves). The seed draws the starting medoids, so seeds differ only where the data has
///   several equally good choices; one image is the most typical image for every seed. Its
///   "typical" `dsb` tile is of the intensity regime the test tiles do not show (10 %: 0.908 →
///   0.805).
public enum LabelSelection: String, Codable, CaseIterable, Sendable {
    case diverse, random, stratified

    public static let `default` = LabelSelection.stratified

    /// Every index of `groups` (each a non-empty list of samples), the `count` to label first.
    /// `diverse` runs k-medoids on the groups' descriptors (the mean over a group's images) and
    /// puts the rest in their given order; `random` is the seeded shuffle `TrainingSplit` has
    /// always used (labelled: its first `count`).
    public func order(_ groups: [[Sample]], labelling count: Int, seed: UInt64) -> [Int] {
        let k = min(max(count, 0), groups.count)
        switch self {
        case .random:
            var order = Array(groups.indices)
            var rng = SeededRandom(seed: seed ^ 0xF4AC)
            order.shuffle(using: &rng)
            return order
        case .diverse:
            guard k < groups.count else { return Array(groups.indices) }
            let chosen = Self.medoids(Self.standardised(Self.groupDescriptors(groups)), count: k, seed: seed)
            let picked = Set(chosen)
            return chosen + groups.indices.filter { !picked.contains($0) }
        case .stratified:
            // The k clusters `diverse` finds; of each, the member with the most `content` (ties:
            // the one `random`'s shuffle puts first). One image to label: one cluster, so the
            // richest image of all, whatever the seed.
            let shuffled = LabelSelection.random.order(groups, labelling: k, seed: seed)
            guard k >= 1, k < groups.count else { return shuffled }
            let content = groups.map { g in g.map(Self.content).reduce(0, +) / Double(g.count) }
            let cluster: [Int]
            if k == 1 {
                cluster = [Int](repeating: 0, count: groups.count)
            } else {
                let points = Self.standardised(Self.groupDescriptors(groups))
                cluster = Self.clusters(points, medoids: Self.medoids(points, count: k, seed: seed))
            }
            var best = [Int: Int]()
            for i in shuffled { if let b = best[cluster[i]], content[b] >= content[i] { continue }; best[cluster[i]] = i }
            let picked = shuffled.filter { best[cluster[$0]] == $0 }
            let first = Set(picked)
            return picked + shuffled.filter { !first.contains($0) }
        }
    }

    /// The index of each point's nearest medoid in `medoids` (Euclidean; ties to the lower index).
    static func clusters(_ points: [[Double]], medoids: [Int]) -> [Int] {
        points.map { p in
            var best = 0
            for c in medoids.indices.dropFirst()
            where squaredDistance(p, points[medoids[c]]) < squaredDistance(p, points[medoids[best]]) { best = c }
            return best
        }
    }

    /// Each group's descriptor: the mean of its images' `descriptor`s.
    static func groupDescriptors(_ groups: [[Sample]]) -> [[Double]] {
        groups.map { g in
            let d = g.map(Self.descriptor)
            return (0..<d[0].count).map { j in d.map { $0[j] }.reduce(0, +) / Double(d.count) }
        }
    }

    static func squaredDistance(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for j in a.indices { let d = a[j] - b[j]; s += d * d }
        return s
    }

    /// What an image looks like to the network, in 7 numbers: the 5th, 25th, 50th, 75th and
    /// 95th percentiles of its normalised intensity (channel mean; docs/MODEL.md's normalisation
    /// maps the 1st and 99.8th to 0 and 1, so these say where the bulk of the image sits between
    /// them: the lesion share and contrast), and the mean and 90th percentile of its gradient
    /// magnitude (texture, edges). Computed on at most ~65k pixels (a regular grid).
    public static func descriptor(_ s: Sample) -> [Double] {
        let h = s.height, w = s.width, plane = h * w
        func value(_ y: Int, _ x: Int) -> Double {
            var v = 0.0
            for c in 0..<s.channels { v += Double(s.image[c * plane + y * w + x]) }
            return v / Double(max(s.channels, 1))
        }
        let stride = Self.gridStride(pixels: plane)
        var values = [Double](), gradients = [Double]()
        for y in Swift.stride(from: 0, to: h, by: stride) {
            for x in Swift.stride(from: 0, to: w, by: stride) {
                let v = value(y, x)
                values.append(v)
                let gx = x + 1 < w ? value(y, x + 1) - v : 0, gy = y + 1 < h ? value(y + 1, x) - v : 0
                gradients.append((gx * gx + gy * gy).squareRoot())
            }
        }
        values.sort(); gradients.sort()
        func percentile(_ sorted: [Double], _ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
        }
        let meanGradient = gradients.isEmpty ? 0 : gradients.reduce(0, +) / Double(gradients.count)
        return [0.05, 0.25, 0.5, 0.75, 0.95].map { percentile(values, $0) } + [meanGradient, percentile(gradients, 0.9)]
    }

    /// The step of the regular grid `descriptor` and `content` sample an image on: at most ~65k
    /// of its `pixels`.
    static func gridStride(pixels: Int) -> Int {
        max(1, Int((Double(pixels) / 65_536).squareRoot().rounded(.up)))
    }

    /// How much of an image stands out from its background, without its mask: the share of
    /// pixels whose smoothed value (Gaussian, σ 1.5 px, on the channel mean of the normalised
    /// image) differs from the smoothed image's median by more than 3 × the noise level (1.4826 ×
    /// the median absolute difference between the image and its smoothed self). Either polarity
    /// counts (bright nuclei, dark lesions). On the real benchmark it ranks the training images
    /// almost as their lesion share does (`bacteria`: frames t00–t10, 0.7–2 % lesion, 0.09–0.17).
    /// Medians on at most ~65k pixels (a regular grid).
    public static func content(_ s: Sample) -> Double {
        let h = s.height, w = s.width, plane = h * w
        guard plane > 0 else { return 0 }
        var mean = [Float](repeating: 0, count: plane)
        for c in 0..<s.channels { for i in 0..<plane { mean[i] += s.image[c * plane + i] } }
        if s.channels > 1 { let scale = 1 / Float(s.channels); for i in 0..<plane { mean[i] *= scale } }
        let smooth = gaussianBlur(mean, channels: 1, height: h, width: w, sigma: 1.5)
        let stride = Self.gridStride(pixels: plane)
        var residual = [Float](), level = [Float]()
        for y in Swift.stride(from: 0, to: h, by: stride) { for x in Swift.stride(from: 0, to: w, by: stride) {
            residual.append(abs(mean[y * w + x] - smooth[y * w + x])); level.append(smooth[y * w + x])
        } }
        func median(_ v: [Float]) -> Float { let s = v.sorted(); return s[s.count / 2] }
        let noise = 1.4826 * median(residual), background = median(level)
        let margin = 3 * max(noise, 1e-6)
        return Double(level.filter { abs($0 - background) > margin }.count) / Double(level.count)
    }

    /// Each feature to mean 0 and standard deviation 1 over the rows (a constant feature to 0).
    static func standardised(_ rows: [[Double]]) -> [[Double]] {
        guard let d = rows.first?.count, rows.count > 1 else { return rows.map { $0.map { _ in 0 } } }
        var out = rows
        for j in 0..<d {
            let mean = rows.map { $0[j] }.reduce(0, +) / Double(rows.count)
            let sd = (rows.map { ($0[j] - mean) * ($0[j] - mean) }.reduce(0, +) / Double(rows.count)).squareRoot()
            for i in rows.indices { out[i][j] = sd > 1e-12 ? (rows[i][j] - mean) / sd : 0 }
        }
        return out
    }

    /// `count` medoids of `points` (k-medoids on Euclidean distance, which an outlier pulls less
    /// than k-means' squared one): seeded k-means++-style starts (the first uniform, each next
    /// drawn with probability ∝ its distance to the nearest chosen), then alternate assigning
    /// every point to its nearest medoid and moving each medoid to the member with the least
    /// total distance to its cluster, until nothing moves. Ties go to the lower index. The
    /// medoids in the order of their clusters' starts.
    static func medoids(_ points: [[Double]], count k: Int, seed: UInt64) -> [Int] {
        let n = points.count
        guard k > 0 else { return [] }
        guard k < n else { return Array(0..<n) }
        let D = (0..<n).map { a in (0..<n).map { b in squaredDistance(points[a], points[b]).squareRoot() } }
        var rng = SeededRandom(seed: seed ^ 0xD1_5E)
        var medoids = [Int(rng.next() % UInt64(n))]
        while medoids.count < k {
            let nearest = (0..<n).map { i in medoids.map { D[i][$0] }.min()! }
            let total = nearest.reduce(0, +)
            var pick = (0..<n).first { !medoids.contains($0) }!
            if total > 0 {
                var r = Double(rng.nextUnit()) * total
                for i in 0..<n where nearest[i] > 0 {
                    pick = i
                    r -= nearest[i]
                    if r < 0 { break }
                }
            }
            medoids.append(pick)
        }
        for _ in 0..<100 {
            var clusters = [[Int]](repeating: [], count: k)
            for i in 0..<n {
                var best = 0
                for c in 1..<k where D[i][medoids[c]] < D[i][medoids[best]] { best = c }
                clusters[best].append(i)
            }
            var moved = false
            for c in 0..<k where !clusters[c].isEmpty {
                var best = medoids[c], bestCost = clusters[c].map { D[medoids[c]][$0] }.reduce(0, +)
                for m in clusters[c] where m == medoids[c] || !medoids.contains(m) {
                    let cost = clusters[c].map { D[m][$0] }.reduce(0, +)
                    if cost < bestCost - 1e-12 || (abs(cost - bestCost) <= 1e-12 && m < best) { best = m; bestCost = cost }
                }
                if best != medoids[c] { medoids[c] = best; moved = true }
            }
            if !moved { break }
        }
        return medoids
    }
}

/// The files to annotate first among `samples` (grouped by `Sample.groupID`, so a volume is one
/// file): `count` groups, else `fraction` of them (rounded, at least one), chosen by `selection`
/// as `TrainingSplit` chooses labelled groups; paths in the order chosen.
public func suggestedFiles(_ samples: [Sample], fraction: Double, count: Int? = nil, seed: UInt64,
                           selection: LabelSelection = .default) -> [String] {
    var groups = TrainingSplit.groups(samples)
    groups.sort { $0[0].groupID < $1[0].groupID }
    let keep = min(groups.count, max(1, count ?? Int((Double(groups.count) * fraction).rounded())))
    var seen = Set<String>(), out = [String]()
    for g in selection.order(groups, labelling: keep, seed: seed).prefix(keep).map({ groups[$0] }) {
        for s in g where seen.insert(s.path).inserted { out.append(s.path) }
    }
    return out
}
