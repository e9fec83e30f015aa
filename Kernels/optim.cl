// optim.cl: optimiser updates in place, and the global gradient norm, on the device.
// Variants: none.
//   adam_step      one item per element: torch.optim.AdamW (DECOUPLED=1) or Adam with L2 (DECOUPLED=0);
//                  the bias corrections arrive precomputed from the host (double precision, like torch)
//   sgd_step       one item per element: buf = momentum·buf + (g + wd·p); p −= lr·buf
//   sumsq_partial  one work-group per chunk of SUMSQ_CHUNK elements of one tensor → partials[offset + chunk];
//                  losses.cl's sum_partials adds all partials in order (deterministic)
//   clip_scale     one item per element: x *= min(1, maxNorm / (√sumsq[0] + 1e-6)), the factor read on the device
//   flat_sumsq     fused optimiser: one work-group of RS_WG items per FLAT_CHUNK elements of [start, end) of a
//                  flat buffer, float4 loads (FOR_VEC4; on CPUs each item's contiguous slice, 16-wide: run_sumsq16)
//                  → partials[offset + group]
//   flat_adam      fused optimiser: one work-group per FLAT_CHUNK elements of [start, end) of the flat
//                  parameter, gradient, m and v buffers, float4 loads; every group first adds the clip
//                  partials in a fixed order (so all groups, and reruns, get the same factor)

// SUMSQ_CHUNK: -D from OpenCL/KernelConstants.swift (the host uses it too).
// FLAT_CHUNK: -D from OpenCL/KernelConstants.swift (the host uses it too).

__kernel void adam_step(__global float* p, __global const float* grad, __global float* m, __global float* v, int count,
                        float beta1, float beta2, float eps, float weightDecay, float decay, float stepSize, float bc2Sqrt) {
    int i = get_global_id(0);
    if (i >= count) return;
    float g = grad[i], w = p[i];
#if DECOUPLED
    w *= decay;
#else
    g += weightDecay * w;
#endif
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] = w - stepSize * mi / (sqrt(vi) / bc2Sqrt + eps);
}

__kernel void sgd_step(__global float* p, __global const float* grad, __global float* buf, int count,
                       float lr, float momentum, float weightDecay) {
    int i = get_global_id(0);
    if (i >= count) return;
    float w = p[i];
    float b = momentum * buf[i] + (grad[i] + weightDecay * w);
    buf[i] = b;
    p[i] = w - lr * b;
}

__kernel void sumsq_partial(__global const float* x, int count, __global float* partials, int offset) {
    __local float scratch[RS_WG];
    int g = get_group_id(0);
    int end = min(count, (g + 1) * SUMSQ_CHUNK);
    float acc = 0.0f;
    for (int i = g * SUMSQ_CHUNK + get_local_id(0); i < end; i += RS_WG) acc += x[i] * x[i];
    float total = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) partials[offset + g] = total;
}

__kernel void clip_scale(__global float* x, int count, __global const float* sumsq, float maxNorm) {
    int i = get_global_id(0);
    if (i >= count) return;
    x[i] *= fmin(1.0f, maxNorm / (sqrt(sumsq[0]) + 1e-6f));
}

__kernel void flat_sumsq(__global const float* x, int start, int end, __global float* partials, int offset) {
    __local float scratch[RS_WG];
    int lo = start + get_group_id(0) * FLAT_CHUNK, hi = min(end, lo + FLAT_CHUNK);
#if CONTIGUOUS_ITEMS
    // The item's contiguous slice (FOR_VEC4's), 16-wide with four accumulators (run_sumsq16).
    int per = (hi - lo + RS_WG * 4 - 1) / (RS_WG * 4) * 4;
    int a = min(hi, lo + (int)get_local_id(0) * per), b = min(hi, a + per);
    float total = wg_sum(scratch, run_sumsq16(x + a, b - a, 0.0f));
#else
    float4 acc = (float4)(0.0f);
    FOR_VEC4(i, lo, hi) {
        if (i + 4 <= hi) {
            float4 g = vload4(0, x + i);
            acc += g * g;
        } else {
            for (int j = i; j < hi; ++j) acc.x += x[j] * x[j];
        }
    }
    float total = wg_sum(scratch, (acc.x + acc.y) + (acc.z + acc.w));
#endif
    if (get_local_id(0) == 0) partials[offset + get_group_id(0)] = total;
}

// One Adam(W) update of four lanes (lanes are independent, so the scalar tail uses lane x only).
float4 adam4(float4 w, float4 g, float4* m, float4* v, float beta1, float beta2, float eps, float weightDecay,
             float decay, float stepSize, float bc2Sqrt) {
#if DECOUPLED
    w *= decay;
#else
    g += weightDecay * w;
#endif
    *m = beta1 * *m + (1.0f - beta1) * g;
    *v = beta2 * *v + (1.0f - beta2) * g * g;
    return w - stepSize * *m / (sqrt(*v) / bc2Sqrt + eps);
}

// maxNorm ≤ 0: no clipping (partials unused).
__kernel void flat_adam(__global float* p, __global const float* grad, __global float* m, __global float* v,
                        int start, int end, __global const float* partials, int partialCount, float maxNorm,
                        float beta1, float beta2, float eps, float weightDecay, float decay, float stepSize, float bc2Sqrt) {
    __local float scratch[RS_WG];
    float factor = 1.0f;
    if (maxNorm > 0.0f) {                                   // uniform over the group: the barriers are safe
        float acc = 0.0f;
        for (int i = get_local_id(0); i < partialCount; i += RS_WG) acc += partials[i];
        factor = fmin(1.0f, maxNorm / (sqrt(wg_sum(scratch, acc)) + 1e-6f));
    }
    int lo = start + get_group_id(0) * FLAT_CHUNK, hi = min(end, lo + FLAT_CHUNK);
    FOR_VEC4(i, lo, hi) {
        if (i + 4 <= hi) {
            float4 mi = vload4(0, m + i), vi = vload4(0, v + i);
            float4 w = adam4(vload4(0, p + i), vload4(0, grad + i) * factor, &mi, &vi, beta1, beta2, eps, weightDecay,
                             decay, stepSize, bc2Sqrt);
            vstore4(w, 0, p + i);
            vstore4(mi, 0, m + i);
            vstore4(vi, 0, v + i);
        } else {
            for (int j = i; j < hi; ++j) {
                float4 mi = (float4)(m[j]), vi = (float4)(v[j]);
                float4 w = adam4((float4)(p[j]), (float4)(grad[j] * factor), &mi, &vi, beta1, beta2, eps, weightDecay,
                                 decay, stepSize, bc2Sqrt);
                p[j] = w.x;
                m[j] = mi.x;
                v[j] = vi.x;
            }
        }
    }
}
