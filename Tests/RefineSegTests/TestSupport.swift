import Foundation
import XCTest
@testable import RefineSeg

/// The OpenCL backend for tests, or a skip that says why (never a silent pass).
func openCLBackendOrSkip() throws -> CLBackend {
    do { return try CLBackend(device: nil) } catch {
        throw XCTSkip("no OpenCL device: \(error)")
    }
}

/// The package root (Tests/RefineSegTests/../..).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs the built `refineseg` binary (debug build next to the tests) and returns (status, stdout, stderr).
func runCLI(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let candidates = [".build/debug/refineseg", ".build/release/refineseg"].map { packageRoot.appendingPathComponent($0).path }
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw XCTSkip("refineseg binary not built (run `swift build` first)")
    }
    return try runProcess(binary, arguments, environment: environment)
}

/// Runs `executable` with `arguments` (and `environment` added to this process's) and returns
/// (status, stdout, stderr).
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws
    -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// Runs `python3 arguments…`; returns (status, stdout, stderr).
func runPython(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    try runProcess("/usr/bin/env", ["python3"] + arguments)
}

/// Skips the test, saying what and how to install, unless python3 can import `modules`.
func pythonOrSkip(_ modules: String, install: String, skipped what: String) throws {
    if !pythonImports(modules) { throw XCTSkip("python3 with \(modules) not available (\(install)): \(what) skipped") }
}

/// A fresh temporary directory, removed by the caller's tearDown or left in /tmp.
func temporaryDirectory(_ label: String = "refineseg-test") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A DFR-UNet trained three AdamW steps (lr 1e-2) on synthetic 32×32 samples, so BatchNorm running
/// statistics and weights are far from their initial values, saved as DIR/model.safetensors.
func trainedCheckpoint(_ dir: URL, width: Int, sampleSeed: UInt64, modelSeed: UInt64, backend: Backend) throws -> String {
    let samples = syntheticSamples(count: 4, size: 32, seed: sampleSeed)
    let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: width), seed: modelSeed)
    let optimizer = try AdamW(model.trainableParameters(), backend: backend)
    for step in 0..<3 {
        let pair = [samples[step], samples[step + 1]]
        let batch = Batch(count: 2, channels: 1, size: 32, images: pair.flatMap(\.image), masks: pair.flatMap { $0.mask ?? [] })
        _ = try Trainer.supervisedStep(batch, model: model, loss: SegmentationLoss(), optimizer: optimizer, backend: backend, lr: 1e-2)
    }
    let path = dir.path + "/model.safetensors"
    try Checkpoint.save(model, metadata: model.config.metadata, to: path)
    return path
}

/// Whether python3 can import `modules` (comma-separated).
func pythonImports(_ modules: String) -> Bool {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    probe.arguments = ["python3", "-c", "import " + modules]
    probe.standardOutput = FileHandle.nullDevice
    probe.standardError = FileHandle.nullDevice
    guard (try? probe.run()) != nil else { return false }
    probe.waitUntilExit()
    return probe.terminationStatus == 0
}

/// A committed golden-value fixture, Tests/RefineSegTests/Fixtures/<name>, written by a script
/// under scripts/ (so the tests need no Python).
func fixtureURL(_ name: String) -> URL {
    packageRoot.appendingPathComponent("Tests/RefineSegTests/Fixtures/" + name)
}

/// Decodes fixture `name` as `T`.
func fixture<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(contentsOf: fixtureURL(name)))
}

/// Reruns `script` (with its arguments) writing to a temporary file in place of `name`, and
/// asserts that the committed fixture equals it: the fixture is what the script computes now.
/// Skipped, saying so, when python3 lacks `modules`.
func assertFixtureIsCurrent(_ name: String, script: String, modules: String,
                            file: StaticString = #filePath, line: UInt = #line) throws {
    guard pythonImports(modules) else {
        throw XCTSkip("python3 with \(modules) not available: \(name) not regenerated (the committed fixture is used)")
    }
    let dir = try temporaryDirectory("fixture")
    defer { try? FileManager.default.removeItem(at: dir) }
    let fresh = dir.appendingPathComponent(name)
    let run = try runPython([packageRoot.appendingPathComponent(script).path, "--write", fresh.path])
    XCTAssertEqual(run.status, 0, "\(script) failed: \(run.err)", file: file, line: line)
    let committed = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL(name)))
    let regenerated = try JSONSerialization.jsonObject(with: Data(contentsOf: fresh))
    if let difference = fixtureDifference(committed, regenerated, at: "") {
        XCTFail("Tests/RefineSegTests/Fixtures/\(name) is stale at \(difference): run python3 \(script) --write Tests/RefineSegTests/Fixtures/\(name)",
                file: file, line: line)
    }
}

/// The first place where two decoded fixtures differ, or nil. Numbers agree to 1e-6 relative
/// (another numpy or torch build may round the last bits differently); the "generator" and
/// "numpy" entries name the tools' versions and are not compared.
private func fixtureDifference(_ a: Any, _ b: Any, at path: String) -> String? {
    switch (a, b) {
    case let (x as [String: Any], y as [String: Any]):
        let skip: Set<String> = ["generator", "numpy"]
        guard Set(x.keys).subtracting(skip) == Set(y.keys).subtracting(skip) else { return "\(path) (keys)" }
        for key in x.keys.sorted() where !skip.contains(key) {
            if let d = fixtureDifference(x[key]!, y[key]!, at: path + "." + key) { return d }
        }
        return nil
    case let (x as [Any], y as [Any]):
        guard x.count == y.count else { return "\(path) (\(x.count) vs \(y.count) entries)" }
        for (i, (u, v)) in zip(x, y).enumerated() {
            if let d = fixtureDifference(u, v, at: "\(path)[\(i)]") { return d }
        }
        return nil
    case let (x as String, y as String):
        return x == y ? nil : "\(path) (\(x) vs \(y))"
    case let (x as NSNumber, y as NSNumber):
        let (u, v) = (x.doubleValue, y.doubleValue)
        return abs(u - v) <= 1e-6 * max(1, abs(u), abs(v)) ? nil : "\(path) (\(u) vs \(v))"
    case (is NSNull, is NSNull):
        return nil
    default:
        return "\(path) (\(a) vs \(b))"
    }
}
