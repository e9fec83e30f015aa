import RefineSeg

/// The DFR-UNet layer geometries of the op cases and of `refineseg bench kernels`, listed from
/// the launches of the model's real forward (STYLE.md rule 17), never from a description of the
/// model written a second time.
extension OpCases {
    /// Every convolution, transposed convolution and pooling geometry of DFR-UNet at width `w`
    /// and s×s input (docs/MODEL.md), for one input channel and, named "(rgb)", the geometries
    /// that three input channels add; equal geometries merged (their names joined). Batch 1 at
    /// 64×64 and above, 2 below, so that the CPU reference stays quick.
    public static func dfrUNetConvLayers(width w: Int = 16, size s: Int = 128) -> [ConvLayerSpec] {
        var specs = [ConvLayerSpec]()
        for inChannels in [1, 3] {
            for (name, record) in extrapolatedLayers(inChannels: inChannels, width: w, size: s) {
                var spec = layerSpec(name, record)
                if let i = specs.firstIndex(where: { $0.description == spec.description && $0.kind == spec.kind }) {
                    if inChannels == 1 { specs[i].name += "," + name }
                } else {
                    if inChannels != 1 { spec.name += "(rgb)" }
                    specs.append(spec)
                }
            }
        }
        return specs
    }

    /// The convolution-family ops of one training-mode forward of DFR-UNet (`inChannels`, width
    /// `w`, with the `lac` embedding) on one s×s image on the CPU reference, in launch order, each
    /// named after its weight's checkpoint name (`enc1.conv1`, `up4`) or, for pooling, `pool<k>`.
    static func recordedLayers(inChannels: Int, width w: Int, size s: Int) -> [(name: String, record: ConvolutionRecord)] {
        do {
            let backend = CPUBackend()
            let model = try DFRUNet(backend, config: ModelConfig(inChannels: inChannels, width: w), seed: 0)
            let names = Dictionary(uniqueKeysWithValues: model.namedParameters().map { (ObjectIdentifier($0.1), $0.0) })
            let g = Graph(backend: backend, training: true)
            var layers = [(name: String, record: ConvolutionRecord)]()
            var pools = 0
            g.onConvolution = { record in
                guard let weight = record.weight, var name = names[ObjectIdentifier(weight)] else {
                    pools += 1
                    layers.append(("pool\(pools)", record))
                    return
                }
                for suffix in [".weight", ".conv"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
                layers.append((name, record))
            }
            _ = try model(g.constant(try backend.zeros([1, inChannels, s, s])), g, withEmbedding: true)
            return layers
        } catch {
            preconditionFailure("DFR-UNet forward (in \(inChannels), width \(w), \(s)×\(s)) on the CPU reference: \(error)")
        }
    }

    /// `recordedLayers` at width `w` and size `s` without running the model there: the forward at
    /// 128×128 and width 16 takes seconds on the CPU reference, so it runs at width 4 and 8 on
    /// 16×16 and at width 4 on 32×32, and every dimension is extrapolated. Channel counts are
    /// affine in the width and spatial sizes affine in the input size (halvings and a global
    /// pool); Conv2DTests checks the extrapolation against direct runs at other settings.
    static func extrapolatedLayers(inChannels: Int, width w: Int, size s: Int) -> [(name: String, record: ConvolutionRecord)] {
        precondition(w >= 4 && w % 4 == 0 && s >= 16 && s % 16 == 0, "DFR-UNet width \(w) (a multiple of 4), size \(s) (a multiple of 16)")
        let base = recordedLayers(inChannels: inChannels, width: 4, size: 16)
        let wider = recordedLayers(inChannels: inChannels, width: 8, size: 16)
        let larger = recordedLayers(inChannels: inChannels, width: 4, size: 32)
        precondition(base.map(\.name) == wider.map(\.name) && base.map(\.name) == larger.map(\.name)
                     && base.map(\.record.op) == wider.map(\.record.op) && base.map(\.record.op) == larger.map(\.record.op),
                     "DFR-UNet launches a different sequence of convolutions at another width or size")
        func extrapolate(_ b: Shape, _ wd: Shape, _ lg: Shape) -> Shape {
            Shape((0..<b.rank).map { i in b[i] + (wd[i] - b[i]) * (w - 4) / 4 + (lg[i] - b[i]) * (s - 16) / 16 })
        }
        return base.indices.map { i in
            var r = base[i].record
            r.input = extrapolate(r.input, wider[i].record.input, larger[i].record.input)
            r.weightShape = extrapolate(r.weightShape, wider[i].record.weightShape, larger[i].record.weightShape)
            r.weight = nil
            return (base[i].name, r)
        }
    }

    /// The op-case geometry of one recorded layer, at batch 1 from 64×64 up and 2 below.
    static func layerSpec(_ name: String, _ r: ConvolutionRecord) -> ConvLayerSpec {
        var input = r.input
        input = Shape([input[2] >= 64 ? 1 : 2] + input.dims.dropFirst())
        switch r.op {
        case let .conv2d(params):
            return ConvLayerSpec(name, .conv2d, input: input, weight: r.weightShape, params: params, bias: r.hasBias)
        case .convTranspose2x2:
            return ConvLayerSpec(name, .convTranspose2x2, input: input, weight: r.weightShape, bias: r.hasBias)
        case .maxPool2x2:
            return ConvLayerSpec(name, .maxPool2x2, input: input)
        }
    }
}
