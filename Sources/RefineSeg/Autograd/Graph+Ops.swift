/// Differentiable ops: each computes with the backend and records how to send gradients back.
extension Graph {
    public func add(_ a: Var, _ b: Var) throws -> Var {
        record(try backend.add(a.value, b.value), [a, b]) { g in [g, g] }
    }

    public func scale(_ a: Var, by factor: Float) throws -> Var {
        let b = backend
        return record(try b.scale(a.value, by: factor), [a]) { g in [try b.scale(g, by: factor)] }
    }

    public func relu(_ x: Var) throws -> Var {
        let b = backend
        let y = try b.relu(x.value)
        return record(y, [x]) { g in [try b.reluBackward(g, output: y)] }
    }

    public func sigmoid(_ x: Var) throws -> Var {
        let b = backend
        let y = try b.sigmoid(x.value)
        return record(y, [x]) { g in [try b.sigmoidBackward(g, output: y)] }
    }

    /// The same values under another shape (same element count).
    public func reshape(_ x: Var, _ shape: Shape) throws -> Var {
        let original = x.shape
        return record(try x.value.reshaped(shape), [x]) { g in [try g.reshaped(original)] }
    }

    public func conv2d(_ x: Var, weight: Var, bias: Var?, params: Conv2DParams) throws -> Var {
        onConvolution?(ConvolutionRecord(op: .conv2d(params), input: x.shape, weight: weight.parameter, weightShape: weight.shape,
                                         hasBias: bias != nil))
        let b = backend
        let y = try b.conv2d(x.value, weight: weight.value, bias: bias?.value, params: params)
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        // x's gradient so far (x feeding several convs) is added by the backward-data kernel itself.
        return recordAccumulating(y, inputs) { g, priors in
            var grads: [Tensor?] = [
                x.needsGrad ? try b.conv2dBackwardData(g, weight: weight.value, inputShape: x.shape, params: params, adding: priors[0]) : nil,
                try self.plus(priors[1], weight.needsGrad ? try b.conv2dBackwardWeight(g, input: x.value, weightShape: weight.shape, params: params) : nil),
            ]
            if let bias { grads.append(try self.plus(priors[2], bias.needsGrad ? try b.sumPerChannel(g).reshaped(bias.shape) : nil)) }
            return grads
        }
    }

    /// prior + g for a gradient whose kernel cannot add the prior itself (`recordAccumulating`).
    func plus(_ prior: Tensor?, _ g: Tensor?) throws -> Tensor? {
        guard let prior, let g else { return g }
        return try backend.add(prior, g)
    }

    public func convTranspose2x2(_ x: Var, weight: Var, bias: Var?) throws -> Var {
        onConvolution?(ConvolutionRecord(op: .convTranspose2x2, input: x.shape, weight: weight.parameter, weightShape: weight.shape,
                                         hasBias: bias != nil))
        let b = backend
        let y = try b.convTranspose2x2(x.value, weight: weight.value, bias: bias?.value)
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        return record(y, inputs) { g in
            var grads: [Tensor?] = [
                x.needsGrad ? try b.convTranspose2x2BackwardData(g, weight: weight.value) : nil,
                weight.needsGrad ? try b.convTranspose2x2BackwardWeight(g, input: x.value) : nil,
            ]
            if let bias { grads.append(bias.needsGrad ? try b.sumPerChannel(g).reshaped(bias.shape) : nil) }
            return grads
        }
    }

    public func maxPool2x2(_ x: Var) throws -> Var {
        onConvolution?(ConvolutionRecord(op: .maxPool2x2, input: x.shape, weight: nil, weightShape: [], hasBias: false))
        let b = backend
        return recordAccumulating(try b.maxPool2x2(x.value), [x]) { g, priors in
            [try b.maxPool2x2Backward(g, input: x.value, adding: priors[0])]
        }
    }

    public func concatChannels(_ parts: [Var]) throws -> Var {
        let b = backend
        let counts = parts.map { $0.shape[1] }
        return record(try b.concatChannels(parts.map(\.value)), parts) { g in
            var start = 0
            return try counts.map { c in
                defer { start += c }
                return try b.sliceChannels(g, start: start, count: c)
            }
        }
    }

    /// Channel concat of `parts` and, as the last channels, `pooled` (N, Cb, 1, 1) broadcast over
    /// their H, W (with `relu`, relu of it): the context block's concat and pool branch as one
    /// node. One launch copies the last part and writes the broadcast; backward, one launch slices
    /// the last part's gradient and sums the pooled part's over H, W (`concatBroadcast`).
    public func concatBroadcast(_ parts: [Var], pooled: Var, relu: Bool = false) throws -> Var {
        let b = backend
        let channels = parts.map { $0.shape[1] }, shape = pooled.shape
        return record(try b.concatBroadcast(parts.map(\.value), pooled: pooled.value, relu: relu), parts + [pooled]) { g in
            let r = try b.concatBroadcastBackward(g, channels: channels, reluInput: relu ? pooled.value : nil)
            return r.parts + [try r.pooled.reshaped(shape)]
        }
    }

    /// BatchNorm2d (NCHW) or BatchNorm1d ((N, C)): batch statistics and a running-stat update
    /// in training mode, running statistics otherwise. `activation` (ReLU, sigmoid) is fused
    /// into the same kernels, forward and backward (one node instead of two).
    public func batchNorm(_ x: Var, _ bn: BatchNorm, activation: NormActivation = .none) throws -> Var {
        // --sync-bn: statistics over every rank, then the activation as its own node.
        if training, let override = batchNormOverride, let y = try override(x, bn, self) {
            switch activation {
            case .none: return y
            case .relu: return try relu(y)
            case .sigmoid: return try sigmoid(y)
            }
        }
        let b = backend
        let w = parameter(bn.weight), bias = parameter(bn.bias)
        guard training else {
            let y = try b.batchNormEval(x.value, weight: w.value, bias: bias.value, runningMean: bn.runningMean.value,
                                        runningVar: bn.runningVar.value, eps: bn.eps, activation: activation)
            return constant(y)
        }
        let (y, saved) = try b.batchNormTrain(x.value, weight: w.value, bias: bias.value, runningMean: bn.runningMean.value,
                                              runningVar: bn.runningVar.value, momentum: bn.momentum, eps: bn.eps, activation: activation)
        return record(y, [x, w, bias]) { g in
            let r = try b.batchNormBackward(g, input: x.value, weight: w.value, saved: saved)
            return [r.dx, r.dweight, r.dbias]
        }
    }

    /// BatchNorm2d (no activation) and the channel-attention descriptors of its result (as
    /// `channelDescriptors(y)`), as one node with two results: in training the batch norm's kernel
    /// computes them in the pass that writes y (`batchNormTrainDescriptors`), and the backward
    /// sends the descriptors' gradient into y's (`channelDescriptorsBackward` adding it) before the
    /// batch norm's. Eval and --sync-bn: the two ops one after the other.
    public func batchNormDescriptors(_ x: Var, _ bn: BatchNorm) throws -> (y: Var, descriptors: Var) {
        guard training, batchNormOverride == nil else {
            let y = try batchNorm(x, bn)
            return (y, try channelDescriptors(y))
        }
        let b = backend
        let w = parameter(bn.weight), bias = parameter(bn.bias)
        let r = try b.batchNormTrainDescriptors(x.value, weight: w.value, bias: bias.value, runningMean: bn.runningMean.value,
                                                runningVar: bn.runningVar.value, momentum: bn.momentum, eps: bn.eps)
        let (saved, argmax, shape) = (r.saved, r.argmax, r.y.shape)
        let out = recordJoint([r.y, r.descriptors], [x, w, bias]) { g in
            let dy = try g[1].map { try b.channelDescriptorsBackward($0, argmax: argmax, inputShape: shape, adding: g[0]) } ?? g[0]
            guard let dy else { return [nil, nil, nil] }
            let d = try b.batchNormBackward(dy, input: x.value, weight: w.value, saved: saved)
            return [d.dx, d.dweight, d.dbias]
        }
        return (out[0], out[1])
    }

    /// Mean and max over H, W: two (N, C) descriptors from one pass, recorded as one node whose
    /// backward runs once with both gradients (a missing one taken as zero).
    public func spatialMeanMax(_ x: Var) throws -> (mean: Var, max: Var) {
        let b = backend
        let (mean, maxv) = try b.spatialMeanMax(x.value)
        let r = recordJoint([mean, maxv], [x]) { g in
            [try b.spatialMeanMaxBackward(dMean: try g[0] ?? b.zeros(mean.shape), dMax: try g[1] ?? b.zeros(maxv.shape),
                                          input: x.value)]
        }
        return (r[0], r[1])
    }

    /// Channel-attention descriptors stacked (2N, C): means over H, W, then maxima, so the
    /// shared MLP runs once; the backward uses the saved arg-max and never reads x.
    public func channelDescriptors(_ x: Var) throws -> Var {
        let b = backend
        let (d, argmax) = try b.channelDescriptors(x.value)
        let shape = x.shape
        return recordAccumulating(d, [x]) { g, priors in
            [try b.channelDescriptorsBackward(g, argmax: argmax, inputShape: shape, adding: priors[0])]
        }
    }

    /// The channel-attention MLP W2·relu(W1·d + b1) + b2 over the rows of d (R, C) as one node:
    /// one kernel forward, two backward (which use the saved hidden activations).
    public func channelMLP(_ d: Var, w1: Var, b1: Var, w2: Var, b2: Var) throws -> Var {
        let b = backend
        let (l, hidden) = try b.channelMLP(d.value, w1: w1.value, b1: b1.value, w2: w2.value, b2: b2.value)
        return record(l, [d, w1, b1, w2, b2]) { g in
            let r = try b.channelMLPBackward(g, d: d.value, w1: w1.value, w2: w2.value, hidden: hidden)
            return [r.dd, r.dw1, r.db1, r.dw2, r.db2]
        }
    }

    /// The channel attention after its descriptors d (2N, C) of x: the MLP on d and the gate
    /// x · σ(l[n, c] + l[N + n, c]) as one node, one kernel forward (`channelMLPGate`); the backward
    /// (`channelMLPGateBackward`) is the gate's and the MLP's, from the saved logits and hidden
    /// activations (one kernel on CPU devices).
    public func channelMLPGate(_ x: Var, descriptors d: Var, w1: Var, b1: Var, w2: Var, b2: Var) throws -> Var {
        let b = backend
        let r = try b.channelMLPGate(x.value, descriptors: d.value, w1: w1.value, b1: b1.value, w2: w2.value, b2: b2.value)
        let (logits, hidden) = (r.logits, r.hidden)
        return record(r.y, [x, d, w1, b1, w2, b2]) { g in
            let (dx, m) = try b.channelMLPGateBackward(g, x: x.value, logits: logits, descriptors: d.value, w1: w1.value, w2: w2.value,
                                                       hidden: hidden)
            return [dx, m.dd, m.dw1, m.db1, m.dw2, m.db2]
        }
    }

    /// x · σ(l[n, c] + l[N + n, c]) for the stacked MLP outputs l (2N, C), one kernel each way.
    public func channelGate(_ x: Var, logits: Var) throws -> Var {
        let b = backend
        return record(try b.channelGate(x.value, logits: logits.value), [x, logits]) { g in
            let r = try b.channelGateBackward(g, x: x.value, logits: logits.value)
            return [r.dx, r.dlogits]
        }
    }

    /// relu(x · gate + residual) with a (N, 1, H, W) gate, one kernel each way.
    public func pixelGateAddReLU(_ x: Var, gate: Var, residual: Var) throws -> Var {
        let b = backend
        return record(try b.pixelGateAddReLU(x.value, gate: gate.value, residual: residual.value), [x, gate, residual]) { g in
            let r = try b.pixelGateAddReLUBackward(g, x: x.value, gate: gate.value, residual: residual.value)
            return [r.dx, r.dgate, r.dresidual]
        }
    }

    /// concat[mean over C, max over C] → (N, 2, H, W).
    public func channelMeanMax(_ x: Var) throws -> Var {
        let b = backend
        let r = try b.channelMeanMaxWithArgmax(x.value)
        return recordAccumulating(r.y, [x]) { g, priors in
            [try b.channelMeanMaxBackward(g, argmax: r.argmax, inputShape: x.value.shape, adding: priors[0])]
        }
    }

    public func mulChannelGate(_ x: Var, _ gate: Var) throws -> Var {
        let b = backend
        return record(try b.mulChannelGate(x.value, gate.value), [x, gate]) { g in
            let r = try b.mulChannelGateBackward(g, x: x.value, gate: gate.value)
            return [r.dx, r.dgate]
        }
    }

    public func mulPixelGate(_ x: Var, _ gate: Var) throws -> Var {
        let b = backend
        return record(try b.mulPixelGate(x.value, gate.value), [x, gate]) { g in
            let r = try b.mulPixelGateBackward(g, x: x.value, gate: gate.value)
            return [r.dx, r.dgate]
        }
    }

    /// Mean over the given contiguous axes (kept with extent 1).
    public func mean(_ x: Var, axes: Range<Int>) throws -> Var {
        let b = backend
        return record(try b.reduce(x.value, axes: axes, kind: .mean), [x]) { g in
            [try b.reduceBackward(g, input: x.value, axes: axes, kind: .mean)]
        }
    }

    /// (N, C, 1, 1) broadcast to (N, C, H, W); with `relu`, relu(x) broadcast, one kernel each way.
    public func broadcastSpatial(_ x: Var, height: Int, width: Int, relu: Bool = false) throws -> Var {
        let b = backend
        let shape = x.shape
        return record(try b.broadcastSpatial(x.value, height: height, width: width, relu: relu), [x]) { g in
            [try b.broadcastSpatialBackward(g, reluInput: relu ? x.value : nil).reshaped(shape)]
        }
    }

    /// x (N, in) · Wᵀ with W (out, in) → (N, out). No bias (the projector's linears have none).
    public func linear(_ x: Var, weight: Var) throws -> Var {
        let b = backend
        return record(try b.matmul(x.value, weight.value, transposeA: false, transposeB: true), [x, weight]) { g in
            [try b.matmul(g, weight.value, transposeA: false, transposeB: false),
             try b.matmul(g, x.value, transposeA: true, transposeB: false)]
        }
    }

    public func matmul(_ a: Var, _ bVar: Var, transposeA: Bool, transposeB: Bool) throws -> Var {
        let b = backend
        return record(try b.matmul(a.value, bVar.value, transposeA: transposeA, transposeB: transposeB), [a, bVar]) { g in
            let dA = transposeA ? try b.matmul(bVar.value, g, transposeA: transposeB, transposeB: true)
                                : try b.matmul(g, bVar.value, transposeA: false, transposeB: !transposeB)
            let dB = transposeB ? try b.matmul(g, a.value, transposeA: true, transposeB: transposeA)
                                : try b.matmul(a.value, g, transposeA: !transposeA, transposeB: false)
            return [dA, dB]
        }
    }

    // MARK: losses (one-element results)

    public func bceWithLogits(_ logits: Var, target: Tensor) throws -> Var {
        let b = backend
        return record(try b.bceWithLogits(logits.value, target: target), [logits]) { g in
            [try b.bceWithLogitsBackward(g, logits: logits.value, target: target)]
        }
    }

    /// Batch-mean soft Dice score of probabilities.
    public func softDice(_ probs: Var, target: Tensor) throws -> Var {
        let b = backend
        return record(try b.softDice(probs.value, target: target), [probs]) { g in
            [try b.softDiceBackward(g, probs: probs.value, target: target)]
        }
    }

    public func lesionContrastive(_ embedding: Var, logits: Tensor, target: Tensor, params: LACParams = LACParams()) throws -> Var {
        let b = backend
        return record(try b.lesionContrastive(embedding.value, logits: logits, target: target, params: params), [embedding]) { g in
            [try b.lesionContrastiveBackward(g, embedding: embedding.value, logits: logits, target: target, params: params)]
        }
    }

    /// MODEL.md's supervised loss as one fused node (see `LossOps.segmentationLoss`); its backward
    /// uses the state the forward saved. The LAC term's hard-false-positive weights and prototypes are
    /// constants, so the logits' gradient comes from the BCE and Dice terms.
    public func segmentationLoss(logits: Var, embedding: Var?, target: Tensor, weights: SegmentationLossWeights,
                                 lac: LACParams = LACParams()) throws -> Var {
        let b = backend
        let (loss, saved) = try b.segmentationLoss(logits: logits.value, embedding: embedding?.value, target: target,
                                                   weights: weights, lac: lac)
        return record(loss, [logits] + (embedding.map { [$0] } ?? [])) { g in
            let d = try b.segmentationLossBackward(g, logits: logits.value, embedding: embedding?.value, target: target,
                                                   weights: weights, lac: lac, saved: saved)
            return [d.logits] + (embedding == nil ? [] : [d.embedding])
        }
    }

    public func barlowTwinsFromCorrelation(_ c: Var, lambda: Float) throws -> Var {
        let b = backend
        return record(try b.barlowTwinsFromCorrelation(c.value, lambda: lambda), [c]) { g in
            [try b.barlowTwinsFromCorrelationBackward(g, correlation: c.value, lambda: lambda)]
        }
    }
}
