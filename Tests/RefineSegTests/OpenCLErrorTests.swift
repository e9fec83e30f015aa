import XCTest
@testable import RefineSeg

/// Bad device choices, missing platforms, kernel build failures and shape mismatches
/// each give one clear error.
final class OpenCLErrorTests: XCTestCase {
    func testUnknownDeviceIndexIsRefusedWithTheRange() throws {
        _ = try openCLBackendOrSkip()
        XCTAssertThrowsError(try CLBackend(device: 99)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("--device 99 names no device"), text)
            XCTAssertTrue(text.contains("numbered 0 to"), text)
        }
    }

    func testMissingPlatformSaysHowToInstallOne() throws {
        let empty = try temporaryDirectory("no-icd")
        let result = try runCLI(["devices"], environment: ["OCL_ICD_VENDORS": empty.path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.err.contains("no OpenCL platform found"), result.err)
        XCTAssertTrue(result.err.contains("pocl-opencl-icd"), result.err)
        XCTAssertEqual(result.err.split(separator: "\n").count, 1, "one line: \(result.err)")
    }

    func testKernelBuildFailureShowsTheLog() throws {
        let backend = try openCLBackendOrSkip()
        // A macro the kernel file does not expect turns valid source into invalid source.
        XCTAssertThrowsError(try backend.ctx.program("elementwise", options: "-Dfloat=this_is_not_a_type")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("clBuildProgram failed with CL_BUILD_PROGRAM_FAILURE"), text)
            XCTAssertTrue(text.contains("build log:"), text)
            XCTAssertTrue(text.contains("this_is_not_a_type"), text)
        }
    }

    func testShapeMismatchNamesBothShapes() throws {
        for backend in [CPUBackend() as Backend] + ((try? CLBackend()).map { [$0 as Backend] } ?? []) {
            let a = try backend.zeros([2, 3, 4, 5]), b = try backend.zeros([2, 3, 5, 4])
            XCTAssertThrowsError(try backend.add(a, b)) { error in
                XCTAssertEqual("\(error)", "[add] shape mismatch: [2, 3, 4, 5] vs [2, 3, 5, 4]")
            }
        }
    }

    func testTensorsOfAnotherBackendAreRefused() throws {
        let cl = try openCLBackendOrSkip()
        let cpu = CPUBackend()
        let t = try cpu.zeros([3])
        XCTAssertThrowsError(try cl.relu(t))
    }
}
