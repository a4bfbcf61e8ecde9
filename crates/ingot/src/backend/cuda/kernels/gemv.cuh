// Matrix-vector products for a few rows: out[b, i, j] = sum_k a[b, i, k] * w[b, j, k], for
// i < m <= 8 (decoding a token: x W^T with W an (out, in) weight). Memory-bound: every
// weight element is read once, in 16-byte loads that skip L1; the m rows of `a` (a few
// kilobytes, shared by every warp) come from cache or shared memory. The includer defines
// T (f16, bf16 or f32) and KNAME(k). Accumulation is in f32; each output is rounded once.
//   gemv_rows_M*: the vector path (k a multiple of 16 bytes' elements, rows 16-byte aligned;
//     the host checks). A warp computes R outputs, its lanes striding over k with 4 loads
//     per output in flight; M (1, 2, 4, 8) is m rounded up, so the accumulators are
//     registers. With XS the block first copies the m activation rows to shared memory
//     (m > 2: each is then read R times per load instead of through L1 every time).
//     Measured on an H100 against cuBLAS (scripts/gpu/micro/gemv.cu): 152 vs 164 us for the
//     four products of a Llama-3-8B layer at m = 1, 337 vs 375 us for its head.
//   gemv: element loads, any layout with unit stride along k; a group of `wpr` warps per
//     output, partial sums meeting through shared memory.

#define GEMV_MAXM 8

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
    long long lda, long long ldw, long long a_batch, long long w_batch, int wpr) {
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
        for (long long kk = gt; kk < k; kk += gsize) {
            float wk = ld(wr[kk]);
            #pragma unroll
            for (int i = 0; i < GEMV_MAXM; ++i)
                if (i < m) acc[i] += wk * ld(a[i * lda + kk]);
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

// --- the vector path ---
extern __shared__ GvU4 gv_xs[];

template <int M, int R, bool XS>
DEV void gemv_rows(T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ w,
    int m, long long n, long long k, long long lda, long long ldw, long long a_batch,
    long long w_batch) {
    const int U = 4;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long long per = 16 / sizeof(T), nv = k / per;
    const long long b = blockIdx.y;
    a += b * a_batch;
    if (XS) {
        for (long long t = threadIdx.x; t < nv * m; t += blockDim.x) {
            const long long i = t / nv;
            gv_xs[t] = gv_cached((const GvU4*)(a + i * lda) + (t - i * nv));
        }
        __syncthreads();
    }
    const long long j0 = ((long long)blockIdx.x * 8 + warp) * R;
    if (j0 >= n) return;
    float acc[R][M];
    #pragma unroll
    for (int r = 0; r < R; ++r)
        #pragma unroll
        for (int i = 0; i < M; ++i) acc[r][i] = 0.f;
    const GvU4* wr[R];
    #pragma unroll
    for (int r = 0; r < R; ++r)
        wr[r] = (const GvU4*)(w + b * w_batch + (j0 + r < n ? j0 + r : j0) * ldw);
    for (long long v0 = lane; v0 < nv; v0 += 32 * U) {
        GvU4 q[R][U];
        #pragma unroll
        for (int u = 0; u < U; ++u)
            #pragma unroll
            for (int r = 0; r < R; ++r)
                if (v0 + 32 * u < nv) q[r][u] = gv_stream(wr[r] + v0 + 32 * u);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            const long long v = v0 + 32 * u;
            if (v < nv) {
                #pragma unroll
                for (int i = 0; i < M; ++i) {
                    if (i < m) {
                        const GvU4 x = XS ? gv_xs[i * nv + v] : gv_cached((const GvU4*)(a + i * lda) + v);
                        #pragma unroll
                        for (int r = 0; r < R; ++r) acc[r][i] += gv_dot(q[r][u], x);
                    }
                }
            }
        }
    }
    #pragma unroll
    for (int r = 0; r < R; ++r)
        #pragma unroll
        for (int i = 0; i < M; ++i)
            #pragma unroll
            for (int d = 16; d > 0; d >>= 1) acc[r][i] += __shfl_xor_sync(0xffffffffu, acc[r][i], d);
    // Lane i writes row i (every lane holds every sum after the shuffles).
    #pragma unroll
    for (int r = 0; r < R; ++r) {
        float s = 0.f;
        #pragma unroll
        for (int i = 0; i < M; ++i)
            if (i == lane) s = acc[r][i];
        if (lane < m && j0 + r < n) out[(b * m + lane) * n + j0 + r] = st<T>(s);
    }
}

#define GEMV_ROWS(M, R, XS, SUFFIX) \
    extern "C" __global__ void __launch_bounds__(256) KNAME(gemv_rows_##SUFFIX)(T* __restrict__ out, \
        const T* __restrict__ a, const T* __restrict__ w, int m, long long n, long long k, \
        long long lda, long long ldw, long long a_batch, long long w_batch) { \
        gemv_rows<M, R, XS>(out, a, w, m, n, k, lda, ldw, a_batch, w_batch); \
    }
GEMV_ROWS(1, 1, false, m1)
GEMV_ROWS(2, 1, false, m2)
GEMV_ROWS(4, 2, true, m4s)
GEMV_ROWS(4, 2, false, m4)
GEMV_ROWS(8, 2, true, m8s)
GEMV_ROWS(8, 2, false, m8)
