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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
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
        let batch = [samples[step], samples[step + 1]]
        let g = Graph(backend: backend, training: true)
        let out = try model(g.constant(try backend.tensor(batch.flatMap(\.image), shape: [2, 1, 32, 32])), g, withEmbedding: true)
        let (loss, _) = try SegmentationLoss()(out, target: try backend.tensor(batch.flatMap { $0.mask ?? [] }, shape: [2, 1, 32, 32]), g)
        try g.backward(loss)
        try optimizer.update(lr: 1e-2)
    }
    let path = dir.path + "/model.safetensors"
    try Checkpoint.save(model, metadata: model.config.metadata, to: path)
    return path
}
