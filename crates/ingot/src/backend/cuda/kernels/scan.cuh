// Scans (cumsum, cumprod, cummax, cummin, logcumsumexp) of a row-major array viewed as
// (outer, n, m) along the middle axis, as cpu/reduce.rs computes them. The includer defines
// TI, TO, ACC, INIT (the identity), SINIT (what a scan starts from: -0.0 for float sums),
// FOLD(a, x), COMB(a, b), FIN(a) and KNAME(k). An exclusive scan's first output is FIN(INIT).
//   col:  one thread per line (m > 1, or short lines): neighbouring threads read
//         neighbouring elements.
//   lb:   m == 1, lines cut into tiles of TILE positions in scan order, one pass with a
//         decoupled look-back (below). Tiles go through shared memory so global accesses
//         coalesce.

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

// ---- single pass (m == 1, several tiles a line): decoupled look-back ---------------------
// Each block takes the next tile in order (an atomic ticket, so every tile before it has
// started), publishes its own fold (flag 1), then walks back over the tiles before it a
// warp at a time, folding their published values until one has published the fold of its
// whole prefix (flag 2); it then publishes its own prefix fold and writes its outputs. The
// input is read once and the output written once (the three-kernel path read it twice).
// state: flags[lines * tiles] (zeroed), then the ticket counter; vals: two ACC per tile.

template <class A> DEV A shfl_dn_(A v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
DEV bool shfl_dn_(bool v, int d) { return __shfl_down_sync(0xffffffffu, (int)v, d) != 0; }

extern "C" __global__ void __launch_bounds__(256) KNAME(lb)(TO* __restrict__ out, const TI* __restrict__ x,
    int* state, ACC* vals, long long n, long long tiles, int rev, int incl) {
    __shared__ __align__(16) unsigned char stage[STAGE * (sizeof(TI) > sizeof(TO) ? sizeof(TI) : sizeof(TO))];
    __shared__ ACC sh[32];
    __shared__ ACC shp[256];
    __shared__ long long ticket;
    __shared__ ACC prefix;
    volatile int* flags = state;
    volatile ACC* vv = vals;
    if (threadIdx.x == 0) {
        long long total = (long long)gridDim.x;
        ticket = (long long)atomicAdd((unsigned*)(state + total), 1u);
    }
    __syncthreads();
    long long v = ticket;
    long long r = v / tiles, t = v % tiles;
    long long p0 = t * TILE;
    TI* sx = (TI*)stage;
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
    if (threadIdx.x == 0) {
        // The tile's fold; a first tile's is its whole prefix. One thread writes every
        // value and flag of this tile, so a flag never steps back from 2 to 1.
        vals[2 * v + (t == 0)] = shp[blockDim.x - 1];
        __threadfence();
        flags[v] = t == 0 ? 2 : 1;
    }
    if (t > 0 && threadIdx.x < 32) {
        int lane = threadIdx.x;
        bool has = false;
        ACC P = (ACC)(INIT);
        long long j = v - 1;
        long long first = v - t;  // the line's first tile
        while (true) {
            long long k = j - lane;
            int f = 2;
            if (k >= first) {
                do { f = flags[k]; } while (f == 0);
            }
            __threadfence();
            // The nearest lane whose tile holds a whole prefix (lanes past the line's
            // first tile count as one, contributing nothing); with none, all 32 lanes
            // fold their tiles' own values and the walk goes on.
            unsigned full = __ballot_sync(0xffffffffu, f == 2);
            int stop = full ? __ffs(full) - 1 : 31;
            bool take = lane <= stop && k >= first;
            ACC w = (ACC)(INIT);
            bool wh = false;
            // Volatile: another SM wrote these after this SM may have cached the line.
            if (take) { w = f == 2 ? vv[2 * k + 1] : vv[2 * k]; wh = true; }
            // Fold lanes 0..stop in order: a later tile's value goes on the right.
            for (int d = 16; d > 0; d >>= 1) {
                ACC o = shfl_dn_(w, d);
                bool oh = shfl_dn_(wh, d);
                if (lane + d < 32 && oh) { w = wh ? COMB(o, w) : o; wh = true; }
            }
            if (lane == 0 && wh) { P = has ? COMB(w, P) : w; has = true; }
            if (full) break;
            j -= 32;
        }
        if (lane == 0) {
            prefix = P;
            vals[2 * v + 1] = has ? COMB(P, shp[blockDim.x - 1]) : shp[blockDim.x - 1];
            __threadfence();
            flags[v] = 2;
        }
    }
    __syncthreads();
    bool has = false;
    ACC P = (ACC)(INIT);
    if (t > 0) { P = prefix; has = true; }
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
