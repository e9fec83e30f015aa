/// A binary image mask, row-major (`pixels[y * width + x]`), true = lesion / predicted lesion.
///
/// docs/MODEL.md's binarisation: a label pixel is lesion when it is non-zero; a prediction pixel
/// is lesion when its probability is strictly greater than 0.5.
public struct BinaryMask: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let pixels: [Bool]

    /// Wraps `pixels` (row-major, `width * height` values).
    public init(width: Int, height: Int, pixels: [Bool], op: String = "mask") throws {
        guard width > 0, height > 0, pixels.count == width * height else {
            throw RefineSegError.shapeMismatch(
                op: op, detail: "\(pixels.count) pixels for a \(width)x\(height) mask")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A prediction from sigmoid probabilities: lesion where `p > 0.5`.
    public init(probabilities: [Float], width: Int, height: Int) throws {
        try self.init(width: width, height: height, pixels: probabilities.map { $0 > 0.5 }, op: "prediction")
    }

    /// A label (or an already binary prediction) from raw values: lesion where non-zero.
    public init(label: [UInt8], width: Int, height: Int) throws {
        try self.init(width: width, height: height, pixels: label.map { $0 != 0 }, op: "label")
    }

    /// A label from float values: lesion where non-zero.
    public init(label: [Float], width: Int, height: Int) throws {
        try self.init(width: width, height: height, pixels: label.map { $0 != 0 }, op: "label")
    }

    public var count: Int { pixels.reduce(0) { $0 + ($1 ? 1 : 0) } }
    public var isEmpty: Bool { !pixels.contains(true) }

    /// Foreground pixels with at least one 4-neighbour that is background or outside the
    /// image (scipy's binary_erosion with the cross structure and border_value 0, XOR the mask:
    /// the surface medpy's hd95 uses).
    public func boundary() -> [Bool] {
        var edge = [Bool](repeating: false, count: pixels.count)   // (height, width)
        for y in 0..<height {
            for x in 0..<width where pixels[y * width + x] {
                let interior = x > 0 && x < width - 1 && y > 0 && y < height - 1
                    && pixels[y * width + x - 1] && pixels[y * width + x + 1]
                    && pixels[(y - 1) * width + x] && pixels[(y + 1) * width + x]
                edge[y * width + x] = !interior
            }
        }
        return edge
    }
}
