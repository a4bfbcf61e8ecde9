// Matrix-vector products for a few rows: out[b, i, j] = sum_k a[b, i, k] * w[b, j, k], for
// i < m <= 8 (decoding a token: x W^T with W an (out, in) weight). Memory-bound: every
// weight element is read once, in 16-byte loads that skip L1, and the m rows of `a` (a few
// kilobytes, shared by every warp) come from cache. The includer defines T (f16, bf16 or
// f32) and KNAME(k).
//   A group of `wpr` warps (1, 2, 4 or 8; a block is 8 warps) computes one output column j,
//   its threads striding over k; partial sums meet through warp shuffles, then shared
//   memory when wpr > 1. Accumulation is in f32; each output is rounded once.
//   vec = 1: k is a multiple of 16 bytes' elements and every row starts 16-byte aligned
//   (the host checks); vec = 0: element loads, any layout with unit stride along k.

#define GEMV_MAXM 8
#ifndef GEMV_LOADS
#define GEMV_LOADS 4
#endif

struct __align__(16) GvU4 { unsigned x, y, z, w; };

// The weights are streamed once: no L1 allocation, read-only path.
DEV GvU4 gv_stream(const void* p) {
    GvU4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
// The activations are re-read by every warp: keep them cached.
DEV GvU4 gv_cached(const void* p) {
    GvU4 r;
    asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}

// Dot product of two 16-byte vectors of T, in f32.
DEV float gv_dot2(unsigned a, unsigned b);
#if defined(GEMV_BF16)
DEV float gv_lo(unsigned v) { return __uint_as_float(v << 16); }
DEV float gv_hi(unsigned v) { return __uint_as_float(v & 0xffff0000u); }
DEV float gv_dot2(unsigned a, unsigned b) { return gv_lo(a) * gv_lo(b) + gv_hi(a) * gv_hi(b); }
#elif defined(GEMV_F16)
DEV float gv_lo(unsigned v) { f16 h; h.b = (unsigned short)(v & 0xffffu); return h2f(h); }
DEV float gv_hi(unsigned v) { f16 h; h.b = (unsigned short)(v >> 16); return h2f(h); }
DEV float gv_dot2(unsigned a, unsigned b) { return gv_lo(a) * gv_lo(b) + gv_hi(a) * gv_hi(b); }
#else
DEV float gv_dot2(unsigned a, unsigned b) { return __uint_as_float(a) * __uint_as_float(b); }
#endif
DEV float gv_dot(const GvU4& a, const GvU4& b) {
    return gv_dot2(a.x, b.x) + gv_dot2(a.y, b.y) + gv_dot2(a.z, b.z) + gv_dot2(a.w, b.w);
}

extern "C" __global__ void __launch_bounds__(256) KNAME(gemv)(T* __restrict__ out,
    const T* __restrict__ a, const T* __restrict__ w, int m, long long n, long long k,
    long long lda, long long ldw, long long a_batch, long long w_batch, int wpr, int vec) {
    __shared__ float sh[8][GEMV_MAXM];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int per_block = 8 / wpr;
    const long long j = (long long)blockIdx.x * per_block + warp / wpr;
    const int gw = warp % wpr;  // this warp's place in its group
    const long long gt = (long long)gw * 32 + lane, gsize = (long long)wpr * 32;
    const long long b = blockIdx.y;
    a += b * a_batch;
    float acc[GEMV_MAXM];
    #pragma unroll
    for (int i = 0; i < GEMV_MAXM; ++i) acc[i] = 0.f;
    if (j < n) {
        const T* wr = w + b * w_batch + j * ldw;
        if (vec) {
            const long long per = 16 / sizeof(T), nv = k / per;
            const GvU4* wv = (const GvU4*)wr;
            // GEMV_LOADS loads in flight per thread before any arithmetic.
            for (long long v0 = gt; v0 < nv; v0 += GEMV_LOADS * gsize) {
                GvU4 x[GEMV_LOADS];
                #pragma unroll
                for (int u = 0; u < GEMV_LOADS; ++u) {
                    long long v = v0 + u * gsize;
                    if (v < nv) x[u] = gv_stream(wv + v);
                }
                #pragma unroll
                for (int u = 0; u < GEMV_LOADS; ++u) {
                    long long v = v0 + u * gsize;
                    if (v < nv) {
                        #pragma unroll
                        for (int i = 0; i < GEMV_MAXM; ++i)
                            if (i < m) acc[i] += gv_dot(x[u], gv_cached((const GvU4*)(a + i * lda) + v));
                    }
                }
            }
        } else {
            for (long long kk = gt; kk < k; kk += gsize) {
                float wk = ld(wr[kk]);
                #pragma unroll
                for (int i = 0; i < GEMV_MAXM; ++i)
                    if (i < m) acc[i] += wk * ld(a[i * lda + kk]);
            }
        }
    }
    #pragma unroll
    for (int i = 0; i < GEMV_MAXM; ++i) {
        #pragma unroll
        for (int d = 16; d > 0; d >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], d);
    }
    if (wpr > 1) {
        if (lane == 0) {
            #pragma unroll
            for (int i = 0; i < GEMV_MAXM; ++i) sh[warp][i] = acc[i];
        }
        __syncthreads();
        if (gw == 0 && lane < m) {
            float s = 0.f;
            for (int q = 0; q < wpr; ++q) s += sh[warp + q][lane];
            if (j < n) out[(b * m + lane) * n + j] = st<T>(s);
        }
    } else if (j < n && lane < m) {
        // Lane i writes row i (every lane holds every row's sum after the shuffles).
        float s = 0.f;
        #pragma unroll
        for (int i = 0; i < GEMV_MAXM; ++i)
            if (i == lane) s = acc[i];
        out[(b * m + lane) * n + j] = st<T>(s);
    }
}
