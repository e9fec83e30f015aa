// optim.cl: optimiser updates in place, and the global gradient norm, on the device.
// Variants: none.
//   adam_step      one item per element: torch.optim.AdamW (DECOUPLED=1) or Adam with L2 (DECOUPLED=0);
//                  the bias corrections arrive precomputed from the host (double precision, like torch)
//   sgd_step       one item per element: buf = momentum·buf + (g + wd·p); p −= lr·buf
//   sumsq_partial  one work-group per chunk of SUMSQ_CHUNK elements of one tensor → partials[offset + chunk];
//                  losses.cl's sum_partials adds all partials in order (deterministic)
//   clip_scale     one item per element: x *= min(1, maxNorm / (√sumsq[0] + 1e-6)), the factor read on the device

#define SUMSQ_CHUNK 4096

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
