// common.h: prepended to every kernel file. OpenCL C 1.2.
// Sizes travel as int; element counts stay below 2^31 by construction (checked on the host).
#define IDX4(n, c, h, w, C, H, W) ((((n) * (C) + (c)) * (H) + (h)) * (W) + (w))

// Deterministic work-group sum for kernels launched with local size RS_WG (a power of two):
// every item passes its partial, a fixed-shape tree adds them, every item gets the total.
// The order of additions depends only on RS_WG, so reruns (and devices) agree bit for bit.
// RS_WG: -D from OpenCL/KernelConstants.swift (the host uses it too). wg_sum_of: the same over a
// group of `size` items (a power of two; the GPU reductions use RS_GPU_WG).
float wg_sum_of(__local float* scratch, float v, int size) {
    int lid = get_local_id(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = size / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}
float wg_sum(__local float* scratch, float v) { return wg_sum_of(scratch, v, RS_WG); }

// The chunked GPU reductions (CLBackend.gpuGlue; RS_GPU_WG items per group, RS_CHUNK values per
// group, a multiple of RS_GPU_WG; both -D from OpenCL/KernelConstants.swift): work-group
// g = (c·N + n)·chunks + k reduces values [*lo, *hi) = [k·RS_CHUNK, (k+1)·RS_CHUNK) ∩ [0, HW) of
// plane (n, c), whose offset it returns; item l reads values lo + l + j·RS_GPU_WG (neighbouring
// items, neighbouring addresses). Partial g lands at index g, so a channel's partials are
// contiguous and a second pass adds them in (n, k) order.
inline size_t chunk_plane(int g, int N, int C, int HW, int chunks, int* c, int* lo, int* hi) {
    int k = g % chunks, cn = g / chunks, n = cn % N;
    *c = cn / N;
    *lo = k * RS_CHUNK;
    *hi = min(*lo + RS_CHUNK, HW);
    return ((size_t)n * C + *c) * HW;
}

// FOR_VEC4(i, lo, hi): this work-item's float4 positions i of [lo, hi) in a work-group of RS_WG items
// (a vector may pass hi only at hi itself: test i + 4 <= hi). CONTIGUOUS_ITEMS=1 (CPU devices, where
// a group's items run one after another): each item walks its own contiguous slice, which streams;
// 0 (GPUs): items interleave float4 by float4, so neighbouring items touch neighbouring memory.
#ifndef CONTIGUOUS_ITEMS
#define CONTIGUOUS_ITEMS 0
#endif
#if CONTIGUOUS_ITEMS
#define FOR_VEC4(i, lo, hi) \
    for (int i##_per = ((hi) - (lo) + RS_WG * 4 - 1) / (RS_WG * 4) * 4, \
             i##_end = min((hi), (lo) + ((int)get_local_id(0) + 1) * i##_per), \
             i = (lo) + (int)get_local_id(0) * i##_per; i < i##_end; i += 4)
#else
#define FOR_VEC4(i, lo, hi) for (int i = (lo) + (int)get_local_id(0) * 4; i < (hi); i += RS_WG * 4)
#endif
