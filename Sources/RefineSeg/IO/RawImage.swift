/// A decoded image as integers, before any normalisation.
///
/// Layout: `samples` is row-major (y, then x) with channels interleaved, so the sample of
/// channel `c` at (x, y) is `samples[(y * width + x) * channels + c]`. Values are the raw
/// integers stored in the file: 0...255 for 8-bit, 0...65535 for 16-bit. `channels` is 1 (grey)
/// or 3 (RGB); alpha is always dropped by the readers.
public struct RawImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// 1 (grey) or 3 (RGB).
    public var channels: Int
    /// 8 or 16.
    public var bitDepth: Int
    public var samples: [UInt16]

    public init(width: Int, height: Int, channels: Int, bitDepth: Int, samples: [UInt16]) {
        precondition(width >= 0 && height >= 0 && channels >= 1, "RawImage: negative size")
        precondition(samples.count == width * height * channels,
                     "RawImage: \(samples.count) samples for \(width)×\(height)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.bitDepth = bitDepth
        self.samples = samples
    }

    /// One value per pixel, row-major: 1 where any channel is non-zero, else 0.
    /// Masks are binarised this way whatever their encoding (0/1, 0/255, instance ids).
    public func maskValues() -> [Float] {
        var mask = [Float](repeating: 0, count: width * height) // [H*W]
        for pixel in 0..<(width * height) {
            for c in 0..<channels where samples[pixel * channels + c] != 0 {
                mask[pixel] = 1
                break
            }
        }
        return mask
    }

    /// The samples in planar CHW order as Float, unscaled (raw integer values).
    public func planarFloats() -> [Float] {
        let plane = width * height
        var out = [Float](repeating: 0, count: channels * plane) // [C, H, W]
        for pixel in 0..<plane {
            for c in 0..<channels {
                out[c * plane + pixel] = Float(samples[pixel * channels + c])
            }
        }
        return out
    }
}

/// Size limits every image reader checks from the header, before allocating pixels.
public enum ImageLimits {
    /// Largest width or height accepted.
    public static let maxSide = 32768
    /// Largest width × height accepted (2^28).
    public static let maxPixels = 1 << 28

    /// Throws `RefineSegError.io` when `width × height` is empty or above the limits.
    static func check(width: Int, height: Int, file: String) throws {
        if width <= 0 || height <= 0 {
            throw RefineSegError.io(file: file, message: "image is \(width)×\(height), which is empty")
        }
        if width > maxSide || height > maxSide || width * height > maxPixels {
            throw RefineSegError.io(file: file, message:
                "image is \(width)×\(height), above the limit of \(maxSide) pixels per side and \(maxPixels) pixels in all")
        }
    }
}
