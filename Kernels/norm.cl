// norm.cl: batch normalisation over (N, H, W) per channel of NCHW; (N, C) inputs run with HW = 1.
// Per-channel reductions use one work-group of RS_WG items per channel; item l sums pixels
// l, l + RS_WG, … of each of the channel's N planes (contiguous loads, no division per element)
// in a fixed order, then wg_sum's fixed tree: reruns are bit-identical.
// Variants: none.
//   bn_stats             one work-group per channel: shifted two-pass mean and biased variance →
//                        mean, invStd; updates running mean / var in place (unbiased variance)
//   bn_apply             one item per element (2-D: pixel × plane): y = (x − mean)·invStd·w + b; FROM_VAR=1 (eval) takes
//                        the running variance and inverts it in the kernel
//   bn_backward_reduce   one work-group per channel: dbias = Σdy, dweight = Σdy·x̂
//   bn_backward_dx       one item per element (2-D: pixel × plane): dx = w·invStd/M·(M·dy − dbias − x̂·dweight)

// The plane of channel c in image n.
#define BN_PLANE(p, n, c, C, HW) ((p) + ((size_t)(n) * (C) + (c)) * (HW))

__kernel void bn_stats(__global const float* x, __global float* mean, __global float* invStd,
                       __global float* runningMean, __global float* runningVar,
                       int N, int C, int HW, float momentum, float eps) {
    __local float scratch[RS_WG];
    int c = get_group_id(0), lid = get_local_id(0), M = N * HW;
    // Subtracting the channel's first value keeps the sums small for offset data, and makes a
    // constant channel's mean exact and its variance exactly 0.
    float shift = BN_PLANE(x, 0, c, C, HW)[0];
    float acc = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float* plane = BN_PLANE(x, n, c, C, HW);
        for (int p = lid; p < HW; p += RS_WG) acc += plane[p] - shift;
    }
    float mu = shift + wg_sum(scratch, acc) / (float)M;
    float sq = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float* plane = BN_PLANE(x, n, c, C, HW);
        for (int p = lid; p < HW; p += RS_WG) { float d = plane[p] - mu; sq += d * d; }
    }
    float var = wg_sum(scratch, sq) / (float)M;
    if (lid == 0) {
        mean[c] = mu;
        invStd[c] = 1.0f / sqrt(var + eps);
        // One value per channel has no unbiased variance; the biased one (0) is used instead.
        float unbiased = M > 1 ? var * (float)M / (float)(M - 1) : var;
        runningMean[c] = (1.0f - momentum) * runningMean[c] + momentum * mu;
        runningVar[c] = (1.0f - momentum) * runningVar[c] + momentum * unbiased;
    }
}

__kernel void bn_apply(__global const float* x, __global float* y, __global const float* mean,
                       __global const float* scale, __global const float* w, __global const float* b,
                       int C, int HW, int count, float eps) {
    // 2-D launch: dimension 0 the pixel, dimension 1 the (image, channel) plane.
    int p = get_global_id(0), plane = get_global_id(1);
    if (p >= HW) return;
    int c = plane % C;
    size_t gid = (size_t)plane * HW + p;
#if FROM_VAR
    float inv = 1.0f / sqrt(scale[c] + eps);
#else
    float inv = scale[c];
#endif
    y[gid] = (x[gid] - mean[c]) * inv * w[c] + b[c];
}

__kernel void bn_backward_reduce(__global const float* dy, __global const float* x, __global const float* mean,
                                 __global const float* invStd, __global float* dweight, __global float* dbias,
                                 int N, int C, int HW) {
    __local float scratch[RS_WG];
    int c = get_group_id(0), lid = get_local_id(0);
    float mu = mean[c], inv = invStd[c];
    float sd = 0.0f, sdx = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float* gp = BN_PLANE(dy, n, c, C, HW);
        __global const float* xp = BN_PLANE(x, n, c, C, HW);
        for (int p = lid; p < HW; p += RS_WG) {
            float g = gp[p];
            sd += g;
            sdx += g * (xp[p] - mu) * inv;
        }
    }
    float db = wg_sum(scratch, sd);
    float dw = wg_sum(scratch, sdx);
    if (lid == 0) { dbias[c] = db; dweight[c] = dw; }
}

__kernel void bn_backward_dx(__global const float* dy, __global const float* x, __global const float* mean,
                             __global const float* invStd, __global const float* w, __global const float* dweight,
                             __global const float* dbias, __global float* dx, int C, int HW, int M, int count) {
    int p = get_global_id(0), plane = get_global_id(1);
    if (p >= HW) return;
    int c = plane % C;
    size_t gid = (size_t)plane * HW + p;
    float inv = invStd[c];
    float xhat = (x[gid] - mean[c]) * inv;
    dx[gid] = w[c] * inv / (float)M * ((float)M * dy[gid] - dbias[c] - xhat * dweight[c]);
}
