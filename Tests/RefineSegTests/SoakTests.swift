import Foundation
import XCTest
@testable import RefineSeg

/// Memory at one moment of a soak run.
struct MemorySample {
    var step: Int
    /// Resident set size of this process (nil where /proc/self/statm does not exist).
    var hostBytes: Int?
    /// Device pool: bytes held by live tensors, high-water mark, buffers ever created (nil on the CPU reference).
    var device: MemoryStats?
    /// Seconds since the soak started (printed, never asserted).
    var seconds: Double = 0
}

/// Long training runs on tiny data, measuring host and device memory as they go.
enum Soak {
    /// This process's resident set size from /proc/self/statm.
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func sample(_ step: Int, _ backend: Backend, since start: Date) -> MemorySample {
        MemorySample(step: step, hostBytes: residentBytes(), device: backend.memoryStats,
                     seconds: Date().timeIntervalSince(start))
    }

    /// Runs `steps` training steps the way `Trainer.run` does (a batch loader per epoch, the
    /// loss read every step, validation and last.safetensors after every epoch) on `size`²
    /// synthetic images, sampling memory `samples` times. Returns two series, each compared only
    /// with itself: `midEpoch` (right after a training step, from the second epoch on, when every
    /// buffer size has been seen) and `epochEnd` (after validation and the checkpoint of the first
    /// epoch and of every fifth). The live set differs between the two moments (validation keeps
    /// eval-mode tensors such as the folded BatchNorm weights, a training step its own), so a
    /// growth is a change within one series, never a difference between them.
    static func run(backend: Backend, steps: Int, size: Int = 16, width: Int = 4, batch: Int = 2,
                    samples: Int = 20, out: String) throws -> (midEpoch: [MemorySample], epochEnd: [MemorySample]) {
        let train = syntheticSamples(count: 16, size: size, seed: 21)
        let split = try TrainingSplitForTests(train: train, validation: syntheticSamples(count: 1, size: size, seed: 22))
        var config = TrainConfig(data: "synthetic", out: out)
        config.size = size; config.width = width; config.batch = batch; config.epochs = 1_000_000; config.lr = 1e-3
        let trainer = try Trainer(config: config, backend: backend, split: split)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let every = max(1, steps / samples)
        var result = [MemorySample](), ends = [MemorySample]()
        var step = 0, epoch = 0
        let start = Date()
        while step < steps {
            let loader = BatchLoader(samples: split.labelled, batchSize: batch, size: size, seed: UInt64(epoch))
            while let b = loader.next() {
                // The loss tensor dies here, so every sample sees the same live tensors.
                let value = try trainer.trainStep(b, lr: 1e-3).scalar()
                guard value.isFinite else { throw RefineSegError.numerical("soak: loss \(value) at step \(step)") }
                step += 1
                if epoch > 0 && step % every == 0 { result.append(sample(step, backend, since: start)) }
            }
            _ = try trainer.validationDice()
            try trainer.saveLast()
            epoch += 1
            if epoch == 1 || epoch % 5 == 0 { ends.append(sample(step, backend, since: start)) }
        }
        return (result, ends)
    }

    static func table(_ samples: [MemorySample]) -> String {
        func mib(_ b: Int?) -> String { b.map { String(format: "%8.2f", Double($0) / 1_048_576) } ?? "       -" }
        var text = "   step  seconds  host MiB  dev in-use MiB  dev peak MiB  dev buffers\n"
        for s in samples {
            text += String(format: "%7d  %7.1f", s.step, s.seconds) + "  " + mib(s.hostBytes) + "  " + mib(s.device?.inUse) + "        "
                + mib(s.device?.peak) + "      " + (s.device.map { String(format: "%7d", $0.allocations) } ?? "      -") + "\n"
        }
        return text
    }
}

/// A long run shows no growth of host or device memory after its first epoch.
///
/// Steps: REFINESEG_SOAK_STEPS (default 500 on OpenCL, about a minute on PoCL; 3000 for the long soak;
/// the CPU reference, several times slower in a
/// debug build, runs 80 unless told otherwise). Host growth is bounded by `hostGrowthLimit`,
/// which is far below what keeping each step's activations would cost (hundreds of KiB
/// per step at 16×16, width 4, batch 2: hundreds of MiB over the run).
final class SoakTests: XCTestCase {
    static let hostGrowthLimit = 16 << 20

    func steps(default value: Int) -> Int {
        ProcessInfo.processInfo.environment["REFINESEG_SOAK_STEPS"].flatMap(Int.init) ?? value
    }

    func check(_ samples: [MemorySample], label: String) {
        print("soak (\(label)), \(samples.last?.step ?? 0) steps:\n" + Soak.table(samples))
        guard let first = samples.first, let last = samples.last, samples.count >= 3 else {
            return XCTFail("too few samples: \(samples.count)")
        }
        if let start = first.hostBytes, let end = last.hostBytes {
            let growth = end - start
            print(String(format: "host RSS growth after the first epoch: %.2f MiB (limit %.0f MiB)", Double(growth) / 1_048_576, Double(Self.hostGrowthLimit) / 1_048_576))
            XCTAssertLessThan(growth, Self.hostGrowthLimit, "host memory grew by \(growth) bytes")
        } else {
            print("host RSS not measured: no /proc/self/statm")
        }
        if let device = first.device {
            for s in samples.dropFirst() {
                guard let d = s.device else { continue }
                XCTAssertEqual(d.allocations, device.allocations, "step \(s.step): the pool created buffers after warm-up")
                XCTAssertEqual(d.inUse, device.inUse, "step \(s.step): live device memory changed")
                XCTAssertEqual(d.peak, device.peak, "step \(s.step): device high-water mark grew")
            }
        }
    }

    func testSoakOnOpenCLShowsNoHostOrDeviceMemoryGrowth() throws {
        let backend = try openCLBackendOrSkip()
        do {
            let x = try backend.zeros([1, 1, 16, 16]), w = try backend.zeros([4, 1, 3, 3])
            _ = try backend.conv2d(x, weight: w, bias: nil, params: Conv2DParams(stride: 1, padding: 1, dilation: 1))
        } catch RefineSegError.unsupported(let op, _) {
            throw XCTSkip("OpenCL \(op) is not implemented in this build, so no OpenCL training can run")
        }
        let dir = try temporaryDirectory("soak-cl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try Soak.run(backend: backend, steps: steps(default: 500), out: dir.path)
        check(run.midEpoch, label: backend.name + ", after a training step")
        check(run.epochEnd, label: backend.name + ", after validation and the checkpoint")
    }

    func testSoakOnTheCPUReferenceShowsNoHostMemoryGrowth() throws {
        let dir = try temporaryDirectory("soak-cpu")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try Soak.run(backend: CPUBackend(), steps: steps(default: 80), out: dir.path)
        check(run.midEpoch, label: "cpu, after a training step")
        check(run.epochEnd, label: "cpu, after validation and the checkpoint")
    }
}
