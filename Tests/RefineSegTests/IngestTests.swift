import Foundation
import XCTest
@testable import RefineSeg

/// `refineseg ingest`: corrected masks and accepted predictions enter the training split with
/// provenance; held-out images, mismatched masks and missing images are refused before any write.
final class IngestTests: XCTestCase {
    /// A copy of data/sample whose four kdsb18_y000_* training tiles are unlabelled.
    func loopDataset() throws -> String {
        let root = try temporaryDirectory("ingest").path
        let data = root + "/data"
        try FileManager.default.copyItem(atPath: packageRoot.path + "/data/sample", toPath: data)
        try FileManager.default.createDirectory(atPath: data + "/unlabeled/images", withIntermediateDirectories: true)
        for x in ["000", "128", "256", "384"] {
            try FileManager.default.moveItem(atPath: "\(data)/train/images/kdsb18_y000_x\(x).png", toPath: "\(data)/unlabeled/images/kdsb18_y000_x\(x).png")
            try FileManager.default.removeItem(atPath: "\(data)/train/masks/kdsb18_y000_x\(x).png")
        }
        return data
    }

    func testCorrectionsAndAcceptedPredictionsEnterTrainingWithProvenance() throws {
        let data = try loopDataset()
        let root = (data as NSString).deletingLastPathComponent
        let fm = FileManager.default
        // The annotator corrected x000 (here: the true mask, stored 0/1 to check re-encoding).
        try fm.createDirectory(atPath: root + "/corrected", withIntermediateDirectories: true)
        let truth = try PNGFile.read(packageRoot.path + "/data/sample/train/masks/kdsb18_y000_x000.png")
        try PNGFile.write(RawImage(width: truth.width, height: truth.height, channels: 1, bitDepth: 8,
                                   samples: truth.samples.map { $0 != 0 ? 1 : 0 }), to: root + "/corrected/kdsb18_y000_x000.png")
        // The review page: x128 accepted (its predicted mask in annotations/masks), x256 needs correction, x000 accepted too
        // (the corrected mask wins), x384 undecided.
        try fm.createDirectory(atPath: root + "/annotations/masks", withIntermediateDirectories: true)
        var predicted = [UInt16](repeating: 0, count: 128 * 128)
        for i in 0..<500 { predicted[i] = 255 }
        try PNGFile.write(RawImage(width: 128, height: 128, channels: 1, bitDepth: 8, samples: predicted), to: root + "/annotations/masks/kdsb18_y000_x128.png")
        try """
        rank,name,decision,mean_entropy_bits,lesion_area_px,components
        1,kdsb18_y000_x256,needs_correction,0.5,10,1
        2,kdsb18_y000_x128,accept,0.4,500,1
        3,kdsb18_y000_x000,accept,0.3,10,1
        4,kdsb18_y000_x384,undecided,0.2,10,1

        """.write(toFile: root + "/decisions.csv", atomically: true, encoding: .utf8)

        let before = try DatasetFolder(data).load(split: "train", masks: true).count
        let report = try ingestLabels(data: data, images: data + "/unlabeled/images", corrections: root + "/corrected",
                                      decisions: root + "/decisions.csv", annotations: root + "/annotations")
        XCTAssertEqual(report.added.map(\.name), ["kdsb18_y000_x000", "kdsb18_y000_x128"])
        XCTAssertEqual(report.added.map(\.source), [.corrected, .acceptedPrediction])
        XCTAssertEqual(report.added[1].lesionPixels, 500)
        XCTAssertEqual(report.awaitingCorrection, ["kdsb18_y000_x256"])

        let train = try DatasetFolder(data).load(split: "train", masks: true)
        XCTAssertEqual(train.count, before + 2)
        let mask = try PNGFile.read(data + "/train/masks/kdsb18_y000_x000.png")
        XCTAssertEqual(mask.samples, truth.samples.map { $0 != 0 ? 255 : 0 })
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: data + "/train/images/kdsb18_y000_x000.png")),
                       try Data(contentsOf: packageRoot.appendingPathComponent("data/sample/train/images/kdsb18_y000_x000.png")))
        XCTAssertEqual(try DatasetFolder.imageNames(in: data + "/unlabeled/images"), ["kdsb18_y000_x256.png", "kdsb18_y000_x384.png"])
        let provenance = try String(contentsOfFile: data + "/provenance.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(provenance.count, 3)
        XCTAssertTrue(provenance[1].hasPrefix("kdsb18_y000_x000,corrected,\(root)/corrected/kdsb18_y000_x000.png,"), String(provenance[1]))
        XCTAssertTrue(provenance[2].hasPrefix("kdsb18_y000_x128,accepted_prediction,"), String(provenance[2]))

        // A second correction of an ingested image replaces its mask (the image is now in train/).
        try PNGFile.write(RawImage(width: 128, height: 128, channels: 1, bitDepth: 8, samples: predicted), to: root + "/corrected/kdsb18_y000_x000.png")
        let again = try ingestLabels(data: data, images: data + "/train/images", corrections: root + "/corrected")
        XCTAssertEqual(again.added.map(\.replaced), [true])
        XCTAssertEqual(try DatasetFolder(data).load(split: "train", masks: true).count, before + 2)
        XCTAssertEqual(try String(contentsOfFile: data + "/provenance.csv", encoding: .utf8).split(separator: "\n").count, 4)
    }

    func testRefusalsWriteNothing() throws {
        let data = try loopDataset()
        let root = (data as NSString).deletingLastPathComponent
        let fm = FileManager.default
        func attempt(_ files: [(String, RawImage)], images: String, expect: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let dir = root + "/c-\(UUID().uuidString)"
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (name, image) in files { try PNGFile.write(image, to: dir + "/" + name) }
            let masksBefore = try fm.contentsOfDirectory(atPath: data + "/train/masks").sorted()
            XCTAssertThrowsError(try ingestLabels(data: data, images: images, corrections: dir), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(expect), "\(error)", file: file, line: line)
            }
            XCTAssertEqual(try fm.contentsOfDirectory(atPath: data + "/train/masks").sorted(), masksBefore, file: file, line: line)
            XCTAssertFalse(fm.fileExists(atPath: data + "/provenance.csv"), file: file, line: line)
        }
        let good = RawImage(width: 128, height: 128, channels: 1, bitDepth: 8, samples: [UInt16](repeating: 255, count: 128 * 128))
        let small = RawImage(width: 64, height: 128, channels: 1, bitDepth: 8, samples: [UInt16](repeating: 255, count: 64 * 128))
        // A good mask first, then the bad one: the good one must not be written either.
        try attempt([("kdsb18_y000_x000.png", good), ("kdsb18_y000_x128.png", small)], images: data + "/unlabeled/images",
                    expect: "kdsb18_y000_x128.png: mask is 64×128 but its image")
        try attempt([("kdsb18_y000_x000.png", good), ("kdsb18_y256_x256.png", good)], images: data + "/unlabeled/images",
                    expect: "kdsb18_y256_x256 is a test image")
        try attempt([("nothere.png", good)], images: data + "/unlabeled/images", expect: "no image nothere.png/.jpg")
    }
}
