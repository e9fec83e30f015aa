// common.h: prepended to every kernel file. OpenCL C 1.2.
// Sizes travel as int; element counts stay below 2^31 by construction (checked on the host).
#define IDX4(n, c, h, w, C, H, W) ((((n) * (C) + (c)) * (H) + (h)) * (W) + (w))

// Deterministic work-group sum for kernels launched with local size RS_WG (a power of two):
// every item passes its partial, a fixed-shape tree adds them, every item gets the total.
// The order of additions depends only on RS_WG, so reruns (and devices) agree bit for bit.
// RS_WG: -D from OpenCL/KernelConstants.swift (the host uses it too).
float wg_sum(__local float* scratch, float v) {
    int lid = get_local_id(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RS_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
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
