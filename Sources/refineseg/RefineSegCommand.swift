import ArgumentParser
import RefineSeg

@main
struct RefineSegCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refineseg",
        abstract: "Train and run DFR-UNet medical image segmentation on any OpenCL device.",
        subcommands: [DevicesCommand.self, CheckCommand.self, BenchCommand.self]
    )
}
