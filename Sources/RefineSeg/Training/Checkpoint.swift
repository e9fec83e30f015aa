import Foundation

/// Checkpoints are safetensors files with docs/MODEL.md's tensor names, loadable by PyTorch.
public enum Checkpoint {
    /// Writes the module's parameters and buffers (plus `extra` tensors) atomically. Refuses
    /// tensors holding NaN or infinity, so a diverged run never replaces a good checkpoint.
    public static func save(_ module: Module, extra: [(String, Tensor)] = [], metadata: [String: String], to path: String) throws {
        var tensors = [(name: String, shape: [Int], values: [Float])]()
        for (name, p) in module.namedParameters() { tensors.append((name, p.value.shape.dims, try p.value.toArray())) }
        for (name, t) in extra { tensors.append((name, t.shape.dims, try t.toArray())) }
        if let bad = tensors.first(where: { t in t.values.contains { !$0.isFinite } }) {
            throw RefineSegError.numerical("tensor \(bad.name) holds NaN or infinite values: \(path) not written (the previous file is kept)")
        }
        try SafeTensorsFile(tensors: tensors, metadata: metadata).write(to: path)
    }

    /// What `load` did.
    public struct LoadReport {
        public var loaded: [String] = []
        /// Parameters the file did not provide (initialised fresh), for partial loads.
        public var fresh: [String] = []
    }

    /// Parameters only the training loss uses (the `lac` embedding head of docs/MODEL.md's
    /// lesion-aware term): a checkpoint may lack them (a PyTorch export, a run with the term
    /// off); they are then reported fresh and keep their initial values.
    public static let trainingOnlyPrefixes = ["lac."]

    /// Loads tensors into `module` by name. With `only` (name prefixes), loads just those and
    /// reports the rest as fresh; otherwise every parameter must be present except the
    /// training-only ones (`trainingOnlyPrefixes`), which are fresh when absent. Names and shapes
    /// are checked before anything is changed, and the first difference is named.
    @discardableResult
    public static func load(_ file: SafeTensorsFile, path: String, into module: Module, backend: Backend,
                            only prefixes: [String]? = nil) throws -> LoadReport {
        var byName = [String: (shape: [Int], values: [Float])]()
        for t in file.tensors { byName[t.name] = (t.shape, t.values) }
        let params = module.namedParameters()
        var report = LoadReport()
        var updates = [(Parameter, Shape, [Float])]()
        for (name, p) in params {
            let wanted = prefixes.map { list in list.contains { name.hasPrefix($0) } } ?? true
            guard wanted, let t = byName[name] else {
                if wanted && prefixes == nil && !trainingOnlyPrefixes.contains(where: { name.hasPrefix($0) }) {
                    throw RefineSegError.io(file: path, message: "tensor \(name) \(p.value.shape) is missing (is this a checkpoint of this model and width?)")
                }
                if prefixes != nil, wanted {
                    throw RefineSegError.io(file: path, message: "encoder tensor \(name) \(p.value.shape) is missing")
                }
                report.fresh.append(name)
                continue
            }
            guard Shape(t.shape) == p.value.shape else {
                throw RefineSegError.io(file: path, message: "tensor \(name) has shape \(Shape(t.shape)) but the model needs \(p.value.shape) (different width or in_channels?)")
            }
            updates.append((p, p.value.shape, t.values))
            report.loaded.append(name)
        }
        if prefixes == nil {
            let known = Set(params.map(\.0))
            let unexpected = file.tensors.map(\.name).filter { !known.contains($0) && !$0.hasPrefix("optimizer.") && !$0.hasPrefix("projector.")
                && !$0.hasPrefix(WeightAverage.prefix) }
            if let first = unexpected.first {
                throw RefineSegError.io(file: path, message: "unexpected tensor \(first) (\(unexpected.count) not in this model)")
            }
        }
        for (p, shape, values) in updates { p.value = try backend.tensor(values, shape: shape) }
        return report
    }

    /// The one line that says a load initialised the `lac` head fresh, or nil when it did not.
    public static func freshHeadNote(_ report: LoadReport, path: String) -> String? {
        let fresh = report.fresh.filter { name in trainingOnlyPrefixes.contains { name.hasPrefix($0) } }
        guard !fresh.isEmpty, report.loaded.contains(where: { $0.hasPrefix("head.") }) else { return nil }
        return "\(path) has no lac head (\(fresh.joined(separator: ", "))): initialised fresh; it is used only by the lesion-aware loss"
    }

    /// The architecture recorded in a checkpoint's metadata.
    public static func modelConfig(_ file: SafeTensorsFile, path: String) throws -> ModelConfig {
        guard let c = file.metadata["in_channels"].flatMap(Int.init), let w = file.metadata["width"].flatMap(Int.init) else {
            throw RefineSegError.io(file: path, message: "metadata lacks in_channels and width: not a RefineSeg checkpoint")
        }
        return ModelConfig(inChannels: c, width: w)
    }
}
