import Foundation

/// One row of OUT/review.csv.
public struct ReviewRow {
    public var name: String
    /// Mean binary entropy of the probabilities, in bits (0 = certain, 1 = coin toss).
    public var meanEntropy: Double
    /// Share of pixels predicted as lesion.
    public var lesionFraction: Double
    public var width: Int
    public var height: Int
}

/// Predicts masks for a folder of images and writes, for a person to review:
/// OUT/masks/NAME.png (0/255), OUT/probabilities/NAME.png (16-bit, p·65535),
/// OUT/overlays/NAME.png (the image with the mask outline), OUT/review.csv
/// (images ranked by mean predictive uncertainty, highest first) and OUT/review.html with
/// OUT/thumbnails/ (the review page, see `writeReviewPage`).
///
/// Everything is written to a staging folder first and moved into OUT at the end, so a
/// failure leaves OUT as it was.
@discardableResult
public func annotate(model: DFRUNet, backend: Backend, imagesDir: String, out: String,
                     progress: ProgressPrinter? = nil, tta: Bool = false, postProcessing: PostProcessing = .none) throws -> [ReviewRow] {
    try annotate(model: model, backend: backend, imagesDir: imagesDir, out: out, progress: progress, shard: .whole, comm: nil,
                 tta: tta, postProcessing: postProcessing)
}

/// `annotate` of one part of the images: with `comm` (an MPI job) each rank predicts its block
/// of the images into one shared staging folder and rank 0 writes review.csv for all of them
/// (the same files as one process; rank 0 returns all rows, the others their own); with `shard` alone (a job
/// array) the part's outputs go to OUT/part-K-of-N/ for `mergeAnnotationParts`. With `tta`,
/// mirror test-time augmentation; `postProcessing` (the checkpoint's, see
/// `PostProcessing.of(checkpoint:)`) is applied to each mask.
@discardableResult
public func annotate(model: DFRUNet, backend: Backend, imagesDir: String, out: String,
                     progress: ProgressPrinter?, shard: Shard, comm: Communicator?,
                     tta: Bool = false, postProcessing: PostProcessing = .none) throws -> [ReviewRow] {
    try shard.validate()
    let names = try DatasetFolder.imageNames(in: imagesDir)
    let part = comm.map { Shard(count: $0.size, index: $0.rank) } ?? shard
    let target = comm == nil && part.count > 1 ? out + "/" + part.folderName : out
    let isRoot = comm?.isRoot ?? true
    let staging = try prepareStaging(out: target, subfolders: ["masks", "probabilities", "overlays"], comm: comm)
    defer { if isRoot { try? FileManager.default.removeItem(atPath: staging) } }
    var predictor = Predictor(model: model, backend: backend)
    predictor.mirrorTTA = tta
    let mine = part.slice(names)
    var rows = [ReviewRow]()
    for (i, file) in mine.enumerated() {
        rows.append(try annotateImage(imagesDir + "/" + file, predictor: predictor, model: model, staging: staging,
                                      postProcessing: postProcessing))
        progress?.update("annotating \(i + 1)/\(mine.count)" + (part.count > 1 ? " (part \(part.index + 1) of \(part.count))" : ""))
    }
    if let comm {
        guard let all = try comm.gatherRows(rows, ReviewRowCodec.self) else {
            try comm.barrier()   // rank 0 publishes; wait until OUT is complete
            return rows
        }
        rows = all
    } else if part.count > 1 {
        try writeAtomically(try ReviewRowCodec.encode(rows), to: staging + "/rows.json")
    }
    rows.sort { $0.meanEntropy != $1.meanEntropy ? $0.meanEntropy > $1.meanEntropy : $0.name < $1.name }
    let review = try writeReview(rows, in: staging)
    try publish(["masks", "probabilities", "overlays"] + review + (comm == nil && part.count > 1 ? ["rows.json"] : []),
                from: staging, to: target)
    try comm?.barrier()
    return rows
}

/// Writes review.csv and the review page (review.html, thumbnails/) for the ranked `rows` whose
/// masks, probabilities and overlays are in `staging`; returns the entries to publish.
func writeReview(_ rows: [ReviewRow], in staging: String) throws -> [String] {
    try writeAtomically(Data(reviewCSV(rows).utf8), to: staging + "/review.csv")
    try writeReviewPage(rows: rows, in: staging)
    return ["review.csv", "review.html", "thumbnails"]
}

/// review.csv: rank, name, mean entropy, lesion share, size; `rows` already ranked.
func reviewCSV(_ rows: [ReviewRow]) -> String {
    var csv = "rank,name,mean_entropy_bits,lesion_fraction,width,height\n"
    for (rank, r) in rows.enumerated() {
        csv += "\(rank + 1),\(csvEscape(r.name)),\(String(format: "%.6f,%.6f", r.meanEntropy, r.lesionFraction)),\(r.width),\(r.height)\n"
    }
    return csv
}

/// Predicts one image and writes its mask, probabilities and overlay into `staging`.
func annotateImage(_ path: String, predictor: Predictor, model: DFRUNet, staging: String,
                   postProcessing: PostProcessing = .none) throws -> ReviewRow {
    let file = (path as NSString).lastPathComponent
    let raw = try readImageFile(path)
    guard raw.channels == model.config.inChannels else {
        throw RefineSegError.io(file: path, message: "has \(raw.channels) channel(s) but the model takes \(model.config.inChannels)")
    }
    let normalised = normalizePercentiles(raw.planarFloats(), channels: raw.channels)
    let sample = Sample(name: stem(file), path: path, channels: raw.channels, height: raw.height, width: raw.width,
                        image: normalised, mask: nil)
    let p = try predictor.probabilities(sample)
    let name = stem(file)
    let mask = postProcessing.apply(p.map { $0 > 0.5 }, width: raw.width, height: raw.height)
    try PNGFile.write(RawImage(width: raw.width, height: raw.height, channels: 1, bitDepth: 8,
                               samples: mask.map { $0 ? 255 : 0 }), to: "\(staging)/masks/\(name).png")
    try PNGFile.write(RawImage(width: raw.width, height: raw.height, channels: 1, bitDepth: 16,
                               samples: p.map { UInt16((min(max($0, 0), 1) * 65535).rounded()) }),
                      to: "\(staging)/probabilities/\(name).png")
    try PNGFile.write(overlay(normalised, channels: raw.channels, width: raw.width, height: raw.height, mask: mask),
                      to: "\(staging)/overlays/\(name).png")
    var entropy = 0.0
    for v in p {
        let q = min(max(Double(v), 1e-7), 1 - 1e-7)
        entropy += -(q * log2(q) + (1 - q) * log2(1 - q))
    }
    return ReviewRow(name: name, meanEntropy: entropy / Double(max(p.count, 1)),
                     lesionFraction: Double(mask.filter { $0 }.count) / Double(max(p.count, 1)),
                     width: raw.width, height: raw.height)
}

/// Creates OUT/.staging-PID with `subfolders` (PID of rank 0 in an MPI job, whose ranks all
/// write there) after removing the staging folders of killed runs.
func prepareStaging(out: String, subfolders: [String], comm: Communicator?) throws -> String {
    let fm = FileManager.default
    var staging = ""
    if comm?.isRoot ?? true {
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        staging = out + "/.staging-\(getpid())"
        try? fm.removeItem(atPath: staging)
        // Staging folders of runs that were killed (their process is gone) are removed.
        for entry in (try? fm.contentsOfDirectory(atPath: out)) ?? [] where entry.hasPrefix(".staging-") {
            if let pid = Int32(entry.dropFirst(".staging-".count)), kill(pid, 0) != 0, errno == ESRCH {
                try? fm.removeItem(atPath: out + "/" + entry)
            }
        }
        for sub in subfolders { try fm.createDirectory(atPath: staging + "/" + sub, withIntermediateDirectories: true) }
    }
    if let comm { staging = String(decoding: try comm.broadcast(Data(staging.utf8)), as: UTF8.self) }
    return staging
}

/// Moves the finished `entries` of `staging` into `out`, replacing earlier ones.
func publish(_ entries: [String], from staging: String, to out: String) throws {
    let fm = FileManager.default
    for entry in entries {
        let target = out + "/" + entry
        if fm.fileExists(atPath: target) { try fm.removeItem(atPath: target) }
        try fm.moveItem(atPath: staging + "/" + entry, toPath: target)
    }
}

func csvEscape(_ s: String) -> String {
    s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

/// The normalised image as 8-bit RGB with the mask outline (lesion pixels touching background) in red.
func overlay(_ planar: [Float], channels: Int, width: Int, height: Int, mask: [Bool]) -> RawImage {
    var samples = [UInt16](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = y * width + x
            let edge = mask[i] && (x == 0 || y == 0 || x == width - 1 || y == height - 1
                                   || !mask[i - 1] || !mask[i + 1] || !mask[i - width] || !mask[i + width])
            for c in 0..<3 {
                let src = planar[(min(c, channels - 1)) * width * height + i]
                let v = UInt16((min(max(src, 0), 1) * 255).rounded())
                samples[i * 3 + c] = edge ? (c == 0 ? 255 : 0) : v
            }
        }
    }
    return RawImage(width: width, height: height, channels: 3, bitDepth: 8, samples: samples)
}
