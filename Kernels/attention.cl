// attention.cl: the refinement blocks' fused pieces (CBAM-style descriptors), NCHW.
// Reductions over a plane use one work-group of RS_WG items per (n, c): items stride over the
// plane, then wg_sum / wg_argmax combine them in a fixed tree, so reruns are bit-identical.
// Variants: the *_pix kernels are the GPU layout (CLBackend.gpuGlue) of the kernels that walk
// channels: one item per pixel, so neighbouring items read neighbouring addresses (coalesced), in
// 64-item groups; the CPU kernels give each item a contiguous span of pixels read 8 at a time.
// Both add and compare channels in the same order, so the two layouts give identical results.
//   channel_mean_max_pix, channel_mean_max_backward_pix     2-D (pixel, image), loop over C
//   pixel_gate_add_relu_pix                                 2-D (pixel, plane n·C + c), no loop
//   pixel_gate_add_relu_backward_pix                        2-D (pixel, image), loop over C
//     (its CPU kernel, pixel_gate_add_relu_backward: 2-D (chunk of PX_CHUNK pixels, image), channels outer)
//   channel_gate_pix, channel_descriptors_backward_pix      2-D (value, plane n·C + c), no loop
//   spatial_mean_max            x (N,C,H,W) → mean, max (N,C) in one pass      one work-group per (n, c)
//   spatial_mean_max_backward   dMean/HW everywhere, + dMax at the first arg-max one work-group per (n, c)
//   channel_mean_max            x → (N,2,H,W): mean over C, then max over C,    one item per (n, CM_SPAN pixels)
//                               and the first arg-max channel plane (N,1,H,W)
//   channel_mean_max_backward   dx from the (N,2,H,W) gradient and the arg-max  one item per (n, CMB_CHUNK pixels)
//   broadcast_spatial           (N,C) → (N,C,H,W), optionally of relu(x)         one item per output element
//   broadcast_spatial_backward  Σ over H·W → (N,C,1,1), optionally ReLU-masked    one work-group per (n, c)
//   channel_mlp                 the channel-attention MLP W2·relu(W1·d + b1) + b2 one item per row of d
//                               (GPU layout, and hidden layers wider than MLP_HD_MAX; then channel_gate(_pix))
//   channel_mlp_gate            channel_mlp and channel_gate in one launch       one item per (SPAN pixels, CB planes)
//                               (CPU layout): each work-group runs its image's two MLP rows (a barrier),
//                               then each item gates its planes
//   channel_mlp_backward        dh, then dd, dW1, db1, dW2, db2                  one work-group, a barrier between
// CPU layout (not CLBackend.gpuGlue): no barriers (PoCL runs a group's items one after another on one
// thread); the host groups items so that a launch has enough work-groups for every core (CLBackend.runItems).
//   channel_descriptors_cpu, channel_gate_backward_cpu, broadcast_spatial_backward_cpu   one item per plane,
//                               walked front to back 8 values at a time
//   channel_mean_max            one item per (CM_SPAN pixels, image): the channels in the outer loop, the
//                               span's pixels 8 at a time inside (one contiguous run of every plane at a
//                               time), per-pixel state in registers
//   channel_mean_max_backward   CMB_CHUNK pixels per item: the chunk's dy and arg-max in private arrays,
//                               then one contiguous run of every dx plane at a time (x not read)
//   channel_gate_mlp_backward_cpu   channel_gate_backward_cpu, then the item that finishes last (an
//                               atomic counter) runs channel_mlp_backward alone, 8 outputs at a time

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

// This item's contiguous span [*lo, *hi) of a plane of HW values (item l of RS_WG takes the
// l-th run of ⌈HW / RS_WG⌉ values rounded up to 8, so the loops below load 8 at a time).
inline void plane_span(int HW, int* lo, int* hi) { item_span(get_local_id(0), HW, lo, hi); }

// (v, i) beats (bv, bi): larger value, or equal with smaller index, or bv has no index yet.
inline int beats(float v, int i, float bv, int bi) { return bi == INT_MAX || v > bv || (v == bv && i < bi); }

// This item's share of a plane: sum, and first maximum with its index (INT_MAX when it has none).
// Its span [lo, hi) of a plane: sum, and first maximum with its index (INT_MAX when it has none).
void span_partial(__global const float* p, int lo, int hi, float* sum, float* best, int* bestIdx) {
    float8 acc8 = 0.0f, bv8 = -INFINITY;
    int8 bi8 = INT_MAX;
    int i = lo;
    for (; i + 8 <= hi; i += 8) {
        float8 v = vload8(0, p + i);
        acc8 += v;
        // Per lane, a strictly larger value (or the lane's first) replaces: lanes keep first maxima.
        first_max_step(v, i, &bv8, &bi8);
    }
    float acc = lanes_sum(acc8), bv;
    int bi;
    first_max_of_lanes(bv8, bi8, &bv, &bi);
    for (; i < hi; i++) {
        float v = p[i];
        acc += v;
        if (beats(v, i, bv, bi)) { bv = v; bi = i; }
    }
    *sum = acc; *best = bv; *bestIdx = bi;
}

void plane_partial(__global const float* p, int HW, float* sum, float* best, int* bestIdx) {
    int lo, hi;
    plane_span(HW, &lo, &hi);
    span_partial(p, lo, hi, sum, best, bestIdx);
}

// One work-group's plane: its mean and first maximum with its index (the body that
// spatial_mean_max and channel_descriptors share; every item of the group must call it).
void plane_mean_max(__global const float* p, int HW, __local float* scratch, __local float* sv, __local int* si,
                    float* mean, float* top, int* topIdx) {
    float acc, bv;
    int bi;
    plane_partial(p, HW, &acc, &bv, &bi);
    float total = wg_sum(scratch, acc);
    wg_argmax(sv, si, bv, bi, top, topIdx);
    *mean = total / (float)HW;
}

__kernel void spatial_mean_max(__global const float* x, __global float* mean, __global float* mx, int HW) {
    __local float scratch[RS_WG];
    __local float sv[RS_WG];
    __local int si[RS_WG];
    int nc = get_group_id(0);
    float m, top;
    int topIdx;
    plane_mean_max(x + (size_t)nc * HW, HW, scratch, sv, si, &m, &top, &topIdx);
    if (get_local_id(0) == 0) { mean[nc] = m; mx[nc] = top; }
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
    int lo, hi;
    plane_span(HW, &lo, &hi);
    for (int i = lo; i < hi; i++) q[i] = i == topIdx ? share + g : share;
}

// Pixels per item of channel_mean_max: 2-D launch (⌈HW / CM_SPAN⌉, N), each item walks
// the C channels of its pixels 8 at a time.
// CM_SPAN: -D from OpenCL/KernelConstants.swift (the host uses it too).

// Vectors of 8 pixels in a CM_SPAN span.
#define CM_V (CM_SPAN / 8)

// am (N, 1, H, W): the first maximal channel of every pixel (the first c with x_c > every earlier
// channel's max; its index as a float), for channel_mean_max_backward.
__kernel void channel_mean_max(__global const float* x, __global float* y, __global float* am, int N, int C, int HW) {
    int n = get_global_id(1);
    int lo = get_global_id(0) * CM_SPAN, hi = min(lo + CM_SPAN, HW);
    if (lo >= HW) return;
    __global const float* px = x + (size_t)n * C * HW;
    __global float* ym = y + (size_t)(n * 2) * HW;
    __global float* yx = ym + HW;
    __global float* pa = am + (size_t)n * HW;
    if (hi - lo == CM_SPAN) {
        float8 acc[CM_V], bv[CM_V];
        int8 best[CM_V];
        for (int j = 0; j < CM_V; ++j) { acc[j] = 0.0f; bv[j] = vload8(j, px + lo); best[j] = 0; }
        for (int c = 0; c < C; ++c) {
            __global const float* pc = px + (size_t)c * HW + lo;
            for (int j = 0; j < CM_V; ++j) {
                float8 v = vload8(j, pc);
                acc[j] += v;
                best[j] = select(best[j], (int8)(c), v > bv[j]);
                bv[j] = fmax(bv[j], v);
            }
        }
        for (int j = 0; j < CM_V; ++j) {
            vstore8(acc[j] / (float)C, j, ym + lo);
            vstore8(bv[j], j, yx + lo);
            vstore8(convert_float8(best[j]), j, pa + lo);
        }
        return;
    }
    for (int p = lo; p < hi; p++) {
        float acc = 0.0f, bv = px[p];
        int b = 0;
        for (int c = 0; c < C; ++c) { float v = px[(size_t)c * HW + p]; acc += v; if (v > bv) b = c; bv = fmax(bv, v); }
        ym[p] = acc / (float)C;
        yx[p] = bv;
        pa[p] = (float)b;
    }
}

// dx: dy_mean/C everywhere, + dy_max at the forward's arg-max channel am (N, 1, H, W).
// With accumulate = 1, prior (like dx) is added to every value (a gradient that already reached x).
// 2-D (chunk of CMB_CHUNK pixels, image): the chunk's dy planes and arg-maxes in private arrays,
// 8 pixels a vector, then one contiguous run of every dx plane (and prior plane) at a time: x is
// not read (a pure stream: dx written, prior read).
// CMB_CHUNK: -D from OpenCL/KernelConstants.swift (a multiple of 8; the host uses it too).
#define CMB_V (CMB_CHUNK / 8)
__kernel void channel_mean_max_backward(__global const float* dy, __global const float* am, __global const float* prior,
                                        __global float* dx, int N, int C, int HW, int accumulate) {
    int n = get_global_id(1);
    int lo = get_global_id(0) * CMB_CHUNK, hi = min(lo + CMB_CHUNK, HW);
    if (lo >= HW) return;
    __global float* q = dx + (size_t)n * C * HW;
    __global const float* pr = prior + (size_t)n * C * HW;
    __global const float* dm = dy + (size_t)(n * 2) * HW;
    __global const float* dmax = dm + HW;
    __global const float* pa = am + (size_t)n * HW;
    int nv = (hi - lo) / 8, tail = lo + 8 * nv;
    float8 share[CMB_V], g[CMB_V];
    int8 best[CMB_V];
    for (int j = 0; j < nv; ++j) {
        share[j] = vload8(j, dm + lo) / (float)C;
        g[j] = vload8(j, dmax + lo);
        best[j] = convert_int8(vload8(j, pa + lo));
    }
    for (int c = 0; c < C; ++c) {
        size_t at = (size_t)c * HW + lo;
        for (int j = 0; j < nv; ++j) {
            float8 v = share[j] + select((float8)(0.0f), g[j], best[j] == c);
            if (accumulate) v += vload8(j, pr + at);
            vstore8(v, j, q + at);
        }
    }
    for (int p = tail; p < hi; p++) {
        int b = (int)pa[p];
        float share = dm[p] / (float)C, g = dmax[p];
        for (int c = 0; c < C; ++c) {
            float v = c == b ? share + g : share;
            q[(size_t)c * HW + p] = accumulate ? v + pr[(size_t)c * HW + p] : v;
        }
    }
}

// With relu = 1, relu(x) is broadcast (the context block's ReLU, fused).
__kernel void broadcast_spatial(__global const float* x, __global float* y, int NC, int HW, int relu) {
    int gid = get_global_id(0);
    if (gid < NC * HW) y[gid] = relu ? fmax(x[gid / HW], 0.0f) : x[gid / HW];
}

// With relu = 1, dx = 0 where the forward's x (xr, N·C) is not > 0 (ew_relu_backward's mask, fused).
__kernel void broadcast_spatial_backward(__global const float* dy, __global float* dx, int HW,
                                         __global const float* xr, int relu) {
    __local float scratch[RS_WG];
    int nc = get_group_id(0);
    __global const float* p = dy + (size_t)nc * HW;
    float acc = 0.0f;
    for (int i = get_local_id(0); i < HW; i += RS_WG) acc += p[i];
    float total = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) dx[nc] = relu && !(xr[nc] > 0.0f) ? 0.0f : total;
}

// The channel-attention descriptors stacked for one pass of the shared MLP: d (2N, C) holds the
// means in rows 0..N−1 and the maxima in rows N..2N−1; argmax (N·C) keeps each plane's first
// arg-max (as a float, exact below 2^24) so the backward never reads x.    one work-group per (n, c)
__kernel void channel_descriptors(__global const float* x, __global float* d, __global float* argmax, int NC, int HW) {
    __local float scratch[RS_WG];
    __local float sv[RS_WG];
    __local int si[RS_WG];
    int nc = get_group_id(0);
    float m, top;
    int topIdx;
    plane_mean_max(x + (size_t)nc * HW, HW, scratch, sv, si, &m, &top, &topIdx);
    if (get_local_id(0) == 0) { d[nc] = m; d[NC + nc] = top; argmax[nc] = (float)topIdx; }
}

// dx from the stacked descriptors' gradient: dMean/HW everywhere, + dMax at the saved arg-max.
// 2-D: (span of SPAN values, plane).
// SPAN: -D from OpenCL/KernelConstants.swift (the host uses it too).
// With accumulate = 1, prior (like dx) is added to every value (a gradient that already reached x).
__kernel void channel_descriptors_backward(__global const float* dd, __global const float* argmax, __global const float* prior,
                                           __global float* dx, int NC, int HW, int accumulate) {
    int nc = get_global_id(1);
    int lo = get_global_id(0) * SPAN, hi = min(lo + SPAN, HW);
    float share = dd[nc] / (float)HW, g = dd[NC + nc];
    int top = (int)argmax[nc];
    __global float* q = dx + (size_t)nc * HW;
    int i = lo;
    if (accumulate) {
        __global const float* pr = prior + (size_t)nc * HW;
        for (; i + 8 <= hi; i += 8) vstore8((float8)(share) + vload8(0, pr + i), 0, q + i);
        for (; i < hi; i++) q[i] = share + pr[i];
        if (top >= lo && top < hi) q[top] = (share + g) + pr[top];
    } else {
        for (; i + 8 <= hi; i += 8) vstore8((float8)(share), 0, q + i);
        for (; i < hi; i++) q[i] = share;
        if (top >= lo && top < hi) q[top] = share + g;
    }
}

inline float gate_of(__global const float* l, int NC, int nc) { return 1.0f / (1.0f + exp(-(l[nc] + l[NC + nc]))); }

// y = x · sigmoid(l[n, c] + l[N + n, c]) for stacked MLP outputs l (2N, C).   2-D: (span, plane)
__kernel void channel_gate(__global const float* x, __global const float* l, __global float* y, int NC, int HW) {
    int nc = get_global_id(1);
    int lo = get_global_id(0) * SPAN, hi = min(lo + SPAN, HW);
    float s = gate_of(l, NC, nc);
    __global const float* p = x + (size_t)nc * HW;
    __global float* q = y + (size_t)nc * HW;
    int i = lo;
    for (; i + 8 <= hi; i += 8) vstore8(vload8(0, p + i) * s, 0, q + i);
    for (; i < hi; i++) q[i] = p[i] * s;
}

// channel_gate_backward's share of one plane, pixels [lo, hi): writes dx = dy · s there and
// returns Σ dy·x over them (both layouts add the shares in the same order).
inline float gate_backward_span(__global const float* gp, __global const float* xp, __global float* q,
                                float s, int lo, int hi) {
    float8 acc8 = 0.0f;
    float acc = 0.0f;
    int i = lo;
    for (; i + 8 <= hi; i += 8) {
        float8 g = vload8(0, gp + i);
        acc8 += g * vload8(0, xp + i);
        vstore8(g * s, 0, q + i);
    }
    for (; i < hi; i++) { float g = gp[i]; acc += g * xp[i]; q[i] = g * s; }
    return acc + lanes_sum(acc8);
}

// dx = dy · s and dl[n, c] = dl[N + n, c] = s(1 − s)·Σ_hw dy·x in one pass.   one work-group per (n, c)
__kernel void channel_gate_backward(__global const float* dy, __global const float* x, __global const float* l,
                                    __global float* dx, __global float* dl, int NC, int HW) {
    __local float scratch[RS_WG];
    int nc = get_group_id(0);
    int lo, hi;
    plane_span(HW, &lo, &hi);
    float s = gate_of(l, NC, nc);
    __global const float* gp = dy + (size_t)nc * HW;
    __global const float* xp = x + (size_t)nc * HW;
    __global float* q = dx + (size_t)nc * HW;
    float total = wg_sum(scratch, gate_backward_span(gp, xp, q, s, lo, hi));
    if (get_local_id(0) == 0) { float d = s * (1.0f - s) * total; dl[nc] = d; dl[NC + nc] = d; }
}

// The refinement block's tail: y = relu(x · gate[n, 0, p] + r) over (N, C, HW).
// 2-D: (span of SPAN pixels, image); each item walks all C channels of its pixels.
__kernel void pixel_gate_add_relu(__global const float* x, __global const float* gate, __global const float* r,
                                  __global float* y, int C, int HW) {
    int n = get_global_id(1);
    int lo = get_global_id(0) * SPAN, hi = min(lo + SPAN, HW);
    __global const float* gp = gate + (size_t)n * HW;
    for (int c = 0; c < C; c++) {
        size_t base = ((size_t)n * C + c) * HW;
        int i = lo;
        for (; i + 8 <= hi; i += 8)
            vstore8(fmax(vload8(0, x + base + i) * vload8(0, gp + i) + vload8(0, r + base + i), 0.0f), 0, y + base + i);
        for (; i < hi; i++) y[base + i] = fmax(x[base + i] * gp[i] + r[base + i], 0.0f);
    }
}

// Its backward: ds = dy where x·g + r > 0; dx = ds·g, dr = ds, dgate = Σ_c ds·x (added in channel
// order). 2-D: (chunk of PX_CHUNK pixels, image); the channels in the outer loop, so each pass streams
// one contiguous run of every array, and dgate's chunk (in the core's cache) collects the sum.
__kernel void pixel_gate_add_relu_backward(__global const float* dy, __global const float* x, __global const float* gate,
                                           __global const float* r, __global float* dx, __global float* dgate,
                                           __global float* dr, int C, int HW) {
    int n = get_global_id(1);
    int lo = get_global_id(0) * PX_CHUNK, hi = min(lo + PX_CHUNK, HW);
    if (lo >= HW) return;
    __global const float* gp = gate + (size_t)n * HW;
    __global float* dgp = dgate + (size_t)n * HW;
    for (int c = 0; c < C; c++) {
        size_t base = ((size_t)n * C + c) * HW;
        int i = lo;
        for (; i + 8 <= hi; i += 8) {
            size_t at = base + i;
            float8 g = vload8(0, gp + i), xv = vload8(0, x + at);
            float8 ds = select((float8)(0.0f), vload8(0, dy + at), xv * g + vload8(0, r + at) > 0.0f);
            vstore8(ds * g, 0, dx + at);
            vstore8(ds, 0, dr + at);
            vstore8((c == 0 ? (float8)(0.0f) : vload8(0, dgp + i)) + ds * xv, 0, dgp + i);
        }
        for (; i < hi; i++) {
            size_t at = base + i;
            float g = gp[i], xv = x[at];
            float ds = xv * g + r[at] > 0.0f ? dy[at] : 0.0f;
            dx[at] = ds * g;
            dr[at] = ds;
            dgp[i] = (c == 0 ? 0.0f : dgp[i]) + ds * xv;
        }
    }
}

// MARK: CPU layout, one item per plane (see the header)

// plane_mean_max replayed by one item: the RS_WG virtual items' span_partial, then tree_sum and
// the first maximum over the spans (they ascend, so a tie keeps the earlier).
inline void plane_walk(__global const float* p, int HW, float* sum, float* best, int* bestIdx) {
    float part[RS_WG], bv = -INFINITY;
    int bi = INT_MAX;
    for (int l = 0; l < RS_WG; l++) {
        int lo, hi, li;
        float lv;
        item_span(l, HW, &lo, &hi);
        span_partial(p, lo, hi, &part[l], &lv, &li);
        if (li != INT_MAX && (bi == INT_MAX || lv > bv)) { bv = lv; bi = li; }
    }
    *sum = tree_sum(part); *best = bv; *bestIdx = bi;
}

// channel_descriptors, one item per plane nc.   global: N·C
__kernel void channel_descriptors_cpu(__global const float* x, __global float* d, __global float* argmax, int NC, int HW) {
    int nc = get_global_id(0);
    if (nc >= NC) return;
    float acc, top;
    int topIdx;
    plane_walk(x + (size_t)nc * HW, HW, &acc, &top, &topIdx);
    d[nc] = acc / (float)HW;
    d[NC + nc] = top;
    argmax[nc] = (float)topIdx;
}

// channel_gate_backward of plane nc by one item: dx's plane, and dl[nc] = dl[NC + nc], in
// channel_gate_backward's order (item_span, tree_sum).
inline void gate_backward_plane(__global const float* dy, __global const float* x, __global const float* l,
                                __global float* dx, __global float* dl, int NC, int HW, int nc) {
    float s = gate_of(l, NC, nc);
    __global const float* gp = dy + (size_t)nc * HW;
    __global const float* xp = x + (size_t)nc * HW;
    __global float* q = dx + (size_t)nc * HW;
    float part[RS_WG];
    for (int l = 0; l < RS_WG; l++) {
        int lo, hi;
        item_span(l, HW, &lo, &hi);
        part[l] = gate_backward_span(gp, xp, q, s, lo, hi);
    }
    float d = s * (1.0f - s) * tree_sum(part);
    dl[nc] = d;
    dl[NC + nc] = d;
}

// channel_gate_backward, one item per plane nc.   global: N·C
__kernel void channel_gate_backward_cpu(__global const float* dy, __global const float* x, __global const float* l,
                                        __global float* dx, __global float* dl, int NC, int HW) {
    int nc = get_global_id(0);
    if (nc >= NC) return;
    gate_backward_plane(dy, x, l, dx, dl, NC, HW, nc);
}

// broadcast_spatial_backward, one item per plane nc.   global: N·C
__kernel void broadcast_spatial_backward_cpu(__global const float* dy, __global float* dx, int NC, int HW,
                                             __global const float* xr, int relu) {
    int nc = get_global_id(0);
    if (nc >= NC) return;
    // broadcast_spatial_backward's order (strided_plane_sum, Kernels/common.h).
    dx[nc] = relu && !(xr[nc] > 0.0f) ? 0.0f : strided_plane_sum(dy + (size_t)nc * HW, HW);
}

// MARK: GPU layout (one item per pixel; see the header)

__kernel void channel_mean_max_pix(__global const float* x, __global float* y, __global float* am, int N, int C, int HW) {
    int p = get_global_id(0), n = get_global_id(1);
    if (p >= HW) return;
    __global const float* px = x + (size_t)n * C * HW + p;
    float acc = 0.0f, bv = px[0];
    int b = 0;
    for (int c = 0; c < C; ++c) { float v = px[(size_t)c * HW]; acc += v; if (v > bv) b = c; bv = fmax(bv, v); }
    y[(size_t)(n * 2) * HW + p] = acc / (float)C;
    y[(size_t)(n * 2 + 1) * HW + p] = bv;
    am[(size_t)n * HW + p] = (float)b;
}

__kernel void channel_mean_max_backward_pix(__global const float* dy, __global const float* am, __global const float* prior,
                                            __global float* dx, int N, int C, int HW, int accumulate) {
    int p = get_global_id(0), n = get_global_id(1);
    if (p >= HW) return;
    __global float* q = dx + (size_t)n * C * HW + p;
    int b = (int)am[(size_t)n * HW + p];
    float share = dy[(size_t)(n * 2) * HW + p] / (float)C, g = dy[(size_t)(n * 2 + 1) * HW + p];
    for (int c = 0; c < C; ++c) {
        float v = c == b ? share + g : share;
        q[(size_t)c * HW] = accumulate ? v + prior[((size_t)n * C + c) * HW + p] : v;
    }
}

__kernel void pixel_gate_add_relu_pix(__global const float* x, __global const float* gate, __global const float* r,
                                      __global float* y, int C, int HW) {
    int p = get_global_id(0), nc = get_global_id(1);
    if (p >= HW) return;
    size_t at = (size_t)nc * HW + p;
    y[at] = fmax(x[at] * gate[(size_t)(nc / C) * HW + p] + r[at], 0.0f);
}

__kernel void pixel_gate_add_relu_backward_pix(__global const float* dy, __global const float* x, __global const float* gate,
                                               __global const float* r, __global float* dx, __global float* dgate,
                                               __global float* dr, int C, int HW) {
    int p = get_global_id(0), n = get_global_id(1);
    if (p >= HW) return;
    float g = gate[(size_t)n * HW + p], acc = 0.0f;
    for (int c = 0; c < C; c++) {
        size_t at = ((size_t)n * C + c) * HW + p;
        float xv = x[at];
        float ds = xv * g + r[at] > 0.0f ? dy[at] : 0.0f;
        dx[at] = ds * g;
        dr[at] = ds;
        acc += ds * xv;
    }
    dgate[(size_t)n * HW + p] = acc;
}

// Σ_k a[k]·b[k] over k < n, 8 lanes then the tail, in a fixed order (b in global or local
// memory: the same additions, so channel_mlp and channel_mlp_gate agree bit for bit).
#define DOT_SPAN_BODY                                                                                  \
    float8 acc8 = 0.0f;                                                                                \
    int k = 0;                                                                                         \
    for (; k + 8 <= n; k += 8) acc8 += vload8(0, a + k) * vload8(0, b + k);                            \
    float acc = (acc8.s0 + acc8.s1 + acc8.s2 + acc8.s3) + (acc8.s4 + acc8.s5 + acc8.s6 + acc8.s7);     \
    for (; k < n; k++) acc += a[k] * b[k];                                                             \
    return acc;
inline float dot_span(__global const float* a, __global const float* b, int n) { DOT_SPAN_BODY }
inline float dot_span_local(__global const float* a, __local const float* b, int n) { DOT_SPAN_BODY }

// The channel-attention MLP for one row r of the stacked descriptors d (R, C): hid[r] =
// relu(W1·d[r] + b1) (kept for the backward), l[r] = W2·hid[r] + b2. W1 (HD, C), W2 (C, HD) as
// PyTorch's Linear. The item reads back its own hidden row.   one item per row
__kernel void channel_mlp(__global const float* d, __global const float* w1, __global const float* b1,
                          __global const float* w2, __global const float* b2, __global float* hid, __global float* l,
                          int C, int HD) {
    int r = get_global_id(0);
    __global const float* x = d + (size_t)r * C;
    __global float* h = hid + (size_t)r * HD;
    for (int j = 0; j < HD; ++j) h[j] = fmax(b1[j] + dot_span(w1 + (size_t)j * C, x, C), 0.0f);
    for (int c = 0; c < C; ++c) l[(size_t)r * C + c] = b2[c] + dot_span(w2 + (size_t)c * HD, h, HD);
}

// channel_mlp and channel_gate in one launch (CPU layout). 2-D: (span of SPAN pixels, block of CB
// channels of image n: n·⌈C / CB⌉ + block), work-groups along the spans (all of a group's items
// share n and the block). The group first computes its image's two hidden rows (n: means,
// N + n: maxima; 2·HD·C FMAs, HD ≤ MLP_HD_MAX) into local memory, its items taking the hidden
// units in turn; after the barrier each item scales the span of each of its planes by
// σ(l[n, c] + l[N + n, c]). The host picks CB so that the recomputation per group stays small next
// to the values the group moves (CB = 1 where a plane has several spans). The first group of each
// block also stores l for its channels (and block 0's, hid): the backward's saved state. Same
// additions as channel_mlp + channel_gate.
// MLP_HD_MAX: -D from OpenCL/KernelConstants.swift (the host falls back to the two kernels above it).
__kernel void channel_mlp_gate(__global const float* x, __global const float* d, __global const float* w1,
                               __global const float* b1, __global const float* w2, __global const float* b2,
                               __global float* hid, __global float* l, __global float* y,
                               int N, int C, int HD, int HW, int CB) {
    __local float h[2 * MLP_HD_MAX];
    int s = get_global_id(0), blocks = (C + CB - 1) / CB;
    int n = get_global_id(1) / blocks, c0 = get_global_id(1) % blocks * CB, c1 = min(c0 + CB, C);
    int first = get_group_id(0) == 0;
    for (int k = get_local_id(0); k < 2 * HD; k += get_local_size(0)) {
        int r = k / HD * N + n, j = k % HD;
        h[k] = fmax(b1[j] + dot_span(w1 + (size_t)j * C, d + (size_t)r * C, C), 0.0f);
        if (first && c0 == 0) hid[(size_t)r * HD + j] = h[k];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    int lo = s * SPAN, hi = min(lo + SPAN, HW);
    if (lo >= HW) return;
    for (int c = c0; c < c1; ++c) {
        float l0 = b2[c] + dot_span_local(w2 + (size_t)c * HD, h, HD);
        float l1 = b2[c] + dot_span_local(w2 + (size_t)c * HD, h + HD, HD);
        if (s == 0) { l[(size_t)n * C + c] = l0; l[(size_t)(N + n) * C + c] = l1; }
        float g = 1.0f / (1.0f + exp(-(l0 + l1)));
        size_t base = ((size_t)n * C + c) * HW;
        __global const float* p = x + base;
        __global float* q = y + base;
        int i = lo;
        for (; i + 8 <= hi; i += 8) vstore8(vload8(0, p + i) * g, 0, q + i);
        for (; i < hi; i++) q[i] = p[i] * g;
    }
}

// Every gradient of channel_mlp in one work-group (any size; items stride): first
// dh[r, j] = Σ_c dl[r, c]·W2[c, j] where hid[r, j] > 0, else 0 (into the dh buffer), then after a
// barrier item i < C owns channel c = i: db2[c], dW2[c, :], dW1[:, c] and dd[:, c]; item i < HD
// also db1[i]. Sums run over rows, channels or hidden units in index order.   one work-group
__kernel void channel_mlp_backward(__global const float* dl, __global const float* d, __global const float* w1,
                                   __global const float* w2, __global const float* hid, __global float* dh,
                                   __global float* dd, __global float* dw1, __global float* db1,
                                   __global float* dw2, __global float* db2, int R, int C, int HD) {
    int lid = get_local_id(0), ls = get_local_size(0);
    for (int k = lid; k < R * HD; k += ls) {
        int r = k / HD, j = k % HD;
        float acc = 0.0f;
        if (hid[k] > 0.0f) {
            for (int c = 0; c < C; ++c) acc += dl[(size_t)r * C + c] * w2[(size_t)c * HD + j];
        }
        dh[k] = acc;
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
    for (int i = lid; i < max(C, HD); i += ls) {
        if (i < C) {
            int c = i;
            float s = 0.0f;
            for (int r = 0; r < R; ++r) s += dl[(size_t)r * C + c];
            db2[c] = s;
            for (int j = 0; j < HD; ++j) {
                float a = 0.0f, b = 0.0f;
                for (int r = 0; r < R; ++r) {
                    a += dl[(size_t)r * C + c] * hid[(size_t)r * HD + j];
                    b += dh[(size_t)r * HD + j] * d[(size_t)r * C + c];
                }
                dw2[(size_t)c * HD + j] = a;
                dw1[(size_t)j * C + c] = b;
            }
            for (int r = 0; r < R; ++r) {
                float a = 0.0f;
                for (int j = 0; j < HD; ++j) a += dh[(size_t)r * HD + j] * w1[(size_t)j * C + c];
                dd[(size_t)r * C + c] = a;
            }
        }
        if (i < HD) {
            float s = 0.0f;
            for (int r = 0; r < R; ++r) s += dh[(size_t)r * HD + i];
            db1[i] = s;
        }
    }
}

// channel_mlp_backward by one item (the CPU layout's channel_gate_mlp_backward_cpu), 8 independent
// outputs at a time: over the hidden units j for dh, dW2 (C, HD) and db1, over the channels c for
// dW1 (HD, C), dd and db2, scalar loops for the tails. Each output's sum runs over the same index
// (r, c or j) in the same order as in channel_mlp_backward, with the same multiplications, so the
// results are bit-identical; the lanes only hold different outputs.
inline void mlp_backward_serial(__global const float* dl, __global const float* d, __global const float* w1,
                                __global const float* w2, __global const float* hid, __global float* dh,
                                __global float* dd, __global float* dw1, __global float* db1,
                                __global float* dw2, __global float* db2, int R, int C, int HD) {
    int H8 = HD / 8 * 8, C8 = C / 8 * 8;
    // dh[r, j] = Σ_c dl[r, c]·W2[c, j] where hid[r, j] > 0, else 0.
    for (int r = 0; r < R; ++r) {
        __global const float* dlr = dl + (size_t)r * C;
        int j = 0;
        for (; j < H8; j += 8) {
            float8 acc = 0.0f;
            for (int c = 0; c < C; ++c) acc += dlr[c] * vload8(0, w2 + (size_t)c * HD + j);
            vstore8(select((float8)(0.0f), acc, vload8(0, hid + (size_t)r * HD + j) > 0.0f), 0, dh + (size_t)r * HD + j);
        }
        for (; j < HD; ++j) {
            float acc = 0.0f;
            if (hid[(size_t)r * HD + j] > 0.0f) {
                for (int c = 0; c < C; ++c) acc += dlr[c] * w2[(size_t)c * HD + j];
            }
            dh[(size_t)r * HD + j] = acc;
        }
    }
    // Per hidden unit j: dW2[c, j] = Σ_r dl[r, c]·hid[r, j] (each row c), db1[j] = Σ_r dh[r, j].
    for (int c = 0; c < C; ++c) {
        int j = 0;
        for (; j < H8; j += 8) {
            float8 a = 0.0f;
            for (int r = 0; r < R; ++r) a += dl[(size_t)r * C + c] * vload8(0, hid + (size_t)r * HD + j);
            vstore8(a, 0, dw2 + (size_t)c * HD + j);
        }
        for (; j < HD; ++j) {
            float a = 0.0f;
            for (int r = 0; r < R; ++r) a += dl[(size_t)r * C + c] * hid[(size_t)r * HD + j];
            dw2[(size_t)c * HD + j] = a;
        }
    }
    {
        int j = 0;
        for (; j < H8; j += 8) {
            float8 s = 0.0f;
            for (int r = 0; r < R; ++r) s += vload8(0, dh + (size_t)r * HD + j);
            vstore8(s, 0, db1 + j);
        }
        for (; j < HD; ++j) {
            float s = 0.0f;
            for (int r = 0; r < R; ++r) s += dh[(size_t)r * HD + j];
            db1[j] = s;
        }
    }
    // Per channel c: db2[c] = Σ_r dl[r, c], dW1[j, c] = Σ_r dh[r, j]·d[r, c] (each row j),
    // dd[r, c] = Σ_j dh[r, j]·W1[j, c] (each row r).
    int c = 0;
    for (; c < C8; c += 8) {
        float8 s = 0.0f;
        for (int r = 0; r < R; ++r) s += vload8(0, dl + (size_t)r * C + c);
        vstore8(s, 0, db2 + c);
        for (int j = 0; j < HD; ++j) {
            float8 b = 0.0f;
            for (int r = 0; r < R; ++r) b += dh[(size_t)r * HD + j] * vload8(0, d + (size_t)r * C + c);
            vstore8(b, 0, dw1 + (size_t)j * C + c);
        }
        for (int r = 0; r < R; ++r) {
            float8 a = 0.0f;
            for (int j = 0; j < HD; ++j) a += dh[(size_t)r * HD + j] * vload8(0, w1 + (size_t)j * C + c);
            vstore8(a, 0, dd + (size_t)r * C + c);
        }
    }
    for (; c < C; ++c) {
        float s = 0.0f;
        for (int r = 0; r < R; ++r) s += dl[(size_t)r * C + c];
        db2[c] = s;
        for (int j = 0; j < HD; ++j) {
            float b = 0.0f;
            for (int r = 0; r < R; ++r) b += dh[(size_t)r * HD + j] * d[(size_t)r * C + c];
            dw1[(size_t)j * C + c] = b;
        }
        for (int r = 0; r < R; ++r) {
            float a = 0.0f;
            for (int j = 0; j < HD; ++j) a += dh[(size_t)r * HD + j] * w1[(size_t)j * C + c];
            dd[(size_t)r * C + c] = a;
        }
    }
}

// channel_gate_backward_cpu and channel_mlp_backward in one launch (CPU layout). One item per plane
// nc does channel_gate_backward_cpu's work (dx and dl[nc] = dl[NC + nc], the same arithmetic), then
// counts itself done; the item that finishes last runs the MLP's backward on the complete dl
// (mlp_backward_serial; R = 2N rows). `done` is one int that holds 0 between launches: the backend
// zeroes it once when it creates it, and the last item sets it back to 0 (atomic_xchg: every access
// to `done` is atomic). Work-items of one group on PoCL run one after another on one thread; groups
// run on several threads, hence the atomic.
// Ordering: each item's dl stores come before its atomic_inc; atomic_inc is one read-modify-write,
// so exactly one item reads NC − 1, after the other NC − 1 increments, each of which followed that
// item's stores; that item's loads of dl come after its increment. The mem_fences state the order
// OpenCL 1.2 asks for; on PoCL's CPU devices mem_fence is empty and the order comes from atomic_inc
// itself (__sync_fetch_and_add: a sequentially consistent RMW, a locked instruction on x86, which
// neither the compiler nor the core moves loads or stores across). OpenCL 1.2 promises no memory
// consistency between work-groups of one launch, so Oclgrind reports the last item's loads of dl
// as races with the other groups' stores (REFINESEG_GLUE_VARIANT=cpu, BENCHMARKS.md); the host
// takes this kernel only in the CPU layout (CPU devices, unless that variable forces it on a
// GPU, where the GPU's own atomics then have to give the same order). No item touches `done` after its own
// increment, so the reset cannot race; the next launch sees 0 (an in-order queue runs one kernel
// after another).   global: N·C
__kernel void channel_gate_mlp_backward_cpu(__global const float* dy, __global const float* x, __global const float* l,
                                            __global float* dx, __global float* dl,
                                            __global const float* d, __global const float* w1, __global const float* w2,
                                            __global const float* hid, __global float* dh, __global float* dd,
                                            __global float* dw1, __global float* db1, __global float* dw2, __global float* db2,
                                            volatile __global int* done, int NC, int HW, int C, int HD) {
    int nc = get_global_id(0);
    if (nc >= NC) return;
    gate_backward_plane(dy, x, l, dx, dl, NC, HW, nc);
    mem_fence(CLK_GLOBAL_MEM_FENCE);
    if (atomic_inc(done) != NC - 1) return;
    mem_fence(CLK_GLOBAL_MEM_FENCE);
    mlp_backward_serial(dl, d, w1, w2, hid, dh, dd, dw1, db1, dw2, db2, 2 * (NC / C), C, HD);
    atomic_xchg(done, 0);
}

// y = x · sigmoid(l[n, c] + l[N + n, c]), one item per value (channel_gate's GPU layout).
__kernel void channel_gate_pix(__global const float* x, __global const float* l, __global float* y, int NC, int HW) {
    int p = get_global_id(0), nc = get_global_id(1);
    if (p >= HW) return;
    size_t at = (size_t)nc * HW + p;
    y[at] = x[at] * gate_of(l, NC, nc);
}

// dx = dMean/HW everywhere, + dMax at the saved arg-max, one item per value (channel_descriptors_backward's GPU layout),
// + prior (like dx) with accumulate = 1.
__kernel void channel_descriptors_backward_pix(__global const float* dd, __global const float* argmax, __global const float* prior,
                                               __global float* dx, int NC, int HW, int accumulate) {
    int p = get_global_id(0), nc = get_global_id(1);
    if (p >= HW) return;
    float share = dd[nc] / (float)HW;
    float v = p == (int)argmax[nc] ? share + dd[NC + nc] : share;
    size_t at = (size_t)nc * HW + p;
    dx[at] = accumulate ? v + prior[at] : v;
}
