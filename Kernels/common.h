// common.h: prepended to every kernel file. OpenCL C 1.2.
// Sizes travel as int; element counts stay below 2^31 by construction (checked on the host).
#define IDX4(n, c, h, w, C, H, W) ((((n) * (C) + (c)) * (H) + (h)) * (W) + (w))

// Deterministic work-group sum for kernels launched with local size RS_WG (a power of two):
// every item passes its partial, a fixed-shape tree adds them, every item gets the total.
// The order of additions depends only on RS_WG, so reruns (and devices) agree bit for bit.
#define RS_WG 64
float wg_sum(__local float* scratch, float v) {
    int lid = get_local_id(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RS_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}
