import XCTest
@testable import RefineSeg

/// The inputs and PyTorch outputs (CPU, float32) of scripts/golden_losses.py, read from its
/// committed fixture Tests/RefineSegTests/Fixtures/golden_losses.json (regenerate with
/// `python3 scripts/golden_losses.py --write Tests/RefineSegTests/Fixtures/golden_losses.json`).
struct GoldenLossesFixture: Decodable {
    /// A tensor flattened row-major (NCHW / (N, D)) with its shape.
    struct Values: Decodable {
        let values: [Float]
        let shape: [Int]
    }
    struct Inputs: Decodable {
        let logits, target, probs, z1, z2, embedding, lac_logits, lac_target, param: Values
        let grads: [Values]
    }
    let inputs: Inputs
    let outputs: [String: [Float]]

    /// Loaded once. Unreadable, it is nil, every golden comparison fails on its empty values and
    /// `LossTests.testGoldenFixtureLoads` names the error.
    static let shared: GoldenLossesFixture? = try? fixture("golden_losses.json")
}

/// Golden outputs by name (`outputs` of the fixture).
enum Golden {
    private static func output(_ key: String) -> [Float] { GoldenLossesFixture.shared?.outputs[key] ?? [] }
    private static func scalar(_ key: String) -> Float { output(key).first ?? .nan }
    static var bce: Float { scalar("bce") }
    static var bceGrad: [Float] { output("bceGrad") }
    static var softDice: Float { scalar("softDice") }
    static var softDiceLoss: Float { scalar("softDiceLoss") }
    static var softDiceGrad: [Float] { output("softDiceGrad") }
    static var softDiceAllBackground: Float { scalar("softDiceAllBackground") }
    static var barlowTwins: Float { scalar("barlowTwins") }
    static var lesionContrastive: Float { scalar("lesionContrastive") }
    static var lesionContrastiveGrad: [Float] { output("lesionContrastiveGrad") }
    static var adamWParam: [Float] { output("adamWParam") }
    static var adamWM: [Float] { output("adamWM") }
    static var adamWV: [Float] { output("adamWV") }
    static var adamL2Param: [Float] { output("adamL2Param") }
    static var adamL2M: [Float] { output("adamL2M") }
    static var adamL2V: [Float] { output("adamL2V") }
    static var sgdParam: [Float] { output("sgdParam") }
    static var sgdBuffer: [Float] { output("sgdBuffer") }
}

/// The fixture's inputs, in the script's order (row-major NCHW / (N, D)).
enum GoldenInputs {
    private static var inputs: GoldenLossesFixture.Inputs? { GoldenLossesFixture.shared?.inputs }
    static var logits: [Float] { inputs?.logits.values ?? [] }
    static var target: [Float] { inputs?.target.values ?? [] }
    static var probs: [Float] { inputs?.probs.values ?? [] }
    static var mapShape: Shape { Shape(inputs?.logits.shape ?? []) }
    static var z1: [Float] { inputs?.z1.values ?? [] }
    static var z2: [Float] { inputs?.z2.values ?? [] }
    static var embedding: [Float] { inputs?.embedding.values ?? [] }
    static var embeddingShape: Shape { Shape(inputs?.embedding.shape ?? []) }
    static var lacLogits: [Float] { inputs?.lac_logits.values ?? [] }
    static var lacTarget: [Float] { inputs?.lac_target.values ?? [] }
    /// Optimiser tests: the parameter and one gradient per step.
    static var param: [Float] { inputs?.param.values ?? [] }
    static var grads: [[Float]] { inputs?.grads.map(\.values) ?? [] }
}

/// The CPU reference, and the OpenCL backend when a device opens (the CPU part always runs).
func backendsUnderTest() -> [Backend] {
    var list: [Backend] = [CPUBackend()]
    if let cl = try? CLBackend(device: nil) { list.append(cl) }
    return list
}

/// Asserts |got − want| ≤ tol·max(1, |want|) elementwise.
func assertClose(_ got: [Float], _ want: [Float], tol: Float = 2e-5, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, "\(what): count", file: file, line: line)
    for (i, (a, b)) in zip(got, want).enumerated() where !(abs(a - b) <= tol * max(1, abs(b))) {
        XCTFail("\(what)[\(i)]: got \(a), want \(b)", file: file, line: line)
        return
    }
}

final class LossTests: XCTestCase {
    func testGoldenFixtureLoads() throws {
        let loaded: GoldenLossesFixture = try fixture("golden_losses.json")
        XCTAssertEqual(loaded.inputs.logits.values.count, loaded.inputs.logits.shape.reduce(1, *))
        XCTAssertEqual(loaded.inputs.grads.count, 2)
    }

    func testTheGoldenFixtureIsWhatTheScriptComputes() throws {
        try assertFixtureIsCurrent("golden_losses.json", script: "scripts/golden_losses.py", modules: "torch")
    }

    func testBCEWithLogitsMatchesTorch() throws {
        for b in backendsUnderTest() {
            let x = try b.tensor(GoldenInputs.logits, shape: GoldenInputs.mapShape)
            let y = try b.tensor(GoldenInputs.target, shape: GoldenInputs.mapShape)
            assertClose([try b.bceWithLogits(x, target: y).scalar()], [Golden.bce], "bce on \(b.name)")
            let dx = try b.bceWithLogitsBackward(try b.full([1], value: 1), logits: x, target: y)
            assertClose(try dx.toArray(), Golden.bceGrad, "bce gradient on \(b.name)")
        }
    }

    func testSoftDiceMatchesTorch() throws {
        for b in backendsUnderTest() {
            let p = try b.tensor(GoldenInputs.probs, shape: GoldenInputs.mapShape)
            let y = try b.tensor(GoldenInputs.target, shape: GoldenInputs.mapShape)
            let dice = try b.softDice(p, target: y).scalar()
            assertClose([dice], [Golden.softDice], "soft Dice on \(b.name)")
            assertClose([1 - dice], [Golden.softDiceLoss], "soft Dice loss on \(b.name)")
            let dp = try b.softDiceBackward(try b.full([1], value: 1), probs: p, target: y)
            assertClose(try dp.toArray(), Golden.softDiceGrad, "soft Dice gradient on \(b.name)")
        }
    }

    func testSoftDiceOfAnAllBackgroundBatchIsFiniteAndCorrect() throws {
        for b in backendsUnderTest() {
            let p = try b.tensor(GoldenInputs.probs, shape: GoldenInputs.mapShape)
            let y = try b.zeros(GoldenInputs.mapShape)
            let dice = try b.softDice(p, target: y).scalar()
            XCTAssertTrue(dice.isFinite)
            assertClose([dice], [Golden.softDiceAllBackground], "all-background Dice on \(b.name)")
            // Every probability only enlarges the denominator: d dice / dp = −1/(Σp + 1)² / N < 0.
            let dp = try b.softDiceBackward(try b.full([1], value: 1), probs: p, target: y).toArray()
            XCTAssertTrue(dp.allSatisfy { $0.isFinite && $0 < 0 }, "\(dp) on \(b.name)")
        }
    }

    func testBarlowTwinsComposedFromOpsMatchesTorch() throws {
        for b in backendsUnderTest() {
            let n = 4, d = 3
            try checkBarlowTwinsBatch(n)
            func standardised(_ values: [Float]) throws -> Tensor {
                // BatchNorm1d(affine=False) in training mode: weight 1, bias 0, batch statistics.
                try b.batchNormTrain(try b.tensor(values, shape: [n, d]), weight: try b.full([d], value: 1),
                                     bias: try b.zeros([d]), runningMean: try b.zeros([d]), runningVar: try b.full([d], value: 1),
                                     momentum: 0.1, eps: 1e-5).y
            }
            let c = try b.scale(try b.matmul(try standardised(GoldenInputs.z1), try standardised(GoldenInputs.z2),
                                             transposeA: true, transposeB: false), by: 1 / Float(n))
            let loss = try b.barlowTwinsFromCorrelation(c, lambda: 0.0051).scalar()
            assertClose([loss], [Golden.barlowTwins], tol: 1e-4, "Barlow Twins on \(b.name)")
        }
    }

    func testBarlowTwinsRefusesABatchOfOne() {
        XCTAssertThrowsError(try checkBarlowTwinsBatch(1)) { error in
            XCTAssertEqual("\(error)", "Barlow Twins needs a batch of at least 2 images (got 1): the batch standardisation divides by the batch's standard deviation")
        }
        XCTAssertNoThrow(try checkBarlowTwinsBatch(2))
    }

    func testBarlowTwinsGradientAtTheIdentityIsZero() throws {
        for b in backendsUnderTest() {
            var eye = [Float](repeating: 0, count: 25)
            for i in 0..<5 { eye[i * 5 + i] = 1 }
            let c = try b.tensor(eye, shape: [5, 5])
            XCTAssertEqual(try b.barlowTwinsFromCorrelation(c, lambda: 0.0051).scalar(), 0)
            let dc = try b.barlowTwinsFromCorrelationBackward(try b.full([1], value: 1), correlation: c, lambda: 0.0051)
            XCTAssertEqual(try dc.toArray(), [Float](repeating: 0, count: 25))
        }
    }

    func testLesionContrastiveMatchesTorch() throws {
        for b in backendsUnderTest() {
            let e = try b.tensor(GoldenInputs.embedding, shape: GoldenInputs.embeddingShape)
            let logits = try b.tensor(GoldenInputs.lacLogits, shape: [3, 1, 2, 2])
            let target = try b.tensor(GoldenInputs.lacTarget, shape: [3, 1, 2, 2])
            let loss = try b.lesionContrastive(e, logits: logits, target: target, params: LACParams()).scalar()
            assertClose([loss], [Golden.lesionContrastive], "LAC on \(b.name)")
            let de = try b.lesionContrastiveBackward(try b.full([1], value: 1), embedding: e, logits: logits, target: target,
                                                     params: LACParams())
            assertClose(try de.toArray(), Golden.lesionContrastiveGrad, "LAC gradient on \(b.name)")
        }
    }

    func testLesionContrastiveOfAnAllBackgroundBatchIsZeroWithZeroGradient() throws {
        for b in backendsUnderTest() {
            let e = try b.tensor(GoldenInputs.embedding, shape: GoldenInputs.embeddingShape)
            let logits = try b.tensor(GoldenInputs.lacLogits, shape: [3, 1, 2, 2])
            let target = try b.zeros([3, 1, 2, 2])
            XCTAssertEqual(try b.lesionContrastive(e, logits: logits, target: target, params: LACParams()).scalar(), 0)
            let de = try b.lesionContrastiveBackward(try b.full([1], value: 1), embedding: e, logits: logits, target: target,
                                                     params: LACParams())
            XCTAssertEqual(try de.toArray(), [Float](repeating: 0, count: GoldenInputs.embedding.count), "on \(b.name)")
        }
    }

    /// The op registry cannot finite-difference this loss (its prototypes are constants of the
    /// gradient but move with the input); here the prototypes stay fixed at the unperturbed input.
    func testLesionContrastiveGradientMatchesFiniteDifferencesWithFixedPrototypes() throws {
        let shape: Shape = [2, 4, 3, 5]
        var rng = SeededRandom(seed: 42)
        let e = (0..<shape.count).map { _ in Double(rng.uniform(-1, 1)) }
        let logits = (0..<30).map { _ in Double(rng.uniform(-2, 2)) }
        let target = (0..<30).map { i in i % 4 == 0 || i == 17 ? 1.0 : 0.0 }
        let cpu = CPUBackend(precision: .float64)
        let g = try LACGeometry(try cpu.tensor(doubles: e, shape: shape), try cpu.tensor(doubles: logits, shape: [2, 1, 3, 5]),
                                try cpu.tensor(doubles: target, shape: [2, 1, 3, 5]), op: "test")
        let params = LACParams(tau: 0.1, gamma: 4)
        let base = LACReference(g, params: params, embedding: e, logits: logits, target: target)
        let prototypes = base.prototypes()
        XCTAssertTrue(prototypes.allSatisfy { $0 != nil })
        let analytic = base.gradient(prototypes: prototypes)
        let step = 1e-6
        for i in stride(from: 0, to: e.count, by: 7) {
            var plus = e, minus = e
            plus[i] += step; minus[i] -= step
            let lp = LACReference(g, params: params, embedding: plus, logits: logits, target: target).loss(prototypes: prototypes)
            let lm = LACReference(g, params: params, embedding: minus, logits: logits, target: target).loss(prototypes: prototypes)
            let numeric = (lp - lm) / (2 * step)
            XCTAssertEqual(analytic[i], numeric, accuracy: 1e-7 + 1e-5 * abs(numeric), "element \(i)")
        }
    }

    func testBackwardsScaleByTheUpstreamGradient() throws {
        for b in backendsUnderTest() {
            let x = try b.tensor(GoldenInputs.logits, shape: GoldenInputs.mapShape)
            let y = try b.tensor(GoldenInputs.target, shape: GoldenInputs.mapShape)
            let p = try b.tensor(GoldenInputs.probs, shape: GoldenInputs.mapShape)
            let e = try b.tensor(GoldenInputs.embedding, shape: GoldenInputs.embeddingShape)
            let lacLogits = try b.tensor(GoldenInputs.lacLogits, shape: [3, 1, 2, 2])
            let lacTarget = try b.tensor(GoldenInputs.lacTarget, shape: [3, 1, 2, 2])
            let c = try b.tensor((0..<16).map { Float($0) / 10 - 0.7 }, shape: [4, 4])
            let grads: [(String, (Tensor) throws -> Tensor)] = [
                ("bce", { try b.bceWithLogitsBackward($0, logits: x, target: y) }),
                ("dice", { try b.softDiceBackward($0, probs: p, target: y) }),
                ("barlow", { try b.barlowTwinsFromCorrelationBackward($0, correlation: c, lambda: 0.0051) }),
                ("lac", { try b.lesionContrastiveBackward($0, embedding: e, logits: lacLogits, target: lacTarget, params: LACParams()) }),
            ]
            for (name, grad) in grads {
                let one = try grad(try b.full([1], value: 1)).toArray()
                let scaled = try grad(try b.full([1], value: -2.5)).toArray()
                assertClose(scaled, one.map { -2.5 * $0 }, tol: 1e-6, "\(name) on \(b.name)")
            }
            XCTAssertThrowsError(try b.bceWithLogitsBackward(try b.zeros([2]), logits: x, target: y))
        }
    }

    /// The fused op against the composition of the single-loss ops it replaces in training.
    func testFusedSegmentationLossMatchesTheComposedLosses() throws {
        for b in backendsUnderTest() {
            var rng = SeededRandom(seed: 21)
            let (n, d, h, w) = (3, 6, 9, 11)
            let x = try b.tensor((0..<(n * h * w)).map { _ in rng.uniform(-4, 4) }, shape: [n, 1, h, w])
            let y = try b.tensor((0..<(n * h * w)).map { i in i / (h * w) == 2 ? 0 : (rng.nextUnit() < 0.3 ? 1 : 0) }, shape: [n, 1, h, w])
            let e = try b.tensor((0..<(n * d * h * w)).map { _ in rng.uniform(-1, 1) }, shape: [n, d, h, w])
            let beta: Float = 0.3
            let weights = SegmentationLossWeights(bce: 0.5, dice: -0.5, lac: beta)
            for withLAC in [false, true] {
                let g = Graph(backend: b, training: true)
                let xv = Var(x, needsGrad: true), ev = Var(e, needsGrad: true)
                let fused = try g.segmentationLoss(logits: xv, embedding: withLAC ? ev : nil, target: y,
                                                   weights: withLAC ? weights : SegmentationLossWeights(bce: 0.5, dice: -0.5, lac: 0))
                let bce = try b.bceWithLogits(x, target: y).scalar(), dice = try b.softDice(try b.sigmoid(x), target: y).scalar()
                let lac = withLAC ? try b.lesionContrastive(e, logits: x, target: y, params: LACParams()).scalar() : 0
                XCTAssertEqual(try fused.value.scalar(), 0.5 * bce - 0.5 * dice + beta * lac, accuracy: 2e-6, "loss on \(b.name)")
                let up = try b.full([1], value: 1.5)
                let saved = try b.segmentationLoss(logits: x, embedding: withLAC ? e : nil, target: y, weights: weights, lac: LACParams()).saved
                let grads = try b.segmentationLossBackward(up, logits: x, embedding: withLAC ? e : nil, target: y, weights: weights,
                                                           lac: LACParams(), saved: saved)
                let p = try b.sigmoid(x)
                let dBCE = try b.bceWithLogitsBackward(try b.full([1], value: 0.75), logits: x, target: y)
                let dDice = try b.sigmoidBackward(try b.softDiceBackward(try b.full([1], value: -0.75), probs: p, target: y), output: p)
                assertClose(try grads.logits.toArray(), try b.add(dBCE, dDice).toArray(), tol: 1e-6, "d logits on \(b.name)")
                if withLAC {
                    let dLAC = try b.lesionContrastiveBackward(try b.full([1], value: 1.5 * beta), embedding: e, logits: x, target: y,
                                                               params: LACParams())
                    assertClose(try grads.embedding!.toArray(), try dLAC.toArray(), tol: 1e-6, "d embedding on \(b.name)")
                } else {
                    XCTAssertNil(grads.embedding)
                }
            }
        }
    }

    /// On CPU devices the fused loss's final reduction is owed to the queue: its backward writes the
    /// loss, and anything that reaches the queue first (a kernel reading the loss, a read) has it
    /// queued before. Every way gives the same bits as a forward read at once.
    func testTheFusedLossValueIsTheSameWhoeverWritesIt() throws {
        for b in backendsUnderTest() {
            var rng = SeededRandom(seed: 5)
            let (n, d, h, w) = (2, 4, 37, 33)
            let x = try b.tensor((0..<(n * h * w)).map { _ in rng.uniform(-4, 4) }, shape: [n, 1, h, w])
            let y = try b.tensor((0..<(n * h * w)).map { _ in rng.nextUnit() < 0.3 ? 1 : 0 }, shape: [n, 1, h, w])
            let e = try b.tensor((0..<(n * d * h * w)).map { _ in rng.uniform(-1, 1) }, shape: [n, d, h, w])
            let weights = SegmentationLossWeights(bce: 0.5, dice: -0.5, lac: 0.1)
            func forward() throws -> (loss: Tensor, saved: SegmentationLossSaved) {
                try b.segmentationLoss(logits: x, embedding: e, target: y, weights: weights, lac: LACParams())
            }
            let direct = try forward().loss.scalar()
            // A kernel that reads the loss before the backward.
            let first = try forward()
            let doubled = try b.scale(first.loss, by: 2)
            let up = try b.full([1], value: 1)
            let grads = try b.segmentationLossBackward(up, logits: x, embedding: e, target: y, weights: weights, lac: LACParams(),
                                                       saved: first.saved)
            XCTAssertEqual(try doubled.scalar(), 2 * direct, "loss read by a kernel on \(b.name)")
            XCTAssertEqual(try first.loss.scalar(), direct, "loss after the backward on \(b.name)")
            // The backward first (as in training): it writes the loss; the gradients are the same.
            let second = try forward()
            let again = try b.segmentationLossBackward(up, logits: x, embedding: e, target: y, weights: weights, lac: LACParams(),
                                                       saved: second.saved)
            XCTAssertEqual(try second.loss.scalar(), direct, "loss written by the backward on \(b.name)")
            XCTAssertEqual(try again.logits.toArray(), try grads.logits.toArray())
            XCTAssertEqual(try again.embedding!.toArray(), try grads.embedding!.toArray())
        }
    }

    func testLossesAreBitIdenticalOnRerun() throws {
        let b = try openCLBackendOrSkip()
        var rng = SeededRandom(seed: 9)
        let shape: Shape = [3, 1, 70, 90]
        let x = try b.tensor((0..<shape.count).map { _ in rng.uniform(-5, 5) }, shape: shape)
        let y = try b.tensor((0..<shape.count).map { _ in rng.nextUnit() < 0.3 ? 1 : 0 }, shape: shape)
        let e = try b.tensor((0..<(3 * 8 * 70 * 90)).map { _ in rng.uniform(-1, 1) }, shape: [3, 8, 70, 90])
        let runs = try (0..<2).map { _ in
            [try b.bceWithLogits(x, target: y).scalar(), try b.softDice(try b.sigmoid(x), target: y).scalar(),
             try b.lesionContrastive(e, logits: x, target: y, params: LACParams()).scalar(),
             try b.segmentationLoss(logits: x, embedding: e, target: y, weights: SegmentationLossWeights(bce: 0.5, dice: -0.5, lac: 0.1),
                                    lac: LACParams()).loss.scalar()]
        }
        XCTAssertEqual(runs[0], runs[1])
    }
}
