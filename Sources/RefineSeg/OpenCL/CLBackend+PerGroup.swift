// Launch helper shared by the attention, loss, norm and optim launchers.
extension CLBackend {
    /// Launches `kernel` with one work-group per plane.
    func runPerGroup(_ kernel: String, file: String, options: String = "", _ args: [KernelArg], groups: Int, bytes: Int? = nil) throws {
        let wg = KernelConstants.reductionGroup
        try run(kernel, file: file, options: options, args, global: [max(groups, 1) * wg], local: [wg], bytes: bytes)
    }
}
