// conv2d.cl: 2-D convolution (any kernel, stride, zero padding, dilation) as implicit GEMM,
// forward, backward-data and backward-weight; the kernel-2 stride-2 transposed conv reuses
// these (its forward is conv backward-data, its backward-data is conv forward).
//
// Variants:
//   conv2d_pack_weights       OIHW weights → [tap][A][BP] with B padded to BP (a multiple of the
//                             channel tile) with zeros, so the channel vector loads need no bounds checks.
//   conv2d_pack_rows          dy (N, M, OH, OW) → [N·OH·OW][MP], channels last and zero padded
//                             (conv2d_pack_rows16 on CPU devices: 16 × 16 blocks).
//   conv2d_igemm_reg          CPU devices (prefersLocalMemory false; PoCL maps local memory to
//                             global memory): each work item owns a TM-channel × TN-pixel register
//                             tile held as TN vectors of TM floats; per source channel it loads one
//                             weight vector and broadcasts TN source values. No local memory, no barriers.
//                             BWD_DATA=0: forward (M = Cout, source x, K = Cin·KH·KW).
//                             BWD_DATA=1: backward-data as a gather (M = Cin, source dy,
//                             K = Cout·KH·KW, only taps with (i + pad − k·d) divisible by the stride).
//   conv2d_igemm_lmem         GPU devices (prefersLocalMemory true): the same GEMM with
//                             TSM × TSN output tiles per work group, TSK-deep slices of the packed
//                             weights and of the gathered source staged in local memory with
//                             coalesced loads; each work item owns WPTM × WPTN outputs.
//   conv2d_rows_reg           CPU devices, ≥ 16 output channels: forward at any stride; backward-data of
//                             a stride-1 "same" convolution, which is the forward conv with the flipped,
//                             transposed kernel): each work item owns RN consecutive output pixels of one row ×
//                             MV·TM output channels (MV vectors of TM floats). Weights are packed
//                             channel-major ([c][tap][MP]) and the loop runs ky (only rows inside
//                             the image), then c, then kx unrolled, so each source value is a
//                             broadcast at a compile-time displacement from one row pointer, reused
//                             for all KW taps and MV vectors. Rows whose segment reads outside the
//                             image (left/right edge, partial last segment) take a masked copy of
//                             the loop. Summation order per output: ky, c, kx (differs from
//                             conv2d_igemm_reg's tap-major order only by rounding).
//   conv2d_rows_up            CPU devices: the 2×2 stride-2 transposed conv's forward (a 2×2 stride-2
//                             conv's backward-data); the conv2d_rows_reg tile, each source value feeding
//                             two neighbouring output pixels (one tap each).
//   conv2d_rows_px            CPU devices, stride 1, fewer than 16 output channels (the 7×7
//                             spatial-attention conv, the 1-channel head, their backward-data): one
//                             vector of PV output pixels of a row × all M channels per work item,
//                             weights read unpacked.
//   conv2d_bwd_weight_reg     backward-weight, split over the N·OH·OW reduction: split s writes
//                             partial[s][tap][ci][co]; TM output channels (vector) × TN input channels.
//   conv2d_bwd_weight_px      backward-weight for < 16 output channels, stride 1, on CPU devices: dy
//                             read as given (no conv2d_pack_rows), pixel-vector accumulators per
//                             (input channel, output channel, tap), summed over their lanes at the end.
//   conv2d_bwd_weight_rows    backward-weight for ≥ 16 output channels on CPU devices: like
//                             conv2d_bwd_weight_reg, but a work item owns one kernel row ky, all KW
//                             taps of it, TN input channels and MV·TM output channels, and walks
//                             whole output rows (split s: rows q = n·OH + oy) RB pixels at a time, so
//                             each dyT vector serves TN·KW FMAs and each x value MV (masked copy of the
//                             block at the image's left and right edges).
//   conv2d_bwd_weight_reduce  Σ over the splits in fixed order → dw (Cout, Cin, KH, KW). With the
//                             fixed split count of a configuration, results are run-to-run identical.
//   conv2d_bwd_weight_lmem    backward-weight on GPU devices (prefersLocalMemory; own section at the
//                             end of this file): the GEMM dw[co][j] = Σ_p dyT[p][co]·X[p][j] with
//                             j = ci·taps + tap (OIHW order) and X the gathered input, BW_TSM × BW_TSN
//                             tiles per work-group, BW_TSK pixels of dyT (coalesced over channels) and
//                             of X (coalesced over pixels) staged in local memory per step, WPT 4 × 4
//                             outputs per item; split s of the N·OH·OW pixels writes partial[s][co][j],
//                             conv2d_bwd_weight_lmem_reduce adds the splits in fixed order.
//
// Geometry macros (compile-time, so index arithmetic folds): KH KW SH SW PH PW DH DW.
// Tiles: TM (4, 8 or 16: the vector width), TN; TSM TSN TSK WPTM WPTN for the lmem variant.
// ACCUM (backward-data only, where HAS_BIAS is 0) adds a prior gradient shaped like dst, passed in the
// bias slot, to every output (x feeding several layers: no separate add).
// HAS_BIAS adds bias[m] to the output channel m; then ACT (forward only) applies an activation
// to every output in the store: 0 none, 1 ReLU, 2 sigmoid (NormActivation's raw values; the eval
// path of a ConvBN layer whose batch norm is folded into the weights).

// The pack kernels are built without geometry options; any value serves them.
#ifndef KH
#define KH 1
#define KW 1
#define SH 1
#define SW 1
#define PH 0
#define PW 0
#define DH 1
#define DW 1
#endif
#ifndef TM
#define TM 8
#endif
#ifndef TN
#define TN 8
#endif
#ifndef MV
#define MV 1
#endif
#define TAPS (KH * KW)
#ifndef BWD_DATA
#define BWD_DATA 0
#endif
#ifndef HAS_BIAS
#define HAS_BIAS 0
#endif
#ifndef ACT
#define ACT 0
#endif
#ifndef ACCUM
#define ACCUM 0
#endif
#if ACT == 1
#define CONV_ACT(v) fmax((v), 0.0f)
#elif ACT == 2
#define CONV_ACT(v) (1.0f / (1.0f + exp(-(v))))
#else
#define CONV_ACT(v) (v)
#endif
// The value stored at dst[o]: the prior added (ACCUM), then the activation.
#if ACCUM
#define CONV_OUT(v, o) CONV_ACT((v) + bias[o])
#else
#define CONV_OUT(v, o) CONV_ACT(v)
#endif

#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
#define VEC XCAT(float, TM)
#define VLOAD XCAT(vload, TM)
#define VSTORE XCAT(vstore, TM)

// Where output pixel (y, x) reads for tap (ky, kx); *ok is 0 when the tap falls in the padding
// (or, for backward-data, between the strided positions).
inline int source_y(int y, int ky, int srcH, int* ok) {
#if BWD_DATA
    int t = y + PH - ky * DH;
    int s = t / SH;
    *ok = (t >= 0) & (t - s * SH == 0) & (s < srcH);
    return s;
#else
    int s = y * SH - PH + ky * DH;
    *ok = (s >= 0) & (s < srcH);
    return s;
#endif
}

inline int source_x(int x, int kx, int srcW, int* ok) {
#if BWD_DATA
    int t = x + PW - kx * DW;
    int s = t / SW;
    *ok = (t >= 0) & (t - s * SW == 0) & (s < srcW);
    return s;
#else
    int s = x * SW - PW + kx * DW;
    *ok = (s >= 0) & (s < srcW);
    return s;
#endif
}

// Tap-major (cmajor = 0, conv2d_igemm_reg/lmem): out[(tap·A + a)·BP + b];
// channel-major (cmajor = 1, conv2d_rows_reg):    out[(a·taps + tap)·BP + b];
// the value is w[b, a, tap] (transpose = 0: forward, a = ci, b = co),
//              w[a, b, tap] (transpose = 1: backward-data, a = co, b = ci),
//              w[a, b, taps − 1 − tap] (transpose = 2: backward-data of a stride-1 "same" conv run
//                                       as a forward conv: the kernel flipped in both axes);
// 0 for b ≥ B. w is (Cout, Cin, taps).
__kernel void conv2d_pack_weights(__global const float* w, __global float* out,
                                  int A, int B, int BP, int taps, int transpose, int cmajor) {
    int b = get_global_id(0), row = get_global_id(1);
    if (b >= BP || row >= taps * A) return;
    int tap, a;
    if (cmajor) { a = row / taps; tap = row - a * taps; }
    else { tap = row / A; a = row - tap * A; }
    float v = 0.0f;
    if (b < B) {
        if (transpose == 0) v = w[((size_t)b * A + a) * taps + tap];
        else if (transpose == 1) v = w[((size_t)a * B + b) * taps + tap];
        else v = w[((size_t)a * B + b) * taps + (taps - 1 - tap)];
    }
    out[(size_t)row * BP + b] = v;
}

// out[p·MP + m] = dy[n, m, r] with p = n·HW + r; 0 for m ≥ M. One element per work item (GPUs).
__kernel void conv2d_pack_rows(__global const float* dy, __global float* out, int M, int MP, int HW, int P) {
    int m = get_global_id(0), p = get_global_id(1);
    if (m >= MP || p >= P) return;
    int n = p / HW, r = p - n * HW;
    out[(size_t)p * MP + m] = m < M ? dy[((size_t)n * M + m) * HW + r] : 0.0f;
}

// The same packing on CPU devices (MP a multiple of 16): a work item transposes a block of 16 channels × 16 pixels: 16 contiguous row reads (one per channel plane) and
// 16 contiguous writes (one per pixel); blocks that cross an image's end take the element path.
// Global: (MP / 16, ⌈P / 16⌉).
__kernel void conv2d_pack_rows16(__global const float* dy, __global float* out, int M, int MP, int HW, int P) {
    const int m0 = get_global_id(0) * 16, p0 = get_global_id(1) * 16;
    if (m0 >= MP || p0 >= P) return;
    const int n = p0 / HW, r0 = p0 - n * HW;
    if (r0 + 16 <= HW) {
        float t[16][16];
        #pragma unroll
        for (int mm = 0; mm < 16; ++mm) {
            float16 v = (float16)(0.0f);
            if (m0 + mm < M) v = vload16(0, dy + ((size_t)n * M + m0 + mm) * HW + r0);
            vstore16(v, 0, &t[mm][0]);
        }
        #pragma unroll
        for (int j = 0; j < 16; ++j) {
            __global float* o = out + (size_t)(p0 + j) * MP + m0;
            #pragma unroll
            for (int mm = 0; mm < 16; ++mm) o[mm] = t[mm][j];
        }
    } else {
        for (int p = p0; p < min(P, p0 + 16); ++p) {
            const int pn = p / HW, r = p - pn * HW;
            for (int mm = 0; mm < 16; ++mm) {
                const int m = m0 + mm;
                out[(size_t)p * MP + m] = m < M ? dy[((size_t)pn * M + m) * HW + r] : 0.0f;
            }
        }
    }
}

// dst (N, M, dstH, dstW) = Σ_{tap, c} wp[tap][c][m] · src[n, c, source(pixel, tap)] (+ bias[m]).
// src (N, CS, srcH, srcW); wp [KH·KW][CS][MP]. Global: (⌈N·dstH·dstW / TN⌉, MP / TM).
__kernel void conv2d_igemm_reg(__global const float* src, __global const float* wp, __global const float* bias,
                               __global float* dst, int N, int CS, int srcH, int srcW,
                               int M, int dstH, int dstW, int MP) {
    const int tile = get_global_id(0);
    const int m0 = get_global_id(1) * TM;
    if (m0 >= MP) return;
    const int srcHW = srcH * srcW, dstHW = dstH * dstW, P = N * dstHW;
    int py[TN], px[TN], base[TN];
    #pragma unroll
    for (int j = 0; j < TN; ++j) {
        int p = min(tile * TN + j, P - 1);
        int n = p / dstHW, r = p - n * dstHW;
        py[j] = r / dstW; px[j] = r - py[j] * dstW;
        base[j] = n * CS * srcHW;
    }
    VEC acc[TN];
    #pragma unroll
    for (int j = 0; j < TN; ++j) acc[j] = (VEC)(0.0f);

    for (int ky = 0; ky < KH; ++ky) {
        for (int kx = 0; kx < KW; ++kx) {
            int off[TN];
            float msk[TN];
            int all = 1;
            #pragma unroll
            for (int j = 0; j < TN; ++j) {
                int oky, okx;
                int sy = source_y(py[j], ky, srcH, &oky), sx = source_x(px[j], kx, srcW, &okx);
                int ok = oky & okx;
                off[j] = ok ? base[j] + sy * srcW + sx : 0;
                msk[j] = ok ? 1.0f : 0.0f;
                all &= ok;
            }
            __global const float* wk = wp + (size_t)(ky * KW + kx) * CS * MP + m0;
            __global const float* sk = src;
            if (all) {
                // Every pixel of the tile reads inside the source (the common, interior case):
                // no mask, so each source value is a broadcast operand of its FMA.
                for (int c = 0; c < CS; ++c) {
                    VEC wv = VLOAD(0, wk);
                    #pragma unroll
                    for (int j = 0; j < TN; ++j) acc[j] = fma(wv, (VEC)(sk[off[j]]), acc[j]);
                    wk += MP;
                    sk += srcHW;
                }
            } else {
                for (int c = 0; c < CS; ++c) {
                    VEC wv = VLOAD(0, wk);
                    #pragma unroll
                    for (int j = 0; j < TN; ++j) acc[j] = fma(wv, (VEC)(sk[off[j]] * msk[j]), acc[j]);
                    wk += MP;
                    sk += srcHW;
                }
            }
        }
    }

    for (int j = 0; j < TN; ++j) {
        int p = tile * TN + j;
        if (p >= P) break;
        int n = p / dstHW, r = p - n * dstHW;
        float t[TM];
        VSTORE(acc[j], 0, t);
        for (int mm = 0; mm < TM && m0 + mm < M; ++mm) {
#if HAS_BIAS
            t[mm] += bias[m0 + mm];
#endif
            size_t oi = ((size_t)n * M + m0 + mm) * dstHW + r;
            dst[oi] = CONV_OUT(t[mm], oi);
        }
    }
}

#ifdef RN
// Source columns one output-row segment reads: RN pixels SW apart, KW taps DW apart.
#define SPAN ((RN - 1) * SW + (KW - 1) * DW + 1)
// STORE_ROW_TILE stores acc[MV][RN] (MV vectors of TM channels from m0, RN pixels of output row oy
// from x0) into dst (N, M, OH, OW), adding bias[m] when HAS_BIAS, then CONV_OUT (the prior with ACCUM,
// the activation); pixels past OW and
// channels past M are dropped.
#if HAS_BIAS
#define ROWS_BIAS(t, m) t += bias[m]
#else
#define ROWS_BIAS(t, m)
#endif
// The tile goes through a private copy so that each channel's RN pixels are stored as one
// contiguous run (not RN·TM stores that alternate between channel planes).
#define STORE_ROW_TILE(acc)                                                                        \
    {                                                                                              \
        const int OHW = OH * OW;                                                                   \
        const int run = min(RN, OW - x0);                                                          \
        float t[MV][RN][TM];                                                                       \
        _Pragma("unroll") for (int v = 0; v < MV; ++v)                                             \
            _Pragma("unroll") for (int j = 0; j < RN; ++j) VSTORE(acc[v][j], 0, &t[v][j][0]);     \
        for (int v = 0; v < MV; ++v) {                                                             \
            for (int mm = 0; mm < TM; ++mm) {                                                      \
                const int m = m0 + v * TM + mm;                                                    \
                if (m >= M) break;                                                                 \
                float bm = 0.0f;                                                                   \
                ROWS_BIAS(bm, m);                                                                  \
                const size_t base = ((size_t)n * M + m) * OHW + oy * OW + x0;                     \
                __global float* d = dst + base;                                                    \
                if (run == RN) {                                                                   \
                    _Pragma("unroll") for (int j = 0; j < RN; ++j) d[j] = CONV_OUT(t[v][j][mm] + bm, base + j); \
                } else {                                                                           \
                    for (int j = 0; j < run; ++j) d[j] = CONV_OUT(t[v][j][mm] + bm, base + j);     \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

// The taps of one (ky, c) row for conv2d_rows_reg: RN output pixels × MV channel vectors, source
// values SRC[j * SW + kx * DW] (the image row in the interior, the clamped private copy at edges).
#define ROWS_TAP_FMAS(SRC)                                                                          \
    _Pragma("unroll") for (int kx = 0; kx < KW; ++kx) {                                             \
        VEC w[MV];                                                                                  \
        _Pragma("unroll") for (int v = 0; v < MV; ++v) w[v] = VLOAD(0, wk + kx * MP + v * TM);     \
        _Pragma("unroll") for (int j = 0; j < RN; ++j) {                                            \
            VEC a = (VEC)(SRC[j * SW + kx * DW]);                                                   \
            _Pragma("unroll") for (int v = 0; v < MV; ++v) acc[v][j] = fma(w[v], a, acc[v][j]);    \
        }                                                                                           \
    }

// dst (N, M, OH, OW) = Σ_{c, tap} wr[c][tap][m] · src[n, c, oy·SH − PH + ky·DH, ox·SW − PW + kx·DW]
// (+ bias[m]). src (N, CS, H, W); wr [CS][KH·KW][MP], MP a multiple of MV·TM.
// Global: (N·OH·⌈OW / RN⌉, ⌈M / (MV·TM)⌉).
__kernel void conv2d_rows_reg(__global const float* src, __global const float* wr, __global const float* bias,
                              __global float* dst, int N, int CS, int H, int W, int M, int OH, int OW, int MP) {
    const int segs = (OW + RN - 1) / RN;
    const int g = get_global_id(0);
    const int m0 = get_global_id(1) * (TM * MV);
    const int seg = g % segs, rest = g / segs;
    const int oy = rest % OH, n = rest / OH;
    if (n >= N || m0 >= MP) return;
    const int x0 = seg * RN;
    const int sx0 = x0 * SW - PW;
    const int HW = H * W;
    int rowoff[KH], rowok[KH];
    #pragma unroll
    for (int ky = 0; ky < KH; ++ky) {
        int sy = oy * SH - PH + ky * DH;
        rowok[ky] = (sy >= 0) & (sy < H);
        rowoff[ky] = rowok[ky] ? sy * W : 0;
    }
    VEC acc[MV][RN];
    #pragma unroll
    for (int v = 0; v < MV; ++v)
        #pragma unroll
        for (int j = 0; j < RN; ++j) acc[v][j] = (VEC)(0.0f);
    __global const float* sc = src + (size_t)n * CS * HW;
    const int interior = (sx0 >= 0) & (sx0 + SPAN - 1 < W) & (x0 + RN <= OW);
    int kyLo = 0, kyHi = KH;
    while (kyLo < KH && !rowok[kyLo]) ++kyLo;
    while (kyHi > kyLo && !rowok[kyHi - 1]) --kyHi;
    if (interior) {
        for (int ky = kyLo; ky < kyHi; ++ky) {
            __global const float* r = sc + sx0 + rowoff[ky];
            __global const float* wk = wr + m0 + ky * KW * MP;
            for (int c = 0; c < CS; ++c) {
                ROWS_TAP_FMAS(r)
                r += HW;
                wk += TAPS * MP;
            }
        }
    } else {
        // Source columns sx0 + u, u < SPAN, clamped into the row and multiplied by 0 outside it
        // (columns past OW only feed outputs that are not stored).
        int col[SPAN];
        float keep[SPAN];
        #pragma unroll
        for (int u = 0; u < SPAN; ++u) {
            int sx = sx0 + u;
            keep[u] = ((sx >= 0) & (sx < W)) ? 1.0f : 0.0f;
            col[u] = clamp(sx, 0, W - 1);
        }
        for (int ky = kyLo; ky < kyHi; ++ky) {
            __global const float* r = sc + rowoff[ky];
            __global const float* wk = wr + m0 + ky * KW * MP;
            for (int c = 0; c < CS; ++c) {
                float sv[SPAN];
                #pragma unroll
                for (int u = 0; u < SPAN; ++u) sv[u] = r[col[u]] * keep[u];
                ROWS_TAP_FMAS(sv)
                r += HW;
                wk += TAPS * MP;
            }
        }
    }
    STORE_ROW_TILE(acc)
}

// The 2×2 stride-2 transposed convolution's forward (the backward-data of a 2×2 stride-2 conv,
// no padding or dilation): output pixel (oy, ox) takes only tap (oy & 1, ox & 1), from source
// pixel (oy / 2, ox / 2). dst (N, M, OH, OW) = Σ_c wr[c][(oy & 1)·2 + (ox & 1)][m] · src[n, c, oy / 2, ox / 2]
// (+ bias[m]); src (N, CS, H, W) with OH = 2H, OW = 2W; wr [CS][4][MP] (conv2d_pack_weights,
// transpose 1, channel-major). RN even: each source value feeds two neighbouring pixels (taps b = 0, 1).
// Summation order per output: c ascending, as conv2d_igemm_reg's gather.
// Global: (N·OH·⌈OW / RN⌉, ⌈M / (MV·TM)⌉).
__kernel void conv2d_rows_up(__global const float* src, __global const float* wr, __global const float* bias,
                             __global float* dst, int N, int CS, int H, int W, int M, int OH, int OW, int MP) {
    const int segs = (OW + RN - 1) / RN;
    const int g = get_global_id(0);
    const int m0 = get_global_id(1) * (TM * MV);
    const int seg = g % segs, rest = g / segs;
    const int oy = rest % OH, n = rest / OH;
    if (n >= N || m0 >= MP) return;
    const int x0 = seg * RN;
    const int HW = H * W;
    VEC acc[MV][RN];
    #pragma unroll
    for (int v = 0; v < MV; ++v)
        #pragma unroll
        for (int j = 0; j < RN; ++j) acc[v][j] = (VEC)(0.0f);
    __global const float* r = src + (size_t)n * CS * HW + (oy >> 1) * W + (x0 >> 1);
    __global const float* wk = wr + m0 + (oy & 1) * 2 * MP;
    // Source columns past the row (a partial last segment) are clamped; they feed unstored outputs.
    int col[RN / 2];
    #pragma unroll
    for (int u = 0; u < RN / 2; ++u) col[u] = min(u, W - 1 - (x0 >> 1));
    for (int c = 0; c < CS; ++c) {
        VEC w0[MV], w1[MV];
        #pragma unroll
        for (int v = 0; v < MV; ++v) { w0[v] = VLOAD(0, wk + v * TM); w1[v] = VLOAD(0, wk + MP + v * TM); }
        #pragma unroll
        for (int u = 0; u < RN / 2; ++u) {
            VEC a = (VEC)(r[col[u]]);
            #pragma unroll
            for (int v = 0; v < MV; ++v) {
                acc[v][2 * u] = fma(w0[v], a, acc[v][2 * u]);
                acc[v][2 * u + 1] = fma(w1[v], a, acc[v][2 * u + 1]);
            }
        }
        r += HW;
        wk += 4 * MP;
    }
    STORE_ROW_TILE(acc)
}
#endif

#ifdef PV
#define PVEC XCAT(float, PV)
#define PLOAD XCAT(vload, PV)
#define PSTORE XCAT(vstore, PV)
#define SPANP (PV + (KW - 1) * DW)
#ifndef FLIP
#define FLIP 0
#endif
// Few output channels (M = MT, a compile-time constant below 16), stride 1: each work item owns PV consecutive output pixels of one
// row (one vector) × all M output channels; per (c, ky) the source row segment is one unaligned
// vector load per kx (from a zero-padded private copy at the image's left and right edges) and each
// weight a broadcast. w is read as given, no packing: OIHW (FLIP = 0, forward: M = Cout, CS = Cin)
// or, for the backward-data of a stride-1 "same" conv (FLIP = 1: M = Cin, CS = Cout), w[c, m] with
// the kernel flipped in both axes. Summation order per output: c, ky, kx.
// Global: N·OH·⌈OW / PV⌉.
__kernel void conv2d_rows_px(__global const float* src, __global const float* w, __global const float* bias,
                             __global float* dst, int N, int CS, int H, int W, int M, int OH, int OW) {
    const int segs = (OW + PV - 1) / PV;
    const int g = get_global_id(0);
    const int seg = g % segs, rest = g / segs;
    const int oy = rest % OH, n = rest / OH;
    if (n >= N) return;
    const int x0 = seg * PV;
    const int HW = H * W;
    PVEC acc[MT];
    #pragma unroll
    for (int mm = 0; mm < MT; ++mm) acc[mm] = (PVEC)(0.0f);
    const int interior = (x0 - PW >= 0) & (x0 + PV - 1 - PW + (KW - 1) * DW < W);
    int col[SPANP];
    float keep[SPANP];
    #pragma unroll
    for (int u = 0; u < SPANP; ++u) {
        int sx = x0 - PW + u;
        keep[u] = ((sx >= 0) & (sx < W)) ? 1.0f : 0.0f;
        col[u] = clamp(sx, 0, W - 1);
    }
    __global const float* sc = src + (size_t)n * CS * HW;
    for (int c = 0; c < CS; ++c) {
        for (int ky = 0; ky < KH; ++ky) {
            const int sy = oy - PH + ky * DH;
            if (sy < 0 || sy >= H) continue;
            __global const float* r = sc + (size_t)c * HW + sy * W;
#if FLIP
            // tap (ky, kx) of the flipped kernel of (m, c) = w[c, m, KH − 1 − ky, KW − 1 − kx].
            __global const float* wk = w + (((size_t)c * M) * KH + (KH - 1 - ky)) * KW + (KW - 1);
#define WTAP(mm, kx) wk[(size_t)min(mm, M - 1) * TAPS - (kx)]
#else
            __global const float* wk = w + ((size_t)c * KH + ky) * KW;
#define WTAP(mm, kx) wk[(size_t)min(mm, M - 1) * CS * TAPS + (kx)]
#endif
            if (interior) {
                #pragma unroll
                for (int kx = 0; kx < KW; ++kx) {
                    PVEC v = PLOAD(0, r + x0 - PW + kx * DW);
                    #pragma unroll
                    for (int mm = 0; mm < MT; ++mm)
                        acc[mm] = fma((PVEC)(WTAP(mm, kx)), v, acc[mm]);
                }
            } else {
                float t[SPANP];
                #pragma unroll
                for (int u = 0; u < SPANP; ++u) t[u] = r[col[u]] * keep[u];
                #pragma unroll
                for (int kx = 0; kx < KW; ++kx) {
                    PVEC v = PLOAD(0, t + kx * DW);
                    #pragma unroll
                    for (int mm = 0; mm < MT; ++mm)
                        acc[mm] = fma((PVEC)(WTAP(mm, kx)), v, acc[mm]);
                }
            }
        }
    }
    const int OHW = OH * OW;
    #pragma unroll
    for (int mm = 0; mm < MT; ++mm) {
        PVEC o = acc[mm];
#if HAS_BIAS
        o += (PVEC)(bias[mm]);
#endif
#if ACCUM
        __global const float* pr = bias + ((size_t)n * M + mm) * OHW + oy * OW + x0;
        if (x0 + PV <= OW) o += PLOAD(0, pr);
        else {
            float t[PV];
            PSTORE(o, 0, t);
            for (int j = 0; j < OW - x0; ++j) t[j] += pr[j];
            o = PLOAD(0, t);
        }
#endif
        o = CONV_ACT(o);
        __global float* d = dst + ((size_t)n * M + mm) * OHW + oy * OW + x0;
        if (x0 + PV <= OW) PSTORE(o, 0, d);
        else {
            float t[PV];
            PSTORE(o, 0, t);
            for (int j = 0; j < OW - x0; ++j) d[j] = t[j];
        }
    }
}
#endif

#ifdef TSM
// The GPU variant. Local size (TSM / WPTM, TSN / WPTN); global (MP / WPTM, ⌈P / TSN⌉·TSN / WPTN).
// K runs over k = tap·CS + c in TSK slices; the weight slice is [TSK][TSM] (coalesced along m),
// the source slice [TSK][TSN] (coalesced along pixels).
__kernel void conv2d_igemm_lmem(__global const float* src, __global const float* wp, __global const float* bias,
                                __global float* dst, int N, int CS, int srcH, int srcW,
                                int M, int dstH, int dstW, int MP) {
    __local float As[TSK][TSM];
    __local float Bs[TSK][TSN + 1];
    const int RTSM = TSM / WPTM, RTSN = TSN / WPTN;
    const int lm = get_local_id(0), ln = get_local_id(1);
    const int tid = ln * RTSM + lm, threads = RTSM * RTSN;
    const int m0 = get_group_id(0) * TSM, p0 = get_group_id(1) * TSN;
    const int srcHW = srcH * srcW, dstHW = dstH * dstW, P = N * dstHW;
    const int K = KH * KW * CS;
    float acc[WPTM][WPTN];
    for (int a = 0; a < WPTM; ++a) for (int b = 0; b < WPTN; ++b) acc[a][b] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += TSK) {
        for (int i = tid; i < TSK * TSM; i += threads) {
            int kk = i / TSM, mm = i - kk * TSM;
            int k = k0 + kk, m = m0 + mm;
            As[kk][mm] = (k < K && m < MP) ? wp[(size_t)k * MP + m] : 0.0f;
        }
        for (int i = tid; i < TSK * TSN; i += threads) {
            int kk = i / TSN, nn = i - kk * TSN;
            int k = k0 + kk, p = p0 + nn;
            float v = 0.0f;
            if (k < K && p < P) {
                int tap = k / CS, c = k - tap * CS;
                int ky = tap / KW, kx = tap - ky * KW;
                int n = p / dstHW, r = p - n * dstHW;
                int y = r / dstW, x = r - y * dstW;
                int oky, okx;
                int sy = source_y(y, ky, srcH, &oky), sx = source_x(x, kx, srcW, &okx);
                if (oky & okx) v = src[((size_t)n * CS + c) * srcHW + sy * srcW + sx];
            }
            Bs[kk][nn] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TSK; ++kk) {
            float a[WPTM], b[WPTN];
            for (int i = 0; i < WPTM; ++i) a[i] = As[kk][lm + i * RTSM];
            for (int j = 0; j < WPTN; ++j) b[j] = Bs[kk][ln + j * RTSN];
            for (int i = 0; i < WPTM; ++i) for (int j = 0; j < WPTN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < WPTM; ++i) {
        int m = m0 + lm + i * RTSM;
        if (m >= M) continue;
        for (int j = 0; j < WPTN; ++j) {
            int p = p0 + ln + j * RTSN;
            if (p >= P) continue;
            int n = p / dstHW, r = p - n * dstHW;
            float v = acc[i][j];
#if HAS_BIAS
            v += bias[m];
#endif
            size_t oi = ((size_t)n * M + m) * dstHW + r;
            dst[oi] = CONV_OUT(v, oi);
        }
    }
}
#endif

// partial[s][tap][ci][co] = Σ_{p in split s} dyT[p][co] · x[n, ci, source(p, tap)].
// dyT [N·OH·OW][MP]; x (N, Cin, H, W). Global: (⌈Cin / TN⌉·KH·KW, MP / TM, splits).
// The split's pixels are walked one output-row segment at a time: a row whose source row is in
// the padding is skipped whole, and within a row only the columns whose source column is inside
// the image are visited, so the inner loop has no bounds checks and only pointer increments.
// The terms are added in ascending pixel order, as a plain loop over p would add them.
__kernel void conv2d_bwd_weight_reg(__global const float* dyT, __global const float* x, __global float* partial,
                                    int N, int Cin, int H, int W, int OH, int OW, int MP, int chunk) {
    const int ciTiles = (Cin + TN - 1) / TN;
    const int g0 = get_global_id(0);
    const int tap = g0 / ciTiles, ci0 = (g0 - tap * ciTiles) * TN;
    const int m0 = get_global_id(1) * TM, s = get_global_id(2);
    if (tap >= KH * KW || m0 >= MP) return;
    const int ky = tap / KW, kx = tap - ky * KW;
    const int HW = H * W, OHW = OH * OW, P = N * OHW;
    int cofs[TN];
    #pragma unroll
    for (int j = 0; j < TN; ++j) cofs[j] = min(ci0 + j, Cin - 1) * HW;
    VEC acc[TN];
    #pragma unroll
    for (int j = 0; j < TN; ++j) acc[j] = (VEC)(0.0f);

    // Output columns whose source column ix = ox·SW − PW + kx·DW lies in [0, W): ox in [oxLo, oxHi).
    const int t0 = PW - kx * DW, t1 = W - 1 + t0;
    const int oxLo = t0 <= 0 ? 0 : (t0 + SW - 1) / SW;
    const int oxHi = t1 < 0 ? 0 : min(OW, t1 / SW + 1);
    int p = s * chunk;
    const int pEnd = min(P, p + chunk);
    while (p < pEnd) {
        const int n = p / OHW, r = p - n * OHW;
        const int oy = r / OW, ox = r - oy * OW;
        const int segEnd = min(pEnd, p + (OW - ox));
        const int iy = oy * SH - PH + ky * DH;
        const int a = max(ox, oxLo), b = min(ox + (segEnd - p), oxHi);
        if (iy >= 0 && iy < H && a < b) {
            __global const float* dp = dyT + (size_t)(p + (a - ox)) * MP + m0;
            __global const float* xp = x + (size_t)n * Cin * HW + iy * W + a * SW - PW + kx * DW;
            for (int c = a; c < b; ++c) {
                VEC dv = VLOAD(0, dp);
                #pragma unroll
                for (int j = 0; j < TN; ++j) acc[j] = fma(dv, (VEC)(xp[cofs[j]]), acc[j]);
                dp += MP;
                xp += SW;
            }
        }
        p = segEnd;
    }
    const int CinP = ciTiles * TN;
    __global float* out = partial + (((size_t)s * KH * KW + tap) * CinP + ci0) * MP + m0;
    #pragma unroll
    for (int j = 0; j < TN; ++j) VSTORE(acc[j], 0, out + (size_t)j * MP);
}

#ifdef RB
#define SPANB ((RB - 1) * SW + (KW - 1) * DW + 1)
// partial[s][ky·KW + kx][ci][co] = Σ over the rows q = n·OH + oy of split s (ascending) and their
// columns ox (ascending) of dyT[q·OW + ox][co] · x[n, ci, oy·SH − PH + ky·DH, ox·SW − PW + kx·DW].
// OW a multiple of RB. Global: (⌈Cin / TN⌉·KH, MP / (TM·MV), splits).
__kernel void conv2d_bwd_weight_rows(__global const float* dyT, __global const float* x, __global float* partial,
                                     int N, int Cin, int H, int W, int OH, int OW, int MP, int rowsPerSplit) {
    const int ciTiles = (Cin + TN - 1) / TN;
    const int g0 = get_global_id(0);
    const int ky = g0 / ciTiles, ci0 = (g0 - ky * ciTiles) * TN;
    const int m0 = get_global_id(1) * (TM * MV), s = get_global_id(2);
    if (ky >= KH || m0 >= MP) return;
    const int HW = H * W;
    int cofs[TN];
    #pragma unroll
    for (int j = 0; j < TN; ++j) cofs[j] = min(ci0 + j, Cin - 1) * HW;
    VEC acc[MV][TN][KW];
    #pragma unroll
    for (int v = 0; v < MV; ++v)
        #pragma unroll
        for (int j = 0; j < TN; ++j)
            #pragma unroll
            for (int kx = 0; kx < KW; ++kx) acc[v][j][kx] = (VEC)(0.0f);
    const int q0 = s * rowsPerSplit, q1 = min(N * OH, q0 + rowsPerSplit);
    for (int q = q0; q < q1; ++q) {
        const int n = q / OH, oy = q - n * OH;
        const int iy = oy * SH - PH + ky * DH;
        if (iy < 0 || iy >= H) continue;
        __global const float* xr = x + (size_t)n * Cin * HW + iy * W;
        __global const float* dp = dyT + (size_t)q * OW * MP + m0;
        for (int x0 = 0; x0 < OW; x0 += RB) {
            const int sx0 = x0 * SW - PW;
            const int interior = (sx0 >= 0) & (sx0 + SPANB - 1 < W);
            if (interior) {
                __global const float* xb = xr + sx0;
                #pragma unroll
                for (int p = 0; p < RB; ++p) {
                    VEC d[MV];
                    #pragma unroll
                    for (int v = 0; v < MV; ++v) d[v] = VLOAD(0, dp + p * MP + v * TM);
                    #pragma unroll
                    for (int j = 0; j < TN; ++j)
                        #pragma unroll
                        for (int kx = 0; kx < KW; ++kx) {
                            VEC a = (VEC)(xb[cofs[j] + p * SW + kx * DW]);
                            #pragma unroll
                            for (int v = 0; v < MV; ++v) acc[v][j][kx] = fma(d[v], a, acc[v][j][kx]);
                        }
                }
            } else {
                int col[SPANB];
                float keep[SPANB];
                #pragma unroll
                for (int u = 0; u < SPANB; ++u) {
                    int sx = sx0 + u;
                    keep[u] = ((sx >= 0) & (sx < W)) ? 1.0f : 0.0f;
                    col[u] = clamp(sx, 0, W - 1);
                }
                #pragma unroll
                for (int p = 0; p < RB; ++p) {
                    VEC d[MV];
                    #pragma unroll
                    for (int v = 0; v < MV; ++v) d[v] = VLOAD(0, dp + p * MP + v * TM);
                    #pragma unroll
                    for (int j = 0; j < TN; ++j)
                        #pragma unroll
                        for (int kx = 0; kx < KW; ++kx) {
                            VEC a = (VEC)(xr[cofs[j] + col[p * SW + kx * DW]] * keep[p * SW + kx * DW]);
                            #pragma unroll
                            for (int v = 0; v < MV; ++v) acc[v][j][kx] = fma(d[v], a, acc[v][j][kx]);
                        }
                }
            }
            dp += RB * MP;
        }
    }
    const int CinP = ciTiles * TN;
    __global float* out = partial + (size_t)s * KH * KW * CinP * MP + m0;
    #pragma unroll
    for (int j = 0; j < TN; ++j)
        #pragma unroll
        for (int kx = 0; kx < KW; ++kx)
            #pragma unroll
            for (int v = 0; v < MV; ++v)
                VSTORE(acc[v][j][kx], 0, out + ((size_t)(ky * KW + kx) * CinP + ci0 + j) * MP + v * TM);
}
#endif

#ifdef PB
#define PBVEC XCAT(float, PB)
#define PBLOAD XCAT(vload, PB)
#define PBSTORE XCAT(vstore, PB)
#define SPANX (PB + (KW - 1) * DW)
// Backward-weight for few output channels (M = MT, a compile-time constant below 16: the spatial-
// attention 7×7 conv, the 1-channel head), stride 1, reading dy (N, MT, OH, OW) as given (no
// conv2d_pack_rows, whose channel vectors would be 1/16 used). A work item owns TN input channels
// from ci0, one kernel row ky and its KW taps, and walks the output rows q = n·OH + oy of split s
// (ascending) PB pixels at a time: each dy vector (PB pixels of one channel) meets the source row
// segment of every tap as one unaligned vector load (a zero-padded private copy at the image's
// edges). The accumulators are PB-pixel vectors, summed over their lanes in ascending lane order at
// the end: partial[s][ky·KW + kx][ci][co] = Σ_q Σ_lane … (CinP = Cin, MP = MT for the reduce).
// Global: (⌈Cin / TN⌉·KH, 1, splits).
__kernel void conv2d_bwd_weight_px(__global const float* dy, __global const float* x, __global float* partial,
                                   int N, int Cin, int H, int W, int OH, int OW, int rowsPerSplit) {
    const int ciTiles = (Cin + TN - 1) / TN;
    const int g0 = get_global_id(0);
    const int ky = g0 / ciTiles, ci0 = (g0 - ky * ciTiles) * TN;
    const int s = get_global_id(2);
    if (ky >= KH) return;
    const int HW = H * W, OHW = OH * OW;
    int cofs[TN];
    #pragma unroll
    for (int j = 0; j < TN; ++j) cofs[j] = min(ci0 + j, Cin - 1) * HW;
    PBVEC acc[TN][MT][KW];
    #pragma unroll
    for (int j = 0; j < TN; ++j)
        #pragma unroll
        for (int mm = 0; mm < MT; ++mm)
            #pragma unroll
            for (int kx = 0; kx < KW; ++kx) acc[j][mm][kx] = (PBVEC)(0.0f);
    const int q0 = s * rowsPerSplit, q1 = min(N * OH, q0 + rowsPerSplit);
    for (int q = q0; q < q1; ++q) {
        const int n = q / OH, oy = q - n * OH;
        const int iy = oy - PH + ky * DH;
        if (iy < 0 || iy >= H) continue;
        __global const float* xr = x + (size_t)n * Cin * HW + iy * W;
        __global const float* dr = dy + (size_t)n * MT * OHW + oy * OW;
        for (int x0 = 0; x0 < OW; x0 += PB) {
            PBVEC d[MT];
            if (x0 + PB <= OW) {
                #pragma unroll
                for (int mm = 0; mm < MT; ++mm) d[mm] = PBLOAD(0, dr + mm * OHW + x0);
            } else {
                // The row's last, partial block: pixels past OW count as 0.
                #pragma unroll
                for (int mm = 0; mm < MT; ++mm) {
                    float t[PB];
                    #pragma unroll
                    for (int u = 0; u < PB; ++u) t[u] = dr[mm * OHW + min(x0 + u, OW - 1)] * (x0 + u < OW ? 1.0f : 0.0f);
                    d[mm] = PBLOAD(0, t);
                }
            }
            const int sx0 = x0 - PW;
            if ((sx0 >= 0) & (sx0 + SPANX - 1 < W)) {
                #pragma unroll
                for (int j = 0; j < TN; ++j)
                    #pragma unroll
                    for (int kx = 0; kx < KW; ++kx) {
                        PBVEC a = PBLOAD(0, xr + cofs[j] + sx0 + kx * DW);
                        #pragma unroll
                        for (int mm = 0; mm < MT; ++mm) acc[j][mm][kx] = fma(d[mm], a, acc[j][mm][kx]);
                    }
            } else {
                #pragma unroll
                for (int j = 0; j < TN; ++j) {
                    float t[SPANX];
                    #pragma unroll
                    for (int u = 0; u < SPANX; ++u) {
                        int sx = sx0 + u;
                        t[u] = xr[cofs[j] + clamp(sx, 0, W - 1)] * (((sx >= 0) & (sx < W)) ? 1.0f : 0.0f);
                    }
                    #pragma unroll
                    for (int kx = 0; kx < KW; ++kx) {
                        PBVEC a = PBLOAD(0, t + kx * DW);
                        #pragma unroll
                        for (int mm = 0; mm < MT; ++mm) acc[j][mm][kx] = fma(d[mm], a, acc[j][mm][kx]);
                    }
                }
            }
        }
    }
    __global float* out = partial + (size_t)s * KH * KW * Cin * MT;
    #pragma unroll
    for (int j = 0; j < TN; ++j) {
        if (ci0 + j >= Cin) break;
        #pragma unroll
        for (int kx = 0; kx < KW; ++kx)
            #pragma unroll
            for (int mm = 0; mm < MT; ++mm) {
                float t[PB];
                PBSTORE(acc[j][mm][kx], 0, t);
                float sum = 0.0f;
                for (int u = 0; u < PB; ++u) sum += t[u];
                out[((size_t)(ky * KW + kx) * Cin + ci0 + j) * MT + mm] = sum;
            }
    }
}
#endif

// dw[co, ci, tap] = Σ_{s = 0 … splits−1} partial[s][tap][ci][co], in that order.
__kernel void conv2d_bwd_weight_reduce(__global const float* partial, __global float* dw,
                                       int Cout, int Cin, int CinP, int MP, int taps, int splits) {
    int i = get_global_id(0);
    if (i >= Cout * Cin * taps) return;
    int tap = i % taps, rest = i / taps;
    int ci = rest % Cin, co = rest / Cin;
    size_t stride = (size_t)taps * CinP * MP;
    __global const float* q = partial + ((size_t)tap * CinP + ci) * MP + co;
    float acc = 0.0f;
    for (int s = 0; s < splits; ++s) acc += q[s * stride];
    dw[i] = acc;
}

// MARK: GPU backward-weight (conv2d_bwd_weight_lmem; see the header)

#ifndef BW_TSM
#define BW_TSM 64
#endif
#ifndef BW_TSN
#define BW_TSN 64
#endif
#define BW_TSK 16
#define BW_WPTM 4
#define BW_WPTN 4
#define BW_RM (BW_TSM / BW_WPTM)
#define BW_RN (BW_TSN / BW_WPTN)
#define BW_WG (BW_RM * BW_RN)

// Work-group (j tile, co tile, split s), local size (BW_RN, BW_RM): item (lx, ly) owns outputs
// co = m0 + ly + r·BW_RM, j = j0 + lx + c·BW_RN (r, c < 4). Pixels [s·chunk, min(P, (s+1)·chunk)).
__kernel void conv2d_bwd_weight_lmem(__global const float* dyT, __global const float* x, __global float* partial,
                                     int N, int Cin, int Cout, int H, int W, int OH, int OW, int MP, int chunk) {
    __local float As[BW_TSK][BW_TSM];
    __local float Bs[BW_TSK][BW_TSN];
    const int lx = get_local_id(0), ly = get_local_id(1), t = ly * BW_RN + lx;
    const int j0 = get_group_id(0) * BW_TSN, m0 = get_group_id(1) * BW_TSM, s = get_group_id(2);
    const int K2 = Cin * TAPS, OHW = OH * OW, P = N * OHW;
    const int pBeg = s * chunk, pEnd = min(P, pBeg + chunk);
    float acc[BW_WPTM][BW_WPTN];
    for (int r = 0; r < BW_WPTM; r++)
        for (int c = 0; c < BW_WPTN; c++) acc[r][c] = 0.0f;
    for (int p0 = pBeg; p0 < pEnd; p0 += BW_TSK) {
        // dyT rows p0 … p0 + TSK: neighbouring items read neighbouring channels of one pixel.
        for (int e = t; e < BW_TSK * BW_TSM; e += BW_WG) {
            int k = e / BW_TSM, mm = e - k * BW_TSM, p = p0 + k, m = m0 + mm;
            As[k][mm] = p < pEnd && m < MP ? dyT[(size_t)p * MP + m] : 0.0f;
        }
        // X: neighbouring items read neighbouring pixels of one (ci, tap) column.
        for (int e = t; e < BW_TSK * BW_TSN; e += BW_WG) {
            int jj = e / BW_TSK, k = e - jj * BW_TSK, p = p0 + k, j = j0 + jj;
            float v = 0.0f;
            if (p < pEnd && j < K2) {
                int ci = j / TAPS, tap = j - ci * TAPS, ky = tap / KW, kx = tap - ky * KW;
                int n = p / OHW, rr = p - n * OHW, oy = rr / OW, ox = rr - oy * OW, oky, okx;
                int iy = source_y(oy, ky, H, &oky), ix = source_x(ox, kx, W, &okx);
                if (oky && okx) v = x[(((size_t)n * Cin + ci) * H + iy) * W + ix];
            }
            Bs[k][jj] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < BW_TSK; k++) {
            float a[BW_WPTM], b[BW_WPTN];
            for (int r = 0; r < BW_WPTM; r++) a[r] = As[k][ly + r * BW_RM];
            for (int c = 0; c < BW_WPTN; c++) b[c] = Bs[k][lx + c * BW_RN];
            for (int r = 0; r < BW_WPTM; r++)
                for (int c = 0; c < BW_WPTN; c++) acc[r][c] = mad(a[r], b[c], acc[r][c]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int r = 0; r < BW_WPTM; r++) {
        int m = m0 + ly + r * BW_RM;
        if (m >= Cout) continue;
        for (int c = 0; c < BW_WPTN; c++) {
            int j = j0 + lx + c * BW_RN;
            if (j < K2) partial[((size_t)s * Cout + m) * K2 + j] = acc[r][c];
        }
    }
}

// dw[i] = Σ_s partial[s][i] in split order, i < count = Cout·Cin·taps (partial[s] is OIHW already).
__kernel void conv2d_bwd_weight_lmem_reduce(__global const float* partial, __global float* dw, int count, int splits) {
    int i = get_global_id(0);
    if (i >= count) return;
    float acc = 0.0f;
    for (int s = 0; s < splits; s++) acc += partial[(size_t)s * count + i];
    dw[i] = acc;
}
