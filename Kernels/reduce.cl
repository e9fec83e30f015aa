// reduce.cl: reductions of a tensor seen as (outer, R, inner), one work item per output.
//   reduce_fwd       KIND 0 sum, 1 mean, 2 max
//   reduce_backward  gathers: each input element reads its group's gradient (max: first arg-max only)
//   sum_per_channel  NCHW → (C), one item per channel, summed in n-major order

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
