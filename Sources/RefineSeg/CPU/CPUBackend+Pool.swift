
extension CPUBackend {
    public func maxPool2x2(_ x: Tensor, geometry g: MaxPool2x2Geometry) throws -> Tensor {
        let xv = try values(x)                               // (N, C, H, W)
        var y = [Double](repeating: 0, count: g.outputShape.count)   // (N, C, H/2, W/2)
        for plane in 0..<(g.n * g.c) {
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    let (iy, ix) = firstMax(xv, plane: plane, g, oy, ox)
                    y[(plane * g.oh + oy) * g.ow + ox] = xv[(plane * g.h + iy) * g.w + ix]
                }
            }
        }
        return make(y, g.outputShape)
    }

    public func maxPool2x2Backward(_ dy: Tensor, input x: Tensor, geometry g: MaxPool2x2Geometry, adding prior: Tensor?) throws -> Tensor {
        let xv = try values(x), dv = try values(dy)
        var dx = [Double](repeating: 0, count: x.count)      // (N, C, H, W); rows/columns outside every window stay 0
        for plane in 0..<(g.n * g.c) {
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    let (iy, ix) = firstMax(xv, plane: plane, g, oy, ox)
                    dx[(plane * g.h + iy) * g.w + ix] = dv[(plane * g.oh + oy) * g.ow + ox]
                }
            }
        }
        return try make(dx, x.shape, adding: prior)
    }

    /// The window's first maximal element in row-major order (ties go to the earlier one).
    private func firstMax(_ xv: [Double], plane: Int, _ g: MaxPool2x2Geometry, _ oy: Int, _ ox: Int) -> (Int, Int) {
        var best = (2 * oy, 2 * ox)
        for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
            let (iy, ix) = (2 * oy + dy, 2 * ox + dx)
            if xv[(plane * g.h + iy) * g.w + ix] > xv[(plane * g.h + best.0) * g.w + best.1] { best = (iy, ix) }
        }
        return best
    }
}
