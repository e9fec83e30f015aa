import ArgumentParser
import RefineSeg

@main
struct RefineSegCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refineseg",
        abstract: "Train and run DFR-UNet medical image segmentation on any OpenCL device.",
        subcommands: [DemoCommand.self, TrainCommand.self, EvaluateCommand.self, AnnotateCommand.self, PretrainCommand.self, StudyCommand.self, CheckCommand.self, DevicesCommand.self, BenchCommand.self]
    )
}
