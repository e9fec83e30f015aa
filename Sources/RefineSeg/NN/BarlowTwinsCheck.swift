/// Refuses a Barlow Twins batch that cannot be standardised: the loss divides each embedding
/// dimension by its standard deviation over the batch, which a single image does not have
/// (its batch-normalised embedding is identically 0 and the loss carries no signal).
public func checkBarlowTwinsBatch(_ n: Int) throws {
    guard n >= 2 else {
        throw RefineSegError.invalidArgument(
            "Barlow Twins needs a batch of at least 2 images (got \(n)): the batch standardisation divides by the batch's standard deviation")
    }
}
