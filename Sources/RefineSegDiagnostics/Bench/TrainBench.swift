import Foundation
import RefineSeg

/// Settings of one training-step benchmark (`refineseg bench train`).
public struct TrainBenchSettings: Sendable {
    public var batch = 8
    /// Square input side (a multiple of 16).
    public var size = 128
    public var width = 16
    public var channels = 1
    /// Timed steps (wall clock), after `warmup` untimed ones.
    public var steps = 20
    public var warmup = 3
    /// Extra steps run with profiling events for the per-kernel breakdown (after timing, so
    /// profiling overhead never reaches the timed figures). OpenCL only.
    public var profileSteps = 3
    /// Empty kernels launched to measure the device's per-launch overhead (OpenCL only; 0 skips it).
    public var launchProbe = 500
    /// Inference only: eval-mode forward of the logits.
    public var eval = false
    public var seed: UInt64 = 0
    public var lr: Double = 1e-3
    /// β of the lesion-aware contrastive term (docs/MODEL.md's 0.1).
    public var lacWeight: Double = 0.1

    public init() {}

    public func validate() throws {
        func bad(_ m: String) -> RefineSegError { .invalidArgument("bench train: " + m) }
        guard batch >= 1 else { throw bad("--batch must be ≥ 1 (got \(batch))") }
        guard size >= 16, size % 16 == 0 else { throw bad("--size must be a positive multiple of 16 (got \(size))") }
        guard width >= 4, width % 4 == 0 else { throw bad("--width must be a positive multiple of 4 (got \(width))") }
        guard channels >= 1 else { throw bad("channels must be ≥ 1 (got \(channels))") }
        guard steps >= 1 else { throw bad("--steps must be ≥ 1 (got \(steps))") }
        // Warm-up holds the one-off work (program builds, the conv tuner's trials, pool growth).
        guard warmup >= 1 else { throw bad("--warmup must be ≥ 1 so that one-off work stays out of the timed steps (got \(warmup))") }
        guard lr.isFinite, lr > 0 else { throw bad("lr must be finite and positive (got \(lr))") }
        guard lacWeight.isFinite, lacWeight >= 0 else { throw bad("lac weight must be finite and ≥ 0 (got \(lacWeight))") }
        guard profileSteps >= 0 else { throw bad("--profile-steps must be ≥ 0 (got \(profileSteps))") }
        guard launchProbe >= 0 else { throw bad("--launch-probe must be ≥ 0 (got \(launchProbe))") }
    }
}

/// One kernel name in the profiled breakdown (per step: totals over the profiled steps ÷ their number).
public struct KernelShare: Sendable {
    public var name: String
    /// Launches per step.
    public var calls: Double
    /// Device milliseconds per step.
    public var totalMs: Double
    /// totalMs ÷ the median wall-clock step time (above 1 only when the profiled steps ran slower than the timed ones).
    public var share: Double
    /// Achieved GFLOP/s, when every launch of this kernel stated its FLOPs (nil otherwise).
    public var gflops: Double?
    /// Achieved GB/s from the launches' byte counts (see `KernelTiming.bytes`).
    public var gbps: Double?
}

/// What one training-step benchmark measured.
public struct TrainBenchReport: Sendable {
    public var settings: TrainBenchSettings
    public var device: String
    public var deviceInfo: DeviceInfo?
    public var gitCommit: String
    public var date: String
    /// Wall-clock milliseconds of each timed step (the step ends with a synchronize).
    public var stepMs: [Double]
    /// Of each timed step, the milliseconds until the host had queued everything (before the
    /// synchronize): graph building, launches, blocking uploads. Devices run while the host queues.
    public var hostMs: [Double]
    /// Convolution FLOPs (conv + transposed conv) of one forward pass: the `flops` annotations of
    /// the convolution launches that one real forward of the model records (`KernelTiming.convolutionFlops`).
    public var forwardFlops: Double
    /// FLOPs of one timed step: 3 × forward in training (backward = 2 × forward), 1 × in eval.
    public var stepFlops: Double
    /// High-water mark of pooled device memory (OpenCL only).
    public var peakDeviceBytes: Int?
    /// Device memory held by live tensors between steps (OpenCL only).
    public var inUseBytesBetweenSteps: Int?
    /// Pool allocations (clCreateBuffer calls) after warm-up, after the timed steps and after the
    /// profiled ones; equal numbers mean steady-state steps allocate nothing (OpenCL only).
    public var allocations: (afterWarmup: Int, afterTimed: Int, afterProfiled: Int)?
    public var profiledSteps: Int
    /// Wall-clock milliseconds of each profiled step (synchronised at its end, like the timed
    /// ones): the wall time that the summed kernel time of the same steps is compared with.
    public var profiledStepMs: [Double] = []
    /// The device's per-launch overhead from the empty-kernel probe (OpenCL, `launchProbe` > 0).
    public var launchOverhead: LaunchOverhead?
    /// Per kernel name, largest total first.
    public var kernels: [KernelShare]
    /// Every kernel whose name starts with "conv" together, with the layer-list FLOPs.
    public var convFamily: KernelShare?
    /// Loss (training) or logit sum (eval) of the first and last timed step, read after the clock stopped.
    public var firstValue: Float
    public var lastValue: Float
    /// Under MPI: the number of ranks and the gradient all-reduce of the timed steps (batch is per rank).
    public var ranks = 1
    public var allreduce: AllreduceStats?

    public var medianMs: Double { DistanceTransform.percentile(stepMs, 50) }
    public var p90Ms: Double { DistanceTransform.percentile(stepMs, 90) }
    public var hostMedianMs: Double { DistanceTransform.percentile(hostMs, 50) }
    public var minMs: Double { stepMs.min() ?? .nan }
    public var maxMs: Double { stepMs.max() ?? .nan }
    public var imagesPerSecond: Double { Double(settings.batch) / (medianMs / 1e3) }
    public var gflops: Double { stepFlops / 1e9 / (medianMs / 1e3) }
    /// Summed kernel device time per profiled step.
    public var kernelMsPerStep: Double { kernels.reduce(0) { $0 + $1.totalMs } }
    /// Kernel launches per profiled step.
    public var launchesPerStep: Double { kernels.reduce(0) { $0 + $1.calls } }
    /// Median wall-clock time of the profiled steps (nil without them).
    public var profiledMedianMs: Double? { profiledStepMs.isEmpty ? nil : DistanceTransform.percentile(profiledStepMs, 50) }
    /// Mean wall-clock time of the profiled steps: the wall time of the same steps whose kernel
    /// times `kernelMsPerStep` averages, so that the two subtract.
    public var profiledMeanMs: Double? { profiledStepMs.isEmpty ? nil : profiledStepMs.reduce(0, +) / Double(profiledStepMs.count) }
    /// Per profiled step, wall time in which no kernel ran (the device idle, waiting for the
    /// host): mean profiled wall time − summed kernel time. Negative only if the device overlaps kernels.
    public var idleMsPerStep: Double? { profiledMeanMs.map { $0 - kernelMsPerStep } }
    /// Launches per step × the empty kernel's wall time per launch: the step time that launching alone costs.
    public var launchOverheadMsPerStep: Double? { launchOverhead.map { launchesPerStep * $0.wallMicroseconds / 1e3 } }
    /// Launches per step × the empty kernel's device time: the part of `kernelMsPerStep` that is launch overhead.
    public var launchDeviceOverheadMsPerStep: Double? { launchOverhead.map { launchesPerStep * $0.deviceMicroseconds / 1e3 } }
}

/// Times full DFR-UNet training steps (upload, forward, SegmentationLoss with the lesion-aware
/// term, backward, AdamW) on synthetic seeded data, exactly the step `Trainer` runs.
public enum TrainBench {
    /// Seeded synthetic batch: images are N(0, 1) noise plus 1 inside lesions; masks are 1–3
    /// random ellipses per image. Image i is left without lesion when i % 8 == 7 and, for
    /// batches of 2 or more, the last one is too, so both branches of the LAC term always run.
    public static func syntheticBatch(count n: Int, channels c: Int, size s: Int, seed: UInt64) -> Batch {
        var rng = SeededRandom(seed: seed)
        var masks = [Float](repeating: 0, count: n * s * s)              // (N, 1, S, S)
        for i in 0..<n where !(i % 8 == 7 || (n > 1 && i == n - 1)) {
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let cy = rng.uniform(0.15, 0.85) * Float(s), cx = rng.uniform(0.15, 0.85) * Float(s)
                let ry = rng.uniform(0.04, 0.2) * Float(s), rx = rng.uniform(0.04, 0.2) * Float(s)
                let theta = rng.uniform(0, .pi), co = cos(theta), si = sin(theta)
                for y in 0..<s {
                    for x in 0..<s {
                        let dx = Float(x) - cx, dy = Float(y) - cy
                        let u = (dx * co + dy * si) / rx, v = (-dx * si + dy * co) / ry
                        if u * u + v * v <= 1 { masks[(i * s + y) * s + x] = 1 }
                    }
                }
            }
        }
        var images = [Float](repeating: 0, count: n * c * s * s)         // (N, C, S, S)
        for i in 0..<n { for ch in 0..<c { for p in 0..<(s * s) {
            images[(i * c + ch) * s * s + p] = rng.normal() + masks[i * s * s + p]
        } } }
        return Batch(count: n, channels: c, size: s, images: images, masks: masks)
    }

    /// Runs the benchmark: `warmup` steps, `steps` timed ones, then `profileSteps` profiled ones.
    /// With `dataParallel` every rank times its own steps of `batch` images (seeded by rank)
    /// with the gradient all-reduce of data-parallel training, whose cost the report adds.
    public static func run(_ settings: TrainBenchSettings, backend: Backend, dataParallel dp: DataParallel? = nil) throws -> TrainBenchReport {
        try settings.validate()
        let n = settings.batch, c = settings.channels, s = settings.size
        let batch = syntheticBatch(count: n, channels: c, size: s, seed: settings.seed &+ UInt64(dp?.comm.rank ?? 0))
        let model = try DFRUNet(backend, config: ModelConfig(inChannels: c, width: settings.width), seed: settings.seed)
        let optimizer = try AdamW(model.trainableParameters(), backend: backend)
        let loss = SegmentationLoss(beta: Float(settings.lacWeight))
        let withEmbedding = !settings.eval && loss.beta > 0

        /// One step; returns a one-element device tensor (loss, or the logit sum in eval).
        func step() throws -> Tensor {
            if settings.eval {
                let g = Graph(backend: backend, training: false)
                let x = g.constant(try backend.tensor(batch.images, shape: [n, c, s, s]))
                return try backend.reduce(try model(x, g).logits.value, axes: 0..<4, kind: .sum)
            }
            // Under MPI every rank has a whole per-rank batch: weight 1/ranks averages the gradients.
            return try Trainer.supervisedStep(dp.map { $0.shard(repeatedForRanks(batch, $0.comm.size)) } ?? batch, model: model, loss: loss,
                                              optimizer: optimizer, backend: backend, lr: Float(settings.lr), dataParallel: dp)
        }

        for _ in 0..<settings.warmup { _ = try step() }
        try backend.synchronize()
        dp?.resetStats()
        let allocWarm = backend.memoryStats?.allocations
        let inUse = backend.memoryStats?.inUse

        var times = [Double](), hostTimes = [Double](), first: Float = .nan, last: Float = .nan
        for i in 0..<settings.steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let value = try step()
            let t1 = DispatchTime.now().uptimeNanoseconds
            try backend.synchronize()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            hostTimes.append(Double(t1 - t0) / 1e6)
            // The differentiable loss omits docs/MODEL.md's constant 0.5 (see SegmentationLoss); Trainer adds it back too.
            let offset: Float = settings.eval ? 0 : 0.5
            if i == 0 { first = try value.scalar() + offset }
            if i == settings.steps - 1 { last = try value.scalar() + offset }
        }
        guard first.isFinite, last.isFinite else {
            throw RefineSegError.numerical("bench train: step value became \(first) → \(last)")
        }
        let allocTimed = backend.memoryStats?.allocations
        let allreduce = dp?.stats

        var timings = [KernelTiming]()
        var profiled = 0, profiledTimes = [Double]()
        if backend.profilesEveryLaunch, settings.profileSteps > 0 {
            backend.startProfiling()
            for _ in 0..<settings.profileSteps {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try step()
                try backend.synchronize()
                profiledTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            timings = try backend.stopProfiling()
            profiled = settings.profileSteps
        }
        let overhead = settings.launchProbe > 0 ? try backend.launchOverhead(launches: settings.launchProbe) : nil
        let memory = backend.memoryStats
        // Last, since a training-mode forward updates BatchNorm's running statistics.
        let forward = try forwardConvolutionFlops(model, batch: batch, training: !settings.eval, withEmbedding: withEmbedding, backend: backend)
        var report = TrainBenchReport(
            settings: settings, device: backend.name, deviceInfo: backend.deviceInfo, gitCommit: RefineSeg.gitCommit(),
            date: ISO8601DateFormatter().string(from: Date()), stepMs: times, hostMs: hostTimes, forwardFlops: forward,
            stepFlops: settings.eval ? forward : 3 * forward,
            peakDeviceBytes: memory?.peak, inUseBytesBetweenSteps: inUse,
            allocations: memory.map { (allocWarm ?? 0, allocTimed ?? 0, $0.allocations) },
            profiledSteps: profiled, profiledStepMs: profiledTimes, launchOverhead: overhead,
            kernels: [], convFamily: nil, firstValue: first, lastValue: last,
            ranks: dp?.comm.size ?? 1, allreduce: allreduce)
        if profiled > 0 {
            let stepMs = report.medianMs
            report.kernels = breakdown(timings, steps: profiled, stepMs: stepMs)
            let conv = timings.filter { $0.name.hasPrefix("conv") }
            if !conv.isEmpty {
                var family = summarise("conv family (all conv* kernels)", conv, steps: profiled, stepMs: stepMs)
                family.gflops = report.stepFlops * Double(profiled) / (conv.reduce(0) { $0 + $1.milliseconds } / 1e3) / 1e9
                report.convFamily = family
            }
        }
        return report
    }

    /// Convolution FLOPs of one forward pass of `model` on `batch`, summed from the launches that
    /// forward records (rule 17 of STYLE.md: counted from what the real code runs, not from a
    /// description of the model). Attention gates, BatchNorm, pooling, elementwise and loss work
    /// is not counted (a few per cent). Benches count a training step as 3 × forward
    /// (backward-data + backward-weight, each one forward's worth), like the PyTorch peer.
    public static func forwardConvolutionFlops(_ model: DFRUNet, batch: Batch, training: Bool, withEmbedding: Bool,
                                               backend: Backend) throws -> Double {
        let g = Graph(backend: backend, training: training)
        let x = g.constant(try backend.tensor(batch.images, shape: [batch.count, batch.channels, batch.size, batch.size]))
        backend.startProfiling()
        let launches: [KernelTiming]
        do {
            _ = try model(x, g, withEmbedding: withEmbedding)
            launches = try backend.stopProfiling()
        } catch {
            _ = try? backend.stopProfiling()
            throw error
        }
        return launches.convolutionFlops
    }

    /// A global batch whose rank-r block is `batch` on rank r (the other blocks are never used:
    /// each rank keeps its own block), so that `DataParallel.shard` hands every rank its batch.
    static func repeatedForRanks(_ batch: Batch, _ ranks: Int) -> Batch {
        Batch(count: batch.count * ranks, channels: batch.channels, size: batch.size,
              images: Array([[Float]](repeating: batch.images, count: ranks).joined()),
              masks: Array([[Float]](repeating: batch.masks, count: ranks).joined()))
    }

    /// Groups timings by kernel name, per step, largest total first.
    static func breakdown(_ timings: [KernelTiming], steps: Int, stepMs: Double) -> [KernelShare] {
        Dictionary(grouping: timings, by: \.name)
            .map { summarise($0.key, $0.value, steps: steps, stepMs: stepMs) }
            .sorted { $0.totalMs != $1.totalMs ? $0.totalMs > $1.totalMs : $0.name < $1.name }
    }

    static func summarise(_ name: String, _ list: [KernelTiming], steps: Int, stepMs: Double) -> KernelShare {
        let ms = list.reduce(0) { $0 + $1.milliseconds }
        let seconds = ms / 1e3
        let bytes = list.reduce(0) { $0 + Double($1.bytes) }
        let stated = list.allSatisfy { $0.flops != nil }
        let flops = list.reduce(0) { $0 + ($1.flops ?? 0) }
        return KernelShare(name: name, calls: Double(list.count) / Double(steps), totalMs: ms / Double(steps),
                           share: ms / Double(steps) / stepMs,
                           gflops: stated && seconds > 0 ? flops / seconds / 1e9 : nil,
                           gbps: seconds > 0 && bytes > 0 ? bytes / seconds / 1e9 : nil)
    }
}

extension TrainBenchReport {
    /// The JSON object `bench train --json` writes (keys sorted; absent values are null).
    public func jsonObject() -> [String: Any] {
        func num(_ v: Double?) -> Any { v.map { $0.isFinite ? $0 as Any : NSNull() } ?? NSNull() }
        func kernel(_ k: KernelShare) -> [String: Any] {
            ["name": k.name, "calls": k.calls, "total_ms": k.totalMs, "share": k.share, "gflops": num(k.gflops), "gbps": num(k.gbps)]
        }
        var environment = [String: String]()
        for key in ["POCL_CACHE_DIR", "POCL_MAX_PTHREAD_COUNT", "REFINESEG_DEVICE", "REFINESEG_TUNE", "REFINESEG_CONV_VARIANT"] {
            if let v = ProcessInfo.processInfo.environment[key] { environment[key] = v }
        }
        var device: [String: Any] = ["name": self.device]
        if let d = deviceInfo {
            device.merge(["platform": d.platform, "device_name": d.name, "vendor": d.vendor, "version": d.version,
                          "driver_version": d.driverVersion, "type": d.type, "compute_units": d.computeUnits,
                          "global_memory_bytes": d.globalMemoryBytes]) { $1 }
        }
        let st = settings
        return [
            "mode": st.eval ? "eval" : "train",
            "settings": ["batch": st.batch, "size": st.size, "width": st.width, "channels": st.channels, "steps": st.steps,
                         "warmup": st.warmup, "profile_steps": st.profileSteps, "launch_probe": st.launchProbe,
                         "seed": st.seed, "lr": st.lr,
                         "lac_weight": st.lacWeight] as [String: Any],
            "batch": st.batch, "size": st.size, "width": st.width,
            "device": device,
            "git_commit": gitCommit,
            "date": date,
            "environment": environment,
            "step_ms_median": medianMs, "step_ms_min": minMs, "step_ms_max": maxMs, "step_ms_p90": p90Ms,
            "step_ms_all": stepMs,
            "host_enqueue_ms_median": hostMedianMs,
            "launches_per_step": profiledSteps > 0 ? kernels.reduce(0) { $0 + $1.calls } : NSNull(),
            "images_per_second": imagesPerSecond,
            "forward_gflop": forwardFlops / 1e9,
            "step_gflop": stepFlops / 1e9,
            "gflops": gflops,
            "flops_assumption": "conv and transposed conv only (flops annotations of the launches of one forward); training step = 3 x forward (backward = 2 x forward)",
            "peak_device_bytes": peakDeviceBytes.map { $0 as Any } ?? NSNull(),
            "in_use_bytes_between_steps": inUseBytesBetweenSteps.map { $0 as Any } ?? NSNull(),
            "allocations": allocations.map { ["after_warmup": $0.afterWarmup, "after_timed": $0.afterTimed,
                                              "after_profiled": $0.afterProfiled] as [String: Any] } ?? NSNull(),
            "profiled_steps": profiledSteps,
            "kernel_ms_per_step": profiledSteps > 0 ? kernelMsPerStep : NSNull(),
            "profiled_step_ms_all": profiledStepMs,
            // Where the step goes: the profiled steps' wall time = summed kernel time + idle.
            "step_breakdown": profiledSteps > 0 ? [
                "wall_ms": num(profiledMeanMs), "wall_ms_median": num(profiledMedianMs), "kernel_ms": kernelMsPerStep,
                "idle_ms": num(idleMsPerStep), "launches": launchesPerStep,
                "launch_overhead_ms": num(launchOverheadMsPerStep), "launch_overhead_device_ms": num(launchDeviceOverheadMsPerStep),
                "launch_overhead_share": num(launchOverheadMsPerStep.flatMap { w in profiledMeanMs.map { w / $0 } }),
            ] as [String: Any] : NSNull(),
            "launch_overhead": launchOverhead.map { ["launches": $0.launches, "wall_us_per_launch": $0.wallMicroseconds,
                                                     "device_us_per_launch": $0.deviceMicroseconds,
                                                     "kernel": "roofline_empty (Kernels/roofline.cl), 1 work item"] as [String: Any] } ?? NSNull(),
            "kernels": kernels.map(kernel),
            "conv_family": convFamily.map(kernel) ?? NSNull(),
            "ranks": ranks,
            "allreduce": allreduce.map { a -> [String: Any] in
                let steps = Double(max(a.steps, 1))
                return ["steps": a.steps, "bytes_per_step": Double(a.bytes) / steps, "buckets_per_step": Double(a.buckets) / steps,
                        "allreduce_ms_per_step": a.communicationSeconds * 1e3 / steps,
                        "exposed_ms_per_step": a.exposedSeconds * 1e3 / steps,
                        "copy_ms_per_step": a.copySeconds * 1e3 / steps, "overlap": a.overlap,
                        "global_images_per_second": Double(st.batch * ranks) / (medianMs / 1e3)]
            } ?? NSNull(),
            (st.eval ? "logit_sum_first" : "loss_first"): Double(firstValue),
            (st.eval ? "logit_sum_last" : "loss_last"): Double(lastValue),
        ]
    }

    /// `jsonObject()` as pretty-printed UTF-8.
    public func jsonData() throws -> Data {
        try JSONSerialization.data(withJSONObject: jsonObject(), options: [.prettyPrinted, .sortedKeys])
    }
}
