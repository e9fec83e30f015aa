// attention.cl: the refinement blocks' fused pieces (CBAM-style descriptors), NCHW.
// Reductions over a plane use one work-group of RS_WG items per (n, c): items stride over the
// plane, then wg_sum / wg_argmax combine them in a fixed tree, so reruns are bit-identical.
// Variants: none (one kernel per op).
//   spatial_mean_max            x (N,C,H,W) → mean, max (N,C) in one pass      one work-group per (n, c)
//   spatial_mean_max_backward   dMean/HW everywhere, + dMax at the first arg-max one work-group per (n, c)
//   channel_mean_max            x → (N,2,H,W): mean over C, then max over C     one item per (n, h, w)
//   channel_mean_max_backward   dx from the (N,2,H,W) gradient                  one item per (n, h, w)
//   broadcast_spatial           (N,C) → (N,C,H,W)                               one item per output element
//   broadcast_spatial_backward  Σ over H·W → (N,C,1,1)                          one work-group per (n, c)

// Max and first arg-max over the group: ties keep the smaller index, so the result is the
// plane's first maximal element whatever the stride pattern. Every item gets the result.
void wg_argmax(__local float* sv, __local int* si, float v, int idx, float* outV, int* outI) {
    int lid = get_local_id(0);
    sv[lid] = v; si[lid] = idx;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RS_WG / 2; s > 0; s >>= 1) {
        if (lid < s) {
            float o = sv[lid + s];
            int oi = si[lid + s];
            if (o > sv[lid] || (o == sv[lid] && oi < si[lid])) { sv[lid] = o; si[lid] = oi; }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *outV = sv[0];
    *outI = si[0];
    barrier(CLK_LOCAL_MEM_FENCE);
}

// This item's share of a plane: sum, and first maximum with its index (INT_MAX when it has none).
void plane_partial(__global const float* p, int HW, float* sum, float* best, int* bestIdx) {
    int lid = get_local_id(0);
    float acc = 0.0f, bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = lid; i < HW; i += RS_WG) {
        float v = p[i];
        acc += v;
        if (v > bv || bi == INT_MAX) { bv = v; bi = i; }
    }
    *sum = acc; *best = bv; *bestIdx = bi;
}

__kernel void spatial_mean_max(__global const float* x, __global float* mean, __global float* mx, int HW) {
    __local float scratch[RS_WG];
    __local float sv[RS_WG];
    __local int si[RS_WG];
    int nc = get_group_id(0);
    float acc, bv, top;
    int bi, topIdx;
    plane_partial(x + (size_t)nc * HW, HW, &acc, &bv, &bi);
    float total = wg_sum(scratch, acc);
    wg_argmax(sv, si, bv, bi, &top, &topIdx);
    if (get_local_id(0) == 0) { mean[nc] = total / (float)HW; mx[nc] = top; }
}

__kernel void spatial_mean_max_backward(__global const float* dMean, __global const float* dMax,
                                        __global const float* x, __global float* dx, int HW) {
    __local float sv[RS_WG];
    __local int si[RS_WG];
    int nc = get_group_id(0);
    float acc, bv, top;
    int bi, topIdx;
    plane_partial(x + (size_t)nc * HW, HW, &acc, &bv, &bi);
    wg_argmax(sv, si, bv, bi, &top, &topIdx);
    float share = dMean[nc] / (float)HW, g = dMax[nc];
    __global float* q = dx + (size_t)nc * HW;
    for (int i = get_local_id(0); i < HW; i += RS_WG) q[i] = i == topIdx ? share + g : share;
}

__kernel void channel_mean_max(__global const float* x, __global float* y, int N, int C, int HW) {
    int gid = get_global_id(0);
    if (gid >= N * HW) return;
    int n = gid / HW, p = gid % HW;
    __global const float* px = x + (size_t)n * C * HW + p;
    float acc = 0.0f, bv = px[0];
    for (int c = 0; c < C; ++c) { float v = px[(size_t)c * HW]; acc += v; bv = fmax(bv, v); }
    y[(size_t)(n * 2) * HW + p] = acc / (float)C;
    y[(size_t)(n * 2 + 1) * HW + p] = bv;
}

__kernel void channel_mean_max_backward(__global const float* dy, __global const float* x, __global float* dx,
                                        int N, int C, int HW) {
    int gid = get_global_id(0);
    if (gid >= N * HW) return;
    int n = gid / HW, p = gid % HW;
    __global const float* px = x + (size_t)n * C * HW + p;
    __global float* q = dx + (size_t)n * C * HW + p;
    int best = 0;
    float bv = px[0];
    for (int c = 1; c < C; ++c) { float v = px[(size_t)c * HW]; if (v > bv) { bv = v; best = c; } }
    float share = dy[(size_t)(n * 2) * HW + p] / (float)C, g = dy[(size_t)(n * 2 + 1) * HW + p];
    for (int c = 0; c < C; ++c) q[(size_t)c * HW] = c == best ? share + g : share;
}

__kernel void broadcast_spatial(__global const float* x, __global float* y, int NC, int HW) {
    int gid = get_global_id(0);
    if (gid < NC * HW) y[gid] = x[gid / HW];
}

__kernel void broadcast_spatial_backward(__global const float* dy, __global float* dx, int HW) {
    __local float scratch[RS_WG];
    int nc = get_group_id(0);
    __global const float* p = dy + (size_t)nc * HW;
    float acc = 0.0f;
    for (int i = get_local_id(0); i < HW; i += RS_WG) acc += p[i];
    float total = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) dx[nc] = total;
}
