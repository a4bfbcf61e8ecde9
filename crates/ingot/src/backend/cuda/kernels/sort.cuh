// The sort family (sort.rs): sort, argsort, partition and argpartition along the last axis
// of a row-major (lines, n) array, and searchsorted. Every element maps to an unsigned key
// whose order is NumPy's total order (NaN last, all NaNs equal, -0.0 == 0.0, complex
// lexicographic with NumPy's NaN classes), so sorting keys stably sorts the elements.
//   small:   rows of up to SMALL positions, sorted in shared memory by a bitonic network on
//            (key, position) pairs (the position breaks ties, so the order is the stable one).
//   hist, scatter: longer rows, by a least-significant-digit radix sort, 8 bits a pass.
//            hist counts each tile's digits; an exclusive scan of the counts laid out (row,
//            digit, tile) gives every tile's first output position per digit; scatter ranks
//            each key among the equal digits of its tile (stable: each warp ranks its own
//            contiguous part with match-any groups, then the warps' counts are scanned),
//            stages the tile in digit order in shared memory and writes each digit's run
//            contiguously. The first pass reads the elements, the last writes the output.
// The includer defines TI (element type), KEY (u32, u64 or K3), VAL (the payload: the
// position in the row, or the element's bits), PAYLOAD (0: none, the value comes back from
// the key (integers); 1: the position; 2: the element's bits), DECODE(k) for PAYLOAD 0,
// RITEMS (keys per thread in a radix tile) and KNAME(k).

struct K3 { u64 lo; u32 hi; };

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
#define WSPAN (32 * RITEMS)

// The key of position i of the flat (lines * n) input: pass 0 reads the elements themselves.
DEV KEY load_key(const KEY* __restrict__ keys, const TI* __restrict__ x, long long i, int first) {
    return first ? key_of(x[i]) : keys[i];
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
    int lane = threadIdx.x & 31;
    for (int c = 0; c < RITEMS; ++c) {
        int i = c * RT + threadIdx.x;
        u32 d = i < m ? digit(load_key(keys, x, p0 + i, first), p) : 256u;
        // One shared atomic per distinct digit of the warp (skewed digits are common).
        unsigned peers = __match_any_sync(0xffffffffu, d);
        if (d < 256u && lane == __ffs(peers) - 1) atomicAdd(&h[d], (u32)__popc(peers));
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

// Moves tile t of row `row` to its positions for digit p: offs holds the exclusive scan of
// hist's counts (global positions in the flat (lines * n) output). Pass 0 (first) reads the
// elements and makes the payload; the last pass writes the output itself: the values
// (decoded from the keys, or the payload's bits) or the positions as int64.
extern "C" __global__ void __launch_bounds__(RT) KNAME(scatter)(KEY* __restrict__ kout,
    VAL* __restrict__ vout, const KEY* __restrict__ kin, const VAL* __restrict__ vin,
    const TI* __restrict__ x, void* __restrict__ out, const u32* __restrict__ offs,
    long long n, long long tpr, int p, int first, int last) {
    __shared__ u32 wh[RT / 32][256];
    __shared__ u32 lstart[256];
    __shared__ u32 gstart[256];
    __shared__ u32 tmp[RT / 32];
    __shared__ unsigned char sd[RTILE];
    __shared__ __align__(16) unsigned char stage[RTILE * SBYTES];
    long long row = blockIdx.x / tpr, t = blockIdx.x % tpr;
    long long p0 = row * n + t * RTILE;
    int m = n - t * RTILE < RTILE ? (int)(n - t * RTILE) : RTILE;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int z = threadIdx.x; z < (RT / 32) * 256; z += RT) (&wh[0][0])[z] = 0;
    gstart[threadIdx.x] = offs[(row * 256 + threadIdx.x) * tpr + t];
    KEY kk[RITEMS];
#if PAYLOAD != 0
    VAL vv[RITEMS];
#endif
    u32 pos[RITEMS];
    // Every load first, so they are in flight together.
#pragma unroll
    for (int c = 0; c < RITEMS; ++c) {
        int i = w * WSPAN + c * 32 + lane;
        if (i < m) {
            kk[c] = load_key(kin, x, p0 + i, first);
#if PAYLOAD == 1
            vv[c] = first ? (VAL)(t * RTILE + i) : vin[p0 + i];
#elif PAYLOAD == 2
            vv[c] = first ? ((const VAL*)x)[p0 + i] : vin[p0 + i];
#endif
        }
    }
    __syncthreads();
    // Rank each key among its warp's earlier keys of the same digit: the group's lowest lane
    // takes the group's places from the warp's running count.
    const unsigned below = (1u << lane) - 1u;
#pragma unroll
    for (int c = 0; c < RITEMS; ++c) {
        int i = w * WSPAN + c * 32 + lane;
        u32 d = i < m ? digit(kk[c], p) : 256u;
        unsigned peers = __match_any_sync(0xffffffffu, d);
        int leader = __ffs(peers) - 1;
        u32 b = 0;
        if (d < 256u && lane == leader) {
            b = wh[w][d];
            wh[w][d] = b + (u32)__popc(peers);
        }
        b = __shfl_sync(0xffffffffu, b, leader);
        __syncwarp();
        pos[c] = b + (u32)__popc(peers & below);
    }
    __syncthreads();
    // Per digit: the warps' counts become their first places among the tile's keys of that
    // digit, and the digit's total gives its first place in the tile.
    {
        u32 r = 0;
        for (int k = 0; k < RT / 32; ++k) {
            u32 v = wh[k][threadIdx.x];
            wh[k][threadIdx.x] = r;
            r += v;
        }
        lstart[threadIdx.x] = scan256(r, tmp);
    }
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
    __syncthreads();
#if PAYLOAD == 0
    for (int i = threadIdx.x; i < m; i += RT) {
        u32 d = sd[i];
        long long o = gstart[d] + (i - lstart[d]);
        if (last) ((TI*)out)[o] = DECODE(sk[i]);
        else kout[o] = sk[i];
    }
#else
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
        if (i < m) sv[pos[c]] = vv[c];
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

// ---- the previous radix pass ---------------------------------------------------------------
// keys, hist (first = 0), scatter_v1 and final: the pass that ran on the GPU suite (G6, G7).
// It ranks a tile in chunks of RT keys with four barriers a chunk, and reads the elements
// and writes the output in passes of their own. It stays the default until the scatter
// above has run on a GPU (INGOT_CUDA_SORT=warp selects that one).
extern "C" __global__ void KNAME(keys)(KEY* __restrict__ keys, VAL* __restrict__ vals,
    const TI* __restrict__ x, long long total, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    keys[i] = key_of(x[i]);
#if PAYLOAD == 1
    vals[i] = (VAL)(i % n);
#elif PAYLOAD == 2
    vals[i] = ((const VAL*)x)[i];
#endif
}

// Moves tile t of row `row` to its positions for digit p: offs holds the exclusive scan of
// hist's counts (global positions in the flat (lines * n) output).
extern "C" __global__ void __launch_bounds__(RT) KNAME(scatter_v1)(KEY* __restrict__ kout,
    VAL* __restrict__ vout, const KEY* __restrict__ kin, const VAL* __restrict__ vin,
    const u32* __restrict__ offs, long long n, long long tpr, int p) {
    __shared__ u32 wc[8][256];
    __shared__ u32 run[256];
    __shared__ u32 lstart[256];
    __shared__ u32 gstart[256];
    __shared__ u32 tmp[8];
    __shared__ unsigned char sd[RTILE];
    __shared__ __align__(16) unsigned char stage[RTILE * SBYTES];
    long long row = blockIdx.x / tpr, t = blockIdx.x % tpr;
    long long p0 = row * n + t * RTILE;
    int m = n - t * RTILE < RTILE ? (int)(n - t * RTILE) : RTILE;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    run[threadIdx.x] = 0;
    gstart[threadIdx.x] = offs[(row * 256 + threadIdx.x) * tpr + t];
    KEY kk[RITEMS];
    u32 pos[RITEMS];
    // Rank every key among the keys of its digit before it in the tile: chunks of RT keys
    // in order, threads in order within a chunk.
    for (int c = 0; c < RITEMS; ++c) {
        int i = c * RT + threadIdx.x;
        u32 d = 256u;
        if (i < m) {
            kk[c] = kin[p0 + i];
            d = digit(kk[c], p);
        }
        for (int z = threadIdx.x; z < 8 * 256; z += RT) (&wc[0][0])[z] = 0;
        __syncthreads();
        unsigned peers = __match_any_sync(0xffffffffu, d);
        u32 lower = __popc(peers & ((1u << lane) - 1u));
        if (d < 256u && lower == 0) wc[w][d] = __popc(peers);
        __syncthreads();
        {
            u32 r = run[threadIdx.x];
            for (int k = 0; k < 8; ++k) {
                u32 v = wc[k][threadIdx.x];
                wc[k][threadIdx.x] = r;
                r += v;
            }
            run[threadIdx.x] = r;
        }
        __syncthreads();
        pos[c] = d < 256u ? wc[w][d] + lower : 0u;
        __syncthreads();
    }
    // run[d] is now the tile's count of digit d; lstart its first position in the tile.
    lstart[threadIdx.x] = scan256(run[threadIdx.x], tmp);
    __syncthreads();
    KEY* sk = (KEY*)stage;
    for (int c = 0; c < RITEMS; ++c) {
        int i = c * RT + threadIdx.x;
        if (i < m) {
            u32 d = digit(kk[c], p);
            pos[c] += lstart[d];
            sk[pos[c]] = kk[c];
            sd[pos[c]] = (unsigned char)d;
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < m; i += RT) {
        u32 d = sd[i];
        kout[gstart[d] + (i - lstart[d])] = sk[i];
    }
#if PAYLOAD != 0
    __syncthreads();
    VAL* sv = (VAL*)stage;
    for (int c = 0; c < RITEMS; ++c) {
        int i = c * RT + threadIdx.x;
        if (i < m) sv[pos[c]] = vin[p0 + i];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < m; i += RT) {
        u32 d = sd[i];
        vout[gstart[d] + (i - lstart[d])] = sv[i];
    }
#endif
}

// The sorted keys and payloads to the output: values (from the payload's bits, or decoded
// from the key) or positions as int64.
extern "C" __global__ void KNAME(final)(void* __restrict__ out, const KEY* __restrict__ keys,
    const VAL* __restrict__ vals, long long total, int want_idx) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
#if PAYLOAD == 0
    ((TI*)out)[i] = DECODE(keys[i]);
#elif PAYLOAD == 1
    if (want_idx) ((i64*)out)[i] = (i64)vals[i];
#else
    ((VAL*)out)[i] = vals[i];
#endif
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
