/// Connected components of a binary mask.
enum Components {
    /// The number of 8-connected components of `mask`.
    static func count(_ mask: BinaryMask) -> Int {
        label(mask.pixels, width: mask.width, height: mask.height).sizes.count - 1   // sizes[0] is the background
    }

    /// The number of 8-connected components of `prediction` that contain no lesion pixel of
    /// `label` (false-positive components, docs/MODEL.md "Metrics").
    static func falsePositiveCount(prediction: BinaryMask, label: BinaryMask) -> Int {
        precondition(prediction.width == label.width && prediction.height == label.height,
                     "components of masks of different size")
        let w = prediction.width, h = prediction.height
        var seen = [Bool](repeating: false, count: w * h)   // (h, w)
        var stack: [Int] = []
        var count = 0
        for start in 0..<(w * h) where prediction.pixels[start] && !seen[start] {
            // Flood-fill one component with an explicit stack: large blobs must not recurse.
            var touchesLesion = false
            seen[start] = true
            stack.append(start)
            while let i = stack.popLast() {
                if label.pixels[i] { touchesLesion = true }
                let y = i / w, x = i % w
                for dy in -1...1 {
                    let ny = y + dy
                    guard ny >= 0, ny < h else { continue }
                    for dx in -1...1 {
                        let nx = x + dx
                        guard nx >= 0, nx < w else { continue }
                        let j = ny * w + nx
                        if prediction.pixels[j] && !seen[j] {
                            seen[j] = true
                            stack.append(j)
                        }
                    }
                }
            }
            if !touchesLesion { count += 1 }
        }
        return count
    }
}

extension Components {
    /// 8-connected component labels of `pixels` (h, w): 0 for background, 1… per component in
    /// raster order of their first pixel, and the size of each (index 0 unused).
    static func label(_ pixels: [Bool], width w: Int, height h: Int) -> (labels: [Int32], sizes: [Int]) {
        var labels = [Int32](repeating: 0, count: w * h)
        var sizes = [0]
        var stack: [Int] = []
        for start in 0..<(w * h) where pixels[start] && labels[start] == 0 {
            let id = Int32(sizes.count)
            var size = 0
            labels[start] = id
            stack.append(start)
            while let i = stack.popLast() {
                size += 1
                let y = i / w, x = i % w
                for ny in max(0, y - 1)...min(h - 1, y + 1) {
                    for nx in max(0, x - 1)...min(w - 1, x + 1) {
                        let j = ny * w + nx
                        if pixels[j] && labels[j] == 0 { labels[j] = id; stack.append(j) }
                    }
                }
            }
            sizes.append(size)
        }
        return (labels, sizes)
    }

    /// Sizes of the 8-connected components of `pixels`.
    static func sizes(_ pixels: [Bool], width: Int, height: Int) -> [Int] {
        Array(label(pixels, width: width, height: height).sizes.dropFirst())
    }
}
