import Foundation
import RefineSeg

/// The two roofs of a device: attainable compute and memory bandwidth, measured with our own
/// probe kernels (Kernels/roofline.cl), not taken from a data sheet.
public struct RooflinePeaks: Sendable, Codable {
    /// Best GFLOP/s of the FMA probe over its vector widths.
    public var gflops: Double
    /// Best GB/s of the streaming probes (triad and copy; read + write bytes, no write-allocate).
    public var gbps: Double
    /// What each probe reached, e.g. "fma float16" → GFLOP/s, "triad" → GB/s.
    public var probes: [String: Double]

    public init(gflops: Double, gbps: Double, probes: [String: Double] = [:]) {
        self.gflops = gflops; self.gbps = gbps; self.probes = probes
    }

    /// Arithmetic intensity (FLOP/byte) where the two roofs meet.
    public var ridge: Double { gflops / gbps }
}

/// One kernel on the roofline plot.
public struct RooflinePoint: Sendable {
    public var name: String
    /// FLOP per byte moved.
    public var intensity: Double
    public var gflops: Double

    public init(name: String, intensity: Double, gflops: Double) {
        self.name = name; self.intensity = intensity; self.gflops = gflops
    }

    /// From achieved GFLOP/s and GB/s of the same run (intensity = GFLOP/s ÷ GB/s).
    public init(name: String, gflops: Double, gbps: Double) {
        self.init(name: name, intensity: gflops / gbps, gflops: gflops)
    }
}

/// Roofline measurement and plotting.
public enum Roofline {
    /// Measures both roofs: `repeats` profiled runs of each probe after one warm-up, best kept
    /// (a roof is what the device can reach, so the fastest run is the estimate, not the median).
    /// The FMA probe is tried at float4, float8 and float16.
    public static func measure(backend: CLBackend, repeats: Int = 5) throws -> RooflinePeaks {
        precondition(repeats >= 1)
        var probes = [String: Double]()
        let info = backend.info

        // Compute: enough work items to fill every compute unit many times over.
        let items = max(info.computeUnits, 1) * 1024
        let iters = 4096
        let out = try backend.empty([items], op: "roofline")
        for vec in [4, 8, 16] {
            let flops = 2.0 * Double(vec) * 8 * Double(iters) * Double(items)
            let ms = try bestDeviceTime(backend, repeats: repeats) {
                try backend.run("roofline_fma", file: "roofline", options: "-DVEC=\(vec)",
                                [.tensor(out), .int(iters), .float(0.999_9), .float(1e-4)], global: [items], flops: flops)
            }
            probes["fma float\(vec)"] = flops / ms / 1e6
        }

        // Memory: three buffers of up to 64 MiB each, far beyond any CPU's last-level cache.
        let floats = max(1 << 20, min(16 << 20, info.maxAllocationBytes / 4 / 2) / 4 * 4)
        let n4 = floats / 4
        let a = try backend.empty([floats], op: "roofline")
        let b = try backend.full([floats], value: 1)
        let c = try backend.full([floats], value: 2)
        let triadBytes = 3 * floats * 4
        let triadMs = try bestDeviceTime(backend, repeats: repeats) {
            try backend.run("roofline_triad", file: "roofline", [.tensor(a), .tensor(b), .tensor(c), .float(0.5), .int(n4)],
                            global: [n4], bytes: triadBytes)
        }
        probes["triad"] = Double(triadBytes) / triadMs / 1e6
        let copyBytes = 2 * floats * 4
        let copyMs = try bestDeviceTime(backend, repeats: repeats) {
            try backend.run("roofline_copy", file: "roofline", [.tensor(a), .tensor(b), .int(n4)], global: [n4], bytes: copyBytes)
        }
        probes["copy"] = Double(copyBytes) / copyMs / 1e6

        let gflops = [4, 8, 16].compactMap { probes["fma float\($0)"] }.max() ?? 0
        let gbps = max(probes["triad"] ?? 0, probes["copy"] ?? 0)
        return RooflinePeaks(gflops: gflops, gbps: gbps, probes: probes)
    }

    /// Fastest device time (ms) of `body` over `repeats` profiled runs, after one unprofiled
    /// run (PoCL compiles a kernel for each work-group size on its first launch).
    static func bestDeviceTime(_ backend: CLBackend, repeats: Int, _ body: () throws -> Void) throws -> Double {
        try body()
        try backend.synchronize()
        var best = Double.infinity
        for _ in 0..<repeats {
            backend.startProfiling()
            try body()
            best = min(best, try backend.stopProfiling().reduce(0) { $0 + $1.milliseconds })
        }
        guard best > 0, best.isFinite else {
            throw RefineSegError.numerical("[roofline] device time \(best) ms from profiling events")
        }
        return best
    }

    /// Measures the roofs on `backend` and writes the plot of `points` to `path` (for
    /// `bench kernels --roofline-svg`); returns the peaks it measured.
    @discardableResult
    public static func write(_ points: [RooflinePoint], measuredOn backend: CLBackend, to path: String,
                             title: String? = nil) throws -> RooflinePeaks {
        let peaks = try measure(backend: backend)
        let text = svg(points: points, peaks: peaks, title: title ?? "Roofline: \(backend.info.name)")
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw RefineSegError.io(file: path, message: "cannot write the roofline plot: \(error.localizedDescription)")
        }
        return peaks
    }

    /// A log-log roofline plot as a standalone SVG document: x = arithmetic intensity
    /// (FLOP/byte), y = GFLOP/s, the roof min(peak GFLOP/s, intensity × peak GB/s), and one
    /// labelled dot per point. Points with a non-positive or non-finite coordinate are left out.
    public static func svg(points: [RooflinePoint], peaks: RooflinePeaks, title: String = "Roofline") -> String {
        let shown = points.filter { $0.intensity > 0 && $0.gflops > 0 && $0.intensity.isFinite && $0.gflops.isFinite }
        // Axis ranges: whole decades around the points and the ridge.
        let xs = shown.map(\.intensity) + [peaks.ridge, 0.1, 10]
        let xlo = floor(log10(max(xs.min() ?? 0.01, 1e-4))), xhi = ceil(log10(max(xs.max() ?? 100, 1e-3) * 1.01))
        // The y range reaches down to where the memory roof enters the plot, so its slope shows.
        let ys = shown.map(\.gflops) + [peaks.gflops, pow(10, xlo) * peaks.gbps]
        let ylo = floor(log10(max(ys.min() ?? 0.01, 1e-4))), yhi = ceil(log10(max(ys.max() ?? 100, 1e-3) * 1.3))
        let width = 820.0, height = 560.0, left = 80.0, right = 30.0, top = 50.0, bottom = 60.0
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (log10(x) - xlo) / max(xhi - xlo, 1) * pw }
        func py(_ y: Double) -> Double { top + ph - (log10(y) - ylo) / max(yhi - ylo, 1) * ph }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        func number(_ v: Double) -> String { v >= 1 ? String(format: "%g", v) : String(format: "%.*f", Int(-floor(log10(v))), v) }

        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="24" text-anchor="middle" font-size="15">\(esc(title))</text>

        """
        for d in stride(from: xlo, through: xhi, by: 1) {
            let x = px(pow(10, d))
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + ph))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(x))\" y=\"\(f(top + ph + 18))\" text-anchor=\"middle\">\(number(pow(10, d)))</text>\n"
        }
        for d in stride(from: ylo, through: yhi, by: 1) {
            let y = py(pow(10, d))
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + pw))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(number(pow(10, d)))</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 15))\" text-anchor=\"middle\">arithmetic intensity (FLOP/byte)</text>\n"
        s += "<text x=\"18\" y=\"\(f(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(f(top + ph / 2)))\">GFLOP/s</text>\n"

        // The roof: the memory slope up to the ridge, then flat, clipped to the plot.
        let x0 = pow(10, xlo), x1 = pow(10, xhi)
        let roofPoints = [x0, min(max(peaks.ridge, x0), x1), x1].map { x in
            "\(f(px(x))),\(f(py(min(peaks.gflops, x * peaks.gbps))))"
        }
        s += "<polyline points=\"\(roofPoints.joined(separator: " "))\" fill=\"none\" stroke=\"#c00\" stroke-width=\"2\"/>\n"
        s += "<text x=\"\(f(left + pw - 4))\" y=\"\(f(py(peaks.gflops) - 6))\" text-anchor=\"end\" fill=\"#c00\">"
            + "\(String(format: "%.1f", peaks.gflops)) GFLOP/s (FMA probe)</text>\n"
        s += "<text x=\"\(f(left + 6))\" y=\"\(f(top + 16))\" fill=\"#c00\">\(String(format: "%.1f", peaks.gbps)) GB/s (streaming probe)</text>\n"

        for (i, p) in shown.enumerated() {
            let x = px(p.intensity), y = py(p.gflops)
            // Alternate label sides so neighbouring points stay readable.
            let dy = i % 2 == 0 ? -6.0 : 14.0
            s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"4\" fill=\"#1f5fa8\"/>\n"
            s += "<text x=\"\(f(x + 6))\" y=\"\(f(y + dy))\" font-size=\"10\">\(esc(p.name))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
