import Foundation

/// The voxel axis a volume is cut along into 2-D slices. The names are those of a scan stored
/// in the usual (RAS/LPS-aligned) voxel order: axial slices fix the third voxel index k (rows j,
/// columns i, as BraTS is trained), coronal ones fix j (rows k, columns i), sagittal ones fix i
/// (rows k, columns j).
public enum SliceAxis: String, CaseIterable, Codable, Sendable {
    case axial, coronal, sagittal

    /// Slices, rows and columns of a volume of `dims` [i, j, k].
    public func geometry(_ dims: [Int]) -> (slices: Int, height: Int, width: Int) {
        switch self {
        case .axial: return (dims[2], dims[1], dims[0])
        case .coronal: return (dims[1], dims[2], dims[0])
        case .sagittal: return (dims[0], dims[2], dims[1])
        }
    }

    /// Index into a volume's values (x fastest) of (slice, row, column).
    public func voxel(_ dims: [Int], slice: Int, row: Int, column: Int) -> Int {
        let (i, j, k): (Int, Int, Int)
        switch self {
        case .axial: (i, j, k) = (column, row, slice)
        case .coronal: (i, j, k) = (column, slice, row)
        case .sagittal: (i, j, k) = (slice, column, row)
        }
        return i + dims[0] * (j + dims[1] * k)
    }

    /// Voxel spacing along (slice, row, column) from pixdim [di, dj, dk].
    public func spacing(_ pixdim: [Float]) -> [Double] {
        let p = pixdim.map { Double(abs($0)) }.map { $0 > 0 && $0.isFinite ? $0 : 1 }
        switch self {
        case .axial: return [p[2], p[1], p[0]]
        case .coronal: return [p[1], p[2], p[0]]
        case .sagittal: return [p[0], p[2], p[1]]
        }
    }
}

/// Where a 2-D sample sits in the volume it was cut from, so per-slice predictions can be
/// stacked back into a 3-D prediction of the case for per-case metrics.
public struct VolumeSlice: Sendable, Equatable {
    /// The case (volume) the slice belongs to.
    public var volume: String
    /// Slice index along the cutting axis.
    public var slice: Int
    /// Top-left of the sample in the slice plane (non-zero when the loader cropped the slice).
    public var row: Int = 0
    public var column: Int = 0
    /// Voxel spacing (slice, row, column) in the file's units (millimetres for BraTS).
    public var spacing: [Double]
}

/// docs/MODEL.md's normalisation with volume statistics, per channel:
/// x' = (x − p1) / (p99.8 − p1 + 1e-6) with the percentiles over the foreground voxels (those
/// where any channel is non-zero: the brain of a skull-stripped scan), or over all voxels when
/// every voxel is zero; applied to every voxel, so all slices of a volume share one scale.
/// Returns the foreground.
@discardableResult
public func normalizeVolume(_ channels: inout [[Float]]) -> [Bool] {
    guard let voxels = channels.first?.count else { return [] }
    var foreground = [Bool](repeating: false, count: voxels)
    for v in channels { for i in 0..<voxels where v[i] != 0 { foreground[i] = true } }
    let any = foreground.contains(true)
    for k in channels.indices {
        let sorted = (any ? zip(channels[k], foreground).compactMap { $1 ? $0 : nil } : channels[k]).sorted()
        let lo = percentile(sorted: sorted, 1), hi = percentile(sorted: sorted, 99.8)
        let scale = 1 / (hi - lo + 1e-6)
        for i in 0..<voxels { channels[k][i] = (channels[k][i] - lo) * scale }
    }
    return foreground
}

/// One 2-D plane (rows × columns, row-major) of a volume's channel.
func volumePlane(_ values: ArraySlice<Float>, dims: [Int], axis: SliceAxis, slice: Int) -> [Float] {
    let g = axis.geometry(dims), base = values.startIndex
    var out = [Float](repeating: 0, count: g.height * g.width)
    for r in 0..<g.height { for c in 0..<g.width { out[r * g.width + c] = values[base + axis.voxel(dims, slice: slice, row: r, column: c)] } }
    return out
}

/// Per-case (3-D) metrics, the way BraTS and nnU-Net report them: Dice and IoU over each
/// case's voxels (docs/MODEL.md's formulas: Dice (2|A∩B| + 1) / (|A| + |B| + 1), IoU 1 when
/// both are empty) and HD95 between the 3-D mask surfaces (6-connected, medpy's definition)
/// in voxels and in millimetres (the header's spacing); nil when either mask is empty.
public struct CaseMetrics: Equatable, Sendable {
    public var name: String
    public var dice: Double
    public var iou: Double
    public var hd95Voxels: Double?
    public var hd95MM: Double?
    public var voxels: Int
    public var labelVoxels: Int
    public var predictedVoxels: Int

    /// `prediction` and `label` are (slices, rows, columns) row-major of `dims`; `spacing` per axis.
    public init(name: String, prediction: [Bool], label: [Bool], dims: [Int], spacing: [Double]) {
        precondition(prediction.count == label.count && label.count == dims.reduce(1, *))
        var tp = 0, a = 0, b = 0
        for (p, l) in zip(prediction, label) {
            if p { a += 1 }
            if l { b += 1 }
            if p && l { tp += 1 }
        }
        self.name = name
        voxels = label.count; labelVoxels = b; predictedVoxels = a
        dice = Double(2 * tp + 1) / Double(a + b + 1)
        let union = a + b - tp
        iou = union == 0 ? 1 : Double(tp) / Double(union)
        hd95Voxels = DistanceTransform.hd95(prediction, label, dims: dims, spacing: [1, 1, 1])
        hd95MM = DistanceTransform.hd95(prediction, label, dims: dims, spacing: spacing)
    }
}

/// Per-case metrics of a set of cases, with mean and standard deviation (n − 1) over cases;
/// HD95 statistics are over the cases where it is defined.
public struct CaseMetricsSummary: Codable, Equatable, Sendable {
    public struct Stat: Codable, Equatable, Sendable {
        public var mean: Double?
        public var std: Double?
        public var cases: Int
    }
    public var cases: Int
    public var dice: Stat
    public var iou: Stat
    public var hd95Voxels: Stat
    public var hd95MM: Stat

    enum CodingKeys: String, CodingKey {
        case cases, dice, iou
        case hd95Voxels = "hd95_voxels"
        case hd95MM = "hd95_mm"
    }

    public init(_ rows: [CaseMetrics]) {
        func stat(_ v: [Double]) -> Stat {
            guard !v.isEmpty else { return Stat(mean: nil, std: nil, cases: 0) }
            let mean = v.reduce(0, +) / Double(v.count)
            let variance = v.count > 1 ? v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count - 1) : 0
            return Stat(mean: mean, std: variance.squareRoot(), cases: v.count)
        }
        cases = rows.count
        dice = stat(rows.map(\.dice)); iou = stat(rows.map(\.iou))
        hd95Voxels = stat(rows.compactMap(\.hd95Voxels)); hd95MM = stat(rows.compactMap(\.hd95MM))
    }
}

/// Stacks per-slice binary predictions and labels back into one 3-D array per case.
public struct CaseAssembler: Sendable {
    struct Piece: Sendable { var at: VolumeSlice; var height: Int; var width: Int; var prediction: [Bool]; var label: [Bool] }
    private var pieces: [String: [Piece]] = [:]
    private var order: [String] = []

    public init() {}

    public var isEmpty: Bool { order.isEmpty }

    /// Adds one slice (`height`×`width`, row-major) of a case.
    public mutating func add(_ at: VolumeSlice, height: Int, width: Int, prediction: [Bool], label: [Bool]) {
        if pieces[at.volume] == nil { order.append(at.volume) }
        pieces[at.volume, default: []].append(Piece(at: at, height: height, width: width, prediction: prediction, label: label))
    }

    /// The metrics of every case, in the order cases were first added. Each case spans the
    /// bounding box of its slices (from the first slice index to the last, over the rows and
    /// columns its samples cover); voxels no sample covers count as background in both masks.
    public func cases() -> [CaseMetrics] {
        order.map { name in
            let list = pieces[name] ?? []
            let s0 = list.map(\.at.slice).min() ?? 0, s1 = list.map(\.at.slice).max() ?? 0
            let r0 = list.map(\.at.row).min() ?? 0, r1 = list.map { $0.at.row + $0.height }.max() ?? 0
            let c0 = list.map(\.at.column).min() ?? 0, c1 = list.map { $0.at.column + $0.width }.max() ?? 0
            let dims = [s1 - s0 + 1, r1 - r0, c1 - c0]
            var prediction = [Bool](repeating: false, count: dims.reduce(1, *)), label = prediction
            for p in list {
                for y in 0..<p.height {
                    for x in 0..<p.width {
                        let i = ((p.at.slice - s0) * dims[1] + p.at.row - r0 + y) * dims[2] + p.at.column - c0 + x
                        prediction[i] = p.prediction[y * p.width + x]
                        label[i] = p.label[y * p.width + x]
                    }
                }
            }
            return CaseMetrics(name: name, prediction: prediction, label: label, dims: dims, spacing: list.first?.at.spacing ?? [1, 1, 1])
        }
    }
}

/// per_case.csv: name,dice,iou,hd95_voxels,hd95_mm,label_voxels,predicted_voxels (hd95 empty when undefined).
public func perCaseCSV(_ rows: [CaseMetrics]) -> String {
    var csv = "name,dice,iou,hd95_voxels,hd95_mm,label_voxels,predicted_voxels\n"
    for r in rows {
        let hv = r.hd95Voxels.map { String(format: "%.6f", $0) } ?? "", hm = r.hd95MM.map { String(format: "%.6f", $0) } ?? ""
        csv += "\(csvEscape(r.name)),\(String(format: "%.6f,%.6f", r.dice, r.iou)),\(hv),\(hm),\(r.labelVoxels),\(r.predictedVoxels)\n"
    }
    return csv
}
