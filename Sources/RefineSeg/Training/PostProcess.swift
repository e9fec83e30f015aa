import Foundation

/// Post-processing of a predicted binary mask, chosen on the validation split as nnU-Net does
/// (`determine_postprocessing`) and stored in the checkpoint's metadata (key `postprocess`, JSON),
/// so `evaluate` and `annotate` apply what training chose.
///
/// In this order: fill holes (background regions, 4-connected, that do not touch the image
/// border), remove 8-connected components smaller than `minComponentSize` pixels, keep only the
/// largest component.
public struct PostProcessing: Codable, Equatable, Sendable, CustomStringConvertible {
    public var fillHoles: Bool = false
    public var minComponentSize: Int = 0
    public var keepLargest: Bool = false

    public init(fillHoles: Bool = false, minComponentSize: Int = 0, keepLargest: Bool = false) {
        self.fillHoles = fillHoles; self.minComponentSize = minComponentSize; self.keepLargest = keepLargest
    }

    public static let none = PostProcessing()
    public var isNone: Bool { self == .none }

    public var description: String {
        var parts = [String]()
        if fillHoles { parts.append("fill holes") }
        if minComponentSize > 0 { parts.append("remove components < \(minComponentSize) px") }
        if keepLargest { parts.append("keep the largest component") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    static let metadataKey = "postprocess"

    /// The post-processing recorded in a checkpoint's metadata (none when absent).
    public init(metadata: [String: String], path: String) throws {
        guard let text = metadata[Self.metadataKey] else { self = .none; return }
        do { self = try JSONDecoder().decode(PostProcessing.self, from: Data(text.utf8)) } catch {
            throw RefineSegError.io(file: path, message: "metadata \"\(Self.metadataKey)\" is not a post-processing record: \(text)")
        }
        guard minComponentSize >= 0 else { throw RefineSegError.io(file: path, message: "metadata \"\(Self.metadataKey)\" has a negative minComponentSize") }
    }

    /// The checkpoint's post-processing, read from its file.
    public static func of(checkpoint path: String) throws -> PostProcessing {
        try PostProcessing(metadata: SafeTensorsFile.read(path).metadata, path: path)
    }

    public var metadataValue: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Applies the post-processing to a row-major (h, w) mask.
    public func apply(_ mask: [Bool], width w: Int, height h: Int) -> [Bool] {
        var m = mask
        if fillHoles { m = Self.fillHoles(m, width: w, height: h) }
        if minComponentSize > 0 || keepLargest {
            let (labels, sizes) = Components.label(m, width: w, height: h)
            var keep = sizes.enumerated().map { $0.offset > 0 && $0.element >= minComponentSize }
            if keepLargest, let largest = sizes.indices.dropFirst().max(by: { sizes[$0] < sizes[$1] || (sizes[$0] == sizes[$1] && $0 > $1) }) {
                keep = keep.indices.map { $0 == largest }
            }
            for i in m.indices where m[i] { m[i] = keep[Int(labels[i])] }
        }
        return m
    }

    /// Background pixels not 4-connected to the image border become lesion.
    static func fillHoles(_ mask: [Bool], width w: Int, height h: Int) -> [Bool] {
        var outside = [Bool](repeating: false, count: w * h)
        var stack = [Int]()
        for y in 0..<h { for x in 0..<w where (y == 0 || x == 0 || y == h - 1 || x == w - 1) && !mask[y * w + x] {
            outside[y * w + x] = true; stack.append(y * w + x)
        } }
        while let i = stack.popLast() {
            let y = i / w, x = i % w
            for (ny, nx) in [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)] where ny >= 0 && ny < h && nx >= 0 && nx < w {
                let j = ny * w + nx
                if !mask[j] && !outside[j] { outside[j] = true; stack.append(j) }
            }
        }
        return outside.map { !$0 }
    }

    /// Candidates tried on validation: fill holes on/off × minimum component size from none to
    /// half the 5th-percentile size of the training objects × keep-largest (only when every
    /// training mask with lesion holds exactly one component, as nnU-Net's rationale).
    public static func candidates(trainingMasks: [(mask: [Float], width: Int, height: Int)]) -> [PostProcessing] {
        var objectSizes = [Int](), singleObject = true, anyLesion = false
        for t in trainingMasks {
            let sizes = Components.sizes(t.mask.map { $0 > 0 }, width: t.width, height: t.height)
            if !sizes.isEmpty { anyLesion = true }
            if sizes.count > 1 { singleObject = false }
            objectSizes += sizes
        }
        objectSizes.sort()
        var thresholds = [0]
        if !objectSizes.isEmpty {
            let p5 = objectSizes[min(objectSizes.count - 1, objectSizes.count / 20)]
            for f in [0.1, 0.25, 0.5] { let t = Int((Double(p5) * f).rounded()); if t > 1 && !thresholds.contains(t) { thresholds.append(t) } }
        }
        var out = [PostProcessing]()
        for fill in [false, true] {
            for t in thresholds {
                out.append(PostProcessing(fillHoles: fill, minComponentSize: t))
                if singleObject && anyLesion { out.append(PostProcessing(fillHoles: fill, minComponentSize: t, keepLargest: true)) }
            }
        }
        return out
    }

    /// The candidate with the best mean validation Dice (docs/MODEL.md's per-image Dice on the
    /// thresholded probabilities); a candidate must beat no post-processing by more than 0.001
    /// to be chosen (nnU-Net keeps a step only when it helps). Returns the choice and its Dice
    /// next to the Dice without post-processing.
    public static func choose(candidates: [PostProcessing],
                              validation: [(probabilities: [Float], label: [Float], width: Int, height: Int)]) throws
        -> (choice: PostProcessing, dice: Double, baseline: Double) {
        func meanDice(_ p: PostProcessing) throws -> Double {
            var acc = MetricAccumulator()
            for (i, v) in validation.enumerated() {
                let predicted = p.apply(v.probabilities.map { $0 > 0.5 }, width: v.width, height: v.height)
                try acc.add(name: "\(i)", prediction: BinaryMask(width: v.width, height: v.height, pixels: predicted),
                            label: BinaryMask(label: v.label, width: v.width, height: v.height))
            }
            return acc.summary().dice
        }
        let baseline = try meanDice(.none)
        var best = (choice: PostProcessing.none, dice: baseline)
        for c in candidates where !c.isNone {
            let d = try meanDice(c)
            if d > best.dice + (best.choice.isNone ? 0.001 : 1e-9) { best = (c, d) }
        }
        return (best.choice, best.dice, baseline)
    }
}
