import ArgumentParser
import Foundation
import RefineSeg

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "List OpenCL platforms and devices; * marks the default.")

    func run() throws {
        try runReportingErrors {
            let devices = try OpenCLDevices.list()
            let chosen = try OpenCLDevices.defaultIndex(in: devices)
            for d in devices {
                print("\(d.index == chosen ? "*" : " ") [\(d.index)] \(d.name) — \(d.vendor), \(d.type)")
                print("      platform \(d.platform) (\(d.platformVersion)); device \(d.version); driver \(d.driverVersion); \(d.openCLCVersion)")
                print("      \(d.computeUnits) compute units, global \(formatBytes(d.globalMemoryBytes)), local \(formatBytes(d.localMemoryBytes))\(d.localMemoryIsGlobal ? " (emulated in global memory)" : ""), max work-group \(d.maxWorkGroupSize)")
            }
            if let decision = PoCLTarget.current, let line = PoCLTarget.summary(decision, devices: devices) { print(line) }
        }
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

/// Runs `body`, turning any thrown error into one line on stderr and exit status 1 (no stack trace).
func runReportingErrors(_ body: () throws -> Void) throws {
    // In an MPI job a rank that fails ends the whole job, so no other rank waits for it forever.
    var rank: String { Distributed.current.map { "rank \($0.rank): " } ?? "" }
    do { try body() } catch let error as RefineSegError {
        FileHandle.standardError.write(("error: " + rank + error.description + "\n").data(using: .utf8)!)
        Distributed.abortIfRunning(code: 1)
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(("error: \(rank)\(error.localizedDescription)\n").data(using: .utf8)!)
        Distributed.abortIfRunning(code: 1)
        throw ExitCode(1)
    }
}

/// Pads (or keeps) `text` to `width` characters, for aligned tables.
func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return right ? fill + text : text + fill
}
