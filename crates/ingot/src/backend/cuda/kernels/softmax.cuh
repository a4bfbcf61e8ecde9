// Softmax and log-softmax along one axis of a row-major array viewed as (outer, len, inner),
// as cpu/misc.rs computes them: m = max (NaN if any element is NaN), s = sum exp(x - m),
// then exp(x - m) / s, or (x - m) - log(s). The includer defines T (storage type), C (compute
// type), LOG (0 or 1) and KNAME(k).
//   row: inner == 1, one block per row; the second and third passes over the row mostly
//        hit L2, so HBM sees one read and one write.
//   rows: row with the row kept in shared memory, for rows of up to 48 KiB;
//   col: inner > 1, one thread per (outer, inner) line; neighbouring threads read
//        neighbouring elements.

#define K_INF __int_as_float(0x7f800000)
#define K_NAN __int_as_float(0x7fc00000)

template <class A> DEV A warp_max(A v) {
    for (int d = 16; d > 0; d >>= 1) { A o = __shfl_xor_sync(0xffffffffu, v, d); v = o > v ? o : v; }
    return v;
}
template <class A> DEV A warp_sum(A v) {
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    return v;
}
// Every thread gets the block's result. `sh` holds 32 values; the caller's barrier
// before reuse is the one at the start of the next call.
template <class A, bool MAX> DEV A block_all(A v, A* sh) {
    v = MAX ? warp_max(v) : warp_sum(v);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : (MAX ? -(A)K_INF : (A)0);
    return MAX ? warp_max(v) : warp_sum(v);
}

// The row's max (NaN if it holds one) and sum of exp(x - max), in every thread.
DEV void row_stats(const T* p, long long len, C* sh, C& m, C& s) {
    m = -(C)K_INF;
    int nan = 0;
    for (long long i = threadIdx.x; i < len; i += blockDim.x) {
        C v = ld(p[i]);
        nan |= v != v;
        m = v > m ? v : m;
    }
    m = block_all<C, true>(m, sh);
    if (__syncthreads_or(nan)) m = (C)K_NAN;
    s = 0;
    for (long long i = threadIdx.x; i < len; i += blockDim.x) s += m_exp(ld(p[i]) - m);
    s = block_all<C, false>(s, sh);
}

extern "C" __global__ void __launch_bounds__(256) KNAME(row)(T* __restrict__ out, const T* __restrict__ x,
    long long rows, long long len) {
    __shared__ C sh[32];
    const T* p = x + (long long)blockIdx.x * len;
    T* q = out + (long long)blockIdx.x * len;
    C m, s;
    row_stats(p, len, sh, m, s);
    if (LOG) {
        C ls = m_log(s);
        for (long long i = threadIdx.x; i < len; i += blockDim.x) q[i] = st<T>((ld(p[i]) - m) - ls);
    } else {
        C r = (C)1 / s;
        for (long long i = threadIdx.x; i < len; i += blockDim.x) q[i] = st<T>(m_exp(ld(p[i]) - m) * r);
    }
}

// rows: row for rows that fit in shared memory (the caller passes len * sizeof(C) bytes of
// it): the row is read from HBM once and exp computed once per element. Same arithmetic in
// the same order as row (max is order-free; the sum runs over the same elements per
// thread), so the results are the same bits.
extern "C" __global__ void __launch_bounds__(256) KNAME(rows)(T* __restrict__ out, const T* __restrict__ x,
    long long rows, long long len) {
    extern __shared__ __align__(16) unsigned char row_smem[];
    C* r = (C*)row_smem;
    __shared__ C sh[32];
    const T* p = x + (long long)blockIdx.x * len;
    T* q = out + (long long)blockIdx.x * len;
    C m = -(C)K_INF;
    int nan = 0;
    // The first pass moves 16 bytes per load when the row allows it (the later passes read
    // shared memory; block_all's barriers order them after every thread's stores).
    constexpr int VEC = 16 / sizeof(T);
    struct __align__(16) VT { T v[VEC]; };
    if (len % VEC == 0 && ((unsigned long long)p & 15) == 0) {
        const VT* pv = (const VT*)p;
        #pragma unroll 2
        for (long long j = threadIdx.x; j < len / VEC; j += blockDim.x) {
            VT u = pv[j];
            #pragma unroll
            for (int k = 0; k < VEC; ++k) {
                C v = ld(u.v[k]);
                r[j * VEC + k] = v;
                nan |= v != v;
                m = v > m ? v : m;
            }
        }
    } else {
        #pragma unroll 4
        for (long long i = threadIdx.x; i < len; i += blockDim.x) {
            C v = ld(p[i]);
            r[i] = v;
            nan |= v != v;
            m = v > m ? v : m;
        }
    }
    m = block_all<C, true>(m, sh);
    if (__syncthreads_or(nan)) m = (C)K_NAN;
    C s = 0;
    for (long long i = threadIdx.x; i < len; i += blockDim.x) {
        C e = m_exp(r[i] - m);
        if (!LOG) r[i] = e;
        s += e;
    }
    s = block_all<C, false>(s, sh);
    if (LOG) {
        C ls = m_log(s);
        for (long long i = threadIdx.x; i < len; i += blockDim.x) q[i] = st<T>((r[i] - m) - ls);
    } else {
        C rc = (C)1 / s;
        for (long long i = threadIdx.x; i < len; i += blockDim.x) q[i] = st<T>(r[i] * rc);
    }
}

extern "C" __global__ void __launch_bounds__(256) KNAME(col)(T* __restrict__ out, const T* __restrict__ x,
    long long lines, long long len, long long inner) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= lines) return;
    long long base = (t / inner) * len * inner + t % inner;
    const T* p = x + base;
    T* q = out + base;
    C m = -(C)K_INF;
    bool nan = false;
    for (long long l = 0; l < len; ++l) {
        C v = ld(p[l * inner]);
        nan |= v != v;
        m = v > m ? v : m;
    }
    if (nan) m = (C)K_NAN;
    C s = 0;
    for (long long l = 0; l < len; ++l) s += m_exp(ld(p[l * inner]) - m);
    if (LOG) {
        C ls = m_log(s);
        for (long long l = 0; l < len; ++l) q[l * inner] = st<T>((ld(p[l * inner]) - m) - ls);
    } else {
        C r = (C)1 / s;
        for (long long l = 0; l < len; ++l) q[l * inner] = st<T>(m_exp(ld(p[l * inner]) - m) * r);
    }
}

// Softmax cross entropy over rows of len classes with int64 targets (ops/fast/cross_entropy.rs,
// as cpu/misc.rs computes it): one block per row; a negative target marks an ignored row
// (loss 0, gradient 0); one past the classes writes NaN and records the first such row in
// `bad` (initialized to ~0), which the host turns into an error.
//   ce:      loss[r] = (m - x[t]) + log(s), in C;
//   ce_grad: out = (exp(x - m) / s - [i == t]) * g[r], in T: the logits read twice more,
//            mostly from L2, and no softmax kept between the passes.
extern "C" __global__ void __launch_bounds__(256) KNAME(ce)(C* __restrict__ loss, const T* __restrict__ x,
    const long long* __restrict__ tgt, long long rows, long long len, unsigned long long* bad) {
    __shared__ C sh[32];
    long long r = blockIdx.x, t = tgt[r];
    if (t < 0 || t >= len) {  // the whole block leaves together
        if (threadIdx.x == 0) {
            loss[r] = t < 0 ? (C)0 : (C)K_NAN;
            if (t >= len) atomicMin(bad, (unsigned long long)r);
        }
        return;
    }
    const T* p = x + r * len;
    C m, s;
    row_stats(p, len, sh, m, s);
    if (threadIdx.x == 0) loss[r] = (m - ld(p[t])) + m_log(s);
}

extern "C" __global__ void __launch_bounds__(256) KNAME(ce_grad)(T* __restrict__ out, const T* __restrict__ x,
    const long long* __restrict__ tgt, const C* __restrict__ g, long long rows, long long len,
    unsigned long long* bad) {
    __shared__ C sh[32];
    long long r = blockIdx.x, t = tgt[r];
    T* q = out + r * len;
    if (t < 0 || t >= len) {
        if (t >= len && threadIdx.x == 0) atomicMin(bad, (unsigned long long)r);
        C z = t < 0 ? (C)0 : (C)K_NAN;
        for (long long i = threadIdx.x; i < len; i += blockDim.x) q[i] = st<T>(z);
        return;
    }
    const T* p = x + r * len;
    C m, s;
    row_stats(p, len, sh, m, s);
    C rs = (C)1 / s, gr = g[r];
    for (long long i = threadIdx.x; i < len; i += blockDim.x) {
        C e = m_exp(ld(p[i]) - m) * rs;
        if (i == t) e -= (C)1;
        q[i] = st<T>(e * gr);
    }
}
