import Foundation
import XCTest
@testable import RefineSeg

/// The review page that `annotate` writes: its content, and (when Debian's `chromium` is
/// installed) the page itself driven in a headless browser by scripts/review_page_check.py.
final class ReviewPageTests: XCTestCase {
    /// A folder shaped like annotate's output for `names` (tiny images), with review.csv.
    /// Only the first `withFiles` images get files (all by default): the page lists the others
    /// without thumbnails, which keeps a 5,000-image test off a slow disk.
    func fakeAnnotation(_ names: [String], size: Int = 16, withFiles: Int = .max) throws -> (dir: String, rows: [ReviewRow]) {
        let dir = try temporaryDirectory("review").path
        for sub in ["masks", "probabilities", "overlays"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        // Two variants (one square; two squares), each encoded once: odd images get the second.
        var encoded = [[Data]]()
        for variant in 0..<2 {
            var mask = [Bool](repeating: false, count: size * size)
            for y in 2..<6 { for x in 2..<6 { mask[y * size + x] = true } }
            if variant == 1 { for y in 10..<13 { for x in 10..<13 { mask[y * size + x] = true } } }
            let p = mask.map { $0 ? Float(0.9) : Float(0.1) }
            encoded.append([
                try PNGFile.encode(RawImage(width: size, height: size, channels: 1, bitDepth: 8, samples: mask.map { $0 ? 255 : 0 }), file: "mask"),
                try PNGFile.encode(RawImage(width: size, height: size, channels: 1, bitDepth: 16, samples: p.map { UInt16($0 * 65535) }), file: "p"),
                try PNGFile.encode(overlay([Float](repeating: 0.5, count: size * size), channels: 1, width: size, height: size, mask: mask), file: "o"),
            ])
        }
        var rows = [ReviewRow]()
        for (i, name) in names.enumerated() {
            for (k, sub) in ["masks", "probabilities", "overlays"].enumerated() where i < withFiles {
                try encoded[i % 2][k].write(to: URL(fileURLWithPath: "\(dir)/\(sub)/\(name).png"))
            }
            rows.append(ReviewRow(name: name, meanEntropy: 1 - Double(i) / Double(names.count), lesionFraction: Double(16 + 9 * (i % 2)) / Double(size * size),
                                  width: size, height: size))
        }
        var csv = "rank,name,mean_entropy_bits,lesion_fraction,width,height\n"
        for (rank, r) in rows.enumerated() { csv += "\(rank + 1),\(csvEscape(r.name)),\(r.meanEntropy),\(r.lesionFraction),\(size),\(size)\n" }
        try csv.write(toFile: dir + "/review.csv", atomically: true, encoding: .utf8)
        return (dir, rows)
    }

    func testPageIsSelfContainedAndHoldsEveryImageInOrder() throws {
        let names = ["b", "a<script>alert(1)<!--", "c d&e", "ü\"q'"]
        let (dir, rows) = try fakeAnnotation(names)
        let entries = try writeReviewPage(rows: rows, in: dir, thumbnailSide: 8)
        XCTAssertEqual(entries.map(\.name), names)
        XCTAssertEqual(entries.map(\.rank), [1, 2, 3, 4])
        XCTAssertEqual(entries.map(\.components), [1, 2, 1, 2])
        XCTAssertEqual(entries.map(\.lesionArea), [16, 25, 16, 25])
        XCTAssertTrue(entries.allSatisfy(\.hasThumbnails))
        let thumb = try PNGFile.read("\(dir)/thumbnails/b.overlay.png")
        XCTAssertEqual([thumb.width, thumb.height, thumb.channels], [8, 8, 3])
        // The outline survives the reduction: some thumbnail pixel is pure red.
        XCTAssertTrue(stride(from: 0, to: thumb.samples.count, by: 3).contains { thumb.samples[$0] == 255 && thumb.samples[$0 + 1] == 0 })

        let html = try String(contentsOfFile: dir + "/review.html", encoding: .utf8)
        for external in ["http://", "https://", "<link", "@import", "<script src", "url("] {
            XCTAssertFalse(html.contains(external), "the page refers to something outside it: \(external)")
        }
        // The data block parses back to the entries, and no name closes the script element early.
        XCTAssertEqual(html.components(separatedBy: "</script>").count, 3)
        let start = try XCTUnwrap(html.range(of: "<script id=\"review-data\" type=\"application/json\">"))
        let end = try XCTUnwrap(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
        let decoded = try JSONDecoder().decode([ReviewEntry].self, from: Data(html[start.upperBound..<end.lowerBound].utf8))
        XCTAssertEqual(decoded, entries)
    }

    func chromiumOrSkip() throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            for name in ["chromium", "chromium-browser", "google-chrome"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        throw XCTSkip("chromium not installed (Debian: apt-get install chromium; scripts/setup.sh does): browser test of the review page skipped")
    }

    func runPageCheck(_ dir: String, browser: String, screenshot: String? = nil) throws -> String {
        let p: (status: Int32, out: String, err: String)
        do {
            p = try runPython([packageRoot.path + "/scripts/review_page_check.py", dir, "--chromium", browser]
                              + (screenshot.map { ["--screenshot", $0] } ?? []))
        } catch { throw XCTSkip("python3 not available: browser test of the review page skipped") }
        XCTAssertEqual(p.status, 0, p.err)
        return p.out
    }

    /// annotate on the sample's test images, then the page in Chromium: order, thumbnails,
    /// a click and keys for decisions, the filter, End, and the downloaded review-decisions.csv.
    func testAnnotatedSamplePageInChromium() throws {
        let browser = try chromiumOrSkip()
        let backend = CPUBackend()
        let dir = try temporaryDirectory("review-sample").path
        let checkpoint = dir + "/model.safetensors"
        let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 7)
        try Checkpoint.save(model, metadata: model.config.metadata, to: checkpoint)
        let images = packageRoot.path + "/data/sample/test/images"
        let rows = try annotate(model: try loadModel(checkpoint, backend: backend), backend: backend, imagesDir: images, out: dir + "/out")
        XCTAssertEqual(rows.count, 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out/review.html"))
        let shot = dir + "/page.png"
        let report = try runPageCheck(dir + "/out", browser: browser, screenshot: shot)
        XCTAssertTrue(report.contains("\"images\": 4"), report)
        let png = try PNGFile.read(shot)
        XCTAssertGreaterThan(png.width, 800)
    }

    /// 5,000 images: the page stays a virtual list (few rows in the DOM), the rows in view show
    /// their thumbnails, and End reaches the last.
    func testFiveThousandImagesInChromium() throws {
        let browser = try chromiumOrSkip()
        let names = (0..<5000).map { String(format: "img%05d", $0) }
        let (dir, rows) = try fakeAnnotation(names, size: 16, withFiles: 100)
        let start = Date()
        try writeReviewPage(rows: rows, in: dir)
        let written = Date()
        let report = try runPageCheck(dir, browser: browser)
        print(String(format: "review page for 5,000 images: written in %.1f s, checked in Chromium in %.1f s (this build, this machine)",
                     written.timeIntervalSince(start), Date().timeIntervalSince(written)))
        XCTAssertTrue(report.contains("\"images\": 5000"), report)
    }
}
