import ArgumentParser
import Foundation
import RefineSeg

@main
struct RefineSegCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refineseg",
        abstract: "Train and run DFR-UNet medical image segmentation on any OpenCL device.",
        subcommands: [DemoCommand.self, SuggestCommand.self, TrainCommand.self, EvaluateCommand.self, AnnotateCommand.self, IngestCommand.self, ExportCommand.self, PretrainCommand.self, StudyCommand.self, CheckCommand.self, DevicesCommand.self, BenchCommand.self]
    )

    /// Like ArgumentParser's `main`, but a refused argument prints one `error: …` line (the
    /// same shape as every other error) instead of the message followed by the usage text.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            // Help, version and `ExitCode` (whose message was already printed) behave as usual.
            if code == .success || error is ExitCode { exit(withError: error) }
            let verb = CommandLine.arguments.dropFirst().first { name in
                configuration.subcommands.contains { $0.configuration.commandName == name }
            }
            let message = self.message(for: error).split(whereSeparator: \.isNewline).joined(separator: "; ")
            FileHandle.standardError.write(Data("error: \(message) (see `refineseg \(verb.map { $0 + " " } ?? "")--help`)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}
