import XCTest
@testable import RefineSeg

final class NormTests: XCTestCase {
    func testConstantInputGivesExactlyTheBias() throws {
        for b in backendsUnderTest() {
            let shape: Shape = [3, 4, 5, 7]
            let bias: [Float] = [0.25, -1.5, 3.0, 0]
            let rm = try b.tensor([0.5, 0.5, 0.5, 0.5], shape: [4]), rv = try b.tensor([2, 2, 2, 2], shape: [4])
            let r = try b.batchNormTrain(try b.full(shape, value: 0.7), weight: try b.tensor([1.5, -2, 0.5, 1], shape: [4]),
                                         bias: try b.tensor(bias, shape: [4]), runningMean: rm, runningVar: rv,
                                         momentum: 0.1, eps: 1e-5)
            let y = try r.y.toArray()
            XCTAssertTrue(y.allSatisfy(\.isFinite), "on \(b.name)")
            for (i, v) in y.enumerated() { XCTAssertEqual(v, bias[(i / 35) % 4], "element \(i) on \(b.name)") }
            // Variance 0 → running_var ← 0.9·2; running_mean ← 0.9·0.5 + 0.1·0.7.
            assertClose(try rv.toArray(), [Float](repeating: 1.8, count: 4), tol: 1e-6, "running var on \(b.name)")
            assertClose(try rm.toArray(), [Float](repeating: 0.52, count: 4), tol: 1e-6, "running mean on \(b.name)")
            assertClose(try r.saved.invStd.toArray(), [Float](repeating: 1 / Float(1e-5).squareRoot(), count: 4), tol: 1e-6,
                        "invStd on \(b.name)")
        }
    }

    /// Hand-computed PyTorch semantics on (N, C) = (4, 2): biased variance normalises, the
    /// unbiased one (×4/3) enters running_var.
    func testTrainingModeFollowsPyTorch() throws {
        for b in backendsUnderTest() {
            // Channel 0: 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3); channel 1: all 5.
            let x = try b.tensor([1, 5, 2, 5, 3, 5, 6, 5], shape: [4, 2])
            let rm = try b.zeros([2]), rv = try b.full([2], value: 1)
            let r = try b.batchNormTrain(x, weight: try b.full([2], value: 1), bias: try b.zeros([2]), runningMean: rm,
                                         runningVar: rv, momentum: 0.1, eps: 1e-5)
            let inv = 1 / (3.5 + 1e-5).squareRoot()
            assertClose(try r.y.toArray(), [Float(-2 * inv), 0, Float(-inv), 0, 0, 0, Float(3 * inv), 0], tol: 1e-6, "y on \(b.name)")
            assertClose(try rm.toArray(), [0.3, 0.5], tol: 1e-6, "running mean on \(b.name)")
            assertClose(try rv.toArray(), [Float(0.9 + 0.1 * 14.0 / 3.0), 0.9], tol: 1e-6, "running var on \(b.name)")
            assertClose(try r.saved.mean.toArray(), [3, 5], tol: 1e-7, "saved mean on \(b.name)")
        }
    }

    /// One value per channel: PyTorch refuses this in training; here the unbiased variance is
    /// taken as the biased one (0), so running_var decays by 1 − momentum.
    func testOneValuePerChannelKeepsRunningVarianceFinite() throws {
        for b in backendsUnderTest() {
            let rv = try b.full([3], value: 1)
            let r = try b.batchNormTrain(try b.tensor([0.5, -1, 2], shape: [1, 3]), weight: try b.full([3], value: 2),
                                         bias: try b.tensor([1, 2, 3], shape: [3]), runningMean: try b.zeros([3]),
                                         runningVar: rv, momentum: 0.1, eps: 1e-5)
            XCTAssertEqual(try r.y.toArray(), [1, 2, 3], "on \(b.name)")
            assertClose(try rv.toArray(), [0.9, 0.9, 0.9], tol: 1e-6, "on \(b.name)")
        }
    }

    func testEvalModeUsesTheRunningStatistics() throws {
        for b in backendsUnderTest() {
            let y = try b.batchNormEval(try b.tensor([1, 2, 3, 4], shape: [1, 2, 1, 2]), weight: try b.tensor([2, 1], shape: [2]),
                                        bias: try b.tensor([0, 1], shape: [2]), runningMean: try b.tensor([1, 2], shape: [2]),
                                        runningVar: try b.tensor([4, 1], shape: [2]), eps: 0)
            assertClose(try y.toArray(), [0, 1, 2, 3], tol: 1e-6, "on \(b.name)")
        }
    }

    func testMismatchedParametersAreRefusedWithBothShapes() throws {
        for b in backendsUnderTest() {
            XCTAssertThrowsError(try b.batchNormTrain(try b.zeros([2, 3, 4, 4]), weight: try b.zeros([4]), bias: try b.zeros([3]),
                                                      runningMean: try b.zeros([3]), runningVar: try b.zeros([3]),
                                                      momentum: 0.1, eps: 1e-5)) { error in
                XCTAssertTrue("\(error)".contains("[4]") && "\(error)".contains("[2, 3, 4, 4]"), "\(error)")
            }
        }
    }

    func testBatchNormIsBitIdenticalOnRerun() throws {
        let b = try openCLBackendOrSkip()
        var rng = SeededRandom(seed: 3)
        let shape: Shape = [4, 16, 37, 29]
        let x = try b.tensor((0..<shape.count).map { _ in rng.uniform(-3, 5) }, shape: shape)
        let dy = try b.tensor((0..<shape.count).map { _ in rng.uniform(-1, 1) }, shape: shape)
        let runs = try (0..<2).map { _ -> [[Float]] in
            let r = try b.batchNormTrain(x, weight: try b.full([16], value: 1.5), bias: try b.zeros([16]),
                                         runningMean: try b.zeros([16]), runningVar: try b.full([16], value: 1), momentum: 0.1, eps: 1e-5)
            let g = try b.batchNormBackward(dy, input: x, weight: try b.full([16], value: 1.5), saved: r.saved)
            return try [r.y, r.saved.mean, r.saved.invStd, g.dx, g.dweight, g.dbias].map { try $0.toArray() }
        }
        XCTAssertEqual(runs[0], runs[1])
    }

    /// The fused ReLU equals relu(batch norm) forward, and its backward equals the plain batch
    /// norm's backward of relu's backward, in training and eval mode.
    func testFusedReLUEqualsReLUOfBatchNorm() throws {
        for b in backendsUnderTest() {
            var rng = SeededRandom(seed: 9)
            let shape: Shape = [3, 5, 9, 11]
            let x = try b.tensor((0..<shape.count).map { _ in rng.uniform(-2, 3) }, shape: shape)
            let dy = try b.tensor((0..<shape.count).map { _ in rng.uniform(-1, 1) }, shape: shape)
            let w = try b.tensor([1.5, -0.5, 0.8, 1, 2], shape: [5]), bias = try b.tensor([0.1, -0.3, 0, 0.5, -1], shape: [5])
            func stats() throws -> (Tensor, Tensor) { (try b.zeros([5]), try b.full([5], value: 1)) }
            let (rm0, rv0) = try stats(), (rm1, rv1) = try stats()
            let plain = try b.batchNormTrain(x, weight: w, bias: bias, runningMean: rm0, runningVar: rv0, momentum: 0.1, eps: 1e-5)
            let fused = try b.batchNormTrain(x, weight: w, bias: bias, runningMean: rm1, runningVar: rv1, momentum: 0.1, eps: 1e-5,
                                             activation: .relu)
            let relu = try b.relu(plain.y)
            assertClose(try fused.y.toArray(), try relu.toArray(), tol: 1e-6, "forward on \(b.name)")
            XCTAssertEqual(try rm1.toArray(), try rm0.toArray(), "running mean on \(b.name)")
            let want = try b.batchNormBackward(try b.reluBackward(dy, output: relu), input: x, weight: w, saved: plain.saved)
            let got = try b.batchNormBackward(dy, input: x, weight: w, saved: fused.saved)
            assertClose(try got.dx.toArray(), try want.dx.toArray(), tol: 1e-5, "dx on \(b.name)")
            assertClose(try got.dweight.toArray(), try want.dweight.toArray(), tol: 1e-4, "dweight on \(b.name)")
            assertClose(try got.dbias.toArray(), try want.dbias.toArray(), tol: 1e-4, "dbias on \(b.name)")
            let eval = try b.batchNormEval(x, weight: w, bias: bias, runningMean: rm0, runningVar: rv0, eps: 1e-5, activation: .relu)
            let evalPlain = try b.batchNormEval(x, weight: w, bias: bias, runningMean: rm0, runningVar: rv0, eps: 1e-5)
            XCTAssertEqual(try eval.toArray(), try b.relu(evalPlain).toArray(), "eval on \(b.name)")
        }
    }

    /// ConvBN in eval mode runs the conv with the batch norm folded in: the same output as conv
    /// then batch norm (eval); a training forward (new running statistics) refreshes the fold.
    func testEvalFoldEqualsConvThenBatchNorm() throws {
        for b in backendsUnderTest() {
            var rng = SeededRandom(seed: 21)
            let layer = try ConvBN(b, 3, 6, kernel: 3, rng: &rng)
            layer.bn.weight.value = try b.tensor((0..<6).map { _ in rng.uniform(0.5, 1.5) }, shape: [6])
            layer.bn.bias.value = try b.tensor((0..<6).map { _ in rng.uniform(-1, 1) }, shape: [6])
            let x = try b.tensor((0..<(2 * 3 * 9 * 7)).map { _ in rng.uniform(-2, 2) }, shape: [2, 3, 9, 7])
            func reference(_ activation: NormActivation) throws -> [Float] {
                let y = try b.conv2d(x, weight: layer.conv.weight.value, bias: nil, params: layer.conv.params)
                return try b.batchNormEval(y, weight: layer.bn.weight.value, bias: layer.bn.bias.value,
                                           runningMean: layer.bn.runningMean.value, runningVar: layer.bn.runningVar.value,
                                           eps: layer.bn.eps, activation: activation).toArray()
            }
            for round in 0..<2 {
                for activation in NormActivation.allCases {
                    let g = Graph(backend: b, training: false)
                    let y = try layer(g.constant(x), g, activation: activation)
                    assertClose(try y.value.toArray(), try reference(activation), tol: 1e-5, "\(activation) round \(round) on \(b.name)")
                }
                // A training forward moves the running statistics; the next eval must see them.
                let g = Graph(backend: b, training: true)
                _ = try layer(g.constant(x), g)
            }
        }
    }
}
