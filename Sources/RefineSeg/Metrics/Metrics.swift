import Foundation

/// The segmentation metrics of docs/MODEL.md "Metrics", for one image.
///
/// `A` is the binarised prediction, `B` the binarised label. Conventions where a ratio has
/// a zero denominator (no value is ever NaN):
/// - iou (lesion Jaccard) = |A∩B| / |A∪B|, 1 when both masks are empty;
/// - thresholdedJaccard = iou, or 0 when iou < 0.65 (ISIC 2018 task 1);
/// - dice = (2|A∩B| + 1) / (|A| + |B| + 1), defined everywhere (1 when both are empty);
/// - hd95 is nil when either mask is empty.
public struct ImageMetrics: Equatable, Sendable {
    public var name: String
    public var dice: Double
    public var iou: Double
    public var thresholdedJaccard: Double
    /// 8-connected components of the prediction that touch no lesion pixel.
    public var fpComponents: Int
    /// Boundary HD95 in pixels (see `DistanceTransform.hd95`); nil when either mask is empty.
    public var hd95: Double?
    public var tp: Int
    public var fp: Int
    public var fn: Int
    public var tn: Int

    /// ISIC 2018's threshold below which an image's Jaccard counts as 0.
    public static let jaccardThreshold = 0.65

    public init(name: String, prediction a: BinaryMask, label b: BinaryMask) throws {
        guard a.width == b.width, a.height == b.height else {
            throw RefineSegError.shapeMismatch(
                op: "metrics", detail: "\(name): prediction \(a.width)x\(a.height) vs label \(b.width)x\(b.height)")
        }
        var tp = 0, fp = 0, fn = 0, tn = 0
        for (p, l) in zip(a.pixels, b.pixels) {
            switch (p, l) {
            case (true, true): tp += 1
            case (true, false): fp += 1
            case (false, true): fn += 1
            case (false, false): tn += 1
            }
        }
        self.name = name
        self.tp = tp; self.fp = fp; self.fn = fn; self.tn = tn
        dice = Double(2 * tp + 1) / Double((tp + fp) + (tp + fn) + 1)
        let union = tp + fp + fn
        iou = union == 0 ? 1 : Double(tp) / Double(union)
        thresholdedJaccard = iou < Self.jaccardThreshold ? 0 : iou
        fpComponents = Components.falsePositiveCount(prediction: a, label: b)
        hd95 = DistanceTransform.hd95(a, b)
    }
}

/// Set-level metrics; the JSON keys are exactly docs/MODEL.md's snake_case names.
///
/// Pixel counts (TP, FP, FN, TN) are accumulated over the whole set for precision, recall,
/// fdr, fpr and miou; dice, iou, thresholded_jaccard and fp_components_mean are means over
/// images; hd95 is the mean over the images where it is defined. Zero-denominator conventions:
/// precision = 1 when nothing is predicted (so fdr = 0), recall = 1 when the set has no
/// lesion pixel, fpr = 0 when it has no background pixel, each mIoU class IoU = 1 when that
/// class is absent from both prediction and label; means over no images are 0; hd95 is null
/// (JSON `null`) when no image has both masks non-empty.
public struct MetricSummary: Codable, Equatable, Sendable {
    public var images: Int
    public var precision: Double
    public var recall: Double
    public var dice: Double
    public var iou: Double
    public var miou: Double
    public var thresholdedJaccard: Double
    public var fdr: Double
    public var fpr: Double
    public var fpComponentsMean: Double
    public var fpImageShare: Double
    public var hd95: Double?

    enum CodingKeys: String, CodingKey {
        case precision, recall, dice, iou, miou
        case thresholdedJaccard = "thresholded_jaccard"
        case fdr, fpr
        case fpComponentsMean = "fp_components_mean"
        case fpImageShare = "fp_image_share"
        case hd95
    }

    public init(images: Int, precision: Double, recall: Double, dice: Double, iou: Double, miou: Double,
                thresholdedJaccard: Double, fdr: Double, fpr: Double, fpComponentsMean: Double,
                fpImageShare: Double, hd95: Double?) {
        self.images = images
        self.precision = precision; self.recall = recall; self.dice = dice; self.iou = iou
        self.miou = miou; self.thresholdedJaccard = thresholdedJaccard; self.fdr = fdr; self.fpr = fpr
        self.fpComponentsMean = fpComponentsMean; self.fpImageShare = fpImageShare; self.hd95 = hd95
    }

    // `images` is not one of the report's keys; a decoded summary leaves it 0.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(images: 0,
                  precision: try c.decode(Double.self, forKey: .precision),
                  recall: try c.decode(Double.self, forKey: .recall),
                  dice: try c.decode(Double.self, forKey: .dice),
                  iou: try c.decode(Double.self, forKey: .iou),
                  miou: try c.decode(Double.self, forKey: .miou),
                  thresholdedJaccard: try c.decode(Double.self, forKey: .thresholdedJaccard),
                  fdr: try c.decode(Double.self, forKey: .fdr),
                  fpr: try c.decode(Double.self, forKey: .fpr),
                  fpComponentsMean: try c.decode(Double.self, forKey: .fpComponentsMean),
                  fpImageShare: try c.decode(Double.self, forKey: .fpImageShare),
                  hd95: try c.decodeIfPresent(Double.self, forKey: .hd95))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(precision, forKey: .precision)
        try c.encode(recall, forKey: .recall)
        try c.encode(dice, forKey: .dice)
        try c.encode(iou, forKey: .iou)
        try c.encode(miou, forKey: .miou)
        try c.encode(thresholdedJaccard, forKey: .thresholdedJaccard)
        try c.encode(fdr, forKey: .fdr)
        try c.encode(fpr, forKey: .fpr)
        try c.encode(fpComponentsMean, forKey: .fpComponentsMean)
        try c.encode(fpImageShare, forKey: .fpImageShare)
        // Written as null rather than left out, so every report has the same keys.
        if let hd95 { try c.encode(hd95, forKey: .hd95) } else { try c.encodeNil(forKey: .hd95) }
    }
}

/// Accumulates docs/MODEL.md's metrics over a test set, one image at a time.
///
/// Masks are row-major `width * height`. Predictions are binarised at probability > 0.5
/// (or non-zero for an already binary prediction); labels at non-zero.
public struct MetricAccumulator: Sendable {
    public private(set) var rows: [ImageMetrics] = []
    private var tp = 0, fp = 0, fn = 0, tn = 0

    public init() {}

    /// Adds one image; returns its row.
    @discardableResult
    public mutating func add(name: String, prediction: BinaryMask, label: BinaryMask) throws -> ImageMetrics {
        let row = try ImageMetrics(name: name, prediction: prediction, label: label)
        rows.append(row)
        tp += row.tp; fp += row.fp; fn += row.fn; tn += row.tn
        return row
    }

    /// Adds one image from sigmoid probabilities and a raw label (lesion where non-zero).
    @discardableResult
    public mutating func add(name: String, probabilities: [Float], label: [UInt8],
                             width: Int, height: Int) throws -> ImageMetrics {
        try add(name: name, prediction: BinaryMask(probabilities: probabilities, width: width, height: height),
                label: BinaryMask(label: label, width: width, height: height))
    }

    /// Adds one image from sigmoid probabilities and a float label (lesion where non-zero).
    @discardableResult
    public mutating func add(name: String, probabilities: [Float], label: [Float],
                             width: Int, height: Int) throws -> ImageMetrics {
        try add(name: name, prediction: BinaryMask(probabilities: probabilities, width: width, height: height),
                label: BinaryMask(label: label, width: width, height: height))
    }

    /// Adds one image from an already binary prediction (lesion where non-zero) and a raw label.
    @discardableResult
    public mutating func add(name: String, binaryPrediction: [UInt8], label: [UInt8],
                             width: Int, height: Int) throws -> ImageMetrics {
        try add(name: name, prediction: BinaryMask(label: binaryPrediction, width: width, height: height),
                label: BinaryMask(label: label, width: width, height: height))
    }

    /// Adds a row computed elsewhere (the parts of a sharded evaluation, merged in part order).
    public mutating func add(_ row: ImageMetrics) {
        rows.append(row)
        tp += row.tp; fp += row.fp; fn += row.fn; tn += row.tn
    }

    public func summary() -> MetricSummary {
        func ratio(_ num: Int, _ den: Int, empty: Double) -> Double {
            den == 0 ? empty : Double(num) / Double(den)
        }
        func mean(_ values: [Double]) -> Double {
            values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
        }
        let precision = ratio(tp, tp + fp, empty: 1)
        let iouLesion = ratio(tp, tp + fp + fn, empty: 1)
        let iouBackground = ratio(tn, tn + fp + fn, empty: 1)
        let hd = rows.compactMap(\.hd95)
        return MetricSummary(
            images: rows.count,
            precision: precision,
            recall: ratio(tp, tp + fn, empty: 1),
            dice: mean(rows.map(\.dice)),
            iou: mean(rows.map(\.iou)),
            miou: (iouLesion + iouBackground) / 2,
            thresholdedJaccard: mean(rows.map(\.thresholdedJaccard)),
            fdr: 1 - precision,
            fpr: ratio(fp, fp + tn, empty: 0),
            fpComponentsMean: mean(rows.map { Double($0.fpComponents) }),
            fpImageShare: mean(rows.map { $0.fpComponents > 0 ? 1 : 0 }),
            hd95: hd.isEmpty ? nil : mean(hd))
    }

    /// per_image.csv: a header line and one line per image in the order added.
    /// Columns: name,dice,iou,thresholded_jaccard,fp_components,hd95,tp,fp,fn
    /// (hd95 empty when undefined; names with a comma, quote or newline are quoted).
    public func perImageCSV() -> String {
        var lines = ["name,dice,iou,thresholded_jaccard,fp_components,hd95,tp,fp,fn"]
        for r in rows {
            let hd = r.hd95.map { String($0) } ?? ""
            lines.append("\(csvField(r.name)),\(r.dice),\(r.iou),\(r.thresholdedJaccard),\(r.fpComponents),\(hd),\(r.tp),\(r.fp),\(r.fn)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
