import XCTest
@testable import RefineSeg

/// Golden values printed by scripts/golden_losses.py (PyTorch, CPU, float32); the inputs below
/// are the script's literal inputs. Regenerate with `python3 scripts/golden_losses.py`.
enum Golden {
    static let bce: Float = 0.6404959559440613
    static let bceGrad: [Float] = [-0.006321514490991831, 0.01855834387242794, -0.026735106483101845, 0.003952156286686659, -0.001498853205703199, 0.031461723148822784, 0.06813120096921921, 0.009933576919138432, -0.04684804007411003, -0.031461719423532486, 0.0009155785664916039, 0.08022275567054749]
    static let softDice: Float = 0.6558306217193604
    static let softDiceLoss: Float = 0.34416937828063965
    static let softDiceGrad: [Float] = [0.08215561509132385, -0.05770452693104744, 0.08215561509132385, -0.05770452693104744, 0.08215561509132385, -0.05770452693104744, -0.0438276082277298, -0.0438276082277298, 0.1363525688648224, 0.1363525688648224, -0.0438276082277298, -0.0438276082277298]
    static let softDiceAllBackground: Float = 0.26132699847221375
    static let barlowTwins: Float = 0.018200688064098358
    static let lesionContrastive: Float = 0.36091992259025574
    static let lesionContrastiveGrad: [Float] = [0.002398434793576598, -0.005105968564748764, 0.014633427374064922, -0.033556096255779266, 0.023904884234070778, -0.009005840867757797, -0.022021163254976273, -0.08444614708423615, 0.005376613233238459, 0.0032968251034617424, -0.00028407853096723557, -0.09716865420341492, 5.1203358452767134e-05, -1.2180009434814565e-05, -1.426870312570827e-06, 0.05212579667568207, 0.0014550375053659081, 3.744483183254488e-05, -1.3726643373956904e-05, -0.15079466998577118, 0.0004277635016478598, 8.300968329422176e-05, 3.862113771901932e-06, -0.09308618307113647, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    static let adamWParam: [Float] = [0.48634713888168335, -1.2391386032104492, 1.9773014783859253, 0.012653370387852192, -0.7522515654563904]
    static let adamWM: [Float] = [0.004000000189989805, 0.007000000216066837, 0.03700000047683716, -0.01600000075995922, -0.02550000138580799]
    static let adamWV: [Float] = [1.2490000699472148e-05, 0.00010246000601910055, 9.991001570597291e-05, 0.00019984001119155437, 9.24975101952441e-05]
    static let adamL2Param: [Float] = [0.4833492040634155, -1.2364439964294434, 1.9804294109344482, 0.012644072994589806, -0.7321285009384155]
    static let adamL2M: [Float] = [0.013400000520050526, -0.0166500024497509, 0.07490000128746033, -0.01590000092983246, -0.039650000631809235]
    static let adamL2V: [Float] = [2.2478503524325788e-05, 0.00012139539467170835, 0.0003391510108485818, 0.00020024101831950247, 0.00014050038589630276]
    static let sgdParam: [Float] = [0.4971514940261841, -1.245078206062317, 1.9875049591064453, 0.0055959997698664665, -0.7457752823829651]
    static let sgdBuffer: [Float] = [0.13485001027584076, -0.1671750247478485, 0.749500036239624, -0.15959997475147247, -0.3974750339984894]
}

/// The literal inputs of scripts/golden_losses.py, in the same order (row-major NCHW / (N, D)).
enum GoldenInputs {
    static let logits: [Float] = [2.5, -1.25, 0.75, -3.0, 4.0, -0.5, 1.5, -2.0, -0.25, 0.5, -4.5, 3.25]
    static let target: [Float] = [1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0]
    static let probs: [Float] = [0.9, 0.2, 0.6, 0.1, 0.95, 0.4, 0.7, 0.05, 0.3, 0.55, 0.15, 0.8]
    static let mapShape: Shape = [2, 1, 2, 3]
    static let z1: [Float] = [0.5, -1.0, 2.0, 1.5, 0.25, -0.5, -0.75, 1.25, 0.0, 2.0, -0.5, 1.0]
    static let z2: [Float] = [0.25, -0.75, 1.5, 1.0, 0.5, -1.0, -1.25, 1.0, 0.5, 1.75, -0.25, 0.75]
    static let embedding: [Float] = [
        0.5, -1.0, 1.5, 0.25, -0.5, 0.75, 1.0, -1.25, 2.0, 0.5, -0.25, 1.0,
        1.25, 0.5, -0.75, 2.0, 0.25, -1.5, 0.5, 1.0, -1.0, 0.75, 1.5, -0.5,
        0.75, -0.25, 1.0, 0.5, 1.5, 0.25, -1.0, 0.75, 0.5, 1.25, 0.25, -0.75,
    ]
    static let embeddingShape: Shape = [3, 3, 2, 2]
    static let lacLogits: [Float] = [2.0, -1.0, 1.5, -2.5, -0.5, 3.0, 1.0, -1.5, 0.5, -0.5, 2.0, 1.0]
    static let lacTarget: [Float] = [1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
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
