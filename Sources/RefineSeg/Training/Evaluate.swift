import Foundation

/// Predicts every image of a labelled split and computes docs/MODEL.md's metrics.
/// With `tta`, mirror test-time augmentation; `postProcessing` is applied to each thresholded mask.
public func evaluate(model: DFRUNet, backend: Backend, samples: [Sample], progress: ProgressPrinter? = nil,
                     tta: Bool = false, postProcessing: PostProcessing = .none) throws -> MetricAccumulator {
    var cases = CaseAssembler()
    return try evaluate(model: model, backend: backend, samples: samples, progress: progress, tta: tta, postProcessing: postProcessing, cases: &cases)
}

/// The same, and slices of volumes (`Sample.volume`) also stacked into `cases` for per-case
/// (3-D) metrics.
public func evaluate(model: DFRUNet, backend: Backend, samples: [Sample], progress: ProgressPrinter? = nil,
                     tta: Bool = false, postProcessing: PostProcessing = .none, cases: inout CaseAssembler) throws -> MetricAccumulator {
    var predictor = Predictor(model: model, backend: backend)
    predictor.mirrorTTA = tta
    var metrics = MetricAccumulator()
    for (i, s) in samples.enumerated() {
        guard let mask = s.mask else { continue }
        guard s.channels == model.config.inChannels else {
            throw RefineSegError.io(file: s.path, message: "has \(s.channels) channel(s) but the model takes \(model.config.inChannels)")
        }
        let predicted = try score(s, mask: mask, predictor: predictor, into: &metrics, postProcessing: postProcessing)
        if let at = s.volume, s.original == nil {
            cases.add(at, height: s.height, width: s.width, prediction: predicted, label: mask.map { $0 != 0 })
        }
        progress?.update("evaluating \(i + 1)/\(samples.count)")
    }
    return metrics
}

/// Adds one sample's metrics. A sample the loader resized (`original` set) is predicted at its
/// working size, its probabilities resized bilinearly back to the original size and thresholded
/// there, against the original-size mask; any other sample is scored as it is.
/// Returns the (post-processed) predicted mask at the size it was scored at.
@discardableResult
func score(_ s: Sample, mask: [Float], predictor: Predictor, into metrics: inout MetricAccumulator,
           postProcessing: PostProcessing = .none) throws -> [Bool] {
    let (probabilities, height, width) = try scoredProbabilities(s, predictor: predictor)
    let predicted = postProcessing.apply(probabilities.map { $0 > 0.5 }, width: width, height: height)
    let label = try BinaryMask(width: width, height: height, pixels: s.original.map { $0.mask.map { $0 != 0 } } ?? mask.map { $0 != 0 }, op: "label")
    try metrics.add(name: s.name, prediction: BinaryMask(width: width, height: height, pixels: predicted, op: "prediction"), label: label)
    return predicted
}

/// The probabilities a sample is scored on, at the size it is scored at: the working size, or
/// for a sample the loader resized, bilinearly resized back to the original size.
func scoredProbabilities(_ s: Sample, predictor: Predictor) throws -> (probabilities: [Float], height: Int, width: Int) {
    let probabilities = try predictor.probabilities(s)
    if let o = s.original {
        return (resizeBilinear(probabilities, channels: 1, height: s.height, width: s.width, toHeight: o.height, toWidth: o.width), o.height, o.width)
    }
    return (probabilities, s.height, s.width)
}

/// Writes DIR/per_case.csv and DIR/per_case.json (mean and std over cases), atomically.
public func writeCaseEvaluation(_ rows: [CaseMetrics], to dir: String) throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeAtomically(try encoder.encode(CaseMetricsSummary(rows)), to: dir + "/per_case.json")
    try writeAtomically(Data(perCaseCSV(rows).utf8), to: dir + "/per_case.csv")
}

/// Per-case metrics as "mean ± std" lines.
public func caseMetricsTable(_ rows: [CaseMetrics]) -> String {
    let s = CaseMetricsSummary(rows)
    func cell(_ st: CaseMetricsSummary.Stat) -> String {
        guard let m = st.mean, let d = st.std else { return "n/a (no case with both masks non-empty)" }
        return String(format: "%.4f ± %.4f", m, d) + (st.cases < s.cases ? " (\(st.cases) case(s) with both masks non-empty)" : "")
    }
    return "per case (3-D), mean ± std over \(s.cases) case(s):\n  dice \(cell(s.dice))\n  iou  \(cell(s.iou))\n"
        + "  hd95 \(cell(s.hd95Voxels)) voxels, \(cell(s.hd95MM)) mm\n"
}

/// Writes DIR/metrics.json and DIR/per_image.csv (atomically).
public func writeEvaluation(_ metrics: MetricAccumulator, to dir: String, extra: [String: String] = [:]) throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeAtomically(try encoder.encode(metrics.summary()), to: dir + "/metrics.json")
    try writeAtomically(Data(metrics.perImageCSV().utf8), to: dir + "/per_image.csv")
}

/// A short, aligned table of the headline metrics.
public func metricsTable(_ rows: [(String, MetricSummary)]) -> String {
    let cols = ["precision", "recall", "dice", "iou", "miou", "fdr", "fp_comp", "hd95"]
    func cell(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
    let nameWidth = max(8, rows.map(\.0.count).max() ?? 0)
    var text = "run".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + cols.map { cell($0, 10) }.joined() + "\n"
    for (name, m) in rows {
        let values = [m.precision, m.recall, m.dice, m.iou, m.miou, m.fdr, m.fpComponentsMean, m.hd95 ?? .nan]
        text += name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + values.map { cell(String(format: "%.4f", $0), 10) }.joined() + "\n"
    }
    return text
}
