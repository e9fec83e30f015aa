/// Sizes that both a launcher (work-group counts, local sizes, items per launch) and its kernel
/// use, defined once here and handed to every program build as `-D NAME=value` (STYLE.md rule
/// 15), so the host and the kernels cannot disagree. The .cl files have no defaults for these:
/// every build goes through `CLContext.program` (Oclgrind too, since it runs the `refineseg`
/// binary), and a build without them fails naming the macro.
enum KernelConstants {
    /// Work-group size of every work-group reduction (RS_WG in Kernels/common.h, a power of two;
    /// the order of additions depends on it, so it is fixed, not tuned).
    static let reductionGroup = 64
    /// Work-group size of the chunked GPU reductions (RS_GPU_WG, Kernels/common.h: sum_per_channel,
    /// batch norm on `CLBackend.gpuGlue` devices), and their values per group (RS_CHUNK, a multiple
    /// of it: 16 loads per item).
    static let gpuGroup = 256
    static let gpuChunk = 4096
    /// Values per item of the flat elementwise kernels (EW_SPAN, Kernels/elementwise.cl).
    static let elementwiseSpan = 64
    /// Values per item of `bn_eval` (BN_SPAN, Kernels/norm.cl).
    static let normSpan = 256
    /// Pixels per item of channel_mean_max (CM_SPAN, Kernels/attention.cl).
    static let channelSpan = 64
    /// Pixels per item of channel_mean_max_backward on CPU devices (CMB_CHUNK, Kernels/attention.cl,
    /// a multiple of 8): each channel pass streams runs of this many pixels of every plane.
    static let channelBackwardChunk = 512
    /// Values per item of the span-launched attention kernels (SPAN, Kernels/attention.cl).
    static let attentionSpan = 256
    /// Widest hidden layer of the channel-attention MLP that channel_mlp_gate keeps in private
    /// memory (MLP_HD_MAX, Kernels/attention.cl); wider ones run channel_mlp, then channel_gate.
    static let mlpHiddenMax = 64
    /// Pixels per item of the CPU kernels that stream every channel's plane chunk by chunk
    /// (PX_CHUNK, Kernels/attention.cl): a chunk of the per-pixel state stays in the core's cache.
    static let pixelChunk = 2048
    /// Elements per work-group of bce_partial (BCE_CHUNK, Kernels/losses.cl).
    static let bceChunk = 4096
    /// Pixels per seg_pixel work-group (SEG_CHUNK, Kernels/losses.cl).
    static let segChunk = 1024
    /// Pixels per item of lac_norms and seg_backward on CPU devices (LAC_SPAN_CPU, Kernels/losses.cl,
    /// a multiple of 4; GPUs use 4: `CLBackend.lacSpan` and the kernel file choose alike).
    static let lacSpan = 64
    /// Elements per work-group of sumsq_partial (SUMSQ_CHUNK, Kernels/optim.cl).
    static let sumsqChunk = 4096
    /// Elements per work-group of flat_sumsq and flat_adam (FLAT_CHUNK, Kernels/optim.cl).
    static let flatChunk = 16384

    /// The `-D` options of a build of `Kernels/<file>.cl` (common.h's RS_WG, RS_GPU_WG and RS_CHUNK go to every file).
    static func options(for file: String) -> String {
        var defines = [("RS_WG", reductionGroup), ("RS_GPU_WG", gpuGroup), ("RS_CHUNK", gpuChunk)]
        switch file {
        case "elementwise": defines.append(("EW_SPAN", elementwiseSpan))
        case "norm": defines.append(("BN_SPAN", normSpan))
        case "attention": defines += [("CM_SPAN", channelSpan), ("CMB_CHUNK", channelBackwardChunk), ("SPAN", attentionSpan),
                                      ("PX_CHUNK", pixelChunk), ("MLP_HD_MAX", mlpHiddenMax)]
        case "losses": defines += [("BCE_CHUNK", bceChunk), ("SEG_CHUNK", segChunk), ("LAC_SPAN_CPU", lacSpan)]
        case "optim": defines += [("SUMSQ_CHUNK", sumsqChunk), ("FLAT_CHUNK", flatChunk)]
        default: break
        }
        return defines.map { "-D\($0.0)=\($0.1)" }.joined(separator: " ")
    }
}
