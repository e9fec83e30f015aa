// Launch helper shared by the attention, loss, norm and optim launchers.
extension CLBackend {
    /// Local size of the kernels that reduce one plane per work-group (RS_WG in Kernels/common.h).
    static let reductionGroup = 64

    /// Launches `kernel` with one work-group per plane.
    func runPerGroup(_ kernel: String, file: String, options: String = "", _ args: [KernelArg], groups: Int, bytes: Int? = nil) throws {
        let wg = Self.reductionGroup
        try run(kernel, file: file, options: options, args, global: [max(groups, 1) * wg], local: [wg], bytes: bytes)
    }
}
