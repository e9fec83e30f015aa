import XCTest
@testable import RefineSeg

final class OptimTests: XCTestCase {
    private let param = GoldenInputs.param
    private let grads = GoldenInputs.grads

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

    /// Parameters of several shapes, one without a gradient this step, and one whose value was
    /// replaced since the optimiser was made (as a checkpoint load does).
    func testFusedAdamWMatchesPerTensorStepsWithClipping() throws {
        for b in backendsUnderTest() {
            var rng = SeededRandom(seed: 5)
            let shapes: [Shape] = [[3, 2, 3, 3], [3], [7, 5], [1], [40, 13]]
            func random(_ s: Shape, _ scale: Float) -> [Float] { (0..<s.count).map { _ in rng.uniform(-scale, scale) } }
            let initial = shapes.map { random($0, 1) }
            let params = try zip(shapes, initial).map { s, v in Parameter(try b.tensor(v, shape: s)) }
            let named = params.enumerated().map { ("p\($0.offset)", $0.element) }
            let opt = try AdamW(named, backend: b, weightDecay: 0.05, clipNorm: 1)
            var reference = initial
            var m = shapes.map { [Float](repeating: 0, count: $0.count) }, v = m
            let replaced = shapes.map { random($0, 1) }
            for step in 1...3 {
                if step == 2 {                              // a load replaces a value between steps
                    params[4].value = try b.tensor(replaced[4], shape: shapes[4])
                    reference[4] = replaced[4]
                }
                let active = step == 2 ? [0, 1, 3, 4] : Array(shapes.indices)       // p2 unused in step 2
                let grads = shapes.map { random($0, 3) }
                for i in active {
                    try params[i].accumulateGradient(try b.tensor(grads[i], shape: shapes[i]), backend: b)
                }
                try opt.update(lr: 0.01)
                // The same step per tensor: global-norm clip over the gradients present, then Adam.
                let pt = try active.map { try b.tensor(reference[$0], shape: shapes[$0]) }
                let gt = try active.map { try b.tensor(grads[$0], shape: shapes[$0]) }
                let mt = try active.map { try b.tensor(m[$0], shape: shapes[$0]) }, vt = try active.map { try b.tensor(v[$0], shape: shapes[$0]) }
                try b.clipByGlobalNorm(gt, sumOfSquares: try b.sumOfSquares(gt), maxNorm: 1)
                for (k, i) in active.enumerated() {
                    try b.adamStep(param: pt[k], grad: gt[k], m: mt[k], v: vt[k],
                                   params: AdamParams(lr: 0.01, weightDecay: 0.05, decoupled: true, step: step))
                    reference[i] = try pt[k].toArray(); m[i] = try mt[k].toArray(); v[i] = try vt[k].toArray()
                }
                for i in shapes.indices {
                    assertClose(try params[i].value.toArray(), reference[i], tol: 1e-5, "p\(i) step \(step) on \(b.name)")
                    assertClose(try opt.m[i].toArray(), m[i], tol: 1e-5, "m\(i) step \(step) on \(b.name)")
                    assertClose(try opt.v[i].toArray(), v[i], tol: 1e-5, "v\(i) step \(step) on \(b.name)")
                    XCTAssertNil(params[i].grad)
                }
            }
            // The unused parameter kept its value through step 2 (PyTorch skips parameters without a gradient).
            XCTAssertEqual(opt.step, 3)
        }
    }

    func testAdamWStateRoundTripsThroughStateTensors() throws {
        for b in backendsUnderTest() {
            let p = Parameter(try b.tensor([1, 2, 3], shape: [3])), q = Parameter(try b.tensor([4, 5], shape: [1, 2]))
            let opt = try AdamW([("a", p), ("b", q)], backend: b)
            for _ in 0..<2 {
                try p.accumulateGradient(try b.tensor([0.1, -0.2, 0.3], shape: [3]), backend: b)
                try q.accumulateGradient(try b.tensor([0.5, 0.25], shape: [1, 2]), backend: b)
                try opt.update(lr: 0.1)
            }
            var saved = [String: Tensor]()
            for (name, t) in opt.stateTensors() { saved[name] = try b.tensor(try t.toArray(), shape: t.shape) }
            let p2 = Parameter(try b.tensor(try p.value.toArray(), shape: [3])), q2 = Parameter(try b.tensor(try q.value.toArray(), shape: [1, 2]))
            let restored = try AdamW([("a", p2), ("b", q2)], backend: b)
            try restored.restore(saved, step: opt.step)
            for (x, y) in zip(opt.stateTensors(), restored.stateTensors()) {
                XCTAssertEqual(x.0, y.0)
                XCTAssertEqual(try x.1.toArray(), try y.1.toArray(), "\(x.0) on \(b.name)")
            }
            for (o, r) in [(opt, restored)] {
                for (pp, g) in [(p, [0.2, 0.1, -0.1] as [Float]), (p2, [0.2, 0.1, -0.1])] {
                    try pp.accumulateGradient(try b.tensor(g, shape: [3]), backend: b)
                }
                try o.update(lr: 0.1); try r.update(lr: 0.1)
            }
            XCTAssertEqual(try p.value.toArray(), try p2.value.toArray(), "after resume on \(b.name)")
            saved.removeValue(forKey: "optimizer.v.b")
            XCTAssertThrowsError(try restored.restore(saved, step: 1))
        }
    }

    func testFlatLayoutRunsMergeNeighbours() {
        let layout = FlatLayout(counts: [5, 32, 0, 3, 1], alignment: 32)
        XCTAssertEqual(layout.offsets, [0, 32, 64, 64, 96])
        XCTAssertEqual(layout.total, 128)
        XCTAssertEqual(layout.runs(of: [0, 1, 2, 3, 4]), [0 ..< 64, 64 ..< 97])
        XCTAssertEqual(layout.runs(of: [0, 3]), [0 ..< 5, 64 ..< 67])
        XCTAssertEqual(layout.runs(of: [1, 3, 4]), [32 ..< 64, 64 ..< 97])
        XCTAssertEqual(layout.runs(of: []), [])
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
