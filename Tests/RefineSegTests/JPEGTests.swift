import Foundation
import XCTest
@testable import RefineSeg

/// JPEG decoding through libjpeg-turbo: fixtures are encoded with the same library
/// (JPEGFile.write), so these tests need no binary files.
final class JPEGTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory("jpeg") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A smooth image (JPEG reproduces smooth content closely, so tolerances can be tight).
    func smooth(width: Int, height: Int, channels: Int) -> RawImage {
        var samples: [UInt16] = []
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { samples.append(UInt16((40 + 2 * x + 3 * y + 50 * c) % 256)) }
            }
        }
        return RawImage(width: width, height: height, channels: channels, bitDepth: 8, samples: samples)
    }

    func expectError(_ file: String, _ fragment: String, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), line: line) { error in
            guard case let RefineSegError.io(errorFile, message) = error else { return XCTFail("not an io error: \(error)", line: line) }
            XCTAssertEqual(errorFile, file, line: line)
            XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", line: line)
            XCTAssertFalse(message.contains("\n"), line: line)
        }
    }

    func testGreyAndRGBReadBackCloseToWhatWasWritten() throws {
        for channels in [1, 3] {
            let image = smooth(width: 37, height: 21, channels: channels)
            let file = path("smooth-\(channels).jpg")
            try JPEGFile.write(image, to: file, quality: 100)
            let read = try JPEGFile.read(file)
            XCTAssertEqual([read.width, read.height, read.channels, read.bitDepth], [37, 21, channels, 8])
            let worst = zip(read.samples, image.samples).map { abs(Int($0) - Int($1)) }.max() ?? 0
            // Quality 100 with 4:4:4: only DCT quantisation (and YCbCr rounding for RGB) remains.
            XCTAssertLessThanOrEqual(worst, channels == 1 ? 1 : 3, "\(channels) channels")
        }
    }

    func testBadFilesGiveOneClearError() throws {
        let good = try JPEGFile.encode(smooth(width: 32, height: 32, channels: 3), quality: 90, file: "good")
        func write(_ name: String, _ bytes: Data) throws -> String {
            let file = path(name)
            try bytes.write(to: URL(fileURLWithPath: file))
            return file
        }
        let empty = try write("empty.jpg", Data())
        expectError(empty, "empty file") { _ = try JPEGFile.read(empty) }
        let png = try write("png.jpg", Data([0x89, 0x50, 0x4E, 0x47]))
        expectError(png, "not a JPEG file") { _ = try JPEGFile.read(png) }
        let head = try write("head.jpg", good.prefix(40))
        expectError(head, "truncated or corrupt JPEG (no frame header before the data ends)") { _ = try JPEGFile.read(head) }
        let half = try write("half.jpg", good.prefix(good.count / 2))
        expectError(half, "truncated or corrupt JPEG (libjpeg-turbo: ") { _ = try JPEGFile.read(half) }
        expectError(path("missing.jpg"), "cannot open (No such file or directory)") { _ = try JPEGFile.read(path("missing.jpg")) }
    }

    func testHugeDimensionsAreRefusedFromTheHeader() throws {
        var bytes = try JPEGFile.encode(smooth(width: 16, height: 16, channels: 1), quality: 90, file: "good")
        // Baseline SOF0 marker FF C0: length(2) precision(1) height(2) width(2).
        guard let sof = (0..<(bytes.count - 1)).first(where: { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 }) else {
            return XCTFail("no SOF0 marker in the encoded JPEG")
        }
        bytes[sof + 5] = 0x00; bytes[sof + 6] = 10          // height 10
        bytes[sof + 7] = 0x9C; bytes[sof + 8] = 0x40        // width 40000
        expectError("huge", "image is 40000×10, above the limit of 32768 pixels per side") {
            _ = try JPEGFile.decode(bytes, file: "huge")
        }
    }

    func testWritingRefusesWhatJPEGCannotHold() {
        let file = path("bad.jpg")
        expectError(file, "cannot write JPEG: bit depth 16 (JPEG holds 8-bit samples)") {
            try JPEGFile.write(RawImage(width: 1, height: 1, channels: 1, bitDepth: 16, samples: [0]), to: file)
        }
        expectError(file, "cannot write JPEG: quality 0 is outside 1...100") {
            try JPEGFile.write(smooth(width: 2, height: 2, channels: 1), to: file, quality: 0)
        }
        expectError(file, "cannot write JPEG: 4 channels (1 or 3 are written)") {
            try JPEGFile.write(RawImage(width: 1, height: 1, channels: 4, bitDepth: 8, samples: [0, 0, 0, 0]), to: file)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
    }
}
