// argmax / argmin along one axis, as cpu/reduce.rs computes them: the first position of the
// best value, where a NaN beats every number and the first NaN wins. The includer defines
// T (storage type), C (compare type), MAX (1 for argmax) and KNAME(k).
//   row: one block per output, threads striding along the axis;
//   col: one thread per output, for axes whose neighbouring outputs are neighbours in memory.

// Whether (v, i) should replace (b, bi).
DEV bool better(C v, long long i, C b, long long bi) {
    bool vn = v != v, bn = b != b;
    if (vn || bn) return vn && (!bn || i < bi);
    if (v == b) return i < bi;
    return MAX ? v > b : v < b;
}

template <class A> DEV A shfl_x(A v, int d) { return __shfl_xor_sync(0xffffffffu, v, d); }
DEV bool shfl_x(bool v, int d) { return __shfl_xor_sync(0xffffffffu, (int)v, d) != 0; }

// Up to 1024 threads; each issues 8 loads before comparing any (one load per compare
// waited for memory every iteration: 227 us for a 128K-entry row).
extern "C" __global__ void __launch_bounds__(1024) KNAME(row)(long long* out, const T* __restrict__ x,
    long long nout, long long n, long long step, Shape ks, Strides kst) {
    __shared__ C sv[32];
    __shared__ long long si[32];
    long long o = blockIdx.x;
    const T* p = x + offset_of<long long>(o, ks, kst);
    C b = ld(p[0]);
    long long bi = 0;
    const long long nt = blockDim.x;
    for (long long k0 = threadIdx.x; k0 < n; k0 += 8 * nt) {
        C v[8];
        #pragma unroll
        for (int u = 0; u < 8; ++u) {
            long long k = k0 + u * nt;
            v[u] = k < n ? ld(p[k * step]) : b;
        }
        #pragma unroll
        for (int u = 0; u < 8; ++u) {
            long long k = k0 + u * nt;
            if (k < n && better(v[u], k, b, bi)) { b = v[u]; bi = k; }
        }
    }
    for (int d = 16; d > 0; d >>= 1) {
        C v = shfl_x(b, d);
        long long i = __shfl_xor_sync(0xffffffffu, bi, d);
        if (better(v, i, b, bi)) { b = v; bi = i; }
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    if (lane == 0) { sv[w] = b; si[w] = bi; }
    __syncthreads();
    if (w == 0) {
        b = sv[lane < nw ? lane : 0];
        bi = si[lane < nw ? lane : 0];
        for (int d = 16; d > 0; d >>= 1) {
            C v = shfl_x(b, d);
            long long i = __shfl_xor_sync(0xffffffffu, bi, d);
            if (better(v, i, b, bi)) { b = v; bi = i; }
        }
        if (lane == 0) out[o] = bi;
    }
}

extern "C" __global__ void __launch_bounds__(256) KNAME(col)(long long* out, const T* __restrict__ x,
    long long nout, long long n, long long step, Shape ks, Strides kst) {
    long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= nout) return;
    const T* p = x + offset_of<long long>(o, ks, kst);
    C b = ld(p[0]);
    long long bi = 0;
    for (long long k = 1; k < n; ++k) {
        C v = ld(p[k * step]);
        if (better(v, k, b, bi)) { b = v; bi = k; }
    }
    out[o] = bi;
}
