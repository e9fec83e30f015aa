import CShims
import Foundation

/// PNG reading and writing through libpng, with every libpng error turned into
/// `RefineSegError.io` (the longjmp is caught in CShims, never in Swift).
///
/// Reading accepts every PNG colour type and depth: palette is expanded to RGB, grey below
/// 8 bits to 8 bits, alpha (and tRNS) is dropped, so the result has 1 or 3 channels of 8 or
/// 16 bits. Writing produces 8- or 16-bit grey or RGB (16-bit stored big-endian, as PNG requires).
public enum PNGFile {
    /// Largest PNG file read (compressed bytes).
    public static let maxFileBytes = 1 << 30

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Reads the PNG at `path`.
    public static func read(_ path: String) throws -> RawImage {
        try decode(FileBytes.read(path, maxBytes: maxFileBytes), file: path)
    }

    /// Writes `image` (1 or 3 channels, 8 or 16 bits) to `path` atomically.
    public static func write(_ image: RawImage, to path: String) throws {
        try writeAtomically(encode(image, file: path), to: path)
    }

    /// Decodes PNG bytes; `file` names the source in errors.
    static func decode(_ data: Data, file: String) throws -> RawImage {
        // The signature and IHDR are copied for checking; libpng reads the rest in place.
        let bytes = [UInt8](data.prefix(24))
        if bytes.isEmpty { throw RefineSegError.io(file: file, message: "empty file") }
        let prefix = min(bytes.count, signature.count)
        if Array(bytes[0..<prefix]) != Array(signature[0..<prefix]) {
            throw RefineSegError.io(file: file, message: "not a PNG file")
        }
        if data.count < signature.count {
            throw RefineSegError.io(file: file, message: "truncated or corrupt PNG (the file ends inside the signature)")
        }
        // IHDR must be the first chunk: check its size here so that even libpng's header pass
        // never sees a dimension we would refuse.
        if bytes.count >= 24, bytes[12..<16].elementsEqual("IHDR".utf8) {
            try ImageLimits.check(width: Int(bigEndian32(bytes, 16)), height: Int(bigEndian32(bytes, 20)), file: file)
        }
        var header = refineseg_png_header()
        let status = data.withUnsafeBytes { raw in
            refineseg_png_read_header(raw.baseAddress, raw.count, UInt32(ImageLimits.maxSide), &header)
        }
        if status != 0 { throw corrupt(file, tupleString(&header.message)) }
        let width = Int(header.width), height = Int(header.height), channels = Int(header.out_channels)
        try ImageLimits.check(width: width, height: height, file: file)
        guard channels == 1 || channels == 3, header.out_bit_depth == 8 || header.out_bit_depth == 16 else {
            throw corrupt(file, "unexpected layout: \(channels) channels of \(header.out_bit_depth) bits")
        }
        var samples = [UInt16](repeating: 0, count: width * height * channels)
        var text = [CChar](repeating: 0, count: Int(REFINESEG_MESSAGE_LEN))
        let decoded = data.withUnsafeBytes { raw in
            samples.withUnsafeMutableBufferPointer { out in
                refineseg_png_decode(raw.baseAddress, raw.count, UInt32(ImageLimits.maxSide),
                                     out.baseAddress, out.count, &text)
            }
        }
        if decoded != 0 { throw corrupt(file, cString(text)) }
        return RawImage(width: width, height: height, channels: channels, bitDepth: Int(header.out_bit_depth), samples: samples)
    }

    /// Encodes `image` as an 8- or 16-bit grey or RGB PNG; `file` names the target in errors.
    static func encode(_ image: RawImage, file: String) throws -> Data {
        func refuse(_ why: String) -> RefineSegError { .io(file: file, message: "cannot write PNG: \(why)") }
        guard image.channels == 1 || image.channels == 3 else { throw refuse("\(image.channels) channels (1 or 3 are written)") }
        guard image.bitDepth == 8 || image.bitDepth == 16 else { throw refuse("bit depth \(image.bitDepth) (8 or 16 are written)") }
        try ImageLimits.check(width: image.width, height: image.height, file: file)
        let bytesPerSample = image.bitDepth / 8
        var packed = [UInt8](repeating: 0, count: image.samples.count * bytesPerSample) // [H, W*C*bytes]
        if bytesPerSample == 1 {
            if let index = image.samples.firstIndex(where: { $0 > 255 }) {
                throw refuse("sample \(index) is \(image.samples[index]), above 255 for an 8-bit image")
            }
            for (i, v) in image.samples.enumerated() { packed[i] = UInt8(v) }
        } else {
            for (i, v) in image.samples.enumerated() {
                packed[2 * i] = UInt8(v >> 8)
                packed[2 * i + 1] = UInt8(v & 0xFF)
            }
        }
        return try encode(packedRows: packed, width: image.width, height: image.height,
                          colorType: image.channels == 1 ? 0 : 2, bitDepth: image.bitDepth, file: file)
    }

    /// Encodes rows already packed as PNG stores them (any colour type and depth libpng
    /// accepts). Tests use it for palette, alpha and 1/2/4-bit fixtures.
    /// `colorType` is PNG's: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA. `transparency` is
    /// the tRNS chunk body (palette alphas, or a big-endian 16-bit grey / RGB colour key).
    static func encode(packedRows: [UInt8], width: Int, height: Int, colorType: Int, bitDepth: Int,
                       interlaced: Bool = false, palette: [UInt8] = [], transparency: [UInt8] = [],
                       file: String = "<memory>") throws -> Data {
        guard height > 0, packedRows.count % height == 0 else {
            throw RefineSegError.io(file: file, message: "cannot write PNG: \(packedRows.count) bytes do not split into \(height) rows")
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var text = [CChar](repeating: 0, count: Int(REFINESEG_MESSAGE_LEN))
        let status = packedRows.withUnsafeBufferPointer { rows in
            palette.withUnsafeBufferPointer { plte in
                transparency.withUnsafeBufferPointer { trns in
                    refineseg_png_encode(rows.baseAddress, packedRows.count / height, UInt32(width), UInt32(height),
                                         Int32(colorType), Int32(bitDepth), interlaced ? 1 : 0,
                                         plte.baseAddress, Int32(palette.count / 3),
                                         trns.baseAddress, Int32(transparency.count), &out, &size, &text)
                }
            }
        }
        defer { refineseg_free(out) }
        guard status == 0, let out else {
            throw RefineSegError.io(file: file, message: "cannot write PNG (libpng: \(cString(text)))")
        }
        return Data(bytes: out, count: size)
    }

    private static func corrupt(_ file: String, _ detail: String) -> RefineSegError {
        .io(file: file, message: "truncated or corrupt PNG (libpng: \(detail))")
    }

    private static func bigEndian32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

/// The text of a fixed-size C char array imported as a tuple (a struct field like `message[256]`).
func tupleString<T>(_ tuple: inout T) -> String {
    withUnsafeBytes(of: &tuple) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
}

/// The text of a NUL-terminated C message buffer.
func cString(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
