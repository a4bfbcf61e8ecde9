// Fused scaled dot-product attention, as cpu/misc.rs computes it: one warp per query row,
// the row's scores never stored. Keys go in chunks of 32 (lane j scores key j of the chunk
// against the query row kept in shared memory), then an online-softmax update: the running
// max m, sum l and the output accumulator (lane c holds columns c, c+32, ...) are rescaled
// by exp(m_old - m_new). Grouped-query heads read their key/value head in place.
// The includer defines T (storage), C (compute: float, or double for f64) and KNAME(k).
// Operands are row-major: q (rows = B·Hq·L, E), k (B·Hkv, S, E), v (B·Hkv, S, Ev), the
// mask (rows, S) of u8 (kind 2: allow) or C (kind 3: additive). kind 1 is causal. Key and
// value heads are `kstride`/`vstride` elements apart (a KV cache's `[:len]` view is read in
// place). E and Ev are at most 256 (the caller checks).
//
// Decoding (few query rows, many keys) uses `dec` and `comb` instead, split-KV: block
// (row, split) scores its share of the keys, a warp per key with the lanes across E
// (coalesced), each warp an online softmax, the block's four merged into a partial
// (max, sum, accumulator) in C; `comb` merges a row's partials.

#define A_WARPS 4
#define A_MAXD 256
#define K_INF __int_as_float(0x7f800000)
#define K_NAN __int_as_float(0x7fc00000)

DEV C a_warp_max(C v) {
    for (int d = 16; d > 0; d >>= 1) { C o = __shfl_xor_sync(0xffffffffu, v, d); v = o > v ? o : v; }
    return v;
}
DEV C a_warp_sum(C v) {
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    return v;
}

// The key/value head that query row r (of B·Hq·L rows) reads: grouped heads share one.
DEV long long a_kv_head(long long r, int l, int hq, int hkv) {
    const long long bh = r / l;
    return (bh / hq) * hkv + (int)(bh % hq) / (hq / hkv);
}

// How many keys row r may see: all `s`, or with the causal mask (kind 1) those up to its
// position, the last query aligned to the last key.
DEV int a_end(long long r, int l, int s, int kind) {
    if (kind != 1) return s;
    const long long lim = (long long)(r % l) + s - l + 1;
    return lim < 0 ? 0 : (lim < s ? (int)lim : s);
}

extern "C" __global__ void __launch_bounds__(32 * A_WARPS) KNAME(fwd)(T* __restrict__ out,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    const void* __restrict__ mask, long long rows, int hq, int hkv, int l, int s, int e,
    int ev, C scale, int kind, long long kstride, long long vstride) {
    __shared__ C sq[A_WARPS][A_MAXD];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const long long r = (long long)blockIdx.x * A_WARPS + w;
    if (r >= rows) return;  // whole warps leave together; no block barrier follows
    const long long kvh = a_kv_head(r, l, hq, hkv);
    const T* qr = q + r * e;
    for (int x = lane; x < e; x += 32) sq[w][x] = ld(qr[x]);
    __syncwarp();
    const T* kb = k + kvh * kstride;
    const T* vb = v + kvh * vstride;
    const int end = a_end(r, l, s, kind);
    const unsigned char* allow = (const unsigned char*)mask + r * s;
    const C* add = (const C*)mask + r * s;
    C m = -(C)K_INF, lsum = 0;
    C acc[A_MAXD / 32];
    #pragma unroll
    for (int t = 0; t < A_MAXD / 32; ++t) acc[t] = 0;
    int nan = 0, any = 0;
    for (int j0 = 0; j0 < end; j0 += 32) {
        const int j = j0 + lane;
        bool valid = j < end;
        C sc = -(C)K_INF;
        if (valid && kind == 2) valid = allow[j] != 0;
        if (valid) {
            const T* kr = kb + (long long)j * e;
            C d = 0;
            for (int x = 0; x < e; ++x) d += sq[w][x] * ld(kr[x]);
            sc = d * scale;
            if (kind == 3) sc += add[j];
            nan |= sc != sc;
        }
        any |= __any_sync(0xffffffffu, valid);
        C cm = a_warp_max(valid ? sc : -(C)K_INF);
        C nm = cm > m ? cm : m;
        if (nm == -(C)K_INF) continue;  // nothing to weigh yet (uniform across the warp)
        C f = m_exp(m - nm);
        C p = valid ? m_exp(sc - nm) : (C)0;
        lsum = lsum * f + a_warp_sum(p);
        #pragma unroll
        for (int t = 0; t < A_MAXD / 32; ++t) acc[t] *= f;
        const int nk = end - j0 < 32 ? end - j0 : 32;
        for (int jj = 0; jj < nk; ++jj) {
            C pj = __shfl_sync(0xffffffffu, p, jj);
            if (pj == (C)0) continue;  // uniform: every lane got the same pj
            const T* vr = vb + (long long)(j0 + jj) * ev;
            #pragma unroll
            for (int t = 0; t < A_MAXD / 32; ++t) {
                int c = lane + 32 * t;
                if (c < ev) acc[t] += pj * ld(vr[c]);
            }
        }
        m = nm;
    }
    nan = __any_sync(0xffffffffu, nan);
    T* o = out + r * ev;
    // No keys: an empty weighted sum (zeros). Every key masked or a NaN score: NaN.
    C fill = s == 0 ? (C)0 : (C)K_NAN;
    bool bad = s == 0 || nan || !any || m == -(C)K_INF;
    C inv = (C)1 / lsum;
    #pragma unroll
    for (int t = 0; t < A_MAXD / 32; ++t) {
        int c = lane + 32 * t;
        if (c < ev) o[c] = st<T>(bad ? fill : acc[t] * inv);
    }
}

// Merges a block's `ns` softmax states (max sm[u], sum sl[u], accumulator row u of sacc,
// `stride` apart) into the split's partial `o`: its max, its sum (NaN with `anynan`), then
// the accumulator over `ev` columns. Called by the whole block after a barrier.
DEV void a_merge_states(C* o, const C* sm, const C* sl, const C* sacc, int ns, int stride,
    int ev, int anynan) {
    C mx = -(C)K_INF;
    for (int u = 0; u < ns; ++u) mx = sm[u] > mx ? sm[u] : mx;
    for (int c = threadIdx.x; c < ev; c += blockDim.x) {
        C a = 0;
        for (int u = 0; u < ns; ++u)
            if (sm[u] != -(C)K_INF) a += sacc[u * stride + c] * m_exp(sm[u] - mx);
        o[2 + c] = a;
    }
    if (threadIdx.x == 0) {
        C tot = 0;
        for (int u = 0; u < ns; ++u)
            if (sm[u] != -(C)K_INF) tot += sl[u] * m_exp(sm[u] - mx);
        o[0] = mx;
        o[1] = anynan ? (C)K_NAN : tot;
    }
}

// One block of 4 warps per (query row, split of `chunk` keys). part: (rows, splits, ev + 2)
// of C: the split's max, its sum (NaN when a score was NaN), then the accumulator.
extern "C" __global__ void __launch_bounds__(32 * A_WARPS) KNAME(dec)(C* __restrict__ part,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    const void* __restrict__ mask, int hq, int hkv, int l, int s, int e, int ev, C scale,
    int kind, long long kstride, long long vstride, int chunk) {
    __shared__ C sq[A_MAXD];
    __shared__ C sacc[A_WARPS][A_MAXD];
    __shared__ C sm[A_WARPS], sl[A_WARPS];
    __shared__ int snan[A_WARPS];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const long long r = blockIdx.x;
    const int split = blockIdx.y, nsplit = gridDim.y;
    const long long kvh = a_kv_head(r, l, hq, hkv);
    const T* qr = q + r * e;
    for (int x = threadIdx.x; x < e; x += 32 * A_WARPS) sq[x] = ld(qr[x]);
    __syncthreads();
    const T* kb = k + kvh * kstride;
    const T* vb = v + kvh * vstride;
    const int end = a_end(r, l, s, kind);
    const unsigned char* allow = (const unsigned char*)mask + r * s;
    const C* add = (const C*)mask + r * s;
    const int j0 = split * chunk;
    const int j1 = j0 + chunk < end ? j0 + chunk : end;
    C m = -(C)K_INF, lsum = 0;
    C acc[A_MAXD / 32];
    #pragma unroll
    for (int t = 0; t < A_MAXD / 32; ++t) acc[t] = 0;
    int nan = 0;
    for (int j = j0 + w; j < j1; j += A_WARPS) {
        if (kind == 2 && allow[j] == 0) continue;  // uniform across the warp
        // The key's and the value's row are loaded together: one memory latency a key.
        const T* kr = kb + (long long)j * e;
        const T* vr = vb + (long long)j * ev;
        C kx[A_MAXD / 32], vx[A_MAXD / 32];
        #pragma unroll
        for (int t = 0; t < A_MAXD / 32; ++t) {
            const int c = lane + 32 * t;
            kx[t] = c < e ? ld(kr[c]) : (C)0;
            vx[t] = c < ev ? ld(vr[c]) : (C)0;
        }
        C d = 0;
        #pragma unroll
        for (int t = 0; t < A_MAXD / 32; ++t)
            if (lane + 32 * t < e) d += sq[lane + 32 * t] * kx[t];
        C sc = a_warp_sum(d) * scale;
        if (kind == 3) sc += add[j];
        if (sc != sc) { nan = 1; continue; }
        if (sc == -(C)K_INF) continue;
        const C nm = sc > m ? sc : m;
        const C f = m_exp(m - nm), p = m_exp(sc - nm);
        lsum = lsum * f + p;
        #pragma unroll
        for (int t = 0; t < A_MAXD / 32; ++t) {
            int c = lane + 32 * t;
            if (c < ev) acc[t] = acc[t] * f + p * vx[t];
        }
        m = nm;
    }
    if (lane == 0) { sm[w] = m; sl[w] = lsum; snan[w] = nan; }
    #pragma unroll
    for (int t = 0; t < A_MAXD / 32; ++t) {
        int c = lane + 32 * t;
        if (c < ev) sacc[w][c] = acc[t];
    }
    __syncthreads();
    int anynan = 0;
    for (int u = 0; u < A_WARPS; ++u) anynan |= snan[u];
    a_merge_states(part + ((long long)r * nsplit + split) * (ev + 2), sm, sl, &sacc[0][0],
        A_WARPS, A_MAXD, ev, anynan);
}

// `dec` with 16-byte loads, for E = Ev a power of two times VEC elements (VEC = 16 bytes
// of T): G = E / VEC lanes hold one key's row, so a warp scores 32 / G keys at once and
// keeps DEC_U such steps of loads in flight before it uses them (`dec` waits a memory
// latency per key). Each group of G lanes runs its own online softmax; the block merges
// its A_WARPS * 32 / G states into the same partial `dec` writes, for `comb`.
// The includer may set DEC_U and DEC_PIPE (attention.rs: INGOT_CUDA_DEC_U and
// INGOT_CUDA_DEC_PIPE, for tuning on a GPU).
#ifndef DEC_U
#define DEC_U 4
#endif
#ifndef DEC_PIPE
#define DEC_PIPE 0
#endif
extern "C" __global__ void __launch_bounds__(32 * A_WARPS) KNAME(decv)(C* __restrict__ part,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    const void* __restrict__ mask, int hq, int hkv, int l, int s, int e, C scale,
    int kind, long long kstride, long long vstride, int chunk) {
    constexpr int VEC = 16 / sizeof(T);
    __shared__ C sacc[A_WARPS * 32 * VEC];
    __shared__ C sm[A_WARPS * 32], sl[A_WARPS * 32];
    __shared__ int snan[A_WARPS];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int G = e / VEC, KPW = 32 / G;
    const int sub = lane / G, gl = lane % G;
    const long long r = blockIdx.x;
    const int split = blockIdx.y, nsplit = gridDim.y;
    const long long kvh = a_kv_head(r, l, hq, hkv);
    C qv[VEC];
    {
        const uint4 raw = *(const uint4*)(q + r * e + gl * VEC);
        const T* x = (const T*)&raw;
        #pragma unroll
        for (int c = 0; c < VEC; ++c) qv[c] = ld(x[c]);
    }
    const T* kb = k + kvh * kstride + gl * VEC;
    const T* vb = v + kvh * vstride + gl * VEC;
    const int end = a_end(r, l, s, kind);
    const unsigned char* allow = (const unsigned char*)mask + r * s;
    const C* add = (const C*)mask + r * s;
    const int j0 = split * chunk;
    const int j1 = j0 + chunk < end ? j0 + chunk : end;
    C m = -(C)K_INF, lsum = 0;
    C acc[VEC];
    #pragma unroll
    for (int c = 0; c < VEC; ++c) acc[c] = 0;
    int nan = 0;
    const int step = A_WARPS * KPW;  // keys a block scores at once
    // DEC_U steps of this lane's 16 bytes of keys and values from key jb on.
    auto load = [&](int jb, uint4* kr, uint4* vr) {
        #pragma unroll
        for (int u = 0; u < DEC_U; ++u) {
            const int j = jb + u * step;
            if (j < j1) {
                kr[u] = *(const uint4*)(kb + (long long)j * e);
                vr[u] = *(const uint4*)(vb + (long long)j * e);
            } else {
                kr[u] = make_uint4(0, 0, 0, 0);
                vr[u] = kr[u];
            }
        }
    };
    // Scores those keys and folds them into this lane group's online softmax.
    auto fold = [&](int jb, const uint4* kr, const uint4* vr) {
        #pragma unroll
        for (int u = 0; u < DEC_U; ++u) {
            const int j = jb + u * step;
            const T* kx = (const T*)&kr[u];
            C d = 0;
            #pragma unroll
            for (int c = 0; c < VEC; ++c) d += qv[c] * ld(kx[c]);
            // The G lanes of a key are aligned xor partners: every lane gets the same sum.
            for (int o = G >> 1; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
            bool use = j < j1;
            if (use && kind == 2) use = allow[j] != 0;
            C sc = d * scale;
            if (use && kind == 3) sc += add[j];
            if (use && sc != sc) { nan = 1; use = false; }
            if (use && sc != -(C)K_INF) {
                const T* vx = (const T*)&vr[u];
                const C nm = sc > m ? sc : m;
                const C f = m_exp(m - nm), p = m_exp(sc - nm);
                lsum = lsum * f + p;
                #pragma unroll
                for (int c = 0; c < VEC; ++c) acc[c] = acc[c] * f + p * ld(vx[c]);
                m = nm;
            }
        }
    };
    const int jfirst = j0 + w * KPW + sub;
#if DEC_PIPE
    // The next steps' loads are issued before the current ones are scored, so the warp
    // always has loads in flight (twice the registers for them).
    uint4 kr[DEC_U], vr[DEC_U], nk[DEC_U], nv[DEC_U];
    if (jfirst - sub < j1) load(jfirst, kr, vr);
    for (int jb = jfirst; jb - sub < j1; jb += step * DEC_U) {
        const int jn = jb + step * DEC_U;
        if (jn - sub < j1) load(jn, nk, nv);
        fold(jb, kr, vr);
        #pragma unroll
        for (int u = 0; u < DEC_U; ++u) { kr[u] = nk[u]; vr[u] = nv[u]; }
    }
#else
    for (int jb = jfirst; jb - sub < j1; jb += step * DEC_U) {
        uint4 kr[DEC_U], vr[DEC_U];
        load(jb, kr, vr);
        fold(jb, kr, vr);
    }
#endif
    const int me = w * KPW + sub;  // this lane group's state
    if (gl == 0) { sm[me] = m; sl[me] = lsum; }
    #pragma unroll
    for (int c = 0; c < VEC; ++c) sacc[me * e + gl * VEC + c] = acc[c];
    nan = __any_sync(0xffffffffu, nan);
    if (lane == 0) snan[w] = nan;
    __syncthreads();
    int anynan = 0;
    for (int u = 0; u < A_WARPS; ++u) anynan |= snan[u];
    a_merge_states(part + ((long long)r * nsplit + split) * (e + 2), sm, sl, sacc,
        A_WARPS * KPW, e, e, anynan);
}

// One block per query row: merges the row's split partials into the output. Every key
// masked or a NaN score gives NaN, as `fwd` does.
extern "C" __global__ void __launch_bounds__(128) KNAME(comb)(T* __restrict__ out,
    const C* __restrict__ part, int nsplit, int ev) {
    const long long r = blockIdx.x;
    const C* p = part + r * nsplit * (long long)(ev + 2);
    C mx = -(C)K_INF;
    int nan = 0;
    for (int u = 0; u < nsplit; ++u) {
        C mu = p[(long long)u * (ev + 2)];
        mx = mu > mx ? mu : mx;
        nan |= p[(long long)u * (ev + 2) + 1] != p[(long long)u * (ev + 2) + 1];
    }
    const bool bad = nan || mx == -(C)K_INF;
    C tot = 0;
    if (!bad)
        for (int u = 0; u < nsplit; ++u) {
            C mu = p[(long long)u * (ev + 2)];
            if (mu != -(C)K_INF) tot += p[(long long)u * (ev + 2) + 1] * m_exp(mu - mx);
        }
    const C inv = (C)1 / tot;
    for (int c = threadIdx.x; c < ev; c += blockDim.x) {
        C a = 0;
        if (!bad)
            for (int u = 0; u < nsplit; ++u) {
                C mu = p[(long long)u * (ev + 2)];
                if (mu != -(C)K_INF) a += p[(long long)u * (ev + 2) + 2 + c] * m_exp(mu - mx);
            }
        out[r * ev + c] = st<T>(bad ? (C)K_NAN : a * inv);
    }
}
