import XCTest
@testable import RefineSeg

/// docs/MODEL.md's metrics: golden values from scripts/metrics_reference.py (numpy/scipy, medpy's
/// hd95 algorithm) read from its committed fixture (masks and values), plus hand-computed tiny cases.
final class MetricsTests: XCTestCase {
    /// '#' = lesion, '.' = background; rows top to bottom.
    private func mask(_ art: [String]) throws -> BinaryMask {
        let width = art.first?.count ?? 0
        return try BinaryMask(width: width, height: art.count, pixels: art.flatMap { $0.map { $0 == "#" } })
    }

    /// Tests/RefineSegTests/Fixtures/metrics_reference.json.
    private struct Reference: Decodable {
        struct Image: Decodable {
            let name: String
            let label, prediction: [String]
            let dice, iou, thresholded_jaccard: Double
            let fp_components: Int
            let hd95: Double?
            let tp, fp, fn: Int
        }
        let images: [Image]
        let summary: MetricSummary
    }

    func testTheMetricsFixtureIsWhatTheScriptComputes() throws {
        try assertFixtureIsCurrent("metrics_reference.json", script: "scripts/metrics_reference.py", modules: "numpy, scipy")
    }

    private func assertClose(_ a: MetricSummary, _ b: MetricSummary, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        let pairs: [(String, Double, Double)] = [
            ("precision", a.precision, b.precision), ("recall", a.recall, b.recall), ("dice", a.dice, b.dice),
            ("iou", a.iou, b.iou), ("miou", a.miou, b.miou),
            ("thresholded_jaccard", a.thresholdedJaccard, b.thresholdedJaccard),
            ("fdr", a.fdr, b.fdr), ("fpr", a.fpr, b.fpr), ("fp_components_mean", a.fpComponentsMean, b.fpComponentsMean),
            ("fp_image_share", a.fpImageShare, b.fpImageShare),
        ]
        for (key, x, y) in pairs {
            XCTAssertEqual(x, y, accuracy: 1e-12, "\(what): \(key)", file: file, line: line)
        }
        XCTAssertEqual(a.hd95 == nil, b.hd95 == nil, "\(what): hd95 definedness", file: file, line: line)
        if let x = a.hd95, let y = b.hd95 { XCTAssertEqual(x, y, accuracy: 1e-12, "\(what): hd95", file: file, line: line) }
    }

    func testMatchesTheNumpyScipyReference() throws {
        let reference: Reference = try fixture("metrics_reference.json")
        XCTAssertFalse(reference.images.isEmpty)
        var acc = MetricAccumulator()
        for g in reference.images {
            let row = try acc.add(name: g.name, prediction: mask(g.prediction), label: mask(g.label))
            XCTAssertEqual(row.dice, g.dice, accuracy: 1e-12, g.name)
            XCTAssertEqual(row.iou, g.iou, accuracy: 1e-12, g.name)
            XCTAssertEqual(row.thresholdedJaccard, g.thresholded_jaccard, accuracy: 1e-12, g.name)
            XCTAssertEqual(row.fpComponents, g.fp_components, g.name)
            XCTAssertEqual([row.tp, row.fp, row.fn], [g.tp, g.fp, g.fn], g.name)
            XCTAssertEqual(row.hd95 == nil, g.hd95 == nil, "\(g.name) hd95 definedness")
            if let h = row.hd95, let gh = g.hd95 { XCTAssertEqual(h, gh, accuracy: 1e-12, "\(g.name) hd95") }
        }
        XCTAssertEqual(acc.summary().images, reference.images.count)
        assertClose(acc.summary(), reference.summary, "summary")
    }

    func testBothMasksEmpty() throws {
        var acc = MetricAccumulator()
        let empty = try BinaryMask(width: 5, height: 4, pixels: Array(repeating: false, count: 20))
        let row = try acc.add(name: "empty", prediction: empty, label: empty)
        XCTAssertEqual(row.dice, 1)
        XCTAssertEqual(row.iou, 1)
        XCTAssertEqual(row.thresholdedJaccard, 1)
        XCTAssertNil(row.hd95)
        XCTAssertEqual(row.fpComponents, 0)
        let s = acc.summary()
        // Nothing predicted, nothing to find: precision and recall 1, both class IoUs 1.
        assertClose(s, MetricSummary(images: 1, precision: 1, recall: 1, dice: 1, iou: 1, miou: 1,
                                     thresholdedJaccard: 1, fdr: 0, fpr: 0, fpComponentsMean: 0,
                                     fpImageShare: 0, hd95: nil), "both empty")
    }

    func testAllForeground() throws {
        var acc = MetricAccumulator()
        let full = try BinaryMask(width: 4, height: 4, pixels: Array(repeating: true, count: 16))
        let row = try acc.add(name: "full", prediction: full, label: full)
        XCTAssertEqual(row.dice, 1)          // (2·16 + 1) / (16 + 16 + 1)
        XCTAssertEqual(row.iou, 1)
        XCTAssertEqual(row.hd95, 0)
        let s = acc.summary()
        XCTAssertEqual(s.fpr, 0)             // no background pixel: FPR defined as 0
        XCTAssertEqual(s.miou, 1)            // background absent from both: its IoU is 1
        XCTAssertEqual(s.precision, 1)
    }

    func testSingleFalsePositiveBlobFarFromTheLesion() throws {
        // 10×10: lesion 2×2 at rows/cols 0–1, predicted exactly, plus a 2×2 blob at rows/cols 8–9.
        var label = [Bool](repeating: false, count: 100)
        var pred = label
        for (y, x) in [(0, 0), (0, 1), (1, 0), (1, 1)] { label[y * 10 + x] = true; pred[y * 10 + x] = true }
        for (y, x) in [(8, 8), (8, 9), (9, 8), (9, 9)] { pred[y * 10 + x] = true }
        var acc = MetricAccumulator()
        let row = try acc.add(name: "far fp", prediction: BinaryMask(width: 10, height: 10, pixels: pred),
                              label: BinaryMask(width: 10, height: 10, pixels: label))
        XCTAssertEqual(row.fpComponents, 1)
        XCTAssertEqual([row.tp, row.fp, row.fn], [4, 4, 0])
        XCTAssertEqual(row.dice, 9.0 / 13.0, accuracy: 1e-15)
        XCTAssertEqual(row.iou, 0.5)
        // Every pixel of both masks is boundary. Pooled distances: 4 + 4 zeros, and the blob's
        // pixels to the nearest lesion pixel (1,1): √98, √113, √113, √128. Sorted, the 95th
        // percentile sits at 0.95·11 = 10.45, between √113 and √128.
        let expected = 113.0.squareRoot() + 0.45 * (128.0.squareRoot() - 113.0.squareRoot())
        XCTAssertEqual(try XCTUnwrap(row.hd95), expected, accuracy: 1e-12)
        XCTAssertEqual(acc.summary().fpImageShare, 1)
        XCTAssertEqual(acc.summary().precision, 0.5)
        XCTAssertEqual(acc.summary().fpr, 4.0 / 96.0, accuracy: 1e-15)
    }

    func testDiagonalPixelsAreOneEightConnectedComponent() throws {
        let label = try mask(["......", "......", "......", "......"])
        let diagonal = try mask(["#.....", ".#....", "..#...", "...#.#"])
        XCTAssertEqual(try ImageMetrics(name: "d", prediction: diagonal, label: label).fpComponents, 2)
        // Touching the lesion anywhere makes the whole component a true detection.
        let lesionAtEnd = try mask(["......", "......", "......", "...#.."])
        XCTAssertEqual(try ImageMetrics(name: "d", prediction: diagonal, label: lesionAtEnd).fpComponents, 1)
    }

    func testProbabilitiesAreBinarisedStrictlyAboveOneHalf() throws {
        var acc = MetricAccumulator()
        let row = try acc.add(name: "p", probabilities: [0.5, 0.5001, 0.9, 0.1], label: [UInt8]([0, 255, 1, 0]),
                              width: 2, height: 2)
        XCTAssertEqual([row.tp, row.fp, row.fn], [2, 0, 0])
        let binary = try acc.add(name: "b", binaryPrediction: [0, 1, 0, 0], label: [0, 7, 1, 0], width: 4, height: 1)
        XCTAssertEqual([binary.tp, binary.fp, binary.fn], [1, 0, 1])
        let float = try acc.add(name: "f", probabilities: [0.7, 0.7], label: [Float]([0, 0.25]), width: 2, height: 1)
        XCTAssertEqual([float.tp, float.fp, float.fn], [1, 1, 0])
    }

    func testMismatchedSizesAreRefused() throws {
        var acc = MetricAccumulator()
        XCTAssertThrowsError(try acc.add(name: "x", probabilities: [0, 1, 0], label: [UInt8]([0, 1, 0, 0]),
                                         width: 2, height: 2))
        let a = try mask(["##", ".."]), b = try mask(["###", "...", "..."])
        XCTAssertThrowsError(try acc.add(name: "x", prediction: a, label: b)) { error in
            XCTAssertTrue("\(error)".contains("metrics"), "\(error)")
        }
        XCTAssertEqual(acc.rows.count, 0)
    }

    func testDistanceTransformIsExact() throws {
        // Against brute force on an irregular seed set in a non-square image.
        let w = 23, h = 17
        var seeds = [Bool](repeating: false, count: w * h)
        var state: UInt32 = 12345
        for i in 0..<seeds.count {
            state = state &* 1_664_525 &+ 1_013_904_223
            seeds[i] = state >> 28 == 0   // about 1 in 16
        }
        let d = DistanceTransform.squaredEDT(seeds, width: w, height: h)
        for y in 0..<h {
            for x in 0..<w {
                var best = Double.infinity
                for sy in 0..<h { for sx in 0..<w where seeds[sy * w + sx] {
                    best = min(best, Double((sx - x) * (sx - x) + (sy - y) * (sy - y)))
                } }
                XCTAssertEqual(d[y * w + x], best, "(\(x), \(y))")
            }
        }
        XCTAssertTrue(seeds.contains(true))
    }

    func testPercentileFollowsNumpyLinear() {
        XCTAssertEqual(DistanceTransform.percentile([3, 1, 2, 4], 95), 3.85, accuracy: 1e-15)
        XCTAssertEqual(DistanceTransform.percentile([7], 95), 7)
        XCTAssertEqual(DistanceTransform.percentile([0, 10], 50), 5)
    }

    func testSummaryJSONHasExactlyTheReportKeys() throws {
        var acc = MetricAccumulator()
        let empty = try mask(["...", "..."])
        try acc.add(name: "e", prediction: empty, label: empty)
        let data = try JSONEncoder().encode(acc.summary())
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["precision", "recall", "dice", "iou", "miou", "thresholded_jaccard",
                                          "fdr", "fpr", "fp_components_mean", "fp_image_share", "hd95"])
        XCTAssertTrue(object["hd95"] is NSNull, "undefined hd95 is written as null")
        let decoded = try JSONDecoder().decode(MetricSummary.self, from: data)
        assertClose(decoded, acc.summary(), "round trip")
    }

    func testPerImageCSV() throws {
        var acc = MetricAccumulator()
        try acc.add(name: "a,b", prediction: mask(["#."]), label: mask(["##"]))
        try acc.add(name: "plain", prediction: mask([".."]), label: mask([".."]))
        let lines = acc.perImageCSV().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[0], "name,dice,iou,thresholded_jaccard,fp_components,hd95,tp,fp,fn")
        // hd95: pooled distances [0, 0, 1]; numpy.percentile gives 0.8999999999999999 too.
        XCTAssertEqual(lines[1], "\"a,b\",0.75,0.5,0.0,0,0.8999999999999999,1,0,1")
        XCTAssertEqual(lines[2], "plain,1.0,1.0,1.0,0,,0,0,0")
    }
}
