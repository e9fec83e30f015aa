import Foundation

// Launch helper shared by the attention, loss, norm and optim launchers.
extension CLBackend {
    /// Whether the memory-bound kernels take their GPU layout: several work-groups per reduced
    /// channel, neighbouring work-items on neighbouring addresses (coalesced), one item per pixel
    /// where a kernel loops over channels. True on devices that prefer local memory (GPUs, and
    /// Oclgrind's simulated GPU); CPU devices keep the contiguous-span, 8-wide kernels, which
    /// stream on one core. REFINESEG_GLUE_VARIANT = gpu or cpu forces one layout (so the GPU
    /// kernels can be checked on PoCL too).
    var gpuGlue: Bool {
        switch getenv("REFINESEG_GLUE_VARIANT").map({ String(cString: $0) }) {
        case "gpu": return true
        case "cpu": return false
        default: return ctx.info.prefersLocalMemory
        }
    }

    /// Work-group width of the GPU layout's one-item-per-pixel (or per-value) kernels: 64 items,
    /// two NVIDIA warps or one AMD wavefront (a host-only size: the kernels check their index).
    static let pixelGroup = 64

    /// Chunks per plane of `hw` values and partials per channel (`n` planes) of the chunked GPU
    /// reductions (chunk_plane in Kernels/common.h); they launch `channels · per` groups of
    /// `KernelConstants.gpuGroup` items.
    func gpuChunks(n: Int, hw: Int) -> (chunks: Int, per: Int) {
        let chunks = max((hw + KernelConstants.gpuChunk - 1) / KernelConstants.gpuChunk, 1)
        return (chunks, n * chunks)
    }

    /// Launches `kernel` with one work-group per plane.
    func runPerGroup(_ kernel: String, file: String, options: String = "", _ args: [KernelArg], groups: Int, bytes: Int? = nil) throws {
        let wg = KernelConstants.reductionGroup
        try run(kernel, file: file, options: options, args, global: [max(groups, 1) * wg], local: [wg], bytes: bytes)
    }
}
