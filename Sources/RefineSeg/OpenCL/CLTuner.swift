import Foundation

/// Kernel choice and tile sizes of one convolution pass; the tuner's unit of search.
struct ConvKernelConfig: Codable, Hashable, Sendable, CustomStringConvertible {
    /// "reg" (register tiles, CPU devices), "rows" (row tiles, CPU devices), "px" (stride-1 pixel
    /// vectors for few output channels, CPU devices), "pxw" (their backward-weight: tm = pixels per
    /// vector, tn = input channels per work item) or "lmem" (local-memory tiles, GPU devices).
    var variant: String
    /// reg, rows: channel vector width (4, 8, 16) and pixels (or input channels) per work item.
    var tm: Int = 8
    var tn: Int = 8
    /// rows: channel vectors per work item.
    var mv: Int = 1
    /// lmem: work-group tile (TSM × TSN), K slice, outputs per work item.
    var tsm: Int = 64, tsn: Int = 64, tsk: Int = 16, wptm: Int = 4, wptn: Int = 4
    /// backward-weight: reduction rows per split (0 when not used).
    var chunk: Int = 0

    var description: String {
        var text: String
        switch variant {
        case "lmem": text = "lmem \(tsm)x\(tsn)x\(tsk)/\(wptm)x\(wptn)"
        case "rows": text = "rows tm\(tm)x\(mv) rn\(tn)"
        case "px": text = "px pv\(tn)"
        case "pxw": text = "pxw pb\(tm) tn\(tn)"
        default: text = "reg tm\(tm) tn\(tn)"
        }
        if chunk > 0 { text += " chunk\(chunk)" }
        return text
    }
}

/// Picks kernel configurations by timing a few candidates with profiling events on first use,
/// and remembers the winner per device, driver and shape in the user's cache folder
/// (`$XDG_CACHE_HOME/refineseg/tuning.json` or `~/.cache/refineseg/tuning.json`).
///
/// Deterministic given its cache: a cached entry is always used as it is. `REFINESEG_TUNE=0`
/// turns tuning off (the first candidate, the default, is used and nothing is written),
/// `REFINESEG_TUNE=1` turns it on everywhere. Without the variable it is on for GPUs and off
/// for CPU devices: on PoCL every candidate is one more kernel build (about a second each, some
/// 160 s for a first DFR-UNet training run on the 2-core machine) for a step 2.5 % faster
/// (BENCHMARKS.md, "Variants and the tuner").
/// Candidates only change tile shapes and the backward-weight split count, so outputs change
/// at most by float summation order (within the op cases' tolerances).
final class CLTuner: @unchecked Sendable {
    static let shared = CLTuner()

    /// REFINESEG_TUNE: true for "1", false for "0", nil (the device decides) otherwise.
    let setting: Bool?
    /// Whether tuning is on where the device has no say (`choose(deviceDefault:)` true).
    var enabled: Bool { setting ?? true }
    let path: String
    private let lock = NSLock()
    private var entries: [String: ConvKernelConfig]
    /// Winners of this process, so a key is tuned at most once even when the cache cannot be written.
    private var decided: [String: ConvKernelConfig] = [:]
    private var last = ""

    /// The configuration returned by the latest `choose` (what the kernel bench reports).
    var lastChosen: String { lock.lock(); defer { lock.unlock() }; return last }

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        switch environment["REFINESEG_TUNE"] {
        case "0"?: setting = false
        case "1"?: setting = true
        default: setting = nil
        }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() + "/.cache")
        path = base + "/refineseg/tuning.json"
        entries = (try? JSONDecoder().decode([String: ConvKernelConfig].self,
                                             from: Data(contentsOf: URL(fileURLWithPath: path)))) ?? [:]
    }

    /// The configuration for `key`: cached, else (when tuning is on: REFINESEG_TUNE, else
    /// `deviceDefault`) the fastest candidate by `measure` (device milliseconds), else `candidates[0]`.
    func choose(key: String, candidates: [ConvKernelConfig], deviceDefault: Bool = true,
                measure: (ConvKernelConfig) throws -> Double) throws -> ConvKernelConfig {
        precondition(!candidates.isEmpty, "CLTuner.choose: no candidates for \(key)")
        lock.lock()
        let known = decided[key] ?? entries[key]
        lock.unlock()
        if let known { return remember(known) }
        guard setting ?? deviceDefault, candidates.count > 1 else { return remember(candidates[0]) }
        var best = candidates[0], bestTime = Double.infinity
        for c in candidates {
            let t = try measure(c)
            if t < bestTime { best = c; bestTime = t }
        }
        lock.lock()
        decided[key] = best
        entries[key] = best
        let snapshot = entries
        lock.unlock()
        save(snapshot)
        return remember(best)
    }

    private func remember(_ c: ConvKernelConfig) -> ConvKernelConfig {
        lock.lock(); last = c.description; lock.unlock()
        return c
    }

    /// Merges with what is on disk (another process may have tuned other shapes) and writes atomically.
    /// A cache that cannot be written only costs re-tuning in the next process.
    private func save(_ snapshot: [String: ConvKernelConfig]) {
        let url = URL(fileURLWithPath: path)
        var merged = (try? JSONDecoder().decode([String: ConvKernelConfig].self, from: Data(contentsOf: url))) ?? [:]
        merged.merge(snapshot) { _, new in new }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try writeAtomically(try encoder.encode(merged), to: path)
        } catch {
            FileHandle.standardError.write(Data("warning: tuning cache \(path) not written: \(error)\n".utf8))
        }
    }
}
