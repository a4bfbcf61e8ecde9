// Gathers: take, take_along_axis and MLX-style gather. Indices are first resolved (negative
// ones wrapped, bounds checked) into element offsets `pos`, on the host when the indices are
// there, else by the `resolve` kernel, which records the first bad position in `bad` (and
// resolves it to position 0, so a gather that runs before the host sees `bad` reads safely).
// A module holds either the resolve kernel (the including source defines IT, the index
// dtype) or the gathers (T, elements moved as bits); KNAME(k) names the kernels.

#ifdef IT
DEV long long to_index(IT x) { return (long long)x; }
#ifdef INDEX_U64
// Past i64::MAX stays out of bounds, as on the CPU.
DEV long long to_index_u64(u64 x) { return x > 0x7fffffffffffffffull ? 0x7fffffffffffffffll : (long long)x; }
#define TO_INDEX to_index_u64
#else
#define TO_INDEX to_index
#endif

// pos[j] (+)= r * mult for index j of m (read through `is` over `ish`) resolved on an axis of
// length n where a slice of `size` must fit after it.
extern "C" __global__ void __launch_bounds__(256)
KNAME(resolve)(u64 idx, Strides is, Shape ish, long long m, long long n, long long size,
               long long mult, int accumulate, long long* __restrict__ pos,
               unsigned long long* __restrict__ bad) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= m) return;
    long long v = TO_INDEX(((const IT*)idx)[offset_of<long long>(j, ish, is)]);
    long long r = v < 0 ? (long long)((unsigned long long)v + (unsigned long long)n) : v;
    if (r < 0 || r >= n || r + size > n) {
        atomicMin(bad, (unsigned long long)j);
        // Position 0 instead, a safe read: a CUDA graph cannot wait for `bad` before the
        // gather runs (its host checks it afterwards); run as usual, the host does.
        r = 0;
    }
    pos[j] = (accumulate ? pos[j] : 0) + r * mult;
}
#endif

#ifdef T

// take / take_along_axis: output (outer, m, inner) row-major; element i reads
// src[off(o, c) + pos[j]] (per_elem: pos[i]) where off walks a's dims other than the axis.
extern "C" __global__ void __launch_bounds__(256)
KNAME(take)(T* __restrict__ out, u64 src, const long long* __restrict__ pos, Strides ss,
            Shape sh, long long m, long long inner, int per_elem, long long total) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long c = i % inner, t = i / inner;
    long long j = t % m, o = t / m;
    long long p = per_elem ? pos[i] : pos[j];
    out[i] = ((const T*)src)[offset_of<long long>(o * inner + c, sh, ss) + p];
}

// gather: output (B, slice) row-major; element i reads src[base[i / S] + off(i % S)].
extern "C" __global__ void __launch_bounds__(256)
KNAME(gather)(T* __restrict__ out, u64 src, const long long* __restrict__ base, Strides ss,
              Shape sh, long long slice, long long total) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    out[i] = ((const T*)src)[base[i / slice] + offset_of<long long>(i % slice, sh, ss)];
}
#endif
