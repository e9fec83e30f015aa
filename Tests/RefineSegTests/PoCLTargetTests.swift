import XCTest
@testable import RefineSeg
@testable import RefineSegDiagnostics

/// The choice of PoCL's CPU target from /proc/cpuinfo and the environment (no OpenCL call),
/// and the small-shape subset of the op registry that CI runs under Oclgrind.
final class PoCLTargetTests: XCTestCase {
    /// /proc/cpuinfo of a Zen 4 EPYC (trimmed): AVX-512 with every subset skylake-avx512 needs.
    static let zen4 = """
        processor\t: 0
        vendor_id\t: AuthenticAMD
        cpu family\t: 25
        model\t\t: 17
        model name\t: AMD EPYC 9R14 96-Core Processor
        flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 popcnt avx f16c avx2 bmi1 bmi2 avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi

        processor\t: 1
        flags\t\t: fpu
        """
    /// A Zen 3 EPYC: AVX2 only.
    static let zen3 = """
        vendor_id\t: AuthenticAMD
        flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2
        """
    /// Xeon Phi style: avx512f and cd without bw, dq, vl (skylake-avx512 code would fault).
    static let knl = "flags\t\t: sse sse2 avx avx2 avx512f avx512cd avx512pf avx512er\n"

    func testFlagsComeFromTheFirstProcessor() {
        let flags = PoCLTarget.flags(cpuinfo: Self.zen4)
        XCTAssert(flags.contains("avx512bw") && flags.contains("sse2"))
        XCTAssertFalse(flags.contains("model"))
        XCTAssertEqual(PoCLTarget.flags(cpuinfo: "processor\t: 0\n"), [])
    }

    func testAVX512HostsAskForSkylakeAVX512() throws {
        let d = try PoCLTarget.decide(cpuinfo: Self.zen4, environment: [:])
        XCTAssertEqual(d.target, "skylake-avx512")
        XCTAssertEqual(d.environment, ["POCL_LLVM_CPU_NAME": "skylake-avx512", "POCL_KERNELLIB_NAME": "avx512"])
        XCTAssertEqual(try PoCLTarget.decide(cpuinfo: Self.zen4, environment: ["REFINESEG_POCL_CPU": "auto"]), d)
    }

    func testHostsWithoutTheWholeAVX512SetAreLeftAlone() throws {
        for (cpuinfo, reason) in [(Self.zen3, "no AVX-512"), (Self.knl, "lacks avx512bw, avx512dq, avx512vl"), ("", "no CPU flags")] {
            let d = try PoCLTarget.decide(cpuinfo: cpuinfo, environment: [:])
            XCTAssertNil(d.target)
            XCTAssertEqual(d.environment, [:])
            XCTAssert(d.reason.contains(reason), d.reason)
        }
    }

    func testTheUsersOwnSettingsWinInAutoMode() throws {
        for key in ["POCL_LLVM_CPU_NAME", "POCL_KERNELLIB_NAME"] {
            let d = try PoCLTarget.decide(cpuinfo: Self.zen4, environment: [key: "haswell"])
            XCTAssertNil(d.target)
            XCTAssertEqual(d.environment, [:])
            XCTAssert(d.reason.contains(key), d.reason)
        }
    }

    func testOffAndForcedNames() throws {
        let off = try PoCLTarget.decide(cpuinfo: Self.zen4, environment: ["REFINESEG_POCL_CPU": "off"])
        XCTAssertNil(off.target)
        XCTAssertEqual(off.environment, [:])
        // A forced name is asked for even on a host without AVX-512 and over the user's POCL_* settings.
        let haswell = try PoCLTarget.decide(cpuinfo: Self.zen3, environment: ["REFINESEG_POCL_CPU": "haswell", "POCL_LLVM_CPU_NAME": "x"])
        XCTAssertEqual(haswell.environment, ["POCL_LLVM_CPU_NAME": "haswell", "POCL_KERNELLIB_NAME": "avx2"])
        // Targets without a Debian kernel library only set the LLVM name.
        let icelake = try PoCLTarget.decide(cpuinfo: Self.zen4, environment: ["REFINESEG_POCL_CPU": "icelake-server"])
        XCTAssertEqual(icelake.environment, ["POCL_LLVM_CPU_NAME": "icelake-server"])
        XCTAssertThrowsError(try PoCLTarget.decide(cpuinfo: Self.zen4, environment: ["REFINESEG_POCL_CPU": "Sky lake"])) { error in
            XCTAssert("\(error)".contains("REFINESEG_POCL_CPU=Sky lake"), "\(error)")
        }
    }

    func device(_ name: String, platform: String = "Portable Computing Language", type: String = "CPU") -> DeviceInfo {
        DeviceInfo(index: 0, platform: platform, platformVersion: "", name: name, vendor: "", version: "", driverVersion: "",
                   openCLCVersion: "", type: type, computeUnits: 2, globalMemoryBytes: 0, localMemoryBytes: 0,
                   localMemoryIsGlobal: true, maxWorkGroupSize: 4096, maxAllocationBytes: 0)
    }

    func testTheSummaryReadsTheTargetFromPoCLsDeviceName() throws {
        XCTAssertEqual(PoCLTarget.deviceTarget(device("pthread-skylake-avx512-Intel(R) Xeon(R) Processor")), "skylake-avx512")
        XCTAssertEqual(PoCLTarget.deviceTarget(device("pthread-haswell-AMD EPYC 7B13")), "haswell")
        XCTAssertEqual(PoCLTarget.deviceTarget(device("cpu-znver3-AMD Ryzen 9")), "znver3")
        XCTAssertNil(PoCLTarget.deviceTarget(device("Oclgrind Simulator", platform: "Oclgrind", type: "GPU")))
        let asked = try PoCLTarget.decide(cpuinfo: Self.zen4, environment: [:])
        let kept = try XCTUnwrap(PoCLTarget.summary(asked, devices: [device("pthread-haswell-AMD EPYC")]))
        XCTAssert(kept.contains("haswell, although refineseg asked for skylake-avx512"), kept)
        let got = try XCTUnwrap(PoCLTarget.summary(asked, devices: [device("pthread-skylake-avx512-AMD EPYC")]))
        XCTAssert(got.hasPrefix("PoCL CPU target: skylake-avx512 (asked for"), got)
        XCTAssertNil(PoCLTarget.summary(asked, devices: [device("NVIDIA H100", platform: "NVIDIA CUDA", type: "GPU")]))
    }

    /// This process's own decision, applied before the first OpenCL call, matches what PoCL's device shows.
    func testThisProcessAskedBeforeThePlatformLoaded() throws {
        let backend = try openCLBackendOrSkip()
        let decision = try XCTUnwrap(PoCLTarget.current, "the decision is made before any OpenCL call")
        guard let used = PoCLTarget.deviceTarget(backend.info) else { throw XCTSkip("device 0 is not a PoCL CPU device") }
        if let asked = decision.target, asked == PoCLTarget.avx512Target || PoCLTarget.kernelLibraries[asked] != nil {
            // Targets with a Debian kernel library are honoured by both kinds of PoCL build.
            XCTAssertEqual(used, asked)
        }
    }

    // MARK: the small-shape subset

    func testEveryOpHasASmallCaseAndTheSubsetIsSmall() {
        let small = OpRegistry.cases(op: nil, small: true)
        let names = Set(small.map(\.op))
        for op in OpRegistry.opNames { XCTAssert(names.contains(op), "\(op) has no small case for `check --small`") }
        XCTAssert(small.allSatisfy(\.isSmall))
        XCTAssertLessThan(small.count, OpRegistry.all().count)
        // `--op conv2d` selects the family: conv2d and the conv2d_* ops (conv2d_act, …), nothing else;
        // an op name without sub-ops selects only itself.
        let family = Set(OpRegistry.cases(op: "conv2d", small: true).map(\.op))
        XCTAssert(family.contains("conv2d"))
        XCTAssertEqual(family.filter { $0 != "conv2d" && !$0.hasPrefix("conv2d_") }, [])
        XCTAssertFalse(family.contains("conv_transpose2d"))
        XCTAssertEqual(Set(OpRegistry.cases(op: "conv2d_act", small: true).map(\.op)), ["conv2d_act"])
    }

    func testSmallMarksOverrideTheSizeRule() {
        let big = OpInput("x", [4097])
        func make(_ mark: Bool?, _ input: OpInput) -> OpCase {
            OpCase(op: "copy", params: "", inputs: [input], small: mark, forward: { b, x in [try b.copy(x[0])] })
        }
        XCTAssertFalse(make(nil, big).isSmall)
        XCTAssertTrue(make(true, big).isSmall)
        XCTAssertTrue(make(nil, OpInput("x", [OpCase.smallElements])).isSmall)
        XCTAssertFalse(make(false, OpInput("x", [1])).isSmall)
    }
}
