// elementwise.cl: one work item per element (or per output element for concat/slice).
// Variants: none; these are memory-bound and PoCL vectorises the 1-D loops itself.
//   ew_binary      OP 0 add, 1 sub, 2 mul
//   ew_scale, ew_axpy (in place), ew_relu, ew_relu_backward, ew_sigmoid, ew_sigmoid_backward, ew_fill
//   copy_channels  copies a channel block between NCHW tensors (concat and slice)
//   gate_channel / gate_channel_backward_x / gate_channel_backward_g
//   gate_pixel   / gate_pixel_backward_x   / gate_pixel_backward_g

__kernel void ew_binary(__global const float* a, __global const float* b, __global float* y, int n, int op) {
    int i = get_global_id(0);
    if (i >= n) return;
    float x = a[i], z = b[i];
    y[i] = op == 0 ? x + z : (op == 1 ? x - z : x * z);
}

__kernel void ew_scale(__global const float* a, __global float* y, int n, float s) {
    int i = get_global_id(0);
    if (i < n) y[i] = a[i] * s;
}

__kernel void ew_axpy(__global float* y, __global const float* x, int n, float alpha) {
    int i = get_global_id(0);
    if (i < n) y[i] += alpha * x[i];
}

__kernel void ew_relu(__global const float* x, __global float* y, int n) {
    int i = get_global_id(0);
    if (i < n) y[i] = fmax(x[i], 0.0f);
}

__kernel void ew_relu_backward(__global const float* dy, __global const float* out, __global float* dx, int n) {
    int i = get_global_id(0);
    if (i < n) dx[i] = out[i] > 0.0f ? dy[i] : 0.0f;
}

__kernel void ew_sigmoid(__global const float* x, __global float* y, int n) {
    int i = get_global_id(0);
    if (i < n) y[i] = 1.0f / (1.0f + exp(-x[i]));
}

__kernel void ew_sigmoid_backward(__global const float* dy, __global const float* s, __global float* dx, int n) {
    int i = get_global_id(0);
    if (i < n) { float v = s[i]; dx[i] = dy[i] * v * (1.0f - v); }
}

__kernel void ew_fill(__global float* y, int n, float v) {
    int i = get_global_id(0);
    if (i < n) y[i] = v;
}

// Copies channels [srcStart, srcStart+C) of src (Csrc channels) to channels [dstStart, dstStart+C)
// of dst (Cdst channels), for all N. HW = H*W. One item per copied element.
__kernel void copy_channels(__global const float* src, __global float* dst, int N, int C, int HW,
                            int Csrc, int srcStart, int Cdst, int dstStart) {
    // 2-D launch: dimension 0 the pixel, dimension 1 the (image, channel) plane.
    int p = get_global_id(0), plane = get_global_id(1);
    if (p >= HW) return;
    int c = plane % C, n = plane / C;
    dst[(n * Cdst + dstStart + c) * HW + p] = src[(n * Csrc + srcStart + c) * HW + p];
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
