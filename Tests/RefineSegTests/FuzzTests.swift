import Foundation
import XCTest
@testable import RefineSeg

/// Seeded mutation fuzzing of every file reader (issue 8): valid files are damaged thousands
/// of ways (bit flips, byte overwrites, truncations, corrupted length fields, duplicated chunks,
/// PNG chunk edits with the CRC repaired so libpng decodes further, safetensors header numbers
/// replaced by hostile ones) and each result is read. A reader must never crash or hang: it
/// either throws a RefineSegError or returns a self-consistent result.
///
/// The in-suite run is moderate (2000 mutations per format, 500 for JPEG). For a long run set
/// REFINESEG_FUZZ_ITERATIONS, e.g.
///     REFINESEG_FUZZ_ITERATIONS=200000 swift test --filter FuzzTests
/// which multiplies every format's count by ITERATIONS/2000. Each case is seeded by its index,
/// so a failure message (format, case, mutations) reproduces exactly.
final class FuzzTests: XCTestCase {
    /// Mutations per format for the in-suite run, or REFINESEG_FUZZ_ITERATIONS.
    static var iterations: Int {
        ProcessInfo.processInfo.environment["REFINESEG_FUZZ_ITERATIONS"].flatMap { Int($0) }.map { max(1, $0) } ?? 2000
    }

    func testPNGMutationsNeverCrash() throws {
        let seeds = try pngSeeds()
        try fuzz("PNG", seeds: seeds, count: Self.iterations, mutate: { bytes, rng in
            var notes: [String] = []
            let steps = 1 + Int(rng.next() % 3)
            for _ in 0..<steps {
                switch rng.next() % 4 {
                case 0: notes.append(Mutations.pngChunkEdit(&bytes, &rng))
                case 1: notes.append(Mutations.pngDuplicateChunk(&bytes, &rng))
                default: notes.append(Mutations.generic(&bytes, &rng))
                }
            }
            return notes
        }, read: { data in
            let image = try PNGFile.decode(data, file: "fuzz.png")
            try Self.check(image.samples.count == image.width * image.height * image.channels && [1, 3].contains(image.channels)
                           && [8, 16].contains(image.bitDepth) && image.width <= ImageLimits.maxSide && image.height <= ImageLimits.maxSide,
                           "inconsistent image \(image.width)×\(image.height)×\(image.channels) at \(image.bitDepth) bits")
        })
    }

    func testSafeTensorsMutationsNeverCrash() throws {
        let seeds = try safeTensorsSeeds()
        try fuzz("safetensors", seeds: seeds, count: Self.iterations, mutate: { bytes, rng in
            var notes: [String] = []
            let steps = 1 + Int(rng.next() % 3)
            for _ in 0..<steps {
                switch rng.next() % 5 {
                case 0: notes.append(Mutations.safeTensorsHeaderLength(&bytes, &rng))
                case 1, 2: notes.append(Mutations.jsonNumber(&bytes, &rng))
                default: notes.append(Mutations.generic(&bytes, &rng))
                }
            }
            return notes
        }, read: { data in
            let file = try SafeTensorsFile.decode(data, file: "fuzz.safetensors")
            for t in file.tensors {
                try Self.check(t.values.count == t.shape.reduce(1, *), "tensor \(t.name): \(t.values.count) values for \(t.shape)")
            }
            try Self.check(file.tensors.reduce(0) { $0 + $1.values.count } <= data.count, "more values than bytes")
        })
    }

    func testNIfTIMutationsNeverCrash() throws {
        let seeds = try niftiSeeds()
        try fuzz("NIfTI", seeds: seeds, count: Self.iterations, mutate: { bytes, rng in
            var notes: [String] = []
            let steps = 1 + Int(rng.next() % 3)
            for _ in 0..<steps {
                notes.append(rng.next() % 3 == 0 ? Mutations.niftiField(&bytes, &rng) : Mutations.generic(&bytes, &rng))
            }
            return notes
        }, read: { data in
            let volume = try NIfTIFile.decode(data, file: "fuzz.nii")
            try Self.check(volume.values.count == volume.dims.reduce(1, *) && volume.dims.allSatisfy { $0 >= 1 },
                           "inconsistent volume \(volume.dims) with \(volume.values.count) values")
        })
    }

    func testJPEGMutationsNeverCrash() throws {
        let seeds = [try JPEGFile.encode(Self.pattern(24, 17, 3), quality: 85, file: "seed"),
                     try JPEGFile.encode(Self.pattern(16, 16, 1), quality: 60, file: "seed")].map { [UInt8]($0) }
        try fuzz("JPEG", seeds: seeds, count: max(1, Self.iterations / 4), mutate: { bytes, rng in
            [Mutations.generic(&bytes, &rng)] + (rng.next() % 2 == 0 ? [Mutations.generic(&bytes, &rng)] : [])
        }, read: { data in
            let image = try JPEGFile.decode(data, file: "fuzz.jpg")
            try Self.check(image.samples.count == image.width * image.height * image.channels, "inconsistent JPEG image")
        })
    }

    // MARK: - Driver

    struct Inconsistent: Error { var message: String }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw Inconsistent(message: message()) }
    }

    /// Runs `count` seeded cases; each mutates one of `seeds` and reads it. Every 97th case goes
    /// through a real file so the path-based entry point is fuzzed too.
    func fuzz(_ format: String, seeds: [[UInt8]], count: Int,
              mutate: (inout [UInt8], inout SeededRandom) -> [String], read: (Data) throws -> Void) throws {
        let dir = try temporaryDirectory("fuzz")
        defer { try? FileManager.default.removeItem(at: dir) }
        var outcomes = [String: Int]()
        for index in 0..<count {
            var rng = SeededRandom(seed: 0xF022 &+ UInt64(index))
            var bytes = seeds[index % seeds.count]
            let notes = mutate(&bytes, &rng)
            do {
                if index % 97 == 0 {
                    let path = dir.appendingPathComponent("case-\(index)").path
                    try Data(bytes).write(to: URL(fileURLWithPath: path))
                    switch format {
                    case "PNG": _ = try PNGFile.read(path)
                    case "safetensors": _ = try SafeTensorsFile.read(path)
                    case "NIfTI": _ = try NIfTIFile.read(path)
                    default: _ = try JPEGFile.read(path)
                    }
                }
                try read(Data(bytes))
                outcomes["read", default: 0] += 1
            } catch let error as RefineSegError {
                guard case let .io(_, message) = error, !message.isEmpty, !message.contains("\n") else {
                    XCTFail("\(format) case \(index) \(notes): not a one-line io error: \(error)")
                    continue
                }
                outcomes["refused", default: 0] += 1
            } catch {
                XCTFail("\(format) case \(index) \(notes): \(error)")
            }
        }
        print("fuzz \(format): \(count) cases, \(outcomes["read", default: 0]) read, \(outcomes["refused", default: 0]) refused")
        // Both outcomes must occur, or the mutations are too weak (or too strong) to test anything.
        XCTAssertGreaterThan(outcomes["refused", default: 0], count / 10, "\(format): \(outcomes)")
        if count >= 200 { XCTAssertGreaterThan(outcomes["read", default: 0], 0, "\(format): \(outcomes)") }
    }

    // MARK: - Seed files

    static func pattern(_ width: Int, _ height: Int, _ channels: Int, top: Int = 255) -> RawImage {
        RawImage(width: width, height: height, channels: channels, bitDepth: top > 255 ? 16 : 8,
                 samples: (0..<(width * height * channels)).map { UInt16(($0 * 37 + $0 / 5) % (top + 1)) })
    }

    func pngSeeds() throws -> [[UInt8]] {
        var seeds = [
            try PNGFile.encode(Self.pattern(16, 16, 3), file: "seed"),
            try PNGFile.encode(Self.pattern(9, 7, 1, top: 65535), file: "seed"),
            try PNGFile.encode(packedRows: (0..<64).map { UInt8($0 % 4) }, width: 8, height: 8, colorType: 3, bitDepth: 8,
                               palette: [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255], transparency: [0, 200]),
            try PNGFile.encode(packedRows: (0..<(11 * 5 * 8)).map { UInt8($0 * 13 % 256) }, width: 11, height: 5,
                               colorType: 6, bitDepth: 16, interlaced: true),
            try PNGFile.encode(packedRows: [0b1010_1010, 0b0101_0000, 0xFF, 0x00], width: 12, height: 2, colorType: 0, bitDepth: 1),
        ].map { [UInt8]($0) }
        // A real tile from the sample dataset, when present (PNGTests checks that it is).
        let tile = packageRoot.appendingPathComponent("data/sample/test/masks/kdsb18_y384_x384.png")
        if let data = try? Data(contentsOf: tile) { seeds.append([UInt8](data)) }
        return seeds
    }

    func safeTensorsSeeds() throws -> [[UInt8]] {
        let f32 = SafeTensorsFile(tensors: [("enc.weight", [2, 1, 3, 3], (0..<18).map { Float($0) / 7 }),
                                            ("enc.bias", [2], [0.5, -0.5]), ("step", [], [3])],
                                  metadata: ["format": "refineseg", "width": "16"])
        let header = #"{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[6,10]},"d":{"dtype":"F64","shape":[1],"data_offsets":[10,18]}}"#
        var mixed = [UInt8]()
        var length = UInt64(header.utf8.count)
        for _ in 0..<8 { mixed.append(UInt8(length & 0xFF)); length >>= 8 }
        mixed += Array(header.utf8) + (0..<18).map { UInt8($0 * 29 % 256) }
        return [[UInt8](try f32.encode(file: "seed")), mixed]
    }

    func niftiSeeds() throws -> [[UInt8]] {
        let volume = NIfTIVolume(dims: [4, 3, 2], datatype: 4, values: (0..<24).map { Float($0 * 100 - 1000) })
        let little = try NIfTIFile.encode(volume, bigEndian: false, slope: 0.5, intercept: 1, file: "seed")
        let big = try NIfTIFile.encode(NIfTIVolume(dims: [3, 3, 1], datatype: 64, values: (0..<9).map { Float($0) / 4 }),
                                       bigEndian: true, slope: 0, intercept: 0, file: "seed")
        return [little, big, try Gzip.deflate(little, file: "seed"), try Gzip.deflate(big, file: "seed")]
    }
}

/// The damage done to seed files. Each returns a short note for failure messages.
enum Mutations {
    static let interesting32: [UInt32] = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000,
                                          0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF]

    static func pick(_ n: Int, _ rng: inout SeededRandom) -> Int { n <= 0 ? 0 : Int(rng.next() % UInt64(n)) }

    /// Format-blind damage: flips, overwrites, truncation, insertion, duplication of a range.
    static func generic(_ bytes: inout [UInt8], _ rng: inout SeededRandom) -> String {
        guard !bytes.isEmpty else { bytes = [UInt8(pick(256, &rng))]; return "grow-empty" }
        switch rng.next() % 7 {
        case 0:
            let flips = 1 + pick(8, &rng)
            for _ in 0..<flips { bytes[pick(bytes.count, &rng)] ^= UInt8(1 << pick(8, &rng)) }
            return "flip×\(flips)"
        case 1:
            let at = pick(bytes.count, &rng)
            bytes[at] = [0x00, 0xFF, 0x7F, 0x80, UInt8(pick(256, &rng))][pick(5, &rng)]
            return "byte@\(at)"
        case 2:
            let keep = pick(bytes.count, &rng)
            bytes.removeSubrange(keep...)
            return "truncate@\(keep)"
        case 3:
            let at = pick(bytes.count + 1, &rng), n = 1 + pick(16, &rng)
            bytes.insert(contentsOf: (0..<n).map { _ in UInt8(pick(256, &rng)) }, at: at)
            return "insert\(n)@\(at)"
        case 4:
            let at = pick(bytes.count, &rng), n = min(bytes.count - at, 1 + pick(64, &rng))
            bytes.insert(contentsOf: bytes[at..<(at + n)], at: at)
            return "duplicate\(n)@\(at)"
        case 5:
            let at = pick(max(1, bytes.count - 3), &rng)
            let v = interesting32[pick(interesting32.count, &rng)]
            for k in 0..<min(4, bytes.count - at) { bytes[at + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
            return "word\(v)@\(at)"
        default:
            let at = pick(bytes.count, &rng), n = min(bytes.count - at, 1 + pick(32, &rng))
            bytes.removeSubrange(at..<(at + n))
            return "delete\(n)@\(at)"
        }
    }

    /// PNG chunks as (offset of the length field, data length, type).
    static func chunks(_ bytes: [UInt8]) -> [(at: Int, length: Int, type: String)] {
        var out: [(Int, Int, String)] = []
        var at = 8
        while at + 12 <= bytes.count {
            let length = Int(bytes[at..<(at + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard length <= bytes.count - at - 12 else { break }
            out.append((at, length, String(decoding: bytes[(at + 4)..<(at + 8)], as: UTF8.self)))
            at += 12 + length
        }
        return out
    }

    /// Edits inside one chunk (its data, or its length field) and repairs the CRC, so libpng
    /// accepts the chunk and meets the damage in IHDR fields, the palette or the zlib stream.
    static func pngChunkEdit(_ bytes: inout [UInt8], _ rng: inout SeededRandom) -> String {
        let list = chunks(bytes)
        guard !list.isEmpty else { return generic(&bytes, &rng) }
        let chunk = list[pick(list.count, &rng)]
        if rng.next() % 3 == 0 {
            let v: UInt32 = rng.next() % 2 == 0 ? interesting32[pick(interesting32.count, &rng)]
                                                 : UInt32(max(0, chunk.length + pick(9, &rng) - 4))
            for k in 0..<4 { bytes[chunk.at + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * k)) }
            return "\(chunk.type).length=\(v)"
        }
        guard chunk.length > 0 else { return generic(&bytes, &rng) }
        let at = chunk.at + 8 + pick(chunk.length, &rng)
        bytes[at] = rng.next() % 2 == 0 ? bytes[at] ^ UInt8(1 << pick(8, &rng)) : UInt8(pick(256, &rng))
        let crc = crc32(Array(bytes[(chunk.at + 4)..<(chunk.at + 8 + chunk.length)]))
        for k in 0..<4 { bytes[chunk.at + 8 + chunk.length + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * k)) }
        return "\(chunk.type)[\(at - chunk.at - 8)]+crc"
    }

    /// Inserts a copy of one chunk after it (two IHDRs, two PLTEs, an IDAT repeated, ...).
    static func pngDuplicateChunk(_ bytes: inout [UInt8], _ rng: inout SeededRandom) -> String {
        let list = chunks(bytes)
        guard !list.isEmpty else { return generic(&bytes, &rng) }
        let chunk = list[pick(list.count, &rng)]
        let end = chunk.at + 12 + chunk.length
        bytes.insert(contentsOf: bytes[chunk.at..<end], at: end)
        return "dup \(chunk.type)"
    }

    /// Rewrites the 8-byte header length of a safetensors file.
    static func safeTensorsHeaderLength(_ bytes: inout [UInt8], _ rng: inout SeededRandom) -> String {
        guard bytes.count >= 8 else { return generic(&bytes, &rng) }
        let current = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let choices: [UInt64] = [0, 1, 7, current &- 1, current &+ 1, current &+ 8, UInt64(bytes.count), UInt64(bytes.count - 8),
                                 100_000_001, UInt64(Int.max), UInt64.max, 1 << 32]
        var v = choices[pick(choices.count, &rng)]
        let chosen = v
        for k in 0..<8 { bytes[k] = UInt8(v & 0xFF); v >>= 8 }
        return "header-length=\(chosen)"
    }

    /// Replaces one number in the JSON header with a hostile one (negative, huge, fractional,
    /// beyond Int64), keeping the header length consistent so the parser sees the change.
    static func jsonNumber(_ bytes: inout [UInt8], _ rng: inout SeededRandom) -> String {
        guard bytes.count >= 8 else { return generic(&bytes, &rng) }
        let length = Int(min(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }, UInt64(bytes.count - 8)))
        let header = 8..<(8 + length)
        var runs: [Range<Int>] = []
        var i = header.lowerBound
        while i < header.upperBound {
            if (0x30...0x39).contains(bytes[i]) {
                let start = i
                while i < header.upperBound, (0x30...0x39).contains(bytes[i]) { i += 1 }
                runs.append(start..<i)
            } else { i += 1 }
        }
        guard !runs.isEmpty else { return generic(&bytes, &rng) }
        let run = runs[pick(runs.count, &rng)]
        let replacements = ["0", "-1", "4", "1.5", "1e3", "9223372036854775807", "9223372036854775808",
                            "4294967296", "18446744073709551617", "99999999999999999999999", String(pick(1 << 20, &rng))]
        let text = replacements[pick(replacements.count, &rng)]
        bytes.replaceSubrange(run, with: Array(text.utf8))
        var newLength = UInt64(length + text.utf8.count - run.count)
        for k in 0..<8 { bytes[k] = UInt8(newLength & 0xFF); newLength >>= 8 }
        return "number@\(run.lowerBound)=\(text)"
    }

    /// Overwrites one NIfTI header field that sizes or locates the data (uncompressed files;
    /// gzip'd ones get generic damage instead).
    static func niftiField(_ bytes: inout [UInt8], _ rng: inout SeededRandom) -> String {
        guard bytes.count >= 348, !(bytes[0] == 0x1F && bytes[1] == 0x8B) else { return generic(&bytes, &rng) }
        let bigEndian = bytes[0] == 0
        let fields: [(name: String, at: Int, size: Int)] = [("sizeof_hdr", 0, 4), ("dim0", 40, 2), ("dim1", 42, 2), ("dim2", 44, 2),
            ("dim3", 46, 2), ("dim4", 48, 2), ("datatype", 70, 2), ("bitpix", 72, 2), ("vox_offset", 108, 4),
            ("scl_slope", 112, 4), ("scl_inter", 116, 4), ("magic", 344, 4)]
        let field = fields[pick(fields.count, &rng)]
        var v: UInt32 = interesting32[pick(interesting32.count, &rng)]
        if field.name == "vox_offset" || field.name.hasPrefix("scl") {
            let floats: [Float] = [0, -1, 348, 352, 353.5, 1e9, .infinity, .nan, -.infinity, 3e38]
            v = floats[pick(floats.count, &rng)].bitPattern
        }
        for k in 0..<field.size {
            let shift = 8 * (bigEndian ? field.size - 1 - k : k)
            bytes[field.at + k] = UInt8(truncatingIfNeeded: v >> shift)
        }
        return "\(field.name)=\(v)"
    }
}
