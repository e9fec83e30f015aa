/// Whole-image prediction: reflect-pad to multiples of 16, predict, crop back (docs/MODEL.md);
/// images larger than `tile` on a side are predicted in overlapping tiles whose
/// probabilities are averaged, so any image size fits on the device.
public struct Predictor {
    public let model: DFRUNet
    public let backend: Backend
    /// Largest side predicted in one piece (a multiple of 16).
    public var tile: Int = 1024
    public var overlap: Int = 64

    public init(model: DFRUNet, backend: Backend, tile: Int = 1024) {
        self.model = model; self.backend = backend; self.tile = max(64, roundUpTo16(tile))
    }

    /// Mirror test-time augmentation (nnU-Net's): the probabilities are the mean over the
    /// image as it is and mirrored left-right, top-bottom and both (4 predictions).
    public var mirrorTTA = false

    /// Probabilities (H·W, row-major) for one sample (averaged over mirrors with `mirrorTTA`).
    public func probabilities(_ s: Sample) throws -> [Float] {
        guard mirrorTTA else { return try plainProbabilities(s) }
        var sum = [Float](repeating: 0, count: s.height * s.width)
        for (flipY, flipX) in [(false, false), (false, true), (true, false), (true, true)] {
            var m = s
            m.image = mirror(s.image, channels: s.channels, height: s.height, width: s.width, flipY: flipY, flipX: flipX)
            let p = mirror(try plainProbabilities(m), channels: 1, height: s.height, width: s.width, flipY: flipY, flipX: flipX)
            for i in sum.indices { sum[i] += p[i] }
        }
        return sum.map { $0 / 4 }
    }

    /// Probabilities of one sample without test-time augmentation.
    func plainProbabilities(_ s: Sample) throws -> [Float] {
        let h16 = roundUpTo16(s.height), w16 = roundUpTo16(s.width)
        let padded = reflectPad(s.image, channels: s.channels, height: s.height, width: s.width, toHeight: h16, toWidth: w16)
        let full: [Float]
        if h16 <= tile && w16 <= tile {
            full = try predictPiece(padded, channels: s.channels, height: h16, width: w16)
        } else {
            full = try predictTiled(padded, channels: s.channels, height: h16, width: w16)
        }
        var out = [Float](repeating: 0, count: s.height * s.width)
        for y in 0..<s.height { for x in 0..<s.width { out[y * s.width + x] = full[y * w16 + x] } }
        return out
    }

    private func predictPiece(_ image: [Float], channels: Int, height: Int, width: Int) throws -> [Float] {
        let g = Graph(backend: backend, training: false)
        let x = g.constant(try backend.tensor(image, shape: [1, channels, height, width]))
        let out = try model(x, g)
        return try backend.sigmoid(out.logits.value).toArray()
    }

    /// Tile origins along one axis: every `tile − overlap`, the last flush with the end.
    static func origins(_ n: Int, tile: Int, overlap: Int) -> [Int] {
        if n <= tile { return [0] }
        var list = [Int]()
        var o = 0
        while o + tile < n { list.append(o); o += tile - overlap }
        list.append(n - tile)
        return list
    }

    private func predictTiled(_ image: [Float], channels: Int, height: Int, width: Int) throws -> [Float] {
        let th = min(tile, height), tw = min(tile, width)
        var sum = [Float](repeating: 0, count: height * width), count = [Float](repeating: 0, count: height * width)
        for oy in Self.origins(height, tile: th, overlap: overlap) {
            for ox in Self.origins(width, tile: tw, overlap: overlap) {
                var piece = [Float](repeating: 0, count: channels * th * tw)
                for c in 0..<channels { for y in 0..<th { for x in 0..<tw {
                    piece[(c * th + y) * tw + x] = image[(c * height + oy + y) * width + ox + x]
                } } }
                let p = try predictPiece(piece, channels: channels, height: th, width: tw)
                for y in 0..<th { for x in 0..<tw {
                    sum[(oy + y) * width + ox + x] += p[y * tw + x]
                    count[(oy + y) * width + ox + x] += 1
                } }
            }
        }
        return zip(sum, count).map { $0 / $1 }
    }
}

/// (C, H, W) planar data mirrored top-bottom and/or left-right (its own inverse).
public func mirror(_ planar: [Float], channels: Int, height: Int, width: Int, flipY: Bool, flipX: Bool) -> [Float] {
    if !flipY && !flipX { return planar }
    var out = planar
    for c in 0..<channels {
        let base = c * height * width
        for y in 0..<height {
            let sy = flipY ? height - 1 - y : y
            for x in 0..<width { out[base + y * width + x] = planar[base + sy * width + (flipX ? width - 1 - x : x)] }
        }
    }
    return out
}
