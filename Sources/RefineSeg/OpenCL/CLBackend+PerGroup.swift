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

    /// Work-groups a CPU-layout launch aims for (`runItems`): several per core, so that a core
    /// another process slows down holds back only a small share of the launch (PoCL hands whole
    /// work-groups to its threads), and few enough that a group's fixed cost stays small.
    static let cpuGroups = 32

    /// Launches a CPU-layout kernel over `items` work-items (dimension 0; further dimensions as
    /// given): groups of the largest power of two items along dimension 0 that still leaves
    /// `cpuGroups` groups (at least 1), the global size rounded up to it, so the kernel checks
    /// its index against the real count. Its items never synchronise (no barriers), except for
    /// channel_mlp_gate's one barrier among the items of a group and channel_gate_mlp_backward_cpu's
    /// completion counter (an atomic int).
    func runItems(_ kernel: String, file: String, options: String = "", _ args: [KernelArg], items: [Int],
                  flops: Double? = nil, bytes: Int? = nil) throws {
        guard items.allSatisfy({ $0 > 0 }) else { return }
        let total = items.reduce(1, *)
        var l = 1
        while l * 2 <= items[0] && total / (l * 2) >= Self.cpuGroups { l *= 2 }
        try run(kernel, file: file, options: options, args, global: items, local: [l] + Array(repeating: 1, count: items.count - 1),
                flops: flops, bytes: bytes)
    }

    /// Launches `kernel` with one work-group per plane.
    func runPerGroup(_ kernel: String, file: String, options: String = "", _ args: [KernelArg], groups: Int, bytes: Int? = nil) throws {
        let wg = KernelConstants.reductionGroup
        try run(kernel, file: file, options: options, args, global: [max(groups, 1) * wg], local: [wg], bytes: bytes)
    }
}
