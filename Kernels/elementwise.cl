// elementwise.cl: flat maps and channel-block copies.
// PoCL's CPU device does not vectorise across work items, so each item walks EW_SPAN
// contiguous values 8 at a time (vload8 needs only float alignment) and then a scalar tail;
// the host launches ⌈n / EW_SPAN⌉ items (copy_channels: ⌈HW / EW_SPAN⌉ × planes).
// Variants: none.
//   ew_binary      OP 0 add, 1 sub, 2 mul
//   ew_scale, ew_axpy (in place), ew_relu, ew_relu_backward, ew_sigmoid, ew_sigmoid_backward, ew_fill
//   copy_channels  copies a channel block between NCHW tensors (concat and slice)
//   copy_channels_broadcast  a concat's last (up to four) parts, and a pooled (N, CB) part broadcast
//                            over H·W as the channels after them, in one launch (the context block's
//                            four branches and its pool branch)
//   copy_channels_sum        its backward: the parts' slices, and the pooled part's Σ over H·W (one
//                            item per plane) in broadcast_spatial_backward's order (CPU devices; the
//                            GPU layout runs it with CB = 0 and broadcast_spatial_backward's work-groups)
//   gate_channel / gate_channel_backward_x / gate_channel_backward_g   (one item per element / per (n, c))
//   gate_pixel   / gate_pixel_backward_x   / gate_pixel_backward_g     (one item per element / per (n, p))

// EW_SPAN: -D from OpenCL/KernelConstants.swift (the host uses it too).

// Runs VEC (on 8 values at i) and then SCALAR (at i) over this item's span of [0, n).
#define EW_FOR(n, VEC, SCALAR) {                                             \
        int lo_ = get_global_id(0) * EW_SPAN, hi_ = min(lo_ + EW_SPAN, (n)); \
        int i = lo_;                                                         \
        for (; i + 8 <= hi_; i += 8) { VEC; }                                \
        for (; i < hi_; i++) { SCALAR; }                                     \
    }

__kernel void ew_binary(__global const float* a, __global const float* b, __global float* y, int n, int op) {
    if (op == 0) EW_FOR(n, vstore8(vload8(0, a + i) + vload8(0, b + i), 0, y + i), y[i] = a[i] + b[i])
    else if (op == 1) EW_FOR(n, vstore8(vload8(0, a + i) - vload8(0, b + i), 0, y + i), y[i] = a[i] - b[i])
    else EW_FOR(n, vstore8(vload8(0, a + i) * vload8(0, b + i), 0, y + i), y[i] = a[i] * b[i])
}

__kernel void ew_scale(__global const float* a, __global float* y, int n, float s) {
    EW_FOR(n, vstore8(vload8(0, a + i) * s, 0, y + i), y[i] = a[i] * s)
}

__kernel void ew_axpy(__global float* y, __global const float* x, int n, float alpha) {
    EW_FOR(n, vstore8(vload8(0, y + i) + alpha * vload8(0, x + i), 0, y + i), y[i] += alpha * x[i])
}

__kernel void ew_relu(__global const float* x, __global float* y, int n) {
    EW_FOR(n, vstore8(fmax(vload8(0, x + i), 0.0f), 0, y + i), y[i] = fmax(x[i], 0.0f))
}

__kernel void ew_relu_backward(__global const float* dy, __global const float* out, __global float* dx, int n) {
    EW_FOR(n, vstore8(select((float8)(0.0f), vload8(0, dy + i), vload8(0, out + i) > 0.0f), 0, dx + i),
           dx[i] = out[i] > 0.0f ? dy[i] : 0.0f)
}

__kernel void ew_sigmoid(__global const float* x, __global float* y, int n) {
    EW_FOR(n, vstore8(1.0f / (1.0f + exp(-vload8(0, x + i))), 0, y + i), y[i] = 1.0f / (1.0f + exp(-x[i])))
}

__kernel void ew_sigmoid_backward(__global const float* dy, __global const float* s, __global float* dx, int n) {
    EW_FOR(n, float8 v = vload8(0, s + i); vstore8(vload8(0, dy + i) * v * (1.0f - v), 0, dx + i),
           float v = s[i]; dx[i] = dy[i] * v * (1.0f - v))
}

__kernel void ew_fill(__global float* y, int n, float v) {
    EW_FOR(n, vstore8((float8)(v), 0, y + i), y[i] = v)
}

// Copies channels [srcStart, srcStart+C) of src (Csrc channels) to channels [dstStart, dstStart+C)
// of dst (Cdst channels), for all N. HW = H*W. 2-D: (span of a plane, copied plane).
__kernel void copy_channels(__global const float* src, __global float* dst, int N, int C, int HW,
                            int Csrc, int srcStart, int Cdst, int dstStart) {
    int plane = get_global_id(1);
    int c = plane % C, n = plane / C;
    __global const float* s = src + ((size_t)n * Csrc + srcStart + c) * HW;
    __global float* d = dst + ((size_t)n * Cdst + dstStart + c) * HW;
    EW_FOR(HW, vstore8(vload8(0, s + i), 0, d + i), d[i] = s[i])
}

// Which of up to four parts of c0, c1, c2, c3 channels (an absent part has 0) holds channel
// *k < c0 + c1 + c2 + c3 of their concat; *k becomes the channel within that part.
inline int part_of(int c0, int c1, int c2, int c3, int* k) {
    if (*k < c0) return 0;
    *k -= c0;
    if (*k < c1) return 1;
    *k -= c1;
    if (*k < c2) return 2;
    *k -= c2;
    return 3;
}

// The offset of plane (n, k) of part q (NCHW, HW values per plane) and of the part's pointer.
#define PART_PLANE(q, p0, p1, p2, p3, c0, c1, c2, c3, n, k, HW)                                   \
    ((q) == 0 ? (p0) + ((size_t)(n) * (c0) + (k)) * (HW) : (q) == 1 ? (p1) + ((size_t)(n) * (c1) + (k)) * (HW) \
     : (q) == 2 ? (p2) + ((size_t)(n) * (c2) + (k)) * (HW) : (p3) + ((size_t)(n) * (c3) + (k)) * (HW))

// A concat's last (up to four) parts s0..s3 (c0..c3 channels, all of each) to channels
// [dstStart, dstStart + C) of dst (Cdst channels), C = c0 + c1 + c2 + c3, then p (N, CB) broadcast
// over HW (relu(p) with relu = 1) into channels [dstStart + C, dstStart + C + CB).
// 2-D: (span of a plane, plane of the C + CB).
__kernel void copy_channels_broadcast(__global const float* s0, __global const float* s1, __global const float* s2,
                                      __global const float* s3, int c0, int c1, int c2, int c3, __global float* dst,
                                      int N, int HW, int Cdst, int dstStart, __global const float* p, int CB, int relu) {
    int C = c0 + c1 + c2 + c3;
    int plane = get_global_id(1);
    int c = plane % (C + CB), n = plane / (C + CB);
    __global float* d = dst + ((size_t)n * Cdst + dstStart + c) * HW;
    if (c < C) {
        int k = c, q = part_of(c0, c1, c2, c3, &k);
        __global const float* s = PART_PLANE(q, s0, s1, s2, s3, c0, c1, c2, c3, n, k, HW);
        EW_FOR(HW, vstore8(vload8(0, s + i), 0, d + i), d[i] = s[i])
    } else {
        float v = p[n * CB + c - C];
        if (relu) v = fmax(v, 0.0f);
        float8 v8 = (float8)(v);
        EW_FOR(HW, vstore8(v8, 0, d + i), d[i] = v)
    }
}

// Its backward: channels [srcStart, srcStart + C) of src (Csrc channels) to the parts' gradients
// d0..d3 (c0..c3 channels), and dp[n, k] = Σ over HW of src's channel srcStart + C + k for k < CB
// (0 where relu = 1 and the forward's p, xr, is not > 0). 2-D: (span of a plane, plane of the
// C + CB); a sum is the first span's item's. CB = 0: the copies only (the GPU layout's sums are
// broadcast_spatial_backward's work-groups).
__kernel void copy_channels_sum(__global const float* src, int N, int HW, int Csrc, int srcStart,
                                __global float* d0, __global float* d1, __global float* d2, __global float* d3,
                                int c0, int c1, int c2, int c3, __global float* dp, int CB, __global const float* xr, int relu) {
    int C = c0 + c1 + c2 + c3;
    int plane = get_global_id(1);
    int c = plane % (C + CB), n = plane / (C + CB);
    __global const float* s = src + ((size_t)n * Csrc + srcStart + c) * HW;
    if (c < C) {
        int k = c, q = part_of(c0, c1, c2, c3, &k);
        __global float* d = PART_PLANE(q, d0, d1, d2, d3, c0, c1, c2, c3, n, k, HW);
        EW_FOR(HW, vstore8(vload8(0, s + i), 0, d + i), d[i] = s[i])
    } else if (get_global_id(0) == 0) {
        int k = n * CB + c - C;
        dp[k] = relu && !(xr[k] > 0.0f) ? 0.0f : strided_plane_sum(s, HW);
    }
}

__kernel void gate_channel(__global const float* x, __global const float* g, __global float* y, int NC, int HW) {
    int i = get_global_id(0);
    if (i < NC * HW) y[i] = x[i] * g[i / HW];
}

__kernel void gate_channel_backward_x(__global const float* dy, __global const float* g, __global float* dx, int NC, int HW) {
    int i = get_global_id(0);
    if (i < NC * HW) dx[i] = dy[i] * g[i / HW];
}

// One item per (n, c): dg = sum over HW of dy * x.
__kernel void gate_channel_backward_g(__global const float* dy, __global const float* x, __global float* dg, int NC, int HW) {
    int i = get_global_id(0);
    if (i >= NC) return;
    float acc = 0.0f;
    for (int p = 0; p < HW; ++p) acc += dy[i * HW + p] * x[i * HW + p];
    dg[i] = acc;
}

__kernel void gate_pixel(__global const float* x, __global const float* g, __global float* y, int N, int C, int HW) {
    int i = get_global_id(0);
    if (i >= N * C * HW) return;
    int p = i % HW, n = i / (C * HW);
    y[i] = x[i] * g[n * HW + p];
}

__kernel void gate_pixel_backward_x(__global const float* dy, __global const float* g, __global float* dx, int N, int C, int HW) {
    int i = get_global_id(0);
    if (i >= N * C * HW) return;
    int p = i % HW, n = i / (C * HW);
    dx[i] = dy[i] * g[n * HW + p];
}

// One item per (n, p): dg = sum over C of dy * x.
__kernel void gate_pixel_backward_g(__global const float* dy, __global const float* x, __global float* dg, int N, int C, int HW) {
    int i = get_global_id(0);
    if (i >= N * HW) return;
    int p = i % HW, n = i / HW;
    float acc = 0.0f;
    for (int c = 0; c < C; ++c) acc += dy[(n * C + c) * HW + p] * x[(n * C + c) * HW + p];
    dg[i] = acc;
}
