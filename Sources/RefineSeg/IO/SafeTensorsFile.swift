import Foundation

/// A safetensors file (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]},
/// "__metadata__": {string: string}}`, then the byte buffer the offsets point into.
///
/// Values are held as Float in row-major order of `shape`. Reading accepts F32, F16, BF16 and
/// F64 (F64 is rounded to Float); writing always stores F32 little-endian. Every header field is
/// validated against the file size before any tensor storage is allocated, so a hostile header
/// cannot make the reader allocate more than the file holds.
public struct SafeTensorsFile {
    public var tensors: [(name: String, shape: [Int], values: [Float])]
    public var metadata: [String: String]

    /// Largest header accepted (the Python library's limit).
    public static let maxHeaderBytes = 100_000_000

    public init(tensors: [(name: String, shape: [Int], values: [Float])] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, if present.
    public subscript(name: String) -> (shape: [Int], values: [Float])? {
        tensors.first { $0.name == name }.map { ($0.shape, $0.values) }
    }

    /// Reads the file at `path`, refusing files above `maxBytes`. Tensors come back in file order
    /// of their data (which is name order for files this type writes).
    public static func read(_ path: String, maxBytes: Int = 4 << 30) throws -> SafeTensorsFile {
        try decode(FileBytes.read(path, maxBytes: maxBytes), file: path)
    }

    /// Writes F32 little-endian tensors sorted by name (as the Python library does), the header
    /// padded with spaces to a multiple of 8, atomically.
    public func write(to path: String) throws {
        try writeAtomically(encode(file: path), to: path)
    }
}

extension SafeTensorsFile {
    enum DType: String, CaseIterable {
        case F32, F16, BF16, F64
        var size: Int {
            switch self {
            case .F16, .BF16: return 2
            case .F32: return 4
            case .F64: return 8
            }
        }
    }

    /// One header entry after validation: where its bytes are and how to read them.
    struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var count: Int
        var begin: Int
        var end: Int
    }

    /// Parses and validates safetensors bytes; `file` names the source in errors.
    static func decode(_ data: Data, file: String) throws -> SafeTensorsFile {
        func fail(_ message: String) -> RefineSegError { .io(file: file, message: message) }
        // Only the length field and the header are copied; tensor bytes are read in place.
        let size = data.count
        if size == 0 { throw fail("empty file") }
        if size < 8 { throw fail("file of \(size) bytes is shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        if headerLength > UInt64(maxHeaderBytes) {
            throw fail("header length \(headerLength) is above the limit of \(maxHeaderBytes) bytes")
        }
        if headerLength > UInt64(size - 8) {
            throw fail("header length \(headerLength) is beyond the file of \(size) bytes")
        }
        let headerEnd = 8 + Int(headerLength)
        let bufferLength = size - headerEnd
        let json: JSONValue
        do {
            json = try JSONValue.parse([UInt8](data[(data.startIndex + 8)..<(data.startIndex + headerEnd)])[...])
        } catch let error as JSONValue.ParseError {
            throw fail("header is not valid JSON (\(error.message) at header byte \(error.offset))")
        }
        guard case let .object(members) = json else { throw fail("header is not a JSON object") }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(map) = value else { throw fail("__metadata__ is not a map of strings to strings") }
                for (key, item) in map {
                    guard let text = item.stringValue else { throw fail("__metadata__ entry \"\(key)\" is not a string") }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try entry(name: name, value, bufferLength: bufferLength, file: file))
        }

        // Overlapping tensors would let a header declare more bytes than the buffer holds.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var previous: Entry?
        for e in entries where e.end > e.begin {
            if let p = previous, e.begin < p.end {
                throw fail("tensor \"\(e.name)\": data_offsets [\(e.begin), \(e.end)] overlap tensor \"\(p.name)\" at [\(p.begin), \(p.end)]")
            }
            previous = e
        }

        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        tensors.reserveCapacity(entries.count)
        data.withUnsafeBytes { raw in
            for e in entries {
                tensors.append((e.name, e.shape, convert(raw, from: headerEnd + e.begin, count: e.count, dtype: e.dtype)))
            }
        }
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }

    /// Validates one header entry: known dtype, non-negative shape whose byte size does not
    /// overflow, data_offsets inside the buffer and matching shape × dtype size.
    private static func entry(name: String, _ value: JSONValue, bufferLength: Int, file: String) throws -> Entry {
        func fail(_ message: String) -> RefineSegError { .io(file: file, message: "tensor \"\(name)\": \(message)") }
        guard case let .object(members) = value else { throw fail("header entry is not a JSON object") }
        let fields = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        guard let dtypeName = fields["dtype"]?.stringValue else { throw fail("dtype is missing or not a string") }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw fail("dtype \"\(dtypeName)\" is not supported (F32, F16, BF16 or F64)")
        }
        guard case let .array(shapeItems) = fields["shape"] else { throw fail("shape is missing or not an array") }
        var shape: [Int] = []
        var count = 1
        for item in shapeItems {
            guard let d = item.exactInt, d >= 0 else { throw fail("shape has an entry that is not a non-negative integer") }
            shape.append(d)
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            if overflow { throw fail("shape \(shape.map(String.init).joined(separator: "×"))… has more elements than an Int can count") }
            count = product
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        if overflow { throw fail("shape \(shape) of \(dtype.rawValue) has more bytes than an Int can count") }
        guard case let .array(offsets) = fields["data_offsets"], offsets.count == 2,
              let begin = offsets[0].exactInt, let end = offsets[1].exactInt else {
            throw fail("data_offsets is missing or not two integers")
        }
        if begin < 0 || end < begin {
            throw fail("data_offsets [\(begin), \(end)] are not an increasing pair of non-negative offsets")
        }
        if end > bufferLength {
            throw fail("data_offsets [\(begin), \(end)] are beyond the byte buffer of \(bufferLength) bytes")
        }
        if end - begin != byteCount {
            throw fail("data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(byteCount)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, count: count, begin: begin, end: end)
    }

    /// Decodes `count` little-endian values of `dtype` starting at byte `start`.
    private static func convert(_ bytes: UnsafeRawBufferPointer, from start: Int, count: Int, dtype: DType) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        func word(_ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in (0..<n).reversed() { v = v << 8 | UInt64(bytes[at + k]) }
            return v
        }
        for i in 0..<count {
            let at = start + i * dtype.size
            switch dtype {
            case .F32: values[i] = Float(bitPattern: UInt32(word(at, 4)))
            case .F64: values[i] = Float(Double(bitPattern: word(at, 8)))
            case .BF16: values[i] = Float(bitPattern: UInt32(word(at, 2)) << 16)
            case .F16: values[i] = halfToFloat(UInt16(word(at, 2)))
            }
        }
        return values
    }

    /// IEEE binary16 to Float, exact (subnormals, infinities and NaN included). Written out
    /// because Swift's Float16 is unavailable on macOS/x86_64.
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
        if exponent == 0 {
            // Subnormal or zero: mantissa × 2^-24, exactly representable in Float.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
    }

    /// The file's bytes: header (names sorted, `__metadata__` first when present), then F32 data.
    func encode(file: String) throws -> Data {
        func fail(_ message: String) -> RefineSegError { .io(file: file, message: "cannot write safetensors: \(message)") }
        let sorted = tensors.sorted { $0.name < $1.name }
        var json = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(Self.jsonString($0)):\(Self.jsonString(metadata[$0] ?? ""))" }
            parts.append("\"__metadata__\":{" + items.joined(separator: ",") + "}")
        }
        var offset = 0
        var seen = Set<String>()
        for t in sorted {
            if t.name == "__metadata__" { throw fail("a tensor may not be called __metadata__") }
            if !seen.insert(t.name).inserted { throw fail("two tensors are called \"\(t.name)\"") }
            if t.shape.contains(where: { $0 < 0 }) { throw fail("tensor \"\(t.name)\" has a negative dimension in \(t.shape)") }
            var count = 1
            for d in t.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                if overflow { throw fail("tensor \"\(t.name)\" shape \(t.shape) has more elements than an Int can count") }
                count = product
            }
            if count != t.values.count {
                throw fail("tensor \"\(t.name)\" has shape \(t.shape) (\(count) values) but \(t.values.count) values")
            }
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(Self.jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + 4 * count)]}")
            offset += 4 * count
        }
        json += parts.joined(separator: ",") + "}"
        var header = Array(json.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var out = [UInt8]()
        out.reserveCapacity(8 + header.count + offset)
        var length = UInt64(header.count)
        for _ in 0..<8 { out.append(UInt8(length & 0xFF)); length >>= 8 }
        out += header
        for t in sorted {
            for v in t.values {
                var bits = v.bitPattern
                for _ in 0..<4 { out.append(UInt8(bits & 0xFF)); bits >>= 8 }
            }
        }
        return Data(out)
    }

    /// A JSON string literal for `text` (RFC 8259 escaping).
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
