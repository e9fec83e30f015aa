/// Everything a backend offers. Model code sees only `Tensor` and this protocol.
///
/// The op families are separate protocols so each lives in its own files, mirrored across
/// backends (`CPUBackend+Conv2D.swift` ↔ `CLBackend+Conv2D.swift` ↔ `Kernels/conv2d.cl`).
/// All feature maps are NCHW float32. Backward ops return gradients for the inputs named.
public typealias Backend = BackendCore & ElementwiseOps & ReduceOps & MatmulOps & ConvOps
    & NormOps & AttentionOps & LossOps & OptimOps & DiagnosticsOps

/// Memory movement and identity.
public protocol BackendCore: AnyObject {
    /// Short name for messages, e.g. "cpu" or "opencl:0 (pthread-skylake…)".
    var name: String { get }
    /// Uploads host values, `g.shape.count` of them (checked by `tensor(_:shape:)` below).
    func tensor(_ values: [Float], geometry g: UploadGeometry) throws -> Tensor
    /// A tensor of `shape` filled with `value`.
    func full(_ shape: Shape, value: Float) throws -> Tensor
    /// Copies a tensor's values to the host (blocking).
    func read(_ tensor: Tensor) throws -> [Float]
    /// Waits until every queued operation has finished.
    func synchronize() throws
    /// Starts copying a tensor's values to the host without waiting; `PendingRead.values()` waits
    /// only for the work queued before this call (so a training loop can read step k's loss after
    /// queuing step k + 1, and the device never idles while the host looks at it).
    func startRead(_ tensor: Tensor) throws -> PendingRead
}

extension BackendCore {
    /// Uploads host values. `values.count` must equal `shape.count` (checked here, in front of every backend).
    public func tensor(_ values: [Float], shape: Shape) throws -> Tensor {
        try tensor(values, geometry: try UploadGeometry(count: values.count, shape: shape))
    }

    public func zeros(_ shape: Shape) throws -> Tensor { try full(shape, value: 0) }
    /// Backends without a queue read at once.
    public func startRead(_ tensor: Tensor) throws -> PendingRead {
        let v = try read(tensor)
        return PendingRead { v }
    }
}

/// Host values checked to fill `shape` (`BackendCore.tensor`).
public struct UploadGeometry: Sendable {
    public let shape: Shape

    init(count: Int, shape: Shape) throws {
        guard count == shape.count else {
            throw RefineSegError.shapeMismatch(op: "tensor", detail: "\(count) values for shape \(shape)")
        }
        self.shape = shape
    }
}

/// A device-to-host copy in flight (`BackendCore.startRead`).
public final class PendingRead {
    private var wait: (() throws -> [Float])?
    private var result: [Float]?

    public init(_ wait: @escaping () throws -> [Float]) { self.wait = wait }

    /// The values (waits for the copy the first time).
    public func values() throws -> [Float] {
        if let result { return result }
        let v = try wait!()
        result = v; wait = nil
        return v
    }
}

/// Reduction kinds.
public enum ReduceKind: String, Sendable, CaseIterable { case sum, mean, max }

/// Elementwise ops (Kernels/elementwise.cl). Binary ops need equal shapes: their `geometry:`
/// is checked by the entry points of `Backend/Contract+Elementwise.swift` (the same names without
/// `geometry:`), as are those of concat, slice and the gates.
public protocol ElementwiseOps {
    func add(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor
    func sub(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor
    func mul(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor
    /// `a * factor`.
    func scale(_ a: Tensor, by factor: Float) throws -> Tensor
    /// In place: `target += alpha * source` (gradient accumulation).
    func accumulate(_ target: Tensor, _ source: Tensor, alpha: Float, geometry g: BinaryGeometry) throws
    func relu(_ x: Tensor) throws -> Tensor
    /// dx = dy where y > 0, else 0 (y is relu's output).
    func reluBackward(_ dy: Tensor, output y: Tensor, geometry g: BinaryGeometry) throws -> Tensor
    func sigmoid(_ x: Tensor) throws -> Tensor
    /// dx = dy · y · (1 − y) (y is sigmoid's output).
    func sigmoidBackward(_ dy: Tensor, output y: Tensor, geometry g: BinaryGeometry) throws -> Tensor
    /// A fresh copy with its own storage.
    func copy(_ x: Tensor) throws -> Tensor
    /// In place: every element of `x` becomes `value`.
    func fill(_ x: Tensor, value: Float) throws
    /// Channel concat of NCHW tensors with equal N, H, W → `g.output`; part i has `g.channels[i]`
    /// channels. (Shapes checked by `concatChannels(_:)` in `Backend/Contract+Elementwise.swift`.)
    func concatChannels(_ parts: [Tensor], geometry g: ConcatGeometry) throws -> Tensor
    /// Channels `g.start ..< g.start + g.count` of an NCHW tensor → `g.output`.
    /// (Checked by `sliceChannels(_:start:count:)` in `Backend/Contract+Elementwise.swift`.)
    func sliceChannels(_ x: Tensor, geometry g: SliceGeometry) throws -> Tensor
    /// `concatChannels` of the parts (N, Ci, H, W) and, as the last `g.pooled` channels, the pooled
    /// part (N, Cb, 1, 1) broadcast over H, W (with `relu`, relu of it) → `g.output`, in one op:
    /// the context block's concat and its pool branch's broadcast.
    func concatBroadcast(_ parts: [Tensor], pooled: Tensor, relu: Bool, geometry g: ConcatBroadcastGeometry) throws -> Tensor
    /// Backward of `concatBroadcast` from dy `g.output`: each part's channels of dy, and the pooled
    /// part's Σ over H, W (N, Cb, 1, 1); with `reluInput` (the forward's pooled part), 0 where that
    /// is not > 0.
    func concatBroadcastBackward(_ dy: Tensor, reluInput: Tensor?, geometry g: ConcatBroadcastGeometry) throws
        -> (parts: [Tensor], pooled: Tensor)
    /// y = x[n, c, h, w] · gate[n, c]   (channel gate, gate shape (N, C)).
    /// (The four gate ops' shapes are checked by the entry points of `Backend/Contract+Elementwise.swift`,
    /// the same names without `geometry:`.)
    func mulChannelGate(_ x: Tensor, _ gate: Tensor, geometry: GateGeometry) throws -> Tensor
    /// Gradients of `mulChannelGate`: (dx, dgate) with dgate[n, c] = Σ_hw dy·x.
    func mulChannelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dgate: Tensor)
    /// y = x[n, c, h, w] · gate[n, 0, h, w]   (pixel gate, gate shape (N, 1, H, W)).
    func mulPixelGate(_ x: Tensor, _ gate: Tensor, geometry: GateGeometry) throws -> Tensor
    /// Gradients of `mulPixelGate`: (dx, dgate) with dgate[n, 0, h, w] = Σ_c dy·x.
    func mulPixelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dgate: Tensor)
}

/// Reductions over a contiguous run of axes `axes` (e.g. 2..<4 for H, W of NCHW).
/// The output keeps the reduced axes with extent 1. (Kernels/reduce.cl)
///
/// Callers use the entry points of `Backend/Contract+Reduce.swift` (the same names without
/// `geometry:`), which check the shapes and pass the checked geometry to the methods below.
public protocol ReduceOps {
    func reduce(_ x: Tensor, axes: Range<Int>, kind: ReduceKind, geometry g: ReduceGeometry) throws -> Tensor
    /// dx for `reduce`; for max the gradient goes to the first maximal element of each group.
    func reduceBackward(_ dy: Tensor, input x: Tensor, axes: Range<Int>, kind: ReduceKind, geometry g: ReduceGeometry) throws -> Tensor
    /// Σ over N, H, W per channel of an NCHW tensor (ranks 1…4, read as `Shape.nchw`) → shape (C) (bias gradients).
    func sumPerChannel(_ x: Tensor, geometry g: PerChannelGeometry) throws -> Tensor
}

/// Matrix multiply of rank-2 tensors: C = op(A) · op(B), op = transpose when asked. (Kernels/matmul.cl)
public protocol MatmulOps {
    func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, geometry g: MatmulGeometry) throws -> Tensor
}

/// Geometry of a 2-D convolution.
public struct Conv2DParams: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var strideH: Int, strideW: Int
    public var padH: Int, padW: Int
    public var dilationH: Int, dilationW: Int

    public init(stride: Int = 1, padding: Int = 0, dilation: Int = 1) {
        self.init(strideH: stride, strideW: stride, padH: padding, padW: padding,
                  dilationH: dilation, dilationW: dilation)
    }

    public init(strideH: Int, strideW: Int, padH: Int, padW: Int, dilationH: Int, dilationW: Int) {
        self.strideH = strideH; self.strideW = strideW
        self.padH = padH; self.padW = padW
        self.dilationH = dilationH; self.dilationW = dilationW
    }

    /// Output (OH, OW) for an input (H, W) and kernel (KH, KW); non-positive when it does not fit.
    public func outputSize(h: Int, w: Int, kh: Int, kw: Int) -> (h: Int, w: Int) {
        ((h + 2 * padH - dilationH * (kh - 1) - 1) / strideH + 1,
         (w + 2 * padW - dilationW * (kw - 1) - 1) / strideW + 1)
    }

    public var description: String {
        "s=\(strideH)x\(strideW) p=\(padH)x\(padW) d=\(dilationH)x\(dilationW)"
    }
}

/// Convolutions and pooling. (Kernels/conv2d.cl, Kernels/pool.cl)
///
/// Callers use `conv2d(_:weight:bias:params:)` and the other entry points of
/// `Backend/Contract+Conv2D.swift`, which check the shapes and pass the checked geometry to the
/// methods below; a backend implements these and never sees unchecked shapes.
public protocol ConvOps {
    /// x `g.inputShape`, weight `g.weightShape`, bias (Cout) or nil → `g.outputShape`, with
    /// `activation` (ReLU, sigmoid) applied to every output in the same kernel: the eval path of a
    /// ConvBN layer whose batch norm is folded into the weights (no backward: eval only).
    func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2DGeometry, activation: NormActivation) throws -> Tensor
    /// dx `g.inputShape` from dy `g.outputShape`.
    /// With `prior` (shaped like dx): prior + dx in the same pass (a gradient that already reached x).
    func conv2dBackwardData(_ dy: Tensor, weight: Tensor, geometry g: Conv2DGeometry, adding prior: Tensor?) throws -> Tensor
    /// dweight `g.weightShape` from dy `g.outputShape` and x `g.inputShape`.
    func conv2dBackwardWeight(_ dy: Tensor, input x: Tensor, geometry g: Conv2DGeometry) throws -> Tensor
    /// Transposed conv, kernel 2, stride 2: x (N, Cin, H, W), weight (Cin, Cout, 2, 2), bias (Cout) → (N, Cout, 2H, 2W).
    func convTranspose2x2(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvTranspose2x2Geometry) throws -> Tensor
    func convTranspose2x2BackwardData(_ dy: Tensor, weight: Tensor, geometry g: ConvTranspose2x2Geometry) throws -> Tensor
    func convTranspose2x2BackwardWeight(_ dy: Tensor, input x: Tensor, geometry g: ConvTranspose2x2Geometry) throws -> Tensor
    /// Max pool 2×2, stride 2: x `g.inputShape` → `g.outputShape` (entry point: `maxPool2x2(_:)`, Contract+Pool.swift).
    func maxPool2x2(_ x: Tensor, geometry g: MaxPool2x2Geometry) throws -> Tensor
    /// Routes dy (`g.outputShape`) to the first maximal element of each window of x.
    /// With `prior` (like x): prior + dx in the same pass.
    func maxPool2x2Backward(_ dy: Tensor, input x: Tensor, geometry g: MaxPool2x2Geometry, adding prior: Tensor?) throws -> Tensor
}

extension ConvOps {
    /// x (N, Cin, H, W), weight (Cout, Cin, KH, KW), bias (Cout) or nil → (N, Cout, OH, OW).
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, params: Conv2DParams) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, params: params, activation: .none)
    }
}

/// An activation fused after a batch norm (in the same kernels, forward and backward).
public enum NormActivation: Int, Sendable, CaseIterable {
    case none = 0, relu = 1, sigmoid = 2
}

/// Saved state of a training-mode batch norm, everything its backward needs (nothing is recomputed
/// but the cheap per-element affine map).
public struct BatchNormSaved {
    /// Per-channel batch mean (C).
    public var mean: Tensor
    /// Per-channel 1 / sqrt(biased batch variance + eps) (C).
    public var invStd: Tensor
    /// The activation fused after the normalisation.
    public var activation: NormActivation
    /// The bias (C) when an activation was fused: the backward recomputes its input
    /// t = (x − mean)·invStd·weight + bias rather than keeping the output.
    public var bias: Tensor?
    public init(mean: Tensor, invStd: Tensor, activation: NormActivation = .none, bias: Tensor? = nil) {
        self.mean = mean; self.invStd = invStd; self.activation = activation; self.bias = bias
    }
}

/// Batch normalisation over (N, H, W) per channel; rank-2 (N, C) inputs are BatchNorm1d. (Kernels/norm.cl)
///
/// Callers use the entry points of `Backend/Contract+Norm.swift` (the same names without
/// `geometry:`), which check the shapes and pass the checked geometry to the methods below.
public protocol NormOps {
    /// Training mode: normalises with the batch statistics (biased variance) and updates the
    /// running statistics in place with the unbiased variance: r ← (1 − momentum)·r + momentum·batch.
    /// `activation` is applied to the result in the same pass (and `saved` says so for the backward).
    func batchNormTrain(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                        momentum: Float, eps: Float, activation: NormActivation, geometry g: BatchNormGeometry) throws
        -> (y: Tensor, saved: BatchNormSaved)
    /// Training mode without an activation that also returns the channel-attention descriptors of
    /// its result, `channelDescriptors(y)` (the refinement block's conv2 feeds its channel
    /// attention): a backend computes them in the pass that writes y where it can, so they cost no
    /// extra read of y. The default runs the two ops one after the other; results equal either way.
    func batchNormTrainDescriptors(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                                   momentum: Float, eps: Float, geometry g: BatchNormGeometry) throws
        -> (y: Tensor, saved: BatchNormSaved, descriptors: Tensor, argmax: Tensor)
    /// Evaluation mode: normalises with the running statistics, then `activation`, same pass.
    func batchNormEval(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                       eps: Float, activation: NormActivation, geometry g: BatchNormGeometry) throws -> Tensor
    /// Gradients of training-mode batch norm (through its fused activation, `saved.activation`):
    /// (dx, dweight, dbias).
    func batchNormBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, saved: BatchNormSaved, geometry g: BatchNormGeometry) throws
        -> (dx: Tensor, dweight: Tensor, dbias: Tensor)
    /// An eval-mode batch norm folded into the conv before it: with s = weight / √(runningVar + eps),
    /// the conv weight (Cout, …) scaled by s per output channel, and bias (convBias − runningMean)·s + bias.
    func foldBatchNorm(convWeight: Tensor, convBias: Tensor?, weight: Tensor, bias: Tensor, runningMean: Tensor,
                       runningVar: Tensor, eps: Float, geometry g: BatchNormFoldGeometry) throws -> (weight: Tensor, bias: Tensor)
}

extension NormOps {
    /// Batch norm without a fused activation.
    public func batchNormTrain(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                               momentum: Float, eps: Float) throws -> (y: Tensor, saved: BatchNormSaved) {
        try batchNormTrain(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                           momentum: momentum, eps: eps, activation: .none)
    }

    public func batchNormEval(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                              eps: Float) throws -> Tensor {
        try batchNormEval(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, eps: eps, activation: .none)
    }
}

extension NormOps where Self: AttentionOps {
    /// The two ops in turn (the CPU reference, and devices without a fused kernel).
    public func batchNormTrainDescriptors(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                                          momentum: Float, eps: Float, geometry g: BatchNormGeometry) throws
        -> (y: Tensor, saved: BatchNormSaved, descriptors: Tensor, argmax: Tensor) {
        let (y, saved) = try batchNormTrain(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                            momentum: momentum, eps: eps, activation: .none, geometry: g)
        let (d, argmax) = try channelDescriptors(y)
        return (y, saved, d, argmax)
    }
}

/// The refinement blocks' fused pieces. (Kernels/attention.cl)
///
/// Callers use the entry points of `Backend/Contract+Attention.swift` (the same names without
/// `geometry:`), which check the shapes and pass the checked geometry to the methods below.
public protocol AttentionOps {
    /// Channel attention descriptors: mean and max over H, W of x `g.shape` → two (N, C) tensors, one pass.
    func spatialMeanMax(_ x: Tensor, geometry g: AttentionGeometry) throws -> (mean: Tensor, max: Tensor)
    /// dx `g.shape` from the gradients of both descriptors, each (N, C).
    func spatialMeanMaxBackward(dMean: Tensor, dMax: Tensor, input x: Tensor, geometry g: AttentionGeometry) throws -> Tensor
    /// Spatial attention input: concat[mean over C, max over C] of x `g.shape` → (N, 2, H, W), one pass;
    /// and the first maximal channel of every pixel, (N, 1, H, W) (its index as a value), for the backward.
    func channelMeanMax(_ x: Tensor, geometry g: AttentionGeometry) throws -> (y: Tensor, argmax: Tensor)
    /// dx `g.shape` from d of the (N, 2, H, W) output and the forward's arg-max plane (N, 1, H, W):
    /// dMean/C everywhere, + dMax at the arg-max channel. With `prior` (like dx): prior + dx in the same pass.
    func channelMeanMaxBackward(_ dy: Tensor, argmax: Tensor, adding prior: Tensor?, geometry g: AttentionGeometry) throws -> Tensor
    /// Broadcasts (N, C) or (N, C, 1, 1) to `g.shape` = (N, C, H, W) (the context block's pool
    /// branch); with `relu`, relu(x) is broadcast (the branch's ReLU in the same pass).
    func broadcastSpatial(_ x: Tensor, relu: Bool, geometry g: AttentionGeometry) throws -> Tensor
    /// Backward of `broadcastSpatial`: Σ over H, W of dy `g.shape` → (N, C, 1, 1); with `reluInput`
    /// (the forward's x, N·C values), 0 where it is not > 0 (the ReLU's backward in the same pass).
    func broadcastSpatialBackward(_ dy: Tensor, reluInput: Tensor?, geometry g: AttentionGeometry) throws -> Tensor
    /// Channel-attention descriptors of x `g.shape` stacked for one pass of the shared MLP:
    /// (2N, C) with the means over H, W in rows 0..<N and the maxima in rows N..<2N, plus the
    /// saved state of the backward: each plane's first arg-max (N, C), as float indices.
    func channelDescriptors(_ x: Tensor, geometry g: AttentionGeometry) throws -> (descriptors: Tensor, argmax: Tensor)
    /// dx (shape `g.shape`, the input's) from the descriptors' gradient (2N, C) and the saved arg-max.
    /// With `prior` (shape `g.shape`): prior + dx in the same pass.
    func channelDescriptorsBackward(_ d: Tensor, argmax: Tensor, adding prior: Tensor?, geometry g: AttentionGeometry) throws -> Tensor
    /// The channel gate from the stacked MLP outputs l (2N, C): y = x · σ(l[n, c] + l[N + n, c]).
    func channelGate(_ x: Tensor, logits: Tensor, geometry: GateGeometry) throws -> Tensor
    /// (dx, dlogits (2N, C)): both halves of dlogits get σ'·Σ_hw dy·x.
    func channelGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dlogits: Tensor)
    /// The refinement block's tail in one pass: y = relu(x · gate[n, 0, h, w] + residual),
    /// gate (N, 1, H, W), residual like x.
    func pixelGateAddReLU(_ x: Tensor, gate: Tensor, residual: Tensor, geometry: GateGeometry) throws -> Tensor
    /// (dx, dgate, dresidual) of `pixelGateAddReLU` (the ReLU mask recomputed from the inputs).
    func pixelGateAddReLUBackward(_ dy: Tensor, x: Tensor, gate: Tensor, residual: Tensor, geometry: GateGeometry) throws
        -> (dx: Tensor, dgate: Tensor, dresidual: Tensor)
    /// The channel-attention MLP in one op: logits = W2·relu(W1·d + b1) + b2 for every row of the
    /// stacked descriptors d (R, C), with PyTorch Linear layouts W1 (Hd, C), b1 (Hd), W2 (C, Hd),
    /// b2 (C). Returns the logits (R, C) and the backward's saved state: the hidden activations
    /// after the ReLU (R, Hd).
    func channelMLP(_ d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, geometry g: ChannelMLPGeometry) throws
        -> (logits: Tensor, hidden: Tensor)
    /// `channelMLP` on the stacked descriptors d (2N, C) of x (N, C, H, W), then `channelGate` of x
    /// with its logits, in one op: y like x, and the backward's saved state, the logits (2N, C)
    /// and the hidden activations (2N, Hd), as the two ops return them (the same values).
    func channelMLPGate(_ x: Tensor, descriptors d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                        geometry g: ChannelMLPGateGeometry) throws -> (y: Tensor, logits: Tensor, hidden: Tensor)
    /// Every gradient of `channelMLP` from dlogits (R, C) and the saved hidden activations
    /// (the ReLU mask is hidden > 0, as `reluBackward`).
    func channelMLPBackward(_ dlogits: Tensor, d: Tensor, w1: Tensor, w2: Tensor, hidden: Tensor, geometry g: ChannelMLPGeometry) throws
        -> ChannelMLPGradients
    /// The backward of `channelMLPGate` from dy (like x) and its saved logits (2N, C) and hidden
    /// activations (2N, Hd): `channelGateBackward`, then `channelMLPBackward` of its dlogits, as one
    /// op (the default runs the two in turn): dx, and the MLP's gradients.
    func channelMLPGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor, descriptors d: Tensor, w1: Tensor, w2: Tensor,
                                hidden: Tensor, geometry g: ChannelMLPGateGeometry) throws -> (dx: Tensor, mlp: ChannelMLPGradients)
}

extension AttentionOps {
    /// The two ops in turn (the CPU reference, and devices without a fused kernel).
    public func channelMLPGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor, descriptors d: Tensor, w1: Tensor, w2: Tensor,
                                       hidden: Tensor, geometry g: ChannelMLPGateGeometry) throws -> (dx: Tensor, mlp: ChannelMLPGradients) {
        let gate = try channelGateBackward(dy, x: x, logits: logits, geometry: g.gate)
        return (gate.dx, try channelMLPBackward(gate.dlogits, d: d, w1: w1, w2: w2, hidden: hidden, geometry: g.mlp))
    }
}

/// Gradients of `AttentionOps.channelMLP`, shaped like the corresponding inputs.
public struct ChannelMLPGradients {
    public var dd: Tensor, dw1: Tensor, db1: Tensor, dw2: Tensor, db2: Tensor
    public init(dd: Tensor, dw1: Tensor, db1: Tensor, dw2: Tensor, db2: Tensor) {
        self.dd = dd; self.dw1 = dw1; self.db1 = db1; self.dw2 = dw2; self.db2 = db2
    }
}

/// Constants of the lesion-aware contrastive loss (docs/MODEL.md).
public struct LACParams: Equatable, Sendable {
    public var tau: Float = 0.1
    public var gamma: Float = 4
    public init(tau: Float = 0.1, gamma: Float = 4) { self.tau = tau; self.gamma = gamma }
}

/// Losses, each reduced to a one-element tensor, with their gradients. (Kernels/losses.cl)
public protocol LossOps {
    // Every method takes the shapes checked by the entry points of `Backend/Contract+Loss.swift`
    // (the same names without `geometry:`), which also check that a backward's upstream gradient
    // `dLoss` has one element.

    /// Mean over all elements of the stable BCE-with-logits: max(x,0) − x·y + log(1 + e^{−|x|}).
    func bceWithLogits(_ logits: Tensor, target: Tensor, geometry g: BCEGeometry) throws -> Tensor
    /// d loss / d logits, times the upstream scalar gradient `dLoss` (one element).
    func bceWithLogitsBackward(_ dLoss: Tensor, logits: Tensor, target: Tensor, geometry g: BCEGeometry) throws -> Tensor
    /// Batch mean of the per-image soft Dice (2Σpy + 1)/(Σp + Σy + 1) of probabilities p (N, 1, H, W).
    /// Note: returns the Dice score, not 1 − Dice.
    func softDice(_ probs: Tensor, target: Tensor, geometry g: DiceGeometry) throws -> Tensor
    func softDiceBackward(_ dLoss: Tensor, probs: Tensor, target: Tensor, geometry g: DiceGeometry) throws -> Tensor
    /// Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij² of a square cross-correlation matrix c (D, D).
    func barlowTwinsFromCorrelation(_ c: Tensor, lambda: Float, geometry g: BarlowGeometry) throws -> Tensor
    func barlowTwinsFromCorrelationBackward(_ dLoss: Tensor, correlation c: Tensor, lambda: Float, geometry g: BarlowGeometry) throws -> Tensor
    /// The lesion-aware contrastive loss of docs/MODEL.md from the raw embedding e (N, D, H, W)
    /// (L2-normalised per pixel inside), the logits (N, 1, H, W) and binary target (N, 1, H, W).
    func lesionContrastive(_ embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams, geometry g: LACGeometry) throws -> Tensor
    /// d loss / d embedding (prototypes and weights are constants).
    func lesionContrastiveBackward(_ dLoss: Tensor, embedding: Tensor, logits: Tensor, target: Tensor,
                                   params: LACParams, geometry g: LACGeometry) throws -> Tensor
    /// The supervised loss of MODEL.md fused into one op: from the logits x (N, 1, H, W), binary target,
    /// and (when `embedding` is given) the raw embedding (N, D, H, W):
    /// `weights.bce`·BCEWithLogits(x) + `weights.dice`·softDice(σ(x)) + `weights.lac`·L_LAC, with the
    /// state the backward needs (so it recomputes nothing of the forward).
    func segmentationLoss(logits: Tensor, embedding: Tensor?, target: Tensor, weights: SegmentationLossWeights,
                          lac: LACParams, geometry g: SegLossGeometry) throws -> (loss: Tensor, saved: SegmentationLossSaved)
    /// d loss / d logits and d loss / d embedding (nil without one; LAC prototypes held constant).
    func segmentationLossBackward(_ dLoss: Tensor, logits: Tensor, embedding: Tensor?, target: Tensor,
                                  weights: SegmentationLossWeights, lac: LACParams, saved: SegmentationLossSaved,
                                  geometry g: SegLossGeometry) throws -> (logits: Tensor, embedding: Tensor?)
}

/// Term weights of the fused supervised loss. MODEL.md's L = 0.5·BCE + 0.5·(1 − Dice) + β·LAC is
/// (0.5, −0.5, β) plus the constant 0.5, which the differentiable loss leaves out.
public struct SegmentationLossWeights: Equatable, Sendable {
    public var bce: Float, dice: Float, lac: Float
    public init(bce: Float, dice: Float, lac: Float) { self.bce = bce; self.dice = dice; self.lac = lac }
}

/// What a backend's `segmentationLoss` keeps for its backward (backend-specific tensors: per-image
/// sums, LAC norms, prototypes and per-pixel coefficients on OpenCL; nothing on the CPU reference).
public struct SegmentationLossSaved {
    public var tensors: [Tensor]
    public init(tensors: [Tensor]) { self.tensors = tensors }
}

/// Hyper-parameters of one Adam/AdamW step.
public struct AdamParams: Equatable, Sendable {
    public var lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// true: AdamW (decay applied to the weights directly); false: Adam with L2 added to the gradient.
    public var decoupled: Bool
    /// 1-based step number for bias correction.
    public var step: Int
    public init(lr: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = true, step: Int) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay; self.decoupled = decoupled; self.step = step
    }
}

/// Optimiser updates, in place on the device. (Kernels/optim.cl)
///
/// Callers use the entry points of `Backend/Contract+Optim.swift` (the same names without
/// `constants:`/`geometry:`), which check the shapes and hyper-parameters and pass the checked
/// values to the methods below.
public protocol OptimOps {
    /// In place on param, m and v (all the same shape as grad); `k` holds the step's constants.
    func adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams, constants k: AdamConstants) throws
    /// In place: buf ← momentum·buf + (grad + wd·param); param −= lr·buf (PyTorch SGD, dampening 0).
    func sgdStep(param: Tensor, grad: Tensor, momentumBuffer: Tensor, lr: Float, momentum: Float,
                 weightDecay: Float, geometry g: SGDGeometry) throws
    /// Σ x² over all elements of all tensors → one-element tensor (for global-norm clipping).
    func sumOfSquares(_ tensors: [Tensor]) throws -> Tensor
    /// In place: every tensor is multiplied by min(1, g.maxNorm / (√sumOfSquares + 1e-6)), where
    /// `sumOfSquares` is the one-element result of `sumOfSquares` (so clipping needs no host round-trip).
    func clipByGlobalNorm(_ tensors: [Tensor], sumOfSquares: Tensor, geometry g: ClipGeometry) throws

    // Fused optimiser over flat buffers (as PyTorch's fused AdamW): every parameter of a model is a
    // view into one flat buffer per role (values, gradients, m, v), so one launch updates them all.

    /// View offsets into a flat tensor must be multiples of this many elements (the device's
    /// base-address alignment; at least 4).
    var viewAlignment: Int { get }
    /// A tensor of `g.shape` sharing the storage of the rank-1 tensor `flat`: its elements are
    /// `flat[g.offset ..< g.offset + g.shape.count]`, and writes through either are seen by both.
    func view(_ flat: Tensor, geometry g: ViewGeometry) throws -> Tensor
    /// In place: `target` takes the values of `source` (equal element counts). One copy command.
    func assign(_ target: Tensor, from source: Tensor, geometry g: AssignGeometry) throws
    /// Σ x² of `flat` over `g.ranges`, as partial sums whose total is the result (the partition is the
    /// backend's; fixed, so reruns agree bit for bit). One launch per range.
    func flatSumOfSquares(_ flat: Tensor, geometry g: FlatGeometry) throws -> SquaredNormPartials
    /// One Adam/AdamW step, in place on `param`, `m` and `v` (rank-1, same count as `grad`) over the
    /// elements in `g.ranges`. With `clip`, the gradient is first scaled by
    /// min(1, maxNorm / (√Σpartials + 1e-6)), read on the device. One launch per range.
    func flatAdamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams,
                      clip: (norm: SquaredNormPartials, maxNorm: Float)?, constants k: AdamConstants, geometry g: FlatGeometry) throws
}

/// A sum of squares left as partial sums on the device (their total is the sum).
public struct SquaredNormPartials {
    public let partials: Tensor
    public init(partials: Tensor) { self.partials = partials }
}
