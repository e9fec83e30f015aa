// reduce.cl: reductions of a tensor seen as (outer, R, inner), one work item per output.
//   reduce_fwd       KIND 0 sum, 1 mean, 2 max
//   reduce_backward  gathers: each input element reads its group's gradient (max: first arg-max only)
//   reduce_fwd_group        the GPU variant for inner = 1 (CLBackend.gpuGlue): one work-group of RS_WG
//                           items per output, items stride over its R contiguous values (coalesced),
//                           a fixed tree combines them
//   reduce_backward_spread  the GPU variant of the sum and mean backward: one item per input value
//   sum_per_channel  NCHW → (C), one item per channel, summed in n-major order (CPU devices: each
//                    item streams its channel's planes)
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

__kernel void sum_per_channel(__global const float* x, __global float* y, int N, int C, int HW) {
    int c = get_global_id(0);
    if (c >= C) return;
    float total = 0.0f;
    for (int n = 0; n < N; ++n) {
        __global const float* p = x + ((size_t)n * C + c) * HW;
        float acc = 0.0f;
        for (int i = 0; i < HW; ++i) acc += p[i];
        total += acc;
    }
    y[c] = total;
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
