/// The convolution calls of one forward pass, read from the model's own layers (weight shapes
/// and conv parameters) with the activation shapes the architecture gives them. FLOP counts
/// come from `ConvLayerSpec.flopsPerPass`:
///   conv:           2·N·Cout·OH·OW·Cin·KH·KW
///   transposed 2×2: 2·N·Cin·IH·IW·Cout·4
/// Attention gates, BatchNorm, pooling, elementwise and loss work is not counted (a few per
/// cent of the total). Channel attention's fc1/fc2 run twice (mean and max paths), as 1×1 convs.
/// For a training step benches count backward = 2 × forward (grad of input + grad of weights,
/// each one forward's worth of multiply-adds), i.e. 3 × forward per step, like the PyTorch peer;
/// this slightly overcounts, since enc1's input needs no gradient.
extension DFRUNet {
    /// Every conv / transposed-conv call of `callAsFunction` on (batch, inChannels, height, width),
    /// in execution order; `withEmbedding` adds the `lac` head.
    public func convLayers(batch n: Int, height h: Int, width w: Int, withEmbedding: Bool = false) -> [ConvLayerSpec] {
        var list = [ConvLayerSpec]()
        var x: Shape = [n, config.inChannels, h, w]
        var skips = [Shape]()
        for (name, block) in [("enc1", enc1), ("enc2", enc2), ("enc3", enc3), ("enc4", enc4)] {
            x = block.convLayers(name, input: x, into: &list)
            skips.append(x)
            x = [n, x[1], x[2] / 2, x[3] / 2]                     // max-pool 2×2
        }
        x = bottleneck.convLayers("bottleneck", input: x, into: &list)
        x = context.convLayers("context", input: x, into: &list)
        for (k, up, dec) in [(4, up4, dec4), (3, up3, dec3), (2, up2, dec2), (1, up1, dec1)] {
            let u = up.spec("up\(k)", input: x)
            list.append(u)
            let skip = skips[k - 1]
            x = dec.convLayers("dec\(k)", input: [n, u.output[1] + skip[1], skip[2], skip[3]], into: &list)
        }
        list.append(head.spec("head", input: x))
        if withEmbedding { list.append(lac.spec("lac", input: x)) }
        return list
    }
}

extension Conv2d {
    func spec(_ name: String, input: Shape) -> ConvLayerSpec {
        ConvLayerSpec(name, .conv2d, input: input, weight: weight.value.shape, params: params, bias: bias != nil)
    }
}

extension PointwiseLinear {
    /// The (N, in) → (N, out) layer as the 1×1 convolution it runs as.
    func spec(_ name: String, batch n: Int) -> ConvLayerSpec {
        let out = weight.value.shape[0], inF = weight.value.shape[1]
        return ConvLayerSpec(name, .conv2d, input: [n, inF, 1, 1], weight: [out, inF, 1, 1], bias: true)
    }
}

extension Up {
    func spec(_ name: String, input: Shape) -> ConvLayerSpec {
        ConvLayerSpec(name, .convTranspose2x2, input: input, weight: weight.value.shape, bias: true)
    }
}

extension RefineBlock {
    /// Appends this block's convolutions; returns the output shape.
    func convLayers(_ name: String, input x: Shape, into list: inout [ConvLayerSpec]) -> Shape {
        let n = x[0]
        let c1 = conv1.conv.spec(name + ".conv1", input: x)
        let c2 = conv2.conv.spec(name + ".conv2", input: c1.output)
        list += [c1, c2]
        for path in ["mean", "max"] {
            list.append(ca.fc1.spec("\(name).ca.fc1(\(path))", batch: n))
            list.append(ca.fc2.spec("\(name).ca.fc2(\(path))", batch: n))
        }
        let y = c2.output
        list.append(sa.conv.spec(name + ".sa", input: [n, 2, y[2], y[3]]))
        list.append(shortcut.conv.spec(name + ".shortcut", input: x))
        return y
    }
}

extension DilatedContext {
    func convLayers(_ name: String, input x: Shape, into list: inout [ConvLayerSpec]) -> Shape {
        let n = x[0]
        let parts = branches.enumerated().map { i, b in b.conv.spec("\(name).branches.\(i)", input: x) }
        list += parts
        let p = pool.spec(name + ".pool", input: [n, x[1], 1, 1])
        list.append(p)
        let fused = parts.reduce(p.output[1]) { $0 + $1.output[1] }
        let f = fuse.conv.spec(name + ".fuse", input: [n, fused, x[2], x[3]])
        list.append(f)
        return f.output
    }
}
