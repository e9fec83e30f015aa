import XCTest
@testable import RefineSeg

final class ShapeTests: XCTestCase {
    func testNCHWReadsRanksOneToFour() throws {
        XCTAssertTrue(Shape([2, 3, 5, 7]).nchw == (2, 3, 5, 7))
        XCTAssertTrue(Shape([3, 5, 7]).nchw == (1, 3, 5, 7))
        XCTAssertTrue(Shape([2, 3]).nchw == (2, 3, 1, 1))
        XCTAssertTrue(Shape([3]).nchw == (1, 3, 1, 1))
        XCTAssertTrue(try Shape([2, 3]).nchw(op: "t") == (2, 3, 1, 1))
    }

    /// Other ranks are refused with an error naming the op and the shape (they used to read as (1, 1, 1, 1)).
    func testNCHWRefusesOtherRanks() {
        for s in [Shape([]), Shape([1, 2, 3, 4, 5])] {
            XCTAssertThrowsError(try s.nchw(op: "sum_per_channel")) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("sum_per_channel") && message.contains("\(s)"), message)
            }
        }
    }

    func testPerChannelOpsRefuseRankFive() throws {
        for b in backendsUnderTest() {
            let x = try b.full([1, 2, 3, 4, 5], value: 1)
            XCTAssertThrowsError(try b.sumPerChannel(x), "sum_per_channel on \(b.name)")
            XCTAssertThrowsError(try b.mulChannelGate(x, try b.full([1, 2], value: 1)), "mul_channel_gate on \(b.name)")
            XCTAssertThrowsError(try b.mulPixelGate(x, try b.full([1, 1, 3, 4], value: 1)), "mul_pixel_gate on \(b.name)")
        }
    }
}
