// reduce.cl: reductions of a tensor seen as (outer, R, inner), one work item per output.
//   reduce_fwd       KIND 0 sum, 1 mean, 2 max (sum and mean with inner = 1: run_sum16 over the R values)
//   reduce_backward  gathers: each input element reads its group's gradient (max: first arg-max only)
//   reduce_fwd_group        the GPU variant for inner = 1 (CLBackend.gpuGlue): one work-group of RS_WG
//                           items per output, items stride over its R contiguous values (coalesced),
//                           a fixed tree combines them
//   reduce_backward_spread  the GPU variant of the sum and mean backward: one item per input value
//   sum_per_channel  NCHW → (C), summed in n-major order, each plane front to back (CPU devices: one
//                    item per 8 channels, one per lane, the 8 planes read 8 values at a time)
//   sum_per_channel_partial + sum_per_channel_final  the same sum on GPUs (CLBackend.gpuGlue): the
//                    first launches one work-group of RS_GPU_WG items per (channel, image, chunk of
//                    RS_CHUNK values, chunk_plane in common.h) — neighbouring items read neighbouring values, and there are
//                    enough groups for every compute unit — and writes one partial per group
//                    (wg_sum's fixed tree); the second adds each channel's partials in (n, chunk)
//                    order, one item per channel. Fixed orders: reruns are bit-identical.

__kernel void reduce_fwd(__global const float* x, __global float* y, int outer, int R, int inner, int kind) {
    int gid = get_global_id(0);
    if (gid >= outer * inner) return;
    int o = gid / inner, i = gid % inner;
    __global const float* p = x + (size_t)o * R * inner + i;
    if (inner == 1 && kind != 2) {                  // contiguous: 16-wide, four accumulators
        float acc = run_sum16(p, R, 0.0f);
        y[gid] = kind == 1 ? acc / (float)R : acc;
        return;
    }
    float acc = kind == 2 ? -INFINITY : 0.0f;
    for (int r = 0; r < R; ++r) {
        float v = p[(size_t)r * inner];
        acc = kind == 2 ? fmax(acc, v) : acc + v;
    }
    y[gid] = kind == 1 ? acc / (float)R : acc;
}

__kernel void reduce_backward(__global const float* dy, __global const float* x, __global float* dx,
                              int outer, int R, int inner, int kind) {
    int gid = get_global_id(0);
    if (gid >= outer * inner) return;
    int o = gid / inner, i = gid % inner;
    __global const float* p = x + (size_t)o * R * inner + i;
    __global float* q = dx + (size_t)o * R * inner + i;
    float g = dy[gid];
    if (kind != 2) {
        float share = kind == 1 ? g / (float)R : g;
        for (int r = 0; r < R; ++r) q[(size_t)r * inner] = share;
        return;
    }
    int best = 0;
    float bv = p[0];
    for (int r = 1; r < R; ++r) { float v = p[(size_t)r * inner]; if (v > bv) { bv = v; best = r; } }
    for (int r = 0; r < R; ++r) q[(size_t)r * inner] = r == best ? g : 0.0f;
}

// Sum (kind 0, 1) or max (kind 2) of the group's values, by a fixed tree; every item gets it.
float wg_sum_or_max(__local float* scratch, float v, int isMax) {
    int lid = get_local_id(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RS_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] = isMax ? fmax(scratch[lid], scratch[lid + s]) : scratch[lid] + scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

// Output o of a reduction with inner = 1: x[o·R … o·R + R).   one work-group per output
__kernel void reduce_fwd_group(__global const float* x, __global float* y, int outer, int R, int kind) {
    __local float scratch[RS_WG];
    int o = get_group_id(0), lid = get_local_id(0);
    if (o >= outer) return;   // the whole group: only when there are no outputs
    __global const float* p = x + (size_t)o * R;
    float acc = kind == 2 ? -INFINITY : 0.0f;
    for (int r = lid; r < R; r += RS_WG) { float v = p[r]; acc = kind == 2 ? fmax(acc, v) : acc + v; }
    float total = wg_sum_or_max(scratch, acc, kind == 2);
    if (lid == 0) y[o] = kind == 1 ? total / (float)R : total;
}

// dx = dy of the value's output (mean: / R), kinds 0 and 1.   one item per input value
__kernel void reduce_backward_spread(__global const float* dy, __global float* dx, int outer, int R, int inner, int kind) {
    int gid = get_global_id(0);
    if (gid >= outer * R * inner) return;
    int i = gid % inner, o = gid / (R * inner);
    float g = dy[o * inner + i];
    dx[gid] = kind == 1 ? g / (float)R : g;
}

// The lanes of float8s v0 .. v7 at position t: lane k holds vk.st (an 8 × 8 transpose, one column).
#define SPC_COL(t) (float8)(v0.s##t, v1.s##t, v2.s##t, v3.s##t, v4.s##t, v5.s##t, v6.s##t, v7.s##t)

// Item i sums channels 8i .. 8i + 7, one per lane: each lane adds its plane's values one after
// another and then the planes in n order, the order of one item per channel walking its planes
// (the GPU layout's partials aside, the result of every earlier version of this kernel); the 8
// planes are read 8 values at a time and transposed in registers. Lanes past C read channel C − 1
// and are not stored.   global: ⌈C / 8⌉
__kernel void sum_per_channel(__global const float* x, __global float* y, int N, int C, int HW) {
    int c0 = get_global_id(0) * 8;
    if (c0 >= C) return;
    float8 total = 0.0f;
    for (int n = 0; n < N; ++n) {
        __global const float* b = x + (size_t)n * C * HW;
        __global const float* p0 = b + (size_t)min(c0, C - 1) * HW;
        __global const float* p1 = b + (size_t)min(c0 + 1, C - 1) * HW;
        __global const float* p2 = b + (size_t)min(c0 + 2, C - 1) * HW;
        __global const float* p3 = b + (size_t)min(c0 + 3, C - 1) * HW;
        __global const float* p4 = b + (size_t)min(c0 + 4, C - 1) * HW;
        __global const float* p5 = b + (size_t)min(c0 + 5, C - 1) * HW;
        __global const float* p6 = b + (size_t)min(c0 + 6, C - 1) * HW;
        __global const float* p7 = b + (size_t)min(c0 + 7, C - 1) * HW;
        float8 acc = 0.0f;
        int i = 0;
        for (; i + 8 <= HW; i += 8) {
            float8 v0 = vload8(0, p0 + i), v1 = vload8(0, p1 + i), v2 = vload8(0, p2 + i), v3 = vload8(0, p3 + i);
            float8 v4 = vload8(0, p4 + i), v5 = vload8(0, p5 + i), v6 = vload8(0, p6 + i), v7 = vload8(0, p7 + i);
            acc += SPC_COL(0); acc += SPC_COL(1); acc += SPC_COL(2); acc += SPC_COL(3);
            acc += SPC_COL(4); acc += SPC_COL(5); acc += SPC_COL(6); acc += SPC_COL(7);
        }
        for (; i < HW; ++i) acc += (float8)(p0[i], p1[i], p2[i], p3[i], p4[i], p5[i], p6[i], p7[i]);
        total += acc;
    }
    float t[8];
    vstore8(total, 0, t);
    for (int k = 0; k < 8 && c0 + k < C; k++) y[c0 + k] = t[k];
}

// Group g sums its chunk of plane (n, c) (chunk_plane in common.h) into partials[g].
__kernel void sum_per_channel_partial(__global const float* x, __global float* partials, int N, int C, int HW, int chunks) {
    __local float scratch[RS_GPU_WG];
    int g = get_group_id(0), lid = get_local_id(0), c, lo, hi;
    __global const float* p = x + chunk_plane(g, N, C, HW, chunks, &c, &lo, &hi);
    float acc = 0.0f;
    // A fixed trip count, so the compiler can unroll and keep every load of the item in flight.
    for (int j = 0; j < RS_CHUNK / RS_GPU_WG; j++) {
        int i = lo + lid + j * RS_GPU_WG;
        if (i < hi) acc += p[i];
    }
    float total = wg_sum_of(scratch, acc, RS_GPU_WG);
    if (lid == 0) partials[g] = total;
}

// y[c] = Σ of the channel's `per` partials, in order.   one item per channel
__kernel void sum_per_channel_final(__global const float* partials, __global float* y, int C, int per) {
    int c = get_global_id(0);
    if (c >= C) return;
    __global const float* p = partials + (size_t)c * per;
    float acc = 0.0f;
    for (int i = 0; i < per; i++) acc += p[i];
    y[c] = acc;
}
