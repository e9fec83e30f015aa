import Foundation
import XCTest
@testable import RefineSeg

/// Safetensors round trips, the exact bytes of the header, other dtypes, and one error per
/// malformed header (each naming the file and, where there is one, the tensor).
final class SafeTensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory("safetensors") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A file made of `header` (padded as the format allows) and `buffer`.
    func file(_ name: String, header: String, buffer: [UInt8] = [], lengthField: UInt64? = nil) throws -> String {
        let json = Array(header.utf8)
        var bytes = [UInt8]()
        var length = lengthField ?? UInt64(json.count)
        for _ in 0..<8 { bytes.append(UInt8(length & 0xFF)); length >>= 8 }
        bytes += json + buffer
        let path = dir.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func expectError(_ path: String, _ fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile.read(path), line: line) { error in
            guard case let RefineSegError.io(file, message) = error else { return XCTFail("not an io error: \(error)", line: line) }
            XCTAssertEqual(file, path, line: line)
            XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", line: line)
            XCTAssertFalse(message.contains("\n"), line: line)
        }
    }

    func testRoundTripKeepsNamesShapesValuesAndMetadata() throws {
        var rng = SeededRandom(seed: 7)
        let original = SafeTensorsFile(tensors: [
            ("encoder.conv1.weight", [3, 1, 3, 3], (0..<27).map { _ in rng.normal() }),
            ("bias", [5], [0, -1, .infinity, -.infinity, Float.leastNonzeroMagnitude]),
            ("empty", [0, 4], []),
            ("scalar", [], [42]),
            ("quote\"and\\slash ünï", [1], [1]),
        ], metadata: ["format": "refineseg", "epoch": "12", "note": "line\nbreak"])
        let path = dir.appendingPathComponent("model.safetensors").path
        try original.write(to: path)
        let read = try SafeTensorsFile.read(path)
        XCTAssertEqual(read.metadata, original.metadata)
        let expected = original.tensors.sorted { $0.name < $1.name }
        XCTAssertEqual(read.tensors.map(\.name), expected.map(\.name))
        for (a, b) in zip(read.tensors, expected) {
            XCTAssertEqual(a.shape, b.shape, a.name)
            XCTAssertEqual(a.values.map(\.bitPattern), b.values.map(\.bitPattern), a.name)
        }
        XCTAssertEqual(read["scalar"]?.values, [42])
        XCTAssertNil(read["absent"])
    }

    /// The bytes the Python library writes for the same tensors (safetensors 0.8.0,
    /// `save_file({"b": ones(2), "a": [[1.5]]}, metadata={"format": "pt"})`): header sorted by
    /// name, `__metadata__` first, padded with spaces to a multiple of 8.
    func testHeaderBytesMatchThePythonLibrary() throws {
        let file = SafeTensorsFile(tensors: [("b", [2], [1, 1]), ("a", [1, 1], [1.5])], metadata: ["format": "pt"])
        let path = dir.appendingPathComponent("py.safetensors").path
        try file.write(to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        XCTAssertEqual(Array(bytes[0..<8]), [UInt8(padded.utf8.count), 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(String(decoding: bytes[8..<(8 + padded.utf8.count)], as: UTF8.self), padded)
        XCTAssertEqual(Array(bytes[(8 + padded.utf8.count)...]),
                       [0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x80, 0x3F])
    }

    func testHalfBFloatAndDoubleAreConvertedToFloat() throws {
        // F16: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), inf; BF16: 1.0, -3.0; F64: 0.1.
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00, 0x00, 0x7C]
        let bf16: [UInt8] = [0x80, 0x3F, 0x40, 0xC0]
        let f64 = withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian) { Array($0) }
        let header = #"{"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[10,14]},"d":{"dtype":"F64","shape":[1,1],"data_offsets":[14,22]}}"#
        let read = try SafeTensorsFile.read(try file("dtypes.safetensors", header: header, buffer: f16 + bf16 + f64))
        XCTAssertEqual(read["h"]?.values, [1, -2, 65504, Float(sign: .plus, exponent: -24, significand: 1), .infinity])
        XCTAssertEqual(read["b"]?.values, [1, -3])
        XCTAssertEqual(read["d"]?.values, [Float(0.1)])
        XCTAssertEqual(read["d"]?.shape, [1, 1])
        XCTAssertTrue(SafeTensorsFile.halfToFloat(0x7E00).isNaN)
        XCTAssertEqual(SafeTensorsFile.halfToFloat(0x8000).sign, .minus)
    }

    func testMalformedFilesAreRefusedBeforeAllocating() throws {
        let four = [UInt8](repeating: 0, count: 4)
        let entry = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        expectError(try file("nojson", header: ""), "header is not valid JSON (unexpected end of JSON at header byte 0)")
        let empty = dir.appendingPathComponent("zero").path
        try Data().write(to: URL(fileURLWithPath: empty))
        expectError(empty, "empty file")
        let short = dir.appendingPathComponent("short").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        expectError(short, "file of 3 bytes is shorter than the 8-byte header length")
        let beyond = try file("beyond", header: entry, buffer: four, lengthField: 1000)
        expectError(beyond, "header length 1000 is beyond the file of \(8 + entry.utf8.count + 4) bytes")
        expectError(try file("huge", header: entry, lengthField: 1 << 40), "header length 1099511627776 is above the limit of 100000000 bytes")
        expectError(try file("json", header: "{\"x\": [1, 2", buffer: four), "header is not valid JSON (unexpected end of JSON at header byte 11)")
        expectError(try file("deep", header: String(repeating: "[", count: 100_000)), "header is not valid JSON (nested deeper than 64 levels")
        expectError(try file("array", header: "[1]"), "header is not a JSON object")
        expectError(try file("dup", header: #"{"x":{},"x":{}}"#), "duplicate key \"x\"")
        expectError(try file("meta", header: #"{"__metadata__":{"k":3}}"#), "__metadata__ entry \"k\" is not a string")
        expectError(try file("notobj", header: #"{"w":[1]}"#), "tensor \"w\": header entry is not a JSON object")
        expectError(try file("dtype", header: #"{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, buffer: four + four),
                    "tensor \"w\": dtype \"I64\" is not supported (F32, F16, BF16 or F64)")
        expectError(try file("nodtype", header: #"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, buffer: four), "tensor \"w\": dtype is missing")
        expectError(try file("negative", header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, buffer: four),
                    "tensor \"w\": shape has an entry that is not a non-negative integer")
        expectError(try file("fraction", header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, buffer: four),
                    "tensor \"w\": shape has an entry that is not a non-negative integer")
        expectError(try file("overflow", header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, buffer: four),
                    "tensor \"w\": shape 4294967296×4294967296… has more elements than an Int can count")
        expectError(try file("bytesoverflow", header: #"{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}}"#, buffer: four),
                    "tensor \"w\": shape [2305843009213693952] of F64 has more bytes than an Int can count")
        expectError(try file("offsets", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, buffer: four),
                    "tensor \"w\": data_offsets is missing or not two integers")
        expectError(try file("reversed", header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, buffer: four),
                    "tensor \"w\": data_offsets [4, 0] are not an increasing pair of non-negative offsets")
        expectError(try file("outside", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, buffer: four),
                    "tensor \"w\": data_offsets [0, 8] are beyond the byte buffer of 4 bytes")
        expectError(try file("mismatch", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, buffer: four),
                    "tensor \"w\": data_offsets [0, 4] hold 4 bytes but shape [2] of F32 needs 8")
        expectError(try file("overlap", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, buffer: four + four),
                    "tensor \"b\": data_offsets [4, 8] overlap tensor \"a\" at [0, 8]")
        // A header claiming a 1 GiB tensor in a tiny file: refused from the header alone.
        expectError(try file("greedy", header: #"{"w":{"dtype":"F32","shape":[268435456],"data_offsets":[0,1073741824]}}"#, buffer: four),
                    "tensor \"w\": data_offsets [0, 1073741824] are beyond the byte buffer of 4 bytes")
        let big = try file("big", header: entry, buffer: four)
        XCTAssertThrowsError(try SafeTensorsFile.read(big, maxBytes: 16)) { error in
            XCTAssertEqual("\(error)", "\(big): file is \(8 + entry.utf8.count + 4) bytes, above the limit of 16 bytes")
        }
        let missing = dir.appendingPathComponent("missing.safetensors").path
        expectError(missing, "cannot open (No such file or directory)")
    }

    func testWritingRefusesInconsistentTensors() throws {
        let path = dir.appendingPathComponent("bad.safetensors").path
        func refuse(_ file: SafeTensorsFile, _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try file.write(to: path), line: line) { error in
                XCTAssertEqual("\(error)", "\(path): cannot write safetensors: \(fragment)", line: line)
            }
        }
        refuse(SafeTensorsFile(tensors: [("w", [2, 2], [1, 2, 3])]), "tensor \"w\" has shape [2, 2] (4 values) but 3 values")
        refuse(SafeTensorsFile(tensors: [("w", [1], [1]), ("w", [1], [2])]), "two tensors are called \"w\"")
        refuse(SafeTensorsFile(tensors: [("__metadata__", [1], [1])]), "a tensor may not be called __metadata__")
        refuse(SafeTensorsFile(tensors: [("w", [-1], [])]), "tensor \"w\" has a negative dimension in [-1]")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
