// Scans (cumsum, cumprod, cummax, cummin, logcumsumexp) of a row-major array viewed as
// (outer, n, m) along the middle axis, as cpu/reduce.rs computes them. The includer defines
// TI, TO, ACC, INIT (the identity), SINIT (what a scan starts from: -0.0 for float sums),
// FOLD(a, x), COMB(a, b), FIN(a) and KNAME(k). An exclusive scan's first output is FIN(INIT).
//   col:  one thread per line (m > 1, or short lines): neighbouring threads read
//         neighbouring elements.
//   agg, tile: m == 1 (opt-in), lines cut into tiles of TILE positions in scan order, and each
//         line's tiles into `nb` runs of `per` consecutive tiles, one block a run (a few
//         thousand blocks in all, however long the line). agg folds each run (in memory
//         order: a fold does not care); tile folds the totals of the runs before its own
//         (a few thousand at most, from L2), then scans its run's tiles one after another.
//         Tiles go through shared memory so global accesses coalesce; whole aligned tiles
//         move in 16-byte words.
//   lb:   the same tiles in one pass (the default for m == 1): one block a tile, each
//         element read once and written once, a tile's prefix found by a decoupled
//         look-back that folds in a fixed order (see the kernel), so the bits are the same
//         on every run. INGOT_CUDA_SCAN=two takes agg + tile instead.

// Positions a thread scans in a tile; the includer sets it (scan.rs: as many as the static
// shared memory holds, at most 32, or INGOT_CUDA_SCAN_ITEMS).
#ifndef ITEMS
#define ITEMS 8
#endif
#define TILE (256 * ITEMS)
// Shared-memory index of tile position i: one spare slot every 32, so a warp's threads
// reading their ITEMS consecutive positions (stride ITEMS) hit 32 different banks instead
// of 4 (an 8-way conflict on every staged access).
#define SIDX(i) ((i) + ((i) >> 5))
#define STAGE (TILE + TILE / 32)

template <class A> DEV A shfl_up_(A v, int d) { return __shfl_up_sync(0xffffffffu, v, d); }
DEV bool shfl_up_(bool v, int d) { return __shfl_up_sync(0xffffffffu, (int)v, d) != 0; }
DEV c64 shfl_up_(c64 v, int d) { return cx(__shfl_up_sync(0xffffffffu, v.re, d), __shfl_up_sync(0xffffffffu, v.im, d)); }
template <class A> DEV A shfl_(A v, int l) { return __shfl_sync(0xffffffffu, v, l); }
DEV bool shfl_(bool v, int l) { return __shfl_sync(0xffffffffu, (int)v, l) != 0; }
DEV c64 shfl_(c64 v, int l) { return cx(__shfl_sync(0xffffffffu, v.re, l), __shfl_sync(0xffffffffu, v.im, l)); }

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

// Elements per 16-byte word.
#define VW (16 / (int)sizeof(TI))

// Stages the tile of positions p0.. of line xr in shared memory (scan order): whole tiles
// whose memory is 16-byte aligned move in words, the rest element by element. BATCH: all
// of a thread's words are loaded before any is stored, so they are in flight together (the
// loads and the shared stores might alias as far as the compiler knows); the two-pass
// tile kernel, which loops over tiles, takes 40-127 registers that way instead of 31.
template <bool BATCH> DEV void stage_in(TI* sx, const TI* xr, long long n, long long p0, int rev) {
    long long m0 = rev ? n - p0 - TILE : p0;
    if (p0 + TILE <= n && ((unsigned long long)(xr + m0) & 15) == 0) {
        const uint4* src = (const uint4*)(xr + m0);
        constexpr int WPT = TILE / VW / 256;
        auto put = [&](int w, uint4 q) {
            TI e[VW];
            memcpy(e, &q, 16);
            #pragma unroll
            for (int j = 0; j < VW; ++j) {
                int i = w * VW + j;
                sx[SIDX(rev ? TILE - 1 - i : i)] = e[j];
            }
        };
        if constexpr (BATCH && WPT >= 1 && TILE / VW % 256 == 0) {
            uint4 q[WPT > 0 ? WPT : 1];  // WPT is 0 for bytes in tiles of 8 or fewer a thread
            #pragma unroll
            for (int k = 0; k < WPT; ++k) q[k] = src[threadIdx.x + 256 * k];
            #pragma unroll
            for (int k = 0; k < WPT; ++k) put(threadIdx.x + 256 * k, q[k]);
        } else {
            for (int w = threadIdx.x; w < TILE / VW; w += blockDim.x) put(w, src[w]);
        }
    } else {
        for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
            long long p = p0 + i;
            if (p < n) sx[SIDX(i)] = xr[at_pos(p, n, rev)];
        }
    }
    __syncthreads();
}

// Stages the tile at p0 (stage_in) and folds each thread's ITEMS positions, then scans the
// threads' folds into shp (inclusive, 256 of them). Nothing is kept in registers: the
// write folds the staged positions again, so a larger tile costs shared memory only.
template <bool BATCH>
DEV void fold_tile(TI* sx, const TI* xr, ACC* sh, ACC* shp, long long n, long long p0, int rev) {
    stage_in<BATCH>(sx, xr, n, p0, rev);
    ACC a = SINIT;
    #pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
        int i = threadIdx.x * ITEMS + j;
        if (p0 + i < n) a = FOLD(a, sx[SIDX(i)]);
    }
    shp[threadIdx.x] = block_scan(a, sh);
    __syncthreads();
}

// The output staging of a tile: the input's own slots where the element sizes agree (each
// thread overwrites only the positions it has just read), else a buffer of its own.
#define SAME_SIZE (sizeof(TI) == sizeof(TO))
#define OSTAGE (SAME_SIZE ? 16 : STAGE * sizeof(TO))

// A scanned tile to the output: each thread's ITEMS positions from the fold before it (the
// tile's prefix `carry`, if `chas`, then the threads before it in shp) and its positions
// folded again from sx, staged in shared memory `so`, then written in 16-byte words where
// the tile is whole and aligned.
DEV void write_tile(TO* outr, const TI* sx, TO* so, const ACC* shp, ACC carry, bool chas,
    long long n, long long p0, int rev, int incl) {
    bool has = chas;
    ACC P = carry;
    if (threadIdx.x > 0) { ACC e = shp[threadIdx.x - 1]; P = has ? COMB(P, e) : e; has = true; }
    ACC a = SINIT;
    #pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
        int i = threadIdx.x * ITEMS + j;
        ACC before = a;
        if (p0 + i < n) a = FOLD(a, sx[SIDX(i)]);
        TO y;
        if (incl) y = FIN(has ? COMB(P, a) : a);
        else if (j == 0) y = has ? FIN(P) : FIN((ACC)(INIT));
        else y = FIN(has ? COMB(P, before) : before);
        so[SIDX(i)] = y;
    }
    __syncthreads();
    long long m0 = rev ? n - p0 - TILE : p0;
    if (p0 + TILE <= n && ((unsigned long long)(outr + m0) & 15) == 0) {
        const int VO = 16 / (int)sizeof(TO);
        uint4* dst = (uint4*)(outr + m0);
        for (int w = threadIdx.x; w < TILE / VO; w += blockDim.x) {
            TO e[VO];
            #pragma unroll
            for (int j = 0; j < VO; ++j) {
                int i = w * VO + j;
                e[j] = so[SIDX(rev ? TILE - 1 - i : i)];
            }
            uint4 q;
            memcpy(&q, e, 16);
            dst[w] = q;
        }
    } else {
        for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
            long long p = p0 + i;
            if (p < n) outr[at_pos(p, n, rev)] = so[SIDX(i)];
        }
    }
}

// part[r][b]: the fold of run b of line r (`per` tiles), over its memory in any order.
extern "C" __global__ void __launch_bounds__(256) KNAME(agg)(ACC* part, const TI* __restrict__ x,
    long long n, int rev, long long per) {
    __shared__ ACC sh[32];
    long long r = blockIdx.x, nb = gridDim.y, b = blockIdx.y;
    const TI* xr = x + r * n;
    long long p0 = b * per * TILE, p1 = p0 + per * TILE < n ? p0 + per * TILE : n;
    long long m0 = rev ? n - p1 : p0, len = p1 - p0;
    long long head = (long long)(((16 - ((unsigned long long)(xr + m0) & 15)) & 15) / sizeof(TI));
    if (head > len) head = len;
    long long words = (len - head) / VW;
    ACC a = SINIT;
    for (long long i = threadIdx.x; i < head; i += blockDim.x) a = FOLD(a, xr[m0 + i]);
    const uint4* src = (const uint4*)(xr + m0 + head);
    #pragma unroll 4
    for (long long w = threadIdx.x; w < words; w += blockDim.x) {
        uint4 q = src[w];
        TI e[VW];
        memcpy(e, &q, 16);
        #pragma unroll
        for (int j = 0; j < VW; ++j) a = FOLD(a, e[j]);
    }
    for (long long i = head + words * VW + threadIdx.x; i < len; i += blockDim.x) a = FOLD(a, xr[m0 + i]);
    a = block_scan(a, sh);
    if (threadIdx.x == blockDim.x - 1) part[r * nb + b] = a;
}

// Run b of line r: its tiles in order, each scanned in shared memory and started from the
// fold of everything before it (the run totals before b, then this run's earlier tiles).
extern "C" __global__ void __launch_bounds__(256) KNAME(tile)(TO* __restrict__ out, const TI* __restrict__ x,
    const ACC* part, long long n, int rev, int incl, long long per) {
    __shared__ __align__(16) unsigned char stage[STAGE * sizeof(TI)];
    __shared__ __align__(16) unsigned char ostage[OSTAGE];
    __shared__ ACC sh[32];
    __shared__ ACC shp[256];
    TI* sx = (TI*)stage;
    TO* so = SAME_SIZE ? (TO*)stage : (TO*)ostage;
    // Runs last to first: the agg pass read the line first to last, so the first blocks
    // here find their runs still in L2 (a 16M f32 line is 64 MB, an H100's L2 50 MB).
    long long r = blockIdx.x, nb = gridDim.y, b = nb - 1 - blockIdx.y;
    long long tiles = (n + TILE - 1) / TILE;
    long long t0 = b * per, t1 = t0 + per < tiles ? t0 + per : tiles;
    const TI* xr = x + r * n;
    TO* outr = out + r * n;
    // carry: the fold of every position before the current tile, if there are any. For
    // the first tile, the totals of the runs before this one, folded here (a thread every
    // 256th total, then across the block: the same order on every run) rather than by a
    // kernel of their own between the passes.
    bool chas = b > 0;
    ACC carry = INIT;
    if (chas) {
        ACC a = SINIT;
        for (long long i = threadIdx.x; i < b; i += blockDim.x) a = COMB(a, part[r * nb + i]);
        a = block_scan(a, sh);
        if (threadIdx.x == blockDim.x - 1) shp[0] = a;
        __syncthreads();
        carry = shp[0];
        __syncthreads();
    }
    for (long long t = t0; t < t1; ++t) {
        long long p0 = t * TILE;
        fold_tile<false>(sx, xr, sh, shp, n, p0, rev);
        ACC total = shp[blockDim.x - 1];
        write_tile(outr, sx, so, shp, carry, chas, n, p0, rev, incl);
        carry = chas ? COMB(carry, total) : total;
        chas = true;
        // The next tile's staging reuses the shared memory just read.
        __syncthreads();
    }
}

// A value published once by one block and read by others (lb_get): the value's 8-byte
// slot, then, after a fence, its flag.
DEV void publish(unsigned* flag, unsigned long long* slot, ACC v) {
    unsigned long long w = 0;
    memcpy(&w, &v, sizeof(ACC));
    *(volatile unsigned long long*)slot = w;
    __threadfence();
    *(volatile unsigned*)flag = 1u;
}

// ---- lb: one pass with a decoupled look-back, the same bits on every run --------------
// One block a tile, tiles taken in order from a counter (so every tile a block looks back
// at belongs to a block that is running or done). Tile i of the launch (line i / tiles)
// publishes its fold ("aggregate") as soon as it has it, then its inclusive prefix: the
// fold of its line up to its end. Warp 0 finds the nearest tile j before its own with an
// inclusive prefix, waiting only for aggregates, and starts from it. The fold is always
// taken left to right, incl(j), then agg(j+1), ..., agg(t-1), so by induction every
// inclusive prefix is fold_left(agg(0), ..., agg(t)) whichever j a block found: results
// do not depend on timing (folding a window in any other order would give bits that
// depend on where the look-back stopped).
// Status of tile i, kind k (0: aggregate, 1: inclusive prefix): where ACC fits 4 bytes,
// one 8-byte word st[2i + k] holding a ready bit over the value, written and read whole;
// otherwise a flag word fl[2i + k] over an 8-byte value st[2i + k], ordered by fences.
// Everything starts zeroed (not ready).
#define LB_PACKED (sizeof(ACC) <= 4)
static_assert(sizeof(ACC) <= 8, "scan accumulators are at most 8 bytes");

DEV void lb_put(unsigned* fl, unsigned long long* st, long long i, ACC v) {
    if constexpr (LB_PACKED) {
        unsigned long long bits = 0;
        memcpy(&bits, &v, sizeof(ACC));
        *(volatile unsigned long long*)(st + i) = (1ull << 32) | bits;
    } else {
        publish(fl + i, st + i, v);
    }
}
DEV bool lb_get(const unsigned* fl, const unsigned long long* st, long long i, ACC* v) {
    if constexpr (LB_PACKED) {
        unsigned long long w = *(const volatile unsigned long long*)(st + i);
        if (!(w >> 32)) return false;
        memcpy(v, &w, sizeof(ACC));  // the value's bytes are the word's low ones
        return true;
    }
    if (*(const volatile unsigned*)(fl + i) == 0u) return false;
    __threadfence();
    unsigned long long w = *(const volatile unsigned long long*)(st + i);
    memcpy(v, &w, sizeof(ACC));
    return true;
}
DEV void lb_pause(unsigned& ns) {
#if __CUDA_ARCH__ >= 700
    __nanosleep(ns);
    ns = ns < 256 ? ns * 2 : ns;
#endif
}

// Warp 0 of tile t > 0 of the line whose tiles' statuses start at index 2 * base: the fold
// of every position before the tile, in every lane. Window w holds tiles t - 32 (w + 1)
// .. t - 32 w - 1, lane l tile t - 32 w - 1 - l.
DEV ACC lookback(const unsigned* fl, const unsigned long long* st, long long base, long long t) {
    const unsigned FULL = 0xffffffffu;
    int lane = threadIdx.x & 31;
    ACC first = INIT;
    for (long long w = 0;; ++w) {
        long long i = t - 32 * w - 1 - lane;
        ACC a = INIT, p = INIT;
        bool isp = false;
        if (i >= 0) {
            unsigned ns = 32;
            for (;;) {
                if (lb_get(fl, st, 2 * (base + i) + 1, &p)) { isp = true; break; }
                if (lb_get(fl, st, 2 * (base + i), &a)) break;
                lb_pause(ns);
            }
        }
        if (w == 0) first = a;
        unsigned pb = __ballot_sync(FULL, isp);
        if (!pb) continue;
        // The nearest prefix, then the aggregates after it in tile order: this window's
        // lanes below it, the windows between re-read (they are ready), then window 0's.
        int k = __ffs(pb) - 1;
        ACC acc = shfl_(p, k);
        for (int l = k - 1; l >= 0; --l) acc = COMB(acc, shfl_(a, l));
        for (long long v = w - 1; v >= 1; --v) {
            long long j = t - 32 * v - 1 - lane;
            ACC b = INIT;
            lb_get(fl, st, 2 * (base + j), &b);
            for (int l = 31; l >= 0; --l) acc = COMB(acc, shfl_(b, l));
        }
        if (w > 0)
            for (int l = 31; l >= 0; --l) acc = COMB(acc, shfl_(first, l));
        return acc;
    }
}

// sync: the tile counter, then the flags (8-byte accumulators); st: the statuses. All
// zeroed before the launch. tiles: tiles a line.
extern "C" __global__ void __launch_bounds__(256) KNAME(lb)(TO* __restrict__ out, const TI* __restrict__ x,
    unsigned* sync, unsigned long long* st, long long n, long long tiles, int rev, int incl) {
    __shared__ __align__(16) unsigned char stage[STAGE * sizeof(TI)];
    __shared__ __align__(16) unsigned char ostage[OSTAGE];
    __shared__ ACC sh[32];
    __shared__ ACC shp[256];
    __shared__ ACC s_excl;
    __shared__ long long s_id;
    TI* sx = (TI*)stage;
    TO* so = SAME_SIZE ? (TO*)stage : (TO*)ostage;
    if (threadIdx.x == 0) s_id = (long long)atomicAdd(sync, 1u);
    __syncthreads();
    long long id = s_id, r = id / tiles, t = id % tiles;
    const unsigned* fl = sync + 1;
    const TI* xr = x + r * n;
    TO* outr = out + r * n;
    long long p0 = t * TILE;
    fold_tile<true>(sx, xr, sh, shp, n, p0, rev);
    ACC agg = shp[blockDim.x - 1];
    if (threadIdx.x == 0) {
        // Tile 0's aggregate is its inclusive prefix; the others' prefix comes later.
        lb_put(sync + 1, st, 2 * id + (t == 0), agg);
    }
    if (t > 0 && threadIdx.x < 32) {
        ACC e = lookback(fl, st, r * tiles, t);
        if (threadIdx.x == 0) {
            lb_put(sync + 1, st, 2 * id + 1, COMB(e, agg));
            s_excl = e;
        }
    }
    __syncthreads();
    write_tile(outr, sx, so, shp, t > 0 ? s_excl : (ACC)(INIT), t > 0, n, p0, rev, incl);
}
