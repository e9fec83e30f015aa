import XCTest
@testable import RefineSeg
@testable import RefineSegDiagnostics

/// The op registry, run on every OpenCL device against the CPU reference, and the
/// finite-difference gradient checks of the reference itself.
final class OpRegistryTests: XCTestCase {
    func testEveryCaseAgreesWithTheCPUReferenceOnOpenCL() throws {
        let backend = try openCLBackendOrSkip()
        let cases = OpRegistry.all()
        XCTAssertGreaterThan(cases.count, 50)
        for c in cases {
            for row in OpCheck.run(c, on: backend) {
                XCTAssertTrue(row.passed, "\(row.op) \(row.params) \(row.pass): \(row.message) (nmse \(row.nmse), max \(row.maxAbs))")
            }
        }
    }

    func testCPUReferenceGradientsMatchFiniteDifferences() {
        for c in OpRegistry.all() where c.gradCheck {
            let row = OpCheck.gradCheck(c)
            XCTAssertTrue(row.passed, "\(row.op) \(row.params): \(row.message)")
        }
    }

    func testTheGradientCheckCatchesAWrongBackward() {
        // A deliberately wrong backward (factor 2 off) must fail: the check can fail.
        let bad = OpCase(op: "scale", params: "wrong backward", inputs: [OpInput("x", [2, 3])],
                         forward: { b, x in [try b.scale(x[0], by: 3)] },
                         backward: { b, _, _, g in [try b.scale(g[0], by: 6)] })
        XCTAssertFalse(OpCheck.gradCheck(bad).passed)
    }

    func testTheComparisonCatchesAWrongKernelResult() throws {
        let backend = try openCLBackendOrSkip()
        // Forward differs from the reference on purpose: CPU adds, the device subtracts.
        let bad = OpCase(op: "add", params: "mismatch", inputs: [OpInput("a", [3, 5]), OpInput("b", [3, 5])],
                         forward: { b, x in [b is CPUBackend ? try b.add(x[0], x[1]) : try b.sub(x[0], x[1])] })
        let rows = OpCheck.run(bad, on: backend)
        XCTAssertEqual(rows.count, 1)
        XCTAssertFalse(rows[0].passed)
        XCTAssertTrue(rows[0].message.contains("got"), rows[0].message)
    }

    func testRerunsAreBitIdentical() throws {
        let backend = try openCLBackendOrSkip()
        for c in OpRegistry.all() where c.op.hasPrefix("reduce") || c.op.hasPrefix("conv") {
            let inputs = try zip(c.inputValues(), c.inputs).map { try backend.tensor($0, shape: $1.shape) }
            let first = try c.forward(backend, inputs).map { try $0.toArray() }
            let second = try c.forward(backend, inputs).map { try $0.toArray() }
            XCTAssertEqual(first, second, "\(c.op) \(c.params) differs between runs")
        }
    }
}
