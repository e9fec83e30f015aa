import Foundation
import XCTest
@testable import RefineSeg

/// PNG round trips, every colour type libpng can hand us, and one clear error per bad file.
final class PNGTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory("png") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A deterministic image whose samples use the full range of the depth.
    func pattern(width: Int, height: Int, channels: Int, bitDepth: Int) -> RawImage {
        var rng = SeededRandom(seed: UInt64(width * 131 + height * 7 + channels + bitDepth))
        let top = bitDepth == 16 ? 65535 : 255
        let samples = (0..<(width * height * channels)).map { i -> UInt16 in
            i == 0 ? 0 : i == 1 ? UInt16(top) : UInt16(rng.next() % UInt64(top + 1))
        }
        return RawImage(width: width, height: height, channels: channels, bitDepth: bitDepth, samples: samples)
    }

    func expectError(_ file: String, _ fragment: String, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), line: line) { error in
            guard case let RefineSegError.io(errorFile, message) = error else {
                return XCTFail("not an io error: \(error)", line: line)
            }
            XCTAssertEqual(errorFile, file, line: line)
            XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", line: line)
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", line: line)
        }
    }

    func testRoundTripsGreyAndRGBAt8And16Bits() throws {
        for (channels, bitDepth) in [(1, 8), (1, 16), (3, 8), (3, 16)] {
            for (width, height) in [(1, 1), (7, 5), (33, 13)] {
                let image = pattern(width: width, height: height, channels: channels, bitDepth: bitDepth)
                let file = path("rt-\(channels)-\(bitDepth)-\(width)x\(height).png")
                try PNGFile.write(image, to: file)
                XCTAssertEqual(try PNGFile.read(file), image, "\(channels) channels, \(bitDepth) bits, \(width)×\(height)")
            }
        }
    }

    func testSixteenBitSamplesAreStoredBigEndian() throws {
        let image = RawImage(width: 2, height: 1, channels: 1, bitDepth: 16, samples: [0x1234, 0xABCD])
        let file = path("be.png")
        try PNGFile.write(image, to: file)
        let expected = try PNGFile.encode(packedRows: [0x12, 0x34, 0xAB, 0xCD], width: 2, height: 1, colorType: 0, bitDepth: 16)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: file)), expected)
    }

    func testPaletteIsExpandedToRGBAndItsAlphaDropped() throws {
        let palette: [UInt8] = [0, 0, 0, 255, 0, 0, 10, 20, 30]
        let data = try PNGFile.encode(packedRows: [2, 1, 0, 1, 2, 2], width: 3, height: 2, colorType: 3, bitDepth: 8,
                                      palette: palette, transparency: [0, 128])
        let image = try PNGFile.decode(data, file: "palette")
        XCTAssertEqual(image.channels, 3)
        XCTAssertEqual(image.bitDepth, 8)
        XCTAssertEqual(image.samples, [10, 20, 30, 255, 0, 0, 0, 0, 0, 255, 0, 0, 10, 20, 30, 10, 20, 30])
        // A 2-bit palette packs four indices per byte: 0b00_01_10_00 → indices 0, 1, 2, 0.
        let packed = try PNGFile.encode(packedRows: [0b0001_1000], width: 4, height: 1, colorType: 3, bitDepth: 2, palette: palette)
        XCTAssertEqual(try PNGFile.decode(packed, file: "palette2").samples, [0, 0, 0, 255, 0, 0, 10, 20, 30, 0, 0, 0])
    }

    func testGreyAlphaAndRGBAKeepColourAndDropAlpha() throws {
        let greyAlpha = try PNGFile.encode(packedRows: [7, 255, 200, 0], width: 2, height: 1, colorType: 4, bitDepth: 8)
        XCTAssertEqual(try PNGFile.decode(greyAlpha, file: "ga"),
                       RawImage(width: 2, height: 1, channels: 1, bitDepth: 8, samples: [7, 200]))
        let greyAlpha16 = try PNGFile.encode(packedRows: [0x01, 0x02, 0xFF, 0xFF, 0xBE, 0xEF, 0, 0], width: 2, height: 1,
                                             colorType: 4, bitDepth: 16)
        XCTAssertEqual(try PNGFile.decode(greyAlpha16, file: "ga16"),
                       RawImage(width: 2, height: 1, channels: 1, bitDepth: 16, samples: [0x0102, 0xBEEF]))
        let rgba = try PNGFile.encode(packedRows: [1, 2, 3, 0, 4, 5, 6, 255], width: 2, height: 1, colorType: 6, bitDepth: 8)
        XCTAssertEqual(try PNGFile.decode(rgba, file: "rgba"),
                       RawImage(width: 2, height: 1, channels: 3, bitDepth: 8, samples: [1, 2, 3, 4, 5, 6]))
        let rgba16 = try PNGFile.encode(packedRows: [0, 1, 0, 2, 0, 3, 0, 0], width: 1, height: 1, colorType: 6, bitDepth: 16)
        XCTAssertEqual(try PNGFile.decode(rgba16, file: "rgba16").samples, [1, 2, 3])
    }

    func testLowBitGreyIsScaledTo8Bits() throws {
        // libpng's expansion scales to the full 8-bit range: 1-bit 1 → 255, 2-bit 1 → 85, 4-bit 3 → 51.
        let one = try PNGFile.decode(PNGFile.encode(packedRows: [0b1010_0000], width: 3, height: 1, colorType: 0, bitDepth: 1), file: "g1")
        XCTAssertEqual(one.samples, [255, 0, 255])
        XCTAssertEqual(one.bitDepth, 8)
        let two = try PNGFile.decode(PNGFile.encode(packedRows: [0b0001_1011], width: 4, height: 1, colorType: 0, bitDepth: 2), file: "g2")
        XCTAssertEqual(two.samples, [0, 85, 170, 255])
        let four = try PNGFile.decode(PNGFile.encode(packedRows: [0x3F, 0x00], width: 3, height: 1, colorType: 0, bitDepth: 4), file: "g4")
        XCTAssertEqual(four.samples, [51, 255, 0])
    }

    func testColourKeyTransparencyAddsNoChannel() throws {
        let grey2 = try PNGFile.decode(PNGFile.encode(packedRows: [0b0001_1011], width: 4, height: 1, colorType: 0, bitDepth: 2,
                                                      transparency: [0, 1]), file: "g2-trns")
        XCTAssertEqual(grey2, RawImage(width: 4, height: 1, channels: 1, bitDepth: 8, samples: [0, 85, 170, 255]))
        let grey16 = try PNGFile.decode(PNGFile.encode(packedRows: [0, 5, 1, 0], width: 2, height: 1, colorType: 0, bitDepth: 16,
                                                       transparency: [0, 5]), file: "g16-trns")
        XCTAssertEqual(grey16, RawImage(width: 2, height: 1, channels: 1, bitDepth: 16, samples: [5, 256]))
        let rgb = try PNGFile.decode(PNGFile.encode(packedRows: [1, 2, 3, 4, 5, 6], width: 2, height: 1, colorType: 2, bitDepth: 8,
                                                    transparency: [0, 1, 0, 2, 0, 3]), file: "rgb-trns")
        XCTAssertEqual(rgb, RawImage(width: 2, height: 1, channels: 3, bitDepth: 8, samples: [1, 2, 3, 4, 5, 6]))
    }

    func testInterlacedImagesReadLikePlainOnes() throws {
        let image = pattern(width: 13, height: 11, channels: 3, bitDepth: 16)
        var packed: [UInt8] = []
        for v in image.samples { packed += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        let data = try PNGFile.encode(packedRows: packed, width: 13, height: 11, colorType: 2, bitDepth: 16, interlaced: true)
        XCTAssertEqual(try PNGFile.decode(data, file: "adam7"), image)
    }

    func testMaskValuesBinariseAndPlanarFloatsAreCHW() {
        let image = RawImage(width: 2, height: 2, channels: 3, bitDepth: 8,
                             samples: [0, 0, 0, 0, 7, 0, 1, 2, 3, 0, 0, 255])
        XCTAssertEqual(image.maskValues(), [0, 1, 1, 1])
        XCTAssertEqual(image.planarFloats(), [0, 0, 1, 0, 0, 7, 2, 0, 0, 0, 3, 255])
        let grey = RawImage(width: 3, height: 1, channels: 1, bitDepth: 16, samples: [0, 65535, 2])
        XCTAssertEqual(grey.maskValues(), [0, 1, 1])
        XCTAssertEqual(grey.planarFloats(), [0, 65535, 2])
    }

    func testBadFilesGiveOneClearError() throws {
        let good = try PNGFile.encode(pattern(width: 9, height: 9, channels: 3, bitDepth: 8), file: "good")
        func write(_ name: String, _ bytes: Data) throws -> String {
            let file = path(name)
            try bytes.write(to: URL(fileURLWithPath: file))
            return file
        }
        let empty = try write("empty.png", Data())
        expectError(empty, "empty file") { _ = try PNGFile.read(empty) }
        let text = try write("text.png", Data("hello, this is not an image".utf8))
        expectError(text, "not a PNG file") { _ = try PNGFile.read(text) }
        let jpeg = try write("jpeg.png", Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]))
        expectError(jpeg, "not a PNG file") { _ = try PNGFile.read(jpeg) }
        let stub = try write("stub.png", good.prefix(5))
        expectError(stub, "truncated or corrupt PNG (the file ends inside the signature)") { _ = try PNGFile.read(stub) }
        let half = try write("half.png", good.prefix(good.count / 2))
        expectError(half, "truncated or corrupt PNG (libpng: ") { _ = try PNGFile.read(half) }
        let headerOnly = try write("header.png", good.prefix(20))
        expectError(headerOnly, "truncated or corrupt PNG (libpng: ") { _ = try PNGFile.read(headerOnly) }
        var badCRC = good
        badCRC[29] ^= 0xFF // last byte of IHDR's CRC
        let crc = try write("crc.png", badCRC)
        expectError(crc, "truncated or corrupt PNG (libpng: IHDR: CRC error)") { _ = try PNGFile.read(crc) }
        var badData = good
        for i in 41..<min(good.count - 12, 60) { badData[i] = 0x55 } // inside the IDAT stream
        let idat = try write("idat.png", badData)
        expectError(idat, "truncated or corrupt PNG (libpng: ") { _ = try PNGFile.read(idat) }
        let missing = path("missing.png")
        expectError(missing, "cannot open (No such file or directory)") { _ = try PNGFile.read(missing) }
        expectError(dir.path, "is a directory") { _ = try PNGFile.read(dir.path) }
    }

    func testHugeDimensionsAreRefusedFromTheHeader() throws {
        let good = try PNGFile.encode(pattern(width: 4, height: 4, channels: 1, bitDepth: 8), file: "good")
        for (width, height) in [(40000, 10), (10, 1 << 31 - 1), (20000, 20000)] {
            var bytes = good
            withIHDR(&bytes, width: UInt32(width), height: UInt32(height))
            let file = path("huge-\(width).png")
            try bytes.write(to: URL(fileURLWithPath: file))
            expectError(file, "image is \(width)×\(height), above the limit of 32768 pixels per side and 268435456 pixels in all") {
                _ = try PNGFile.read(file)
            }
        }
        var zero = good
        withIHDR(&zero, width: 0, height: 4)
        expectError("zero", "image is 0×4, which is empty") { _ = try PNGFile.decode(zero, file: "zero") }
    }

    func testWritingRefusesWhatPNGCannotHold() throws {
        let file = path("bad.png")
        expectError(file, "cannot write PNG: sample 1 is 256, above 255 for an 8-bit image") {
            try PNGFile.write(RawImage(width: 2, height: 1, channels: 1, bitDepth: 8, samples: [0, 256]), to: file)
        }
        expectError(file, "cannot write PNG: 2 channels (1 or 3 are written)") {
            try PNGFile.write(RawImage(width: 1, height: 1, channels: 2, bitDepth: 8, samples: [0, 1]), to: file)
        }
        expectError(file, "cannot write PNG: bit depth 12 (8 or 16 are written)") {
            try PNGFile.write(RawImage(width: 1, height: 1, channels: 1, bitDepth: 12, samples: [0]), to: file)
        }
        expectError(file, "image is 0×0, which is empty") {
            try PNGFile.write(RawImage(width: 0, height: 0, channels: 1, bitDepth: 8, samples: []), to: file)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: file), "a refused write leaves no file")
    }

    /// The repository's sample dataset (data/sample, see its README): 12 train and 4 test
    /// 128×128 tiles, 16-bit grey images with binary 0/255 masks that line up with the nuclei.
    func testSampleDatasetReads() throws {
        let root = packageRoot.appendingPathComponent("data/sample")
        var pairs = 0
        for (split, expected) in [("train", 12), ("test", 4)] {
            let images = root.appendingPathComponent("\(split)/images")
            let names = try FileManager.default.contentsOfDirectory(atPath: images.path).filter { $0.hasSuffix(".png") }.sorted()
            XCTAssertEqual(names.count, expected, split)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("\(split)/masks").path)
                .filter { $0.hasSuffix(".png") }.sorted(), names, "\(split): every image has a mask of the same name")
            for name in names {
                let image = try PNGFile.read(images.appendingPathComponent(name).path)
                let mask = try PNGFile.read(root.appendingPathComponent("\(split)/masks/\(name)").path)
                XCTAssertEqual([image.width, image.height, image.channels, image.bitDepth], [128, 128, 1, 16], name)
                XCTAssertEqual([mask.width, mask.height, mask.channels, mask.bitDepth], [128, 128, 1, 8], name)
                XCTAssertEqual(Set(mask.samples).subtracting([0, 255]), [], "\(name): mask is not 0/255")
                // Nuclei are present, and they are the bright objects: the mask lines up with the image.
                let inside = mask.maskValues()
                let foreground = inside.reduce(0, +)
                XCTAssertGreaterThan(foreground, 128 * 128 / 50, "\(name): under 2% foreground")
                XCTAssertLessThan(foreground, 128 * 128 / 2, "\(name): over half foreground")
                let values = image.planarFloats()
                let meanIn = zip(values, inside).reduce(0) { $0 + $1.0 * $1.1 } / foreground
                let meanOut = zip(values, inside).reduce(0) { $0 + $1.0 * (1 - $1.1) } / (Float(128 * 128) - foreground)
                XCTAssertGreaterThan(meanIn, 2 * meanOut, "\(name): nuclei are not brighter than background")
                pairs += 1
            }
        }
        XCTAssertEqual(pairs, 16)
    }
}

/// Rewrites IHDR's width and height (bytes 16..<24) and its CRC, so only the size is wrong.
func withIHDR(_ bytes: inout Data, width: UInt32, height: UInt32) {
    for (k, v) in [width, height].enumerated() {
        for b in 0..<4 { bytes[bytes.startIndex + 16 + 4 * k + b] = UInt8(truncatingIfNeeded: v >> (24 - 8 * b)) }
    }
    let crc = crc32(Array(bytes[(bytes.startIndex + 12)..<(bytes.startIndex + 29)]))
    for b in 0..<4 { bytes[bytes.startIndex + 29 + b] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * b)) }
}

/// CRC-32 (ISO 3309, as PNG chunks use), bitwise: tests only.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
    }
    return ~crc
}
