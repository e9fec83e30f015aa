import Foundation
import XCTest
@testable import RefineSeg

/// NIfTI volumes in and out of `annotate`, per-case (3-D) metrics in `evaluate`, bad volumes,
/// and `annotate --continue`.
final class VolumeTests: XCTestCase {
    func nibabelOrSkip() throws {
        try pythonOrSkip("numpy, nibabel", install: "pip install nibabel", skipped: "nibabel round trip")
    }

    func python(_ arguments: [String]) throws -> String {
        let p = try runPython([packageRoot.path + "/scripts/nifti_check.py"] + arguments)
        XCTAssertEqual(p.status, 0, "nifti_check.py \(arguments): \(p.err)")
        return p.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Axial slices fix k (rows j, columns i), coronal j (rows k, columns i), sagittal i (rows k, columns j).
    func testSliceAxesIndexTheVolume() {
        let dims = [4, 3, 2]
        let values = (0..<24).map(Float.init)   // value = i + 4 (j + 3 k)
        XCTAssertEqual(volumePlane(values[...], dims: dims, axis: .axial, slice: 1), (12..<24).map(Float.init))
        XCTAssertEqual(volumePlane(values[...], dims: dims, axis: .coronal, slice: 2), [8, 9, 10, 11, 20, 21, 22, 23])
        XCTAssertEqual(volumePlane(values[...], dims: dims, axis: .sagittal, slice: 3), [3, 7, 11, 15, 19, 23])
        XCTAssertEqual(SliceAxis.sagittal.spacing([0.9, 1.1, 2.5]), [Double(Float(0.9)), Double(Float(2.5)), Double(Float(1.1))])
    }

    /// Hand-computed per-case metrics; HD95 in voxels and millimetres from the spacing.
    func testCaseMetrics() {
        // (slices, rows, columns) 3×1×1: A at slice 0, B at slice 2; spacing 2.5 mm between slices.
        let m = CaseMetrics(name: "v", prediction: [true, false, false], label: [false, false, true], dims: [3, 1, 1], spacing: [2.5, 1, 1])
        XCTAssertEqual(m.dice, 1.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(m.iou, 0)
        XCTAssertEqual(m.hd95Voxels, 2)
        XCTAssertEqual(m.hd95MM, 5)
        // Identical masks: Dice 1, HD95 0; empty label: HD95 undefined, Dice by docs/MODEL.md's +1 rule.
        let cube = [Bool](repeating: true, count: 27)
        let same = CaseMetrics(name: "s", prediction: cube, label: cube, dims: [3, 3, 3], spacing: [1, 2, 3])
        XCTAssertEqual(same.dice, 1); XCTAssertEqual(same.iou, 1); XCTAssertEqual(same.hd95MM, 0)
        let none = CaseMetrics(name: "n", prediction: cube, label: [Bool](repeating: false, count: 27), dims: [3, 3, 3], spacing: [1, 1, 1])
        XCTAssertNil(none.hd95Voxels)
        XCTAssertEqual(none.dice, 1.0 / 28.0, accuracy: 1e-12)
        // Slices stacked back by index, crops placed at their offsets.
        var assembler = CaseAssembler()
        let at = { (s: Int) in VolumeSlice(volume: "v", slice: s, row: 1, column: 2, spacing: [2.5, 1, 1]) }
        assembler.add(at(4), height: 1, width: 1, prediction: [true], label: [false])
        assembler.add(at(6), height: 1, width: 1, prediction: [false], label: [true])
        XCTAssertEqual(assembler.cases(), [m])
        let summary = CaseMetricsSummary([m, same])
        XCTAssertEqual(summary.dice.mean!, (1.0 / 3.0 + 1) / 2, accuracy: 1e-12)
        XCTAssertEqual(summary.hd95MM.cases, 2)
    }

    /// `annotate` on NIfTI volumes (little-endian gzip float32, big-endian plain int16, a 4-D
    /// two-channel file) writes masks and probability maps that nibabel reads with the input's
    /// affine, qform/sform, codes, pixdim, units, description and shape, and whose voxels are
    /// exactly the slice-by-slice predictions.
    func testAnnotateVolumesRoundTripThroughNibabel() throws {
        try nibabelOrSkip()
        let root = try temporaryDirectory("nifti-rt")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = root.appendingPathComponent("in").path
        let input4D = root.appendingPathComponent("in4d").path
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: input4D, withIntermediateDirectories: true)
        _ = try python(["make", input])
        try FileManager.default.moveItem(atPath: input + "/four_d.nii.gz", toPath: input4D + "/four_d.nii.gz")
        for (folder, channels, names) in [(input, 1, ["le_float.nii.gz", "be_int16.nii"]), (input4D, 2, ["four_d.nii.gz"])] {
            let model = root.appendingPathComponent("m\(channels).safetensors").path
            try Fixtures.checkpoint(at: model, inChannels: channels)
            let out = root.appendingPathComponent("out\(channels)").path
            // Mirror TTA on (the default), no post-processing: the same predictions as made here.
            let r = try runCLI(["annotate", "--model", model, "--images", folder, "--out", out, "--device", "cpu", "--postprocess", "none"])
            XCTAssertEqual(r.status, 0, r.err)
            let backend = CPUBackend()
            var predictor = Predictor(model: try loadModel(model, backend: backend), backend: backend)
            predictor.mirrorTTA = true
            for name in names {
                let base = stem(name)
                let raw = root.appendingPathComponent("\(base).raw").path
                for kind in ["masks", "probabilities"] {
                    XCTAssertEqual(try python(["compare", folder + "/" + name, "\(out)/\(kind)/\(base).nii.gz", raw]), "same", "\(kind)/\(base)")
                }
                // Where the mask voxels are: the same predictions made here, slice by slice.
                let volume = try NIfTIFile.read(folder + "/" + name, channels: true)
                var planes = (0..<volume.channels).map { Array(volume.channel($0)) }
                normalizeVolume(&planes)
                var expected = [UInt8](repeating: 0, count: volume.voxelCount)
                let g = SliceAxis.axial.geometry(volume.dims)
                for k in 0..<g.slices {
                    let image = planes.flatMap { volumePlane($0[...], dims: volume.dims, axis: .axial, slice: k) }
                    let p = try predictor.probabilities(Sample(name: base, path: "", channels: channels, height: g.height, width: g.width, image: image, mask: nil))
                    for r in 0..<g.height { for c in 0..<g.width where p[r * g.width + c] > 0.5 {
                        expected[SliceAxis.axial.voxel(volume.dims, slice: k, row: r, column: c)] = 1
                    } }
                }
                let written = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))   // probabilities > 0.5, as nibabel reads them
                func differing(_ a: [UInt8]) -> Int { a.count == expected.count ? zip(a, expected).filter { $0 != $1 }.count : -1 }
                XCTAssertEqual(differing(written), 0, "\(base): voxels where nibabel's p > 0.5 differs from the prediction")
                let mask = try NIfTIFile.read("\(out)/masks/\(base).nii.gz")
                XCTAssertEqual(mask.datatype, 2)
                XCTAssertEqual(differing(mask.values.map { UInt8($0) }), 0, "mask of \(base)")
                XCTAssertTrue(expected.contains(0) && expected.contains(1), "\(base): the prediction has both classes")
            }
        }
    }

    /// Bad volumes: one clear line each, nothing written.
    func testBadVolumesFailCleanly() throws {
        let root = try temporaryDirectory("bad-volumes")
        defer { try? FileManager.default.removeItem(at: root) }
        let model = root.appendingPathComponent("m.safetensors").path
        try Fixtures.checkpoint(at: model)
        let good = NIfTIVolume(dims: [8, 6, 3], datatype: 4, values: (0..<144).map { Float($0 % 7) })
        let plain = try NIfTIFile.encode(good, bigEndian: false, slope: 0, intercept: 0, file: "x")
        func patched(_ at: Int, _ bytes: [UInt8]) -> [UInt8] { var b = plain; b.replaceSubrange(at..<(at + bytes.count), with: bytes); return b }
        let gz = try Gzip.deflate(plain, file: "x")
        let cases: [(String, String, [UInt8], [String])] = [
            ("truncated gzip", "v.nii.gz", Array(gz.prefix(gz.count / 2)), ["v.nii.gz", "truncated"]),
            ("wrong dims", "v.nii", patched(40, [9, 0]), ["v.nii", "dim[0] is 9"]),
            ("5-D", "v.nii", patched(40, [5, 0, 8, 0, 6, 0, 3, 0, 1, 0, 2, 0]), ["v.nii", "5-D volume", "not supported"]),
            ("zero-sized dimension", "v.nii", patched(42, [0, 0]), ["v.nii", "dim[1] is 0"]),
            ("zero-size file", "v.nii.gz", [], ["v.nii.gz", "empty file"]),
            ("unsupported datatype", "v.nii", patched(70, [128, 0, 24, 0]), ["v.nii", "datatype 128 is not supported"]),
        ]
        for (label, file, bytes, expect) in cases {
            let dir = root.appendingPathComponent(label.replacingOccurrences(of: " ", with: "-"))
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("in"), withIntermediateDirectories: true)
            try Fixtures.dataset(at: dir.appendingPathComponent("png"), train: 0, test: 2)   // good images beside the bad volume
            for name in ["t0.png", "t1.png"] {
                try FileManager.default.copyItem(at: dir.appendingPathComponent("png/test/images/\(name)"), to: dir.appendingPathComponent("in/\(name)"))
            }
            try Data(bytes).write(to: dir.appendingPathComponent("in/" + file))
            let out = dir.appendingPathComponent("out")
            let r = try CLIProcess.run(["annotate", "--model", model, "--images", dir.appendingPathComponent("in").path, "--out", out.path, "--device", "cpu"])
            assertCleanFailure(r, contains: expect, progressAllowed: true, label)
            XCTAssertEqual(Fixtures.files(under: out), [], "\(label): nothing written")
        }
    }

    /// `evaluate --format brats2018` prints per-case 3-D metrics next to the per-slice ones and
    /// writes per_case.csv / per_case.json; a folder of NIfTI images and masks does the same.
    func testEvaluatePerCaseOnVolumeDatasets() throws {
        let root = try temporaryDirectory("brats-eval").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let ids = try FormatFixtures.brats(root, cases: 5)
        let model = root + "/m.safetensors"
        try Fixtures.checkpoint(at: model, inChannels: 4)
        let out = root + "/eval"
        let r = try runCLI(["evaluate", "--model", model, "--data", root, "--format", "brats2018", "--out", out, "--device", "cpu"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("per case (3-D), mean ± std over"), r.out)
        XCTAssertTrue(r.out.contains("hd95"), r.out)
        let csv = try String(contentsOfFile: out + "/per_case.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "name,dice,iou,hd95_voxels,hd95_mm,label_voxels,predicted_voxels")
        let record = try JSONDecoder().decode(SplitRecord.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/split.json")))
        XCTAssertEqual(Set(csv.dropFirst().map { String($0.split(separator: ",")[0]) }), Set(record.test))
        XCTAssertTrue(Set(record.test).isSubset(of: Set(ids)))
        // Label voxels of each case are the whole tumour of its seg volume (inside the brain crop).
        for line in csv.dropFirst() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            XCTAssertEqual(Int(cells[5]), 4 * 49, String(line))   // 4 slices with brain × the 49 voxels with d ≤ 16
        }
        let summary = try JSONDecoder().decode(CaseMetricsSummary.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/per_case.json")))
        XCTAssertEqual(summary.cases, record.test.count)

        // A folder dataset of NIfTI volumes: test/images/NAME.nii.gz + test/masks/NAME.nii.gz.
        let ds = root + "/folder"
        for split in ["train", "test"] {
            for sub in ["images", "masks"] { try FileManager.default.createDirectory(atPath: "\(ds)/\(split)/\(sub)", withIntermediateDirectories: true) }
            for k in 0..<2 {
                let dims = [16, 12, 4]
                let n = dims.reduce(1, *)
                let mask = (0..<n).map { i -> Float in let x = i % 16, y = (i / 16) % 12; return (x - 8) * (x - 8) + (y - 6) * (y - 6) < 10 ? 1 : 0 }
                let image = mask.enumerated().map { Float(100 + 200 * Int($0.element) + ($0.offset * 7 + k) % 13) }
                try NIfTIFile.write(NIfTIVolume(dims: dims, datatype: 16, values: image, pixdim: [0.5, 0.5, 3]), to: "\(ds)/\(split)/images/v\(k).nii.gz")
                try NIfTIFile.write(NIfTIVolume(dims: dims, datatype: 2, values: mask, pixdim: [0.5, 0.5, 3]), to: "\(ds)/\(split)/masks/v\(k).nii.gz")
            }
        }
        let model1 = root + "/m1.safetensors"
        try Fixtures.checkpoint(at: model1)
        let r2 = try runCLI(["evaluate", "--model", model1, "--data", ds, "--out", root + "/eval2", "--device", "cpu"])
        XCTAssertEqual(r2.status, 0, r2.err)
        XCTAssertTrue(r2.out.contains("per case (3-D), mean ± std over 2 case(s)"), r2.out)
        let rows = try String(contentsOfFile: root + "/eval2/per_case.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(rows.map { String($0.split(separator: ",")[0]) }, ["v0", "v1"])
        let perSlice = try String(contentsOfFile: root + "/eval2/per_image.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(perSlice.count, 8)   // 2 volumes × 4 axial slices
    }

    /// `annotate --continue` skips images whose outputs are complete, in OUT or left in the
    /// staging folder of a killed run, and recomputes the rest.
    func testAnnotateContinueSkipsCompleteOutputs() throws {
        let root = try temporaryDirectory("continue")
        defer { try? FileManager.default.removeItem(at: root) }
        try Fixtures.dataset(at: root.appendingPathComponent("ds"), train: 0, test: 3)
        let model = root.appendingPathComponent("m.safetensors").path
        try Fixtures.checkpoint(at: model)
        let images = root.appendingPathComponent("ds/test/images").path
        let out = root.appendingPathComponent("out").path
        let args = ["annotate", "--model", model, "--images", images, "--out", out, "--device", "cpu", "--continue"]
        let first = try runCLI(args)
        XCTAssertEqual(first.status, 0, first.err)
        let review = try String(contentsOfFile: out + "/review.csv", encoding: .utf8)
        let fm = FileManager.default
        // t1's mask is gone (incomplete); t2's outputs sit in the staging folder of a dead process.
        try fm.removeItem(atPath: out + "/masks/t1.png")
        let dead = out + "/.staging-999999"
        for sub in ["masks", "probabilities", "overlays"] {
            try fm.createDirectory(atPath: "\(dead)/\(sub)", withIntermediateDirectories: true)
            try fm.moveItem(atPath: "\(out)/\(sub)/t2.png", toPath: "\(dead)/\(sub)/t2.png")
        }
        let t0 = try fm.attributesOfItem(atPath: out + "/probabilities/t0.png")[.modificationDate] as? Date
        let t2 = try fm.attributesOfItem(atPath: dead + "/probabilities/t2.png")[.modificationDate] as? Date
        Thread.sleep(forTimeInterval: 1.1)
        let second = try runCLI(args)
        XCTAssertEqual(second.status, 0, second.err)
        XCTAssertTrue(second.err.contains("(1 already complete)") || second.err.contains("(2 already complete)"), second.err)
        XCTAssertTrue(second.err.contains("images/s"), second.err)
        XCTAssertEqual(try fm.attributesOfItem(atPath: out + "/probabilities/t0.png")[.modificationDate] as? Date, t0, "t0 was not redone")
        XCTAssertEqual(try fm.attributesOfItem(atPath: out + "/probabilities/t2.png")[.modificationDate] as? Date, t2, "t2 came from the killed run")
        XCTAssertTrue(fm.fileExists(atPath: out + "/masks/t1.png"))
        XCTAssertFalse(fm.fileExists(atPath: dead))
        XCTAssertEqual(Fixtures.files(under: URL(fileURLWithPath: out)).filter { $0.contains(".staging") }, [])
        // The same ranking (entropies from the stored 16-bit probabilities agree to 1e-4 bits).
        let again = try String(contentsOfFile: out + "/review.csv", encoding: .utf8)
        func names(_ csv: String) -> [String] { csv.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[1]) } }
        XCTAssertEqual(names(again), names(review))
    }
}
