import Foundation
import RefineSeg

/// How far one computed tensor is from its reference.
public struct Comparison: Sendable {
    /// Σ(a − b)² / max(Σ b², tiny): normalised mean squared error.
    public var nmse: Double
    /// max |a − b|.
    public var maxAbs: Double
    /// max |b|, to scale the max-abs limit.
    public var referenceMax: Double
    /// First elements outside the max-abs limit: (flat index, got, expected).
    public var firstMismatches: [(Int, Float, Float)]
    /// Count mismatch or non-finite values.
    public var invalid: String?

    public static func between(_ got: [Float], _ want: [Float], tolerance: Tolerance) -> Comparison {
        guard got.count == want.count else {
            return Comparison(nmse: .infinity, maxAbs: .infinity, referenceMax: 0, firstMismatches: [],
                              invalid: "\(got.count) values vs \(want.count) expected")
        }
        var err = 0.0, ref = 0.0, maxAbs = 0.0, refMax = 0.0
        var invalid: String?
        for (a, b) in zip(got, want) {
            let d = Double(a) - Double(b)
            err += d * d; ref += Double(b) * Double(b)
            maxAbs = max(maxAbs, abs(d)); refMax = max(refMax, abs(Double(b)))
            if !a.isFinite && b.isFinite && invalid == nil { invalid = "non-finite value \(a)" }
        }
        let limit = tolerance.maxAbs * max(1, refMax)
        var mismatches = [(Int, Float, Float)]()
        for (i, (a, b)) in zip(got, want).enumerated() where !(abs(Double(a) - Double(b)) <= limit) {
            mismatches.append((i, a, b))
            if mismatches.count == 4 { break }
        }
        return Comparison(nmse: err / max(ref, 1e-30), maxAbs: maxAbs, referenceMax: refMax,
                          firstMismatches: mismatches, invalid: invalid)
    }

    public func passes(_ t: Tolerance) -> Bool {
        invalid == nil && nmse <= t.nmse && maxAbs <= t.maxAbs * max(1, referenceMax)
    }
}

/// One row of `refineseg check`.
public struct CheckResult: Codable, Sendable {
    public var op: String
    public var params: String
    /// "forward", "backward" or "gradcheck".
    public var pass: String
    public var nmse: Double
    public var maxAbs: Double
    public var tolerance: String
    public var passed: Bool
    public var milliseconds: Double
    /// Empty when passed; otherwise the first mismatching elements or the error.
    public var message: String
}

/// Runs op cases against the CPU reference and checks the reference's gradients.
public enum OpCheck {
    /// Forward (and backward, if the case has one) on `backend` and on the float32 CPU reference.
    public static func run(_ c: OpCase, on backend: Backend, reference: CPUBackend = CPUBackend()) -> [CheckResult] {
        let values = c.inputValues()
        var rows = [CheckResult]()
        func fail(_ pass: String, _ error: Error) -> CheckResult {
            CheckResult(op: c.op, params: c.params, pass: pass, nmse: .nan, maxAbs: .nan, tolerance: c.tolerance.description,
                        passed: false, milliseconds: 0, message: "\(error)")
        }
        do {
            let refIn = try zip(values, c.inputs).map { try reference.tensor($0, shape: $1.shape) }
            let devIn = try zip(values, c.inputs).map { try backend.tensor($0, shape: $1.shape) }
            let refOut = try c.forward(reference, refIn)
            try backend.synchronize()
            let start = DispatchTime.now().uptimeNanoseconds
            let devOut = try c.forward(backend, devIn)
            try backend.synchronize()
            let forwardMs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            rows.append(try compare(c, "forward", devOut, refOut, c.tolerance, forwardMs))

            guard let backward = c.backward else { return rows }
            var rng = SeededRandom(seed: c.seed ^ 0xB1CE)
            let upstream = refOut.map { t in (0..<t.count).map { _ in rng.uniform(-1, 1) } }
            let refUp = try zip(upstream, refOut).map { try reference.tensor($0, shape: $1.shape) }
            let devUp = try zip(upstream, devOut).map { try backend.tensor($0, shape: $1.shape) }
            let refGrads = try backward(reference, refIn, refOut, refUp)
            try backend.synchronize()
            let bstart = DispatchTime.now().uptimeNanoseconds
            let devGrads = try backward(backend, devIn, devOut, devUp)
            try backend.synchronize()
            let backwardMs = Double(DispatchTime.now().uptimeNanoseconds - bstart) / 1e6
            let pairs = zip(devGrads, refGrads).compactMap { d, r -> (Tensor, Tensor)? in
                guard let d, let r else { return nil }
                return (d, r)
            }
            rows.append(try compare(c, "backward", pairs.map(\.0), pairs.map(\.1), c.gradTolerance, backwardMs))
        } catch {
            rows.append(fail(rows.isEmpty ? "forward" : "backward", error))
        }
        return rows
    }

    private static func compare(_ c: OpCase, _ pass: String, _ got: [Tensor], _ want: [Tensor],
                                _ tol: Tolerance, _ ms: Double) throws -> CheckResult {
        guard got.count == want.count else {
            return CheckResult(op: c.op, params: c.params, pass: pass, nmse: .nan, maxAbs: .nan, tolerance: tol.description,
                               passed: false, milliseconds: ms, message: "\(got.count) outputs vs \(want.count) from the reference")
        }
        var worstNmse = 0.0, worstAbs = 0.0, passed = true
        var message = ""
        for (k, (g, w)) in zip(got, want).enumerated() {
            guard g.shape == w.shape else {
                return CheckResult(op: c.op, params: c.params, pass: pass, nmse: .nan, maxAbs: .nan, tolerance: tol.description,
                                   passed: false, milliseconds: ms, message: "output \(k): shape \(g.shape) vs reference \(w.shape)")
            }
            let cmp = Comparison.between(try g.toArray(), try w.toArray(), tolerance: tol)
            worstNmse = max(worstNmse, cmp.nmse); worstAbs = max(worstAbs, cmp.maxAbs)
            if !cmp.passes(tol) {
                passed = false
                if message.isEmpty {
                    let shown = cmp.firstMismatches.map { "[\($0.0)] got \($0.1) want \($0.2)" }.joined(separator: ", ")
                    message = "output \(k) \(g.shape): " + (cmp.invalid ?? (shown.isEmpty ? "NMSE above limit" : shown))
                }
            }
        }
        return CheckResult(op: c.op, params: c.params, pass: pass, nmse: worstNmse, maxAbs: worstAbs,
                           tolerance: tol.description, passed: passed, milliseconds: ms, message: message)
    }

    /// Finite-difference check of the CPU reference's backward, in double precision:
    /// L = Σ_k ⟨g_k, out_k⟩ for random upstream g; ∂L/∂x_i by central differences at up to
    /// `samples` seeded elements of each differentiable input, against the analytic gradient.
    public static func gradCheck(_ c: OpCase, samples: Int = 8, step: Double = 1e-6,
                                 relTolerance: Double = 1e-4, absTolerance: Double = 1e-6) -> CheckResult {
        let cpu = CPUBackend(precision: .float64)
        let start = DispatchTime.now().uptimeNanoseconds
        func row(_ passed: Bool, _ worst: Double, _ msg: String) -> CheckResult {
            CheckResult(op: c.op, params: c.params, pass: "gradcheck", nmse: 0, maxAbs: worst,
                        tolerance: String(format: "rel %.0e", relTolerance), passed: passed,
                        milliseconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6, message: msg)
        }
        guard let backward = c.backward else { return row(true, 0, "no backward") }
        do {
            let values = c.inputValues().map { $0.map(Double.init) }
            func inputs(_ v: [[Double]]) throws -> [Tensor] {
                try zip(v, c.inputs).map { try cpu.tensor(doubles: $0, shape: $1.shape) }
            }
            let x = try inputs(values)
            let out = try c.forward(cpu, x)
            var rng = SeededRandom(seed: c.seed ^ 0x96AD)
            let upstream = out.map { t in (0..<t.count).map { _ in Double(rng.uniform(-1, 1)) } }
            let up = try zip(upstream, out).map { try cpu.tensor(doubles: $0, shape: $1.shape) }
            let grads = try backward(cpu, x, out, up)
            func loss(_ v: [[Double]]) throws -> Double {
                let o = try c.forward(cpu, try inputs(v))
                var total = 0.0
                for (t, g) in zip(o, upstream) { for (a, b) in zip(try cpu.readDoubles(t), g) { total += a * b } }
                return total
            }
            var worst = 0.0
            for (i, input) in c.inputs.enumerated() where input.differentiable {
                guard i < grads.count, let g = grads[i] else { return row(false, .nan, "no gradient for input \(input.name)") }
                let analytic = try cpu.readDoubles(g)
                var pick = SeededRandom(seed: c.seed &+ UInt64(i) &* 7919)
                let count = values[i].count
                let indices = count <= samples ? Array(0..<count) : (0..<samples).map { _ in Int(pick.next() % UInt64(count)) }
                for j in indices {
                    var plus = values, minus = values
                    plus[i][j] += step; minus[i][j] -= step
                    let numeric = (try loss(plus) - loss(minus)) / (2 * step)
                    let err = abs(numeric - analytic[j])
                    worst = max(worst, err / max(abs(analytic[j]), 1e-3))
                    if err > absTolerance + relTolerance * max(abs(numeric), abs(analytic[j])) {
                        return row(false, err, "\(input.name)[\(j)]: analytic \(analytic[j]) vs numeric \(numeric)")
                    }
                }
            }
            return row(true, worst, "")
        } catch {
            return row(false, .nan, "\(error)")
        }
    }
}
