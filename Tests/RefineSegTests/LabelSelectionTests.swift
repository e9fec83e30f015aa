import Foundation
import XCTest
@testable import RefineSeg

/// Which images a label fraction labels (`LabelSelection`, `TrainingSplit`, `suggestedFiles`).
final class LabelSelectionTests: XCTestCase {
    /// Three kinds of image, `perKind` of each, slightly different within a kind: "flat" (a dark
    /// noisy field), "half" (a bright half on a dark one) and "checker" (a fine checkerboard).
    static func clusteredSamples(perKind: Int, size: Int = 24, seed: UInt64 = 1) -> [Sample] {
        var rng = SeededRandom(seed: seed)
        var out = [Sample]()
        for kind in ["flat", "half", "checker"] {
            for i in 0..<perKind {
                var image = [Float](repeating: 0, count: size * size)
                for y in 0..<size { for x in 0..<size {
                    let noise = rng.uniform(-0.03, 0.03)
                    switch kind {
                    case "flat": image[y * size + x] = 0.2 + noise
                    case "half": image[y * size + x] = (x < size / 2 ? 0.9 : 0.1) + noise
                    default: image[y * size + x] = ((x + y) % 2 == 0 ? 0.8 : 0.2) + noise
                    }
                } }
                out.append(Sample(name: "\(kind)\(i)", path: "synthetic/\(kind)\(i).png", channels: 1, height: size, width: size,
                                  image: image, mask: image.map { $0 > 0.5 ? 1 : 0 }))
            }
        }
        return out
    }

    /// `rule`'s order of `clusteredSamples`' groups labelling 3, checked (the same for the seed, a
    /// permutation, one image of each kind first); the 3 picks, sorted.
    static func oneOfEachKind(_ rule: LabelSelection, _ groups: [[Sample]], seed: UInt64,
                              file: StaticString = #filePath, line: UInt = #line) -> [Int] {
        let order = rule.order(groups, labelling: 3, seed: seed)
        XCTAssertEqual(order, rule.order(groups, labelling: 3, seed: seed), "seed \(seed) repeats", file: file, line: line)
        XCTAssertEqual(order.sorted(), Array(groups.indices), "a permutation of the groups", file: file, line: line)
        let kinds = Set(order.prefix(3).map { groups[$0][0].name.filter(\.isLetter) })
        XCTAssertEqual(kinds, ["flat", "half", "checker"], "seed \(seed): one image of each kind", file: file, line: line)
        return order.prefix(3).sorted()
    }

    func testDiverseSelectionIsDeterministicForASeedAndCoversEveryCluster() {
        let samples = Self.clusteredSamples(perKind: 5)
        let groups = TrainingSplit.groups(samples)
        var picks = Set<[Int]>()   // (sorted picks)
        for seed: UInt64 in 0..<12 {
            picks.insert(Self.oneOfEachKind(.diverse, groups, seed: seed))
        }
        XCTAssertEqual(picks.count, 1, "each cluster's most typical image, whatever the seed")
        // Where the data offers several equally good choices (12 points on a circle) the seed picks one.
        let ring = (0..<12).map { i in [cos(Double(i) * .pi / 6), sin(Double(i) * .pi / 6)] }
        let ringPicks = Set((0..<8).map { LabelSelection.medoids(ring, count: 2, seed: UInt64($0)).sorted() })
        XCTAssertGreaterThan(ringPicks.count, 1)
        XCTAssertTrue(ringPicks.allSatisfy { $0.count == 2 && $0[0] != $0[1] })
        // The paper's rule labels two images of one kind for some seed.
        let randomCovers = (0..<12).map { seed in
            Set(LabelSelection.random.order(groups, labelling: 3, seed: UInt64(seed)).prefix(3).map { groups[$0][0].name.filter(\.isLetter) }).count
        }
        XCTAssertTrue(randomCovers.contains { $0 < 3 })
    }

    /// `stratified`: one image of each of `diverse`'s clusters, the member with the most content
    /// (ties: the seed's shuffle decides, so the seed still varies the picks among equals); one
    /// label is the image with the most content, whatever the seed.
    func testStratifiedSelectionTakesTheRichestImageOfEachCluster() {
        // The "half" images with a bright part narrowing from 8 to 4 of 24 columns: half0 has the
        // most content; the flat and checker images have none (a tie within each kind).
        let samples = Self.clusteredSamples(perKind: 5).map { s -> Sample in
            guard s.name.hasPrefix("half"), let i = Int(s.name.dropFirst(4)) else { return s }
            var s = s
            for y in 0..<24 { for x in (8 - i)..<12 { s.image[y * 24 + x] -= 0.8 } }
            return s
        }
        let groups = TrainingSplit.groups(samples)
        let content = groups.map { LabelSelection.content($0[0]) }
        let richest = content.indices.max { content[$0] < content[$1] }!
        XCTAssertEqual(groups[richest][0].name, "half0", "the widest bright part; noise and a fine checker do not stand out")
        for (i, g) in groups.enumerated() where !g[0].name.hasPrefix("half") { XCTAssertEqual(content[i], 0, g[0].name) }
        var picks = Set<[Int]>(), singles = Set<Int>()
        for seed: UInt64 in 0..<12 {
            let three = Self.oneOfEachKind(.stratified, groups, seed: seed)
            XCTAssertTrue(three.contains(richest), "seed \(seed): the half image with the most content")
            picks.insert(three)
            let one = LabelSelection.stratified.order(groups, labelling: 1, seed: seed)
            XCTAssertEqual(one.first, richest, "seed \(seed): one label goes to the image with the most content")
            XCTAssertEqual(one.sorted(), Array(groups.indices))
            singles.insert(LabelSelection.random.order(groups, labelling: 1, seed: seed)[0])
            XCTAssertEqual(LabelSelection.stratified.order(groups, labelling: groups.count, seed: seed).sorted(), Array(groups.indices))
        }
        XCTAssertGreaterThan(picks.count, 1, "among equally rich images (flat, checker) the seed draws")
        XCTAssertGreaterThan(singles.count, 1, "random's single pick does vary with the seed")
    }

    /// `content`: the share of pixels that stand out from the background, either polarity,
    /// independent of the intensity offset, scaled to the noise; none on pure noise.
    func testContentMeasuresTheShareOfPixelsThatStandOut() {
        func field(blobs: Int, polarity: Float, noise: Float, offset: Float, seed: UInt64) -> Sample {
            let size = 96
            var rng = SeededRandom(seed: seed)
            var image = [Float](repeating: 0, count: size * size)
            for i in image.indices { image[i] = offset + rng.uniform(-noise, noise) }
            for b in 0..<blobs {
                let cy = 10 + (b / 4) * 22, cx = 10 + (b % 4) * 22
                for y in 0..<size { for x in 0..<size where (y - cy) * (y - cy) + (x - cx) * (x - cx) <= 36 {
                    image[y * size + x] += polarity * 0.5
                } }
            }
            return Sample(name: "f", path: "synthetic/f.png", channels: 1, height: size, width: size, image: image, mask: nil)
        }
        let empty = LabelSelection.content(field(blobs: 0, polarity: 1, noise: 0.05, offset: 0.3, seed: 1))
        XCTAssertLessThan(empty, 0.01, "noise alone")
        let few = LabelSelection.content(field(blobs: 4, polarity: 1, noise: 0.05, offset: 0.3, seed: 2))
        let many = LabelSelection.content(field(blobs: 16, polarity: 1, noise: 0.05, offset: 0.3, seed: 3))
        let dark = LabelSelection.content(field(blobs: 16, polarity: -1, noise: 0.05, offset: 0.8, seed: 3))
        let shifted = LabelSelection.content(field(blobs: 16, polarity: 1, noise: 0.05, offset: -2, seed: 3))
        let quiet = LabelSelection.content(field(blobs: 16, polarity: 1, noise: 0.01, offset: 0.3, seed: 3))
        let blobShare = Double(16 * 113) / Double(96 * 96)   // 113 pixels within radius 6
        XCTAssertGreaterThan(few, empty + 0.02)
        XCTAssertGreaterThan(many, few * 2.5, "four times the blobs")
        XCTAssertEqual(many, blobShare, accuracy: 0.08, "about the blobs' area (the blur widens them a little)")
        XCTAssertEqual(dark, many, accuracy: 0.03, "dark objects count as bright ones do")
        XCTAssertEqual(shifted, many, accuracy: 0.005, "an intensity offset changes (almost) nothing")
        XCTAssertTrue(quiet > many && quiet < 2 * blobShare, "less noise: the blurred edges count further out, still about the blobs")
    }

    /// `random` is the seeded shuffle of earlier versions, unchanged (runs of earlier versions reproduce).
    func testRandomSelectionIsTheEarlierShuffle() throws {
        let samples = syntheticSamples(count: 13, size: 16, seed: 4)
        for seed: UInt64 in [0, 4, 9] {
            var groups = TrainingSplit.groups(samples)
            var rng = SeededRandom(seed: seed ^ 0xF4AC)
            groups.sort { $0[0].groupID < $1[0].groupID }
            groups.shuffle(using: &rng)
            let split = try TrainingSplit(train: samples, validation: [], labelFraction: 0.2, seed: seed, source: "synthetic", selection: .random)
            XCTAssertEqual(split.labelled.map(\.name), groups.prefix(3).flatMap { $0 }.map(\.name).sorted())
            XCTAssertEqual(split.unlabelled.map(\.name), groups.dropFirst(3).flatMap { $0 }.map(\.name))
            XCTAssertEqual(split.selection, .random)
        }
    }

    func testGroupsStayTogetherAndAtLeastOneIsLabelled() throws {
        // 6 cases of 3 slices each; two cases per kind.
        let samples = Self.clusteredSamples(perKind: 6).enumerated().map { i, s -> Sample in
            var s = s; s.group = "case\(i / 3)"; return s
        }
        for selection in LabelSelection.allCases {
            for seed: UInt64 in 0..<4 {
                let split = try TrainingSplit(train: samples, validation: nil, labelFraction: 0.4, seed: seed, source: "synthetic", selection: selection)
                let labelled = Set(split.labelled.map(\.groupID)), unlabelled = Set(split.unlabelled.map(\.groupID))
                let validation = Set(split.validation.map(\.groupID))
                XCTAssertTrue(labelled.isDisjoint(with: unlabelled) && labelled.isDisjoint(with: validation) && unlabelled.isDisjoint(with: validation))
                XCTAssertEqual(labelled.count, 2, "\(selection) seed \(seed): 40 % of the 5 cases left after the hold-out")
                XCTAssertEqual(split.labelled.count, 6, "whole cases")
                XCTAssertTrue(split.unlabelled.allSatisfy { $0.mask == nil })
                let tiny = try TrainingSplit(train: samples, validation: [], labelFraction: 0.001, seed: seed, source: "synthetic", selection: selection)
                XCTAssertEqual(Set(tiny.labelled.map(\.groupID)).count, 1, "at least one case")
                let all = try TrainingSplit(train: samples, validation: [], labelFraction: 1, seed: seed, source: "synthetic", selection: selection)
                XCTAssertEqual(all.labelled.map(\.name), samples.map(\.name).sorted())
            }
        }
    }

    func testSuggestedFilesAreWholeGroupsOncePerFile() {
        let samples = Self.clusteredSamples(perKind: 4).enumerated().map { i, s -> Sample in
            var s = s; s.group = "vol\(i / 2)"; s.path = "synthetic/vol\(i / 2).nii.gz"; return s
        }
        let files = suggestedFiles(samples, fraction: 0.5, seed: 3)
        XCTAssertEqual(files.count, 3, "half of the 6 volumes")
        XCTAssertEqual(Set(files).count, files.count)
        XCTAssertEqual(files, suggestedFiles(samples, fraction: 0.5, seed: 3))
        XCTAssertEqual(suggestedFiles(samples, fraction: 0.5, count: 1, seed: 3).count, 1)
        XCTAssertEqual(suggestedFiles(samples, fraction: 0.01, seed: 3).count, 1)
    }

    /// Configs and study folders written before the option keep the shuffle their runs used.
    func testOldRecordsMeanTheRandomRule() throws {
        func withoutSelection<T: Codable>(_ value: T) throws -> T {
            var json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value)) as! [String: Any]
            XCTAssertEqual(json["labelSelection"] as? String, LabelSelection.default.rawValue, "new records start at the default")
            json["labelSelection"] = nil
            return try JSONDecoder().decode(T.self, from: try JSONSerialization.data(withJSONObject: json))
        }
        XCTAssertNil(try withoutSelection(TrainConfig(data: "d", out: "o")).labelSelection)
        XCTAssertNil(try withoutSelection(StudySettings(data: "d", out: "o")).labelSelection)
    }
}
