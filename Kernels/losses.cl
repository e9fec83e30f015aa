// losses.cl: the training losses, each reduced to one value on the device, and their gradients.
// Every large sum is split into fixed pieces (chunks, images or rows), each piece reduced by one
// work-group of RS_WG items in a fixed order (wg_sum), and the pieces added in order by one item
// (sum_partials or a loss's *_final kernel): reruns are bit-identical. Backward kernels read the
// upstream gradient dLoss[0] on the device. Variants: none.
//   sum_partials        one item: out[0] = (Σ partials, in order) / divisor  (also used by optim's sum_of_squares)
//   bce_partial         one work-group per chunk of BCE_CHUNK elements → partial sums
//   bce_backward        one item per element: (σ(x) − y)·dLoss/count
//   dice_sums           one work-group per image → (N, 3): Σp·y, Σp, Σy
//   dice_final          one item: batch mean of (2Σpy + 1)/(Σp + Σy + 1)
//   dice_backward       one item per element
//   barlow_rows         one work-group per row i → (1 − c_ii)² + λ Σ_{j≠i} c_ij²
//   barlow_backward     one item per element
//   lac_normalise       one item per pixel: z = e / max(‖e‖, 1e-12) and that norm
//   lac_class_sums      one work-group per (image, dimension): Σz over lesion / background pixels, and the counts
//   lac_prototypes      one item per image: normalised class means, and whether the image has both classes
//   lac_pixel           one item per pixel: (ω·ℓ, ω)
//   lac_image_sums      one work-group per (image, term): Σ over the image's pixels
//   lac_final           one item: mean of Σωℓ/Σω over the images with both classes (0 if none)
//   lac_backward        one item per pixel: d loss / d e with the prototypes held constant

#define BCE_CHUNK 4096
#define LAC_NORM_FLOOR 1e-12f

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

__kernel void lac_normalise(__global const float* e, __global float* z, __global float* norms, int N, int D, int HW) {
    int gid = get_global_id(0);
    if (gid >= N * HW) return;
    int n = gid / HW, p = gid % HW;
    size_t base = (size_t)n * D * HW + p;
    float sq = 0.0f;
    for (int k = 0; k < D; ++k) { float v = e[base + (size_t)k * HW]; sq += v * v; }
    float norm = fmax(sqrt(sq), LAC_NORM_FLOOR);
    for (int k = 0; k < D; ++k) z[base + (size_t)k * HW] = e[base + (size_t)k * HW] / norm;
    norms[gid] = norm;
}

// sums (N, 2, D): class 0 lesion, 1 background; counts (N, 2), written by the k = 0 groups.
__kernel void lac_class_sums(__global const float* z, __global const float* target, __global float* sums,
                             __global float* counts, int D, int HW) {
    __local float scratch[RS_WG];
    int g = get_group_id(0), n = g / D, k = g % D;
    __global const float* zz = z + ((size_t)n * D + k) * HW;
    __global const float* t = target + (size_t)n * HW;
    float fg = 0.0f, bg = 0.0f, nf = 0.0f;
    for (int p = get_local_id(0); p < HW; p += RS_WG) {
        if (t[p] > 0.5f) { fg += zz[p]; nf += 1.0f; } else { bg += zz[p]; }
    }
    fg = wg_sum(scratch, fg);
    bg = wg_sum(scratch, bg);
    nf = wg_sum(scratch, nf);
    if (get_local_id(0) == 0) {
        sums[((size_t)n * 2) * D + k] = fg;
        sums[((size_t)n * 2 + 1) * D + k] = bg;
        if (k == 0) { counts[n * 2] = nf; counts[n * 2 + 1] = (float)HW - nf; }
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

// The pixel's weight ω and margin t = (z·p_other − z·p_own)/τ, so that ℓ = softplus(t).
// sigmoid(logit) > 0.5 is tested as logit > 0 (the same set, without rounding).
void lac_margin(__global const float* z, __global const float* logits, __global const float* target,
                __global const float* protos, int n, int p, int D, int HW, float tau, float gamma,
                float* weight, float* margin, int* lesion) {
    __global const float* pf = protos + (size_t)n * 2 * D;
    __global const float* pb = pf + D;
    size_t base = (size_t)n * D * HW + p;
    float sf = 0.0f, sb = 0.0f;
    for (int k = 0; k < D; ++k) { float v = z[base + (size_t)k * HW]; sf += v * pf[k]; sb += v * pb[k]; }
    *lesion = target[(size_t)n * HW + p] > 0.5f;
    *weight = 1.0f + (!*lesion && logits[(size_t)n * HW + p] > 0.0f ? gamma : 0.0f);
    *margin = (*lesion ? sb - sf : sf - sb) / tau;
}

// terms (N, 2, HW): ω·ℓ, then ω; 0 for images without both classes.
__kernel void lac_pixel(__global const float* z, __global const float* logits, __global const float* target,
                        __global const float* protos, __global const float* valid, __global float* terms,
                        int N, int D, int HW, float tau, float gamma) {
    int gid = get_global_id(0);
    if (gid >= N * HW) return;
    int n = gid / HW, p = gid % HW;
    float w = 0.0f, wl = 0.0f;
    if (valid[n] > 0.0f) {
        float t;
        int lesion;
        lac_margin(z, logits, target, protos, n, p, D, HW, tau, gamma, &w, &t, &lesion);
        wl = w * (fmax(t, 0.0f) + log1p(exp(-fabs(t))));
    }
    terms[((size_t)n * 2) * HW + p] = wl;
    terms[((size_t)n * 2 + 1) * HW + p] = w;
}

// imageSums (N, 2): Σωℓ and Σω per image; one work-group per (image, term).
__kernel void lac_image_sums(__global const float* terms, __global float* imageSums, int HW) {
    __local float scratch[RS_WG];
    int g = get_group_id(0);
    __global const float* t = terms + (size_t)g * HW;
    float acc = 0.0f;
    for (int p = get_local_id(0); p < HW; p += RS_WG) acc += t[p];
    float total = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) imageSums[g] = total;
}

__kernel void lac_final(__global const float* imageSums, __global const float* valid, int N, __global float* out) {
    if (get_global_id(0) != 0) return;
    float acc = 0.0f;
    int images = 0;
    for (int n = 0; n < N; ++n) {
        if (valid[n] > 0.0f) { acc += imageSums[n * 2] / imageSums[n * 2 + 1]; images += 1; }
    }
    out[0] = images > 0 ? acc / (float)images : 0.0f;
}

__kernel void lac_backward(__global const float* dLoss, __global const float* z, __global const float* norms,
                           __global const float* logits, __global const float* target, __global const float* protos,
                           __global const float* valid, __global const float* imageSums, __global float* de,
                           int N, int D, int HW, float tau, float gamma) {
    int gid = get_global_id(0);
    if (gid >= N * HW) return;
    int n = gid / HW, p = gid % HW;
    size_t base = (size_t)n * D * HW + p;
    if (!(valid[n] > 0.0f)) {
        for (int k = 0; k < D; ++k) de[base + (size_t)k * HW] = 0.0f;
        return;
    }
    int images = 0;
    for (int b = 0; b < N; ++b) images += valid[b] > 0.0f;
    float w, t;
    int lesion;
    lac_margin(z, logits, target, protos, n, p, D, HW, tau, gamma, &w, &t, &lesion);
    // dℓ/dt = σ(t) and t = ±(z·p_bg − z·p_fg)/τ, so dℓ/dz = q·(p_bg − p_fg) with q = ±σ(t)/τ.
    float sig = 1.0f / (1.0f + exp(-t));
    float q = dLoss[0] * w / imageSums[n * 2 + 1] / (float)images * (lesion ? sig : -sig) / tau;
    __global const float* pf = protos + (size_t)n * 2 * D;
    __global const float* pb = pf + D;
    float zdz = 0.0f;
    for (int k = 0; k < D; ++k) zdz += z[base + (size_t)k * HW] * q * (pb[k] - pf[k]);
    // Through z = e / max(‖e‖, 1e-12): de = (dz − z·(z·dz)) / ‖e‖ above the floor, dz / 1e-12 below.
    float norm = norms[gid];
    float proj = norm > LAC_NORM_FLOOR ? zdz : 0.0f;
    for (int k = 0; k < D; ++k) {
        size_t i = base + (size_t)k * HW;
        de[i] = (q * (pb[k] - pf[k]) - z[i] * proj) / norm;
    }
}
