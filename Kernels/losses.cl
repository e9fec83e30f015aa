// losses.cl: the training losses, each reduced to one value on the device, and their gradients.
// Every large sum is split into fixed pieces (chunks, images or rows), each piece reduced by one
// work-group of RS_WG items in a fixed order (wg_sum), and the pieces added in order by one item
// (sum_partials or a loss's *_final kernel): reruns are bit-identical. Backward kernels read the
// upstream gradient dLoss[0] on the device. Variants: the fused loss on CPU devices (lac_embed_cpu,
// seg_pixel_cpu, seg_backward_cpu: "CPU variants" at the end; not bit-identical to the group kernels).
//   sum_partials        one item: out[0] = (Σ partials, in order) / divisor  (also used by optim's sum_of_squares)
//   bce_partial         one work-group per chunk of BCE_CHUNK elements → partial sums
//   bce_backward        one item per element: (σ(x) − y)·dLoss/count
//   dice_sums           one work-group per image → (N, 3): Σp·y, Σp, Σy
//   dice_final          one item: batch mean of (2Σpy + 1)/(Σp + Σy + 1)
//   dice_backward       one item per element
//   barlow_rows         one work-group per row i → (1 − c_ii)² + λ Σ_{j≠i} c_ij²
//   barlow_backward     one item per element
//
// The fused supervised loss of docs/MODEL.md (SegmentationLoss): 0.5·BCE − 0.5·softDice(σ(x)) + β·LAC, pixels
// four at a time (float4 loads along a plane; FOR_VEC4 in the work-group kernels), with WITH_LAC = 0 or 1:
//   lac_norms           one item per 4 pixels: max(‖e_pixel‖, 1e-12) → norms (N, H·W)
//   lac_class_sums      one work-group per (image, dimension): Σ e/‖e‖ over lesion / background pixels, and the counts
//   lac_prototypes      one item per image: normalised class means, and whether the image has both classes
//   seg_pixel           one work-group per (image, chunk of SEG_CHUNK pixels): Σ BCE, Σσ·y, Σσ, Σy, Σωℓ, Σω →
//                       partials (N, chunks, 6); saves each pixel's LAC coefficient ω·(±σ(t))/τ and z·(p_bg − p_fg)
//   seg_final           one item: the loss, and the per-image sums the backward needs → stats (N + 1, 4)
//   seg_backward        one item per 4 pixels: d loss / d logits, and with WITH_LAC d loss / d embedding
//                       (prototypes held constant), from the saved state: nothing of the forward is recomputed

// BCE_CHUNK: -D from OpenCL/KernelConstants.swift (the host uses it too).
#define LAC_NORM_FLOOR 1e-12f
// SEG_CHUNK: -D from OpenCL/KernelConstants.swift (the host uses it too).
// Float4s of one item's contiguous slice of a SEG_CHUNK (FOR_VEC4 with CONTIGUOUS_ITEMS), at most.
#define SEG_V ((SEG_CHUNK + RS_WG * 4 - 1) / (RS_WG * 4))
// Pixels per item of lac_norms and seg_backward: LAC_SPAN_CPU (-D from OpenCL/KernelConstants.swift) on CPU
// devices (CONTIGUOUS_ITEMS, common.h), one float4 on GPUs; CLBackend.lacSpan makes the same choice.
#if CONTIGUOUS_ITEMS
#define LAC_SPAN LAC_SPAN_CPU
#else
#define LAC_SPAN 4
#endif
#ifndef WITH_LAC
#define WITH_LAC 0
#endif

__kernel void sum_partials(__global const float* partials, int count, float divisor, __global float* out) {
    if (get_global_id(0) != 0) return;
    float acc = 0.0f;
    for (int i = 0; i < count; ++i) acc += partials[i];
    out[0] = acc / divisor;
}

__kernel void bce_partial(__global const float* x, __global const float* y, __global float* partials, int count) {
    __local float scratch[RS_WG];
    int g = get_group_id(0);
    int end = min(count, (g + 1) * BCE_CHUNK);
    float acc = 0.0f;
    for (int i = g * BCE_CHUNK + get_local_id(0); i < end; i += RS_WG) {
        float a = x[i];
        acc += fmax(a, 0.0f) - a * y[i] + log1p(exp(-fabs(a)));
    }
    float total = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) partials[g] = total;
}

__kernel void bce_backward(__global const float* dLoss, __global const float* x, __global const float* y,
                           __global float* dx, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    dx[i] = (1.0f / (1.0f + exp(-x[i])) - y[i]) * (dLoss[0] / (float)count);
}

__kernel void dice_sums(__global const float* p, __global const float* y, __global float* stats, int perImage) {
    __local float scratch[RS_WG];
    int n = get_group_id(0);
    __global const float* pp = p + (size_t)n * perImage;
    __global const float* yy = y + (size_t)n * perImage;
    float inter = 0.0f, sp = 0.0f, sy = 0.0f;
    for (int i = get_local_id(0); i < perImage; i += RS_WG) { inter += pp[i] * yy[i]; sp += pp[i]; sy += yy[i]; }
    inter = wg_sum(scratch, inter);
    sp = wg_sum(scratch, sp);
    sy = wg_sum(scratch, sy);
    if (get_local_id(0) == 0) { stats[n * 3] = inter; stats[n * 3 + 1] = sp; stats[n * 3 + 2] = sy; }
}

__kernel void dice_final(__global const float* stats, int N, __global float* out) {
    if (get_global_id(0) != 0) return;
    float acc = 0.0f;
    for (int n = 0; n < N; ++n) acc += (2.0f * stats[n * 3] + 1.0f) / (stats[n * 3 + 1] + stats[n * 3 + 2] + 1.0f);
    out[0] = acc / (float)N;
}

__kernel void dice_backward(__global const float* dLoss, __global const float* p, __global const float* y,
                            __global const float* stats, __global float* dp, int N, int perImage) {
    int i = get_global_id(0);
    if (i >= N * perImage) return;
    int n = i / perImage;
    float den = stats[n * 3 + 1] + stats[n * 3 + 2] + 1.0f;
    // d/dp_i of (2I + 1)/(P + Y + 1) = (2y_i·den − (2I + 1)) / den².
    dp[i] = dLoss[0] / (float)N * (2.0f * y[i] * den - (2.0f * stats[n * 3] + 1.0f)) / (den * den);
}

__kernel void barlow_rows(__global const float* c, __global float* partials, int D, float lambda) {
    __local float scratch[RS_WG];
    int i = get_group_id(0);
    __global const float* row = c + (size_t)i * D;
    float acc = 0.0f;
    for (int j = get_local_id(0); j < D; j += RS_WG) acc += j == i ? 0.0f : row[j] * row[j];
    float off = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) { float d = 1.0f - row[i]; partials[i] = d * d + lambda * off; }
}

__kernel void barlow_backward(__global const float* dLoss, __global const float* c, __global float* dc, int D, float lambda) {
    int gid = get_global_id(0);
    if (gid >= D * D) return;
    float v = c[gid];
    dc[gid] = dLoss[0] * (gid / D == gid % D ? -2.0f * (1.0f - v) : 2.0f * lambda * v);
}

// Four pixels p .. p + 3 of a plane of hw values (lanes past the end read 0), and the lane mask (1 inside, 0 past).
float4 load_px(__global const float* plane, int p, int hw) {
    if (p + 4 <= hw) return vload4(0, plane + p);
    float4 r = (float4)(0.0f);
    r.x = plane[p];
    if (p + 1 < hw) r.y = plane[p + 1];
    if (p + 2 < hw) r.z = plane[p + 2];
    return r;
}

void store_px(__global float* plane, int p, int hw, float4 v) {
    if (p + 4 <= hw) { vstore4(v, 0, plane + p); return; }
    plane[p] = v.x;
    if (p + 1 < hw) plane[p + 1] = v.y;
    if (p + 2 < hw) plane[p + 2] = v.z;
}

float4 lane_mask(int p, int hw) {
    return (float4)(p < hw ? 1.0f : 0.0f, p + 1 < hw ? 1.0f : 0.0f, p + 2 < hw ? 1.0f : 0.0f, p + 3 < hw ? 1.0f : 0.0f);
}

float4 sigmoid4(float4 x) { return 1.0f / (1.0f + exp(-x)); }

// Pixels per item of lac_norms and seg_backward (LAC_SPAN, a multiple of 4): the D embedding planes
// in the outer loop, so each step reads one contiguous run of a plane; per-pixel state in registers.
#define LAC_V (LAC_SPAN / 4)

// 2-D range: (⌈H·W / LAC_SPAN⌉, N). Σ_k e_k² per pixel, k ascending.
__kernel void lac_norms(__global const float* e, __global float* norms, int D, int HW) {
    int p0 = get_global_id(0) * LAC_SPAN, n = get_global_id(1);
    if (p0 >= HW) return;
    __global const float* en = e + (size_t)n * D * HW;
    float4 sq[LAC_V];
    for (int j = 0; j < LAC_V; ++j) sq[j] = (float4)(0.0f);
    for (int k = 0; k < D; ++k) {
        __global const float* ek = en + (size_t)k * HW;
        for (int j = 0; j < LAC_V && p0 + 4 * j < HW; ++j) { float4 v = load_px(ek, p0 + 4 * j, HW); sq[j] += v * v; }
    }
    for (int j = 0; j < LAC_V && p0 + 4 * j < HW; ++j) store_px(norms + (size_t)n * HW, p0 + 4 * j, HW, fmax(sqrt(sq[j]), LAC_NORM_FLOOR));
}

// sums (N, 2, D): class 0 lesion, 1 background, of z = e / norm; counts (N, 2), written by the k = 0 groups.
__kernel void lac_class_sums(__global const float* e, __global const float* norms, __global const float* target,
                             __global float* sums, __global float* counts, int D, int HW) {
    __local float scratch[RS_WG];
    int g = get_group_id(0), n = g / D, k = g % D;
    __global const float* ee = e + ((size_t)n * D + k) * HW;
    __global const float* nn = norms + (size_t)n * HW;
    __global const float* t = target + (size_t)n * HW;
    float4 fg = (float4)(0.0f), bg = (float4)(0.0f), nf = (float4)(0.0f);
    FOR_VEC4(p, 0, HW) {
        float4 z = load_px(ee, p, HW) / load_px(nn, p, HW);
        float4 les = select((float4)(0.0f), (float4)(1.0f), isgreater(load_px(t, p, HW), (float4)(0.5f)));
        float4 in = lane_mask(p, HW);
        z = select((float4)(0.0f), z, isgreater(in, (float4)(0.0f)));   // past the end: 0/0 would be NaN
        fg += les * z;
        bg += (in - les) * z;
        nf += les;
    }
    float f = wg_sum(scratch, (fg.x + fg.y) + (fg.z + fg.w));
    float b = wg_sum(scratch, (bg.x + bg.y) + (bg.z + bg.w));
    float c = wg_sum(scratch, (nf.x + nf.y) + (nf.z + nf.w));
    if (get_local_id(0) == 0) {
        sums[((size_t)n * 2) * D + k] = f;
        sums[((size_t)n * 2 + 1) * D + k] = b;
        if (k == 0) { counts[n * 2] = c; counts[n * 2 + 1] = (float)HW - c; }
    }
}

// protos (N, 2, D): normalise(class mean); valid (N): 1 when the image has both classes.
__kernel void lac_prototypes(__global const float* sums, __global const float* counts, __global float* protos,
                             __global float* valid, int N, int D) {
    int n = get_global_id(0);
    if (n >= N) return;
    int ok = counts[n * 2] > 0.0f && counts[n * 2 + 1] > 0.0f;
    valid[n] = ok ? 1.0f : 0.0f;
    for (int cls = 0; cls < 2; ++cls) {
        size_t base = ((size_t)n * 2 + cls) * D;
        float cnt = fmax(counts[n * 2 + cls], 1.0f), sq = 0.0f;
        for (int k = 0; k < D; ++k) { float m = sums[base + k] / cnt; sq += m * m; }
        float norm = fmax(sqrt(sq), LAC_NORM_FLOOR);
        for (int k = 0; k < D; ++k) protos[base + k] = ok ? sums[base + k] / cnt / norm : 0.0f;
    }
}

// partials (N, chunks, 6). With WITH_LAC, pixelState (N, 2, H·W): the coefficient a = ω·(lesion ? σ(t) : −σ(t))/τ
// and s = z·p_bg − z·p_fg of each pixel, where t = (lesion ? s : −s)/τ and ℓ = softplus(t), ω = 1 + γ on
// hard false positives (background with logit > 0, i.e. σ > 0.5). Unused arguments may be any buffer without LAC.
__kernel void seg_pixel(__global const float* logits, __global const float* target, __global const float* e,
                        __global const float* norms, __global const float* protos, __global const float* valid,
                        __global float* pixelState, __global float* partials, int D, int HW, int chunks,
                        float tau, float gamma) {
    __local float scratch[RS_WG];
    int g = get_group_id(0), n = g / chunks, c = g % chunks;
    __global const float* xs = logits + (size_t)n * HW;
    __global const float* ys = target + (size_t)n * HW;
    float4 bce = (float4)(0.0f), inter = (float4)(0.0f), sp = (float4)(0.0f), sy = (float4)(0.0f);
    float4 wl = (float4)(0.0f), w = (float4)(0.0f);
#if WITH_LAC && CONTIGUOUS_ITEMS
    // CPU items own a contiguous slice of at most SEG_V float4s: its projections onto the two
    // prototypes first, the D planes in the outer loop (one contiguous run of each plane), then the
    // pixel loop below takes them in order (each pixel's sums still run over k ascending).
    float4 sfs[SEG_V], sbs[SEG_V];
    int nv = 0;
    if (valid[n] > 0.0f) {
        __global const float* pf = protos + (size_t)n * 2 * D;
        __global const float* pb = pf + D;
        __global const float* en = e + (size_t)n * D * HW;
        FOR_VEC4(p, c * SEG_CHUNK, min(HW, (c + 1) * SEG_CHUNK)) { sfs[nv] = (float4)(0.0f); sbs[nv] = (float4)(0.0f); nv++; }
        for (int k = 0; k < D; ++k) {
            int j = 0;
            FOR_VEC4(p, c * SEG_CHUNK, min(HW, (c + 1) * SEG_CHUNK)) {
                float4 v = load_px(en + (size_t)k * HW, p, HW);
                sfs[j] += v * pf[k];
                sbs[j] += v * pb[k];
                j++;
            }
        }
    }
    int j = 0;
#endif
    FOR_VEC4(p, c * SEG_CHUNK, min(HW, (c + 1) * SEG_CHUNK)) {
        float4 in = lane_mask(p, HW);
        float4 x = load_px(xs, p, HW), y = load_px(ys, p, HW);
        bce += in * (fmax(x, 0.0f) - x * y + log1p(exp(-fabs(x))));
        float4 sg = sigmoid4(x);
        inter += in * sg * y;
        sp += in * sg;
        sy += in * y;
#if WITH_LAC
        if (valid[n] > 0.0f) {                              // uniform over the group
            __global const float* pf = protos + (size_t)n * 2 * D;
            __global const float* pb = pf + D;
            __global const float* en = e + (size_t)n * D * HW;
#if CONTIGUOUS_ITEMS
            float4 sf = sfs[j], sb = sbs[j];
            j++;
#else
            float4 sf = (float4)(0.0f), sb = (float4)(0.0f);
            for (int k = 0; k < D; ++k) { float4 v = load_px(en + (size_t)k * HW, p, HW); sf += v * pf[k]; sb += v * pb[k]; }
#endif
            float4 norm = load_px(norms + (size_t)n * HW, p, HW);
            norm = select((float4)(1.0f), norm, isgreater(in, (float4)(0.0f)));
            float4 s = sb / norm - sf / norm;
            float4 sign = select((float4)(-1.0f), (float4)(1.0f), isgreater(y, (float4)(0.5f)));   // lesion: +1
            float4 weight = 1.0f + select((float4)(0.0f), (float4)(gamma), isgreater(x, (float4)(0.0f)) & (sign < 0.0f));
            float4 t = sign * s / tau;
            wl += in * weight * (fmax(t, 0.0f) + log1p(exp(-fabs(t))));
            w += in * weight;
            __global float* state = pixelState + (size_t)n * 2 * HW;
            store_px(state, p, HW, weight * sign * sigmoid4(t) / tau);
            store_px(state + HW, p, HW, s);
        }
#endif
    }
    float4* accs[6] = { &bce, &inter, &sp, &sy, &wl, &w };
    for (int j = 0; j < 6; ++j) {
        float4 a = *accs[j];
        float total = wg_sum(scratch, (a.x + a.y) + (a.z + a.w));
        if (get_local_id(0) == 0) partials[((size_t)n * chunks + c) * 6 + j] = total;
    }
}

// Image n's sums (Σ BCE, Σσ·y, Σσ, Σy, Σωℓ, Σω) over its chunks of partials (N, chunks, 6), chunks ascending.
inline void seg_image_sums(__global const float* partials, int n, int chunks, float* s) {
    for (int j = 0; j < 6; ++j) s[j] = 0.0f;
    for (int c = 0; c < chunks; ++c) for (int j = 0; j < 6; ++j) s[j] += partials[((size_t)n * chunks + c) * 6 + j];
}

// loss = wBCE·mean BCE + wDice·mean_n Dice_n + wLAC·mean over images with both classes of Σωℓ/Σω (0 if none),
// images in order. With stats (not null): per image Σσ·y, Σσ + Σy + 1, Σω, valid; then (images with both classes, 0, 0, 0).
inline float seg_loss_of(__global const float* partials, __global const float* valid, int N, int chunks, int HW,
                         float wBCE, float wDice, float wLAC, __global float* stats) {
    float bce = 0.0f, dice = 0.0f, lac = 0.0f;
    int images = 0;
    for (int n = 0; n < N; ++n) {
        float s[6];
        seg_image_sums(partials, n, chunks, s);
        bce += s[0];
        float den = s[2] + s[3] + 1.0f;
        dice += (2.0f * s[1] + 1.0f) / den;
        int ok = WITH_LAC && valid[n] > 0.0f;
        if (ok) { lac += s[4] / s[5]; images += 1; }
        if (stats) {
            stats[n * 4] = s[1];
            stats[n * 4 + 1] = den;
            stats[n * 4 + 2] = s[5];
            stats[n * 4 + 3] = ok ? 1.0f : 0.0f;
        }
    }
    if (stats) {
        stats[N * 4] = (float)images;
        stats[N * 4 + 1] = 0.0f;
        stats[N * 4 + 2] = 0.0f;
        stats[N * 4 + 3] = 0.0f;
    }
    return wBCE * (bce / (float)(N * HW)) + wDice * (dice / (float)N) + (images > 0 ? wLAC * (lac / (float)images) : 0.0f);
}

inline float seg_loss_value(__global const float* partials, __global const float* valid, int N, int chunks, int HW,
                            float wBCE, float wDice, float wLAC) {
    return seg_loss_of(partials, valid, N, chunks, HW, wBCE, wDice, wLAC, 0);
}

// loss[0] and stats (N + 1, 4), from the partials (seg_loss_of).
__kernel void seg_final(__global const float* partials, __global const float* valid, __global float* loss,
                        __global float* stats, int N, int chunks, int HW, float wBCE, float wDice, float wLAC) {
    if (get_global_id(0) != 0) return;
    loss[0] = seg_loss_of(partials, valid, N, chunks, HW, wBCE, wDice, wLAC, stats);
}

// 2-D range: (⌈H·W / LAC_SPAN⌉, N). dLogits (N, 1, H, W); with WITH_LAC also dE (N, D, H, W).
__kernel void seg_backward(__global const float* dLoss, __global const float* logits, __global const float* target,
                           __global const float* stats, __global float* dLogits, __global const float* e,
                           __global const float* norms, __global const float* protos, __global const float* pixelState,
                           __global float* dE, int N, int D, int HW, float wBCE, float wDice, float wLAC) {
    int p0 = get_global_id(0) * LAC_SPAN, n = get_global_id(1);
    if (p0 >= HW) return;
    int vs = min(LAC_V, (HW - p0 + 3) / 4);    // this item's float4s
    float dl = dLoss[0];
    float inter = stats[n * 4], den = stats[n * 4 + 1];
    for (int j = 0; j < vs; ++j) {
        int p = p0 + 4 * j;
        float4 x = load_px(logits + (size_t)n * HW, p, HW), y = load_px(target + (size_t)n * HW, p, HW);
        float4 sg = sigmoid4(x);
        // d/dp of (2I + 1)/(P + Y + 1) = (2y·den − (2I + 1)) / den², and dp/dx = σ(1 − σ).
        float4 dDice = (2.0f * y * den - (2.0f * inter + 1.0f)) / (den * den);
        float4 dx = dl * (wBCE / (float)(N * HW) * (sg - y) + wDice / (float)N * dDice * sg * (1.0f - sg));
        store_px(dLogits + (size_t)n * HW, p, HW, dx);
    }
#if WITH_LAC
    __global const float* en = e + (size_t)n * D * HW;
    __global float* dn = dE + (size_t)n * D * HW;
    if (!(stats[n * 4 + 3] > 0.0f)) {
        for (int k = 0; k < D; ++k)
            for (int j = 0; j < vs; ++j) store_px(dn + (size_t)k * HW, p0 + 4 * j, HW, (float4)(0.0f));
        return;
    }
    // ℓ = softplus(t), t = ±s/τ, s = z·(p_bg − p_fg): dℓ/dz = a·(p_bg − p_fg) with the saved a, and z·dz = a·s.
    // Through z = e / max(‖e‖, 1e-12): de = (dz − z·(z·dz)) / ‖e‖ above the floor, dz / 1e-12 below.
    float scale = dl * wLAC / (stats[n * 4 + 2] * stats[N * 4]);
    __global const float* state = pixelState + (size_t)n * 2 * HW;
    float4 a[LAC_V], norm[LAC_V], proj[LAC_V];
    for (int j = 0; j < vs; ++j) {
        int p = p0 + 4 * j;
        a[j] = scale * load_px(state, p, HW);
        float4 s = load_px(state + HW, p, HW), nm = load_px(norms + (size_t)n * HW, p, HW);
        norm[j] = select((float4)(1.0f), nm, isgreater(lane_mask(p, HW), (float4)(0.0f)));
        proj[j] = select((float4)(0.0f), a[j] * s, isgreater(norm[j], (float4)(LAC_NORM_FLOOR)));
    }
    __global const float* pf = protos + (size_t)n * 2 * D;
    __global const float* pb = pf + D;
    for (int k = 0; k < D; ++k) {
        float d = pb[k] - pf[k];
        for (int j = 0; j < vs; ++j) {
            int p = p0 + 4 * j;
            float4 z = load_px(en + (size_t)k * HW, p, HW) / norm[j];
            store_px(dn + (size_t)k * HW, p, HW, (a[j] * d - z * proj[j]) / norm[j]);
        }
    }
#endif
}

// MARK: CPU variants of the fused loss (not CLBackend.gpuGlue)
// One work-item per (span of SEG_SPAN_CPU pixels, image), 16-wide loads, the LAC_D embedding planes in the
// outer loop (each step reads one contiguous run of a plane); the partial sums of an item land at
// their own index and the consumers add them in span order, so reruns are bit-identical.
//   lac_embed_cpu   norms of the span's pixels, then (second pass over the span's runs, in the core's
//                   cache) Σ e/‖e‖ over its lesion and background pixels per dimension and its lesion
//                   count → embPartials (N, spans, 2·LAC_D + 1): what lac_norms and lac_class_sums do,
//                   reading the embedding once
//   seg_pixel_cpu   seg_pixel over the span, with the image's prototypes (lac_prototypes) computed from
//                   embPartials by every item alike (the span-0 item writes them, and valid, for the
//                   backward) → partials (N, spans, 6); the loss from them is seg_final's, which the host owes
//                   to the queue (CLContext.owe) and the backward normally takes over
//   seg_backward_cpu  seg_backward over the span, each item adding its image's partials itself (no stats from
//                   seg_final); with writeLoss also the loss, as seg_final (then seg_final never runs)
#ifndef LAC_D
#define LAC_D 1
#endif
#ifndef SEG_SPAN_CPU
#define SEG_SPAN_CPU 16
#endif
#define SEG_V16 (SEG_SPAN_CPU / 16)
#define EMB_STRIDE (2 * LAC_D + 1)

__kernel void lac_embed_cpu(__global const float* e, __global const float* target, __global float* norms,
                            __global float* embPartials, int HW, int spans) {
    int s = get_global_id(0), n = get_global_id(1);
    if (s >= spans) return;
    int lo = s * SEG_SPAN_CPU, len = min(SEG_SPAN_CPU, HW - lo), nv = (len + 15) / 16, nw = len / 16;
    __global const float* en = e + (size_t)n * LAC_D * HW + lo;
    float16 rn[SEG_V16], les[SEG_V16];
    for (int j = 0; j < nv; ++j) rn[j] = (float16)(0.0f);
    // The hot loops: nw whole float16s of each plane's run (plain loads), then the tail float16 if any;
    // two planes per step (two streams in flight), each pixel's sum still over k ascending.
    int k = 0;
    for (; k + 1 < LAC_D; k += 2) {
        __global const float* ek = en + (size_t)k * HW;
        __global const float* ek1 = ek + HW;
        for (int j = 0; j < nw; ++j) { float16 v = vload16(j, ek), u = vload16(j, ek1); rn[j] += v * v; rn[j] += u * u; }
        if (nw < nv) { float16 v = load16_upto(ek, 16 * nw, len), u = load16_upto(ek1, 16 * nw, len); rn[nw] += v * v; rn[nw] += u * u; }
    }
    for (; k < LAC_D; ++k) {
        __global const float* ek = en + (size_t)k * HW;
        for (int j = 0; j < nw; ++j) { float16 v = vload16(j, ek); rn[j] += v * v; }
        if (nw < nv) { float16 v = load16_upto(ek, 16 * nw, len); rn[nw] += v * v; }
    }
    __global const float* t = target + (size_t)n * HW + lo;
    float16 nf = (float16)(0.0f);
    for (int j = 0; j < nv; ++j) {
        float16 nm = fmax(sqrt(rn[j]), LAC_NORM_FLOOR);
        store16_upto(norms + (size_t)n * HW + lo, 16 * j, len, nm);
        rn[j] = 1.0f / nm;                                   // past the end: v = 0, so z = 0
        les[j] = select((float16)(0.0f), (float16)(1.0f), isgreater(load16_upto(t, 16 * j, len), (float16)(0.5f)));
        nf += les[j];
    }
    __global float* out = embPartials + ((size_t)n * spans + s) * EMB_STRIDE;
    for (int j = 0; j < nv; ++j) les[j] *= rn[j];           // 1/‖e‖ on lesion pixels, 0 elsewhere
    for (int k = 0; k < LAC_D; ++k) {
        // Two accumulators per sum (even and odd float16s), added at the end.
        float16 fg0 = (float16)(0.0f), fg1 = (float16)(0.0f), all0 = (float16)(0.0f), all1 = (float16)(0.0f);
        __global const float* ek = en + (size_t)k * HW;
        int j = 0;
        for (; j + 1 < nw; j += 2) {
            float16 v0 = vload16(j, ek), v1 = vload16(j + 1, ek);
            fg0 += les[j] * v0; fg1 += les[j + 1] * v1;
            all0 += rn[j] * v0; all1 += rn[j + 1] * v1;
        }
        for (; j < nv; ++j) { float16 v0 = load16_upto(ek, 16 * j, len); fg0 += les[j] * v0; all0 += rn[j] * v0; }
        float f = hsum16(fg0 + fg1);
        out[k] = f;
        out[LAC_D + k] = hsum16(all0 + all1) - f;
    }
    out[2 * LAC_D] = hsum16(nf);
}

__kernel void seg_pixel_cpu(__global const float* logits, __global const float* target, __global const float* e,
                            __global const float* norms, __global const float* embPartials, __global float* protos,
                            __global float* valid, __global float* pixelState, __global float* partials, int HW, int spans,
                            float tau, float gamma) {
    int c = get_global_id(0), n = get_global_id(1);
    if (c >= spans) return;
    int lo = c * SEG_SPAN_CPU, len = min(SEG_SPAN_CPU, HW - lo), nv = (len + 15) / 16, nw = len / 16;
    __global const float* xs = logits + (size_t)n * HW + lo;
    __global const float* ys = target + (size_t)n * HW + lo;
    float16 bce = (float16)(0.0f), inter = (float16)(0.0f), sp = (float16)(0.0f), sy = (float16)(0.0f);
    float16 wl = (float16)(0.0f), w = (float16)(0.0f);
#if WITH_LAC
    // The image's prototypes, as lac_prototypes: class sums over the spans in order, normalised means.
    __global const float* ep = embPartials + (size_t)n * spans * EMB_STRIDE;
    float pf[LAC_D], pb[LAC_D];
    float cf = 0.0f;
    for (int s = 0; s < spans; ++s) cf += ep[(size_t)s * EMB_STRIDE + 2 * LAC_D];
    float cb = (float)HW - cf;
    int ok = cf > 0.0f && cb > 0.0f;
    float sqf = 0.0f, sqb = 0.0f;
    for (int k = 0; k < LAC_D; ++k) {
        float f = 0.0f, b = 0.0f;
        for (int s = 0; s < spans; ++s) { f += ep[(size_t)s * EMB_STRIDE + k]; b += ep[(size_t)s * EMB_STRIDE + LAC_D + k]; }
        pf[k] = f / fmax(cf, 1.0f);
        pb[k] = b / fmax(cb, 1.0f);
        sqf += pf[k] * pf[k];
        sqb += pb[k] * pb[k];
    }
    float nrf = fmax(sqrt(sqf), LAC_NORM_FLOOR), nrb = fmax(sqrt(sqb), LAC_NORM_FLOOR);
    for (int k = 0; k < LAC_D; ++k) { pf[k] = ok ? pf[k] / nrf : 0.0f; pb[k] = ok ? pb[k] / nrb : 0.0f; }
    if (c == 0) {
        __global float* pr = protos + (size_t)n * 2 * LAC_D;
        for (int k = 0; k < LAC_D; ++k) { pr[k] = pf[k]; pr[LAC_D + k] = pb[k]; }
        valid[n] = ok ? 1.0f : 0.0f;
    }
    // Only s = z·(p_bg − p_fg) enters the loss: one projection of e onto the prototypes' difference,
    // the planes in the outer loop (k ascending per pixel); z = e / ‖e‖ is applied per pixel below.
    float16 proj[SEG_V16];
    if (ok) {
        __global const float* en = e + (size_t)n * LAC_D * HW + lo;
        for (int j = 0; j < nv; ++j) proj[j] = (float16)(0.0f);
        for (int k = 0; k < LAC_D; ++k) {
            float dk = pb[k] - pf[k];
            __global const float* ek = en + (size_t)k * HW;
            for (int j = 0; j < nw; ++j) proj[j] += vload16(j, ek) * dk;
            if (nw < nv) proj[nw] += load16_upto(ek, 16 * nw, len) * dk;
        }
    }
    __global float* state = pixelState + (size_t)n * 2 * HW + lo;
    __global const float* nn = norms + (size_t)n * HW + lo;
    float itau = 1.0f / tau;
#endif
    for (int j = 0; j < nv; ++j) {
        float16 in = mask16(16 * j, len);
        float16 x = load16_upto(xs, 16 * j, len), y = load16_upto(ys, 16 * j, len);
        // One exp per pixel for both terms: softplus(x) = max(x, 0) + log1p(exp(−|x|)), σ(x) from the same exp.
        float16 ex = exp(-fabs(x)), rx = 1.0f / (1.0f + ex);
        bce += in * (fmax(x, 0.0f) - x * y + log1p(ex));
        float16 sg = select(ex * rx, rx, isgreaterequal(x, (float16)(0.0f)));
        inter += in * sg * y;
        sp += in * sg;
        sy += in * y;
#if WITH_LAC
        if (ok) {
            float16 norm = select((float16)(1.0f), load16_upto(nn, 16 * j, len), isgreater(in, (float16)(0.0f)));
            float16 s = proj[j] / norm;
            float16 sign = select((float16)(-1.0f), (float16)(1.0f), isgreater(y, (float16)(0.5f)));   // lesion: +1
            float16 weight = 1.0f + select((float16)(0.0f), (float16)(gamma), isgreater(x, (float16)(0.0f)) & (sign < 0.0f));
            float16 t = sign * s * itau;
            float16 et = exp(-fabs(t)), rt = 1.0f / (1.0f + et);
            wl += in * weight * (fmax(t, 0.0f) + log1p(et));
            w += in * weight;
            store16_upto(state, 16 * j, len, weight * sign * select(et * rt, rt, isgreaterequal(t, (float16)(0.0f))) * itau);
            store16_upto(state + HW, 16 * j, len, s);
        }
#endif
    }
    __global float* out = partials + ((size_t)n * spans + c) * 6;
    out[0] = hsum16(bce);
    out[1] = hsum16(inter);
    out[2] = hsum16(sp);
    out[3] = hsum16(sy);
    out[4] = hsum16(wl);
    out[5] = hsum16(w);
}

// 2-D range: (spans, N), SEG_SPAN_CPU pixels per item. seg_backward from seg_pixel_cpu's partials: every item
// adds its image's partials itself (seg_image_sums, seg_final's order), so no seg_final runs before it; with
// writeLoss the (0, 0) item also writes the loss as seg_final would (the forward left it to this launch).
// Divisions only per pixel: d loss / d e_k = ca·(p_bg − p_fg)_k − e_k·cz with ca = a/‖e‖, cz = a·s/‖e‖².
__kernel void seg_backward_cpu(__global const float* dLoss, __global const float* logits, __global const float* target,
                               __global const float* partials, __global const float* valid, __global float* loss, int writeLoss,
                               __global float* dLogits, __global const float* e, __global const float* norms,
                               __global const float* protos, __global const float* pixelState, __global float* dE,
                               int N, int HW, int spans, float wBCE, float wDice, float wLAC) {
    int c = get_global_id(0), n = get_global_id(1);
    if (c >= spans) return;
    if (writeLoss && c == 0 && n == 0) loss[0] = seg_loss_value(partials, valid, N, spans, HW, wBCE, wDice, wLAC);
    int lo = c * SEG_SPAN_CPU, len = min(SEG_SPAN_CPU, HW - lo), nv = (len + 15) / 16, nw = len / 16;
    float s[6];
    seg_image_sums(partials, n, spans, s);
    float dl = dLoss[0];
    float den = s[2] + s[3] + 1.0f;
    // d/dp of (2I + 1)/(P + Y + 1) = (2y·den − (2I + 1)) / den² = y·ka − kb, and dp/dx = σ(1 − σ).
    float ka = 2.0f / den, kb = (2.0f * s[1] + 1.0f) / (den * den);
    float cB = dl * wBCE / (float)(N * HW), cD = dl * wDice / (float)N;
    __global const float* xs = logits + (size_t)n * HW + lo;
    __global const float* ys = target + (size_t)n * HW + lo;
    __global float* dx = dLogits + (size_t)n * HW + lo;
    for (int j = 0; j < nv; ++j) {
        float16 x = load16_upto(xs, 16 * j, len), y = load16_upto(ys, 16 * j, len);
        float16 ex = exp(-fabs(x)), rx = 1.0f / (1.0f + ex);
        float16 sg = select(ex * rx, rx, isgreaterequal(x, (float16)(0.0f)));
        store16_upto(dx, 16 * j, len, cB * (sg - y) + cD * (y * ka - kb) * sg * (1.0f - sg));
    }
#if WITH_LAC
    __global float* dn = dE + (size_t)n * LAC_D * HW + lo;
    if (!(valid[n] > 0.0f)) {
        for (int k = 0; k < LAC_D; ++k)
            for (int j = 0; j < nv; ++j) store16_upto(dn + (size_t)k * HW, 16 * j, len, (float16)(0.0f));
        return;
    }
    int images = 0;
    for (int m = 0; m < N; ++m) images += valid[m] > 0.0f;
    // ℓ = softplus(t), t = ±s/τ, s = z·(p_bg − p_fg): dℓ/dz = a·(p_bg − p_fg) with the saved a, and z·dz = a·s.
    // Through z = e / max(‖e‖, 1e-12): de = (dz − z·(z·dz)) / ‖e‖ above the floor, dz / 1e-12 below.
    float scale = dl * wLAC / (s[5] * (float)images);
    __global const float* state = pixelState + (size_t)n * 2 * HW + lo;
    __global const float* nn = norms + (size_t)n * HW + lo;
    float16 ca[SEG_V16], cz[SEG_V16];
    for (int j = 0; j < nv; ++j) {
        float16 a = scale * load16_upto(state, 16 * j, len), sv = load16_upto(state + HW, 16 * j, len);
        float16 nm = select((float16)(1.0f), load16_upto(nn, 16 * j, len), isgreater(mask16(16 * j, len), (float16)(0.0f)));
        float16 inv = 1.0f / nm;
        ca[j] = a * inv;
        cz[j] = select((float16)(0.0f), ca[j] * sv * inv, isgreater(nm, (float16)(LAC_NORM_FLOOR)));
    }
    __global const float* pf = protos + (size_t)n * 2 * LAC_D;
    for (int k = 0; k < LAC_D; ++k) {
        float d = pf[LAC_D + k] - pf[k];
        __global const float* ek = e + ((size_t)n * LAC_D + k) * HW + lo;
        __global float* dk = dn + (size_t)k * HW;
        for (int j = 0; j < nw; ++j) vstore16(ca[j] * d - vload16(j, ek) * cz[j], j, dk);
        if (nw < nv) store16_upto(dk, 16 * nw, len, ca[nw] * d - load16_upto(ek, 16 * nw, len) * cz[nw]);
    }
#endif
}
