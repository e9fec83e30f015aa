import XCTest
@testable import RefineSeg

/// The fused attention ops equal the compositions of plain ops they replace, on every backend.
final class AttentionTests: XCTestCase {
    private func random(_ b: Backend, _ shape: Shape, seed: UInt64) throws -> Tensor {
        var rng = SeededRandom(seed: seed)
        return try b.tensor((0..<shape.count).map { _ in rng.uniform(-2, 2) }, shape: shape)
    }

    func testSpatialMeanMaxEqualsSpatialReductions() throws {
        for b in backendsUnderTest() {
            for shape in [Shape([1, 1, 1, 1]), [3, 5, 7, 13], [2, 16, 33, 31]] {
                let (n, c, _, _) = shape.nchw
                let x = try random(b, shape, seed: 1)
                let fused = try b.spatialMeanMax(x)
                let mean = try b.reduce(x, axes: 2..<4, kind: .mean), peak = try b.reduce(x, axes: 2..<4, kind: .max)
                XCTAssertEqual(fused.mean.shape, [n, c])
                assertClose(try fused.mean.toArray(), try mean.toArray(), tol: 1e-6, "mean \(shape) on \(b.name)")
                XCTAssertEqual(try fused.max.toArray(), try peak.toArray(), "max \(shape) on \(b.name)")

                let dMean = try random(b, [n, c], seed: 2), dMax = try random(b, [n, c], seed: 3)
                let dx = try b.spatialMeanMaxBackward(dMean: dMean, dMax: dMax, input: x)
                let composed = try b.add(try b.reduceBackward(try dMean.reshaped([n, c, 1, 1]), input: x, axes: 2..<4, kind: .mean),
                                         try b.reduceBackward(try dMax.reshaped([n, c, 1, 1]), input: x, axes: 2..<4, kind: .max))
                assertClose(try dx.toArray(), try composed.toArray(), tol: 1e-6, "backward \(shape) on \(b.name)")
            }
        }
    }

    func testChannelMeanMaxEqualsConcatOfChannelReductions() throws {
        for b in backendsUnderTest() {
            for shape in [Shape([1, 1, 1, 1]), [3, 5, 7, 13], [2, 16, 33, 31]] {
                let (n, _, h, w) = shape.nchw
                let x = try random(b, shape, seed: 4)
                let fused = try b.channelMeanMax(x)
                let composed = try b.concatChannels([try b.reduce(x, axes: 1..<2, kind: .mean), try b.reduce(x, axes: 1..<2, kind: .max)])
                XCTAssertEqual(fused.shape, [n, 2, h, w])
                assertClose(try fused.toArray(), try composed.toArray(), tol: 1e-6, "\(shape) on \(b.name)")

                let dy = try random(b, [n, 2, h, w], seed: 5)
                let dx = try b.channelMeanMaxBackward(dy, input: x)
                let viaPlainOps = try b.add(
                    try b.reduceBackward(try b.sliceChannels(dy, start: 0, count: 1), input: x, axes: 1..<2, kind: .mean),
                    try b.reduceBackward(try b.sliceChannels(dy, start: 1, count: 1), input: x, axes: 1..<2, kind: .max))
                assertClose(try dx.toArray(), try viaPlainOps.toArray(), tol: 1e-6, "backward \(shape) on \(b.name)")
            }
        }
    }

    func testMaxGradientGoesToTheFirstMaximum() throws {
        for b in backendsUnderTest() {
            // Plane of 70 equal values: all of dMax lands on element 0 (not on a later tie).
            let x = try b.full([1, 2, 7, 10], value: 3)
            let dx = try b.spatialMeanMaxBackward(dMean: try b.zeros([1, 2]), dMax: try b.tensor([1, 2], shape: [1, 2]), input: x)
            var want = [Float](repeating: 0, count: 140)
            want[0] = 1; want[70] = 2
            XCTAssertEqual(try dx.toArray(), want, "spatial on \(b.name)")
            let dc = try b.channelMeanMaxBackward(try b.tensor([0, 0, 5, 6], shape: [1, 2, 1, 2]), input: try b.full([1, 3, 1, 2], value: 1))
            XCTAssertEqual(try dc.toArray(), [5, 6, 0, 0, 0, 0], "channel on \(b.name)")
        }
    }

    func testBroadcastSpatialAcceptsBothLayoutsAndSumsBack() throws {
        for b in backendsUnderTest() {
            let x = try b.tensor([1, 2, 3, 4, 5, 6], shape: [2, 3, 1, 1])
            let y = try b.broadcastSpatial(x, height: 2, width: 3)
            XCTAssertEqual(y.shape, [2, 3, 2, 3])
            XCTAssertEqual(try y.toArray(), (1...6).flatMap { [Float](repeating: Float($0), count: 6) })
            XCTAssertEqual(try b.broadcastSpatial(try x.reshaped([2, 3]), height: 2, width: 3).toArray(), try y.toArray())
            let back = try b.broadcastSpatialBackward(y)
            XCTAssertEqual(back.shape, [2, 3, 1, 1])
            XCTAssertEqual(try back.toArray(), (1...6).map { Float(6 * $0) })
            XCTAssertThrowsError(try b.broadcastSpatial(try b.zeros([2, 3, 2, 1]), height: 2, width: 2))
        }
    }

    /// spatialMeanMax is one graph node: its backward gets both descriptors' gradients at once
    /// (a descriptor nobody used counts as zero) and x's gradient is their joint backward.
    func testSpatialMeanMaxRecordsOneNodeWithBothGradients() throws {
        for b in backendsUnderTest() {
            let shape: Shape = [2, 3, 5, 7]
            for useMean in [true, false] {
                let p = Parameter(try random(b, shape, seed: 6))
                let g = Graph(backend: b, training: true)
                let (mean, peak) = try g.spatialMeanMax(g.parameter(p))
                let twicePeak = try g.scale(peak, by: 2)
                let loss = try g.mean(useMean ? try g.add(mean, twicePeak) : twicePeak, axes: 0..<2)
                try g.backward(loss)
                let k: Float = 1.0 / 6
                let want = try b.spatialMeanMaxBackward(dMean: try b.full([2, 3], value: useMean ? k : 0),
                                                        dMax: try b.full([2, 3], value: 2 * k), input: p.value)
                let grad = try XCTUnwrap(p.grad, "on \(b.name)")
                assertClose(try grad.toArray(), try want.toArray(), tol: 1e-6, "useMean \(useMean) on \(b.name)")
            }
        }
    }

    /// The fused channel-attention ops equal the plain ops they replace: stacked descriptors =
    /// [mean; max], channel gate = x · σ(sum of halves), and their backwards agree.
    func testChannelAttentionOpsEqualThePlainOps() throws {
        for b in backendsUnderTest() {
            for shape in [Shape([1, 1, 1, 1]), [3, 5, 7, 13], [2, 16, 33, 31]] {
                let (n, c, _, _) = shape.nchw
                let x = try random(b, shape, seed: 7)
                let (d, argmax) = try b.channelDescriptors(x)
                let plain = try b.spatialMeanMax(x)
                XCTAssertEqual(d.shape, [2 * n, c])
                let dv = try d.toArray()
                assertClose(Array(dv[..<(n * c)]), try plain.mean.toArray(), tol: 1e-6, "mean \(shape) on \(b.name)")
                XCTAssertEqual(Array(dv[(n * c)...]), try plain.max.toArray(), "max \(shape) on \(b.name)")
                let dd = try random(b, [2 * n, c], seed: 8), ddv = try dd.toArray()
                let dx = try b.channelDescriptorsBackward(dd, argmax: argmax, inputShape: shape)
                let want = try b.spatialMeanMaxBackward(dMean: try b.tensor(Array(ddv[..<(n * c)]), shape: [n, c]),
                                                        dMax: try b.tensor(Array(ddv[(n * c)...]), shape: [n, c]), input: x)
                assertClose(try dx.toArray(), try want.toArray(), tol: 1e-6, "descriptor backward \(shape) on \(b.name)")

                let l = try random(b, [2 * n, c], seed: 9), lv = try l.toArray()
                let s = try b.sigmoid(try b.add(try b.tensor(Array(lv[..<(n * c)]), shape: [n, c]),
                                                try b.tensor(Array(lv[(n * c)...]), shape: [n, c])))
                assertClose(try b.channelGate(x, logits: l).toArray(), try b.mulChannelGate(x, s).toArray(), tol: 1e-6,
                            "gate \(shape) on \(b.name)")
                let dy = try random(b, shape, seed: 10)
                let fused = try b.channelGateBackward(dy, x: x, logits: l)
                let ref = try b.mulChannelGateBackward(dy, x: x, gate: s)
                let dpre = try b.sigmoidBackward(ref.dgate, output: s).toArray()
                assertClose(try fused.dx.toArray(), try ref.dx.toArray(), tol: 1e-6, "gate dx \(shape) on \(b.name)")
                assertClose(try fused.dlogits.toArray(), dpre + dpre, tol: 1e-5, "gate dlogits \(shape) on \(b.name)")
            }
        }
    }

    /// relu(x · gate + r) in one op equals relu(add(mulPixelGate(x, gate), r)), both ways.
    func testPixelGateAddReLUEqualsThePlainOps() throws {
        for b in backendsUnderTest() {
            for shape in [Shape([1, 1, 1, 1]), [3, 5, 7, 13], [2, 16, 33, 31]] {
                let (n, _, h, w) = shape.nchw
                let x = try random(b, shape, seed: 11), gate = try random(b, [n, 1, h, w], seed: 12)
                let r = try random(b, shape, seed: 13), dy = try random(b, shape, seed: 14)
                let y = try b.pixelGateAddReLU(x, gate: gate, residual: r)
                let plain = try b.relu(try b.add(try b.mulPixelGate(x, gate), r))
                assertClose(try y.toArray(), try plain.toArray(), tol: 1e-6, "forward \(shape) on \(b.name)")
                let got = try b.pixelGateAddReLUBackward(dy, x: x, gate: gate, residual: r)
                let ds = try b.reluBackward(dy, output: plain)
                let want = try b.mulPixelGateBackward(ds, x: x, gate: gate)
                assertClose(try got.dresidual.toArray(), try ds.toArray(), tol: 1e-6, "dr \(shape) on \(b.name)")
                assertClose(try got.dx.toArray(), try want.dx.toArray(), tol: 1e-6, "dx \(shape) on \(b.name)")
                assertClose(try got.dgate.toArray(), try want.dgate.toArray(), tol: 1e-5, "dgate \(shape) on \(b.name)")
            }
        }
    }

    /// The fused channel-attention MLP equals the 1×1 convs and ReLU it replaces (as
    /// `PointwiseLinear` ran them), forward and every gradient.
    func testChannelMLPEqualsTheLinearsItReplaces() throws {
        for b in backendsUnderTest() {
            let (r, c, hd) = (6, 20, 4)
            let values = try [[r, c], [hd, c], [hd], [c, hd], [c]].enumerated().map { i, s in
                try random(b, Shape(s), seed: 20 + UInt64(i))
            }
            func run(fused: Bool) throws -> [[Float]] {
                let p = values.map { Parameter($0) }
                let g = Graph(backend: b, training: true)
                let v = p.map { g.parameter($0) }
                let l: Var
                if fused {
                    l = try g.channelMLP(v[0], w1: v[1], b1: v[2], w2: v[3], b2: v[4])
                } else {
                    let h = try g.relu(try g.conv2d(try g.reshape(v[0], [r, c, 1, 1]), weight: try g.reshape(v[1], [hd, c, 1, 1]),
                                                    bias: v[2], params: Conv2DParams()))
                    let y = try g.conv2d(h, weight: try g.reshape(v[3], [c, hd, 1, 1]), bias: v[4], params: Conv2DParams())
                    l = try g.reshape(y, [r, c])
                }
                try g.backward(try g.mean(try g.sigmoid(l), axes: 0..<2))
                return try [l.value.toArray()] + p.map { try XCTUnwrap($0.grad).toArray() }
            }
            let fused = try run(fused: true), plain = try run(fused: false)
            for (i, name) in ["logits", "dd", "dw1", "db1", "dw2", "db2"].enumerated() {
                assertClose(fused[i], plain[i], tol: 1e-5, "\(name) on \(b.name)")
            }
        }
    }

    /// The channel MLP gate's backward in one op equals the gate's backward then the MLP's, bit for
    /// bit (on CPU OpenCL devices one kernel whose last item runs the MLP's backward; its completion
    /// counter is reused, so the op runs twice): C and Hd below, at and off the kernel's 8 lanes.
    func testChannelMLPGateBackwardEqualsTheTwoOps() throws {
        for b in backendsUnderTest() {
            for (shape, hd) in [(Shape([1, 5, 3, 3]), 4), ([2, 13, 7, 5], 7), ([2, 24, 9, 9], 17), ([3, 16, 4, 4], 8)] {
                let (n, c, _, _) = shape.nchw
                let x = try random(b, shape, seed: 30), dy = try random(b, shape, seed: 31), d = try random(b, [2 * n, c], seed: 32)
                let w1 = try random(b, [hd, c], seed: 33), b1 = try random(b, [hd], seed: 34)
                let w2 = try random(b, [c, hd], seed: 35), b2 = try random(b, [c], seed: 36)
                let f = try b.channelMLPGate(x, descriptors: d, w1: w1, b1: b1, w2: w2, b2: b2)
                let gate = try b.channelGateBackward(dy, x: x, logits: f.logits)
                let m = try b.channelMLPBackward(gate.dlogits, d: d, w1: w1, w2: w2, hidden: f.hidden)
                let want = try [gate.dx, m.dd, m.dw1, m.db1, m.dw2, m.db2].map { try $0.toArray() }
                for run in 0..<2 {
                    let (dx, g) = try b.channelMLPGateBackward(dy, x: x, logits: f.logits, descriptors: d, w1: w1, w2: w2, hidden: f.hidden)
                    let got = try [dx, g.dd, g.dw1, g.db1, g.dw2, g.db2].map { try $0.toArray() }
                    for (i, name) in ["dx", "dd", "dw1", "db1", "dw2", "db2"].enumerated() {
                        XCTAssertEqual(got[i], want[i], "\(name) \(shape), hidden \(hd), run \(run) on \(b.name)")
                    }
                }
            }
        }
    }

    /// A tensor with several consumers gets the sum of their gradients, whether a consumer's
    /// backward adds the gradient so far in its own kernel (conv backward-data, max pool, the
    /// channel/spatial descriptors' backwards) or not (channel gate): the sum of the gradients
    /// each consumer gives alone.
    func testSharedInputGetsTheSumOfItsConsumersGradients() throws {
        for b in backendsUnderTest() {
            let shape: Shape = [2, 16, 8, 6]
            let x0 = try random(b, shape, seed: 30)
            let w3 = try random(b, [16, 16, 3, 3], seed: 31), w1 = try random(b, [5, 16, 1, 1], seed: 32)
            let logits = try random(b, [4, 16], seed: 33)
            typealias Consumer = (Graph, Var) throws -> Var
            let consumers: [Consumer] = [
                { g, x in try g.conv2d(x, weight: g.constant(w3), bias: nil, params: Conv2DParams(padding: 1)) },
                { g, x in try g.conv2d(x, weight: g.constant(w1), bias: nil, params: Conv2DParams()) },
                { g, x in try g.channelMeanMax(x) },
                { g, x in try g.maxPool2x2(x) },
                { g, x in try g.channelDescriptors(x) },
                { g, x in try g.channelGate(x, logits: g.constant(logits)) },
            ]
            func gradient(_ list: [Consumer]) throws -> [Float] {
                let p = Parameter(x0)
                let g = Graph(backend: b, training: true)
                let x = g.parameter(p)
                var loss: Var?
                for f in list {
                    let y = try f(g, x)
                    let term = try g.mean(try g.sigmoid(try g.reshape(y, [1, y.shape.count])), axes: 0..<2)
                    loss = try loss.map { try g.add($0, term) } ?? term
                }
                try g.backward(try XCTUnwrap(loss))
                return try XCTUnwrap(p.grad).toArray()
            }
            var want = [Float](repeating: 0, count: shape.count)
            for f in consumers { want = zip(want, try gradient([f])).map { $0 + $1 } }
            assertClose(try gradient(consumers), want, tol: 1e-5, "shared input on \(b.name)")
        }
    }
}
