import Foundation
import XCTest
@testable import RefineSeg

/// Fixtures and a process runner shared by BadInputTests, FaultTests and SoakTests: small
/// generated datasets written as real PNG files, checkpoints written through the library,
/// and the `refineseg` binary run as a child process (so exit status, signals and stderr are real).
enum Fixtures {
    /// A grey (or RGB) image with a bright disc, and its 0/255 mask; `lesion: false` gives an empty mask.
    static func pair(size: Int, channels: Int = 1, seed: UInt64, lesion: Bool = true) -> (image: RawImage, mask: RawImage) {
        var rng = SeededRandom(seed: seed)
        let cy = rng.uniform(0.3, 0.7) * Float(size), cx = rng.uniform(0.3, 0.7) * Float(size)
        let r = Float(size) * rng.uniform(0.12, 0.25)
        var image = [UInt16](), mask = [UInt16]()
        for y in 0..<size {
            for x in 0..<size {
                let inside = lesion && (Float(y) - cy) * (Float(y) - cy) + (Float(x) - cx) * (Float(x) - cx) < r * r
                mask.append(inside ? 255 : 0)
                for _ in 0..<channels { image.append(UInt16((inside ? 170 : 60) + rng.uniform(-25, 25))) }
            }
        }
        return (RawImage(width: size, height: size, channels: channels, bitDepth: 8, samples: image),
                RawImage(width: size, height: size, channels: 1, bitDepth: 8, samples: mask))
    }

    /// Writes DATASET/{train,test}/{images,masks}/tN.png: `train` and `test` pairs of `size`².
    static func dataset(at root: URL, train: Int = 6, test: Int = 2, size: Int = 32) throws {
        for (split, count) in [("train", train), ("test", test)] {
            for sub in ["images", "masks"] {
                try FileManager.default.createDirectory(at: root.appendingPathComponent("\(split)/\(sub)"), withIntermediateDirectories: true)
            }
            for i in 0..<count {
                let (image, mask) = pair(size: size, seed: UInt64(i) &+ (split == "test" ? 1000 : 0))
                try PNGFile.write(image, to: root.appendingPathComponent("\(split)/images/t\(i).png").path)
                try PNGFile.write(mask, to: root.appendingPathComponent("\(split)/masks/t\(i).png").path)
            }
        }
    }

    /// A valid width-`width` checkpoint (freshly initialised weights) with `metadata` overriding the model's.
    static func checkpoint(at path: String, width: Int = 4, inChannels: Int = 1, metadata: [String: String] = [:]) throws {
        let model = try DFRUNet(CPUBackend(), config: ModelConfig(inChannels: inChannels, width: width), seed: 1)
        try Checkpoint.save(model, metadata: model.config.metadata.merging(metadata) { $1 }, to: path)
    }

    /// Every regular file under `dir` (relative paths), empty when `dir` does not exist.
    static func files(under dir: URL) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir.path) else { return [] }
        return e.compactMap { $0 as? String }.filter { name in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path, isDirectory: &isDir) && !isDir.boolValue
        }.sorted()
    }
}

/// A running `refineseg` child process whose stdout and stderr are collected in the background.
/// `@unchecked Sendable`: the reader threads touch only the pipes and `outData`/`errData` (under `lock`).
final class CLIProcess: @unchecked Sendable {
    let process = Process()
    private let outPipe = Pipe(), errPipe = Pipe()
    private let lock = NSLock()
    private var outData = Data(), errData = Data()
    private let drained = DispatchGroup()

    /// The built binary, or a skip that says how to build it.
    static func binary() throws -> String {
        let candidates = [".build/debug/refineseg", ".build/release/refineseg"].map { packageRoot.appendingPathComponent($0).path }
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("refineseg binary not built (run `swift build` first)")
        }
        return binary
    }

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["POCL_CACHE_DIR"] = env["POCL_CACHE_DIR"] ?? NSHomeDirectory() + "/.cache/refineseg/pocl"
        process.environment = env
        process.standardOutput = outPipe
        process.standardError = errPipe
        for (pipe, isOut) in [(outPipe, true), (errPipe, false)] {
            drained.enter()
            Thread.detachNewThread { [self] in
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                lock.lock(); if isOut { outData = data } else { errData = data }; lock.unlock()
                drained.leave()
            }
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the process (killing it after `timeout` seconds) and returns what it did.
    func wait(timeout: TimeInterval = 300) -> CLIResult {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        let timedOut = process.isRunning
        if timedOut { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        drained.wait()
        lock.lock(); defer { lock.unlock() }
        return CLIResult(status: process.terminationStatus,
                         signalled: process.terminationReason == .uncaughtSignal,
                         timedOut: timedOut,
                         out: String(decoding: outData, as: UTF8.self), err: String(decoding: errData, as: UTF8.self))
    }

    /// Runs `arguments` to the end.
    static func run(_ arguments: [String], timeout: TimeInterval = 300) throws -> CLIResult {
        try CLIProcess(arguments).wait(timeout: timeout)
    }
}

struct CLIResult {
    var status: Int32
    /// Ended by a signal (a crash, or our kill), not by exit().
    var signalled: Bool
    var timedOut: Bool
    var out: String
    var err: String

    var errLines: [String] { err.split(separator: "\n").map(String.init) }
}

/// Asserts what every failure must look like: a normal non-zero exit, exactly one
/// `error: ` line on stderr (progress lines before it are allowed only when `progressAllowed`),
/// containing every fragment, and no crash report.
func assertCleanFailure(_ r: CLIResult, contains fragments: [String], progressAllowed: Bool = false,
                        _ label: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(r.timedOut, "\(label): timed out", file: file, line: line)
    XCTAssertFalse(r.signalled, "\(label): killed by signal \(r.status)\n\(r.err)", file: file, line: line)
    XCTAssertNotEqual(r.status, 0, "\(label): exit status 0\n\(r.out)", file: file, line: line)
    let errorLines = r.errLines.filter { $0.hasPrefix("error: ") }
    XCTAssertEqual(errorLines.count, 1, "\(label): one error line wanted, stderr:\n\(r.err)", file: file, line: line)
    if !progressAllowed {
        XCTAssertEqual(r.errLines.count, 1, "\(label): stderr must be one line:\n\(r.err)", file: file, line: line)
    }
    XCTAssertEqual(r.errLines.last.map { $0.hasPrefix("error: ") }, true, "\(label): stderr must end with the error:\n\(r.err)", file: file, line: line)
    let message = errorLines.first ?? ""
    for fragment in fragments {
        XCTAssertTrue(message.contains(fragment), "\(label): \"\(message)\" lacks \"\(fragment)\"", file: file, line: line)
    }
    for crash in ["Fatal error", "Stack dump", "Backtrace", "SIGSEGV", "SIGILL", "Illegal instruction", "Current stack trace"] {
        XCTAssertFalse(r.err.contains(crash) || r.out.contains(crash), "\(label): crash report:\n\(r.err)", file: file, line: line)
    }
}
