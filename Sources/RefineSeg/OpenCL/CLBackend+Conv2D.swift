import Foundation

/// The three passes of a convolution, as the tuner and the kernel bench name them.
public enum ConvPass: String, Sendable, CaseIterable, Codable {
    case forward
    case backwardData = "backward_data"
    case backwardWeights = "backward_weights"
}

/// Convolutions as implicit GEMM (Kernels/conv2d.cl). The transposed 2×2 conv is expressed
/// through the same kernels: its forward is a conv backward-data gather, its backward-data a
/// stride-2 conv forward and its backward-weight a conv backward-weight with the roles of x and dy swapped.
extension CLBackend: ConvOps {
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2DGeometry, activation: NormActivation) throws -> Tensor {
        return try gatherGEMM(g, source: x, weight: weight, bias: bias, backwardData: false, activation: activation, op: "conv2d")
    }

    public func conv2dBackwardData(_ dy: Tensor, weight: Tensor, geometry g: Conv2DGeometry, adding prior: Tensor?) throws -> Tensor {
        return try gatherGEMM(g, source: dy, weight: weight, bias: nil, backwardData: true, prior: prior, op: "conv2d_backward_data")
    }

    public func conv2dBackwardWeight(_ dy: Tensor, input x: Tensor, geometry g: Conv2DGeometry) throws -> Tensor {
        return try backwardWeightGEMM(g, dy: dy, x: x, op: "conv2d_backward_weight")
    }

    public func convTranspose2x2(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry t: ConvTranspose2x2Geometry) throws -> Tensor {
        let g = try Conv2DGeometry(input: t.outputShape, weight: weight.shape, params: Conv2DParams(stride: 2), op: "conv_transpose2d")
        return try gatherGEMM(g, source: x, weight: weight, bias: bias, backwardData: true, op: "conv_transpose2d")
    }

    public func convTranspose2x2BackwardData(_ dy: Tensor, weight: Tensor, geometry t: ConvTranspose2x2Geometry) throws -> Tensor {
        let g = try Conv2DGeometry(input: dy.shape, weight: weight.shape, params: Conv2DParams(stride: 2), op: "conv_transpose2d_backward_data")
        return try gatherGEMM(g, source: dy, weight: weight, bias: nil, backwardData: false, op: "conv_transpose2d_backward_data")
    }

    public func convTranspose2x2BackwardWeight(_ dy: Tensor, input x: Tensor, geometry t: ConvTranspose2x2Geometry) throws -> Tensor {
        let g = try Conv2DGeometry(input: dy.shape, weight: t.weightShape, params: Conv2DParams(stride: 2), op: "conv_transpose2d_backward_weight")
        return try backwardWeightGEMM(g, dy: x, x: dy, op: "conv_transpose2d_backward_weight")
    }

    /// The kernel configuration the most recent convolution call of this process ran with (for the bench).
    public var lastConvKernel: String { CLTuner.shared.lastChosen }

    // MARK: kernels

    /// "lmem" on devices that prefer local memory (GPUs), else "rows" (conv2d_rows_reg where the
    /// geometry allows it, conv2d_igemm_reg elsewhere). REFINESEG_CONV_VARIANT = reg, rows or lmem
    /// forces one (reg: conv2d_igemm_reg everywhere; the tests run every variant).
    private var convVariant: String {
        if let forced = getenv("REFINESEG_CONV_VARIANT").map({ String(cString: $0) }), ["reg", "rows", "lmem"].contains(forced) {
            return forced
        }
        return ctx.info.prefersLocalMemory ? "lmem" : "rows"
    }

    /// The row-tile kernel that computes this pass on CPU devices, if one does: at least 16 output
    /// channels (so that the channel vectors are full), and conv2d_rows_reg for any forward conv and
    /// the backward-data of a stride-1 "same" conv (the forward conv with the flipped kernel), or
    /// conv2d_rows_up for the backward-data of a 2×2 stride-2 conv without padding (the transposed 2×2
    /// conv's forward).
    private func rowsKernel(_ g: Conv2DGeometry, backwardData: Bool) -> String? {
        guard (backwardData ? g.cin : g.cout) >= 16 else { return nil }
        if !backwardData || rowGeometry(g, backwardData: true) { return "conv2d_rows_reg" }
        let p = g.params
        if g.kh == 2, g.kw == 2, p.strideH == 2, p.strideW == 2, p.padH == 0, p.padW == 0, p.dilationH == 1, p.dilationW == 1,
           g.h == 2 * g.oh, g.w == 2 * g.ow {
            return "conv2d_rows_up"
        }
        return nil
    }

    /// Stride 1 (backward-data: and "same" padding, so that it is the forward conv with the flipped kernel).
    private func rowGeometry(_ g: Conv2DGeometry, backwardData: Bool) -> Bool {
        let p = g.params
        guard p.strideH == 1, p.strideW == 1 else { return false }
        return !backwardData || (2 * p.padH == p.dilationH * (g.kh - 1) && 2 * p.padW == p.dilationW * (g.kw - 1))
    }

    private func geometryOptions(_ g: Conv2DGeometry) -> String {
        let p = g.params
        return "-DKH=\(g.kh) -DKW=\(g.kw) -DSH=\(p.strideH) -DSW=\(p.strideW) -DPH=\(p.padH) -DPW=\(p.padW) -DDH=\(p.dilationH) -DDW=\(p.dilationW)"
    }

    /// Tuning is on by default on GPUs only (see `CLTuner`).
    private var tunesByDefault: Bool { ctx.info.type == "GPU" || ctx.info.type == "ACCELERATOR" }

    /// Tuning-cache key: device, driver, the conv kernels' source (so a build with changed
    /// kernels tunes afresh instead of reusing winners timed on the old code), variant, pass, geometry.
    private func tuningKey(_ pass: ConvPass, _ g: Conv2DGeometry, variant: String) -> String {
        "\(ctx.info.name)|\(ctx.info.driverVersion)|conv2d.cl \(Self.convSourceFingerprint)|\(variant)|\(pass.rawValue)|\(g)"
    }

    /// FNV-1a of Kernels/common.h + Kernels/conv2d.cl as compiled into this build, in hex.
    static let convSourceFingerprint: String = {
        let source = (KernelSources.files["common.h"] ?? "") + "\n" + (KernelSources.files["conv2d"] ?? "")
        return String(source.hashValueStable, radix: 16)
    }()

    /// Vector widths worth trying for `m` output channels: none wider than needed.
    private func vectorWidths(_ m: Int) -> [Int] { [16, 8, 4].filter { $0 <= max(4, m.nextPowerOfTwo) } }

    /// Forward (source x, dst y) or backward-data gather (source dy, dst dx).
    private func gatherGEMM(_ g: Conv2DGeometry, source: Tensor, weight: Tensor, bias: Tensor?,
                            backwardData: Bool, activation: NormActivation = .none, prior: Tensor? = nil, op: String) throws -> Tensor {
        let m = backwardData ? g.cin : g.cout
        let cs = backwardData ? g.cout : g.cin
        let (srcH, srcW) = backwardData ? (g.oh, g.ow) : (g.h, g.w)
        let dstShape = backwardData ? g.inputShape : g.outputShape
        let (dstH, dstW) = (dstShape[2], dstShape[3])
        let pixels = g.n * dstH * dstW
        var variant = convVariant
        let rowsName = rowsKernel(g, backwardData: backwardData)
        if variant == "rows" && rowsName == nil { variant = "reg" }
        if variant == "reg" && convVariant == "rows" && m < 16 && rowGeometry(g, backwardData: backwardData) {
            return try pixelRows(g, source: source, weight: weight, bias: bias, backwardData: backwardData,
                                 activation: activation, prior: prior, op: op)
        }
        let candidates: [ConvKernelConfig]
        switch variant {
        case "lmem":
            candidates = [ConvKernelConfig(variant: "lmem"),
                          ConvKernelConfig(variant: "lmem", tsm: 32, tsn: 64, tsk: 16, wptm: 2, wptn: 4),
                          ConvKernelConfig(variant: "lmem", tsm: 64, tsn: 128, tsk: 8, wptm: 4, wptn: 8),
                          ConvKernelConfig(variant: "lmem", tsm: 16, tsn: 64, tsk: 16, wptm: 1, wptn: 4)]
        case "rows":
            // Two channel vectors × 8 pixels (16 accumulators) by default; one vector where M ≤ 16.
            let mv = m > 16 ? 2 : 1
            candidates = [ConvKernelConfig(variant: "rows", tm: 16, tn: 8, mv: mv),
                          ConvKernelConfig(variant: "rows", tm: 16, tn: 8, mv: 3 - mv),
                          ConvKernelConfig(variant: "rows", tm: 16, tn: 16, mv: 1),
                          ConvKernelConfig(variant: "rows", tm: 8, tn: 16, mv: 2)]
        default:
            let widths = vectorWidths(m)
            var list = [ConvKernelConfig(variant: "reg", tm: widths[0], tn: 8)]
            for tm in widths { for tn in [4, 8, 16] where !(tm == widths[0] && tn == 8) && tm * tn <= 256 {
                list.append(ConvKernelConfig(variant: "reg", tm: tm, tn: tn))
            } }
            candidates = Array(list.prefix(5))
        }
        // Packed weights: rows needs channel-major order and MP a multiple of MV·TM (32 covers every
        // candidate); conv2d_rows_reg runs backward-data with the flipped kernel, conv2d_rows_up without.
        let rows = variant == "rows"
        let mp = rows ? (m + 31) / 32 * 32 : (m + 15) / 16 * 16
        let packed = try empty([g.kh * g.kw, cs, mp], op: op)
        let transpose = backwardData ? (rows && rowsName == "conv2d_rows_reg" ? 2 : 1) : 0
        try run("conv2d_pack_weights", file: "conv2d",
                [.tensor(weight), .tensor(packed), .int(cs), .int(m), .int(mp), .int(g.kh * g.kw),
                 .int(transpose), .int(rows ? 1 : 0)],
                global: [mp, g.kh * g.kw * cs])
        let dst = try empty(dstShape, op: op)
        let biasArg = bias ?? prior ?? packed   // the prior (ACCUM) travels in the bias slot; unread when both are off
        // conv2d_rows_reg runs backward-data as a forward conv (flipped kernel, same geometry).
        let geometry = geometryOptions(g) + " -DBWD_DATA=\(backwardData && !rows ? 1 : 0) -DHAS_BIAS=\(bias == nil ? 0 : 1)"
            + " -DACT=\(activation.rawValue) -DACCUM=\(prior == nil ? 0 : 1)"
        let args: [KernelArg] = [.tensor(source), .tensor(packed), .tensor(biasArg), .tensor(dst), .int(g.n), .int(cs),
                                 .int(srcH), .int(srcW), .int(m), .int(dstH), .int(dstW), .int(mp)]
        func launch(_ c: ConvKernelConfig) throws {
            switch c.variant {
            case "lmem":
                let rtsm = c.tsm / c.wptm, rtsn = c.tsn / c.wptn
                try run("conv2d_igemm_lmem", file: "conv2d",
                        options: geometry + " -DTSM=\(c.tsm) -DTSN=\(c.tsn) -DTSK=\(c.tsk) -DWPTM=\(c.wptm) -DWPTN=\(c.wptn)",
                        args, global: [(m + c.tsm - 1) / c.tsm * rtsm, (pixels + c.tsn - 1) / c.tsn * rtsn], local: [rtsm, rtsn], flops: g.flops)
            case "rows":
                // An explicit work-group size: with the one PoCL picks (up to 4096 items) its work-group
                // function can overflow the worker's stack for tiles this large. Only the channel tiles
                // that hold real channels are launched (MP may be padded past them).
                let rowTiles = g.n * dstH * ((dstW + c.tn - 1) / c.tn)
                try run(rowsName ?? "conv2d_rows_reg", file: "conv2d", options: geometry + " -DTM=\(c.tm) -DMV=\(c.mv) -DRN=\(c.tn)",
                        args, global: [rowTiles, (m + c.tm * c.mv - 1) / (c.tm * c.mv)],
                        local: [Self.largestDivisor(of: rowTiles, atMost: 64), 1], flops: g.flops)
            default:
                try run("conv2d_igemm_reg", file: "conv2d", options: geometry + " -DTM=\(c.tm) -DTN=\(c.tn)",
                        args, global: [(pixels + c.tn - 1) / c.tn, (m + c.tm - 1) / c.tm], flops: g.flops)
            }
        }
        let pass: ConvPass = backwardData ? .backwardData : .forward
        let config = try CLTuner.shared.choose(key: tuningKey(pass, g, variant: variant), candidates: candidates,
                                               deviceDefault: tunesByDefault) { c in
            try timeDevice { try launch(c) }
        }
        try launch(config)
        return dst
    }

    /// conv2d_rows_px: fewer than 16 output channels, stride 1; one vector of PV pixels × all channels per work item.
    private func pixelRows(_ g: Conv2DGeometry, source: Tensor, weight: Tensor, bias: Tensor?,
                           backwardData: Bool, activation: NormActivation, prior: Tensor?, op: String) throws -> Tensor {
        let m = backwardData ? g.cin : g.cout
        let cs = backwardData ? g.cout : g.cin
        let (srcH, srcW) = backwardData ? (g.oh, g.ow) : (g.h, g.w)
        let dstShape = backwardData ? g.inputShape : g.outputShape
        let (dstH, dstW) = (dstShape[2], dstShape[3])
        let dst = try empty(dstShape, op: op)
        let options = geometryOptions(g) + " -DMT=\(m) -DFLIP=\(backwardData ? 1 : 0) -DHAS_BIAS=\(bias == nil ? 0 : 1)"
            + " -DACT=\(activation.rawValue) -DACCUM=\(prior == nil ? 0 : 1)"
        let args: [KernelArg] = [.tensor(source), .tensor(weight), .tensor(bias ?? prior ?? weight), .tensor(dst), .int(g.n), .int(cs),
                                 .int(srcH), .int(srcW), .int(m), .int(dstH), .int(dstW)]
        func launch(_ c: ConvKernelConfig) throws {
            let tiles = g.n * dstH * ((dstW + c.tn - 1) / c.tn)
            try run("conv2d_rows_px", file: "conv2d", options: options + " -DPV=\(c.tn)", args,
                    global: [tiles], local: [Self.largestDivisor(of: tiles, atMost: 64)], flops: g.flops)
        }
        let candidates = [ConvKernelConfig(variant: "px", tm: 1, tn: 16), ConvKernelConfig(variant: "px", tm: 1, tn: 8)]
        let config = try CLTuner.shared.choose(key: tuningKey(backwardData ? .backwardData : .forward, g, variant: "px"),
                                               candidates: candidates, deviceDefault: tunesByDefault) { c in
            try timeDevice { try launch(c) }
        }
        try launch(config)
        return dst
    }

    /// dw (Cout, Cin, KH, KW): split over the N·OH·OW reduction, then a fixed-order sum of the splits.
    private func backwardWeightGEMM(_ g: Conv2DGeometry, dy: Tensor, x: Tensor, op: String) throws -> Tensor {
        if convVariant == "lmem" { return try backwardWeightLocalMemory(g, dy: dy, x: x, op: op) }
        let pixels = g.n * g.oh * g.ow
        let taps = g.kh * g.kw
        if convVariant == "rows" && g.params.strideH == 1 && g.params.strideW == 1 && g.cout < 16 && g.cout * g.kw <= 32 {
            return try pixelBackwardWeight(g, dy: dy, x: x, op: op)
        }
        // conv2d_bwd_weight_rows: CPU devices, rows of whole 8-pixel blocks, full channel vectors.
        let rows = convVariant == "rows" && g.ow % 8 == 0 && g.cout >= 16
        let mp = rows && g.cout > 16 ? (g.cout + 31) / 32 * 32 : (g.cout + 15) / 16 * 16
        let dyRows = try empty([pixels, mp], op: op)
        // CPU devices: 16 × 16 blocks (contiguous reads and writes; GPUs pack one element per work item).
        try run("conv2d_pack_rows16", file: "conv2d",
                [.tensor(dy), .tensor(dyRows), .int(g.cout), .int(mp), .int(g.oh * g.ow), .int(pixels)],
                global: [mp / 16, (pixels + 15) / 16])
        let units = max(ctx.info.computeUnits, 1)
        var candidates = [ConvKernelConfig]()
        if rows {
            // Two channel vectors × 4 input channels × KW taps (24 accumulators for 3×3) by default.
            let shapes = g.cout > 16 ? [(2, 4), (2, 3), (1, 4), (1, 8)] : [(1, 4), (1, 8)]
            let qRows = g.n * g.oh
            for (mv, tn) in shapes {
                let tiles = (g.cin + tn - 1) / tn * g.kh * (mp / (16 * mv))
                let wanted = max(1, (8 * units + tiles - 1) / tiles)
                candidates.append(ConvKernelConfig(variant: "rows", tm: 16, tn: tn, mv: mv, chunk: max(1, (qRows + wanted - 1) / wanted)))
            }
        } else {
            let widths = vectorWidths(g.cout)
            // Enough splits to give both cores (or every GPU compute unit) work, each at least 64 rows long.
            func defaultChunk(tm: Int, tn: Int) -> Int {
                let tiles = (g.cin + tn - 1) / tn * taps * ((g.cout + tm - 1) / tm)
                let wanted = max(1, (8 * units + tiles - 1) / tiles)
                return max(64, (pixels + wanted - 1) / wanted)
            }
            for tm in widths.prefix(2) {
                for tn in [8, 4] {
                    let chunk = defaultChunk(tm: tm, tn: tn)
                    candidates.append(ConvKernelConfig(variant: "reg", tm: tm, tn: tn, chunk: chunk))
                    if chunk * 4 < pixels { candidates.append(ConvKernelConfig(variant: "reg", tm: tm, tn: tn, chunk: chunk * 4)) }
                }
            }
            candidates = Array(candidates.prefix(5))
        }
        let dw = try empty(g.weightShape, op: op)
        func launch(_ c: ConvKernelConfig) throws {
            let ciTiles = (g.cin + c.tn - 1) / c.tn
            let splits: Int
            if c.variant == "rows" {
                // chunk: output rows (n, oy) per split.
                splits = (g.n * g.oh + c.chunk - 1) / c.chunk
                let partial = try empty([splits, taps, ciTiles * c.tn, mp], op: op)
                try run("conv2d_bwd_weight_rows", file: "conv2d",
                        options: geometryOptions(g) + " -DTM=\(c.tm) -DTN=\(c.tn) -DMV=\(c.mv) -DRB=8",
                        [.tensor(dyRows), .tensor(x), .tensor(partial), .int(g.n), .int(g.cin), .int(g.h), .int(g.w),
                         .int(g.oh), .int(g.ow), .int(mp), .int(c.chunk)],
                        global: [ciTiles * g.kh, (g.cout + c.tm * c.mv - 1) / (c.tm * c.mv), splits],
                        local: [Self.largestDivisor(of: ciTiles * g.kh, atMost: 8), 1, 1], flops: g.flops)
                try run("conv2d_bwd_weight_reduce", file: "conv2d",
                        [.tensor(partial), .tensor(dw), .int(g.cout), .int(g.cin), .int(ciTiles * c.tn), .int(mp), .int(taps), .int(splits)],
                        global: [g.cout * g.cin * taps])
                return
            }
            splits = (pixels + c.chunk - 1) / c.chunk
            let partial = try empty([splits, taps, ciTiles * c.tn, mp], op: op)
            try run("conv2d_bwd_weight_reg", file: "conv2d", options: geometryOptions(g) + " -DTM=\(c.tm) -DTN=\(c.tn)",
                    [.tensor(dyRows), .tensor(x), .tensor(partial), .int(g.n), .int(g.cin), .int(g.h), .int(g.w),
                     .int(g.oh), .int(g.ow), .int(mp), .int(c.chunk)],
                    global: [ciTiles * taps, (g.cout + c.tm - 1) / c.tm, splits], flops: g.flops)
            try run("conv2d_bwd_weight_reduce", file: "conv2d",
                    [.tensor(partial), .tensor(dw), .int(g.cout), .int(g.cin), .int(ciTiles * c.tn), .int(mp), .int(taps), .int(splits)],
                    global: [g.cout * g.cin * taps])
        }
        let config = try CLTuner.shared.choose(key: tuningKey(.backwardWeights, g, variant: rows ? "rows" : "reg"), candidates: candidates,
                                               deviceDefault: tunesByDefault) { c in
            try timeDevice { try launch(c) }
        }
        try launch(config)
        return dw
    }

    // MARK: GPU backward-weight (conv2d_bwd_weight_lmem)

    /// Backward-weight on devices that prefer local memory: conv2d_bwd_weight_lmem over splits of
    /// the N·OH·OW pixels (enough work-groups for 4 per compute unit), then the fixed-order sum over
    /// the splits. Candidates: co tile 16/32/64 (the smallest that holds Cout), j tile 64 or 32, the
    /// default split length or 4× it; with tuning off, the first (j tile 32 when Cin·taps ≤ 32, else 64).
    private func backwardWeightLocalMemory(_ g: Conv2DGeometry, dy: Tensor, x: Tensor, op: String) throws -> Tensor {
        let pixels = g.n * g.oh * g.ow, k2 = g.cin * g.kh * g.kw, tsk = 16
        let mp = (g.cout + 15) / 16 * 16
        let dyRows = try empty([pixels, mp], op: op)
        try run("conv2d_pack_rows", file: "conv2d", [.tensor(dy), .tensor(dyRows), .int(g.cout), .int(mp), .int(g.oh * g.ow), .int(pixels)],
                global: [mp, pixels])
        let tsm = g.cout <= 16 ? 16 : g.cout <= 32 ? 32 : 64
        func chunk(tsn: Int) -> Int {
            let tiles = (k2 + tsn - 1) / tsn * ((g.cout + tsm - 1) / tsm)
            let splits = max(1, (4 * max(ctx.info.computeUnits, 1) + tiles - 1) / tiles)
            return max(4 * tsk, (pixels + splits - 1) / splits + tsk - 1) / tsk * tsk
        }
        var candidates = [ConvKernelConfig]()
        // A 32-wide j tile first where Cin·taps fits in it (less padding: small layers, and
        // Oclgrind, which runs the first candidate).
        for tsn in k2 <= 32 ? [32, 64] : [64, 32] {
            let c = chunk(tsn: tsn)
            candidates.append(ConvKernelConfig(variant: "lmem", tsm: tsm, tsn: tsn, chunk: c))
            if c * 4 < pixels { candidates.append(ConvKernelConfig(variant: "lmem", tsm: tsm, tsn: tsn, chunk: c * 4)) }
        }
        let dw = try empty(g.weightShape, op: op)
        func launch(_ c: ConvKernelConfig) throws {
            let splits = (pixels + c.chunk - 1) / c.chunk
            let partial = try empty([splits, g.cout, k2], op: op)
            let (rn, rm) = (c.tsn / 4, c.tsm / 4)   // BW_WPTN = BW_WPTM = 4 outputs per item
            try run("conv2d_bwd_weight_lmem", file: "conv2d", options: geometryOptions(g) + " -DBW_TSM=\(c.tsm) -DBW_TSN=\(c.tsn)",
                    [.tensor(dyRows), .tensor(x), .tensor(partial), .int(g.n), .int(g.cin), .int(g.cout), .int(g.h), .int(g.w),
                     .int(g.oh), .int(g.ow), .int(mp), .int(c.chunk)],
                    global: [(k2 + c.tsn - 1) / c.tsn * rn, (g.cout + c.tsm - 1) / c.tsm * rm, splits], local: [rn, rm, 1], flops: g.flops)
            try run("conv2d_bwd_weight_lmem_reduce", file: "conv2d", [.tensor(partial), .tensor(dw), .int(g.cout * k2), .int(splits)],
                    global: [g.cout * k2])
        }
        let config = try CLTuner.shared.choose(key: tuningKey(.backwardWeights, g, variant: "lmem"), candidates: candidates,
                                               deviceDefault: tunesByDefault) { c in
            try timeDevice { try launch(c) }
        }
        try launch(config)
        return dw
    }

    /// conv2d_bwd_weight_px: fewer than 16 output channels, stride 1, dy read as given (no packing);
    /// a work item owns TN input channels × one kernel row × its KW taps over the rows of a split.
    private func pixelBackwardWeight(_ g: Conv2DGeometry, dy: Tensor, x: Tensor, op: String) throws -> Tensor {
        let taps = g.kh * g.kw
        let pb = g.ow >= 16 ? 16 : (g.ow >= 8 ? 8 : 4)
        // TN input channels so that TN·Cout·KW accumulators stay within a budget of 16 or 28 vectors.
        func tn(_ budget: Int) -> Int {
            [16, 8, 4, 2, 1].first { $0 <= max(1, g.cin.nextPowerOfTwo) && $0 * g.cout * g.kw <= budget } ?? 1
        }
        let units = max(ctx.info.computeUnits, 1)
        let qRows = g.n * g.oh
        var candidates = [ConvKernelConfig]()
        for t in [tn(16), tn(28)] where !candidates.contains(where: { $0.tn == t }) {
            let tiles = (g.cin + t - 1) / t * g.kh
            let wanted = max(1, (8 * units + tiles - 1) / tiles)
            candidates.append(ConvKernelConfig(variant: "pxw", tm: pb, tn: t, chunk: max(1, (qRows + wanted - 1) / wanted)))
        }
        let dw = try empty(g.weightShape, op: op)
        func launch(_ c: ConvKernelConfig) throws {
            let ciTiles = (g.cin + c.tn - 1) / c.tn
            let splits = (qRows + c.chunk - 1) / c.chunk
            let partial = try empty([splits, taps, g.cin, g.cout], op: op)
            try run("conv2d_bwd_weight_px", file: "conv2d",
                    options: geometryOptions(g) + " -DMT=\(g.cout) -DTN=\(c.tn) -DPB=\(c.tm)",
                    [.tensor(dy), .tensor(x), .tensor(partial), .int(g.n), .int(g.cin), .int(g.h), .int(g.w),
                     .int(g.oh), .int(g.ow), .int(c.chunk)],
                    global: [ciTiles * g.kh, 1, splits], local: [Self.largestDivisor(of: ciTiles * g.kh, atMost: 8), 1, 1],
                    flops: g.flops)
            try run("conv2d_bwd_weight_reduce", file: "conv2d",
                    [.tensor(partial), .tensor(dw), .int(g.cout), .int(g.cin), .int(g.cin), .int(g.cout), .int(taps), .int(splits)],
                    global: [g.cout * g.cin * taps])
        }
        let config = try CLTuner.shared.choose(key: tuningKey(.backwardWeights, g, variant: "pxw"), candidates: candidates,
                                               deviceDefault: tunesByDefault) { c in
            try timeDevice { try launch(c) }
        }
        try launch(config)
        return dw
    }

    /// The largest divisor of `n` that is ≤ `limit` (a work-group size that tiles a global size exactly).
    static func largestDivisor(of n: Int, atMost limit: Int) -> Int {
        stride(from: min(n, limit), to: 1, by: -1).first { n % $0 == 0 } ?? 1
    }

    /// Device milliseconds of `body`: one warm-up (PoCL compiles per work-group size on first
    /// launch), then the best of two profiled runs.
    private func timeDevice(_ body: () throws -> Void) throws -> Double {
        try body()
        try synchronize()
        var best = Double.infinity
        for _ in 0..<2 {
            startProfiling()
            try body()
            best = min(best, try stopProfiling().reduce(0) { $0 + $1.milliseconds })
        }
        return best
    }
}

extension Int {
    /// The smallest power of two ≥ self (1 for self ≤ 1).
    var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
