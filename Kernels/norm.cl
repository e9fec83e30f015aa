// norm.cl: batch normalisation over (N, H, W) per channel of NCHW; (N, C) inputs run with HW = 1.
// Training mode on GPUs (CLBackend.gpuGlue) for planes below one GPU group (BatchNorm1d's HW = 1
// among them) runs one work-group of RS_WG items per channel and does the whole op in it:
// forward = statistics + apply (+ ReLU), backward = both reductions + dx. A channel's values
// (N planes of HW) are read from memory once; the later passes find them in the core's cache.
// Item l owns the contiguous span [l·S, (l+1)·S) of each plane (S = ⌈HW / RS_WG⌉ rounded up to
// 8) and walks it with 8-wide loads (vload8 needs only float alignment), then a scalar tail;
// wg_sum's fixed tree combines the items, so reruns are bit-identical.
// Variants: ACT=1 fuses a ReLU after the affine map t (forward: y = max(t, 0); backward: dy is
// masked by t > 0), ACT=2 a sigmoid (y = σ(t); backward: dy·σ(t)(1 − σ(t))); t is recomputed
// from x with the same expression in the backward, so nothing extra is saved.
//   bn_train            one work-group per channel: shifted two-pass mean and biased variance,
//                       running-stat update (unbiased variance), y = (x − mean)·invStd·w + b
//   bn_backward         one work-group per channel: dbias = Σdy, dweight = Σdy·x̂, then
//                       dx = w·invStd/M·(M·dy − dbias − x̂·dweight)
//   bn_eval             2-D (span of a plane, plane): y from the running statistics, 8-wide
// CPU variants (not CLBackend.gpuGlue): one work-item per channel, no barriers (PoCL runs a group's
// items one after another on one thread, so the barrier tree only costs time there); the item walks
// its channel's N planes front to back, 16 values per step, and the host groups the items so that a
// launch has enough work-groups for every core (CLBackend.runItems). The later passes over a channel
// find it in the core's cache.
//   bn_train_cpu        the channel's mean and biased variance from exact per-chunk moments of
//                       x − (its first value) combined by Chan's formula (channel_moments: one read of
//                       the channel from memory, each chunk's second pass in L1), running-stat
//                       update, then the apply pass, 16-wide;
//                       with DESC=1 (and ACT=0) it also writes the channel-attention descriptors of y
//                       (attention.cl's channel_descriptors: per-plane mean, first maximum and its
//                       index) from the apply pass, so they cost no extra read. Its additions run in
//                       another order than bn_train's: results agree to rounding, not bit for bit
//   bn_backward_cpu     as bn_backward, the two sums 16-wide over the channel (not in bn_backward's order)
// GPU variants (CLBackend.gpuGlue, planes of at least RS_GPU_WG values): one group per channel leaves
// most compute units idle and its items read far-apart spans, so training mode splits into
// chunked reductions (chunk_plane in common.h: RS_GPU_WG items per (channel, image, RS_CHUNK values),
// coalesced), a per-channel pass adding the partials in order, and an elementwise pass, one item
// per value. The variance is E[d²] − E[d]² of the shifted values d = x − (the channel's first
// value), which keeps offset inputs exact enough (the shift removes the offset) in one pass.
//   bn_stats_partial, bn_stats_final, bn_apply        forward (3 launches)
//   bn_grad_partial, bn_grad_final, bn_grad_dx        backward (3 launches)
//   bn_fold             one item per conv weight element: the eval-mode batch norm folded into the
//                       preceding conv, w'[o, …] = w[o, …]·s[o], b'[o] = (b[o] − mean[o])·s[o] + β[o],
//                       s = γ / √(var + eps)

// The plane of channel c in image n.
#define BN_PLANE(p, n, c, C, HW) ((p) + ((size_t)(n) * (C) + (c)) * (HW))

#ifndef ACT
#define ACT 0
#endif

// Elements per item in the eval kernel's launch (dimension 0 counts spans of this size).
// BN_SPAN: -D from OpenCL/KernelConstants.swift (the host uses it too).

// This item's span [*lo, *hi) of a plane of HW values.
inline void bn_span(int HW, int* lo, int* hi) { item_span(get_local_id(0), HW, lo, hi); }


// The affine map (and the ReLU mask's argument): one expression for forward and backward.
inline float bn_t(float x, float mu, float inv, float w, float b) { return (x - mu) * inv * w + b; }
inline float8 bn_t8(float8 x, float mu, float inv, float w, float b) { return (x - mu) * inv * w + b; }
inline float16 bn_t16(float16 x, float mu, float inv, float w, float b) { return (x - mu) * inv * w + b; }

// The fused activation and its derivative's factor on dy, from t.
#if ACT == 1
#define BN_ACT(t) fmax((t), 0.0f)
#define BN_DACT(g, t) select((float8)(0.0f), (g), (t) > 0.0f)
#define BN_DACT16(g, t) select((float16)(0.0f), (g), (t) > 0.0f)
#define BN_DACT1(g, t) ((t) > 0.0f ? (g) : 0.0f)
#elif ACT == 2
#define BN_ACT(t) (1.0f / (1.0f + exp(-(t))))
inline float8 bn_dsig8(float8 g, float8 t) { float8 s = BN_ACT(t); return g * s * (1.0f - s); }
inline float16 bn_dsig16(float16 g, float16 t) { float16 s = BN_ACT(t); return g * s * (1.0f - s); }
inline float bn_dsig(float g, float t) { float s = BN_ACT(t); return g * s * (1.0f - s); }
#define BN_DACT(g, t) bn_dsig8((g), (t))
#define BN_DACT16(g, t) bn_dsig16((g), (t))
#define BN_DACT1(g, t) bn_dsig((g), (t))
#else
#define BN_ACT(t) (t)
#define BN_DACT(g, t) (g)
#define BN_DACT16(g, t) (g)
#define BN_DACT1(g, t) (g)
#endif

#ifndef DESC
#define DESC 0
#endif

// bn_backward's two sums over pixels [lo, hi) of the channel's N planes: Σ g and Σ g·x̂, with
// g = dy through the fused activation's derivative (one work-group item's share; both layouts).
inline void bn_backward_sums(__global const float* dy, __global const float* x, int N, int C, int c, int HW,
                             int lo, int hi, float mu, float inv, float wc, float bc, float* db, float* dw) {
    float8 sd8 = 0.0f, sdx8 = 0.0f;
    float sd = 0.0f, sdx = 0.0f;
    for (int n = 0; n < N && lo < hi; n++) {
        __global const float* gp = BN_PLANE(dy, n, c, C, HW);
        __global const float* xp = BN_PLANE(x, n, c, C, HW);
        int p = lo;
        for (; p + 8 <= hi; p += 8) {
            float8 xv = vload8(0, xp + p), g = vload8(0, gp + p);
            g = BN_DACT(g, bn_t8(xv, mu, inv, wc, bc));
            sd8 += g;
            sdx8 += g * ((xv - mu) * inv);
        }
        for (; p < hi; p++) {
            float xv = xp[p], g = gp[p];
            g = BN_DACT1(g, bn_t(xv, mu, inv, wc, bc));
            sd += g;
            sdx += g * ((xv - mu) * inv);
        }
    }
    *db = hsum8(sd8) + sd;
    *dw = hsum8(sdx8) + sdx;
}

// bn_backward's dx over pixels [lo, hi) of the channel's N planes, from the channel's two sums.
inline void bn_backward_dx(__global const float* dy, __global const float* x, __global float* dx, int N, int C,
                           int c, int HW, int lo, int hi, float mu, float inv, float wc, float bc,
                           float db, float dw) {
    int M = N * HW;
    float k = wc * inv / (float)M, fm = (float)M;
    for (int n = 0; n < N; n++) {
        __global const float* gp = BN_PLANE(dy, n, c, C, HW);
        __global const float* xp = BN_PLANE(x, n, c, C, HW);
        __global float* q = BN_PLANE(dx, n, c, C, HW);
        int p = lo;
        for (; p + 8 <= hi; p += 8) {
            float8 xv = vload8(0, xp + p), g = vload8(0, gp + p);
            g = BN_DACT(g, bn_t8(xv, mu, inv, wc, bc));
            vstore8(k * (fm * g - db - ((xv - mu) * inv) * dw), 0, q + p);
        }
        for (; p < hi; p++) {
            float xv = xp[p], g = gp[p];
            g = BN_DACT1(g, bn_t(xv, mu, inv, wc, bc));
            q[p] = k * (fm * g - db - ((xv - mu) * inv) * dw);
        }
    }
}

// Σ ((p[i] − shift) − m)² over [0, n): run_sumsq16 about a mean m relative to shift (the
// differences x − shift are exact for x near shift, so an offset channel loses nothing to m).
inline float run_sumsq16_about(__global const float* p, int n, float shift, float m) {
    float16 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        float16 d0 = (vload16(0, p + i) - shift) - m, d1 = (vload16(1, p + i) - shift) - m;
        float16 d2 = (vload16(2, p + i) - shift) - m, d3 = (vload16(3, p + i) - shift) - m;
        a0 += d0 * d0; a1 += d1 * d1; a2 += d2 * d2; a3 += d3 * d3;
    }
    for (; i + 16 <= n; i += 16) { float16 d = (vload16(0, p + i) - shift) - m; a0 += d * d; }
    float s = hsum16((a0 + a1) + (a2 + a3));
    for (; i < n; i++) { float d = (p[i] - shift) - m; s += d * d; }
    return s;
}

// bn_train_cpu's statistics: the channel's N planes in chunks of at most BN_CPU_CHUNK values (small
// enough that the chunk's second pass finds it in the core's L1 cache); per chunk its exact
// (mean, M2) by two passes over x − shift (shift = the channel's first value, as bn_train: offset
// inputs keep their precision, a constant channel gets its exact value as mean and M2 = 0), then
// Chan's parallel formula folds the chunks into the running (count, mean, M2) in a fixed order, so
// reruns agree bit for bit.
#define BN_CPU_CHUNK 4096
inline void channel_moments(__global const float* x, int N, int C, int c, int HW, float* mean, float* var) {
    float shift = BN_PLANE(x, 0, c, C, HW)[0];
    float cnt = 0.0f, mu = 0.0f, m2 = 0.0f;                 // mu relative to shift
    for (int n = 0; n < N; n++) {
        __global const float* plane = BN_PLANE(x, n, c, C, HW);
        for (int lo = 0; lo < HW; lo += BN_CPU_CHUNK) {
            int len = min(BN_CPU_CHUNK, HW - lo);
            __global const float* p = plane + lo;
            float mb = run_sum16(p, len, shift) / (float)len;
            float qb = run_sumsq16_about(p, len, shift, mb);
            float nb = (float)len, nn = cnt + nb, d = mb - mu;
            mu += d * (nb / nn);
            m2 += qb + d * d * (cnt * nb / nn);
            cnt = nn;
        }
    }
    *mean = shift + mu;
    *var = m2 / cnt;
}

// One item per channel (see the header).   global: C (rounded up to the host's group size)
__kernel void bn_train_cpu(__global const float* x, __global float* y, __global float* mean, __global float* invStd,
                           __global float* runningMean, __global float* runningVar,
                           __global const float* w, __global const float* b,
                           __global float* desc, __global float* argmax,
                           int N, int C, int HW, float momentum, float eps) {
    int c = get_global_id(0), M = N * HW;
    if (c >= C) return;
    float mu, var;
    channel_moments(x, N, C, c, HW, &mu, &var);
    float inv = 1.0f / sqrt(var + eps);
    float wc = w[c], bc = b[c];
    for (int n = 0; n < N; n++) {
        __global const float* plane = BN_PLANE(x, n, c, C, HW);
        __global float* out = BN_PLANE(y, n, c, C, HW);
#if DESC
        // The plane's descriptors: mean of y and its first maximum (first_max_step's lanes, then
        // first_max_of_lanes: the smallest index among the largest values).
        float8 acc8 = 0.0f, bv8 = -INFINITY;
        int8 bi8 = INT_MAX;
        int p = 0;
        for (; p + 8 <= HW; p += 8) {
            float8 v = BN_ACT(bn_t8(vload8(0, plane + p), mu, inv, wc, bc));
            vstore8(v, 0, out + p);
            acc8 += v;
            first_max_step(v, p, &bv8, &bi8);
        }
        float acc = hsum8(acc8), bv;
        int bi;
        first_max_of_lanes(bv8, bi8, &bv, &bi);
        for (; p < HW; p++) {
            float v = BN_ACT(bn_t(plane[p], mu, inv, wc, bc));
            out[p] = v;
            acc += v;
            if (bi == INT_MAX || v > bv) { bv = v; bi = p; }   // the tail follows the lanes: ties keep the earlier
        }
        int nc = n * C + c;
        desc[nc] = acc / (float)HW;
        desc[N * C + nc] = bv;
        argmax[nc] = (float)bi;
#else
        int p = 0;
        for (; p + 16 <= HW; p += 16) vstore16(BN_ACT(bn_t16(vload16(0, plane + p), mu, inv, wc, bc)), 0, out + p);
        for (; p < HW; p++) out[p] = BN_ACT(bn_t(plane[p], mu, inv, wc, bc));
#endif
    }
    mean[c] = mu;
    invStd[c] = inv;
    float unbiased = M > 1 ? var * (float)M / (float)(M - 1) : var;
    runningMean[c] = (1.0f - momentum) * runningMean[c] + momentum * mu;
    runningVar[c] = (1.0f - momentum) * runningVar[c] + momentum * unbiased;
}

// One item per channel: the two sums over the channel, then dx (see bn_backward).   global: C
__kernel void bn_backward_cpu(__global const float* dy, __global const float* x, __global const float* mean,
                              __global const float* invStd, __global const float* w, __global const float* b,
                              __global float* dweight, __global float* dbias, __global float* dx,
                              int N, int C, int HW) {
    int c = get_global_id(0);
    if (c >= C) return;
    float mu = mean[c], inv = invStd[c], wc = w[c], bc = b[c];
    // Σ g and Σ g·x̂ over the channel's planes, 16-wide with two accumulators each, then the tails.
    float16 sd0 = 0.0f, sd1 = 0.0f, sx0 = 0.0f, sx1 = 0.0f;
    float sd = 0.0f, sdx = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float* gp = BN_PLANE(dy, n, c, C, HW);
        __global const float* xp = BN_PLANE(x, n, c, C, HW);
        int p = 0;
        for (; p + 32 <= HW; p += 32) {
            float16 x0 = vload16(0, xp + p), x1 = vload16(1, xp + p);
            float16 g0 = BN_DACT16(vload16(0, gp + p), bn_t16(x0, mu, inv, wc, bc));
            float16 g1 = BN_DACT16(vload16(1, gp + p), bn_t16(x1, mu, inv, wc, bc));
            sd0 += g0; sx0 += g0 * ((x0 - mu) * inv);
            sd1 += g1; sx1 += g1 * ((x1 - mu) * inv);
        }
        for (; p < HW; p++) {
            float xv = xp[p], g = BN_DACT1(gp[p], bn_t(xv, mu, inv, wc, bc));
            sd += g;
            sdx += g * ((xv - mu) * inv);
        }
    }
    float db = hsum16(sd0 + sd1) + sd, dw = hsum16(sx0 + sx1) + sdx;
    dbias[c] = db;
    dweight[c] = dw;
    bn_backward_dx(dy, x, dx, N, C, c, HW, 0, HW, mu, inv, wc, bc, db, dw);
}

__kernel void bn_train(__global const float* x, __global float* y, __global float* mean, __global float* invStd,
                       __global float* runningMean, __global float* runningVar,
                       __global const float* w, __global const float* b,
                       int N, int C, int HW, float momentum, float eps) {
    __local float scratch[RS_WG];
    int c = get_group_id(0), M = N * HW;
    int lo, hi;
    bn_span(HW, &lo, &hi);
    // Subtracting the channel's first value keeps the sums small for offset data, and makes a
    // constant channel's mean exact and its variance exactly 0.
    float shift = BN_PLANE(x, 0, c, C, HW)[0];
    float8 acc8 = 0.0f;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float* plane = BN_PLANE(x, n, c, C, HW);
        int p = lo;
        for (; p + 8 <= hi; p += 8) acc8 += vload8(0, plane + p) - shift;
        for (; p < hi; p++) acc += plane[p] - shift;
    }
    float mu = shift + wg_sum(scratch, hsum8(acc8) + acc) / (float)M;
    float8 sq8 = 0.0f;
    float sq = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float* plane = BN_PLANE(x, n, c, C, HW);
        int p = lo;
        for (; p + 8 <= hi; p += 8) { float8 d = vload8(0, plane + p) - mu; sq8 += d * d; }
        for (; p < hi; p++) { float d = plane[p] - mu; sq += d * d; }
    }
    float var = wg_sum(scratch, hsum8(sq8) + sq) / (float)M;
    float inv = 1.0f / sqrt(var + eps);
    float wc = w[c], bc = b[c];
    for (int n = 0; n < N; n++) {
        __global const float* plane = BN_PLANE(x, n, c, C, HW);
        __global float* out = BN_PLANE(y, n, c, C, HW);
        int p = lo;
        for (; p + 8 <= hi; p += 8) {
            vstore8(BN_ACT(bn_t8(vload8(0, plane + p), mu, inv, wc, bc)), 0, out + p);
        }
        for (; p < hi; p++) {
            out[p] = BN_ACT(bn_t(plane[p], mu, inv, wc, bc));
        }
    }
    if (get_local_id(0) == 0) {
        mean[c] = mu;
        invStd[c] = inv;
        // One value per channel has no unbiased variance; the biased one (0) is used instead.
        float unbiased = M > 1 ? var * (float)M / (float)(M - 1) : var;
        runningMean[c] = (1.0f - momentum) * runningMean[c] + momentum * mu;
        runningVar[c] = (1.0f - momentum) * runningVar[c] + momentum * unbiased;
    }
}

__kernel void bn_backward(__global const float* dy, __global const float* x, __global const float* mean,
                          __global const float* invStd, __global const float* w, __global const float* b,
                          __global float* dweight, __global float* dbias, __global float* dx,
                          int N, int C, int HW) {
    __local float scratch[RS_WG];
    int c = get_group_id(0);
    int lo, hi;
    bn_span(HW, &lo, &hi);
    float mu = mean[c], inv = invStd[c], wc = w[c], bc = b[c];
    float sd, sdx;
    bn_backward_sums(dy, x, N, C, c, HW, lo, hi, mu, inv, wc, bc, &sd, &sdx);
    float db = wg_sum(scratch, sd);
    float dw = wg_sum(scratch, sdx);
    if (get_local_id(0) == 0) { dbias[c] = db; dweight[c] = dw; }
    bn_backward_dx(dy, x, dx, N, C, c, HW, lo, hi, mu, inv, wc, bc, db, dw);
}

__kernel void bn_eval(__global const float* x, __global float* y, __global const float* mean,
                      __global const float* var, __global const float* w, __global const float* b,
                      int C, int HW, float eps) {
    // 2-D launch: dimension 0 the span of BN_SPAN values, dimension 1 the (image, channel) plane.
    int plane = get_global_id(1), c = plane % C;
    int lo = get_global_id(0) * BN_SPAN, hi = min(lo + BN_SPAN, HW);
    float mu = mean[c], inv = 1.0f / sqrt(var[c] + eps), wc = w[c], bc = b[c];
    __global const float* xp = x + (size_t)plane * HW;
    __global float* out = y + (size_t)plane * HW;
    int p = lo;
    for (; p + 8 <= hi; p += 8) {
        vstore8(BN_ACT(bn_t8(vload8(0, xp + p), mu, inv, wc, bc)), 0, out + p);
    }
    for (; p < hi; p++) {
        out[p] = BN_ACT(bn_t(xp[p], mu, inv, wc, bc));
    }
}

__kernel void bn_fold(__global const float* cw, __global const float* cb, int hasBias,
                      __global const float* gamma, __global const float* beta,
                      __global const float* mean, __global const float* var,
                      __global float* fw, __global float* fb, int Cout, int perOut, float eps) {
    int i = get_global_id(0);
    if (i >= Cout * perOut) return;
    int o = i / perOut;
    float s = gamma[o] / sqrt(var[o] + eps);
    fw[i] = cw[i] * s;
    if (i < Cout) {
        float sb = gamma[i] / sqrt(var[i] + eps);
        fb[i] = ((hasBias ? cb[i] : 0.0f) - mean[i]) * sb + beta[i];
    }
}

// MARK: GPU variants (CLBackend.gpuGlue; see the header)

// Group g (chunk_plane in common.h): Σ(x − shift) and Σ(x − shift)² over its chunk, shift = the
// channel's first value (as bn_train), into partials[2g], partials[2g + 1].
__kernel void bn_stats_partial(__global const float* x, __global float* partials, int N, int C, int HW, int chunks) {
    __local float scratch[RS_GPU_WG];
    int g = get_group_id(0), lid = get_local_id(0), c, lo, hi;
    __global const float* p = x + chunk_plane(g, N, C, HW, chunks, &c, &lo, &hi);
    float shift = BN_PLANE(x, 0, c, C, HW)[0];
    float s = 0.0f, q = 0.0f;
    for (int j = 0; j < RS_CHUNK / RS_GPU_WG; j++) {
        int i = lo + lid + j * RS_GPU_WG;
        if (i < hi) { float d = p[i] - shift; s += d; q += d * d; }
    }
    float ts = wg_sum_of(scratch, s, RS_GPU_WG), tq = wg_sum_of(scratch, q, RS_GPU_WG);
    if (lid == 0) { partials[2 * g] = ts; partials[2 * g + 1] = tq; }
}

// One item per channel: its `per` partial pairs added in order → mean, invStd (biased variance
// E[d²] − E[d]² of the shifted values, d = x − shift, clamped at 0), running statistics as bn_train.
__kernel void bn_stats_final(__global const float* partials, __global const float* x, __global float* mean,
                             __global float* invStd, __global float* runningMean, __global float* runningVar,
                             int N, int C, int HW, int per, float momentum, float eps) {
    int c = get_global_id(0);
    if (c >= C) return;
    __global const float* p = partials + (size_t)2 * c * per;
    float s = 0.0f, q = 0.0f;
    for (int i = 0; i < per; i++) { s += p[2 * i]; q += p[2 * i + 1]; }
    int M = N * HW;
    float dm = s / (float)M;
    float mu = BN_PLANE(x, 0, c, C, HW)[0] + dm;
    float var = fmax(q / (float)M - dm * dm, 0.0f);
    mean[c] = mu;
    invStd[c] = 1.0f / sqrt(var + eps);
    float unbiased = M > 1 ? var * (float)M / (float)(M - 1) : var;
    runningMean[c] = (1.0f - momentum) * runningMean[c] + momentum * mu;
    runningVar[c] = (1.0f - momentum) * runningVar[c] + momentum * unbiased;
}

// y = act((x − mean)·invStd·w + b).   2-D (value of the plane, plane n·C + c)
__kernel void bn_apply(__global const float* x, __global float* y, __global const float* mean, __global const float* invStd,
                       __global const float* w, __global const float* b, int C, int HW) {
    int p = get_global_id(0), plane = get_global_id(1), c = plane % C;
    if (p >= HW) return;
    size_t at = (size_t)plane * HW + p;
    y[at] = BN_ACT(bn_t(x[at], mean[c], invStd[c], w[c], b[c]));
}

// Group g: Σ g and Σ g·x̂ over its chunk (g = dy through the fused activation) into partials[2g], [2g + 1].
__kernel void bn_grad_partial(__global const float* dy, __global const float* x, __global const float* mean,
                              __global const float* invStd, __global const float* w, __global const float* b,
                              __global float* partials, int N, int C, int HW, int chunks) {
    __local float scratch[RS_GPU_WG];
    int g = get_group_id(0), lid = get_local_id(0), c, lo, hi;
    size_t off = chunk_plane(g, N, C, HW, chunks, &c, &lo, &hi);
    __global const float* gp = dy + off;
    __global const float* xp = x + off;
    float mu = mean[c], inv = invStd[c], wc = w[c], bc = b[c];
    float sd = 0.0f, sdx = 0.0f;
    for (int j = 0; j < RS_CHUNK / RS_GPU_WG; j++) {
        int i = lo + lid + j * RS_GPU_WG;
        if (i < hi) {
            float xv = xp[i], gv = BN_DACT1(gp[i], bn_t(xv, mu, inv, wc, bc));
            sd += gv;
            sdx += gv * ((xv - mu) * inv);
        }
    }
    float ts = wg_sum_of(scratch, sd, RS_GPU_WG), tx = wg_sum_of(scratch, sdx, RS_GPU_WG);
    if (lid == 0) { partials[2 * g] = ts; partials[2 * g + 1] = tx; }
}

// One item per channel: dbias = Σ g, dweight = Σ g·x̂ from its `per` partial pairs, in order.
__kernel void bn_grad_final(__global const float* partials, __global float* dweight, __global float* dbias, int C, int per) {
    int c = get_global_id(0);
    if (c >= C) return;
    __global const float* p = partials + (size_t)2 * c * per;
    float s = 0.0f, q = 0.0f;
    for (int i = 0; i < per; i++) { s += p[2 * i]; q += p[2 * i + 1]; }
    dbias[c] = s;
    dweight[c] = q;
}

// dx = w·invStd/M·(M·g − dbias − x̂·dweight).   2-D (value of the plane, plane n·C + c)
__kernel void bn_grad_dx(__global const float* dy, __global const float* x, __global const float* mean,
                         __global const float* invStd, __global const float* w, __global const float* b,
                         __global const float* dweight, __global const float* dbias, __global float* dx,
                         int N, int C, int HW) {
    int p = get_global_id(0), plane = get_global_id(1), c = plane % C;
    if (p >= HW) return;
    size_t at = (size_t)plane * HW + p;
    float mu = mean[c], inv = invStd[c], wc = w[c], bc = b[c], fm = (float)(N * HW);
    float xv = x[at], gv = BN_DACT1(dy[at], bn_t(xv, mu, inv, wc, bc));
    dx[at] = wc * inv / fm * (fm * gv - dbias[c] - ((xv - mu) * inv) * dweight[c]);
}
