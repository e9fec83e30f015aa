import Foundation
import XCTest
@testable import RefineSeg

/// The model's tensor names and shapes follow docs/MODEL.md (and so PyTorch's state dict).
final class ModelNamesTests: XCTestCase {
    func testNamesAndShapesFollowTheSpec() throws {
        let model = try DFRUNet(CPUBackend(), config: ModelConfig(inChannels: 3, width: 16), seed: 0)
        let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.value.shape) })
        XCTAssertEqual(shapes["enc1.conv1.conv.weight"], [16, 3, 3, 3])
        XCTAssertEqual(shapes["enc1.ca.fc1.weight"], [4, 16])
        XCTAssertEqual(shapes["bottleneck.ca.fc1.weight"], [16, 256])
        XCTAssertEqual(shapes["enc1.sa.conv.weight"], [1, 2, 7, 7])
        XCTAssertEqual(shapes["enc1.sa.bn.running_var"], [1])
        XCTAssertEqual(shapes["context.branches.3.conv.weight"], [64, 256, 3, 3])
        XCTAssertEqual(shapes["context.pool.weight"], [64, 256, 1, 1])
        XCTAssertEqual(shapes["context.fuse.conv.weight"], [256, 320, 1, 1])
        XCTAssertEqual(shapes["up4.weight"], [256, 128, 2, 2])
        XCTAssertEqual(shapes["dec1.conv1.conv.weight"], [16, 32, 3, 3])
        XCTAssertEqual(shapes["head.weight"], [1, 16, 1, 1])
        XCTAssertEqual(shapes["lac.weight"], [32, 16, 1, 1])
        if ProcessInfo.processInfo.environment["REFINESEG_PRINT_NAMES"] != nil {
            for (n, p) in model.namedParameters() { print("NAME \(n) \(p.value.shape.dims.map(String.init).joined(separator: ","))") }
        }
    }
}
