// The sort family (sort.rs): sort, argsort, partition and argpartition along the last axis
// of a row-major (lines, n) array, and searchsorted. Every element maps to an unsigned key
// whose order is NumPy's total order (NaN last, all NaNs equal, -0.0 == 0.0, complex
// lexicographic with NumPy's NaN classes), so sorting keys stably sorts the elements.
//   small:   rows of up to SMALL positions, sorted in shared memory by a bitonic network on
//            (key, position) pairs (the position breaks ties, so the order is the stable one).
//   ghist, onesweep: longer rows (under 2^30), by a least-significant-digit radix sort, 8
//            bits a pass. ghist counts every pass's digits in one read of the elements; each
//            pass is one onesweep launch whose tiles (in ticket order) rank each key among
//            the equal digits of the tile (stable: each warp ranks its own contiguous part,
//            digits matched by ballots, then the warps' counts are scanned), publish their
//            digit counts, stage the tile in digit order in shared memory, find their first
//            output position per digit by decoupled look-back and write each digit's run
//            contiguously. The first pass reads the elements, the last writes the output.
//   hist, scatter: the same passes for rows of 2^30 keys or more: per pass a count, an
//            exclusive scan of the counts laid out (row, digit, tile) and the move.
// The includer defines TI (element type), KEY (u32, u64 or K3), VAL (the payload: the
// position in the row, or the element's bits), PAYLOAD (0: none, the value comes back from
// the key (integers); 1: the position; 2: the element's bits), DECODE(k) (the value from
// its key, for integers and real floats), ROUNDTRIP (1 for real floats), PASSES, RITEMS
// (keys per thread in a radix tile) and KNAME(k).

struct K3 { u64 lo; u32 hi; };

// Whether DECODE gives a value back from its key: integers always (PAYLOAD 0), real floats
// (ROUNDTRIP) all but -0.0 and NaNs.
#define KEYS_ONLY_OK (PAYLOAD == 0 || (PAYLOAD == 2 && ROUNDTRIP))

DEV bool kless(u32 a, u32 b) { return a < b; }
DEV bool kless(u64 a, u64 b) { return a < b; }
DEV bool kless(K3 a, K3 b) { return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo; }
DEV bool keq(u32 a, u32 b) { return a == b; }
DEV bool keq(u64 a, u64 b) { return a == b; }
DEV bool keq(K3 a, K3 b) { return a.hi == b.hi && a.lo == b.lo; }
DEV u32 digit(u32 k, int p) { return (k >> (8 * p)) & 255u; }
DEV u32 digit(u64 k, int p) { return (u32)(k >> (8 * p)) & 255u; }
DEV u32 digit(K3 k, int p) { return p < 8 ? (u32)(k.lo >> (8 * p)) & 255u : (k.hi >> (8 * (p - 8))) & 255u; }
DEV void kset_max(u32& k) { k = 0xffffffffu; }
DEV void kset_max(u64& k) { k = ~0ull; }
DEV void kset_max(K3& k) { k.lo = ~0ull; k.hi = 0xffffffffu; }

// ---- keys: unsigned order == NumPy's order ------------------------------------------------
DEV u32 key_of(boolean x) { return x.b; }
DEV u32 key_of(u8 x) { return x; }
DEV u32 key_of(i8 x) { return (u32)(u8)x ^ 0x80u; }
DEV u32 key_of(u16 x) { return x; }
DEV u32 key_of(i16 x) { return (u32)(u16)x ^ 0x8000u; }
DEV u32 key_of(u32 x) { return x; }
DEV u32 key_of(i32 x) { return (u32)x ^ 0x80000000u; }
DEV u64 key_of(u64 x) { return x; }
DEV u64 key_of(i64 x) { return (u64)x ^ 0x8000000000000000ull; }
// Floats: NaN above everything, both zeros the same key, negatives bit-flipped.
DEV u32 fkey16(u32 b, bool nan) {
    if (nan) return 0xffffu;
    if ((b & 0x7fffu) == 0) b = 0;
    return (b & 0x8000u) ? (~b & 0xffffu) : (b | 0x8000u);
}
DEV u32 key_of(f16 x) { return fkey16(x.b, (x.b & 0x7fffu) > 0x7c00u); }
DEV u32 key_of(bf16 x) { return fkey16(x.b, (x.b & 0x7fffu) > 0x7f80u); }
DEV u32 key_of(f32 x) {
    if (x != x) return 0xffffffffu;
    u32 b = x == 0.0f ? 0u : __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
DEV u64 key_of(f64 x) {
    if (x != x) return ~0ull;
    u64 b = x == 0.0 ? 0ull : (u64)__double_as_longlong(x);
    return (b & 0x8000000000000000ull) ? ~b : (b | 0x8000000000000000ull);
}
// The inverse of key_of for real floats: every value but -0.0 and NaNs comes back bit for
// bit (both zeros decode to 0.0, every NaN to one NaN); bits_of tells whether it did.
DEV u32 kdec16(u32 k) { return (k & 0x8000u) ? (k & 0x7fffu) : (~k & 0xffffu); }
DEV f16 kdec_f16(u32 k) { f16 h; h.b = (u16)kdec16(k); return h; }
DEV bf16 kdec_bf16(u32 k) { bf16 h; h.b = (u16)kdec16(k); return h; }
DEV f32 kdec_f32(u32 k) { return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }
DEV f64 kdec_f64(u64 k) {
    return __longlong_as_double((long long)((k >> 63) ? (k & 0x7fffffffffffffffull) : ~k));
}
DEV u64 bits_of(f16 x) { return x.b; }
DEV u64 bits_of(bf16 x) { return x.b; }
DEV u64 bits_of(f32 x) { return __float_as_uint(x); }
DEV u64 bits_of(f64 x) { return (u64)__double_as_longlong(x); }

// NumPy's complex classes [R + Rj, R + nanj, nan + Rj, nan + nanj] in the high word, each
// class ordered by its non-NaN parts.
DEV K3 key_of(c64 z) {
    bool rn = z.re != z.re, in_ = z.im != z.im;
    K3 k;
    k.hi = (rn ? 2u : 0u) + (in_ ? 1u : 0u);
    u64 rk = rn ? 0ull : (u64)key_of(z.re), ik = in_ ? 0ull : (u64)key_of(z.im);
    k.lo = (rk << 32) | ik;
    return k;
}

// ---- short rows: bitonic network in shared memory ---------------------------------------
// One block sorts SMALL positions: SMALL / P rows of P positions (P a power of two >= n).
// Positions past n hold the largest key and position, so they sort last.
extern "C" __global__ void __launch_bounds__(1024) KNAME(small)(void* __restrict__ out,
    const TI* __restrict__ x, long long lines, int n, int lg, int want_idx) {
    __shared__ KEY sk[SMALL];
    __shared__ u32 si[SMALL];
    const int P = 1 << lg;
    long long row0 = (long long)blockIdx.x * (SMALL >> lg);
    for (int i = threadIdx.x; i < SMALL; i += blockDim.x) {
        long long r = row0 + (i >> lg);
        int j = i & (P - 1);
        if (r < lines && j < n) {
            sk[i] = key_of(x[r * n + j]);
            si[i] = (u32)j;
        } else {
            kset_max(sk[i]);
            si[i] = 0xffffffffu;
        }
    }
    __syncthreads();
    for (int k = 2; k <= P; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int t = threadIdx.x; t < SMALL / 2; t += blockDim.x) {
                int a = 2 * t - (t & (j - 1));
                int b = a + j;
                // Every row of the block ends ascending: the last merge ignores bit P.
                bool up = k == P || (a & k) == 0;
                KEY ka = sk[a], kb = sk[b];
                u32 ia = si[a], ib = si[b];
                bool gt = kless(kb, ka) || (keq(ka, kb) && ib < ia);
                if (gt == up) {
                    sk[a] = kb; sk[b] = ka;
                    si[a] = ib; si[b] = ia;
                }
            }
            __syncthreads();
        }
    }
    for (int i = threadIdx.x; i < SMALL; i += blockDim.x) {
        long long r = row0 + (i >> lg);
        int j = i & (P - 1);
        if (r < lines && j < n) {
            u32 s = si[i];
            if (want_idx) ((i64*)out)[r * n + j] = (i64)s;
            else ((TI*)out)[r * n + j] = x[r * n + s];
        }
    }
}

// ---- long rows: LSD radix sort ------------------------------------------------------------
// A tile is RT threads x RITEMS keys; warp w holds the tile's positions [w * WSPAN, (w + 1) *
// WSPAN), item c of lane l at w * WSPAN + c * 32 + l, so ranking a warp's items in (c, lane)
// order ranks them in position order (the stable order).
#define RT 256
#define RTILE (RT * RITEMS)
// Three blocks an SM for the radix passes (80 registers): the 16M f32 argsort's passes took
// 250, 194, 193 and 168 µs on an H100, against 326, 252, 252 and 219 at two (96 registers).
#ifndef RMINB
#define RMINB 3
#endif
#define WSPAN (32 * RITEMS)

// The key of position i of the flat (lines * n) input: pass 0 reads the elements themselves.
DEV KEY load_key(const KEY* __restrict__ keys, const TI* __restrict__ x, long long i, int first) {
    return first ? key_of(x[i]) : keys[i];
}

// The lanes whose (valid) 8-bit digit equals this lane's: one ballot a bit. Profiled on an
// H100 (scripts/gpu/micro/radix_sort.cu), __match_any_sync made the ranking compute-bound:
// a pass of the 16M f32 argsort on random digits took 336 µs with it, 250 µs with ballots.
DEV unsigned match_digit(u32 d, bool valid) {
    unsigned m = __ballot_sync(0xffffffffu, valid);
#pragma unroll
    for (int b = 0; b < 8; ++b) {
        unsigned on = __ballot_sync(0xffffffffu, (d >> b) & 1u);
        m &= ((d >> b) & 1u) ? on : ~on;
    }
    return m;
}

// counts[(row * 256 + d) * tpr + t]: the keys of tile t of row `row` whose digit p is d.
// One block per tile, blocks in (row, tile) order.
extern "C" __global__ void __launch_bounds__(RT) KNAME(hist)(u32* __restrict__ counts,
    const KEY* __restrict__ keys, const TI* __restrict__ x, long long n, long long tpr, int p,
    int first) {
    __shared__ u32 h[256];
    h[threadIdx.x] = 0;
    __syncthreads();
    long long row = blockIdx.x / tpr, t = blockIdx.x % tpr;
    long long p0 = row * n + t * RTILE;
    long long m = n - t * RTILE < RTILE ? n - t * RTILE : RTILE;
    for (int c = 0; c < RITEMS; ++c) {
        int i = c * RT + threadIdx.x;
        // Plain shared atomics: matching the warp's digits first (by ballots or match-any)
        // cost 4-6x more than the atomics' conflicts on skewed digits (see ghist).
        if (i < m) atomicAdd(&h[digit(load_key(keys, x, p0 + i, first), p)], 1u);
    }
    __syncthreads();
    counts[(row * 256 + threadIdx.x) * tpr + t] = h[threadIdx.x];
}

// Exclusive scan of 256 values, one per thread (blockDim.x == 256); returns this thread's.
DEV u32 scan256(u32 v, u32* sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    u32 inc = v;
    for (int d = 1; d < 32; d <<= 1) {
        u32 o = __shfl_up_sync(0xffffffffu, inc, d);
        if (lane >= d) inc += o;
    }
    if (lane == 31) sh[w] = inc;
    __syncthreads();
    u32 before = 0;
    for (int k = 0; k < w; ++k) before += sh[k];
    __syncthreads();
    return before + inc - v;
}

#define SBYTES (sizeof(KEY) > sizeof(VAL) ? sizeof(KEY) : sizeof(VAL))

// Look-back status words of the one-sweep pass: a tile's count of one digit (AGG) or the
// count of every tile up to and including it (INC) in the low 30 bits; 0 is "not yet".
#define ST_AGG (1u << 30)
#define ST_INC (2u << 30)
#define ST_VAL ((1u << 30) - 1u)

// One radix pass over one tile: moves tile t of row `row` to its positions for digit p.
// SWEEP false: offs holds the exclusive scan of hist's counts (global positions in the flat
// (lines * n) output), tile = block. SWEEP true (rows under 2^30): tiles are taken in order
// from *ticket, each digit's place among the row's tiles comes from looking back over the
// earlier tiles' status words (decoupled look-back: every tile publishes its own counts
// first, then the running totals), and offs holds ghist's per-row digit counts of every
// pass; the tile clears its status slot for the next pass (snext). Pass 0 (first) reads the
// elements and makes the payload; the last pass writes the output itself: the values
// (decoded from the keys, or the payload's bits) or the positions as int64.
template <bool SWEEP>
DEV void radix_pass(KEY* __restrict__ kout, VAL* __restrict__ vout,
    const KEY* __restrict__ kin, const VAL* __restrict__ vin, const TI* __restrict__ x,
    void* __restrict__ out, const u32* __restrict__ offs, u32* status, u32* __restrict__ snext,
    u32* __restrict__ ticket, const u32* __restrict__ lossy, long long n, long long tpr, int p,
    int first, int last) {
    __shared__ u32 wh[RT / 32][256];
    __shared__ u32 lstart[256];
    __shared__ long long gstart[256];
    __shared__ u32 tmp[RT / 32];
    __shared__ u32 tile_id;
    __shared__ unsigned char sd[RTILE];
    __shared__ __align__(16) unsigned char stage[RTILE * SBYTES];
    long long b = blockIdx.x;
    if (SWEEP) {
        if (threadIdx.x == 0) tile_id = atomicAdd(ticket, 1u);
        __syncthreads();
        b = tile_id;
    }
    long long row = b / tpr, t = b % tpr;
    long long p0 = row * n + t * RTILE;
    int m = n - t * RTILE < RTILE ? (int)(n - t * RTILE) : RTILE;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int z = threadIdx.x; z < (RT / 32) * 256; z += RT) (&wh[0][0])[z] = 0;
    if (!SWEEP) gstart[threadIdx.x] = offs[(row * 256 + threadIdx.x) * tpr + t];
    KEY kk[RITEMS];
    u32 pos[RITEMS];
    // Every key load first, so they are in flight together; the payloads are loaded once the
    // keys are out (fewer registers live through the ranking).
#pragma unroll
    for (int c = 0; c < RITEMS; ++c) {
        int i = w * WSPAN + c * 32 + lane;
        if (i < m) kk[c] = load_key(kin, x, p0 + i, first);
    }
    __syncthreads();
    // Rank each key among its warp's earlier keys of the same digit: the group's lowest lane
    // takes the group's places from the warp's running count.
    const unsigned below = (1u << lane) - 1u;
#pragma unroll
    for (int c = 0; c < RITEMS; ++c) {
        int i = w * WSPAN + c * 32 + lane;
        u32 d = i < m ? digit(kk[c], p) : 0u;
        unsigned peers = match_digit(d, i < m);
        int leader = __ffs(peers) - 1;
        u32 bb = 0;
        if (i < m && lane == leader) {
            bb = wh[w][d];
            wh[w][d] = bb + (u32)__popc(peers);
        }
        bb = __shfl_sync(0xffffffffu, bb, leader);
        __syncwarp();
        pos[c] = bb + (u32)__popc(peers & below);
    }
    __syncthreads();
    // Per digit: the warps' counts become their first places among the tile's keys of that
    // digit, and the digit's total gives its first place in the tile.
    u32 r = 0;
    for (int k = 0; k < RT / 32; ++k) {
        u32 v = wh[k][threadIdx.x];
        wh[k][threadIdx.x] = r;
        r += v;
    }
    u32* my = status + b * 256 + threadIdx.x;
    if (SWEEP) *(volatile u32*)my = (t == 0 ? ST_INC : ST_AGG) | r;
    lstart[threadIdx.x] = scan256(r, tmp);
    u32 base = SWEEP ? scan256(offs[(row * PASSES + p) * 256 + threadIdx.x], tmp) : 0u;
    __syncthreads();
    KEY* sk = (KEY*)stage;
#pragma unroll
    for (int c = 0; c < RITEMS; ++c) {
        int i = w * WSPAN + c * 32 + lane;
        if (i < m) {
            u32 d = digit(kk[c], p);
            pos[c] += wh[w][d] + lstart[d];
            sk[pos[c]] = kk[c];
            sd[pos[c]] = (unsigned char)d;
        }
    }
    if (SWEEP) {
        // This digit's keys in the row's earlier tiles: sum their counts back to the first
        // running total, waiting on tiles that have not published yet.
        u32 before = 0;
        if (t > 0) {
            for (const u32* s = my - 256;;) {
                u32 v = *(volatile const u32*)s;
                if (v == 0) continue;
                before += v & ST_VAL;
                if (v & ST_INC) break;
                s -= 256;
            }
            *(volatile u32*)my = ST_INC | (before + r);
        }
        gstart[threadIdx.x] = row * n + base + before;
        snext[b * 256 + threadIdx.x] = 0;
    }
    __syncthreads();
    // Whether the payload moves: positions always; a float's bits unless ghist found every
    // value given back by its key (then the keys alone are sorted and decoded at the end).
#if KEYS_ONLY_OK
#if PAYLOAD == 0
    const bool carry = false;
#else
    const bool carry = !SWEEP || *lossy != 0;
#endif
    if (!carry) {
        for (int i = threadIdx.x; i < m; i += RT) {
            u32 d = sd[i];
            long long o = gstart[d] + (i - lstart[d]);
            if (last) ((TI*)out)[o] = DECODE(sk[i]);
            else kout[o] = sk[i];
        }
        return;
    }
#endif
#if PAYLOAD != 0
    if (!last) {
        for (int i = threadIdx.x; i < m; i += RT) {
            u32 d = sd[i];
            kout[gstart[d] + (i - lstart[d])] = sk[i];
        }
    }
    __syncthreads();
    VAL* sv = (VAL*)stage;
#pragma unroll
    for (int c = 0; c < RITEMS; ++c) {
        int i = w * WSPAN + c * 32 + lane;
#if PAYLOAD == 1
        if (i < m) sv[pos[c]] = first ? (VAL)(t * RTILE + i) : vin[p0 + i];
#else
        if (i < m) sv[pos[c]] = first ? ((const VAL*)x)[p0 + i] : vin[p0 + i];
#endif
    }
    __syncthreads();
    for (int i = threadIdx.x; i < m; i += RT) {
        u32 d = sd[i];
        long long o = gstart[d] + (i - lstart[d]);
#if PAYLOAD == 1
        if (last) ((i64*)out)[o] = (i64)sv[i];
        else vout[o] = sv[i];
#else
        if (last) ((VAL*)out)[o] = sv[i];
        else vout[o] = sv[i];
#endif
    }
#endif
}

extern "C" __global__ void __launch_bounds__(RT, RMINB) KNAME(scatter)(KEY* __restrict__ kout,
    VAL* __restrict__ vout, const KEY* __restrict__ kin, const VAL* __restrict__ vin,
    const TI* __restrict__ x, void* __restrict__ out, const u32* __restrict__ offs,
    long long n, long long tpr, int p, int first, int last) {
    radix_pass<false>(kout, vout, kin, vin, x, out, offs, nullptr, nullptr, nullptr, nullptr,
        n, tpr, p, first, last);
}

// The one-sweep pass (see radix_pass): counts from ghist, status words zeroed for pass 0,
// tickets zeroed.
extern "C" __global__ void __launch_bounds__(RT, RMINB) KNAME(onesweep)(KEY* __restrict__ kout,
    VAL* __restrict__ vout, const KEY* __restrict__ kin, const VAL* __restrict__ vin,
    const TI* __restrict__ x, void* __restrict__ out, const u32* __restrict__ counts,
    u32* status, u32* __restrict__ snext, u32* __restrict__ ticket, const u32* __restrict__ lossy,
    long long n, long long tpr, int p, int first, int last) {
    radix_pass<true>(kout, vout, kin, vin, x, out, counts, status, snext, ticket, lossy, n, tpr,
        p, first, last);
}

// counts[(row * PASSES + p) * 256 + d] += the keys of `row` whose digit p is d, for every
// pass from one read of the elements. A block counts GTILES tiles of one row; counts zeroed.
#define GTILES 8
extern "C" __global__ void __launch_bounds__(RT) KNAME(ghist)(u32* __restrict__ counts,
    u32* __restrict__ lossy, const TI* __restrict__ x, long long n, long long tpr) {
    __shared__ u32 h[PASSES * 256];
    for (int z = threadIdx.x; z < PASSES * 256; z += RT) h[z] = 0;
    __syncthreads();
    long long bpr = (tpr + GTILES - 1) / GTILES;
    long long row = blockIdx.x / bpr, c0 = (blockIdx.x % bpr) * GTILES * RTILE;
    long long c1 = c0 + GTILES * RTILE < n ? c0 + GTILES * RTILE : n;
    const TI* xr = x + row * n;
    int lane = threadIdx.x & 31;
    for (long long i0 = c0; i0 < c1; i0 += 4 * RT) {
        KEY kk[4];
        bool bad = false;
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            long long i = i0 + u * RT + threadIdx.x;
            if (i < c1) {
                TI v = xr[i];
                kk[u] = key_of(v);
#if KEYS_ONLY_OK && PAYLOAD == 2
                bad |= bits_of(DECODE(kk[u])) != bits_of(v);
#endif
            }
        }
        // A value its key does not give back (-0.0, NaN): the sort carries the bits.
        if (__any_sync(0xffffffffu, bad) && lane == 0) atomicOr(lossy, 1u);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            bool ok = i0 + u * RT + threadIdx.x < c1;
#pragma unroll
            for (int q = 0; q < PASSES; ++q) {
                // Plain shared atomics: 81 µs for 16M f32's four passes on an H100, against
                // 327 µs matching the warp's digits by ballots first and 467 by match-any.
                if (ok) atomicAdd(&h[q * 256 + digit(kk[u], q)], 1u);
            }
        }
    }
    __syncthreads();
    for (int z = threadIdx.x; z < PASSES * 256; z += RT) {
        u32 v = h[z];
        if (v) atomicAdd(&counts[row * PASSES * 256 + z], v);
    }
}

// ---- searchsorted ---------------------------------------------------------------------------
// out[i]: how many of the sorted a[0..na) come before v[i] (right: before or equal).
extern "C" __global__ void KNAME(search)(i64* __restrict__ out, const TI* __restrict__ a,
    long long na, const TI* __restrict__ v, long long nv, int right) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nv) return;
    KEY kv = key_of(v[i]);
    long long lo = 0, hi = na;
    while (lo < hi) {
        long long mid = lo + ((hi - lo) >> 1);
        KEY km = key_of(a[mid]);
        bool before = right ? !kless(kv, km) : kless(km, kv);
        if (before) lo = mid + 1;
        else hi = mid;
    }
    out[i] = lo;
}
