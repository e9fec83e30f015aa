import Foundation
import RefineSeg
import SwiftProtobuf

/// What `exportONNX` wrote.
public struct ONNXExportReport: Sendable {
    public var onnxPath: String
    public var sidecarPath: String
    /// Bytes of the .onnx file.
    public var bytes: Int
    public var opset: Int
    public var nodes: Int
    public var config: ModelConfig
}

/// The ONNX operator set the exporter writes (opset 17: ReduceMean/ReduceMax take `axes` as an attribute).
public let onnxOpset = 17
/// ONNX IR version that goes with opset 17.
let onnxIRVersion: Int64 = 8

/// Writes the inference network of a DFR-UNet checkpoint (docs/MODEL.md) as an ONNX graph,
/// plus `ONNX.json` (the .onnx path with .json appended) beside it, holding what the graph does not: input normalisation, padding,
/// threshold, channel order and the architecture.
///
/// The graph maps `image` (N, C, H, W) float32, already normalised, with H and W multiples of
/// 16 (dynamic), to `probability` (N, 1, H, W) = sigmoid(logit). BatchNorm (running statistics)
/// is folded into the preceding convolution in double precision; channel and spatial attention
/// use GlobalAveragePool/GlobalMaxPool, ReduceMean/ReduceMax, Conv and Sigmoid; the context's
/// pooled branch is broadcast with Shape + Expand. Only standard-domain operators are used.
///
/// A checkpoint that is not a complete DFR-UNet (missing or mis-shaped tensors, no or bad
/// width in its metadata) is refused with one error naming the file and the first problem.
/// Both files are built in memory and written atomically; on any error neither is left behind.
public func exportONNX(checkpoint: String, to onnxPath: String) throws -> ONNXExportReport {
    let file = try SafeTensorsFile.read(checkpoint)
    let config = try Checkpoint.modelConfig(file, path: checkpoint)
    if let arch = file.metadata["architecture"], arch != "dfr-unet" {
        throw RefineSegError.io(file: checkpoint, message: "architecture \"\(arch)\" cannot be exported (only dfr-unet)")
    }
    // DFRUNet's own rule: the context's branch width is 16w/4, and w/4 feeds the attention.
    guard config.inChannels >= 1, config.width >= 4, config.width % 4 == 0 else {
        throw RefineSegError.io(file: checkpoint, message: "cannot export: in_channels \(config.inChannels), width \(config.width) is not a DFR-UNet (width a multiple of 4)")
    }
    var exporter = DFRUNetONNX(file: file, path: checkpoint, config: config)
    let model = try exporter.model(producer: "refineseg")
    let bytes: Data = try model.serializedBytes()
    let sidecarPath = onnxSidecarPath(onnxPath)
    let sidecar = try onnxSidecar(config: config, checkpoint: checkpoint,
                                  postProcessing: try PostProcessing(metadata: file.metadata, path: checkpoint))
    try writeAtomically(sidecar, to: sidecarPath)
    do { try writeAtomically(bytes, to: onnxPath) } catch {
        try? FileManager.default.removeItem(atPath: sidecarPath)
        throw error
    }
    return ONNXExportReport(onnxPath: onnxPath, sidecarPath: sidecarPath, bytes: bytes.count, opset: onnxOpset,
                            nodes: model.graph.node.count, config: config)
}

/// model.onnx → model.onnx.json.
public func onnxSidecarPath(_ onnxPath: String) -> String { onnxPath + ".json" }

/// The sidecar JSON: everything a runtime needs around the graph to reproduce `refineseg annotate`.
func onnxSidecar(config: ModelConfig, checkpoint: String, postProcessing: PostProcessing) throws -> Data {
    let channelOrder: [String] = config.inChannels == 1 ? ["grey"]
        : config.inChannels == 3 ? ["red", "green", "blue"] : (0..<config.inChannels).map { "channel\($0)" }
    let object: [String: Any] = [
        "format": "refineseg-onnx-sidecar",
        "version": 1,
        "model_contract": "docs/MODEL.md version 1 (DFR-UNet)",
        "source_checkpoint": URL(fileURLWithPath: checkpoint).lastPathComponent,
        "opset": onnxOpset,
        "architecture": ["name": "dfr-unet", "in_channels": config.inChannels, "width": config.width],
        "input": [
            "name": "image", "layout": "NCHW", "dtype": "float32",
            "channels": config.inChannels, "channel_order": channelOrder,
            "note": "raw integer sample values (8- or 16-bit), normalised as below before the graph",
        ] as [String: Any],
        "normalisation": [
            "per": "image and channel",
            "low_percentile": 1.0, "high_percentile": 99.8,
            "percentile_interpolation": "linear (numpy.percentile default)",
            "formula": "(x - lo) / (hi - lo + 1e-6)", "epsilon": 1e-6, "clip": false,
        ] as [String: Any],
        "padding": [
            "multiple": 16, "mode": "reflect (numpy 'reflect', edge not repeated)",
            "sides": "bottom and right", "crop_back": true,
        ] as [String: Any],
        "output": ["name": "probability", "layout": "NCHW", "channels": 1, "meaning": "sigmoid of the lesion logit"] as [String: Any],
        "threshold": 0.5,
        "mask_rule": "lesion where probability > threshold",
        // What refineseg evaluate/annotate add around one pass of the network.
        "test_time_augmentation": [
            "refineseg_default": "mirror (--tta; --no-tta turns it off)",
            "mirror": "mean of the probabilities of the image as is, flipped left-right, flipped up-down and both, each flipped back",
        ] as [String: Any],
        "post_processing": [
            "chosen_on_validation": !postProcessing.isNone,
            "fill_holes": postProcessing.fillHoles,
            "min_component_size": postProcessing.minComponentSize,
            "keep_largest": postProcessing.keepLargest,
            "order": "after the threshold: fill holes (4-connected background not touching the border), remove 8-connected components below min_component_size pixels, keep the largest",
        ] as [String: Any],
    ]
    return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
}

/// Builds the DFR-UNet graph from checkpoint tensors, checking every name and shape.
struct DFRUNetONNX {
    let file: SafeTensorsFile
    let path: String
    let config: ModelConfig
    var g = ONNXGraph()
    let bnEps = 1e-5

    init(file: SafeTensorsFile, path: String, config: ModelConfig) {
        self.file = file; self.path = path; self.config = config
    }

    func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
        guard let t = file[name] else {
            throw RefineSegError.io(file: path, message: "cannot export: tensor \(name) is missing (not a complete DFR-UNet model checkpoint with width \(config.width))")
        }
        guard t.shape == shape else {
            throw RefineSegError.io(file: path, message: "cannot export: tensor \(name) has shape \(t.shape), expected \(shape) for width \(config.width)")
        }
        return t.values
    }

    /// conv k×k (dilation d, no bias) with its BatchNorm folded in: `prefix.conv.weight`, `prefix.bn.*`.
    mutating func convBN(_ x: String, _ prefix: String, cin: Int, cout: Int, k: Int, dilation: Int = 1) throws -> String {
        let w = try tensor(prefix + ".conv.weight", [cout, cin, k, k])
        let gamma = try tensor(prefix + ".bn.weight", [cout]), beta = try tensor(prefix + ".bn.bias", [cout])
        let mean = try tensor(prefix + ".bn.running_mean", [cout]), variance = try tensor(prefix + ".bn.running_var", [cout])
        var folded = [Float](repeating: 0, count: w.count)   // (cout, cin, k, k)
        var bias = [Float](repeating: 0, count: cout)
        let per = cin * k * k
        for o in 0..<cout {
            let s = Double(gamma[o]) / (Double(variance[o]) + bnEps).squareRoot()
            for i in 0..<per { folded[o * per + i] = Float(Double(w[o * per + i]) * s) }
            bias[o] = Float(Double(beta[o]) - Double(mean[o]) * s)
        }
        let wName = g.constant(prefix + ".conv.weight_bnfolded", dims: [cout, cin, k, k], folded)
        let bName = g.constant(prefix + ".conv.bias_bnfolded", dims: [cout], bias)
        let pad = dilation * (k - 1) / 2
        return g.add("Conv", [x, wName, bName], ["kernel_shape": .ints([k, k]), "pads": .ints([pad, pad, pad, pad]),
                                                  "dilations": .ints([dilation, dilation]), "strides": .ints([1, 1])], name: prefix)
    }

    /// conv 1×1 with bias from `weight` (cout, cin[, 1, 1]) and `bias`.
    mutating func conv1x1(_ x: String, weight: String, bias: String, cin: Int, cout: Int, weightShape: [Int], name: String) throws -> String {
        let w = g.constant(weight, dims: [cout, cin, 1, 1], try tensor(weight, weightShape))
        let b = g.constant(bias, dims: [cout], try tensor(bias, [cout]))
        return g.add("Conv", [x, w, b], ["kernel_shape": .ints([1, 1])], name: name)
    }

    /// CBAM channel attention; the Linear layers run as 1×1 convolutions on (N, C, 1, 1).
    mutating func channelAttention(_ x: String, _ prefix: String, channels c: Int) throws -> String {
        let h = max(4, c / 16)
        // Each fc's weights are stored once and used by both paths.
        let w1 = g.constant(prefix + ".fc1.weight", dims: [h, c, 1, 1], try tensor(prefix + ".fc1.weight", [h, c]))
        let b1 = g.constant(prefix + ".fc1.bias", dims: [h], try tensor(prefix + ".fc1.bias", [h]))
        let w2 = g.constant(prefix + ".fc2.weight", dims: [c, h, 1, 1], try tensor(prefix + ".fc2.weight", [c, h]))
        let b2 = g.constant(prefix + ".fc2.bias", dims: [c], try tensor(prefix + ".fc2.bias", [c]))
        func mlp(_ v: String, _ g: inout ONNXGraph) -> String {
            let hidden = g.add("Relu", [g.add("Conv", [v, w1, b1], ["kernel_shape": .ints([1, 1])], name: prefix + ".fc1")], name: prefix)
            return g.add("Conv", [hidden, w2, b2], ["kernel_shape": .ints([1, 1])], name: prefix + ".fc2")
        }
        let a = mlp(g.add("GlobalAveragePool", [x], name: prefix), &g)
        let m = mlp(g.add("GlobalMaxPool", [x], name: prefix), &g)
        let gate = g.add("Sigmoid", [g.add("Add", [a, m], name: prefix)], name: prefix)
        return g.add("Mul", [x, gate], name: prefix)
    }

    /// Spatial attention: x · sigmoid(BN(conv7×7([mean over C, max over C]))).
    mutating func spatialAttention(_ x: String, _ prefix: String) throws -> String {
        let mean = g.add("ReduceMean", [x], ["axes": .ints([1]), "keepdims": .int(1)], name: prefix)
        let max = g.add("ReduceMax", [x], ["axes": .ints([1]), "keepdims": .int(1)], name: prefix)
        let s = g.add("Concat", [mean, max], ["axis": .int(1)], name: prefix)
        let gate = g.add("Sigmoid", [try convBN(s, prefix, cin: 2, cout: 1, k: 7)], name: prefix)
        return g.add("Mul", [x, gate], name: prefix)
    }

    mutating func refineBlock(_ x: String, _ prefix: String, cin: Int, cout: Int) throws -> String {
        var h = g.add("Relu", [try convBN(x, prefix + ".conv1", cin: cin, cout: cout, k: 3)], name: prefix)
        h = try convBN(h, prefix + ".conv2", cin: cout, cout: cout, k: 3)
        h = try spatialAttention(try channelAttention(h, prefix + ".ca", channels: cout), prefix + ".sa")
        let shortcut = try convBN(x, prefix + ".shortcut", cin: cin, cout: cout, k: 1)
        return g.add("Relu", [g.add("Add", [h, shortcut], name: prefix)], name: prefix)
    }

    mutating func dilatedContext(_ x: String, _ prefix: String, channels c: Int) throws -> String {
        let b = c / 4
        var parts = [String]()
        for i in 0..<4 {
            parts.append(g.add("Relu", [try convBN(x, "\(prefix).branches.\(i)", cin: c, cout: b, k: 3, dilation: 1 << i)], name: prefix))
        }
        let pooled = g.add("Relu", [try conv1x1(g.add("GlobalAveragePool", [x], name: prefix), weight: prefix + ".pool.weight",
                                                bias: prefix + ".pool.bias", cin: c, cout: b, weightShape: [b, c, 1, 1], name: prefix + ".pool")],
                           name: prefix)
        // Broadcast (N, b, 1, 1) to the branches' (N, b, H, W).
        parts.append(g.add("Expand", [pooled, g.add("Shape", [parts[0]], name: prefix)], name: prefix))
        let fused = g.add("Relu", [try convBN(g.add("Concat", parts, ["axis": .int(1)], name: prefix), prefix + ".fuse", cin: 5 * b, cout: c, k: 1)], name: prefix)
        return g.add("Add", [x, fused], name: prefix)
    }

    mutating func up(_ x: String, _ prefix: String, cin: Int, cout: Int) throws -> String {
        let w = g.constant(prefix + ".weight", dims: [cin, cout, 2, 2], try tensor(prefix + ".weight", [cin, cout, 2, 2]))
        let b = g.constant(prefix + ".bias", dims: [cout], try tensor(prefix + ".bias", [cout]))
        return g.add("ConvTranspose", [x, w, b], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])], name: prefix)
    }

    mutating func maxPool(_ x: String, _ name: String) -> String {
        g.add("MaxPool", [x], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])], name: name)
    }

    mutating func model(producer: String) throws -> Onnx_ModelProto {
        let c = config.inChannels, w = config.width
        let s1 = try refineBlock("image", "enc1", cin: c, cout: w)
        let s2 = try refineBlock(maxPool(s1, "pool1"), "enc2", cin: w, cout: 2 * w)
        let s3 = try refineBlock(maxPool(s2, "pool2"), "enc3", cin: 2 * w, cout: 4 * w)
        let s4 = try refineBlock(maxPool(s3, "pool3"), "enc4", cin: 4 * w, cout: 8 * w)
        let bottom = try refineBlock(maxPool(s4, "pool4"), "bottleneck", cin: 8 * w, cout: 16 * w)
        var d = try dilatedContext(bottom, "context", channels: 16 * w)
        for (level, skip) in [(4, s4), (3, s3), (2, s2), (1, s1)] {
            let cin = w << level, cout = w << (level - 1)    // 16w→8w, 8w→4w, 4w→2w, 2w→w
            let upsampled = try up(d, "up\(level)", cin: cin, cout: cout)
            d = try refineBlock(g.add("Concat", [upsampled, skip], ["axis": .int(1)], name: "dec\(level)"), "dec\(level)", cin: cin, cout: cout)
        }
        let logit = try conv1x1(d, weight: "head.weight", bias: "head.bias", cin: w, cout: 1, weightShape: [1, w, 1, 1], name: "head")
        g.add("Sigmoid", [logit], name: "head", output: "probability")

        var graph = Onnx_GraphProto()
        graph.name = "dfr-unet"
        graph.node = g.nodes
        graph.initializer = g.initializers
        graph.input = [ONNXGraph.valueInfo("image", dims: [nil, c, nil, nil], symbols: ["N", "C", "H", "W"])]
        graph.output = [ONNXGraph.valueInfo("probability", dims: [nil, 1, nil, nil], symbols: ["N", "C", "H", "W"])]
        graph.docString = "DFR-UNet (docs/MODEL.md version 1), in_channels \(c), width \(w). Input: normalised image, H and W multiples of 16. Output: sigmoid probability."
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(onnxOpset)
        var m = Onnx_ModelProto()
        m.irVersion = onnxIRVersion
        m.opsetImport = [opset]
        m.producerName = producer
        m.producerVersion = "1"
        m.graph = graph
        m.docString = graph.docString
        for (k, v) in [("in_channels", "\(c)"), ("width", "\(w)"), ("threshold", "0.5"), ("padding_multiple", "16")] {
            var entry = Onnx_StringStringEntryProto()
            entry.key = k; entry.value = v
            m.metadataProps.append(entry)
        }
        return m
    }
}
