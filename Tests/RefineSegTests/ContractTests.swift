import XCTest
@testable import RefineSeg

/// Shapes are checked once, in front of every backend (CONTRIBUTING.md, "The op contract lives in
/// `Backend/`"): each test drives the public entry points of one op family against a backend that
/// only records that it was reached. Bad shapes must be refused with an error naming the op before
/// that backend sees them; good shapes must reach it (so the tests can fail).
final class ContractTests: XCTestCase {
    /// What a recording backend throws when one of its methods is called.
    struct Reached: Error, Equatable { let op: String }

    let cpu = CPUBackend()

    func t(_ shape: Shape) throws -> Tensor { try cpu.zeros(shape) }

    /// `body` reaches the backend as `op`.
    func assertReaches(_ op: String, _ body: () throws -> Any, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            XCTAssertEqual(error as? Reached, Reached(op: op), "\(error)", line: line)
        }
    }

    /// `body` is refused in front of the backend, with a RefineSegError naming `op`.
    func assertRefused(_ op: String, _ body: () throws -> Any, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            XCTAssertNil(error as? Reached, "\(op) reached the backend with bad shapes", line: line)
            XCTAssertTrue(error is RefineSegError && "\(error)".contains("[\(op)"), "\(error)", line: line)
        }
    }

    func testUploadIsCheckedInFront() throws {
        let b = RecordingCore()
        assertReaches("tensor") { try b.tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]) }
        assertRefused("tensor") { try b.tensor([1, 2, 3], shape: [2, 3]) }
    }

    func testOptimShapesAreCheckedInFront() throws {
        let b = RecordingOptim()
        let (p, q, one) = (try t([5]), try t([4]), try t([1]))
        let step = AdamParams(lr: 1e-3, step: 1)
        assertReaches("adam_step") { try b.adamStep(param: p, grad: p, m: p, v: p, params: step) }
        assertRefused("adam_step") { try b.adamStep(param: p, grad: q, m: p, v: p, params: step) }
        assertRefused("adam_step") { try b.adamStep(param: p, grad: p, m: p, v: p, params: AdamParams(lr: 1e-3, step: 0)) }
        assertReaches("sgd_step") { try b.sgdStep(param: p, grad: p, momentumBuffer: p, lr: 1, momentum: 0, weightDecay: 0) }
        assertRefused("sgd_step") { try b.sgdStep(param: p, grad: p, momentumBuffer: q, lr: 1, momentum: 0, weightDecay: 0) }
        assertReaches("clip_by_global_norm") { try b.clipByGlobalNorm([p], sumOfSquares: one, maxNorm: 1) }
        assertRefused("clip_by_global_norm") { try b.clipByGlobalNorm([p], sumOfSquares: q, maxNorm: 1) }
        assertRefused("clip_by_global_norm") { try b.clipByGlobalNorm([p], sumOfSquares: one, maxNorm: 0) }
        let flat = try t([16])
        assertReaches("view") { try b.view(flat, offset: 4, shape: [2, 3]) }
        assertRefused("view") { try b.view(flat, offset: 2, shape: [2]) }
        assertRefused("view") { try b.view(flat, offset: 12, shape: [5]) }
        assertRefused("view") { try b.view(try t([4, 4]), offset: 0, shape: [2]) }
        assertReaches("assign") { try b.assign(try t([2, 2]), from: q) }
        assertRefused("assign") { try b.assign(p, from: q) }
        assertReaches("flat_sum_of_squares") { try b.flatSumOfSquares(flat, ranges: [0..<16]) }
        assertRefused("flat_sum_of_squares") { try b.flatSumOfSquares(flat, ranges: [8..<17]) }
        let clip = (norm: SquaredNormPartials(partials: one), maxNorm: Float(1))
        assertReaches("flat_adam_step") {
            try b.flatAdamStep(param: flat, grad: flat, m: flat, v: flat, ranges: [0..<8], params: step, clip: clip)
        }
        assertRefused("flat_adam_step") {
            try b.flatAdamStep(param: flat, grad: flat, m: flat, v: flat, ranges: [0..<17], params: step, clip: nil)
        }
        assertRefused("flat_adam_step") {
            try b.flatAdamStep(param: flat, grad: p, m: flat, v: flat, ranges: [0..<8], params: step, clip: nil)
        }
        assertRefused("clip_by_global_norm") {
            try b.flatAdamStep(param: flat, grad: flat, m: flat, v: flat, ranges: [0..<8], params: step,
                               clip: (norm: clip.norm, maxNorm: .infinity))
        }
    }

    func testLossShapesAreCheckedInFront() throws {
        let b = RecordingLoss()
        let (x, y, one, two) = (try t([2, 1, 3, 3]), try t([2, 1, 3, 4]), try t([1]), try t([2]))
        let (c, e) = (try t([4, 4]), try t([2, 5, 3, 3]))
        let w = SegmentationLossWeights(bce: 0.5, dice: -0.5, lac: 0.1)
        let saved = SegmentationLossSaved(tensors: [])
        assertReaches("bce_with_logits") { try b.bceWithLogits(x, target: x) }
        assertRefused("bce_with_logits") { try b.bceWithLogits(x, target: y) }
        assertReaches("bce_with_logits_backward") { try b.bceWithLogitsBackward(one, logits: x, target: x) }
        assertRefused("bce_with_logits_backward") { try b.bceWithLogitsBackward(one, logits: x, target: y) }
        assertRefused("bce_with_logits_backward") { try b.bceWithLogitsBackward(two, logits: x, target: x) }
        assertReaches("barlow_twins") { try b.barlowTwinsFromCorrelation(c, lambda: 0.005) }
        assertRefused("barlow_twins") { try b.barlowTwinsFromCorrelation(try t([4, 3]), lambda: 0.005) }
        assertReaches("barlow_twins_backward") { try b.barlowTwinsFromCorrelationBackward(one, correlation: c, lambda: 0.005) }
        assertRefused("barlow_twins_backward") { try b.barlowTwinsFromCorrelationBackward(two, correlation: c, lambda: 0.005) }
        assertReaches("soft_dice") { try b.softDice(x, target: x) }
        assertRefused("soft_dice") { try b.softDice(x, target: y) }
        assertReaches("lesion_contrastive") { try b.lesionContrastive(e, logits: x, target: x, params: LACParams()) }
        assertRefused("lesion_contrastive") { try b.lesionContrastive(e, logits: y, target: y, params: LACParams()) }
        assertReaches("segmentation_loss") { try b.segmentationLoss(logits: x, embedding: nil, target: x, weights: w, lac: LACParams()) }
        assertRefused("segmentation_loss") { try b.segmentationLoss(logits: x, embedding: e, target: y, weights: w, lac: LACParams()) }
        // Every loss backward refuses an upstream gradient of more than one element.
        assertReaches("soft_dice_backward") { try b.softDiceBackward(one, probs: x, target: x) }
        assertRefused("soft_dice_backward") { try b.softDiceBackward(two, probs: x, target: x) }
        assertReaches("lesion_contrastive_backward") {
            try b.lesionContrastiveBackward(one, embedding: e, logits: x, target: x, params: LACParams())
        }
        assertRefused("lesion_contrastive_backward") {
            try b.lesionContrastiveBackward(two, embedding: e, logits: x, target: x, params: LACParams())
        }
        assertReaches("segmentation_loss_backward") {
            try b.segmentationLossBackward(one, logits: x, embedding: e, target: x, weights: w, lac: LACParams(), saved: saved)
        }
        assertRefused("segmentation_loss_backward") {
            try b.segmentationLossBackward(two, logits: x, embedding: e, target: x, weights: w, lac: LACParams(), saved: saved)
        }
    }

    func testBinaryElementwiseShapesAreCheckedInFront() throws {
        let b = RecordingElementwise()
        let (x, z) = (try t([2, 3, 4]), try t([2, 4, 3]))
        let ops: [(String, (Tensor, Tensor) throws -> Any)] = [
            ("add", { try b.add($0, $1) }), ("sub", { try b.sub($0, $1) }), ("mul", { try b.mul($0, $1) }),
            ("accumulate", { try b.accumulate($0, $1, alpha: 1) }),
            ("relu_backward", { try b.reluBackward($0, output: $1) }), ("sigmoid_backward", { try b.sigmoidBackward($0, output: $1) }),
        ]
        for (op, f) in ops {
            assertReaches(op) { try f(x, x) }
            assertRefused(op) { try f(x, z) }
        }
    }

    func testReduceShapesAreCheckedInFront() throws {
        let b = RecordingReduce()
        let x = try t([2, 3, 4, 5])
        assertReaches("reduce") { try b.reduce(x, axes: 2..<4, kind: .sum) }
        assertRefused("reduce") { try b.reduce(x, axes: 3..<5, kind: .max) }
        assertReaches("reduce_backward") { try b.reduceBackward(try t([2, 3, 1, 1]), input: x, axes: 2..<4, kind: .mean) }
        assertRefused("reduce_backward") { try b.reduceBackward(try t([2, 3]), input: x, axes: 2..<4, kind: .mean) }
        assertReaches("sum_per_channel") { try b.sumPerChannel(x) }
        assertRefused("sum_per_channel") { try b.sumPerChannel(try t([1, 2, 3, 4, 5])) }
    }

    func testAttentionShapesAreCheckedInFront() throws {
        let b = RecordingAttention()
        let x = try t([2, 3, 4, 5])
        let (nc, nc2) = (try t([2, 3]), try t([4, 3]))
        assertReaches("spatial_mean_max") { try b.spatialMeanMax(x) }
        assertRefused("spatial_mean_max") { try b.spatialMeanMax(try t([3, 4, 5])) }
        assertReaches("spatial_mean_max_backward") { try b.spatialMeanMaxBackward(dMean: nc, dMax: nc, input: x) }
        assertRefused("spatial_mean_max_backward") { try b.spatialMeanMaxBackward(dMean: nc, dMax: nc2, input: x) }
        assertReaches("channel_mean_max") { try b.channelMeanMax(x) }
        assertRefused("channel_mean_max") { try b.channelMeanMax(nc) }
        let dy = try t([2, 2, 4, 5])
        let arg = try t([2, 1, 4, 5])
        assertReaches("channel_mean_max_backward") { try b.channelMeanMaxBackward(dy, argmax: arg, inputShape: x.shape, adding: x) }
        assertRefused("channel_mean_max_backward argmax") { try b.channelMeanMaxBackward(dy, argmax: dy, inputShape: x.shape) }
        assertRefused("channel_mean_max_backward") { try b.channelMeanMaxBackward(x, input: x) }
        assertRefused("channel_mean_max_backward prior") { try b.channelMeanMaxBackward(dy, input: x, adding: dy) }
        assertReaches("broadcast_spatial") { try b.broadcastSpatial(try t([2, 3, 1, 1]), height: 4, width: 5) }
        assertRefused("broadcast_spatial") { try b.broadcastSpatial(x, height: 4, width: 5) }
        assertRefused("broadcast_spatial") { try b.broadcastSpatial(nc, height: 0, width: 5) }
        assertReaches("broadcast_spatial_backward") { try b.broadcastSpatialBackward(x) }
        assertRefused("broadcast_spatial_backward") { try b.broadcastSpatialBackward(nc) }
        assertReaches("broadcast_spatial_backward") { try b.broadcastSpatialBackward(x, reluInput: nc) }
        assertRefused("broadcast_spatial_backward") { try b.broadcastSpatialBackward(x, reluInput: x) }
        assertReaches("channel_descriptors") { try b.channelDescriptors(x) }
        assertRefused("channel_descriptors") { try b.channelDescriptors(try t([2, 3, 0, 5])) }
        assertReaches("channel_descriptors_backward") { try b.channelDescriptorsBackward(nc2, argmax: nc, inputShape: x.shape, adding: x) }
        assertRefused("channel_descriptors_backward") { try b.channelDescriptorsBackward(nc, argmax: nc, inputShape: x.shape) }
        assertRefused("channel_descriptors_backward") { try b.channelDescriptorsBackward(nc2, argmax: nc, inputShape: [2, 3, 20]) }
        assertRefused("channel_descriptors_backward prior") {
            try b.channelDescriptorsBackward(nc2, argmax: nc, inputShape: x.shape, adding: dy)
        }
        let (d, w1, b1, w2, b2) = (try t([4, 6]), try t([2, 6]), try t([2]), try t([6, 2]), try t([6]))
        assertReaches("channel_mlp") { try b.channelMLP(d, w1: w1, b1: b1, w2: w2, b2: b2) }
        assertRefused("channel_mlp w2") { try b.channelMLP(d, w1: w1, b1: b1, w2: w1, b2: b2) }
        assertRefused("channel_mlp b2") { try b.channelMLP(d, w1: w1, b1: b1, w2: w2, b2: b1) }
        let gx = try t([2, 6, 3, 3])
        assertReaches("channel_mlp_gate") { try b.channelMLPGate(gx, descriptors: d, w1: w1, b1: b1, w2: w2, b2: b2) }
        assertRefused("channel_mlp_gate descriptors") {
            try b.channelMLPGate(try t([3, 6, 3, 3]), descriptors: d, w1: w1, b1: b1, w2: w2, b2: b2)
        }
        assertRefused("channel_mlp_gate w2") { try b.channelMLPGate(gx, descriptors: d, w1: w1, b1: b1, w2: w1, b2: b2) }
        let hidden = try t([4, 2])
        assertReaches("channel_mlp_backward") { try b.channelMLPBackward(d, d: d, w1: w1, w2: w2, hidden: hidden) }
        assertRefused("channel_mlp_backward hidden") { try b.channelMLPBackward(d, d: d, w1: w1, w2: w2, hidden: d) }
        assertReaches("channel_gate_backward") {   // the default: the gate's backward, then the MLP's
            try b.channelMLPGateBackward(gx, x: gx, logits: d, descriptors: d, w1: w1, w2: w2, hidden: hidden)
        }
        assertRefused("channel_mlp_gate_backward dy") {
            try b.channelMLPGateBackward(try t([2, 6, 3, 4]), x: gx, logits: d, descriptors: d, w1: w1, w2: w2, hidden: hidden)
        }
        assertRefused("channel_mlp_gate_backward logits") {
            try b.channelMLPGateBackward(gx, x: gx, logits: try t([4, 5]), descriptors: d, w1: w1, w2: w2, hidden: hidden)
        }
        assertRefused("channel_mlp_gate_backward hidden") {
            try b.channelMLPGateBackward(gx, x: gx, logits: d, descriptors: d, w1: w1, w2: w2, hidden: d)
        }
        // The gates, checked in front since the previous change.
        assertReaches("channel_gate") { try b.channelGate(x, logits: try t([4, 3])) }
        assertRefused("channel_gate") { try b.channelGate(x, logits: nc) }
        assertReaches("pixel_gate_add_relu") { try b.pixelGateAddReLU(x, gate: try t([2, 1, 4, 5]), residual: x) }
        assertRefused("pixel_gate_add_relu") { try b.pixelGateAddReLU(x, gate: try t([2, 1, 4, 5]), residual: dy) }
    }

    func testConvPoolAndMatmulShapesAreCheckedInFront() throws {
        let b = RecordingConvMatmul()
        let (x, w, p) = (try t([2, 3, 8, 8]), try t([4, 3, 3, 3]), Conv2DParams(padding: 1))
        let (y, four) = (try t([2, 4, 8, 8]), try t([4]))
        assertReaches("conv2d") { try b.conv2d(x, weight: w, bias: four, params: p) }
        assertRefused("conv2d") { try b.conv2d(x, weight: try t([4, 2, 3, 3]), bias: nil, params: p) }
        assertRefused("conv2d bias") { try b.conv2d(x, weight: w, bias: try t([3]), params: p) }
        assertReaches("conv2d_backward_data") { try b.conv2dBackwardData(y, weight: w, inputShape: x.shape, params: p, adding: x) }
        assertRefused("conv2d_backward_data dy") { try b.conv2dBackwardData(x, weight: w, inputShape: x.shape, params: p) }
        assertRefused("conv2d_backward_data prior") { try b.conv2dBackwardData(y, weight: w, inputShape: x.shape, params: p, adding: y) }
        assertReaches("conv2d_backward_weight") { try b.conv2dBackwardWeight(y, input: x, weightShape: w.shape, params: p) }
        assertRefused("conv2d_backward_weight dy") { try b.conv2dBackwardWeight(x, input: x, weightShape: w.shape, params: p) }
        let wt = try t([3, 4, 2, 2])
        assertReaches("conv_transpose2d") { try b.convTranspose2x2(x, weight: wt, bias: four) }
        assertRefused("conv_transpose2d bias") { try b.convTranspose2x2(x, weight: wt, bias: try t([3])) }
        assertReaches("max_pool2d") { try b.maxPool2x2(x) }
        assertRefused("max_pool2d") { try b.maxPool2x2(four) }
        let pooled = try t([2, 3, 4, 4])
        assertReaches("max_pool2d_backward") { try b.maxPool2x2Backward(pooled, input: x) }
        assertRefused("max_pool2d_backward dy") { try b.maxPool2x2Backward(x, input: x) }
        assertReaches("matmul") { try b.matmul(try t([2, 3]), try t([3, 4]), transposeA: false, transposeB: false) }
        assertRefused("matmul") { try b.matmul(try t([2, 3]), try t([3, 4]), transposeA: true, transposeB: false) }
    }

    func testConcatAndSliceShapesAreCheckedInFront() throws {
        let b = RecordingElementwise()
        let (x, z) = (try t([2, 3, 4, 4]), try t([2, 1, 4, 5]))
        assertReaches("concat") { try b.concatChannels([x, x]) }
        assertRefused("concat") { try b.concatChannels([x, z]) }
        assertRefused("concat") { try b.concatChannels([]) }
        assertReaches("slice") { try b.sliceChannels(x, start: 1, count: 2) }
        assertRefused("slice") { try b.sliceChannels(x, start: 2, count: 2) }
        assertRefused("slice") { try b.sliceChannels(try t([3, 4]), start: 0, count: 1) }
        let pooled = try t([2, 5, 1, 1])
        assertReaches("concat_broadcast") { try b.concatBroadcast([x, x], pooled: pooled, relu: true) }
        assertReaches("concat_broadcast") { try b.concatBroadcast([x], pooled: try t([2, 5])) }
        assertRefused("concat_broadcast") { try b.concatBroadcast([x], pooled: try t([3, 5, 1, 1])) }
        assertRefused("broadcast_spatial") { try b.concatBroadcast([x], pooled: try t([2, 5, 2, 1])) }
        assertRefused("concat") { try b.concatBroadcast([x, z], pooled: pooled) }
        let dy = try t([2, 11, 4, 4])
        assertReaches("concat_broadcast_backward") { try b.concatBroadcastBackward(dy, channels: [3, 3], reluInput: pooled) }
        assertRefused("concat_broadcast_backward") { try b.concatBroadcastBackward(dy, channels: [3, 8]) }
        assertRefused("concat_broadcast_backward") { try b.concatBroadcastBackward(dy, channels: []) }
        assertRefused("concat_broadcast_backward") { try b.concatBroadcastBackward(dy, channels: [3, 3], reluInput: x) }
    }
}

/// The optimiser family, recording only that it was reached.
private final class RecordingOptim: OptimOps {
    typealias Reached = ContractTests.Reached
    var viewAlignment: Int { 4 }
    func adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams, constants k: AdamConstants) throws {
        throw Reached(op: "adam_step")
    }
    func sgdStep(param: Tensor, grad: Tensor, momentumBuffer: Tensor, lr: Float, momentum: Float, weightDecay: Float,
                 geometry g: SGDGeometry) throws { throw Reached(op: "sgd_step") }
    func sumOfSquares(_ tensors: [Tensor]) throws -> Tensor { throw Reached(op: "sum_of_squares") }
    func clipByGlobalNorm(_ tensors: [Tensor], sumOfSquares: Tensor, geometry g: ClipGeometry) throws {
        throw Reached(op: "clip_by_global_norm")
    }
    func view(_ flat: Tensor, geometry g: ViewGeometry) throws -> Tensor { throw Reached(op: "view") }
    func assign(_ target: Tensor, from source: Tensor, geometry g: AssignGeometry) throws { throw Reached(op: "assign") }
    func flatSumOfSquares(_ flat: Tensor, geometry g: FlatGeometry) throws -> SquaredNormPartials {
        throw Reached(op: "flat_sum_of_squares")
    }
    func flatAdamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, params: AdamParams,
                      clip: (norm: SquaredNormPartials, maxNorm: Float)?, constants k: AdamConstants, geometry g: FlatGeometry) throws {
        throw Reached(op: "flat_adam_step")
    }
}

/// The loss family, recording only that it was reached.
private final class RecordingLoss: LossOps {
    typealias Reached = ContractTests.Reached
    func bceWithLogits(_ logits: Tensor, target: Tensor, geometry g: BCEGeometry) throws -> Tensor { throw Reached(op: "bce_with_logits") }
    func bceWithLogitsBackward(_ dLoss: Tensor, logits: Tensor, target: Tensor, geometry g: BCEGeometry) throws -> Tensor {
        throw Reached(op: "bce_with_logits_backward")
    }
    func softDice(_ probs: Tensor, target: Tensor, geometry g: DiceGeometry) throws -> Tensor { throw Reached(op: "soft_dice") }
    func softDiceBackward(_ dLoss: Tensor, probs: Tensor, target: Tensor, geometry g: DiceGeometry) throws -> Tensor {
        throw Reached(op: "soft_dice_backward")
    }
    func barlowTwinsFromCorrelation(_ c: Tensor, lambda: Float, geometry g: BarlowGeometry) throws -> Tensor {
        throw Reached(op: "barlow_twins")
    }
    func barlowTwinsFromCorrelationBackward(_ dLoss: Tensor, correlation c: Tensor, lambda: Float, geometry g: BarlowGeometry) throws -> Tensor {
        throw Reached(op: "barlow_twins_backward")
    }
    func lesionContrastive(_ embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams, geometry g: LACGeometry) throws -> Tensor {
        throw Reached(op: "lesion_contrastive")
    }
    func lesionContrastiveBackward(_ dLoss: Tensor, embedding: Tensor, logits: Tensor, target: Tensor, params: LACParams,
                                   geometry g: LACGeometry) throws -> Tensor {
        throw Reached(op: "lesion_contrastive_backward")
    }
    func segmentationLoss(logits: Tensor, embedding: Tensor?, target: Tensor, weights: SegmentationLossWeights, lac: LACParams,
                          geometry g: SegLossGeometry) throws -> (loss: Tensor, saved: SegmentationLossSaved) {
        throw Reached(op: "segmentation_loss")
    }
    func segmentationLossBackward(_ dLoss: Tensor, logits: Tensor, embedding: Tensor?, target: Tensor, weights: SegmentationLossWeights,
                                  lac: LACParams, saved: SegmentationLossSaved, geometry g: SegLossGeometry) throws
        -> (logits: Tensor, embedding: Tensor?) {
        throw Reached(op: "segmentation_loss_backward")
    }
}

/// The elementwise family, recording only that it was reached.
private final class RecordingElementwise: ElementwiseOps {
    typealias Reached = ContractTests.Reached
    func add(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { throw Reached(op: "add") }
    func sub(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { throw Reached(op: "sub") }
    func mul(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { throw Reached(op: "mul") }
    func scale(_ a: Tensor, by factor: Float) throws -> Tensor { throw Reached(op: "scale") }
    func accumulate(_ target: Tensor, _ source: Tensor, alpha: Float, geometry g: BinaryGeometry) throws { throw Reached(op: "accumulate") }
    func relu(_ x: Tensor) throws -> Tensor { throw Reached(op: "relu") }
    func reluBackward(_ dy: Tensor, output y: Tensor, geometry g: BinaryGeometry) throws -> Tensor { throw Reached(op: "relu_backward") }
    func sigmoid(_ x: Tensor) throws -> Tensor { throw Reached(op: "sigmoid") }
    func sigmoidBackward(_ dy: Tensor, output y: Tensor, geometry g: BinaryGeometry) throws -> Tensor { throw Reached(op: "sigmoid_backward") }
    func copy(_ x: Tensor) throws -> Tensor { throw Reached(op: "copy") }
    func fill(_ x: Tensor, value: Float) throws { throw Reached(op: "fill") }
    func concatChannels(_ parts: [Tensor], geometry g: ConcatGeometry) throws -> Tensor { throw Reached(op: "concat") }
    func sliceChannels(_ x: Tensor, geometry g: SliceGeometry) throws -> Tensor { throw Reached(op: "slice") }
    func concatBroadcast(_ parts: [Tensor], pooled: Tensor, relu: Bool, geometry g: ConcatBroadcastGeometry) throws -> Tensor {
        throw Reached(op: "concat_broadcast")
    }
    func concatBroadcastBackward(_ dy: Tensor, reluInput: Tensor?, geometry g: ConcatBroadcastGeometry) throws -> (parts: [Tensor], pooled: Tensor) {
        throw Reached(op: "concat_broadcast_backward")
    }
    func mulChannelGate(_ x: Tensor, _ gate: Tensor, geometry: GateGeometry) throws -> Tensor { throw Reached(op: "mul_channel_gate") }
    func mulChannelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dgate: Tensor) {
        throw Reached(op: "mul_channel_gate_backward")
    }
    func mulPixelGate(_ x: Tensor, _ gate: Tensor, geometry: GateGeometry) throws -> Tensor { throw Reached(op: "mul_pixel_gate") }
    func mulPixelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dgate: Tensor) {
        throw Reached(op: "mul_pixel_gate_backward")
    }
}

/// The reduce family, recording only that it was reached.
private final class RecordingReduce: ReduceOps {
    typealias Reached = ContractTests.Reached
    func reduce(_ x: Tensor, axes: Range<Int>, kind: ReduceKind, geometry g: ReduceGeometry) throws -> Tensor { throw Reached(op: "reduce") }
    func reduceBackward(_ dy: Tensor, input x: Tensor, axes: Range<Int>, kind: ReduceKind, geometry g: ReduceGeometry) throws -> Tensor {
        throw Reached(op: "reduce_backward")
    }
    func sumPerChannel(_ x: Tensor, geometry g: PerChannelGeometry) throws -> Tensor { throw Reached(op: "sum_per_channel") }
}

/// Memory movement, recording only that an upload was reached.
private final class RecordingCore: BackendCore {
    typealias Reached = ContractTests.Reached
    var name: String { "recording" }
    func tensor(_ values: [Float], geometry g: UploadGeometry) throws -> Tensor { throw Reached(op: "tensor") }
    func full(_ shape: Shape, value: Float) throws -> Tensor { throw Reached(op: "full") }
    func read(_ tensor: Tensor) throws -> [Float] { throw Reached(op: "read") }
    func synchronize() throws {}
}

/// The attention family, recording only that it was reached.
private final class RecordingAttention: AttentionOps {
    typealias Reached = ContractTests.Reached
    func spatialMeanMax(_ x: Tensor, geometry g: AttentionGeometry) throws -> (mean: Tensor, max: Tensor) { throw Reached(op: "spatial_mean_max") }
    func spatialMeanMaxBackward(dMean: Tensor, dMax: Tensor, input x: Tensor, geometry g: AttentionGeometry) throws -> Tensor {
        throw Reached(op: "spatial_mean_max_backward")
    }
    func channelMeanMax(_ x: Tensor, geometry g: AttentionGeometry) throws -> (y: Tensor, argmax: Tensor) {
        throw Reached(op: "channel_mean_max")
    }
    func channelMeanMaxBackward(_ dy: Tensor, argmax: Tensor, adding prior: Tensor?, geometry g: AttentionGeometry) throws -> Tensor {
        throw Reached(op: "channel_mean_max_backward")
    }
    func broadcastSpatial(_ x: Tensor, relu: Bool, geometry g: AttentionGeometry) throws -> Tensor { throw Reached(op: "broadcast_spatial") }
    func broadcastSpatialBackward(_ dy: Tensor, reluInput: Tensor?, geometry g: AttentionGeometry) throws -> Tensor {
        throw Reached(op: "broadcast_spatial_backward")
    }
    func channelDescriptors(_ x: Tensor, geometry g: AttentionGeometry) throws -> (descriptors: Tensor, argmax: Tensor) {
        throw Reached(op: "channel_descriptors")
    }
    func channelDescriptorsBackward(_ d: Tensor, argmax: Tensor, adding prior: Tensor?, geometry g: AttentionGeometry) throws -> Tensor {
        throw Reached(op: "channel_descriptors_backward")
    }
    func channelGate(_ x: Tensor, logits: Tensor, geometry: GateGeometry) throws -> Tensor { throw Reached(op: "channel_gate") }
    func channelGateBackward(_ dy: Tensor, x: Tensor, logits: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dlogits: Tensor) {
        throw Reached(op: "channel_gate_backward")
    }
    func pixelGateAddReLU(_ x: Tensor, gate: Tensor, residual: Tensor, geometry: GateGeometry) throws -> Tensor {
        throw Reached(op: "pixel_gate_add_relu")
    }
    func pixelGateAddReLUBackward(_ dy: Tensor, x: Tensor, gate: Tensor, residual: Tensor, geometry: GateGeometry) throws
        -> (dx: Tensor, dgate: Tensor, dresidual: Tensor) {
        throw Reached(op: "pixel_gate_add_relu_backward")
    }
    func channelMLP(_ d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, geometry g: ChannelMLPGeometry) throws
        -> (logits: Tensor, hidden: Tensor) {
        throw Reached(op: "channel_mlp")
    }
    func channelMLPGate(_ x: Tensor, descriptors d: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                        geometry g: ChannelMLPGateGeometry) throws -> (y: Tensor, logits: Tensor, hidden: Tensor) {
        throw Reached(op: "channel_mlp_gate")
    }
    func channelMLPBackward(_ dlogits: Tensor, d: Tensor, w1: Tensor, w2: Tensor, hidden: Tensor, geometry g: ChannelMLPGeometry) throws
        -> ChannelMLPGradients {
        throw Reached(op: "channel_mlp_backward")
    }
}

/// Convolutions, pooling and matmul, recording only that they were reached.
private final class RecordingConvMatmul: ConvOps, MatmulOps {
    typealias Reached = ContractTests.Reached
    func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2DGeometry, activation: NormActivation) throws -> Tensor {
        throw Reached(op: "conv2d")
    }
    func conv2dBackwardData(_ dy: Tensor, weight: Tensor, geometry g: Conv2DGeometry, adding prior: Tensor?) throws -> Tensor {
        throw Reached(op: "conv2d_backward_data")
    }
    func conv2dBackwardWeight(_ dy: Tensor, input x: Tensor, geometry g: Conv2DGeometry) throws -> Tensor {
        throw Reached(op: "conv2d_backward_weight")
    }
    func convTranspose2x2(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvTranspose2x2Geometry) throws -> Tensor {
        throw Reached(op: "conv_transpose2d")
    }
    func convTranspose2x2BackwardData(_ dy: Tensor, weight: Tensor, geometry g: ConvTranspose2x2Geometry) throws -> Tensor {
        throw Reached(op: "conv_transpose2d_backward_data")
    }
    func convTranspose2x2BackwardWeight(_ dy: Tensor, input x: Tensor, geometry g: ConvTranspose2x2Geometry) throws -> Tensor {
        throw Reached(op: "conv_transpose2d_backward_weight")
    }
    func maxPool2x2(_ x: Tensor, geometry g: MaxPool2x2Geometry) throws -> Tensor { throw Reached(op: "max_pool2d") }
    func maxPool2x2Backward(_ dy: Tensor, input x: Tensor, geometry g: MaxPool2x2Geometry, adding prior: Tensor?) throws -> Tensor {
        throw Reached(op: "max_pool2d_backward")
    }
    func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, geometry g: MatmulGeometry) throws -> Tensor {
        throw Reached(op: "matmul")
    }
}
