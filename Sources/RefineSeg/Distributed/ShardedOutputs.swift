import Foundation

/// Exact, lossless encodings of result rows (doubles as their bit patterns), so that parts
/// merged on rank 0 or by `--merge` sort and average exactly as one process would.
protocol RowCodec {
    associatedtype Row
    associatedtype Wire: Codable
    static func wire(_ row: Row) -> Wire
    static func row(_ wire: Wire) -> Row
}

extension RowCodec {
    static func encode(_ rows: [Row]) throws -> Data { try JSONEncoder().encode(rows.map(wire)) }
    static func decode(_ data: Data, file: String) throws -> [Row] {
        do { return try JSONDecoder().decode([Wire].self, from: data).map(row) } catch {
            throw RefineSegError.io(file: file, message: "not a RefineSeg part file (\(error.localizedDescription))")
        }
    }
}

enum ReviewRowCodec: RowCodec {
    struct Wire: Codable { var name: String; var entropy: UInt64; var lesion: UInt64; var width: Int; var height: Int }
    static func wire(_ r: ReviewRow) -> Wire {
        Wire(name: r.name, entropy: r.meanEntropy.bitPattern, lesion: r.lesionFraction.bitPattern, width: r.width, height: r.height)
    }
    static func row(_ w: Wire) -> ReviewRow {
        ReviewRow(name: w.name, meanEntropy: Double(bitPattern: w.entropy), lesionFraction: Double(bitPattern: w.lesion),
                  width: w.width, height: w.height)
    }
}

enum ImageMetricsCodec: RowCodec {
    struct Wire: Codable {
        var name: String; var dice: UInt64; var iou: UInt64; var tj: UInt64; var fpComponents: Int; var hd95: UInt64?
        var tp: Int; var fp: Int; var fn: Int; var tn: Int
    }
    static func wire(_ r: ImageMetrics) -> Wire {
        Wire(name: r.name, dice: r.dice.bitPattern, iou: r.iou.bitPattern, tj: r.thresholdedJaccard.bitPattern,
             fpComponents: r.fpComponents, hd95: r.hd95?.bitPattern, tp: r.tp, fp: r.fp, fn: r.fn, tn: r.tn)
    }
    static func row(_ w: Wire) -> ImageMetrics { ImageMetrics(wire: w) }
}

extension ImageMetrics {
    init(wire w: ImageMetricsCodec.Wire) {
        name = w.name; dice = Double(bitPattern: w.dice); iou = Double(bitPattern: w.iou)
        thresholdedJaccard = Double(bitPattern: w.tj); fpComponents = w.fpComponents
        hd95 = w.hd95.map { Double(bitPattern: $0) }
        tp = w.tp; fp = w.fp; fn = w.fn; tn = w.tn
    }
}

extension Communicator {
    /// Every rank's rows, concatenated in rank order, on rank 0 (nil on the others).
    func gatherRows<C: RowCodec>(_ rows: [C.Row], _ codec: C.Type) throws -> [C.Row]? {
        guard let parts = try gather(try C.encode(rows)) else { return nil }
        return try parts.enumerated().flatMap { i, d in try C.decode(d, file: "rank \(i)") }
    }
}

/// The part folders OUT/part-K-of-N/ of a job array: all N must be there (each with `file`).
func partFolders(in out: String, needing file: String) throws -> [String] {
    let fm = FileManager.default
    let entries = (try? fm.contentsOfDirectory(atPath: out)) ?? []
    var counts = Set<Int>()
    for e in entries where e.hasPrefix("part-") {
        let bits = e.split(separator: "-")
        if bits.count == 4, bits[2] == "of", let n = Int(bits[3]) { counts.insert(n) }
    }
    guard let n = counts.first else {
        throw RefineSegError.io(file: out, message: "holds no part-K-of-N folders to merge (written by --num-parts N --part-id K)")
    }
    guard counts.count == 1 else {
        throw RefineSegError.io(file: out, message: "holds parts of different --num-parts (\(counts.sorted().map(String.init).joined(separator: ", "))); remove the stale ones")
    }
    let folders = (0..<n).map { "\(out)/\(Shard(count: n, index: $0).folderName)" }
    let missing = folders.indices.filter { !fm.fileExists(atPath: folders[$0] + "/" + file) }
    guard missing.isEmpty else {
        throw RefineSegError.io(file: out, message: "part(s) \(missing.map(String.init).joined(separator: ", ")) of \(n) are not finished (no \(file)); nothing merged")
    }
    return folders
}

/// Merges OUT/part-K-of-N/ of `annotate --num-parts N` into OUT as one run would have written
/// it (masks, probabilities, overlays, review.csv), then removes the parts. Returns the rows.
@discardableResult
public func mergeAnnotationParts(out: String) throws -> [ReviewRow] {
    let fm = FileManager.default
    let folders = try partFolders(in: out, needing: "rows.json")
    var rows = [ReviewRow]()
    for f in folders {
        let path = f + "/rows.json"
        rows += try ReviewRowCodec.decode(try Data(contentsOf: URL(fileURLWithPath: path)), file: path)
    }
    let subfolders = ["masks", "probabilities", "overlays"]
    let staging = try prepareStaging(out: out, subfolders: subfolders, comm: nil)
    defer { try? fm.removeItem(atPath: staging) }
    for f in folders {
        for sub in subfolders {
            for name in try fm.contentsOfDirectory(atPath: f + "/" + sub) {
                try fm.copyItem(atPath: "\(f)/\(sub)/\(name)", toPath: "\(staging)/\(sub)/\(name)")
            }
        }
    }
    rows.sort { $0.meanEntropy != $1.meanEntropy ? $0.meanEntropy > $1.meanEntropy : $0.name < $1.name }
    try publish(subfolders + (try writeReview(rows, in: staging)), from: staging, to: out)
    for f in folders { try? fm.removeItem(atPath: f) }
    return rows
}

/// `evaluate` of one part of the samples: with `comm` every rank scores its block and rank 0
/// gets every row in the original order (the others get nil); with `shard` alone the part's rows.
/// `tta` and `postProcessing` as in the one-process `evaluate`.
public func evaluate(model: DFRUNet, backend: Backend, samples: [Sample], progress: ProgressPrinter?,
                     shard: Shard, comm: Communicator?, tta: Bool = false, postProcessing: PostProcessing = .none) throws -> MetricAccumulator? {
    try shard.validate()
    let part = comm.map { Shard(count: $0.size, index: $0.rank) } ?? shard
    let mine = try evaluate(model: model, backend: backend, samples: part.slice(samples), progress: progress,
                            tta: tta, postProcessing: postProcessing)
    guard let comm else { return mine }
    guard let rows = try comm.gatherRows(mine.rows, ImageMetricsCodec.self) else { return nil }
    var all = MetricAccumulator()
    for r in rows { all.add(r) }
    return all
}

/// Writes a part of `evaluate --num-parts N` to OUT/part-K-of-N/ (rows.json last, so a part
/// with rows.json is complete).
public func writeEvaluationPart(_ metrics: MetricAccumulator, to out: String, shard: Shard) throws {
    let dir = out + "/" + shard.folderName
    try writeEvaluation(metrics, to: dir)
    try writeAtomically(try ImageMetricsCodec.encode(metrics.rows), to: dir + "/rows.json")
}

/// Merges OUT/part-K-of-N/ of `evaluate --num-parts N` into OUT/metrics.json and
/// OUT/per_image.csv (identical to one process), then removes the parts.
@discardableResult
public func mergeEvaluationParts(out: String) throws -> MetricAccumulator {
    let folders = try partFolders(in: out, needing: "rows.json")
    var all = MetricAccumulator()
    for f in folders {
        let path = f + "/rows.json"
        for r in try ImageMetricsCodec.decode(try Data(contentsOf: URL(fileURLWithPath: path)), file: path) { all.add(r) }
    }
    try writeEvaluation(all, to: out)
    for f in folders { try? FileManager.default.removeItem(atPath: f) }
    return all
}
