/// Opens a checkpoint as a ready DFR-UNet on `backend` (architecture from its metadata).
public func loadModel(_ path: String, backend: Backend) throws -> DFRUNet {
    let file = try SafeTensorsFile.read(path)
    let config = try Checkpoint.modelConfig(file, path: path)
    let model = try DFRUNet(backend, config: config, seed: 0)
    try Checkpoint.load(file, path: path, into: model, backend: backend)
    return model
}
