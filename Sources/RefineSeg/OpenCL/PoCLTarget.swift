import Foundation

/// Which CPU target (instruction set) PoCL compiles kernels for, chosen before the first OpenCL
/// call of the process.
///
/// PoCL names its CPU device after that target (`pthread-skylake-avx512-…`, `pthread-haswell-…`).
/// A PoCL built for the host CPU takes LLVM's name for it (`POCL_LLVM_CPU_NAME` overrides), and an
/// LLVM older than the CPU falls back to an older target: LLVM 15 calls every AMD family-19h CPU,
/// Zen 4 included, `znver3`, an AVX2 target, on a CPU with AVX-512. Debian's "distro" PoCL instead
/// picks one of its prebuilt kernel libraries from the CPU flags LLVM reports (`avx512` →
/// skylake-avx512, `avx2` → haswell; `POCL_KERNELLIB_NAME` picks a lower one) and ignores
/// `POCL_LLVM_CPU_NAME`.
///
/// `REFINESEG_POCL_CPU` decides what RefineSeg does about it:
/// - unset or `auto`: when /proc/cpuinfo shows AVX-512 (avx512f, cd, bw, dq, vl) and the user
///   has set neither `POCL_LLVM_CPU_NAME` nor `POCL_KERNELLIB_NAME`, ask for `skylake-avx512`
///   (the AVX-512 target every LLVM since 3.9 knows, needing nothing beyond those five flags);
///   otherwise leave PoCL alone;
/// - `off`: leave PoCL alone;
/// - a target name (e.g. `haswell`, `icelake-server`): ask for it, even over the user's own
///   `POCL_*` settings.
/// Asking sets `POCL_LLVM_CPU_NAME` and, for the targets of Debian's kernel libraries, the
/// matching `POCL_KERNELLIB_NAME`.
public enum PoCLTarget {
    /// What to do, decided from the CPU flags and the environment alone (no OpenCL call).
    public struct Decision: Sendable, Equatable {
        /// The target asked for, nil when PoCL is left alone.
        public var target: String?
        /// Variables to set before the first OpenCL call.
        public var environment: [String: String]
        /// Why, in a few words (for the report line).
        public var reason: String
    }

    /// The AVX-512 subsets that LLVM's `skylake-avx512` target assumes.
    static let avx512Flags = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
    /// The AVX-512 target asked for in auto mode.
    public static let avx512Target = "skylake-avx512"
    /// Debian's PoCL kernel libraries and the LLVM target each is compiled for.
    static let kernelLibraries = ["athlon64": "sse2", "core2": "ssse3", "penryn": "sse41", "sandybridge": "avx",
                                  "ivybridge": "avx_f16c", "bdver1": "avx_fma4", "haswell": "avx2",
                                  "skylake-avx512": "avx512"]

    /// The CPU flags of the first processor in /proc/cpuinfo text (empty when there is no flags line).
    public static func flags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "flags" else { continue }
            return Set(parts[1].split(separator: " ").map(String.init))
        }
        return []
    }

    /// The decision for a machine with this /proc/cpuinfo text and this environment. Throws on a
    /// `REFINESEG_POCL_CPU` value that cannot be a target name.
    public static func decide(cpuinfo: String, environment: [String: String]) throws -> Decision {
        let setting = environment["REFINESEG_POCL_CPU"] ?? ""
        func ask(_ target: String, _ reason: String) -> Decision {
            var env = ["POCL_LLVM_CPU_NAME": target]
            if let lib = kernelLibraries[target] { env["POCL_KERNELLIB_NAME"] = lib }
            return Decision(target: target, environment: env, reason: reason)
        }
        switch setting {
        case "off":
            return Decision(target: nil, environment: [:], reason: "REFINESEG_POCL_CPU=off")
        case "", "auto":
            for key in ["POCL_LLVM_CPU_NAME", "POCL_KERNELLIB_NAME"] {
                if let v = environment[key], !v.isEmpty {
                    return Decision(target: nil, environment: [:], reason: "\(key)=\(v) set by the user")
                }
            }
            let have = flags(cpuinfo: cpuinfo)
            let missing = avx512Flags.filter { !have.contains($0) }
            guard missing.isEmpty else {
                let why = have.isEmpty ? "no CPU flags in /proc/cpuinfo"
                    : missing.count == avx512Flags.count ? "no AVX-512 in /proc/cpuinfo" : "/proc/cpuinfo lacks \(missing.joined(separator: ", "))"
                return Decision(target: nil, environment: [:], reason: why)
            }
            return ask(avx512Target, "AVX-512 in /proc/cpuinfo")
        default:
            let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789-_.")
            guard setting.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
                throw RefineSegError.invalidArgument(
                    "REFINESEG_POCL_CPU=\(setting) is not auto, off or an LLVM CPU name such as haswell or skylake-avx512")
            }
            return ask(setting, "REFINESEG_POCL_CPU=\(setting)")
        }
    }

    /// The decision of this process, applied (environment set) on first use; later calls return it.
    /// Must run before the first OpenCL call: `OpenCLDevices` calls it before clGetPlatformIDs.
    static func applyOnce() throws -> Decision {
        lock.lock(); defer { lock.unlock() }
        if let d = decision { return d }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let d = try decide(cpuinfo: cpuinfo, environment: ProcessInfo.processInfo.environment)
        for (key, value) in d.environment { setenv(key, value, 1) }
        decision = d
        return d
    }

    private static let lock = NSLock()
    // Both only touched with `lock` held.
    nonisolated(unsafe) private static var decision: Decision?
    nonisolated(unsafe) private static var reported = false

    /// The target a PoCL CPU device was built for, read from its name (`pthread-<target>-<CPU model>`
    /// in PoCL 1.x–3.x, `cpu-<target>-…` later); nil for other devices.
    public static func deviceTarget(_ info: DeviceInfo) -> String? {
        guard info.platform.contains("Portable Computing Language"), info.type == "CPU" else { return nil }
        for prefix in ["pthread-", "cpu-", "basic-", "tbb-"] where info.name.hasPrefix(prefix) {
            let rest = info.name.dropFirst(prefix.count)
            // The target is what precedes the CPU model; targets are lower case, models are not.
            let known = kernelLibraries.keys.sorted { $0.count > $1.count } + ["icelake-server", "icelake-client", "cascadelake",
                                                                               "cooperlake", "sapphirerapids", "tigerlake",
                                                                               "znver1", "znver2", "znver3", "znver4", "generic"]
            if let hit = known.first(where: { rest.hasPrefix($0 + "-") }) { return hit }
            return rest.split(separator: "-").first.map(String.init)
        }
        return nil
    }

    /// One line about the PoCL CPU target of these devices: which target PoCL uses and why;
    /// nil when no PoCL CPU device is present.
    public static func summary(_ decision: Decision, devices: [DeviceInfo]) -> String? {
        guard let used = devices.lazy.compactMap(deviceTarget).first else { return nil }
        guard let asked = decision.target else {
            return "PoCL CPU target: \(used) (PoCL's own choice; \(decision.reason))"
        }
        if used == asked {
            return "PoCL CPU target: \(used) (asked for by refineseg: \(decision.reason); REFINESEG_POCL_CPU=off leaves PoCL alone)"
        }
        return "PoCL CPU target: \(used), although refineseg asked for \(asked) (\(decision.reason)); this PoCL build keeps its own choice"
    }

    /// Prints `summary` on stderr once per process, when refineseg asked for a target and stderr
    /// is a terminal (scripts and logs see it in `refineseg devices` instead).
    static func reportOnce(devices: [DeviceInfo]) {
        lock.lock()
        var line: String?
        if !reported, let d = decision, d.target != nil { reported = true; line = summary(d, devices: devices) }
        lock.unlock()
        if let line, isatty(2) != 0 { FileHandle.standardError.write((line + "\n").data(using: .utf8)!) }
    }

    /// The decision applied in this process (nil before any OpenCL call).
    public static var current: Decision? { lock.lock(); defer { lock.unlock() }; return decision }
}
