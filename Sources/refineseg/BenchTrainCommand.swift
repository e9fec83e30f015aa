import ArgumentParser
import Foundation
import RefineSeg
import RefineSegDiagnostics

/// `refineseg bench train`: full DFR-UNet training steps on synthetic data, timed end to end.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time full training steps (upload, forward, loss, backward, AdamW) on seeded synthetic data.",
        discussion: """
        Runs --warmup untimed steps, then --steps timed ones (wall clock, synchronised at each step's end),
        then --profile-steps steps with profiling events for the per-kernel table (kept apart so that
        profiling never slows the timed steps). Of the profiled steps it reports where the wall time went:
        summed kernel time, idle (wall − kernels), launches, and what launching costs, from --launch-probe
        empty kernels (wall time per launch × launches per step). GFLOP/s counts the model's conv and transposed-conv work
        from the FLOPs that the launches of one real forward state; a training step is 3 x forward (backward = 2 x forward).
        """)

    @Option(help: "Batch size.") var batch: Int = 8
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Timed steps.") var steps: Int = 20
    @Option(help: "Untimed warm-up steps (program builds, tuning, pool growth happen here).") var warmup: Int = 3
    @Option(help: "Profiled steps for the per-kernel breakdown (OpenCL only; 0 skips it).") var profileSteps: Int = 3
    @Option(help: "Empty kernels launched to measure the per-launch overhead (OpenCL only; 0 skips it).") var launchProbe: Int = 500
    @Flag(help: "Time inference only (eval-mode forward of the logits).") var eval = false
    @OptionGroup var seedOptions: SeedOptions
    @Option(help: "Write the results as JSON to this file.") var json: String?
    @Option(help: "Measure the device's roofs and write a roofline plot of the profiled kernels (SVG) to this file.")
    var rooflineSvg: String?
    @Option(help: "Rows of the kernel table to print.") var top: Int = 15
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if rooflineSvg != nil && deviceOptions.isCPU {
            throw ValidationError("--roofline-svg needs an OpenCL device (the CPU reference has no kernels to profile)")
        }
        if rooflineSvg != nil && profileSteps < 1 { throw ValidationError("--roofline-svg needs --profile-steps ≥ 1") }
        if top < 0 { throw ValidationError("--top must be ≥ 0") }
        try settings.validate()
    }

    var settings: TrainBenchSettings {
        var s = TrainBenchSettings()
        modelOptions.apply(to: &s)
        s.batch = batch; s.steps = steps; s.warmup = warmup
        s.profileSteps = profileSteps; s.launchProbe = launchProbe; s.eval = eval
        seedOptions.apply(to: &s)
        return s
    }

    func run() throws {
        try runReportingErrors {
            let (backend, cl) = try deviceOptions.openDevice()
            let dp = Distributed.current.map { DataParallel(comm: $0, backend: backend, syncBatchNorm: false) }
            if let dp, !dp.comm.isRoot { _ = try TrainBench.run(settings, backend: backend, dataParallel: dp); return }
            let settings = settings
            print("bench train on \(backend.name)\(ranksNote): \(eval ? "eval" : "train") batch \(batch)\(dp == nil ? "" : " per rank") size \(settings.size) width \(settings.width), "
                  + "\(warmup) warm-up + \(steps) timed + \(backend.profilesEveryLaunch ? profileSteps : 0) profiled step(s)")
            let report = try TrainBench.run(settings, backend: backend, dataParallel: dp)
            printSummary(report)
            if let a = report.allreduce {
                let steps = Double(max(a.steps, 1))
                print(String(format: "all-reduce over %d ranks: %.2f MB/step in %.1f buckets, %.2f ms/step (%.2f ms exposed after backward, overlap %.0f%%), device copies %.2f ms/step; %.2f images/s over all ranks",
                             report.ranks, Double(a.bytes) / steps / 1e6, Double(a.buckets) / steps, a.communicationSeconds * 1e3 / steps,
                             a.exposedSeconds * 1e3 / steps, 100 * a.overlap, a.copySeconds * 1e3 / steps,
                             Double(batch * report.ranks) / (report.medianMs / 1e3)))
            }
            if !eval {
                let augMs = SegmentationAugmentation.nnunet.millisecondsPerBatch(batch: batch, size: settings.size)
                print(String(format: "loader: nnU-Net augmentation of one batch %.2f ms on the host (median; the loader's own thread, overlapping the step: %.1f%% of the median step)",
                             augMs, 100 * augMs / report.medianMs))
            }
            if let json {
                do { try report.jsonData().write(to: URL(fileURLWithPath: json)) } catch {
                    throw RefineSegError.io(file: json, message: "cannot write: \(error.localizedDescription)")
                }
                print("wrote \(json)")
            }
            if let rooflineSvg, let cl {
                let points = report.kernels.compactMap { k in
                    k.gflops.flatMap { g in k.gbps.map { RooflinePoint(name: k.name, gflops: g, gbps: $0) } }
                } + (report.convFamily.flatMap { k in k.gbps.map { RooflinePoint(name: "conv family", gflops: k.gflops ?? 0, gbps: $0) } }.map { [$0] } ?? [])
                let peaks = try Roofline.write(points, measuredOn: cl, to: rooflineSvg,
                                               title: "DFR-UNet \(eval ? "eval" : "training") step kernels: \(cl.info.name)")
                print(String(format: "roofs: %.1f GFLOP/s (FMA probe), %.1f GB/s (streaming probe); %d point(s); wrote %@",
                             peaks.gflops, peaks.gbps, points.count, rooflineSvg))
            }
        }
    }

    private func printSummary(_ r: TrainBenchReport) {
        print(String(format: "step ms: median %.2f  min %.2f  max %.2f  p90 %.2f", r.medianMs, r.minMs, r.maxMs, r.p90Ms))
        print(String(format: "host queues the step in %.2f ms (median; the device runs meanwhile)", r.hostMedianMs))
        print(String(format: "images/s %.2f   forward %.3f GFLOP, step %.3f GFLOP, %.2f GFLOP/s (%@)", r.imagesPerSecond,
                     r.forwardFlops / 1e9, r.stepFlops / 1e9, r.gflops, eval ? "forward only" : "backward counted as 2x forward"))
        print(String(format: "%@ %.4f -> %.4f", eval ? "logit sum" : "loss", r.firstValue, r.lastValue))
        if let peak = r.peakDeviceBytes {
            print("peak device memory \(formatBytes(peak)); in use between steps \(formatBytes(r.inUseBytesBetweenSteps ?? 0))")
        }
        if let a = r.allocations {
            let steady = a.afterWarmup == a.afterTimed && a.afterTimed == a.afterProfiled
            print("buffer allocations: \(a.afterWarmup) after warm-up, \(a.afterTimed) after timed, \(a.afterProfiled) after profiled"
                  + (steady ? " (steady state allocates nothing)" : " (NOT steady: steps still allocate)"))
        }
        if let o = r.launchOverhead {
            print(String(format: "launch overhead (%d empty kernels): %.1f µs wall per launch, %.1f µs device time per launch",
                         o.launches, o.wallMicroseconds, o.deviceMicroseconds))
        }
        guard r.profiledSteps > 0, !r.kernels.isEmpty else { return }
        if let wall = r.profiledMeanMs, let idle = r.idleMsPerStep {
            print(String(format: "where the step goes (mean of %d profiled step(s)): wall %.2f ms = kernels %.2f ms (%.0f%%) + idle %.2f ms (%.0f%%); %.0f launches",
                         r.profiledSteps, wall, r.kernelMsPerStep, 100 * r.kernelMsPerStep / wall, idle, 100 * idle / wall, r.launchesPerStep))
            if let launch = r.launchOverheadMsPerStep, let device = r.launchDeviceOverheadMsPerStep, let o = r.launchOverhead {
                print(String(format: "  launching: %.0f × %.1f µs = %.2f ms (%.0f%% of the step); of the kernel time, %.0f × %.1f µs = %.2f ms is empty-kernel device time",
                             r.launchesPerStep, o.wallMicroseconds, launch, 100 * launch / wall, r.launchesPerStep, o.deviceMicroseconds, device))
            }
        }
        print(String(format: "kernels (per step, over %d profiled step(s)): %.0f launches, %.2f ms device time = %.0f%% of the median timed step",
                     r.profiledSteps, r.launchesPerStep, r.kernelMsPerStep, 100 * r.kernelMsPerStep / r.medianMs))
        print(pad("kernel", 34) + pad("calls", 8, right: true) + pad("ms", 10, right: true) + pad("share", 8, right: true)
              + pad("GFLOP/s", 10, right: true) + pad("GB/s", 9, right: true))
        func row(_ k: KernelShare) {
            print(pad(k.name, 34) + pad(String(format: "%.0f", k.calls), 8, right: true)
                  + pad(String(format: "%.3f", k.totalMs), 10, right: true)
                  + pad(String(format: "%.1f%%", 100 * k.share), 8, right: true)
                  + pad(k.gflops.map { String(format: "%.1f", $0) } ?? "-", 10, right: true)
                  + pad(k.gbps.map { String(format: "%.2f", $0) } ?? "-", 9, right: true))
        }
        r.kernels.prefix(top).forEach(row)
        if r.kernels.count > top { print("… \(r.kernels.count - top) more in --json") }
        if let family = r.convFamily { row(family) }
    }
}
