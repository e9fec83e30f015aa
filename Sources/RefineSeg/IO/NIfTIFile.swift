import Foundation

/// A NIfTI-1 volume: its first three dimensions and voxel values as Float.
///
/// Layout: `values[x + dims[0] * (y + dims[1] * z)]` (x fastest, as stored on disk).
/// `values` are the scaled values `stored * scl_slope + scl_inter` when the file's scl_slope is
/// finite and non-zero, else the stored values. Float32 holds every uint8/int8/int16/uint16
/// value exactly; int32 beyond ±2^24 and float64 are rounded to the nearest Float.
public struct NIfTIVolume: Equatable, Sendable {
    /// [x, y, z]; a 1-D or 2-D file has trailing 1s.
    public var dims: [Int]
    /// The NIfTI datatype code as stored (2 uint8, 4 int16, 8 int32, 16 float32, 64 float64,
    /// 256 int8, 512 uint16).
    public var datatype: Int
    public var values: [Float]
    /// Voxel size [dx, dy, dz] (pixdim[1...3]), in the file's spatial units.
    public var pixdim: [Float]
    /// Volumes in the file: dim[4] of a 4-D file read with `channels: true` (one per modality),
    /// else 1. `values` holds them one after the other, each a whole 3-D volume (as on disk).
    public var channels: Int
    /// The file's 348-byte header as read (its byte order in `header.bigEndian`), so outputs can
    /// carry the same affine, qform/sform, units and description; nil for volumes made in memory.
    public var header: NIfTIHeader?

    public init(dims: [Int], datatype: Int, values: [Float], pixdim: [Float] = [1, 1, 1], channels: Int = 1, header: NIfTIHeader? = nil) {
        precondition(dims.count == 3 && pixdim.count == 3, "NIfTIVolume: dims and pixdim have 3 entries")
        precondition(channels >= 1 && values.count == dims.reduce(1, *) * channels, "NIfTIVolume: \(values.count) values for dims \(dims) × \(channels)")
        self.dims = dims
        self.datatype = datatype
        self.values = values
        self.pixdim = pixdim
        self.channels = channels
        self.header = header
    }

    /// Equal data: dims, datatype, values, pixdim and channels (the raw header is not compared).
    public static func == (a: NIfTIVolume, b: NIfTIVolume) -> Bool {
        a.dims == b.dims && a.datatype == b.datatype && a.values == b.values && a.pixdim == b.pixdim && a.channels == b.channels
    }

    /// Voxels of one channel.
    public var voxelCount: Int { dims.reduce(1, *) }

    /// The values of channel `c` (a whole 3-D volume, x fastest).
    public func channel(_ c: Int) -> ArraySlice<Float> { values[(c * voxelCount)..<((c + 1) * voxelCount)] }
}

/// A NIfTI-1 header as stored (348 bytes in the file's byte order), with the fields RefineSeg
/// reads back. Outputs written `like:` a header copy it and change only what describes the
/// voxel data (dim, datatype, bitpix, vox_offset, scaling, cal_min/max).
public struct NIfTIHeader: Equatable, Sendable {
    public var bytes: [UInt8]
    public var bigEndian: Bool

    var fields: NIfTIFile.Header { NIfTIFile.Header(bytes) }
    public var qformCode: Int { Int(fields.int16(252, bigEndian: bigEndian)) }
    public var sformCode: Int { Int(fields.int16(254, bigEndian: bigEndian)) }
    /// srow_x, srow_y, srow_z (the sform affine's rows).
    public var sform: [[Float]] { (0..<3).map { r in (0..<4).map { fields.float(280 + 16 * r + 4 * $0, bigEndian: bigEndian) } } }
    /// quatern_b, c, d, qoffset_x, y, z.
    public var quaternion: [Float] { (0..<6).map { fields.float(256 + 4 * $0, bigEndian: bigEndian) } }
    /// pixdim[0...7] (pixdim[0] is qfac).
    public var pixdim: [Float] { (0..<8).map { fields.float(76 + 4 * $0, bigEndian: bigEndian) } }
    public var xyztUnits: UInt8 { bytes[123] }
}

/// NIfTI-1 single-file volumes (.nii, and .nii.gz through zlib), either byte order.
///
/// The header is validated before any voxel storage is allocated: sizeof_hdr 348 (or 348
/// byte-swapped, meaning a big-endian file), magic "n+1", dims within the limits, a supported
/// datatype whose bitpix agrees, a sane vox_offset, and enough bytes after it.
public enum NIfTIFile {
    /// Largest voxel count read (2^28).
    public static let maxVoxels = 1 << 28
    /// Largest file read (compressed bytes for .nii.gz).
    public static let maxFileBytes = 3 << 30
    static let headerSize = 348

    enum DataType: Int, CaseIterable {
        case uint8 = 2, int16 = 4, int32 = 8, float32 = 16, float64 = 64, int8 = 256, uint16 = 512

        var bytes: Int {
            switch self {
            case .uint8, .int8: return 1
            case .int16, .uint16: return 2
            case .int32, .float32: return 4
            case .float64: return 8
            }
        }

        /// Sample value from `bytes[at...]`, already in little-endian order.
        func value(_ bytes: [UInt8], _ at: Int, bigEndian: Bool) -> Float {
            var raw: UInt64 = 0
            for k in 0..<self.bytes {
                raw |= UInt64(bytes[at + k]) << (8 * (bigEndian ? self.bytes - 1 - k : k))
            }
            switch self {
            case .uint8: return Float(UInt8(raw))
            case .int8: return Float(Int8(bitPattern: UInt8(raw)))
            case .int16: return Float(Int16(bitPattern: UInt16(raw)))
            case .uint16: return Float(UInt16(raw))
            case .int32: return Float(Int32(bitPattern: UInt32(raw)))
            case .float32: return Float(bitPattern: UInt32(raw))
            case .float64: return Float(Double(bitPattern: raw))
            }
        }
    }

    /// Reads a .nii or .nii.gz file (gzip is recognised by content, not by name). With
    /// `channels`, a 4-D file (dim[4] > 1: one volume per modality) is read too.
    public static func read(_ path: String, channels: Bool = false) throws -> NIfTIVolume {
        try decode(FileBytes.read(path, maxBytes: maxFileBytes), file: path, channels: channels)
    }

    static func decode(_ data: Data, file: String, channels allowChannels: Bool = false) throws -> NIfTIVolume {
        func fail(_ message: String) -> RefineSegError { .io(file: file, message: message) }
        let raw = [UInt8](data)
        if raw.isEmpty { throw fail("empty file") }
        let gzipped = Gzip.isGzip(raw)
        let head = gzipped ? try Gzip.inflate(raw, limit: headerSize, file: file) : Array(raw.prefix(headerSize))
        if head.count < headerSize {
            throw fail("truncated NIfTI header (\(head.count) of \(headerSize) bytes\(gzipped ? " after decompression" : ""))")
        }
        let header = Header(head)
        guard let bigEndian = header.byteOrder else {
            throw fail("not a NIfTI-1 file (sizeof_hdr is \(header.int32(0, bigEndian: false)), expected 348)")
        }
        let magic = Array(head[344..<348])
        if magic == Array("ni1\0".utf8) {
            throw fail("is the header of a .hdr/.img pair (magic \"ni1\"); only single-file .nii volumes are read")
        }
        guard magic == Array("n+1\0".utf8) else {
            throw fail("not a NIfTI-1 file (magic is \(magic.map { String(format: "%02x", $0) }.joined(separator: " ")), expected \"n+1\")")
        }
        let dim = (0..<8).map { Int(header.int16(40 + 2 * $0, bigEndian: bigEndian)) }
        guard (1...7).contains(dim[0]) else { throw fail("dim[0] is \(dim[0]), expected 1 to 7") }
        for i in 1...dim[0] where dim[i] < 1 { throw fail("dim[\(i)] is \(dim[i]), expected at least 1") }
        let firstExtra = allowChannels ? 5 : 4
        if dim[0] >= firstExtra, let extra = (firstExtra...dim[0]).first(where: { dim[$0] > 1 }) {
            throw fail("\(dim[0])-D volume (dim[\(extra)] is \(dim[extra])) is not supported; only 3-D volumes\(allowChannels ? " and 4-D ones (one volume per modality)" : "") are read")
        }
        let dims = (1...3).map { $0 <= dim[0] ? dim[$0] : 1 }
        let channelCount = allowChannels && dim[0] >= 4 ? dim[4] : 1
        let voxels = dims.reduce(1, *) * channelCount // each ≤ 32767: at most 2^60, no overflow
        if voxels > maxVoxels {
            throw fail("volume is \((dims + (channelCount > 1 ? [channelCount] : [])).map(String.init).joined(separator: "×")), above the limit of \(maxVoxels) voxels")
        }
        let code = Int(header.int16(70, bigEndian: bigEndian))
        guard let type = DataType(rawValue: code) else {
            throw fail("datatype \(code) is not supported (uint8 2, int16 4, int32 8, float32 16, float64 64, int8 256, uint16 512)")
        }
        let bitpix = Int(header.int16(72, bigEndian: bigEndian))
        if bitpix != 8 * type.bytes {
            throw fail("bitpix \(bitpix) does not match datatype \(code) (\(type), \(8 * type.bytes) bits)")
        }
        let offsetValue = header.float(108, bigEndian: bigEndian)
        guard offsetValue.isFinite, offsetValue >= Float(headerSize), offsetValue <= Float(maxFileBytes),
              offsetValue.rounded() == offsetValue else {
            throw fail("vox_offset \(offsetValue) is not a whole byte offset from \(headerSize) to \(maxFileBytes)")
        }
        let offset = Int(offsetValue)
        let needed = offset + voxels * type.bytes
        let body = gzipped ? try Gzip.inflate(raw, limit: needed, file: file) : raw
        if body.count < needed {
            throw fail("truncated: \(dims.map(String.init).joined(separator: "×")) \(type) voxels at offset \(offset) need \(needed) bytes, the \(gzipped ? "decompressed " : "")file has \(body.count)")
        }
        let slope = header.float(112, bigEndian: bigEndian), intercept = header.float(116, bigEndian: bigEndian)
        let scaled = slope.isFinite && slope != 0
        var values = [Float](repeating: 0, count: voxels) // [Z, Y, X], x fastest
        for i in 0..<voxels {
            let v = type.value(body, offset + i * type.bytes, bigEndian: bigEndian)
            values[i] = scaled ? v * slope + (intercept.isFinite ? intercept : 0) : v
        }
        let pixdim = (1...3).map { header.float(76 + 4 * $0, bigEndian: bigEndian) }
        return NIfTIVolume(dims: dims, datatype: code, values: values, pixdim: pixdim, channels: channelCount,
                           header: NIfTIHeader(bytes: head, bigEndian: bigEndian))
    }

    /// Field access into the 348-byte header in either byte order.
    struct Header {
        let bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// false for little-endian, true for big-endian, nil when sizeof_hdr is 348 in neither.
        var byteOrder: Bool? {
            if int32(0, bigEndian: false) == 348 { return false }
            if int32(0, bigEndian: true) == 348 { return true }
            return nil
        }

        func word(_ at: Int, _ n: Int, bigEndian: Bool) -> UInt32 {
            (0..<n).reduce(UInt32(0)) { acc, k in acc | UInt32(bytes[at + k]) << (8 * (bigEndian ? n - 1 - k : k)) }
        }
        func int16(_ at: Int, bigEndian: Bool) -> Int16 { Int16(bitPattern: UInt16(word(at, 2, bigEndian: bigEndian))) }
        func int32(_ at: Int, bigEndian: Bool) -> Int32 { Int32(bitPattern: word(at, 4, bigEndian: bigEndian)) }
        func float(_ at: Int, bigEndian: Bool) -> Float { Float(bitPattern: word(at, 4, bigEndian: bigEndian)) }
    }
}

extension NIfTIFile {
    /// Writes `volume.values` as the stored values of `volume.datatype` (each must be exactly
    /// representable in it), with `slope` and `intercept` in scl_slope/scl_inter unchanged, so a
    /// reader returns `value * slope + intercept` when slope is non-zero. A path ending in ".gz"
    /// is gzip-compressed. Used for test fixtures and conversions; atomic like every writer.
    public static func write(_ volume: NIfTIVolume, to path: String, bigEndian: Bool = false,
                             slope: Float = 0, intercept: Float = 0) throws {
        let bytes = try encode(volume, bigEndian: bigEndian, slope: slope, intercept: intercept, file: path)
        try writeAtomically(Data(path.hasSuffix(".gz") ? try Gzip.deflate(bytes, file: path) : bytes), to: path)
    }

    /// Writes a 3-D volume of `values` (x fastest, `dims`) as `datatype` with the header of
    /// `like` (a volume read from a file, e.g. the scan a mask was predicted from): the same byte
    /// order, affine (qform and sform with their codes), pixdim, units, description and intent
    /// name; only dim (3-D, `dims`), datatype, bitpix, vox_offset, scl_slope/inter (1, 0) and
    /// cal_min/cal_max (`calibration`) change. A path ending in ".gz" is gzip-compressed; atomic.
    public static func write(values: [Float], dims: [Int], datatype: Int, like header: NIfTIHeader,
                             calibration: (min: Float, max: Float) = (0, 0), to path: String) throws {
        precondition(dims.count == 3 && values.count == dims.reduce(1, *), "NIfTIFile.write: \(values.count) values for dims \(dims)")
        var base = header.bytes
        func put(_ value: UInt64, _ n: Int, at: Int) {
            for k in 0..<n { base[at + k] = UInt8(truncatingIfNeeded: value >> (8 * (header.bigEndian ? n - 1 - k : k))) }
        }
        put(UInt64(Float(1).bitPattern), 4, at: 112) // scl_slope 1, scl_inter 0: stored values are the values
        put(0, 4, at: 116)
        put(UInt64(calibration.max.bitPattern), 4, at: 124)
        put(UInt64(calibration.min.bitPattern), 4, at: 128)
        var volume = NIfTIVolume(dims: dims, datatype: datatype, values: values)
        volume.header = NIfTIHeader(bytes: base, bigEndian: header.bigEndian)
        let bytes = try encode(volume, bigEndian: header.bigEndian, slope: 1, intercept: 0, file: path)
        try writeAtomically(Data(path.hasSuffix(".gz") ? try Gzip.deflate(bytes, file: path) : bytes), to: path)
    }

    static func encode(_ volume: NIfTIVolume, bigEndian: Bool, slope: Float, intercept: Float, file: String) throws -> [UInt8] {
        func refuse(_ why: String) -> RefineSegError { .io(file: file, message: "cannot write NIfTI: \(why)") }
        guard let type = DataType(rawValue: volume.datatype) else { throw refuse("datatype \(volume.datatype) is not supported") }
        guard volume.dims.allSatisfy({ (1...32767).contains($0) }) else { throw refuse("dims \(volume.dims) are outside 1...32767") }
        let offset = headerSize + 4 // the 4-byte extension flag (all zero: no extensions)
        var out = [UInt8](repeating: 0, count: offset + volume.values.count * type.bytes)
        func put(_ value: UInt64, _ n: Int, at: Int) {
            for k in 0..<n { out[at + k] = UInt8(truncatingIfNeeded: value >> (8 * (bigEndian ? n - 1 - k : k))) }
        }
        if let header = volume.header, header.bigEndian == bigEndian, header.bytes.count == headerSize {
            out.replaceSubrange(0..<headerSize, with: header.bytes)   // then the data fields below
        } else {
            put(UInt64(Float(1).bitPattern), 4, at: 76) // pixdim[0] = qfac
            for (i, p) in volume.pixdim.enumerated() { put(UInt64(p.bitPattern), 4, at: 80 + 4 * i) }
            out[123] = 2 // xyzt_units: millimetres
            for (k, byte) in "n+1\0".utf8.enumerated() { out[344 + k] = byte }
        }
        put(UInt64(headerSize), 4, at: 0)
        put(UInt64(volume.channels > 1 ? 4 : 3), 2, at: 40)
        for (i, d) in volume.dims.enumerated() { put(UInt64(d), 2, at: 42 + 2 * i) }
        for i in 4...7 { put(UInt64(i == 4 ? volume.channels : 1), 2, at: 40 + 2 * i) }
        put(UInt64(type.rawValue), 2, at: 70)
        put(UInt64(8 * type.bytes), 2, at: 72)
        put(UInt64(Float(offset).bitPattern), 4, at: 108)
        put(UInt64(slope.bitPattern), 4, at: 112)
        put(UInt64(intercept.bitPattern), 4, at: 116)
        for k in 348..<offset { out[k] = 0 }
        for (i, v) in volume.values.enumerated() {
            let at = offset + i * type.bytes
            func exact<T: BinaryInteger>(_: T.Type) throws -> T {
                guard let x = T(exactly: v) else { throw refuse("value \(v) at index \(i) is not a \(type)") }
                return x
            }
            switch type {
            case .uint8: put(UInt64(try exact(UInt8.self)), 1, at: at)
            case .int8: put(UInt64(UInt8(bitPattern: try exact(Int8.self))), 1, at: at)
            case .int16: put(UInt64(UInt16(bitPattern: try exact(Int16.self))), 2, at: at)
            case .uint16: put(UInt64(try exact(UInt16.self)), 2, at: at)
            case .int32: put(UInt64(UInt32(bitPattern: try exact(Int32.self))), 4, at: at)
            case .float32: put(UInt64(v.bitPattern), 4, at: at)
            case .float64: put(Double(v).bitPattern, 8, at: at)
            }
        }
        return out
    }
}
