import Foundation
import XCTest
@testable import RefineSeg

/// `mpirun` on PATH, or a skip that says so (CI installs Open MPI through scripts/setup.sh).
func mpirunOrSkip() throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let path = "\(dir)/mpirun"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw XCTSkip("mpirun not found (Open MPI: apt-get install openmpi-bin libopenmpi-dev): MPI tests skipped")
}

/// Runs the built `refineseg` under `mpirun -np N` (root allowed, oversubscribed: the CI machine has 2 cores).
func runMPI(_ np: Int, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let mpirun = try mpirunOrSkip()
    let candidates = [".build/debug/refineseg", ".build/release/refineseg"].map { packageRoot.appendingPathComponent($0).path }
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw XCTSkip("refineseg binary not built (run `swift build` first)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: mpirun)
    process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(np)", binary] + arguments
    // stderr goes to a file, so neither pipe can fill up while the other is read.
    let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("refineseg-mpi-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errFile) }
    let out = Pipe()
    process.standardOutput = out
    process.standardError = try FileHandle(forWritingTo: errFile)
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let errData = (try? Data(contentsOf: errFile)) ?? Data()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// Every file under `dir` with its bytes (relative path → contents).
func fileContents(under dir: URL) throws -> [String: Data] {
    var all = [String: Data]()
    for name in Fixtures.files(under: dir) { all[name] = try Data(contentsOf: dir.appendingPathComponent(name)) }
    return all
}

final class DistributedTests: XCTestCase {
    func testLauncherDetection() {
        XCTAssertNil(Launcher.detect([:]))
        XCTAssertNil(Launcher.detect(["OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"]), "one process is not a launch")
        XCTAssertEqual(Launcher.detect(["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_LOCAL_RANK": "1"]),
                       Launcher(name: "mpirun", size: 4, rank: 3, localRank: 1))
        XCTAssertEqual(Launcher.detect(["SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8"]),
                       Launcher(name: "srun", size: 8, rank: 5, localRank: 1))
        // A batch script's own process (SLURM_NTASKS without a step) is not a rank.
        XCTAssertNil(Launcher.detect(["SLURM_NTASKS": "8", "SLURM_PROCID": "0"]))
        XCTAssertEqual(Launcher.detect(["PMI_SIZE": "2", "PMI_RANK": "1"]), Launcher(name: "pmi", size: 2, rank: 1, localRank: 0))
    }

    func testShardsCoverTheItemsInOrder() throws {
        for n in [0, 1, 5, 7, 16] {
            for parts in 1...5 {
                let items = Array(0..<n)
                let joined = (0..<parts).flatMap { Shard(count: parts, index: $0).slice(items) }
                XCTAssertEqual(joined, items, "n \(n) parts \(parts)")
            }
        }
        XCTAssertThrowsError(try Shard(count: 2, index: 2).validate())
        XCTAssertThrowsError(try Shard(count: 0, index: 0).validate())
    }

    /// Job-array parts merged with --merge give exactly the files of one process.
    func testPartsMergeToTheSingleProcessFiles() throws {
        let root = try temporaryDirectory("refineseg-parts")
        defer { try? FileManager.default.removeItem(at: root) }
        try Fixtures.dataset(at: root.appendingPathComponent("data"), train: 2, test: 5)
        let model = root.appendingPathComponent("model.safetensors").path
        try Fixtures.checkpoint(at: model)
        let data = root.appendingPathComponent("data").path, images = data + "/test/images"
        let one = root.appendingPathComponent("one"), parts = root.appendingPathComponent("parts")
        let eOne = root.appendingPathComponent("eval-one"), eParts = root.appendingPathComponent("eval-parts")
        XCTAssertEqual(try runCLI(["annotate", "--model", model, "--images", images, "--out", one.path, "--device", "cpu"]).status, 0)
        XCTAssertEqual(try runCLI(["evaluate", "--model", model, "--data", data, "--out", eOne.path, "--device", "cpu"]).status, 0)
        for k in 0..<3 {
            let a = try runCLI(["annotate", "--model", model, "--images", images, "--out", parts.path, "--device", "cpu",
                                "--num-parts", "3", "--part-id", "\(k)"])
            XCTAssertEqual(a.status, 0, a.err)
            let e = try runCLI(["evaluate", "--model", model, "--data", data, "--out", eParts.path, "--device", "cpu",
                                "--num-parts", "3", "--part-id", "\(k)"])
            XCTAssertEqual(e.status, 0, e.err)
            if k == 1 {
                let early = try runCLI(["annotate", "--merge", "--out", parts.path])
                XCTAssertEqual(early.status, 1)
                XCTAssertTrue(early.err.contains("part(s) 2 of 3 are not finished"), early.err)
            }
        }
        XCTAssertEqual(try runCLI(["annotate", "--merge", "--out", parts.path]).status, 0)
        XCTAssertEqual(try runCLI(["evaluate", "--merge", "--out", eParts.path]).status, 0)
        XCTAssertEqual(try fileContents(under: one), try fileContents(under: parts))
        XCTAssertEqual(try fileContents(under: eOne).filter { $0.key != "split.json" }, try fileContents(under: eParts).filter { $0.key != "split.json" })
        let bad = try runCLI(["annotate", "--model", model, "--images", images, "--out", parts.path, "--num-parts", "2", "--part-id", "2"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.contains("--part-id must be in 0..<2"), bad.err)
    }

    /// `mpirun -np 2 refineseg annotate` and `evaluate` write the same files as one process.
    func testMPIAnnotateAndEvaluateMatchOneProcess() throws {
        _ = try mpirunOrSkip()
        let root = try temporaryDirectory("refineseg-mpi-annotate")
        defer { try? FileManager.default.removeItem(at: root) }
        try Fixtures.dataset(at: root.appendingPathComponent("data"), train: 2, test: 5)
        let model = root.appendingPathComponent("model.safetensors").path
        try Fixtures.checkpoint(at: model)
        let data = root.appendingPathComponent("data").path, images = data + "/test/images"
        let one = root.appendingPathComponent("one"), two = root.appendingPathComponent("two")
        let eOne = root.appendingPathComponent("eval-one"), eTwo = root.appendingPathComponent("eval-two")
        let a1 = try runCLI(["annotate", "--model", model, "--images", images, "--out", one.path])
        XCTAssertEqual(a1.status, 0, a1.err)
        let a2 = try runMPI(2, ["annotate", "--model", model, "--images", images, "--out", two.path])
        XCTAssertEqual(a2.status, 0, a2.err)
        XCTAssertEqual(a2.out.components(separatedBy: "annotated 5 image(s)").count, 2, "rank 0 alone reports: \(a2.out)")
        XCTAssertEqual(try fileContents(under: one), try fileContents(under: two))
        let e1 = try runCLI(["evaluate", "--model", model, "--data", data, "--out", eOne.path])
        XCTAssertEqual(e1.status, 0, e1.err)
        let e2 = try runMPI(2, ["evaluate", "--model", model, "--data", data, "--out", eTwo.path])
        XCTAssertEqual(e2.status, 0, e2.err)
        XCTAssertEqual(try fileContents(under: eOne), try fileContents(under: eTwo))
    }
}
