// pool.cl: max pool 2×2, stride 2, odd sizes floored (PyTorch).
//   max_pool2x2_fwd  one work item per output element.
//   max_pool2x2_bwd  one work item per INPUT element: it recomputes its window's first maximum
//                    (row-major, ties to the earlier element) and takes dy if it is that element,
//                    so every dx element is written once, without atomics, deterministically.
// One variant serves every device: both are memory-bound single passes.

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
