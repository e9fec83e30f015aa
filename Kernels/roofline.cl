// roofline.cl: two probes that bound what any kernel can reach on this device (Roofline.swift).
// Variants:
//   roofline_fma     compute roof. VEC (4, 8 or 16) lanes per chain, CHAINS independent
//                    chains per work item, `iters` fused multiply-adds per chain; the host tries
//                    every VEC and keeps the fastest. Independent chains hide the FMA latency;
//                    the result is written so the compiler cannot drop the loop.
//   roofline_triad   memory roof. a[i] = b[i] + s·c[i] over float4 elements of buffers far
//                    larger than the last-level cache: 12 bytes read, 4 written per float.
//   roofline_copy    a[i] = b[i] over float4: 4 bytes read, 4 written per float.
//   roofline_empty   does nothing: one launch of it costs what any launch costs on top of its
//                    work (the launch-overhead probe of `bench train`).

#ifndef VEC
#define VEC 16
#endif
#define CHAINS 8
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VTYPE CAT(float, VEC)

// FLOPs per work item: 2 · VEC · CHAINS · iters. a < 1 keeps every chain bounded (x → b / (1 − a)).
__kernel void roofline_fma(__global float* out, int iters, float a, float b) {
    int gid = get_global_id(0);
    VTYPE va = (VTYPE)(a), vb = (VTYPE)(b);
    VTYPE x0 = (VTYPE)((float)gid * 1e-7f), x1 = x0 + 0.1f, x2 = x0 + 0.2f, x3 = x0 + 0.3f;
    VTYPE x4 = x0 + 0.4f, x5 = x0 + 0.5f, x6 = x0 + 0.6f, x7 = x0 + 0.7f;
    for (int i = 0; i < iters; i++) {
        x0 = fma(x0, va, vb); x1 = fma(x1, va, vb); x2 = fma(x2, va, vb); x3 = fma(x3, va, vb);
        x4 = fma(x4, va, vb); x5 = fma(x5, va, vb); x6 = fma(x6, va, vb); x7 = fma(x7, va, vb);
    }
    VTYPE s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
    float t = 0.0f;
    for (int k = 0; k < VEC; k++) t += ((float*)&s)[k];
    out[gid] = t;
}

__kernel void roofline_triad(__global float4* a, __global const float4* b, __global const float4* c, float s, int n4) {
    int i = get_global_id(0);
    if (i < n4) a[i] = b[i] + s * c[i];
}

__kernel void roofline_copy(__global float4* a, __global const float4* b, int n4) {
    int i = get_global_id(0);
    if (i < n4) a[i] = b[i];
}

__kernel void roofline_empty(__global float* out) {}
