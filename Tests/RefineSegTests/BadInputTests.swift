import Foundation
import XCTest
@testable import RefineSeg

/// Every bad input of the issue, one table row each, run through the real `refineseg` binary:
/// a normal non-zero exit, one `error: ` line naming the file (or flag) and the problem, no crash
/// report, and nothing written to the output folder.
///
/// Rows use `--device cpu` and tiny settings so that no row depends on an OpenCL device and the
/// whole table runs in well under a minute. Build first: `swift build --build-tests`.
final class BadInputTests: XCTestCase {
    /// One row: `make` builds the broken input under `root` and returns the arguments; the
    /// command must write nothing under `root/out`.
    struct Row: Sendable {
        var name: String
        var expect: [String]
        /// Commands that report progress per image (annotate) may print it before the error line.
        var progress = false
        var make: @Sendable (URL) throws -> [String]
    }

    static let tiny = ["--device", "cpu", "--width", "4", "--size", "32", "--batch", "2", "--epochs", "1"]

    static func train(_ root: URL, _ extra: [String] = []) -> [String] {
        ["train", "--data", root.appendingPathComponent("ds").path, "--out", root.appendingPathComponent("out").path] + tiny + extra
    }

    static func evaluate(_ root: URL, model: String? = nil, split: String = "test") -> [String] {
        ["evaluate", "--model", model ?? root.appendingPathComponent("model.safetensors").path,
         "--data", root.appendingPathComponent("ds").path, "--split", split, "--out", root.appendingPathComponent("out").path, "--device", "cpu"]
    }

    static func annotate(_ root: URL, model: String? = nil, images: String? = nil) -> [String] {
        ["annotate", "--model", model ?? root.appendingPathComponent("model.safetensors").path,
         "--images", images ?? root.appendingPathComponent("ds/test/images").path, "--out", root.appendingPathComponent("out").path, "--device", "cpu"]
    }

    // MARK: building broken inputs

    static func ds(_ root: URL) -> URL { root.appendingPathComponent("ds") }
    static func path(_ root: URL, _ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func dataset(_ root: URL) throws { try Fixtures.dataset(at: ds(root)) }

    static func overwrite(_ root: URL, _ relative: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: root.appendingPathComponent(relative))
    }

    static func bytes(_ root: URL, _ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(relative)))
    }

    /// A PNG signature and IHDR chunk declaring `width`×`height` (valid CRC), then IEND: the
    /// reader must refuse it from the header alone.
    static func pngHeader(width: UInt32, height: UInt32) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be(UInt32(data.count)) + body + be(crc32(body))
        }
        return PNGFile.signature + chunk("IHDR", be(width) + be(height) + [8, 0, 0, 0, 0]) + chunk("IEND", [])
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }

    /// A safetensors file from raw header text (and `buffer` bytes after it); `length` overrides the length field.
    static func safetensors(header: String, buffer: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        var n = length ?? UInt64(h.count)
        var out = [UInt8]()
        for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
        return out + h + buffer
    }

    /// Reads the valid checkpoint at root/model.safetensors, changes it and writes it back.
    static func editCheckpoint(_ root: URL, _ change: (inout SafeTensorsFile) -> Void) throws {
        let p = path(root, "model.safetensors")
        var file = try SafeTensorsFile.read(p)
        change(&file)
        try file.write(to: p)
    }

    // MARK: the table

    static let rows: [Row] = imageRows + datasetRows + checkpointRows + numberRows + argumentRows

    static let imageRows: [Row] = [
        Row(name: "image is not a PNG", expect: ["train/images/t0.png", "not a PNG file"]) { root in
            try dataset(root); try overwrite(root, "ds/train/images/t0.png", Array("just some text\n".utf8)); return train(root)
        },
        Row(name: "mask is not a PNG", expect: ["train/masks/t3.png", "not a PNG file"]) { root in
            try dataset(root); try overwrite(root, "ds/train/masks/t3.png", [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]); return train(root)
        },
        Row(name: "truncated PNG", expect: ["train/images/t2.png", "truncated or corrupt PNG"]) { root in
            try dataset(root)
            let full = try bytes(root, "ds/train/images/t2.png")
            try overwrite(root, "ds/train/images/t2.png", Array(full.prefix(full.count / 2))); return train(root)
        },
        Row(name: "PNG cut inside the signature", expect: ["train/images/t1.png", "truncated or corrupt PNG"]) { root in
            try dataset(root); try overwrite(root, "ds/train/images/t1.png", Array(PNGFile.signature.prefix(5))); return train(root)
        },
        Row(name: "corrupt PNG data (CRC)", expect: ["train/images/t4.png", "truncated or corrupt PNG"]) { root in
            try dataset(root)
            var b = try bytes(root, "ds/train/images/t4.png")
            b[b.count - 20] ^= 0x5A   // inside the last IDAT: its CRC no longer matches
            try overwrite(root, "ds/train/images/t4.png", b); return train(root)
        },
        Row(name: "zero-size image file", expect: ["train/images/t0.png", "empty file"]) { root in
            try dataset(root); try overwrite(root, "ds/train/images/t0.png", []); return train(root)
        },
        Row(name: "PNG declaring 0×32 pixels", expect: ["train/images/t0.png", "0×32", "empty"]) { root in
            try dataset(root); try overwrite(root, "ds/train/images/t0.png", pngHeader(width: 0, height: 32)); return train(root)
        },
        Row(name: "absurd PNG dimensions", expect: ["train/images/t0.png", "100000×100000", "above the limit of 32768"]) { root in
            // 10^10 pixels: decoding would need 10 GB, so passing proves the header check came first.
            try dataset(root); try overwrite(root, "ds/train/images/t0.png", pngHeader(width: 100_000, height: 100_000)); return train(root)
        },
        Row(name: "absurd PNG pixel count", expect: ["test/images/t1.png", "30000×30000", "above the limit"], progress: true) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            try overwrite(root, "ds/test/images/t1.png", pngHeader(width: 30_000, height: 30_000)); return annotate(root)
        },
        Row(name: "image without mask and mask without image", expect: ["ds/train", "images without a mask: t1.png", "masks without an image: extra.png"]) { root in
            try dataset(root)
            try FileManager.default.moveItem(atPath: path(root, "ds/train/masks/t1.png"), toPath: path(root, "ds/train/masks/extra.png"))
            return train(root)
        },
        Row(name: "several images without masks are listed", expect: ["images without a mask: t0.png, t1.png, t2.png"]) { root in
            try dataset(root)
            for i in 0..<3 { try FileManager.default.removeItem(atPath: path(root, "ds/train/masks/t\(i).png")) }
            return train(root)
        },
        Row(name: "mask size differs from its image", expect: ["train/masks/t3.png", "mask is 16×16 but its image t3.png is 32×32"]) { root in
            try dataset(root)
            try PNGFile.write(Fixtures.pair(size: 16, seed: 9).mask, to: path(root, "ds/train/masks/t3.png")); return train(root)
        },
        Row(name: "mixed channel counts", expect: ["train/images/t2.png", "3 channel(s) but earlier images have 1"]) { root in
            try dataset(root)
            try PNGFile.write(Fixtures.pair(size: 32, channels: 3, seed: 2).image, to: path(root, "ds/train/images/t2.png")); return train(root)
        },
        Row(name: "annotate: one corrupt image among good ones", expect: ["test/images/t1.png", "not a PNG file"], progress: true) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            try overwrite(root, "ds/test/images/t1.png", Array("<html>".utf8)); return annotate(root)
        },
        Row(name: "annotate: colour images for a grey model", expect: ["test/images/t0.png", "3 channel(s) but the model takes 1"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            try PNGFile.write(Fixtures.pair(size: 32, channels: 3, seed: 2).image, to: path(root, "ds/test/images/t0.png")); return annotate(root)
        },
    ]

    static let datasetRows: [Row] = [
        Row(name: "missing dataset folder", expect: ["ds", "dataset folder not found"]) { root in train(root) },
        Row(name: "dataset path is a file", expect: ["ds", "dataset folder not found"]) { root in
            try overwrite(root, "ds", Array("x".utf8)); return train(root)
        },
        Row(name: "empty dataset folder", expect: ["ds/train/images", "folder not found"]) { root in
            try FileManager.default.createDirectory(at: ds(root), withIntermediateDirectories: true); return train(root)
        },
        Row(name: "train/images holds no images", expect: ["ds/train/images", "no images"]) { root in
            try dataset(root)
            for i in 0..<6 { try FileManager.default.removeItem(atPath: path(root, "ds/train/images/t\(i).png")) }
            try overwrite(root, "ds/train/images/notes.txt", Array("not an image".utf8))
            return train(root)
        },
        Row(name: "train/masks missing", expect: ["ds/train/masks", "folder not found"]) { root in
            try dataset(root); try FileManager.default.removeItem(atPath: path(root, "ds/train/masks")); return train(root)
        },
        Row(name: "evaluate a split with no images", expect: ["ds/test/images", "no images"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            for i in 0..<2 { try FileManager.default.removeItem(atPath: path(root, "ds/test/images/t\(i).png")) }
            return evaluate(root)
        },
        Row(name: "evaluate a split that does not exist", expect: ["ds/val/images", "folder not found"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors")); return evaluate(root, split: "val")
        },
        Row(name: "annotate a missing folder", expect: ["nowhere", "folder not found"]) { root in
            try Fixtures.checkpoint(at: path(root, "model.safetensors")); return annotate(root, images: path(root, "nowhere"))
        },
        Row(name: "one training image cannot hold one out", expect: ["ds/train", "needs at least 2 labelled images"]) { root in
            try Fixtures.dataset(at: ds(root), train: 1, test: 1); return train(root, ["--batch", "1"])
        },
        Row(name: "--steps-per-epoch 0", expect: ["--steps-per-epoch must be at least 1"]) { root in
            try dataset(root); return train(root, ["--steps-per-epoch", "0"])
        },
        Row(name: "--repeat with --steps-per-epoch", expect: ["--repeat and --steps-per-epoch"]) { root in
            try dataset(root); return train(root, ["--steps-per-epoch", "3", "--repeat", "2"])
        },
        Row(name: "pretrain: no images", expect: ["ds/train/images", "folder not found"]) { root in
            try FileManager.default.createDirectory(at: ds(root), withIntermediateDirectories: true)
            return ["pretrain", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--width", "4", "--size", "32", "--batch", "2", "--epochs", "1", "--projector", "8"]
        },
    ]

    static let checkpointRows: [Row] = [
        Row(name: "checkpoint is not safetensors", expect: ["model.safetensors", "header length", "above the limit"]) { root in
            try dataset(root); try overwrite(root, "model.safetensors", Array("this is a text file, not a checkpoint\n".utf8)); return evaluate(root)
        },
        Row(name: "checkpoint is a PNG", expect: ["model.safetensors", "header length"]) { root in
            try dataset(root); try overwrite(root, "model.safetensors", try bytes(root, "ds/test/images/t0.png")); return evaluate(root)
        },
        Row(name: "checkpoint is empty", expect: ["model.safetensors", "empty file"]) { root in
            try dataset(root); try overwrite(root, "model.safetensors", []); return evaluate(root)
        },
        Row(name: "checkpoint is missing", expect: ["model.safetensors", "cannot open"]) { root in
            try dataset(root); return evaluate(root)
        },
        Row(name: "checkpoint shorter than its length field", expect: ["model.safetensors", "shorter than the 8-byte header length"]) { root in
            try dataset(root); try overwrite(root, "model.safetensors", [1, 0, 0]); return evaluate(root)
        },
        Row(name: "truncated checkpoint", expect: ["model.safetensors", "beyond the byte buffer"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            let full = try bytes(root, "model.safetensors")
            try overwrite(root, "model.safetensors", Array(full.prefix(full.count * 2 / 3))); return evaluate(root)
        },
        Row(name: "checkpoint cut inside its header", expect: ["model.safetensors", "is beyond the file"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            try overwrite(root, "model.safetensors", Array(try bytes(root, "model.safetensors").prefix(100))); return annotate(root)
        },
        Row(name: "header length beyond the file", expect: ["model.safetensors", "header length 4096 is beyond the file of 10 bytes"]) { root in
            try dataset(root); try overwrite(root, "model.safetensors", safetensors(header: "{}", length: 4096)); return evaluate(root)
        },
        Row(name: "header asks for a huge header allocation", expect: ["model.safetensors", "above the limit of 100000000 bytes"]) { root in
            try dataset(root); try overwrite(root, "model.safetensors", safetensors(header: "{}", length: 1 << 40)); return evaluate(root)
        },
        Row(name: "header declares a 4 TB tensor", expect: ["model.safetensors", "beyond the byte buffer of 16 bytes"]) { root in
            try dataset(root)
            try overwrite(root, "model.safetensors", safetensors(header: #"{"w":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4000000000000]}}"#, buffer: [UInt8](repeating: 0, count: 16)))
            return evaluate(root)
        },
        Row(name: "header shape overflows", expect: ["model.safetensors", "more elements than an Int can count"]) { root in
            try dataset(root)
            try overwrite(root, "model.safetensors", safetensors(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,16]}}"#, buffer: [UInt8](repeating: 0, count: 16)))
            return evaluate(root)
        },
        Row(name: "header is not JSON", expect: ["model.safetensors", "header is not valid JSON"]) { root in
            try dataset(root); try overwrite(root, "model.safetensors", safetensors(header: "{\"w\": [1, 2")); return evaluate(root)
        },
        Row(name: "safetensors without RefineSeg metadata", expect: ["model.safetensors", "not a RefineSeg checkpoint"]) { root in
            try dataset(root); try overwrite(root, "model.safetensors", safetensors(header: "{}")); return evaluate(root)
        },
        Row(name: "a tensor is missing", expect: ["model.safetensors", "tensor head.weight", "is missing"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            try editCheckpoint(root) { f in f.tensors.removeAll { $0.name == "head.weight" } }
            return evaluate(root)
        },
        Row(name: "a tensor has a wrong name", expect: ["model.safetensors", "tensor head.weight", "is missing"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            try editCheckpoint(root) { f in
                f.tensors = f.tensors.map { $0.name == "head.weight" ? (name: "head.weigth", shape: $0.shape, values: $0.values) : $0 }
            }
            return evaluate(root)
        },
        Row(name: "an extra tensor the model does not have", expect: ["model.safetensors", "unexpected tensor decoder.extra"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"))
            try editCheckpoint(root) { f in f.tensors.append((name: "decoder.extra", shape: [2], values: [0, 1])) }
            return annotate(root)
        },
        Row(name: "tensor shapes of another width", expect: ["model.safetensors", "has shape", "but the model needs", "different width"]) { root in
            try dataset(root)
            try Fixtures.checkpoint(at: path(root, "model.safetensors"), width: 8, metadata: ["width": "4"]); return annotate(root)
        },
        Row(name: "checkpoint for colour images on grey data", expect: ["ds/test/images/t0.png", "1 channel(s) but the model takes 3"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "model.safetensors"), inChannels: 3); return evaluate(root)
        },
        Row(name: "--init encoder of another width", expect: ["enc.safetensors", "encoder has width 8 but --width is 4"]) { root in
            try dataset(root); try Fixtures.checkpoint(at: path(root, "enc.safetensors"), width: 8)
            return train(root, ["--init", path(root, "enc.safetensors")])
        },
        Row(name: "--init file that is not safetensors", expect: ["enc.safetensors", "empty file"]) { root in
            try dataset(root); try overwrite(root, "enc.safetensors", []); return train(root, ["--init", path(root, "enc.safetensors")])
        },
        Row(name: "--resume a folder that is not a run", expect: ["out/config.json", "not found", "training run folder"]) { root in
            ["train", "--resume", path(root, "out"), "--device", "cpu"]
        },
        Row(name: "--resume a run whose config.json is corrupt", expect: ["config.json", "not a RefineSeg run record"]) { root in
            try FileManager.default.createDirectory(at: root.appendingPathComponent("run"), withIntermediateDirectories: true)
            try overwrite(root, "run/config.json", Array("{\"config\": 3".utf8))
            return ["train", "--resume", path(root, "run"), "--device", "cpu"]
        },
        Row(name: "pretrain --resume a folder that is not a run", expect: ["out/config.json", "not found", "pre-training run folder"]) { root in
            ["pretrain", "--resume", path(root, "out"), "--device", "cpu"]
        },
        Row(name: "--resume with settings of a new run", expect: ["continues with the settings in", "only --epochs can change (remove --out, --lr, --width)"]) { root in
            ["pretrain", "--resume", path(root, "run"), "--out", path(root, "other"), "--width", "8", "--lr", "0.1", "--device", "cpu"]
        },
    ]

    static let numberRows: [Row] = ["nan", "inf", "-inf", "0", "-0.001"].map { v in
        Row(name: "--lr \(v)", expect: ["--lr must be a finite positive number"]) { root in try dataset(root); return train(root, ["--lr=\(v)"]) }
    } + ["0", "1.5", "-0.5", "nan", "inf"].map { v in
        Row(name: "--label-fraction \(v)", expect: ["--label-fraction must be in (0, 1]"]) { root in try dataset(root); return train(root, ["--label-fraction=\(v)"]) }
    } + ["40", "0", "-16", "8"].map { v in
        Row(name: "--size \(v)", expect: ["--size must be a positive multiple of 16"]) { root in try dataset(root); return train(root, ["--size=\(v)"]) }
    } + [
        Row(name: "--lac-weight nan", expect: ["--lac-weight must be finite"]) { root in try dataset(root); return train(root, ["--lac-weight=nan"]) },
        Row(name: "--lac-weight -1", expect: ["--lac-weight must be finite and ≥ 0"]) { root in try dataset(root); return train(root, ["--lac-weight=-1"]) },
        Row(name: "--epochs 0", expect: ["--epochs must be at least 1"]) { root in try dataset(root); return train(root, ["--epochs", "0"]) },
        Row(name: "--percentile-augment 2", expect: ["--percentile-augment must be in [0, 1]"]) { root in try dataset(root); return train(root, ["--percentile-augment", "2"]) },
        Row(name: "--pseudo-threshold 0.3", expect: ["--pseudo-threshold must be in [0.5, 1]"]) { root in try dataset(root); return train(root, ["--semi-supervised", "--pseudo-threshold", "0.3"]) },
        Row(name: "--teacher-momentum without --semi-supervised", expect: ["need --semi-supervised"]) { root in try dataset(root); return train(root, ["--teacher-momentum", "0.9"]) },
        Row(name: "--batch 0", expect: ["--batch must be at least 1"]) { root in try dataset(root); return train(root, ["--batch", "0"]) },
        Row(name: "--width 6", expect: ["--width must be a positive multiple of 4"]) { root in try dataset(root); return train(root, ["--width", "6"]) },
        Row(name: "settings are refused before the data is read", expect: ["--lr must be a finite positive number"]) { root in train(root, ["--lr=nan"]) },
        Row(name: "pretrain --lr inf", expect: ["--lr must be a finite positive number"]) { root in
            try dataset(root)
            return ["pretrain", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--lr=inf", "--width", "4", "--size", "32", "--batch", "2", "--epochs", "1"]
        },
        Row(name: "pretrain --lambda nan", expect: ["--lambda must be finite"]) { root in
            try dataset(root)
            return ["pretrain", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--lambda=nan", "--width", "4", "--size", "32", "--batch", "2", "--epochs", "1"]
        },
        Row(name: "study --size 40 is refused before the study folder exists", expect: ["--size must be a positive multiple of 16"]) { root in
            try dataset(root); return ["study", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--size", "40"]
        },
        Row(name: "study --seeds 0", expect: ["--seeds must be at least 1"]) { root in
            try dataset(root); return ["study", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--seeds", "0"]
        },
        Row(name: "study --fractions outside (0, 1]", expect: ["--fractions must be values in (0, 1]"]) { root in
            try dataset(root); return ["study", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--fractions", "0,1.5"]
        },
        Row(name: "study on a missing dataset", expect: ["ds", "dataset folder not found"]) { root in
            ["study", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--width", "4", "--size", "32"]
        },
        Row(name: "pretrain --batch 1", expect: ["batch of at least 2"]) { root in
            try dataset(root)
            return ["pretrain", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--batch", "1", "--width", "4", "--size", "32", "--epochs", "1"]
        },
        Row(name: "demo --epochs 0", expect: ["--epochs must be at least 1", "refineseg demo --help"]) { root in
            try dataset(root); return ["demo", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--epochs", "0"]
        },
        Row(name: "demo --width 6", expect: ["--width must be a positive multiple of 4"]) { root in
            try dataset(root); return ["demo", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--width", "6"]
        },
        Row(name: "study --fractions with a word", expect: ["'0.5,half' is invalid for '--fractions", "'half' is not a number"]) { root in
            try dataset(root)
            return ["study", "--data", path(root, "ds"), "--out", path(root, "out"), "--device", "cpu", "--fractions", "0.5,half"]
        },
    ]

    static let argumentRows: [Row] = [
        Row(name: "--device names no kind of device", expect: ["'gpu7' is invalid for '--device", "a device index", "refineseg train --help"]) { root in
            try dataset(root); return train(root, ["--device", "gpu7"])
        },
        Row(name: "a number option given a word", expect: ["--epochs", "refineseg train --help"]) { root in
            try dataset(root); return train(root, ["--epochs", "many"])
        },
        Row(name: "missing required option", expect: ["--model", "refineseg evaluate --help"]) { root in
            ["evaluate", "--data", path(root, "ds"), "--out", path(root, "out")]
        },
    ]

    // MARK: the test

    func testEveryBadInputGivesOneClearErrorAndWritesNothing() throws {
        _ = try CLIProcess.binary()
        var failures = [String]()
        for row in Self.rows {
            let root = try temporaryDirectory("bad-input")
            defer { try? FileManager.default.removeItem(at: root) }
            let args = try row.make(root)
            let result = try CLIProcess.run(args, timeout: 120)
            let start = testRun?.failureCount ?? 0
            assertCleanFailure(result, contains: row.expect, progressAllowed: row.progress, row.name)
            let written = Fixtures.files(under: root.appendingPathComponent("out"))
            XCTAssertEqual(written, [], "\(row.name): wrote \(written) before failing")
            let ok = (testRun?.failureCount ?? 0) == start
            if !ok { failures.append(row.name) }
            print("\(ok ? "ok  " : "FAIL") \(row.name): status \(result.status): \(result.errLines.last ?? "")")
        }
        XCTAssertEqual(failures, [], "rows that failed")
        XCTAssertGreaterThanOrEqual(Self.rows.count, 60)
    }

    /// Masks without lesion pixels are allowed: training and evaluation succeed and say how many there are.
    func testMasksWithoutLesionPixelsAreAllowedCountedAndReported() throws {
        _ = try CLIProcess.binary()
        let root = try temporaryDirectory("empty-masks")
        defer { try? FileManager.default.removeItem(at: root) }
        try Fixtures.dataset(at: Self.ds(root))
        for (split, i) in [("train", 2), ("train", 4), ("test", 1)] {
            try PNGFile.write(Fixtures.pair(size: 32, seed: 77, lesion: false).mask, to: Self.path(root, "ds/\(split)/masks/t\(i).png"))
        }
        let train = try CLIProcess.run(Self.train(root), timeout: 300)
        XCTAssertEqual(train.status, 0, train.err)
        XCTAssertTrue(train.out.contains("2 mask(s) without lesion pixels (allowed): t2, t4"), train.out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: Self.path(root, "out/model.safetensors")))
        let eval = try CLIProcess.run(["evaluate", "--model", Self.path(root, "out/model.safetensors"), "--data", Self.path(root, "ds"),
                                       "--out", Self.path(root, "eval"), "--device", "cpu"], timeout: 300)
        XCTAssertEqual(eval.status, 0, eval.err)
        XCTAssertTrue(eval.out.contains("1 mask(s) without lesion pixels (allowed): t1"), eval.out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: Self.path(root, "eval/metrics.json")))
    }
}
