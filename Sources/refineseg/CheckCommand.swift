import ArgumentParser
import Foundation
import RefineSeg
import RefineSegDiagnostics

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Run the op registry on a device against the CPU reference; exits non-zero if any case fails.")

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Only cases of this op (e.g. conv2d, reduce_max, or a family prefix such as reduce).")
    var op: String?

    @Flag(help: "Also run the finite-difference gradient checks of the CPU reference.")
    var grad = false

    @Option(help: "Write every row as JSON to this file.")
    var json: String?

    @Flag(help: "Print only failing rows and the summary.")
    var quiet = false

    @Flag(help: ArgumentHelp("Only the small-shape subset: every op family, at shapes a simulator such as Oclgrind runs in minutes.",
                             discussion: "In CI: oclgrind --data-races --check-api refineseg check --small"))
    var small = false

    func validate() throws {
        if let op, OpRegistry.cases(op: op, small: small).isEmpty {
            throw ValidationError("--op \(op) matches no\(small ? " small" : "") case; ops: \(OpRegistry.opNames.joined(separator: ", "))")
        }
    }

    func run() throws {
        try runReportingErrors {
            let backend = try deviceOptions.openCL()
            let cases = OpRegistry.cases(op: op, small: small)
            print("device: \(backend.name), \(cases.count)\(small ? " small" : "") cases")
            print(pad("op", 22) + pad("params", 45) + pad("pass", 10) + pad("nmse", 11, right: true) + pad("max err", 11, right: true)
                  + pad("tolerance", 13, right: true) + "  ok " + pad("ms", 9, right: true))
            var rows = [CheckResult]()
            for c in cases {
                var caseRows = OpCheck.run(c, on: backend)
                if grad && c.gradCheck { caseRows.append(OpCheck.gradCheck(c)) }
                for r in caseRows where !quiet || !r.passed { printRow(r) }
                rows += caseRows
            }
            let failed = rows.filter { !$0.passed }
            print("\(rows.count - failed.count) passed, \(failed.count) failed")
            if let json {
                let report = CheckReport(device: backend.info, results: rows)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try writeAtomically(try encoder.encode(report), to: json)
            }
            if !failed.isEmpty { throw ExitCode(1) }
        }
    }

    private func printRow(_ r: CheckResult) {
        let params = r.params.count > 44 ? String(r.params.prefix(43)) + "…" : r.params
        print(pad(r.op, 22) + pad(params, 45) + pad(r.pass, 10) + pad(String(format: "%.2e", r.nmse), 11, right: true)
              + pad(String(format: "%.2e", r.maxAbs), 11, right: true) + pad(r.tolerance, 13, right: true)
              + (r.passed ? "  ok   " : "  FAIL ") + pad(String(format: "%.2f", r.milliseconds), 9, right: true))
        if !r.passed { print("    \(r.message)") }
    }
}

struct CheckReport: Codable {
    var device: DeviceInfo
    var results: [CheckResult]
}
