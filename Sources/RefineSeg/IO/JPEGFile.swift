import CTurboJPEG
import Foundation

/// JPEG reading (and writing, used by tests and tools) through libjpeg-turbo's TurboJPEG API,
/// which catches libjpeg's errors internally and returns them as status codes.
///
/// Reading gives 8-bit grey for greyscale JPEGs and 8-bit RGB for every other colour space
/// libjpeg-turbo can convert (YCbCr, RGB). Any libjpeg warning (a truncated scan, a corrupt
/// marker) is an error here: a silently half-grey image is worse than a clear refusal.
public enum JPEGFile {
    /// Largest JPEG file read (compressed bytes).
    public static let maxFileBytes = 1 << 30

    /// Reads the JPEG at `path`.
    public static func read(_ path: String) throws -> RawImage {
        try decode(FileBytes.read(path, maxBytes: maxFileBytes), file: path)
    }

    /// Writes an 8-bit grey or RGB `image` as a baseline JPEG (4:4:4 for RGB) at `quality` 1...100.
    public static func write(_ image: RawImage, to path: String, quality: Int = 95) throws {
        try writeAtomically(encode(image, quality: quality, file: path), to: path)
    }

    static func decode(_ data: Data, file: String) throws -> RawImage {
        let bytes = [UInt8](data)
        if bytes.isEmpty { throw RefineSegError.io(file: file, message: "empty file") }
        guard bytes.count >= 2, bytes[0] == 0xFF, bytes[1] == 0xD8 else {
            throw RefineSegError.io(file: file, message: "not a JPEG file")
        }
        guard let handle = tjInitDecompress() else {
            throw RefineSegError.io(file: file, message: "cannot start the JPEG decoder (\(String(cString: tjGetErrorStr2(nil))))")
        }
        defer { tjDestroy(handle) }
        func corrupt() -> RefineSegError {
            .io(file: file, message: "truncated or corrupt JPEG (libjpeg-turbo: \(String(cString: tjGetErrorStr2(handle))))")
        }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer { buffer in
            tjDecompressHeader3(handle, buffer.baseAddress, UInt(buffer.count), &width, &height, &subsampling, &colorspace)
        }
        if header != 0 { throw corrupt() }
        // A stream cut inside its tables parses as "tables only": success with no frame.
        if width <= 0 || height <= 0 {
            throw RefineSegError.io(file: file, message: "truncated or corrupt JPEG (no frame header before the data ends)")
        }
        try ImageLimits.check(width: Int(width), height: Int(height), file: file)
        let grey = colorspace == Int32(TJCS_GRAY.rawValue)
        let channels = grey ? 1 : 3
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels) // [H, W, C]
        // LIMITSCANS refuses progressive files with absurd scan counts (a decode-time bomb).
        let flags = Int32(TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS | TJFLAG_ACCURATEDCT)
        let status = bytes.withUnsafeBufferPointer { buffer in
            pixels.withUnsafeMutableBufferPointer { out in
                tjDecompress2(handle, buffer.baseAddress, UInt(buffer.count), out.baseAddress, width, 0, height,
                              Int32(grey ? TJPF_GRAY.rawValue : TJPF_RGB.rawValue), flags)
            }
        }
        if status != 0 { throw corrupt() }
        return RawImage(width: Int(width), height: Int(height), channels: channels, bitDepth: 8,
                        samples: pixels.map(UInt16.init))
    }

    static func encode(_ image: RawImage, quality: Int, file: String) throws -> Data {
        func refuse(_ why: String) -> RefineSegError { .io(file: file, message: "cannot write JPEG: \(why)") }
        guard image.bitDepth == 8 else { throw refuse("bit depth \(image.bitDepth) (JPEG holds 8-bit samples)") }
        guard image.channels == 1 || image.channels == 3 else { throw refuse("\(image.channels) channels (1 or 3 are written)") }
        guard (1...100).contains(quality) else { throw refuse("quality \(quality) is outside 1...100") }
        try ImageLimits.check(width: image.width, height: image.height, file: file)
        if let index = image.samples.firstIndex(where: { $0 > 255 }) {
            throw refuse("sample \(index) is \(image.samples[index]), above 255 for an 8-bit image")
        }
        guard let handle = tjInitCompress() else { throw refuse("cannot start the JPEG encoder") }
        defer { tjDestroy(handle) }
        let pixels = image.samples.map { UInt8($0) }
        var jpeg: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let grey = image.channels == 1
        let status = pixels.withUnsafeBufferPointer { source in
            tjCompress2(handle, source.baseAddress, Int32(image.width), 0, Int32(image.height),
                        Int32(grey ? TJPF_GRAY.rawValue : TJPF_RGB.rawValue), &jpeg, &size,
                        Int32(grey ? TJSAMP_GRAY.rawValue : TJSAMP_444.rawValue), Int32(quality), Int32(TJFLAG_ACCURATEDCT))
        }
        defer { tjFree(jpeg) }
        guard status == 0, let jpeg else { throw refuse("libjpeg-turbo: \(String(cString: tjGetErrorStr2(handle)))") }
        return Data(bytes: jpeg, count: Int(size))
    }
}
