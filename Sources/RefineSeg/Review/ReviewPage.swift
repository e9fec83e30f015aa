import Foundation

/// What the review page shows for one annotated image (one row of review.csv plus what the
/// page computes from the written mask).
public struct ReviewEntry: Codable, Equatable, Sendable {
    /// Rank in review.csv (1 = most uncertain).
    public var rank: Int
    public var name: String
    /// Mean binary entropy of the probabilities, in bits.
    public var meanEntropy: Double
    /// Lesion pixels of the written mask.
    public var lesionArea: Int
    /// 8-connected components of the written mask; nil when the mask could not be read.
    public var components: Int?
    public var width: Int
    public var height: Int
    /// Whether thumbnails/NAME.overlay.png and thumbnails/NAME.probability.png exist.
    public var hasThumbnails: Bool
}

/// Writes OUT/review.html and OUT/thumbnails/ from what `annotate` wrote in `dir`
/// (masks/, probabilities/, overlays/ named after `rows`, in review.csv order).
///
/// The page is one static file: no server, no network, no external script or font. It refers
/// to the images relatively (overlays/, probabilities/, thumbnails/), so the folder can be moved
/// or copied as a whole. Its list renders only the rows in view and its thumbnails
/// (at most `thumbnailSide` pixels a side) load lazily, so 5,000 images stay quick.
/// Decisions are kept in the browser's local storage and exported as review-decisions.csv.
@discardableResult
public func writeReviewPage(rows: [ReviewRow], in dir: String, title: String = "RefineSeg review",
                            thumbnailSide: Int = 128) throws -> [ReviewEntry] {
    let fm = FileManager.default
    try fm.createDirectory(atPath: dir + "/thumbnails", withIntermediateDirectories: true)
    var entries = [ReviewEntry]()
    entries.reserveCapacity(rows.count)
    for (i, row) in rows.enumerated() {
        var entry = ReviewEntry(rank: i + 1, name: row.name, meanEntropy: row.meanEntropy,
                                lesionArea: Int((row.lesionFraction * Double(row.width * row.height)).rounded()),
                                components: nil, width: row.width, height: row.height, hasThumbnails: false)
        let maskPath = "\(dir)/masks/\(row.name).png"
        if fm.fileExists(atPath: maskPath) {
            let raw = try PNGFile.read(maskPath)
            let mask = try BinaryMask(width: raw.width, height: raw.height, pixels: raw.maskValues().map { $0 != 0 })
            entry.lesionArea = mask.count
            entry.components = Components.count(mask)
        }
        let overlayPath = "\(dir)/overlays/\(row.name).png", probabilityPath = "\(dir)/probabilities/\(row.name).png"
        if fm.fileExists(atPath: overlayPath) && fm.fileExists(atPath: probabilityPath) {
            try writePNGWithoutSync(thumbnail(try PNGFile.read(overlayPath), side: thumbnailSide, keepOutline: true),
                               to: "\(dir)/thumbnails/\(row.name).overlay.png")
            try writePNGWithoutSync(thumbnail(try PNGFile.read(probabilityPath), side: thumbnailSide, keepOutline: false),
                               to: "\(dir)/thumbnails/\(row.name).probability.png")
            entry.hasThumbnails = true
        }
        entries.append(entry)
    }
    try writeAtomically(Data(reviewPageHTML(entries: entries, title: title).utf8), to: dir + "/review.html")
    return entries
}

/// Writes a PNG without fsync, for thumbnails: they are written into annotate's staging folder,
/// which is moved into place as a whole, and 10,000 synced writes would take minutes.
func writePNGWithoutSync(_ image: RawImage, to path: String) throws {
    let data = try PNGFile.encode(image, file: path)
    do { try data.write(to: URL(fileURLWithPath: path)) } catch {
        throw RefineSegError.io(file: path, message: "cannot write (\(error.localizedDescription))")
    }
}

/// An 8-bit copy of `image` whose longer side is at most `side`, by area averaging.
/// With `keepOutline`, a box that holds a pure red pixel (the overlay's mask outline) stays
/// pure red, so thin outlines survive the reduction.
func thumbnail(_ image: RawImage, side: Int, keepOutline: Bool) -> RawImage {
    let scale = max(1, (max(image.width, image.height) + side - 1) / side)
    let w = max(1, image.width / scale), h = max(1, image.height / scale)
    let c = image.channels
    let maxValue = image.bitDepth == 16 ? 65535.0 : 255.0
    var samples = [UInt16](repeating: 0, count: w * h * c)   // (h, w, c)
    for ty in 0..<h {
        for tx in 0..<w {
            var sum = [Double](repeating: 0, count: c)
            var outline = false
            for y in (ty * scale)..<min(image.height, (ty + 1) * scale) {
                for x in (tx * scale)..<min(image.width, (tx + 1) * scale) {
                    let base = (y * image.width + x) * c
                    for k in 0..<c { sum[k] += Double(image.samples[base + k]) }
                    if keepOutline && c == 3 && image.samples[base] == UInt16(maxValue)
                        && image.samples[base + 1] == 0 && image.samples[base + 2] == 0 { outline = true }
                }
            }
            for k in 0..<c {
                let v = outline ? (k == 0 ? 255 : 0) : sum[k] / Double(scale * scale) / maxValue * 255
                samples[(ty * w + tx) * c + k] = UInt16(min(max(v.rounded(), 0), 255))
            }
        }
    }
    return RawImage(width: w, height: h, channels: c, bitDepth: 8, samples: samples)
}

/// The page's JSON data, safe inside a <script> element.
func reviewPageData(_ entries: [ReviewEntry]) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let json = String(decoding: try encoder.encode(entries), as: UTF8.self)
    // "</script>" or "<!--" inside a name must not end the script element.
    return json.replacingOccurrences(of: "<", with: "\\u003c")
}
