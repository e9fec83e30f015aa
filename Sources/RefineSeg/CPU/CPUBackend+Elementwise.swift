import Foundation

extension CPUBackend: ElementwiseOps {
    /// f applied to a and b, whose shapes `BinaryGeometry` checked equal.
    func binary(_ a: Tensor, _ b: Tensor, _ f: (Double, Double) -> Double) throws -> Tensor {
        let x = try values(a), y = try values(b)
        return make(zip(x, y).map(f), a.shape)
    }

    public func add(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { try binary(a, b, +) }
    public func sub(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { try binary(a, b, -) }
    public func mul(_ a: Tensor, _ b: Tensor, geometry g: BinaryGeometry) throws -> Tensor { try binary(a, b, *) }

    public func scale(_ a: Tensor, by factor: Float) throws -> Tensor {
        make(try values(a).map { $0 * Double(factor) }, a.shape)
    }

    public func accumulate(_ target: Tensor, _ source: Tensor, alpha: Float, geometry g: BinaryGeometry) throws {
        let t = try values(target), s = try values(source)
        try overwrite(target, zip(t, s).map { $0 + Double(alpha) * $1 })
    }

    public func relu(_ x: Tensor) throws -> Tensor { make(try values(x).map { max($0, 0) }, x.shape) }

    public func reluBackward(_ dy: Tensor, output y: Tensor, geometry g: BinaryGeometry) throws -> Tensor {
        try binary(dy, y) { g, out in out > 0 ? g : 0 }
    }

    public func sigmoid(_ x: Tensor) throws -> Tensor {
        make(try values(x).map { 1 / (1 + exp(-$0)) }, x.shape)
    }

    public func sigmoidBackward(_ dy: Tensor, output y: Tensor, geometry g: BinaryGeometry) throws -> Tensor {
        try binary(dy, y) { g, s in g * s * (1 - s) }
    }

    public func copy(_ x: Tensor) throws -> Tensor { make(try values(x), x.shape) }

    public func fill(_ x: Tensor, value: Float) throws {
        try overwrite(x, [Double](repeating: Double(value), count: x.count))
    }

    public func concatChannels(_ parts: [Tensor], geometry shapes: ConcatGeometry) throws -> Tensor {
        let (n, _, h, w) = shapes.output.nchw
        var out = [Double]()
        out.reserveCapacity(shapes.output.count)
        let data = try parts.map { try values($0) }
        for b in 0..<n {
            for (part, t) in zip(data, parts) {
                let c = t.shape[1]
                out += part[(b * c * h * w)..<((b + 1) * c * h * w)]
            }
        }
        return make(out, shapes.output)
    }

    public func concatBroadcast(_ parts: [Tensor], pooled: Tensor, relu: Bool, geometry g: ConcatBroadcastGeometry) throws -> Tensor {
        // The reference is the two ops it fuses.
        let b = try broadcastSpatial(pooled, height: g.h, width: g.w, relu: relu)
        return try concatChannels(parts + [b], geometry: ConcatGeometry(channels: g.channels + [g.pooled], n: g.n, h: g.h, w: g.w))
    }

    public func concatBroadcastBackward(_ dy: Tensor, reluInput: Tensor?, geometry g: ConcatBroadcastGeometry) throws
        -> (parts: [Tensor], pooled: Tensor) {
        // The reference: concat's backward (a slice per part), then broadcastSpatial's on the last.
        var start = 0
        let parts = try g.channels.map { c in
            defer { start += c }
            return try sliceChannels(dy, start: start, count: c)
        }
        let tail = try sliceChannels(dy, start: start, count: g.pooled)
        return (parts, try broadcastSpatialBackward(tail, reluInput: reluInput))
    }

    public func sliceChannels(_ x: Tensor, geometry g: SliceGeometry) throws -> Tensor {
        let (out, start, count) = (g.output, g.start, g.count)
        let (n, c, h, w) = x.shape.nchw
        let v = try values(x)
        var y = [Double]()
        y.reserveCapacity(out.count)
        for b in 0..<n {
            let base = (b * c + start) * h * w
            y += v[base..<(base + count * h * w)]
        }
        return make(y, out)
    }

    public func mulChannelGate(_ x: Tensor, _ gate: Tensor, geometry: GateGeometry) throws -> Tensor {
        let (n, c, h, w) = x.shape.nchw
        let xv = try values(x), g = try values(gate)
        var y = [Double](repeating: 0, count: x.count)
        for i in 0..<(n * c) {            // i = b·C + ch
            for p in 0..<(h * w) { y[i * h * w + p] = xv[i * h * w + p] * g[i] }
        }
        return make(y, x.shape)
    }

    public func mulChannelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dgate: Tensor) {
        let (n, c, h, w) = x.shape.nchw
        let xv = try values(x), g = try values(gate), d = try values(dy)
        var dx = [Double](repeating: 0, count: x.count)
        var dg = [Double](repeating: 0, count: n * c)
        for i in 0..<(n * c) {
            var acc = 0.0
            for p in 0..<(h * w) {
                dx[i * h * w + p] = d[i * h * w + p] * g[i]
                acc += d[i * h * w + p] * xv[i * h * w + p]
            }
            dg[i] = acc
        }
        return (make(dx, x.shape), make(dg, gate.shape))
    }

    public func mulPixelGate(_ x: Tensor, _ gate: Tensor, geometry: GateGeometry) throws -> Tensor {
        let (n, c, h, w) = x.shape.nchw
        let xv = try values(x), g = try values(gate)
        var y = [Double](repeating: 0, count: x.count)
        for b in 0..<n {
            for ch in 0..<c {
                for p in 0..<(h * w) { y[(b * c + ch) * h * w + p] = xv[(b * c + ch) * h * w + p] * g[b * h * w + p] }
            }
        }
        return make(y, x.shape)
    }

    public func mulPixelGateBackward(_ dy: Tensor, x: Tensor, gate: Tensor, geometry: GateGeometry) throws -> (dx: Tensor, dgate: Tensor) {
        let (n, c, h, w) = x.shape.nchw
        let xv = try values(x), g = try values(gate), d = try values(dy)
        var dx = [Double](repeating: 0, count: x.count)
        var dg = [Double](repeating: 0, count: n * h * w)
        for b in 0..<n {
            for ch in 0..<c {
                for p in 0..<(h * w) {
                    let i = (b * c + ch) * h * w + p
                    dx[i] = d[i] * g[b * h * w + p]
                    dg[b * h * w + p] += d[i] * xv[i]
                }
            }
        }
        return (make(dx, x.shape), make(dg, gate.shape))
    }
}
