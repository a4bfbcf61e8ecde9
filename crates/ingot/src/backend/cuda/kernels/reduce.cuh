// Reductions over any set of axes. The includer defines TI, TO, ACC, INIT, FOLD(a, x),
// COMB(a, b), FIN(a), KNAME(k) and ROFF(r) (the input offset of reduced position r):
//   row: one block per output (and split s of the reduced positions), threads striding
//        through them: for reductions along contiguous memory;
//   col: one thread per output: for reductions across rows (neighbouring outputs read
//        neighbouring elements, so loads coalesce);
//   roww: row over consecutive elements, one warp per output, for many short rows;
//   fin: combines the S partial accumulators of each output when the work was split.

template <class A> DEV A shfl_down(A v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
DEV bool shfl_down(bool v, int d) { return __shfl_down_sync(0xffffffffu, (int)v, d) != 0; }
DEV c64 shfl_down(c64 v, int d) { return cx(__shfl_down_sync(0xffffffffu, v.re, d), __shfl_down_sync(0xffffffffu, v.im, d)); }

// The reduced positions [r0, r1) of split s of S.
DEV void split_range(long long nred, int S, int s, long long& r0, long long& r1) {
    long long chunk = (nred + S - 1) / S;
    r0 = (long long)s * chunk;
    r1 = r0 + chunk < nred ? r0 + chunk : nred;
}

DEV ACC block_reduce(ACC a) {
    __shared__ ACC warps[32];
    for (int d = 16; d > 0; d >>= 1) a = COMB(a, shfl_down(a, d));
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) warps[w] = a;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    if (w == 0) {
        a = lane < nw ? warps[lane] : (ACC)(INIT);
        for (int d = 16; d > 0; d >>= 1) a = COMB(a, shfl_down(a, d));
    }
    return a;
}

extern "C" __global__ void __launch_bounds__(256) KNAME(row)(TO* out, ACC* part, const TI* __restrict__ x,
    long long nout, long long nred, int S, Shape ks, Strides kst, Shape rs, Strides rst) {
    long long o = blockIdx.x;
    int s = blockIdx.y;
    long long r0, r1;
    split_range(nred, S, s, r0, r1);
    long long base = offset_of<long long>(o, ks, kst);
    ACC a = INIT;
    for (long long r = r0 + threadIdx.x; r < r1; r += blockDim.x) {
        TI v = x[base + ROFF(r)];
        a = FOLD(a, v);
    }
    a = block_reduce(a);
    if (threadIdx.x == 0) {
        if (S == 1) out[o] = FIN(a);
        else part[o * S + s] = a;
    }
}

// row, for reduced positions that are consecutive elements: 16-byte loads, two in flight per
// thread, so enough bytes are in flight to keep HBM busy (scalar loads reach about a third
// of it). A scalar head runs up to the first 16-byte boundary and a scalar tail after the
// last whole vector.
struct __align__(16) VecTI { TI v[16 / sizeof(TI)]; };
extern "C" __global__ void __launch_bounds__(256) KNAME(rowc)(TO* out, ACC* part, const TI* __restrict__ x,
    long long nout, long long nred, int S, Shape ks, Strides kst, Shape rs, Strides rst) {
    constexpr int VEC = 16 / sizeof(TI);
    long long o = blockIdx.x;
    int s = blockIdx.y;
    long long r0, r1;
    split_range(nred, S, s, r0, r1);
    const TI* p = x + offset_of<long long>(o, ks, kst) + r0;
    long long len = r1 - r0;
    long long head = (long long)((16 - ((unsigned long long)p & 15)) & 15) / (long long)sizeof(TI);
    if (head > len) head = len;
    long long nv = (len - head) / VEC;
    ACC a = INIT, b = INIT;
    for (long long r = threadIdx.x; r < head; r += blockDim.x) a = FOLD(a, p[r]);
    const VecTI* pv = (const VecTI*)(p + head);
    long long i = threadIdx.x;
    for (; i + blockDim.x < nv; i += 2 * blockDim.x) {
        VecTI u = pv[i], w = pv[i + blockDim.x];
        #pragma unroll
        for (int k = 0; k < VEC; ++k) a = FOLD(a, u.v[k]);
        #pragma unroll
        for (int k = 0; k < VEC; ++k) b = FOLD(b, w.v[k]);
    }
    if (i < nv) {
        VecTI u = pv[i];
        #pragma unroll
        for (int k = 0; k < VEC; ++k) a = FOLD(a, u.v[k]);
    }
    for (long long r = head + nv * VEC + threadIdx.x; r < len; r += blockDim.x) a = FOLD(a, p[r]);
    a = COMB(a, b);
    a = block_reduce(a);
    if (threadIdx.x == 0) {
        if (S == 1) out[o] = FIN(a);
        else part[o * S + s] = a;
    }
}

// roww: rowc with one warp per output (and split), for many short rows: four 16-byte loads
// in flight per lane and no block barrier. One 256-thread block per 16 KiB row spent most
// of its time starting, synchronizing and draining.
extern "C" __global__ void __launch_bounds__(256) KNAME(roww)(TO* out, ACC* part, const TI* __restrict__ x,
    long long nout, long long nred, int S, Shape ks, Strides kst, Shape rs, Strides rst) {
    constexpr int VEC = 16 / sizeof(TI);
    long long o = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (o >= nout) return; // the whole warp
    int s = blockIdx.y;
    long long r0, r1;
    split_range(nred, S, s, r0, r1);
    const TI* p = x + offset_of<long long>(o, ks, kst) + r0;
    long long len = r1 - r0;
    long long head = (long long)((16 - ((unsigned long long)p & 15)) & 15) / (long long)sizeof(TI);
    if (head > len) head = len;
    long long nv = (len - head) / VEC;
    ACC a = INIT, b = INIT, c = INIT, e = INIT;
    for (long long r = lane; r < head; r += 32) a = FOLD(a, p[r]);
    const VecTI* pv = (const VecTI*)(p + head);
    long long i = lane;
    for (; i + 96 < nv; i += 128) {
        VecTI u0 = pv[i], u1 = pv[i + 32], u2 = pv[i + 64], u3 = pv[i + 96];
        #pragma unroll
        for (int k = 0; k < VEC; ++k) a = FOLD(a, u0.v[k]);
        #pragma unroll
        for (int k = 0; k < VEC; ++k) b = FOLD(b, u1.v[k]);
        #pragma unroll
        for (int k = 0; k < VEC; ++k) c = FOLD(c, u2.v[k]);
        #pragma unroll
        for (int k = 0; k < VEC; ++k) e = FOLD(e, u3.v[k]);
    }
    for (; i < nv; i += 32) {
        VecTI u = pv[i];
        #pragma unroll
        for (int k = 0; k < VEC; ++k) a = FOLD(a, u.v[k]);
    }
    for (long long r = head + nv * VEC + lane; r < len; r += 32) a = FOLD(a, p[r]);
    a = COMB(COMB(a, b), COMB(c, e));
    for (int d = 16; d > 0; d >>= 1) a = COMB(a, shfl_down(a, d));
    if (lane == 0) {
        if (S == 1) out[o] = FIN(a);
        else part[o * S + s] = a;
    }
}

extern "C" __global__ void __launch_bounds__(256) KNAME(col)(TO* out, ACC* part, const TI* __restrict__ x,
    long long nout, long long nred, int S, Shape ks, Strides kst, Shape rs, Strides rst) {
    long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= nout) return;
    int s = blockIdx.y;
    long long r0, r1;
    split_range(nred, S, s, r0, r1);
    long long base = offset_of<long long>(o, ks, kst);
    ACC a = INIT;
    // Unrolled so several rows' loads are in flight before the first fold waits on one.
    #pragma unroll 4
    for (long long r = r0; r < r1; ++r) {
        TI v = x[base + ROFF(r)];
        a = FOLD(a, v);
    }
    if (S == 1) out[o] = FIN(a);
    else part[o * S + s] = a;
}

// fin, one warp per output: its lanes stride through the S partials (a single thread
// walking hundreds of them was a chain of dependent L2 loads as long as the reduction).
extern "C" __global__ void __launch_bounds__(256) KNAME(fin)(TO* out, const ACC* part, long long nout, int S) {
    long long o = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (o >= nout) return; // the whole warp: o is the same for its 32 lanes
    ACC a = INIT;
    for (int s = lane; s < S; s += 32) a = COMB(a, part[o * S + s]);
    for (int d = 16; d > 0; d >>= 1) a = COMB(a, shfl_down(a, d));
    if (lane == 0) out[o] = FIN(a);
}
