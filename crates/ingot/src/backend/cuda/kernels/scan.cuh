// Scans (cumsum, cumprod, cummax, cummin, logcumsumexp) of a row-major array viewed as
// (outer, n, m) along the middle axis, as cpu/reduce.rs computes them. The includer defines
// TI, TO, ACC, INIT (the identity), SINIT (what a scan starts from: -0.0 for float sums),
// FOLD(a, x), COMB(a, b), FIN(a) and KNAME(k). An exclusive scan's first output is FIN(INIT).
//   col:  one thread per line (m > 1, or short lines): neighbouring threads read
//         neighbouring elements.
//   agg, tile: m == 1, lines cut into tiles of TILE positions in scan order, and each
//         line's tiles into `nb` runs of `per` consecutive tiles, one block a run (a few
//         thousand blocks in all, however long the line). agg folds each run (in memory
//         order: a fold does not care); tile folds the totals of the runs before its own
//         (a few thousand at most, from L2), then scans its run's tiles one after another.
//         Tiles go through shared memory so global accesses coalesce; whole aligned tiles
//         move in 16-byte words.
//   one:  the same tiles in one pass (opt-in, INGOT_CUDA_SCAN=one: correct on an H100 but
//         4x slower than agg + tile for 16M f32, run G14): one block a tile, tiles taken in order from a counter (so every tile a
//         block waits on is running or done). A tile folds its elements, publishes the
//         fold, and reads the fold of every position before it from a tree of tile folds
//         in global memory: node (l, i) folds tiles [i 2^l, (i + 1) 2^l), written by the
//         segment's last tile from its left half and its own right half. The prefix of
//         tile t joins the nodes of t's binary digits, high to low: the same sum of the
//         same nodes whichever tiles finished first, so results are the same bits on every
//         run (a decoupled look-back that stops at whatever prefix is ready is not). Each
//         element is read once and written once; agg + tile read it twice.

// Positions a thread scans in a tile; the includer may set it (scan.rs: INGOT_CUDA_SCAN_ITEMS).
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
// whose memory is 16-byte aligned move in words, the rest element by element.
DEV void stage_in(TI* sx, const TI* xr, long long n, long long p0, int rev) {
    long long m0 = rev ? n - p0 - TILE : p0;
    if (p0 + TILE <= n && ((unsigned long long)(xr + m0) & 15) == 0) {
        const uint4* src = (const uint4*)(xr + m0);
        for (int w = threadIdx.x; w < TILE / VW; w += blockDim.x) {
            uint4 q = src[w];
            TI e[VW];
            memcpy(e, &q, 16);
            #pragma unroll
            for (int j = 0; j < VW; ++j) {
                int i = w * VW + j;
                sx[SIDX(rev ? TILE - 1 - i : i)] = e[j];
            }
        }
    } else {
        for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
            long long p = p0 + i;
            if (p < n) sx[SIDX(i)] = xr[at_pos(p, n, rev)];
        }
    }
    __syncthreads();
}

// Stages the tile at p0 (stage_in) and folds each thread's ITEMS positions into `loc`
// (running folds), then scans the threads' folds into shp (inclusive, 256 of them).
DEV void fold_tile(TI* sx, const TI* xr, ACC* loc, ACC* sh, ACC* shp, long long n,
    long long p0, int rev) {
    stage_in(sx, xr, n, p0, rev);
    ACC a = SINIT;
    #pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
        int i = threadIdx.x * ITEMS + j;
        if (p0 + i < n) a = FOLD(a, sx[SIDX(i)]);
        loc[j] = a;
    }
    shp[threadIdx.x] = block_scan(a, sh);
    __syncthreads();
}

// A scanned tile to the output: each thread's ITEMS positions from the fold before it (the
// tile's prefix `carry`, if `chas`, then the threads before it in shp) and its running
// folds `loc`, staged in shared memory `so`, then written in 16-byte words where the tile
// is whole and aligned.
DEV void write_tile(TO* outr, TO* so, const ACC* loc, const ACC* shp, ACC carry, bool chas,
    long long n, long long p0, int rev, int incl) {
    bool has = chas;
    ACC P = carry;
    if (threadIdx.x > 0) { ACC e = shp[threadIdx.x - 1]; P = has ? COMB(P, e) : e; has = true; }
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
    __shared__ __align__(16) unsigned char stage[STAGE * (sizeof(TI) > sizeof(TO) ? sizeof(TI) : sizeof(TO))];
    __shared__ ACC sh[32];
    __shared__ ACC shp[256];
    TI* sx = (TI*)stage;
    TO* so = (TO*)stage;
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
        ACC loc[ITEMS];
        fold_tile(sx, xr, loc, sh, shp, n, p0, rev);
        ACC total = shp[blockDim.x - 1];
        write_tile(outr, so, loc, shp, carry, chas, n, p0, rev, incl);
        carry = chas ? COMB(carry, total) : total;
        chas = true;
        // The next tile's staging reuses the shared memory just read.
        __syncthreads();
    }
}

// The tree of tile folds of one line: node (l, i) for i < tiles >> l, level after level.
// Values are 8-byte slots (ACC is at most 8 bytes), each with a flag set once it is written.
DEV long long node_at(long long tiles, int l, long long i) {
    long long o = 0;
    for (int j = 0; j < l; ++j) o += tiles >> j;
    return o + i;
}
DEV void publish(unsigned* flag, unsigned long long* slot, ACC v) {
    unsigned long long w = 0;
    memcpy(&w, &v, sizeof(ACC));
    *(volatile unsigned long long*)slot = w;
    __threadfence();
    *(volatile unsigned*)flag = 1u;
}
DEV ACC await_node(const unsigned* flag, const unsigned long long* slot) {
    while (*(const volatile unsigned*)flag == 0u) {}
    __threadfence();
    unsigned long long w = *(const volatile unsigned long long*)slot;
    ACC v;
    memcpy(&v, &w, sizeof(ACC));
    return v;
}

// sync: a tile counter, then one flag a tree node (zeroed before the launch); slots: one
// value a node. per_line: nodes a line (the sum of tiles >> l over the levels).
extern "C" __global__ void __launch_bounds__(256) KNAME(one)(TO* __restrict__ out, const TI* __restrict__ x,
    unsigned* sync, unsigned long long* slots, long long n, long long tiles, long long per_line,
    int rev, int incl) {
    __shared__ __align__(16) unsigned char stage[STAGE * (sizeof(TI) > sizeof(TO) ? sizeof(TI) : sizeof(TO))];
    __shared__ ACC sh[32];
    __shared__ ACC shp[256];
    __shared__ ACC lv[33];
    __shared__ long long s_tile;
    TI* sx = (TI*)stage;
    TO* so = (TO*)stage;
    if (threadIdx.x == 0) s_tile = (long long)atomicAdd(sync, 1u);
    __syncthreads();
    long long r = s_tile / tiles, t = s_tile % tiles;
    const TI* xr = x + r * n;
    TO* outr = out + r * n;
    unsigned* flags = sync + 4 + r * per_line;
    unsigned long long* vals = slots + r * per_line;
    long long p0 = t * TILE;
    ACC loc[ITEMS];
    fold_tile(sx, xr, loc, sh, shp, n, p0, rev);
    if (threadIdx.x < 32) {
        int lane = threadIdx.x;
        if (lane == 0) {
            // This tile's fold, then every node this tile completes (one a trailing 1 of t).
            ACC v = shp[blockDim.x - 1];
            int l = 0;
            long long i = t, k = node_at(tiles, 0, i);
            publish(flags + k, vals + k, v);
            while (i & 1) {
                long long s = node_at(tiles, l, i - 1);
                v = COMB(await_node(flags + s, vals + s), v);
                ++l;
                i >>= 1;
                k = node_at(tiles, l, i);
                publish(flags + k, vals + k, v);
            }
        }
        // The prefix: node (l, (t >> l) - 1) for each set bit l of t, a lane a level.
        if ((t >> lane) & 1) {
            long long k = node_at(tiles, lane, (t >> lane) - 1);
            lv[lane] = await_node(flags + k, vals + k);
        }
        __syncwarp();
        if (lane == 0) {
            bool has = false;
            ACC P = INIT;
            for (int l = 31; l >= 0; --l) {
                if ((t >> l) & 1) {
                    P = has ? COMB(P, lv[l]) : lv[l];
                    has = true;
                }
            }
            lv[32] = P;
        }
    }
    __syncthreads();
    write_tile(outr, so, loc, shp, t > 0 ? lv[32] : (ACC)(INIT), t > 0, n, p0, rev, incl);
}

// ---- chunk: long lines in one launch, one block of 1024 threads an SM ------------------
// m == 1 and lines long enough. Each line is cut into chunks of `per` tiles of CT positions
// (scan order), one block a chunk, about one chunk an SM in all. A block
//   1. folds its chunk (reading it once from memory), keeping its first `held` tiles in
//      shared memory (read with evict-first loads: the rest, read after, is what L2 keeps);
//   2. publishes the chunk's total, then folds the totals of the chunks before it in the
//      line, in chunk order, after waiting for each (chunk ids come from a counter, so every
//      chunk waited on belongs to a block already running): the same association on every
//      run, unlike a decoupled look-back that stops at whichever prefix is ready;
//   3. scans the tiles after the held ones (from L2 where it kept them, the next tile
//      loading while the current one scans), then the held tiles from shared memory, and
//      writes the output with evict-first stores.
// Memory traffic: the input once, plus the part of it neither shared memory nor L2 kept,
// and the output once; agg + tile read the input twice.

// Positions a thread scans in a chunk tile: 8, or 4 where an element or accumulator is
// 8 bytes (registers: 1024 threads have 64 each). The includer may set it (scan.rs).
#ifndef CP
#define CP 8
#endif
#define CT (1024 * CP)

// CP elements as one access of CP * sizeof(T) bytes (16-byte pieces where it is larger),
// when p is aligned to min(16, CP * sizeof(T)) bytes.
template <class T> DEV bool vec_ok(const T* p) {
    const unsigned long long a = CP * sizeof(T) >= 16 ? 16 : CP * sizeof(T);
    return ((unsigned long long)p & (a - 1)) == 0;
}
template <class T> DEV void vld(T* e, const T* p) {
    constexpr int B = CP * (int)sizeof(T);
    if constexpr (B % 16 == 0) {
        #pragma unroll
        for (int k = 0; k < B / 16; ++k) { uint4 q = ((const uint4*)p)[k]; memcpy((char*)e + 16 * k, &q, 16); }
    } else if constexpr (B == 8) {
        uint2 q = *(const uint2*)p; memcpy(e, &q, 8);
    } else if constexpr (B == 4) {
        unsigned q = *(const unsigned*)p; memcpy(e, &q, 4);
    } else {
        #pragma unroll
        for (int j = 0; j < CP; ++j) e[j] = p[j];
    }
}
template <class T> DEV void vst_cs(T* p, const T* e) {
    constexpr int B = CP * (int)sizeof(T);
    if constexpr (B % 16 == 0) {
        #pragma unroll
        for (int k = 0; k < B / 16; ++k) { uint4 q; memcpy(&q, (const char*)e + 16 * k, 16); __stcs((uint4*)p + k, q); }
    } else if constexpr (B == 8) {
        uint2 q; memcpy(&q, e, 8); __stcs((uint2*)p, q);
    } else if constexpr (B == 4) {
        unsigned q; memcpy(&q, e, 4); __stcs((unsigned*)p, q);
    } else {
        #pragma unroll
        for (int j = 0; j < CP; ++j) p[j] = e[j];
    }
}

// Inclusive scan of one value per thread over 1024 threads; *tot gets the block's fold.
// wsh (32) then holds each warp's inclusive prefix, until the next call.
DEV ACC bscan(ACC v, ACC* wsh, ACC* tot) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    #pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
        ACC o = shfl_up_(v, d);
        if (lane >= d) v = COMB(o, v);
    }
    __syncthreads();
    if (lane == 31) wsh[w] = v;
    __syncthreads();
    if (w == 0) {
        ACC t = wsh[lane];
        #pragma unroll
        for (int d = 1; d < 32; d <<= 1) {
            ACC o = shfl_up_(t, d);
            if (lane >= d) t = COMB(o, t);
        }
        wsh[lane] = t;
    }
    __syncthreads();
    *tot = wsh[31];
    return w > 0 ? COMB(wsh[w - 1], v) : v;
}

// Folds scan positions [s0, s1) of line xr, reading memory in 16-byte words in any order;
// with KEEP, stores each element in keep[p - s0] (shared memory, scan order).
template <bool KEEP> DEV ACC chunk_fold(const TI* xr, long long s0, long long s1, long long n,
    int rev, TI* keep) {
    ACC a = SINIT;
    long long len = s1 - s0;
    if (len <= 0) return a;
    const TI* src = xr + (rev ? n - s1 : s0);
    long long head = (long long)(((16 - ((unsigned long long)src & 15)) & 15) / sizeof(TI));
    if (head > len) head = len;
    long long words = (len - head) / VW;
    // Scan offset of memory offset i of the region.
    #define KI(i) (rev ? len - 1 - (i) : (i))
    for (long long i = threadIdx.x; i < head; i += blockDim.x) {
        TI v = src[i];
        if (KEEP) keep[KI(i)] = v;
        a = FOLD(a, v);
    }
    const uint4* wp = (const uint4*)(src + head);
    bool direct = KEEP && !rev && head == 0;
    #pragma unroll 4
    for (long long w = threadIdx.x; w < words; w += blockDim.x) {
        uint4 q = KEEP ? __ldcs(wp + w) : wp[w];
        TI e[VW];
        memcpy(e, &q, 16);
        if (direct) {
            ((uint4*)keep)[w] = q;
        } else if (KEEP) {
            #pragma unroll
            for (int j = 0; j < VW; ++j) keep[KI(head + w * VW + j)] = e[j];
        }
        #pragma unroll
        for (int j = 0; j < VW; ++j) a = FOLD(a, e[j]);
    }
    for (long long i = head + words * VW + threadIdx.x; i < len; i += blockDim.x) {
        TI v = src[i];
        if (KEEP) keep[KI(i)] = v;
        a = FOLD(a, v);
    }
    #undef KI
    return a;
}

// This thread's CP positions of the tile at scan position p0 (clamped to the line's last
// position past its end: those are never folded).
DEV void chunk_load(TI* e, const TI* xr, long long p0, long long n, int rev) {
    long long q0 = p0 + (long long)threadIdx.x * CP;
    if (q0 + CP <= n) {
        const TI* s = xr + (rev ? n - q0 - CP : q0);
        if (vec_ok(s)) {
            vld(e, s);
        } else {
            #pragma unroll
            for (int j = 0; j < CP; ++j) e[j] = s[j];
        }
        if (rev) {
            #pragma unroll
            for (int j = 0; j < CP / 2; ++j) { TI t = e[j]; e[j] = e[CP - 1 - j]; e[CP - 1 - j] = t; }
        }
    } else {
        #pragma unroll
        for (int j = 0; j < CP; ++j) e[j] = xr[at_pos(q0 + j < n ? q0 + j : n - 1, n, rev)];
    }
}

// Scans the tile at scan position p0 (this thread's CP values in e) after `carry` (the fold
// of every position before it, if chas) and writes it; carry and chas then cover the tile.
DEV void chunk_tile(TO* outr, const TI* e, long long p0, long long n, int rev, int incl,
    ACC& carry, bool& chas, ACC* wsh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    long long q0 = p0 + (long long)threadIdx.x * CP;
    ACC loc[CP];
    ACC a = SINIT;
    #pragma unroll
    for (int j = 0; j < CP; ++j) {
        if (q0 + j < n) a = FOLD(a, e[j]);
        loc[j] = a;
    }
    ACC tot;
    ACC inc = bscan(a, wsh, &tot);
    ACC ex = shfl_up_(inc, 1);
    if (lane == 0 && w > 0) ex = wsh[w - 1];
    bool has = chas;
    ACC P = carry;
    if (threadIdx.x > 0) { P = has ? COMB(P, ex) : ex; has = true; }
    TO y[CP];
    #pragma unroll
    for (int j = 0; j < CP; ++j) {
        if (incl) y[j] = FIN(has ? COMB(P, loc[j]) : loc[j]);
        else if (j == 0) y[j] = has ? FIN(P) : FIN((ACC)(INIT));
        else y[j] = FIN(has ? COMB(P, loc[j - 1]) : loc[j - 1]);
    }
    if (q0 + CP <= n) {
        TO* d = outr + (rev ? n - q0 - CP : q0);
        if (rev) {
            #pragma unroll
            for (int j = 0; j < CP / 2; ++j) { TO t = y[j]; y[j] = y[CP - 1 - j]; y[CP - 1 - j] = t; }
        }
        if (vec_ok(d)) {
            vst_cs(d, y);
        } else {
            #pragma unroll
            for (int j = 0; j < CP; ++j) d[j] = y[j];
        }
    } else {
        #pragma unroll
        for (int j = 0; j < CP; ++j)
            if (q0 + j < n) outr[at_pos(q0 + j, n, rev)] = y[j];
    }
    carry = chas ? COMB(carry, tot) : tot;
    chas = true;
}

// sync: a chunk counter, then one flag a chunk (zeroed before the launch); slots: each
// chunk's total. per: tiles a chunk; cpl: chunks a line (at most 1024); held: tiles a
// chunk keeps in the dynamic shared memory (held * CT elements).
extern "C" __global__ void __launch_bounds__(1024, 1) KNAME(chunk)(TO* __restrict__ out,
    const TI* __restrict__ x, unsigned* sync, unsigned long long* slots, long long n,
    long long per, long long cpl, long long held, int rev, int incl) {
    extern __shared__ __align__(16) unsigned char keep_raw[];
    __shared__ ACC wsh[32];
    __shared__ ACC bc;
    __shared__ long long s_id;
    TI* keep = (TI*)keep_raw;
    if (threadIdx.x == 0) s_id = (long long)atomicAdd(sync, 1u);
    __syncthreads();
    long long id = s_id, r = id / cpl, c = id % cpl;
    const TI* xr = x + r * n;
    TO* outr = out + r * n;
    unsigned* flags = sync + 1;
    long long s0 = c * per * CT, s1 = s0 + per * CT < n ? s0 + per * CT : n;
    long long h1 = s0 + held * CT < s1 ? s0 + held * CT : s1;
    // 1. The chunk's total: the held tiles first, so the rest is what L2 read last.
    ACC th, tr;
    bscan(chunk_fold<true>(xr, s0, h1, n, rev, keep), wsh, &th);
    bscan(chunk_fold<false>(xr, h1, s1, n, rev, keep), wsh, &tr);
    if (threadIdx.x == 0) publish(flags + id, slots + id, COMB(th, tr));
    // 2. The fold of the chunks before this one in its line, a thread each, in order.
    ACC v = SINIT;
    if (threadIdx.x < c) v = await_node(flags + id - c + threadIdx.x, slots + id - c + threadIdx.x);
    ACC unused;
    ACC inc = bscan(v, wsh, &unused);
    if (c > 0 && threadIdx.x == c - 1) bc = inc;
    __syncthreads();
    ACC prefix = c > 0 ? bc : (ACC)(INIT);
    // 3. The tiles after the held ones, from the fold of the chunk's earlier positions.
    ACC carry = c > 0 ? (h1 > s0 ? COMB(prefix, th) : prefix) : th;
    bool chas = c > 0 || h1 > s0;
    long long nt = (s1 - h1 + CT - 1) / CT;
    TI cur[CP], nxt[CP];
    if (nt > 0) chunk_load(cur, xr, h1, n, rev);
    for (long long k = 0; k < nt; ++k) {
        long long p0 = h1 + k * CT;
        if (k + 1 < nt) chunk_load(nxt, xr, p0 + CT, n, rev);
        chunk_tile(outr, cur, p0, n, rev, incl, carry, chas, wsh);
        if (k + 1 < nt) {
            #pragma unroll
            for (int j = 0; j < CP; ++j) cur[j] = nxt[j];
        }
    }
    // Then the held tiles, from shared memory.
    carry = prefix;
    chas = c > 0;
    long long nh = (h1 - s0 + CT - 1) / CT;
    for (long long k = 0; k < nh; ++k) {
        vld(cur, keep + k * CT + (long long)threadIdx.x * CP);
        chunk_tile(outr, cur, s0 + k * CT, n, rev, incl, carry, chas, wsh);
    }
}
