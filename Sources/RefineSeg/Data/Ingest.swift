import Foundation

/// Where a label that `ingestLabels` adds came from.
public enum LabelSource: String, Sendable {
    /// A mask a person corrected (from the corrections folder).
    case corrected
    /// A predicted mask the reviewer accepted on the review page (OUT/masks/NAME.png).
    case acceptedPrediction = "accepted_prediction"
}

/// One label `ingestLabels` added.
public struct IngestedLabel: Sendable {
    public var name: String
    public var source: LabelSource
    public var lesionPixels: Int
    /// Whether the image was already in train/ (its mask was replaced).
    public var replaced: Bool
}

/// What `ingestLabels` did.
public struct IngestReport: Sendable {
    public var added: [IngestedLabel] = []
    /// Images marked "needs correction" in the decisions with no corrected mask yet (skipped).
    public var awaitingCorrection: [String] = []
}

/// Adds labelled images to a folder dataset's training split: the corrected masks in
/// `corrections` (NAME.png, any non-zero pixel is lesion) and, with `decisions` (the review
/// page's review-decisions.csv) and `annotations` (the annotate output), the predicted masks
/// the reviewer accepted. A corrected mask wins over an accepted prediction of the same image.
///
/// For each NAME the image `images`/NAME.(png|jpg|jpeg) is copied to DATA/train/images, the mask
/// is written as 0/255 8-bit PNG to DATA/train/masks/NAME.png, the image leaves
/// DATA/unlabeled/images if it was there, and a row is appended to DATA/provenance.csv
/// (name, source, mask file, image file, lesion pixels, UTC time). An image already in train/
/// (same bytes) gets its mask replaced. Every input is checked before anything is written:
/// a missing image, a mask of another size, an unreadable file, or a name that is a test or
/// validation image of DATA (which must never enter training) refuses the whole ingest with
/// one error naming the file.
@discardableResult
public func ingestLabels(data: String, images: String, corrections: String?, decisions: String? = nil,
                         annotations: String? = nil, now: Date = Date()) throws -> IngestReport {
    let fm = FileManager.default
    _ = try DatasetFolder(data)
    let trainImages = data + "/train/images", trainMasks = data + "/train/masks"
    for dir in [trainImages, trainMasks] where !fm.fileExists(atPath: dir) {
        throw RefineSegError.io(file: dir, message: "not found: --data must be a folder dataset with train/images and train/masks")
    }
    var wanted = [(name: String, mask: String, source: LabelSource)]()   // in name order
    var report = IngestReport()
    var corrected = Set<String>()
    if let corrections {
        let files = try DatasetFolder.imageNames(in: corrections)
        var seen = [String: String]()
        for file in files {
            if let other = seen[stem(file)] {
                throw RefineSegError.io(file: corrections + "/" + file, message: "two corrected masks for \(stem(file)) (also \(other))")
            }
            seen[stem(file)] = file
            wanted.append((stem(file), corrections + "/" + file, .corrected))
            corrected.insert(stem(file))
        }
    }
    if let decisions {
        guard let annotations else {
            throw RefineSegError.io(file: decisions, message: "accepted predictions need --annotations (the annotate output holding masks/)")
        }
        for (name, decision) in try readDecisions(decisions) where !corrected.contains(name) {
            switch decision {
            case "accept": wanted.append((name, "\(annotations)/masks/\(name).png", .acceptedPrediction))
            case "needs_correction": report.awaitingCorrection.append(name)
            default: break
            }
        }
    }
    guard !wanted.isEmpty else {
        throw RefineSegError.io(file: corrections ?? decisions ?? data, message: "nothing to ingest (no corrected masks and no accepted predictions)")
    }
    wanted.sort { $0.name < $1.name }

    // Names the held-out splits use: their images must never become training labels.
    var heldOut = [String: String]()
    for split in ["test", "val"] {
        let dir = "\(data)/\(split)/images"
        if fm.fileExists(atPath: dir) { for f in try DatasetFolder.imageNames(in: dir) { heldOut[stem(f)] = split } }
    }
    let sourceImages = try DatasetFolder.imageNames(in: images)
    let sourceByStem = Dictionary(sourceImages.map { (stem($0), $0) }, uniquingKeysWith: { a, _ in a })
    let trainByStem = Dictionary(((try? DatasetFolder.imageNames(in: trainImages)) ?? []).map { (stem($0), $0) }, uniquingKeysWith: { a, _ in a })

    // Check everything first.
    struct Planned { var name: String; var source: LabelSource; var maskFile: String; var imageFile: String
                     var imageBytes: Data; var mask: RawImage; var lesion: Int; var replaces: String? }
    var plan = [Planned]()
    for w in wanted {
        if let split = heldOut[w.name] {
            throw RefineSegError.io(file: w.mask, message: "\(w.name) is a \(split) image of \(data): held-out images must not enter training")
        }
        guard let imageName = sourceByStem[w.name] else {
            throw RefineSegError.io(file: w.mask, message: "no image \(w.name).png/.jpg in \(images) for this mask")
        }
        let imagePath = images + "/" + imageName
        let image = try readImageFile(imagePath)
        guard fm.fileExists(atPath: w.mask) else { throw RefineSegError.io(file: w.mask, message: "not found (the accepted prediction's mask)") }
        let raw = try readImageFile(w.mask)
        guard raw.width == image.width, raw.height == image.height else {
            throw RefineSegError.io(file: w.mask, message: "mask is \(raw.width)×\(raw.height) but its image \(imagePath) is \(image.width)×\(image.height)")
        }
        let values = raw.maskValues()
        let mask = RawImage(width: raw.width, height: raw.height, channels: 1, bitDepth: 8, samples: values.map { $0 != 0 ? 255 : 0 })
        let bytes = try FileBytes.read(imagePath, maxBytes: 1 << 31)
        var replaces: String? = nil
        if let existing = trainByStem[w.name] {
            let existingPath = trainImages + "/" + existing
            guard try FileBytes.read(existingPath, maxBytes: 1 << 31) == bytes else {
                throw RefineSegError.io(file: imagePath, message: "differs from \(existingPath), a training image of the same name")
            }
            replaces = existing
        }
        plan.append(Planned(name: w.name, source: w.source, maskFile: w.mask, imageFile: imagePath, imageBytes: bytes,
                            mask: mask, lesion: values.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }, replaces: replaces))
    }

    // Then write: images and masks atomically, the provenance rows last.
    let stamp = ISO8601DateFormatter().string(from: now)
    let provenancePath = data + "/provenance.csv"
    var provenance = (try? String(contentsOfFile: provenancePath, encoding: .utf8))
        ?? "name,source,mask_file,image_file,lesion_pixels,replaced,ingested_utc\n"
    let unlabeled = data + "/unlabeled/images"
    for p in plan {
        let imageTarget = trainImages + "/" + (p.replaces ?? (p.name + "." + URL(fileURLWithPath: p.imageFile).pathExtension))
        if p.replaces == nil { try writeAtomically(p.imageBytes, to: imageTarget) }
        try PNGFile.write(p.mask, to: "\(trainMasks)/\(p.name).png")
        // The image is labelled now: it leaves the unlabelled pool (pre-training still sees it in train/).
        for ext in imageExtensions {
            let u = "\(unlabeled)/\(p.name).\(ext)"
            if fm.fileExists(atPath: u), (try? FileBytes.read(u, maxBytes: 1 << 31)) == p.imageBytes { try fm.removeItem(atPath: u) }
        }
        provenance += [csvEscape(p.name), p.source.rawValue, csvEscape(p.maskFile), csvEscape(p.imageFile), "\(p.lesion)",
                       p.replaces == nil ? "no" : "yes", stamp].joined(separator: ",") + "\n"
        report.added.append(IngestedLabel(name: p.name, source: p.source, lesionPixels: p.lesion, replaced: p.replaces != nil))
    }
    try writeAtomically(Data(provenance.utf8), to: provenancePath)
    return report
}

/// The review page's export: (name, decision) per row, decision accept, needs_correction or undecided.
func readDecisions(_ path: String) throws -> [(String, String)] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw RefineSegError.io(file: path, message: "not found or not UTF-8 text")
    }
    let lines = text.split(whereSeparator: \.isNewline).map(String.init)
    guard let header = lines.first.map(parseCSVLine), let ni = header.firstIndex(of: "name"), let di = header.firstIndex(of: "decision") else {
        throw RefineSegError.io(file: path, message: "no name and decision columns: not a review-decisions.csv from review.html")
    }
    var rows = [(String, String)]()
    for (i, line) in lines.dropFirst().enumerated() {
        let fields = parseCSVLine(line)
        guard fields.count > max(ni, di) else { throw RefineSegError.io(file: path, message: "line \(i + 2) has \(fields.count) field(s)") }
        guard ["accept", "needs_correction", "undecided"].contains(fields[di]) else {
            throw RefineSegError.io(file: path, message: "line \(i + 2): unknown decision \"\(fields[di])\" (accept, needs_correction or undecided)")
        }
        rows.append((fields[ni], fields[di]))
    }
    return rows
}

/// One CSV line's fields (RFC 4180 quoting; no newlines inside fields).
func parseCSVLine(_ line: String) -> [String] {
    var fields = [String](), field = "", quoted = false
    var chars = Array(line)[...]
    while let c = chars.popFirst() {
        if quoted {
            if c == "\"" { if chars.first == "\"" { field.append("\""); chars.removeFirst() } else { quoted = false } } else { field.append(c) }
        } else if c == "\"" { quoted = true
        } else if c == "," { fields.append(field); field = ""
        } else { field.append(c) }
    }
    fields.append(field)
    return fields
}
