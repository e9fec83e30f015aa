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

// The CPU-layout kernels (one item doing what a work-group of RS_WG items does in the group kernels)
// replay the group's order of additions, so both give bit-identical results: item_span is item l's
// contiguous span [*lo, *hi) of a plane of HW values (⌈HW / RS_WG⌉ rounded up to 8; the group
// kernels' bn_span and plane_span), and tree_sum adds the RS_WG items' partials as wg_sum's tree does.
inline void item_span(int l, int HW, int* lo, int* hi) {
    int per = ((HW + RS_WG - 1) / RS_WG + 7) & ~7;
    *lo = min(l * per, HW);
    *hi = min(*lo + per, HW);
}

inline float tree_sum(float* part) {
    for (int s = RS_WG / 2; s > 0; s >>= 1)
        for (int l = 0; l < s; l++) part[l] += part[l + s];
    return part[0];
}

// Σ of a plane of HW values as a group of RS_WG items that strides over it adds them (item l adds
// values l, l + RS_WG, …, then wg_sum's tree): eight virtual items at a time as the lanes of one
// vector (the same additions), then tree_sum. broadcast_spatial_backward's order.
inline float strided_plane_sum(__global const float* p, int HW) {
    float8 acc8[RS_WG / 8];
    for (int j = 0; j < RS_WG / 8; j++) acc8[j] = 0.0f;
    int i = 0;
    for (; i + RS_WG <= HW; i += RS_WG)
        for (int j = 0; j < RS_WG / 8; j++) acc8[j] += vload8(j, p + i);
    float part[RS_WG];
    for (int j = 0; j < RS_WG / 8; j++) vstore8(acc8[j], j, part);
    for (int l = 0; i + l < HW; l++) part[l] += p[i + l];
    return tree_sum(part);
}

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

// The 8 lanes' sum in a fixed order.
inline float hsum8(float8 v) {
    float4 s = v.lo + v.hi;
    return (s.x + s.y) + (s.z + s.w);
}

// The 8 lanes' sum in attention.cl's order.
inline float lanes_sum(float8 v) { return (v.s0 + v.s1 + v.s2 + v.s3) + (v.s4 + v.s5 + v.s6 + v.s7); }

// First maximum over the 8 lanes of a plane walk: lane k holds its first maximum bv.sk at index
// bi.sk (INT_MAX: the lane saw no value); the result is the smallest index among the largest
// values, i.e. the first maximum of everything the lanes saw (*bi = INT_MAX when none did).
// attention.cl's channel descriptors and norm.cl's bn_train_cpu (DESC=1) share it.
inline void first_max_of_lanes(float8 bv8, int8 bi8, float* bv, int* bi) {
    float bvs[8] = {bv8.s0, bv8.s1, bv8.s2, bv8.s3, bv8.s4, bv8.s5, bv8.s6, bv8.s7};
    int bis[8] = {bi8.s0, bi8.s1, bi8.s2, bi8.s3, bi8.s4, bi8.s5, bi8.s6, bi8.s7};
    *bv = -INFINITY;
    *bi = INT_MAX;
    for (int k = 0; k < 8; k++)
        if (bis[k] != INT_MAX && (*bi == INT_MAX || bvs[k] > *bv || (bvs[k] == *bv && bis[k] < *bi))) { *bv = bvs[k]; *bi = bis[k]; }
}

// One step of that walk: v at indices i .. i + 7 (a strictly larger value, or the lane's first, replaces).
inline void first_max_step(float8 v, int i, float8* bv8, int8* bi8) {
    int8 take = (v > *bv8) | (*bi8 == INT_MAX);
    *bv8 = select(*bv8, v, take);
    *bi8 = select(*bi8, (int8)(i) + (int8)(0, 1, 2, 3, 4, 5, 6, 7), take);
}

// The 16 lanes' sum in a fixed order (hsum8 of each half).
inline float hsum16(float16 v) { return hsum8(v.lo) + hsum8(v.hi); }

// 16 values p[i .. i + 15] of a run of len values (lanes past len read 0), and the store that
// writes only the lanes before len; mask16: 1 for lanes before len, 0 past.
inline float16 load16_upto(__global const float* p, int i, int len) {
    if (i + 16 <= len) return vload16(0, p + i);
    float t[16];
    for (int q = 0; q < 16; q++) t[q] = i + q < len ? p[i + q] : 0.0f;
    return vload16(0, t);
}
inline void store16_upto(__global float* p, int i, int len, float16 v) {
    if (i + 16 <= len) { vstore16(v, 0, p + i); return; }
    float t[16];
    vstore16(v, 0, t);
    for (int q = 0; q < 16 && i + q < len; q++) p[i + q] = t[q];
}
inline float16 mask16(int i, int len) {
    int16 at = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + i;
    return select((float16)(0.0f), (float16)(1.0f), at < len);
}

// Σ (p[i] − shift) and Σ (p[i] − shift)² over [0, n): four 16-wide accumulators (independent
// chains, so the adds overlap), then a fixed-order tail.
inline float run_sum16(__global const float* p, int n, float shift) {
    float16 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 += vload16(0, p + i) - shift; a1 += vload16(1, p + i) - shift;
        a2 += vload16(2, p + i) - shift; a3 += vload16(3, p + i) - shift;
    }
    for (; i + 16 <= n; i += 16) a0 += vload16(0, p + i) - shift;
    float16 a = (a0 + a1) + (a2 + a3);
    float s = hsum16(a);
    for (; i < n; i++) s += p[i] - shift;
    return s;
}
inline float run_sumsq16(__global const float* p, int n, float shift) {
    float16 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        float16 d0 = vload16(0, p + i) - shift, d1 = vload16(1, p + i) - shift;
        float16 d2 = vload16(2, p + i) - shift, d3 = vload16(3, p + i) - shift;
        a0 += d0 * d0; a1 += d1 * d1; a2 += d2 * d2; a3 += d3 * d3;
    }
    for (; i + 16 <= n; i += 16) { float16 d = vload16(0, p + i) - shift; a0 += d * d; }
    float16 a = (a0 + a1) + (a2 + a3);
    float s = hsum16(a);
    for (; i < n; i++) { float d = p[i] - shift; s += d * d; }
    return s;
}
