// matmul.cl: C (M, N) = op(A) · op(B), row-major.
//   matmul_naive  one work item per output element; TA/TB select the transposed read.
// Used for the Barlow Twins cross-correlation and the projector's linear layers, which are
// small next to the convolutions.

__kernel void matmul_naive(__global const float* A, __global const float* B, __global float* Cm,
                           int M, int N, int K, int ta, int tb) {
    int j = get_global_id(0), i = get_global_id(1);
    if (i >= M || j >= N) return;
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) {
        float a = ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
        float b = tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
        acc = fma(a, b, acc);
    }
    Cm[(size_t)i * N + j] = acc;
}
