extension CLBackend: LossOps {
    /// out = (Σ partials in order) / divisor, on the device.
    func sumPartials(_ partials: Tensor, count: Int, divisor: Float, op: String) throws -> Tensor {
        let out = try empty([1], op: op)
        try run("sum_partials", file: "losses", [.tensor(partials), .int(count), .float(divisor), .tensor(out)], global: [1])
        return out
    }

    public func bceWithLogits(_ logits: Tensor, target: Tensor, geometry g: BCEGeometry) throws -> Tensor {
        let chunks = max(1, (g.count + KernelConstants.bceChunk - 1) / KernelConstants.bceChunk)
        let partials = try empty([chunks], op: "bce_with_logits")
        try runPerGroup("bce_partial", file: "losses", [.tensor(logits), .tensor(target), .tensor(partials), .int(g.count)],
                        groups: chunks)
        return try sumPartials(partials, count: chunks, divisor: Float(max(g.count, 1)), op: "bce_with_logits")
    }

    public func bceWithLogitsBackward(_ dLoss: Tensor, logits: Tensor, target: Tensor, geometry g: BCEGeometry) throws -> Tensor {
        let dx = try empty(logits.shape, op: "bce_with_logits_backward")
        try run("bce_backward", file: "losses", [.tensor(dLoss), .tensor(logits), .tensor(target), .tensor(dx), .int(g.count)],
                global: [g.count])
        return dx
    }

    /// (N, 3) per-image Σp·y, Σp, Σy.
    private func diceSums(_ probs: Tensor, _ target: Tensor, _ g: DiceGeometry, op: String) throws -> Tensor {
        let stats = try empty([g.n, 3], op: op)
        try runPerGroup("dice_sums", file: "losses", [.tensor(probs), .tensor(target), .tensor(stats), .int(g.perImage)], groups: g.n)
        return stats
    }

    public func softDice(_ probs: Tensor, target: Tensor, geometry g: DiceGeometry) throws -> Tensor {
        let stats = try diceSums(probs, target, g, op: "soft_dice")
        let out = try empty([1], op: "soft_dice")
        try run("dice_final", file: "losses", [.tensor(stats), .int(g.n), .tensor(out)], global: [1])
        return out
    }

    public func softDiceBackward(_ dLoss: Tensor, probs: Tensor, target: Tensor, geometry g: DiceGeometry) throws -> Tensor {
        let stats = try diceSums(probs, target, g, op: "soft_dice_backward")
        let dp = try empty(probs.shape, op: "soft_dice_backward")
        try run("dice_backward", file: "losses",
                [.tensor(dLoss), .tensor(probs), .tensor(target), .tensor(stats), .tensor(dp), .int(g.n), .int(g.perImage)],
                global: [probs.count])
        return dp
    }

    public func barlowTwinsFromCorrelation(_ c: Tensor, lambda: Float, geometry g: BarlowGeometry) throws -> Tensor {
        let d = g.d
        let rows = try empty([d], op: "barlow_twins")
        try runPerGroup("barlow_rows", file: "losses", [.tensor(c), .tensor(rows), .int(d), .float(lambda)], groups: d)
        return try sumPartials(rows, count: d, divisor: 1, op: "barlow_twins")
    }

    public func barlowTwinsFromCorrelationBackward(_ dLoss: Tensor, correlation c: Tensor, lambda: Float, geometry g: BarlowGeometry) throws -> Tensor {
        let d = g.d
        let dc = try empty([d, d], op: "barlow_twins_backward")
        try run("barlow_backward", file: "losses", [.tensor(dLoss), .tensor(c), .tensor(dc), .int(d), .float(lambda)],
                global: [d * d])
        return dc
    }

    /// Saved tensors of `segmentationLoss`, in `SegmentationLossSaved.tensors` order: the group
    /// kernels' (`gpuGlue`) and the CPU variants' (which keep the partials, not seg_final's stats).
    private enum SegSaved: Int { case stats, norms, protos, pixelState }
    private enum SegSavedCPU: Int, CaseIterable { case partials, norms, protos, pixelState, valid, loss }

    public func segmentationLoss(logits: Tensor, embedding: Tensor?, target: Tensor, weights: SegmentationLossWeights,
                                 lac: LACParams, geometry g: SegLossGeometry) throws -> (loss: Tensor, saved: SegmentationLossSaved) {
        let op = "segmentation_loss"
        let options = "-DWITH_LAC=\(g.d > 0 ? 1 : 0) " + itemLayoutOption
        if !gpuGlue { return try segmentationLossCPU(logits: logits, embedding: embedding, target: target, weights: weights, lac: lac, geometry: g) }
        var saved = [Tensor]()
        // Without the LAC term the LAC arguments are unused: any buffer stands in.
        var norms = logits, protos = logits, valid = logits, pixelState = logits
        if let e = embedding {
            norms = try empty([g.n, g.hw], op: op)
            try runItems("lac_norms", file: "losses", options: options, [.tensor(e), .tensor(norms), .int(g.d), .int(g.hw)],
                         items: [(g.hw + lacSpan - 1) / lacSpan, g.n], bytes: 4 * (e.count + norms.count))
            let sums = try empty([g.n, 2, g.d], op: op), counts = try empty([g.n, 2], op: op)
            try runPerGroup("lac_class_sums", file: "losses", options: options,
                            [.tensor(e), .tensor(norms), .tensor(target), .tensor(sums), .tensor(counts), .int(g.d), .int(g.hw)],
                            groups: g.n * g.d)
            protos = try empty([g.n, 2, g.d], op: op); valid = try empty([g.n], op: op)
            try run("lac_prototypes", file: "losses", options: options,
                    [.tensor(sums), .tensor(counts), .tensor(protos), .tensor(valid), .int(g.n), .int(g.d)], global: [g.n])
            pixelState = try empty([g.n, 2, g.hw], op: op)
        }
        let chunks = (g.hw + KernelConstants.segChunk - 1) / KernelConstants.segChunk
        let partials = try empty([g.n, chunks, 6], op: op)
        try runPerGroup("seg_pixel", file: "losses", options: options,
                        [.tensor(logits), .tensor(target), .tensor(embedding ?? logits), .tensor(norms), .tensor(protos), .tensor(valid),
                         .tensor(pixelState), .tensor(partials), .int(g.d), .int(g.hw), .int(chunks), .float(lac.tau), .float(lac.gamma)],
                        groups: g.n * chunks)
        let loss = try empty([1], op: op), stats = try empty([g.n + 1, 4], op: op)
        try run("seg_final", file: "losses", options: options,
                [.tensor(partials), .tensor(valid), .tensor(loss), .tensor(stats), .int(g.n), .int(chunks), .int(g.hw),
                 .float(weights.bce), .float(weights.dice), .float(weights.lac)], global: [1])
        saved = [stats, norms, protos, pixelState]
        return (loss, SegmentationLossSaved(tensors: saved))
    }

    /// Pixels per work-item of the CPU variants of the loss's forward (SEG_SPAN_CPU, Kernels/losses.cl; a multiple of 16).
    static let segSpanCPU = 1024

    /// The forward on CPU devices (not `gpuGlue`): lac_embed_cpu (norms and per-span class sums in
    /// one read of the embedding), seg_pixel_cpu (the prototypes, then the per-pixel terms). The final
    /// reduction to the loss (seg_final) is owed to the queue (`CLContext.owe`): the backward
    /// (seg_backward_cpu) claims it and writes the loss itself; anything else that reaches the queue
    /// first (a read of the loss, another kernel) has seg_final queued before it.
    private func segmentationLossCPU(logits: Tensor, embedding: Tensor?, target: Tensor, weights: SegmentationLossWeights,
                                     lac: LACParams, geometry g: SegLossGeometry) throws -> (loss: Tensor, saved: SegmentationLossSaved) {
        let op = "segmentation_loss"
        let span = Self.segSpanCPU, spans = (g.hw + span - 1) / span
        let options = segCPUOptions(g)
        // Without the LAC term the LAC arguments are unused: any buffer stands in.
        var norms = logits, protos = logits, valid = logits, pixelState = logits, embPartials = logits
        if let e = embedding {
            norms = try empty([g.n, g.hw], op: op)
            embPartials = try empty([g.n, spans, 2 * g.d + 1], op: op)
            try runItems("lac_embed_cpu", file: "losses", options: options,
                         [.tensor(e), .tensor(target), .tensor(norms), .tensor(embPartials), .int(g.hw), .int(spans)],
                         items: [spans, g.n])
            protos = try empty([g.n, 2, g.d], op: op); valid = try empty([g.n], op: op)
            pixelState = try empty([g.n, 2, g.hw], op: op)
        }
        let partials = try empty([g.n, spans, 6], op: op)
        try runItems("seg_pixel_cpu", file: "losses", options: options,
                     [.tensor(logits), .tensor(target), .tensor(embedding ?? logits), .tensor(norms), .tensor(embPartials),
                      .tensor(protos), .tensor(valid), .tensor(pixelState), .tensor(partials), .int(g.hw), .int(spans),
                      .float(lac.tau), .float(lac.gamma)],
                     items: [spans, g.n])
        let loss = try empty([1], op: op), stats = try empty([g.n + 1, 4], op: op)
        try ctx.owe("seg_final", file: "losses", options: options,
                    args: [.buffer(try buffer(partials)), .buffer(try buffer(valid)), .buffer(try buffer(loss)),
                           .buffer(try buffer(stats)), .int(g.n), .int(spans), .int(g.hw),
                           .float(weights.bce), .float(weights.dice), .float(weights.lac)],
                    global: [1], token: try buffer(loss))
        var saved = [Tensor](repeating: partials, count: SegSavedCPU.allCases.count)
        saved[SegSavedCPU.norms.rawValue] = norms
        saved[SegSavedCPU.protos.rawValue] = protos
        saved[SegSavedCPU.pixelState.rawValue] = pixelState
        saved[SegSavedCPU.valid.rawValue] = valid
        saved[SegSavedCPU.loss.rawValue] = loss
        return (loss, SegmentationLossSaved(tensors: saved))
    }

    /// The build options of the CPU variants (the same program for all three).
    private func segCPUOptions(_ g: SegLossGeometry) -> String {
        "-DWITH_LAC=\(g.d > 0 ? 1 : 0) -DLAC_D=\(max(g.d, 1)) -DSEG_SPAN_CPU=\(Self.segSpanCPU) " + itemLayoutOption
    }

    /// seg_backward_cpu: the CPU variants' backward, from their saved partials; it writes the loss
    /// too when the forward's seg_final is still owed (then no seg_final runs at all).
    private func segmentationLossBackwardCPU(_ dLoss: Tensor, logits: Tensor, embedding: Tensor?, target: Tensor,
                                             weights: SegmentationLossWeights, saved t: [Tensor],
                                             geometry g: SegLossGeometry) throws -> (logits: Tensor, embedding: Tensor?) {
        let op = "segmentation_loss_backward"
        let spans = (g.hw + Self.segSpanCPU - 1) / Self.segSpanCPU
        let dLogits = try empty(logits.shape, op: op)
        let dE = try embedding.map { try empty($0.shape, op: op) }
        let loss = t[SegSavedCPU.loss.rawValue]
        let writeLoss = ctx.claimOwed(try buffer(loss))
        try runItems("seg_backward_cpu", file: "losses", options: segCPUOptions(g),
                     [.tensor(dLoss), .tensor(logits), .tensor(target), .tensor(t[SegSavedCPU.partials.rawValue]),
                      .tensor(t[SegSavedCPU.valid.rawValue]), .tensor(loss), .int(writeLoss ? 1 : 0), .tensor(dLogits),
                      .tensor(embedding ?? logits), .tensor(t[SegSavedCPU.norms.rawValue]), .tensor(t[SegSavedCPU.protos.rawValue]),
                      .tensor(t[SegSavedCPU.pixelState.rawValue]), .tensor(dE ?? dLogits), .int(g.n), .int(g.hw), .int(spans),
                      .float(weights.bce), .float(weights.dice), .float(weights.lac)],
                     items: [spans, g.n])
        return (dLogits, dE)
    }

    public func segmentationLossBackward(_ dLoss: Tensor, logits: Tensor, embedding: Tensor?, target: Tensor,
                                         weights: SegmentationLossWeights, lac: LACParams, saved: SegmentationLossSaved,
                                         geometry g: SegLossGeometry) throws -> (logits: Tensor, embedding: Tensor?) {
        let op = "segmentation_loss_backward"
        if saved.tensors.count == SegSavedCPU.allCases.count {
            return try segmentationLossBackwardCPU(dLoss, logits: logits, embedding: embedding, target: target, weights: weights,
                                                   saved: saved.tensors, geometry: g)
        }
        guard saved.tensors.count == 4 else {
            throw RefineSegError.invalidArgument("[\(op)] saved state of another backend or op (\(saved.tensors.count) tensors)")
        }
        let t = saved.tensors
        let dLogits = try empty(logits.shape, op: op)
        let dE = try embedding.map { try empty($0.shape, op: op) }
        try runItems("seg_backward", file: "losses", options: "-DWITH_LAC=\(g.d > 0 ? 1 : 0) " + itemLayoutOption,
                [.tensor(dLoss), .tensor(logits), .tensor(target), .tensor(t[SegSaved.stats.rawValue]), .tensor(dLogits),
                 .tensor(embedding ?? logits), .tensor(t[SegSaved.norms.rawValue]), .tensor(t[SegSaved.protos.rawValue]),
                 .tensor(t[SegSaved.pixelState.rawValue]), .tensor(dE ?? dLogits), .int(g.n), .int(g.d), .int(g.hw),
                 .float(weights.bce), .float(weights.dice), .float(weights.lac)],
                items: [(g.hw + lacSpan - 1) / lacSpan, g.n])
        return (dLogits, dE)
    }

    /// The LAC term alone: the fused loss with weights (0, 0, 1).
    private static let lacOnly = SegmentationLossWeights(bce: 0, dice: 0, lac: 1)

    public func lesionContrastive(_ embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams, geometry g: LACGeometry) throws -> Tensor {
        try segmentationLoss(logits: logits, embedding: embedding, target: target, weights: Self.lacOnly, lac: params).loss
    }

    /// Runs the forward again for its saved state (the graph's training path uses the fused op,
    /// which keeps it); d loss / d embedding.
    public func lesionContrastiveBackward(_ dLoss: Tensor, embedding: Tensor, logits: Tensor, target: Tensor,
                                          params: LACParams, geometry g: LACGeometry) throws -> Tensor {
        let saved = try segmentationLoss(logits: logits, embedding: embedding, target: target, weights: Self.lacOnly, lac: params).saved
        return try segmentationLossBackward(dLoss, logits: logits, embedding: embedding, target: target, weights: Self.lacOnly,
                                            lac: params, saved: saved).embedding!
    }
}
