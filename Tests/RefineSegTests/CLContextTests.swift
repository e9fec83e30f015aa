import XCTest
@testable import RefineSeg

/// `CLContext` lifetimes and its checked host-to-`cl_int` conversions.
final class CLContextTests: XCTestCase {
    /// Opens a backend, builds a program, allocates, launches and reads, then drops everything.
    private func cycle() throws {
        let backend = try CLBackend()
        let x = try backend.tensor((0..<65536).map { Float($0 % 7) }, shape: [16, 4096])
        let y = try backend.add(x, x)
        XCTAssertEqual(try backend.read(try backend.reduce(y, axes: 0..<2, kind: .sum)).first, 2 * Float((0..<65536).reduce(0) { $0 + $1 % 7 }))
    }

    /// Dropping backends releases their contexts (deinit runs: nothing keeps them alive) and the
    /// resident set does not grow with the number of backends opened and dropped.
    func testDroppedBackendsReleaseTheirContexts() throws {
        _ = try openCLBackendOrSkip()
        let baseline = CLContext.live
        for _ in 0..<3 { try cycle() }                // first-use allocations of the driver
        XCTAssertEqual(CLContext.live, baseline, "a dropped backend's context is still alive")
        guard let before = Soak.residentBytes() else { throw XCTSkip("no /proc/self/statm: resident memory not measurable here") }
        let cycles = 20
        for _ in 0..<cycles { try cycle() }
        XCTAssertEqual(CLContext.live, baseline)
        let after = try XCTUnwrap(Soak.residentBytes())
        let perCycle = Double(after - before) / Double(cycles)
        print(String(format: "resident set over %d backends: %+.1f MiB (%+.0f KiB per backend)", cycles,
                     Double(after - before) / 1048576, perCycle / 1024))
        XCTAssertLessThan(perCycle, 256 * 1024, "each opened and dropped backend leaves \(Int(perCycle / 1024)) KiB behind")
    }

    func testKernelIntArgumentsOutside32BitsAreRefused() throws {
        XCTAssertEqual(try CLContext.clInt(Int(Int32.max), op: "k", argument: 2), Int32.max)
        XCTAssertEqual(try CLContext.clInt(-5, op: "k", argument: 2), -5)
        XCTAssertThrowsError(try CLContext.clInt(Int(Int32.max) + 1, op: "add", argument: 3)) { error in
            XCTAssertEqual("\(error)", "[add] kernel argument 3 = 2147483648 does not fit in a 32-bit OpenCL int (sizes are limited to 2^31 - 1)")
        }
    }

    /// 2^31 elements: refused before any allocation, by the index limit where the device could
    /// allocate that much (GPUs), else by the device's allocation limit.
    func testTensorsBeyond32BitIndexingAreRefused() throws {
        let backend = try openCLBackendOrSkip()
        let shape: Shape = [1 << 16, 1 << 15 + 1]
        let limit = backend.info.maxAllocationBytes
        XCTAssertThrowsError(try backend.empty(shape, op: "upload")) { error in
            if limit <= 0 || shape.count * 4 <= limit {
                XCTAssertEqual("\(error)", "[upload] tensor [65536, 32769] has 2147549184 elements; OpenCL kernels index below 2^31")
            } else {
                XCTAssert("\(error)".hasPrefix("[upload] out of device memory: \(shape.count * 4) bytes requested"), "\(error)")
            }
        }
        XCTAssertEqual(backend.memoryStats?.inUse, 0, "nothing was allocated")
    }
}
