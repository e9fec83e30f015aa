import XCTest
@testable import RefineSeg

final class OptimTests: XCTestCase {
    private let param: [Float] = [0.5, -1.25, 2.0, 0.0, -0.75]
    private let grads: [[Float]] = [[0.1, -0.2, 0.3, -0.4, 0.05], [-0.05, 0.25, 0.1, 0.2, -0.3]]

    /// Two Adam steps with lr 1e-2, weight decay 0.1, as scripts/golden_losses.py runs them.
    private func twoAdamSteps(_ b: Backend, decoupled: Bool) throws -> (p: [Float], m: [Float], v: [Float]) {
        let p = try b.tensor(param, shape: [5]), m = try b.zeros([5]), v = try b.zeros([5])
        for (i, g) in grads.enumerated() {
            try b.adamStep(param: p, grad: try b.tensor(g, shape: [5]), m: m, v: v,
                           params: AdamParams(lr: 1e-2, weightDecay: 0.1, decoupled: decoupled, step: i + 1))
        }
        return (try p.toArray(), try m.toArray(), try v.toArray())
    }

    func testAdamWMatchesTorch() throws {
        for b in backendsUnderTest() {
            let r = try twoAdamSteps(b, decoupled: true)
            assertClose(r.p, Golden.adamWParam, tol: 1e-6, "param on \(b.name)")
            assertClose(r.m, Golden.adamWM, tol: 1e-6, "m on \(b.name)")
            assertClose(r.v, Golden.adamWV, tol: 1e-6, "v on \(b.name)")
        }
    }

    func testAdamWithL2MatchesTorch() throws {
        for b in backendsUnderTest() {
            let r = try twoAdamSteps(b, decoupled: false)
            assertClose(r.p, Golden.adamL2Param, tol: 1e-6, "param on \(b.name)")
            assertClose(r.m, Golden.adamL2M, tol: 1e-6, "m on \(b.name)")
            assertClose(r.v, Golden.adamL2V, tol: 1e-6, "v on \(b.name)")
        }
    }

    func testSGDWithMomentumMatchesTorch() throws {
        for b in backendsUnderTest() {
            let p = try b.tensor(param, shape: [5]), buf = try b.zeros([5])
            for g in grads {
                try b.sgdStep(param: p, grad: try b.tensor(g, shape: [5]), momentumBuffer: buf, lr: 1e-2, momentum: 0.9, weightDecay: 0.1)
            }
            assertClose(try p.toArray(), Golden.sgdParam, tol: 1e-6, "param on \(b.name)")
            assertClose(try buf.toArray(), Golden.sgdBuffer, tol: 1e-6, "buffer on \(b.name)")
        }
    }

    func testAdamRefusesStepZero() throws {
        for b in backendsUnderTest() {
            let t = try b.zeros([3])
            XCTAssertThrowsError(try b.adamStep(param: t, grad: t, m: t, v: t, params: AdamParams(lr: 1e-3, step: 0)))
        }
    }

    func testClipByGlobalNormScalesOnlyAboveTheLimit() throws {
        for b in backendsUnderTest() {
            let a = try b.tensor([3], shape: [1]), c = try b.tensor([0, 4], shape: [2])
            let s = try b.sumOfSquares([a, c])
            XCTAssertEqual(try s.scalar(), 25)
            try b.clipByGlobalNorm([a, c], sumOfSquares: s, maxNorm: 1)
            let f = Float(1 / (5 + 1e-6))
            assertClose(try a.toArray() + (try c.toArray()), [3 * f, 0, 4 * f], tol: 1e-7, "clipped on \(b.name)")
            let d = try b.tensor([0.3, -0.4], shape: [2])
            try b.clipByGlobalNorm([d], sumOfSquares: try b.sumOfSquares([d]), maxNorm: 1)
            XCTAssertEqual(try d.toArray(), [0.3, -0.4], "below the limit on \(b.name)")
            XCTAssertEqual(try b.sumOfSquares([]).scalar(), 0)
        }
    }

    func testSumOfSquaresIsBitIdenticalOnRerun() throws {
        let b = try openCLBackendOrSkip()
        var rng = SeededRandom(seed: 11)
        let tensors = try [Shape([300_001]), [64, 32, 3, 3], [7]].map { s in
            try b.tensor((0..<s.count).map { _ in rng.uniform(-1, 1) }, shape: s)
        }
        XCTAssertEqual(try b.sumOfSquares(tensors).scalar(), try b.sumOfSquares(tensors).scalar())
    }

    func testWarmupCosineSchedule() throws {
        let s = try WarmupCosineSchedule(baseLR: 1e-3, minLR: 1e-5, warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(s.lr(at: 0), 0)
        XCTAssertEqual(s.lr(at: 5), 5e-4, accuracy: 1e-10)
        XCTAssertEqual(s.lr(at: 10), 1e-3, accuracy: 1e-10)
        XCTAssertEqual(s.lr(at: 60), (1e-3 + 1e-5) / 2, accuracy: 1e-10)   // half-way through the decay
        XCTAssertEqual(s.lr(at: 110), 1e-5, accuracy: 1e-12)
        XCTAssertEqual(s.lr(at: 500), 1e-5, accuracy: 1e-12)
        for step in 10..<110 { XCTAssertGreaterThanOrEqual(s.lr(at: step), s.lr(at: step + 1)) }
        let noWarmup = try WarmupCosineSchedule(baseLR: 0.1, warmupSteps: 0, totalSteps: 4)
        XCTAssertEqual(noWarmup.lr(at: 0), 0.1, accuracy: 1e-9)
        XCTAssertEqual(noWarmup.lr(at: 2), 0.05, accuracy: 1e-8)
        XCTAssertThrowsError(try WarmupCosineSchedule(baseLR: 1e-3, minLR: 1e-2, warmupSteps: 0, totalSteps: 10))
        XCTAssertThrowsError(try WarmupCosineSchedule(baseLR: 1e-3, warmupSteps: 20, totalSteps: 10))
    }
}
