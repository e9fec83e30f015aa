import ArgumentParser

/// `refineseg bench …`: a parent for the benchmark verbs; each lives in its own Bench*Command.swift.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks (device times, validated against the CPU reference first).",
        subcommands: [BenchKernelsCommand.self, BenchTrainCommand.self, BenchRooflineCommand.self])
}
