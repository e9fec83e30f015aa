// pool.cl: max pool 2×2, stride 2, odd sizes floored (PyTorch).
//   max_pool2x2_fwd  one work item per output element.
//   max_pool2x2_bwd  one work item per INPUT element: it recomputes its window's first maximum
//                    (row-major, ties to the earlier element) and takes dy if it is that element,
//                    so every dx element is written once, without atomics, deterministically.
//   max_pool2x2_fwd_cpu, max_pool2x2_bwd_cpu   the CPU layout (not CLBackend.gpuGlue): one item per
//                    output row (backward: per pair of input rows), 8 windows at a time; identical results.

// Flat index (within the plane) of the first maximum of window (oy, ox).
inline int first_max(__global const float* plane, int W, int oy, int ox) {
    int best = (2 * oy) * W + 2 * ox;
    float bv = plane[best];
    int c1 = best + 1, c2 = best + W, c3 = best + W + 1;
    if (plane[c1] > bv) { best = c1; bv = plane[c1]; }
    if (plane[c2] > bv) { best = c2; bv = plane[c2]; }
    if (plane[c3] > bv) { best = c3; }
    return best;
}

// x (planes, H, W) → y (planes, H/2, W/2). Global: (OW, OH, planes).
__kernel void max_pool2x2_fwd(__global const float* x, __global float* y, int H, int W, int planes) {
    int ox = get_global_id(0), oy = get_global_id(1), pl = get_global_id(2);
    int OH = H / 2, OW = W / 2;
    if (ox >= OW || oy >= OH || pl >= planes) return;
    __global const float* plane = x + (size_t)pl * H * W;
    y[((size_t)pl * OH + oy) * OW + ox] = plane[first_max(plane, W, oy, ox)];
}

// dx (planes, H, W) from dy (planes, H/2, W/2), plus prior (like dx) with accumulate = 1 (a gradient
// that already reached x). Global: (W, H, planes).
__kernel void max_pool2x2_bwd(__global const float* dy, __global const float* x, __global const float* prior,
                              __global float* dx, int H, int W, int planes, int accumulate) {
    int ix = get_global_id(0), iy = get_global_id(1), pl = get_global_id(2);
    if (ix >= W || iy >= H || pl >= planes) return;
    int OH = H / 2, OW = W / 2;
    int oy = iy / 2, ox = ix / 2;
    float v = 0.0f;
    if (oy < OH && ox < OW) {
        __global const float* plane = x + (size_t)pl * H * W;
        if (first_max(plane, W, oy, ox) == iy * W + ix) v = dy[((size_t)pl * OH + oy) * OW + ox];
    }
    size_t o = ((size_t)pl * H + iy) * W + ix;
    dx[o] = accumulate ? v + prior[o] : v;
}

// MARK: CPU layout (not CLBackend.gpuGlue): one item per output row, 8 windows at a time (the two
// input rows read 16 values at a time, split into even and odd columns); the same comparisons in the
// same order as first_max, so both layouts give identical results. The host groups items so that a
// launch has enough work-groups for every core (CLBackend.runItems).

// Window values a (top left), b (top right), c (bottom left), d (bottom right) of 8 windows: the first
// maximum's position k (0..3, row-major) and value.
inline int8 first_max8(float8 a, float8 b, float8 c, float8 d, float8* v) {
    float8 bv = a;
    int8 k = 0, t;
    t = b > bv; k = select(k, (int8)(1), t); bv = select(bv, b, t);
    t = c > bv; k = select(k, (int8)(2), t); bv = select(bv, c, t);
    t = d > bv; k = select(k, (int8)(3), t); bv = select(bv, d, t);
    *v = bv;
    return k;
}

// y row oy of plane pl.   2-D: (output row, plane)
__kernel void max_pool2x2_fwd_cpu(__global const float* x, __global float* y, int H, int W, int planes) {
    int oy = get_global_id(0), pl = get_global_id(1);
    int OH = H / 2, OW = W / 2;
    if (oy >= OH || pl >= planes) return;
    __global const float* plane = x + (size_t)pl * H * W;
    __global const float* r0 = plane + (size_t)(2 * oy) * W;
    __global const float* r1 = r0 + W;
    __global float* out = y + ((size_t)pl * OH + oy) * OW;
    int ox = 0;
    for (; ox + 8 <= OW; ox += 8) {
        float16 t = vload16(0, r0 + 2 * ox), u = vload16(0, r1 + 2 * ox);
        float8 v;
        first_max8(t.even, t.odd, u.even, u.odd, &v);
        vstore8(v, 0, out + ox);
    }
    for (; ox < OW; ox++) out[ox] = plane[first_max(plane, W, oy, ox)];
}

// dx rows 2·oy and 2·oy + 1 of plane pl (item oy = OH of an odd H: the last row, which no window
// covers). With accumulate = 1, prior (like dx) is added.   2-D: (⌈H / 2⌉, plane)
__kernel void max_pool2x2_bwd_cpu(__global const float* dy, __global const float* x, __global const float* prior,
                                  __global float* dx, int H, int W, int planes, int accumulate) {
    int oy = get_global_id(0), pl = get_global_id(1);
    int OH = H / 2, OW = W / 2;
    if (2 * oy >= H || pl >= planes) return;
    size_t base = (size_t)pl * H * W;
    __global const float* plane = x + base;
    for (int ry = 2 * oy; ry < min(2 * oy + 2, H); ry++) {
        __global float* q = dx + base + (size_t)ry * W;
        __global const float* pr = prior + base + (size_t)ry * W;
        int ix = 0;
        if (oy < OH) {
            __global const float* r0 = plane + (size_t)(2 * oy) * W;
            __global const float* g = dy + ((size_t)pl * OH + oy) * OW;
            int row = ry - 2 * oy;                 // 0: top row of the windows, 1: bottom
            for (; ix + 16 <= 2 * OW; ix += 16) {
                float16 t = vload16(0, r0 + ix), u = vload16(0, r0 + W + ix);
                float8 v, gv = vload8(0, g + ix / 2);
                int8 k = first_max8(t.even, t.odd, u.even, u.odd, &v);
                float8 e = select((float8)(0.0f), gv, k == 2 * row), o = select((float8)(0.0f), gv, k == 2 * row + 1);
                float16 out = shuffle2(e, o, (uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15));
                if (accumulate) out += vload16(0, pr + ix);
                vstore16(out, 0, q + ix);
            }
            for (; ix < 2 * OW; ix++) {
                float v = first_max(plane, W, oy, ix / 2) == ry * W + ix ? g[ix / 2] : 0.0f;
                q[ix] = accumulate ? v + pr[ix] : v;
            }
        }
        for (; ix < W; ix++) q[ix] = accumulate ? pr[ix] : 0.0f;   // no window covers these
    }
}
