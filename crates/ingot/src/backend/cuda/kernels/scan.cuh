// Scans (cumsum, cumprod, cummax, cummin, logcumsumexp) of a row-major array viewed as
// (outer, n, m) along the middle axis, as cpu/reduce.rs computes them. The includer defines
// TI, TO, ACC, INIT (the identity), SINIT (what a scan starts from: -0.0 for float sums),
// FOLD(a, x), COMB(a, b), FIN(a) and KNAME(k). An exclusive scan's first output is FIN(INIT).
//   col:  one thread per line (m > 1, or short lines): neighbouring threads read
//         neighbouring elements.
//   agg, pre, tile: m == 1, lines cut into tiles of TILE positions in scan order. agg folds
//         each tile, pre scans the tile totals of each line, tile scans a tile starting from
//         the totals before it. Tiles go through shared memory so global accesses coalesce.

#define ITEMS 8
#define TILE (256 * ITEMS)
// Shared-memory index of tile position i: one spare slot every 32, so a warp's threads
// reading their ITEMS consecutive positions (stride ITEMS) hit 32 different banks instead
// of 4 (an 8-way conflict on every staged access).
#define SIDX(i) ((i) + ((i) >> 5))
#define STAGE (TILE + TILE / 32)

template <class A> DEV A shfl_up_(A v, int d) { return __shfl_up_sync(0xffffffffu, v, d); }
DEV bool shfl_up_(bool v, int d) { return __shfl_up_sync(0xffffffffu, (int)v, d) != 0; }

// Inclusive scan of one value per thread over the block (blockDim.x == 256); sh holds 32.
DEV ACC block_scan(ACC v, ACC* sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int d = 1; d < 32; d <<= 1) {
        ACC o = shfl_up_(v, d);
        if (lane >= d) v = COMB(o, v);
    }
    __syncthreads();
    if (lane == 31) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        ACC t = lane < 8 ? sh[lane] : (ACC)(INIT);
        for (int d = 1; d < 32; d <<= 1) {
            ACC o = shfl_up_(t, d);
            if (lane >= d) t = COMB(o, t);
        }
        if (lane < 8) sh[lane] = t;
    }
    __syncthreads();
    return w > 0 ? COMB(sh[w - 1], v) : v;
}

DEV long long at_pos(long long p, long long n, int rev) { return rev ? n - 1 - p : p; }

extern "C" __global__ void __launch_bounds__(256) KNAME(col)(TO* __restrict__ out, const TI* __restrict__ x,
    long long lines, long long n, long long m, int rev, int incl) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= lines) return;
    long long base = (t / m) * n * m + t % m;
    ACC a = SINIT;
    for (long long s = 0; s < n; ++s) {
        long long at = base + at_pos(s, n, rev) * m;
        if (incl) {
            a = FOLD(a, x[at]);
            out[at] = FIN(a);
        } else {
            out[at] = s == 0 ? FIN((ACC)(INIT)) : FIN(a);
            a = FOLD(a, x[at]);
        }
    }
}

// Stages tile t of line r in shared memory (scan order).
DEV void stage_in(TI* sx, const TI* xr, long long n, long long p0, int rev) {
    for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
        long long p = p0 + i;
        if (p < n) sx[SIDX(i)] = xr[at_pos(p, n, rev)];
    }
    __syncthreads();
}

extern "C" __global__ void __launch_bounds__(256) KNAME(agg)(ACC* part, const TI* __restrict__ x,
    long long n, int rev) {
    __shared__ __align__(16) unsigned char stage[STAGE * sizeof(TI)];
    __shared__ ACC sh[32];
    TI* sx = (TI*)stage;
    long long r = blockIdx.x, tiles = gridDim.y, t = blockIdx.y;
    long long p0 = t * TILE;
    stage_in(sx, x + r * n, n, p0, rev);
    ACC a = SINIT;
    for (int j = 0; j < ITEMS; ++j) {
        int i = threadIdx.x * ITEMS + j;
        if (p0 + i < n) a = FOLD(a, sx[SIDX(i)]);
    }
    a = block_scan(a, sh);
    if (threadIdx.x == blockDim.x - 1) part[r * tiles + t] = a;
}

// In place: part[r][t] becomes the fold of tiles 0..=t of line r. Each thread folds a run of
// consecutive totals, one block scan joins the runs, and each thread rewrites its run from
// the fold before it: one barrier-bound step instead of one per 256 totals (which made
// this kernel most of a long cumsum's time).
extern "C" __global__ void __launch_bounds__(256) KNAME(pre)(ACC* part, long long tiles) {
    __shared__ ACC sh[32];
    __shared__ ACC shp[256];
    ACC* pr = part + (long long)blockIdx.x * tiles;
    long long per = (tiles + blockDim.x - 1) / blockDim.x;
    long long c0 = threadIdx.x * per, c1 = c0 + per < tiles ? c0 + per : tiles;
    ACC a = SINIT;
    for (long long i = c0; i < c1; ++i) a = COMB(a, pr[i]);
    shp[threadIdx.x] = block_scan(a, sh);
    __syncthreads();
    bool has = threadIdx.x > 0;
    ACC P = has ? shp[threadIdx.x - 1] : (ACC)(INIT);
    for (long long i = c0; i < c1; ++i) {
        P = has ? COMB(P, pr[i]) : pr[i];
        has = true;
        pr[i] = P;
    }
}

extern "C" __global__ void __launch_bounds__(256) KNAME(tile)(TO* __restrict__ out, const TI* __restrict__ x,
    const ACC* part, long long n, int rev, int incl) {
    __shared__ __align__(16) unsigned char stage[STAGE * (sizeof(TI) > sizeof(TO) ? sizeof(TI) : sizeof(TO))];
    __shared__ ACC sh[32];
    __shared__ ACC shp[256];
    TI* sx = (TI*)stage;
    long long r = blockIdx.x, tiles = gridDim.y, t = blockIdx.y;
    long long p0 = t * TILE;
    stage_in(sx, x + r * n, n, p0, rev);
    ACC loc[ITEMS];
    ACC a = SINIT;
    #pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
        int i = threadIdx.x * ITEMS + j;
        if (p0 + i < n) a = FOLD(a, sx[SIDX(i)]);
        loc[j] = a;
    }
    ACC inc = block_scan(a, sh);
    shp[threadIdx.x] = inc;
    __syncthreads();
    // P: the fold of every position before this thread's first one, if there are any.
    bool has = false;
    ACC P = (ACC)(INIT);
    if (t > 0) { P = part[r * tiles + t - 1]; has = true; }
    if (threadIdx.x > 0) { ACC e = shp[threadIdx.x - 1]; P = has ? COMB(P, e) : e; has = true; }
    TO* so = (TO*)stage;
    #pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
        int i = threadIdx.x * ITEMS + j;
        TO y;
        if (incl) y = FIN(has ? COMB(P, loc[j]) : loc[j]);
        else if (j == 0) y = has ? FIN(P) : FIN((ACC)(INIT));
        else y = FIN(has ? COMB(P, loc[j - 1]) : loc[j - 1]);
        so[SIDX(i)] = y;
    }
    __syncthreads();
    TO* outr = out + r * n;
    for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
        long long p = p0 + i;
        if (p < n) outr[at_pos(p, n, rev)] = so[SIDX(i)];
    }
}
