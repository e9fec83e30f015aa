import ArgumentParser
import Foundation
import RefineSeg
import RefineSegONNX

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a model checkpoint as an ONNX graph (opset 17, dynamic height/width) plus ONNX.json (normalisation, padding, threshold, channels).")

    @Option(help: "Model checkpoint (RUN/model.safetensors).") var model: String
    @Option(help: "ONNX file to write; its sidecar is written beside it as FILE.json.") var onnx: String

    func validate() throws {
        guard onnx.hasSuffix(".onnx") else { throw ValidationError("--onnx must name a .onnx file (got \(onnx))") }
    }

    func run() throws {
        try runReportingErrors {
            let report = try exportONNX(checkpoint: model, to: onnx)
            print(String(format: "wrote %@ (%.2f MB, ONNX opset %d, %d nodes, in_channels %d, width %d) and %@",
                         report.onnxPath, Double(report.bytes) / 1e6, report.opset, report.nodes,
                         report.config.inChannels, report.config.width, report.sidecarPath))
        }
    }
}
