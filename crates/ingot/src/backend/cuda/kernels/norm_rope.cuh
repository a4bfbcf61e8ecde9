// rms_norm, layer_norm and rope, as cpu/norm_rope.rs computes them. The includer defines T
// (storage), C (compute: float, or double for f64) and KNAME(k). Operands are row-major.
//   norm: one block per row of D. Block sums in C: the mean (layer_norm only), then the
//         squared deviations; then (x - mean) * (1 / sqrt(var + eps)) * w + b, rounded once.
//         The row is re-read from global memory (L1/L2) for each pass.
//   rope: one thread per rotated pair (angle computed once) or per passed-through feature:
//         items = rows * (dims/2 + D - dims). Position (offset + i) * scale, angle
//         position * inv_freq[j], inv_freq = base^(-2j/dims) in double, or the freqs input.

template <class A> DEV A nr_warp_sum(A v) {
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    return v;
}
// Every thread gets the block's sum; `sh` holds 32 values, reused after a barrier.
DEV C nr_block_sum(C v, C* sh) {
    v = nr_warp_sum(v);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : (C)0;
    return nr_warp_sum(v);
}

// Each pass issues four loads per thread before using any: a row is one block, and a
// loop that waited for every load took 17 us for one row of 4096 while decoding.
#define NR_PASS(BODY)                                                        \
    for (long long i0 = threadIdx.x; i0 < d; i0 += 4 * nt) {                 \
        C v[4];                                                              \
        _Pragma("unroll") for (int u = 0; u < 4; ++u) {                      \
            long long i = i0 + u * nt;                                       \
            v[u] = i < d ? ld(p[i]) : (C)0;                                  \
        }                                                                    \
        _Pragma("unroll") for (int u = 0; u < 4; ++u) {                      \
            long long i = i0 + u * nt;                                       \
            if (i < d) { BODY; }                                             \
        }                                                                    \
    }

extern "C" __global__ void __launch_bounds__(1024) KNAME(norm)(T* __restrict__ out,
    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, long long d,
    C eps, int center) {
    __shared__ C sh[32];
    const T* p = x + (long long)blockIdx.x * d;
    T* q = out + (long long)blockIdx.x * d;
    const C nd = (C)d;
    const long long nt = blockDim.x;
    C mean = 0;
    if (center) {
        C s = 0;
        NR_PASS(s += v[u])
        mean = nr_block_sum(s, sh) / nd;
    }
    C s2 = 0;
    NR_PASS(C c = v[u] - mean; s2 += c * c)
    const C var = nr_block_sum(s2, sh) / nd;
    const C inv = (C)1 / m_sqrt(var + eps);
    NR_PASS(C y = (v[u] - mean) * inv; if (w) y = y * ld(w[i]); if (b) y = y + ld(b[i]); q[i] = st<T>(y))
}

// offs: null (the offset is `fixed`), one int64 for every row, or one per batch row
// (`per_batch`: row r belongs to batch row r / rows_per_batch). freqs: null (use `base`) or
// dims/2 inverse frequencies in C.
extern "C" __global__ void __launch_bounds__(256) KNAME(rope)(T* __restrict__ out,
    const T* __restrict__ x, const long long* __restrict__ offs, const C* __restrict__ freqs,
    long long items, long long d, long long l, long long rows_per_batch, long long dims,
    long long fixed, int per_batch, int traditional, double base, C scale) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= items) return;
    const long long half = dims / 2;
    const long long per_row = half + d - dims;
    const long long r = t / per_row, k = t - r * per_row;
    const T* p = x + r * d;
    T* q = out + r * d;
    if (k >= half) {
        const long long j = dims + (k - half);
        q[j] = p[j];
        return;
    }
    long long o = fixed;
    if (offs) o = per_batch ? offs[r / rows_per_batch] : offs[0];
    const C pos = (C)(double)(long long)((unsigned long long)o + (unsigned long long)(r % l)) * scale;
    const C f = freqs ? freqs[k] : (C)pow(base, -2.0 * (double)k / (double)dims);
    const C th = pos * f;
    const C c = m_cos(th), s = m_sin(th);
    const long long i1 = traditional ? 2 * k : k;
    const long long i2 = traditional ? 2 * k + 1 : k + half;
    const C a = ld(p[i1]), bb = ld(p[i2]);
    q[i1] = st<T>(a * c - bb * s);
    q[i2] = st<T>(a * s + bb * c);
}
