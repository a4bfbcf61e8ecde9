// Reductions over any set of axes. The includer defines TI, TO, ACC, INIT, FOLD(a, x),
// COMB(a, b), FIN(a), KNAME(k) and ROFF(r) (the input offset of reduced position r):
//   row: one block per output (and split s of the reduced positions), threads striding
//        through them: for reductions along contiguous memory;
//   col: one thread per output: for reductions across rows (neighbouring outputs read
//        neighbouring elements, so loads coalesce);
//   fin: combines the S partial accumulators of each output when the work was split.

template <class A> DEV A shfl_down(A v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
DEV bool shfl_down(bool v, int d) { return __shfl_down_sync(0xffffffffu, (int)v, d) != 0; }

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

extern "C" __global__ void __launch_bounds__(256) KNAME(col)(TO* out, ACC* part, const TI* __restrict__ x,
    long long nout, long long nred, int S, Shape ks, Strides kst, Shape rs, Strides rst) {
    long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= nout) return;
    int s = blockIdx.y;
    long long r0, r1;
    split_range(nred, S, s, r0, r1);
    long long base = offset_of<long long>(o, ks, kst);
    ACC a = INIT;
    for (long long r = r0; r < r1; ++r) {
        TI v = x[base + ROFF(r)];
        a = FOLD(a, v);
    }
    if (S == 1) out[o] = FIN(a);
    else part[o * S + s] = a;
}

extern "C" __global__ void KNAME(fin)(TO* out, const ACC* part, long long nout, int S) {
    long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= nout) return;
    ACC a = part[o * S];
    for (int s = 1; s < S; ++s) a = COMB(a, part[o * S + s]);
    out[o] = FIN(a);
}
