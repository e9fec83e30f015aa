import Foundation
import XCTest
@testable import RefineSeg

/// NIfTI-1 reading in both byte orders, plain and gzip'd, every datatype, scaling, and one
/// clear error per bad header. Fixtures come from NIfTIFile.write.
final class NIfTITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory("nifti") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Values every datatype can hold (0...100 fits uint8 and int8).
    func volume(datatype: Int, dims: [Int] = [5, 3, 2]) -> NIfTIVolume {
        let count = dims.reduce(1, *)
        let signed = [4, 8, 16, 64, 256].contains(datatype)
        let values = (0..<count).map { (i: Int) -> Float in
            let v = (i * 7) % 101
            return Float(signed ? v - 50 : v)
        }
        return NIfTIVolume(dims: dims, datatype: datatype, values: values, pixdim: [0.5, 0.75, 2])
    }

    func expectError(_ file: String, _ fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try NIfTIFile.read(file), line: line) { error in
            guard case let RefineSegError.io(errorFile, message) = error else { return XCTFail("not an io error: \(error)", line: line) }
            XCTAssertEqual(errorFile, file, line: line)
            XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", line: line)
            XCTAssertFalse(message.contains("\n"), line: line)
        }
    }

    func testEveryDatatypeInBothByteOrdersPlainAndGzipped() throws {
        for datatype in [2, 4, 8, 16, 64, 256, 512] {
            for bigEndian in [false, true] {
                for suffix in [".nii", ".nii.gz"] {
                    let original = volume(datatype: datatype)
                    let file = path("v\(datatype)\(bigEndian ? "be" : "le")\(suffix)")
                    try NIfTIFile.write(original, to: file, bigEndian: bigEndian)
                    XCTAssertEqual(try NIfTIFile.read(file), original, "datatype \(datatype), big-endian \(bigEndian), \(suffix)")
                }
            }
        }
        let extremes = NIfTIVolume(dims: [4, 1, 1], datatype: 4, values: [-32768, 32767, 0, -1])
        try NIfTIFile.write(extremes, to: path("extremes.nii"), bigEndian: true)
        XCTAssertEqual(try NIfTIFile.read(path("extremes.nii")).values, [-32768, 32767, 0, -1])
    }

    func testTheFilesAreReallyWhatTheyClaim() throws {
        try NIfTIFile.write(volume(datatype: 4), to: path("le.nii"))
        try NIfTIFile.write(volume(datatype: 4), to: path("be.nii.gz"), bigEndian: true)
        let le = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("le.nii"))))
        XCTAssertEqual(Array(le[0..<4]), [0x5C, 0x01, 0, 0], "sizeof_hdr 348 little-endian")
        XCTAssertEqual(le.count, 352 + 30 * 2)
        let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("be.nii.gz"))))
        XCTAssertEqual(Array(gz[0..<2]), [0x1F, 0x8B], "gzip magic")
        let be = try Gzip.inflate(gz, limit: 1 << 20, file: "be")
        XCTAssertEqual(Array(be[0..<4]), [0, 0, 0x01, 0x5C], "sizeof_hdr 348 big-endian")
        XCTAssertEqual(be.count, le.count)
    }

    func testScaleSlopeAndInterceptApplyOnlyWhenSlopeIsNonZero() throws {
        let stored = NIfTIVolume(dims: [3, 1, 1], datatype: 512, values: [0, 10, 65535])
        try NIfTIFile.write(stored, to: path("scaled.nii.gz"), slope: 0.5, intercept: -3)
        XCTAssertEqual(try NIfTIFile.read(path("scaled.nii.gz")).values, [-3, 2, 32764.5])
        try NIfTIFile.write(stored, to: path("unscaled.nii"), slope: 0, intercept: 100)
        XCTAssertEqual(try NIfTIFile.read(path("unscaled.nii")).values, [0, 10, 65535])
    }

    func testLowerDimensionalFilesGetTrailingOnes() throws {
        var bytes = try NIfTIFile.encode(volume(datatype: 16, dims: [6, 2, 1]), bigEndian: false, slope: 0, intercept: 0, file: "2d")
        bytes[40] = 2 // dim[0]: a 2-D image
        let read = try NIfTIFile.decode(Data(bytes), file: "2d")
        XCTAssertEqual(read.dims, [6, 2, 1])
        XCTAssertEqual(read.values.count, 12)
    }

    func testBadHeadersGiveOneClearError() throws {
        let good = try NIfTIFile.encode(volume(datatype: 16), bigEndian: false, slope: 0, intercept: 0, file: "good")
        func file(_ name: String, _ edit: (inout [UInt8]) -> Void, gzip: Bool = false) throws -> String {
            var bytes = good
            edit(&bytes)
            if gzip { bytes = try Gzip.deflate(bytes, file: name) }
            let p = path(name)
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            return p
        }
        func int16(_ bytes: inout [UInt8], _ at: Int, _ v: Int16) {
            let u = UInt16(bitPattern: v); bytes[at] = UInt8(u & 0xFF); bytes[at + 1] = UInt8(u >> 8)
        }
        func float(_ bytes: inout [UInt8], _ at: Int, _ v: Float) {
            for k in 0..<4 { bytes[at + k] = UInt8(truncatingIfNeeded: v.bitPattern >> (8 * k)) }
        }
        expectError(try file("empty.nii", { $0 = [] }), "empty file")
        expectError(try file("short.nii", { $0 = Array($0[0..<100]) }), "truncated NIfTI header (100 of 348 bytes)")
        expectError(try file("short.nii.gz", { $0 = Array($0[0..<100]) }, gzip: true), "truncated NIfTI header (100 of 348 bytes after decompression)")
        expectError(try file("sizeof.nii", { $0[0] = 0x40 }), "not a NIfTI-1 file (sizeof_hdr is 320, expected 348)")
        expectError(try file("magic.nii", { $0[345] = UInt8(ascii: "x") }), "not a NIfTI-1 file (magic is 6e 78 31 00, expected \"n+1\")")
        expectError(try file("pair.nii", { $0[345] = UInt8(ascii: "i") }), "is the header of a .hdr/.img pair")
        expectError(try file("dim0.nii", { int16(&$0, 40, 9) }), "dim[0] is 9, expected 1 to 7")
        expectError(try file("dimzero.nii", { int16(&$0, 44, 0) }), "dim[2] is 0, expected at least 1")
        expectError(try file("4d.nii", { int16(&$0, 40, 4); int16(&$0, 48, 5) }), "4-D volume (dim[4] is 5) is not supported")
        expectError(try file("huge.nii", { int16(&$0, 42, 30000); int16(&$0, 44, 30000); int16(&$0, 46, 30000) }),
                    "volume is 30000×30000×30000, above the limit of 268435456 voxels")
        expectError(try file("dtype.nii", { int16(&$0, 70, 32) }), "datatype 32 is not supported")
        expectError(try file("bitpix.nii", { int16(&$0, 72, 8) }), "bitpix 8 does not match datatype 16 (float32, 32 bits)")
        expectError(try file("offset.nii", { float(&$0, 108, 10) }), "vox_offset 10.0 is not a whole byte offset")
        expectError(try file("nanoffset.nii", { float(&$0, 108, .nan) }), "vox_offset nan is not a whole byte offset")
        expectError(try file("cut.nii", { $0.removeLast(7) }), "truncated: 5×3×2 float32 voxels at offset 352 need 472 bytes, the file has 465")
        expectError(try file("cut.nii.gz", { $0.removeLast(7) }, gzip: true), "the decompressed file has 465")
        // A cut gzip stream (not a cut volume): the stream simply ends early.
        let whole = try Gzip.deflate(good, file: "w")
        let cutStream = path("cutstream.nii.gz")
        try Data(whole.prefix(whole.count - 30)).write(to: URL(fileURLWithPath: cutStream))
        expectError(cutStream, "truncated: 5×3×2 float32 voxels at offset 352 need 472 bytes, the decompressed file has")
        var corrupt = whole
        for i in 12..<40 { corrupt[i] ^= 0xA5 }
        let bad = path("corrupt.nii.gz")
        try Data(corrupt).write(to: URL(fileURLWithPath: bad))
        expectError(bad, "corrupt gzip data (zlib: ")
    }

    func testWritingRefusesValuesTheDatatypeCannotHold() {
        let file = path("bad.nii")
        XCTAssertThrowsError(try NIfTIFile.write(NIfTIVolume(dims: [2, 1, 1], datatype: 2, values: [1, 256]), to: file)) { error in
            XCTAssertEqual("\(error)", "\(file): cannot write NIfTI: value 256.0 at index 1 is not a uint8")
        }
        XCTAssertThrowsError(try NIfTIFile.write(NIfTIVolume(dims: [1, 1, 1], datatype: 4, values: [0.5]), to: file)) { error in
            XCTAssertEqual("\(error)", "\(file): cannot write NIfTI: value 0.5 at index 0 is not a int16")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
    }
}
