// TEMPORARY during development: ops not yet implemented throw `unsupported`.
// Each op family's owner deletes its section when the real implementation lands.
// MARK: AttentionOps on CLBackend
extension CLBackend: AttentionOps {
    public func spatialMeanMax(_ x: Tensor) throws -> (mean: Tensor, max: Tensor) { throw RefineSegError.unsupported(op: "spatialMeanMax", backend: name) }
    public func spatialMeanMaxBackward(dMean: Tensor, dMax: Tensor, input x: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "spatialMeanMaxBackward", backend: name) }
    public func channelMeanMax(_ x: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "channelMeanMax", backend: name) }
    public func channelMeanMaxBackward(_ dy: Tensor, input x: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "channelMeanMaxBackward", backend: name) }
    public func broadcastSpatial(_ x: Tensor, height: Int, width: Int) throws -> Tensor { throw RefineSegError.unsupported(op: "broadcastSpatial", backend: name) }
    public func broadcastSpatialBackward(_ dy: Tensor) throws -> Tensor { throw RefineSegError.unsupported(op: "broadcastSpatialBackward", backend: name) }
}
