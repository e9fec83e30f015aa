import Foundation
import PackagePlugin

/// Embeds every `Kernels/*.cl` file into the RefineSeg library as a Swift string literal,
/// so the installed `refineseg` binary runs from any directory without a resource bundle.
@main
struct EmbedKernels: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let kernels = context.package.directoryURL.appendingPathComponent("Kernels")
        let names = try FileManager.default.contentsOfDirectory(atPath: kernels.path)
            .filter { $0.hasSuffix(".cl") || $0.hasSuffix(".h") }
            .sorted()
        let inputs = names.map { kernels.appendingPathComponent($0) }
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("KernelSources.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(names.count) OpenCL kernel files",
                executable: try context.tool(named: "embed-kernels").url,
                arguments: [output.path] + inputs.map(\.path),
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
