import Foundation
import XCTest
@testable import RefineSeg

/// Faults: diverging training, device memory, unknown devices, kill -9 at any moment, Ctrl-C,
/// and reruns. The process tests start the real `refineseg` binary (build it first with
/// `swift build --build-tests`) on the CPU reference backend with tiny settings, so they need
/// no OpenCL device; the device tests skip, saying why, where no OpenCL device exists.
///
/// A lost device (CL_DEVICE_NOT_AVAILABLE, or the CUDA-style "context lost" a GPU driver reports
/// after a reset) cannot be provoked on PoCL's CPU device, so no test here claims to: every
/// OpenCL call goes through `clCheck`, whose error names the op, the call and the status.
final class FaultTests: XCTestCase {
    static let tiny = ["--device", "cpu", "--width", "4", "--size", "32", "--batch", "2"]

    var root: URL!
    override func setUpWithError() throws { root = try temporaryDirectory("faults") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    func train(out: String, epochs: Int, seed: Int = 0, extra: [String] = []) -> [String] {
        ["train", "--data", path("ds"), "--out", path(out), "--epochs", "\(epochs)", "--seed", "\(seed)"] + Self.tiny + extra
    }

    /// The data rows of RUN/log.csv (empty when there is none yet).
    func logRows(_ run: String) -> [[String]] {
        guard let text = try? String(contentsOfFile: path(run) + "/log.csv", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
    }

    /// Every checkpoint in RUN loads as a model; last.safetensors also as a resumable state.
    /// Returns the epoch recorded in last.safetensors (0 when there is none yet).
    @discardableResult
    func assertCheckpointsLoad(_ run: String, _ label: String, line: UInt = #line) throws -> Int {
        let backend = CPUBackend()
        for name in ["model.safetensors", "last.safetensors"] where FileManager.default.fileExists(atPath: path(run) + "/" + name) {
            XCTAssertNoThrow(try loadModel(path(run) + "/" + name, backend: backend), "\(label): \(name)", line: line)
        }
        guard FileManager.default.fileExists(atPath: path(run) + "/last.safetensors") else { return 0 }
        let last = try SafeTensorsFile.read(path(run) + "/last.safetensors")
        XCTAssertTrue(last.tensors.contains { $0.name.hasPrefix("optimizer.m.") }, "\(label): optimizer state", line: line)
        return Int(last.metadata["epoch"] ?? "") ?? -1
    }

    /// Polls until `condition` holds or the process ends; true when the condition held.
    func waitFor(_ process: CLIProcess, timeout: TimeInterval = 120, every micros: useconds_t = 20_000, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            if !process.process.isRunning { return condition() }
            usleep(micros)
        }
        return false
    }

    // MARK: numbers

    /// A loss that becomes NaN stops the run, naming the step, and keeps the last good checkpoint.
    func testNaNLossNamesTheStepAndKeepsTheLastGoodCheckpoint() throws {
        try Fixtures.dataset(at: root.appendingPathComponent("ds"))
        // Diverging in the first epoch: nothing to keep, and the message says so.
        let first = try CLIProcess.run(train(out: "fresh", epochs: 2, extra: ["--lr", "1e30"]))
        assertCleanFailure(first, contains: ["training loss became NaN at step", "(epoch 1,", "no checkpoint was written", "lower --lr"],
                           progressAllowed: true, "NaN in epoch 1")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("fresh/last.safetensors")))

        // Diverging in epoch 2 of a run whose epoch 1 was good: the learning rate in the run
        // record is raised and the run resumed, so epoch 2 starts from a real checkpoint.
        let good = try CLIProcess.run(train(out: "run", epochs: 1))
        XCTAssertEqual(good.status, 0, good.err)
        let before = try Data(contentsOf: URL(fileURLWithPath: path("run/last.safetensors")))
        let configPath = path("run/config.json")
        var record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: configPath)))
        record.config.lr = 1e30
        try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: configPath))
        let diverged = try CLIProcess.run(["train", "--resume", path("run"), "--epochs", "3", "--device", "cpu"])
        // Epoch 1 is steps 1…spe (5 labelled images in batches of 2: 3 steps, raised to the floor of 6).
        let spe = try XCTUnwrap(record.config.stepsPerEpoch)
        XCTAssertEqual(spe, 6)
        assertCleanFailure(diverged, contains: ["training loss became NaN at step", "(epoch 2,", "last good checkpoint", "run/last.safetensors (epoch 1) is kept"],
                           progressAllowed: true, "NaN in epoch 2")
        let message = diverged.errLines.last ?? ""
        let step = message.range(of: "at step ").flatMap { Int(message[$0.upperBound...].prefix { $0.isNumber }) }
        XCTAssertTrue(step.map { (spe + 1...2 * spe).contains($0) } ?? false, "the step must lie in epoch 2: \(message)")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("run/last.safetensors"))), before, "last.safetensors was replaced")
        XCTAssertEqual(try assertCheckpointsLoad("run", "after NaN"), 1)
        XCTAssertEqual(logRows("run").count, 1)
    }

    /// A checkpoint holding NaN or infinity is never written over a good one.
    func testCheckpointsRefuseNonFiniteTensors() throws {
        let backend = CPUBackend()
        let model = try DFRUNet(backend, config: ModelConfig(inChannels: 1, width: 4), seed: 0)
        let file = path("model.safetensors")
        try Checkpoint.save(model, metadata: model.config.metadata, to: file)
        let good = try Data(contentsOf: URL(fileURLWithPath: file))
        let (name, p) = try XCTUnwrap(model.namedParameters().first)
        var values = try p.value.toArray()
        values[values.count / 2] = .infinity
        p.value = try backend.tensor(values, shape: p.value.shape)
        XCTAssertThrowsError(try Checkpoint.save(model, metadata: model.config.metadata, to: file)) { error in
            XCTAssertEqual("\(error)", "tensor \(name) holds NaN or infinite values: \(file) not written (the previous file is kept)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: file)), good)
        XCTAssertEqual(Fixtures.files(under: root), ["model.safetensors"], "no temporary file left behind")
    }

    // MARK: the device

    /// `--device N` beyond the devices there are is refused with the range, by every command.
    func testDeviceIndexThatDoesNotExistIsRefused() throws {
        _ = try openCLBackendOrSkip()
        try Fixtures.dataset(at: root.appendingPathComponent("ds"))
        try Fixtures.checkpoint(at: path("model.safetensors"))
        for args in [["train", "--data", path("ds"), "--out", path("out"), "--device", "99"],
                     ["evaluate", "--model", path("model.safetensors"), "--data", path("ds"), "--out", path("out"), "--device", "99"],
                     ["annotate", "--model", path("model.safetensors"), "--images", path("ds/test/images"), "--out", path("out"), "--device", "99"],
                     ["check", "--op", "relu", "--device", "99"]] {
            let r = try CLIProcess.run(args)
            assertCleanFailure(r, contains: ["--device 99 names no device", "numbered 0 to"], args[0])
        }
        XCTAssertEqual(Fixtures.files(under: root.appendingPathComponent("out")), [])
    }

    /// An allocation above CL_DEVICE_MAX_MEM_ALLOC_SIZE is refused before the driver sees it,
    /// naming the op, the bytes asked for and the limit; the backend stays usable.
    func testDeviceAllocationAboveTheLimitNamesTheOpAndTheBytes() throws {
        let backend = try openCLBackendOrSkip()
        let limit = backend.info.maxAllocationBytes
        try XCTSkipIf(limit <= 0, "the driver reports no CL_DEVICE_MAX_MEM_ALLOC_SIZE")
        let count = limit / 4 + 1
        XCTAssertThrowsError(try backend.full([count], value: 1)) { error in
            XCTAssertEqual("\(error)", "[fill] out of device memory: \(count * 4) bytes requested, above the device's largest allocation of \(limit) bytes (0 bytes in use)")
        }
        let x = try backend.tensor([1, 2, 3], shape: [3])
        XCTAssertThrowsError(try backend.zeros([2, count])) { error in
            XCTAssertTrue("\(error)".hasPrefix("[fill] out of device memory: \(2 * count * 4) bytes requested"), "\(error)")
            XCTAssertTrue("\(error)".contains("(12 bytes in use)"), "\(error)")
        }
        XCTAssertEqual(try backend.relu(x).toArray(), [1, 2, 3])
    }

    // MARK: kill -9, Ctrl-C, reruns

    /// SIGKILL at several moments (just after an epoch's log row, while a checkpoint is being
    /// written, in the middle of an epoch) leaves every checkpoint loadable, and `--resume`
    /// finishes the run with the same losses as a run that was never killed.
    func testKillNineAtAnyMomentLeavesLoadableCheckpointsAndResumeFinishes() throws {
        try Fixtures.dataset(at: root.appendingPathComponent("ds"))
        let epochs = 5
        let reference = try CLIProcess.run(train(out: "reference", epochs: epochs, seed: 3))
        XCTAssertEqual(reference.status, 0, reference.err)

        var kills = [String]()
        // 1. As soon as epoch 1's log row exists (log.csv is written before last.safetensors).
        let p1 = try CLIProcess(train(out: "run", epochs: epochs, seed: 3))
        XCTAssertTrue(waitFor(p1, every: 1_000) { logRows("run").count >= 1 }, "no epoch completed")
        p1.signal(SIGKILL)
        XCTAssertTrue(p1.wait().signalled)
        kills.append("after log row of epoch \(logRows("run").count), last.safetensors holds epoch \(try assertCheckpointsLoad("run", "kill 1"))")

        // 2. While a checkpoint's temporary file exists (fsync makes the window milliseconds long).
        var caughtMidWrite = false
        for attempt in 0..<4 where !caughtMidWrite {
            let p = try CLIProcess(["train", "--resume", path("run"), "--device", "cpu"])
            let seen = waitFor(p, every: 500) {
                ((try? FileManager.default.contentsOfDirectory(atPath: path("run"))) ?? []).contains { $0.contains(".safetensors.tmp-\(p.pid)") }
            }
            p.signal(SIGKILL)
            let r = p.wait()
            caughtMidWrite = seen && r.signalled
            let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: path("run"))) ?? []).filter { $0.contains(".tmp-") }
            kills.append("attempt \(attempt) \(caughtMidWrite ? "mid-write (left \(leftovers))" : "missed the write"), last.safetensors holds epoch \(try assertCheckpointsLoad("run", "kill 2.\(attempt)"))")
            if logRows("run").count >= epochs - 1 { break }
        }

        // 3. In the middle of an epoch, if the run is not nearly done yet.
        if logRows("run").count < epochs - 1 {
            let p3 = try CLIProcess(["train", "--resume", path("run"), "--device", "cpu"])
            let rowsBefore = logRows("run").count
            XCTAssertTrue(waitFor(p3) { logRows("run").count > rowsBefore })
            usleep(400_000)
            p3.signal(SIGKILL)
            _ = p3.wait()
            kills.append("mid-epoch, last.safetensors holds epoch \(try assertCheckpointsLoad("run", "kill 3"))")
        }
        print("kill -9 moments:\n  " + kills.joined(separator: "\n  "))
        print("caught a checkpoint mid-write: \(caughtMidWrite)")

        // Resume to the end: every epoch exactly once, in order, with the reference's losses.
        let done = try CLIProcess.run(["train", "--resume", path("run"), "--device", "cpu"])
        XCTAssertEqual(done.status, 0, done.err)
        XCTAssertTrue(done.err.contains("resuming \(path("run")) after epoch"), done.err)
        let rows = logRows("run"), expected = logRows("reference")
        XCTAssertEqual(rows.map { $0[0] }, (1...epochs).map(String.init), "epoch column")
        XCTAssertEqual(rows.map { $0[1] }, expected.map { $0[1] }, "step column")
        XCTAssertEqual(rows.map { $0[2] }, expected.map { $0[2] }, "train_loss: resumed run differs from the uninterrupted one")
        XCTAssertEqual(rows.map { $0[3] }, expected.map { $0[3] }, "val_dice")
        XCTAssertEqual(try assertCheckpointsLoad("run", "final"), epochs)
        let stale = ((try? FileManager.default.contentsOfDirectory(atPath: path("run"))) ?? []).filter { $0.contains(".tmp-") }
        XCTAssertEqual(stale, [], "temporary files of killed writers are cleaned up on resume")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("run/model.safetensors"))),
                       try Data(contentsOf: URL(fileURLWithPath: path("reference/model.safetensors"))), "best model differs")
    }

    /// Ctrl-C (SIGINT) stops training after the current step, writes last.safetensors, prints how
    /// to resume and exits 130; `--resume` then completes the run.
    func testCtrlCStopsCleanlyAfterWritingACheckpoint() throws {
        try Fixtures.dataset(at: root.appendingPathComponent("ds"))
        let p = try CLIProcess(train(out: "run", epochs: 50))
        XCTAssertTrue(waitFor(p) { logRows("run").count >= 1 }, "no epoch completed")
        p.signal(SIGINT)
        let r = p.wait(timeout: 60)
        XCTAssertFalse(r.timedOut, "did not stop within 60 s of SIGINT")
        XCTAssertFalse(r.signalled, "killed by the signal instead of stopping cleanly")
        XCTAssertEqual(r.status, 130, r.err)
        XCTAssertTrue(r.err.contains("interrupted: weights saved to \(path("run"))/last.safetensors"), r.err)
        XCTAssertTrue(r.err.contains("--resume \(path("run"))"), r.err)
        XCTAssertFalse(r.err.contains("error:"), r.err)
        let epoch = try assertCheckpointsLoad("run", "after SIGINT")
        XCTAssertGreaterThanOrEqual(epoch, 1)
        XCTAssertEqual(logRows("run").count, epoch)
        let done = try CLIProcess.run(["train", "--resume", path("run"), "--epochs", "\(epoch + 1)", "--device", "cpu"])
        XCTAssertEqual(done.status, 0, done.err)
        XCTAssertEqual(logRows("run").map { $0[0] }, (1...(epoch + 1)).map(String.init))
    }

    /// `--resume RUN --epochs N` runs to N even when N is 40, the default of a new run (it was
    /// once the "not given" sentinel), records N for the next `--resume`, and other settings
    /// with `--resume` are refused in one line instead of being ignored.
    func testResumeHonoursEveryEpochCountAndRefusesOtherSettings() throws {
        try Fixtures.dataset(at: root.appendingPathComponent("ds"))
        let first = try CLIProcess.run(train(out: "run", epochs: 1))
        XCTAssertEqual(first.status, 0, first.err)
        let p = try CLIProcess(["train", "--resume", path("run"), "--epochs", "40", "--device", "cpu"])
        XCTAssertTrue(waitFor(p) { logRows("run").count >= 2 }, "the resumed run did not go on to epoch 2")
        p.signal(SIGINT)
        let r = p.wait(timeout: 60)
        XCTAssertEqual(r.status, 130, r.err)
        XCTAssertTrue(r.err.contains("epoch 2/40"), r.err)
        let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: path("run/config.json"))))
        XCTAssertEqual(record.config.epochs, 40, "config.json records the new length for the next --resume")
        let refused = try CLIProcess.run(["train", "--resume", path("run"), "--lr", "0.1", "--device", "cpu"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(refused.errLines.count, 1, refused.err)
        XCTAssertTrue(refused.err.contains("only --epochs can change (remove --lr)"), refused.err)
    }

    /// Two runs with the same seed on the same device: identical losses, checkpoints and masks.
    func testRerunsWithTheSameSeedGiveIdenticalLossesAndMasks() throws {
        try Fixtures.dataset(at: root.appendingPathComponent("ds"))
        for run in ["a", "b"] {
            let r = try CLIProcess.run(train(out: run, epochs: 2, seed: 7))
            XCTAssertEqual(r.status, 0, r.err)
            let a = try CLIProcess.run(["annotate", "--model", path("\(run)/model.safetensors"), "--images", path("ds/test/images"),
                                        "--out", path("\(run)/annotations"), "--device", "cpu"])
            XCTAssertEqual(a.status, 0, a.err)
        }
        XCTAssertEqual(logRows("a").map { Array($0.prefix(5)) }, logRows("b").map { Array($0.prefix(5)) })
        for file in ["model.safetensors", "last.safetensors", "annotations/masks/t0.png", "annotations/masks/t1.png",
                     "annotations/probabilities/t0.png", "annotations/review.csv"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("a/" + file))),
                           try Data(contentsOf: URL(fileURLWithPath: path("b/" + file))), file)
        }
        // A different seed gives a different run (so the equality above is not vacuous).
        let c = try CLIProcess.run(train(out: "c", epochs: 2, seed: 8))
        XCTAssertEqual(c.status, 0, c.err)
        XCTAssertNotEqual(logRows("a").map { $0[2] }, logRows("c").map { $0[2] })
    }

    /// kill -9 during `annotate` leaves its staging folder; the next run removes the folders of
    /// processes that are gone and keeps those of live ones.
    func testAnnotateRemovesStagingFoldersOfKilledRuns() throws {
        try Fixtures.dataset(at: root.appendingPathComponent("ds"))
        let r = try CLIProcess.run(train(out: "run", epochs: 1, seed: 3))
        XCTAssertEqual(r.status, 0, r.err)
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = path("out/.staging-\(finished.processIdentifier)"), alive = path("out/.staging-1")
        for dir in [dead, alive] {
            try FileManager.default.createDirectory(atPath: dir + "/masks", withIntermediateDirectories: true)
            try Data("partial".utf8).write(to: URL(fileURLWithPath: dir + "/masks/t0.png"))
        }
        let a = try CLIProcess.run(["annotate", "--model", path("run/model.safetensors"), "--images", path("ds/test/images"),
                                    "--out", path("out"), "--device", "cpu"])
        XCTAssertEqual(a.status, 0, a.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead), "the killed run's staging folder is removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: alive), "a live process's staging folder is left alone")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("out/masks/t0.png")))
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: path("out/masks/t0.png"))), Data("partial".utf8))
    }
}
