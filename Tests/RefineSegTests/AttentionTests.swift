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
}
