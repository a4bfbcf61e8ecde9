// Flash attention on tensor cores (sm_80 and later: mma.sync m16n8k16, ldmatrix, cp.async)
// for f16 and bf16 prefill, the scores never leaving registers. A block of 4 warps takes 64
// query rows of one head (16 a warp) and walks the keys in tiles of 64: S = Q K^T on the
// tensor cores in f32, the online softmax on S's accumulator fragments (in base 2: the scale
// carries log2 e), then P, rounded to T, goes straight from S's accumulator layout into the
// A operand of O += P V. K and V tiles come through shared memory by cp.async, V's load
// overlapping the scores and the next K's load overlapping P V.
//
// The includer defines T (f16 or bf16), MMA_T ("f16" or "bf16"), FD (the head dim of q, k
// and v: a multiple of 16, at most 128) and KNAME(k). Operands: q (B·Hq, L, FD) row-major,
// k and v (B·Hkv, S, FD) with rows contiguous and heads `kstride`/`vstride` elements apart,
// every row 16-byte aligned (the caller checks). causal: query i sees keys j <= i + S - L.
// Rows whose every key is masked come out NaN (0/0), as in the decomposition; S = 0 is the
// caller's (an empty sum is zeros). For the backward pass (`bkv` and `bq` below), when not
// null: lse gets each row's log-sum-exp of the scaled scores in base 2 (m + log2 sum, the
// scores carrying log2 e), and dsum each row's D = g · o, g (gco) being the output's
// cotangent, row-major like the output.

#define F_BQ 64
#define F_BK 64
#define F_LD (FD + 8)  // shared row stride: ldmatrix's eight 16-byte rows hit distinct banks
#define F_INF __int_as_float(0x7f800000)

DEV unsigned f_smem(const void* p) {
    unsigned a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}

// Rows [r0, r0 + R) of a (rows, FD) operand into an R x F_LD tile; rows at or past `rows`
// are zeros (cp.async with a source size of 0 reads nothing).
template <int R> DEV void f_load(T* tile, const T* src, long long r0, long long rows, int tid) {
    const int chunks = FD / 8;
    for (int c = tid; c < R * chunks; c += 128) {
        const int r = c / chunks, x = (c % chunks) * 8;
        const bool in = r0 + r < rows;
        const T* from = in ? src + (r0 + r) * FD + x : src;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(f_smem(tile + r * F_LD + x)),
                     "l"(from), "r"(in ? 16 : 0));
    }
    asm volatile("cp.async.commit_group;");
}

DEV void f_wait() { asm volatile("cp.async.wait_group 0;" ::: "memory"); }

DEV void f_ldm(unsigned& a, unsigned& b, unsigned& c, unsigned& d, unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "r"(addr));
}

DEV void f_ldm_t(unsigned& a, unsigned& b, unsigned& c, unsigned& d, unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "r"(addr));
}

DEV void f_mma(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." MMA_T "." MMA_T ".f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a pair of T, `lo` in the low half (the lower column).
DEV unsigned f_pack(float lo, float hi) {
    unsigned r;
    asm("cvt.rn." MMA_T "x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// acc (16 rows x 8·NT columns, accumulator fragments) += a (the A fragments of 16 rows by
// columns c·16 .. c·16 + 15 of the head dim) times the transpose of rows 0 .. 8·NT - 1 of
// `tile` (rows x FD in shared memory: its rows are the output's columns), read by ldmatrix.
template <int NT>
DEV void f_mma_cols(float (*acc)[4], const unsigned* a, const T* tile, int c, int lane) {
    #pragma unroll
    for (int n = 0; n < NT; n += 2) {
        unsigned b0, b1, b2, b3;
        f_ldm(b0, b1, b2, b3,
              f_smem(tile + (n * 8 + (lane & 7) + (lane >> 4) * 8) * F_LD + c * 16 +
                     ((lane >> 3) & 1) * 8));
        f_mma(acc[n], a, b0, b1);
        f_mma(acc[n + 1], a, b2, b3);
    }
}

// acc (16 rows x FD, accumulator fragments) += chunk c of a (16 rows x 16 columns of an
// accumulator-layout tile, rounded to T: the C fragments reused as A fragments) times rows
// c·16 .. c·16 + 15 of `tile` (rows x FD in shared memory, read transposed by ldmatrix).
DEV void f_mma_rows(float (*acc)[4], const float (*a)[4], int c, const T* tile, int lane) {
    const unsigned pa[4] = {f_pack(a[2 * c][0], a[2 * c][1]), f_pack(a[2 * c][2], a[2 * c][3]),
                            f_pack(a[2 * c + 1][0], a[2 * c + 1][1]),
                            f_pack(a[2 * c + 1][2], a[2 * c + 1][3])};
    #pragma unroll
    for (int d = 0; d < FD / 16; ++d) {
        unsigned b0, b1, b2, b3;
        f_ldm_t(b0, b1, b2, b3, f_smem(tile + (c * 16 + (lane & 15)) * F_LD + d * 16 + (lane >> 4) * 8));
        f_mma(acc[2 * d], pa, b0, b1);
        f_mma(acc[2 * d + 1], pa, b2, b3);
    }
}

extern "C" __global__ void __launch_bounds__(128) KNAME(flash)(T* __restrict__ out,
    float* __restrict__ lse, const T* __restrict__ gco, float* __restrict__ dsum,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, long long bhs,
    int hq, int hkv, int l, int s, float scale_log2, int causal, long long kstride,
    long long vstride) {
    __shared__ __align__(16) T sk[F_BK * F_LD];
    __shared__ __align__(16) T sv[F_BK * F_LD];
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    // The last query tiles (the most keys under a causal mask) go first.
    const long long ntq = (l + F_BQ - 1) / F_BQ;
    const long long bh = blockIdx.x % bhs;
    const int q0 = (int)((ntq - 1 - blockIdx.x / bhs) * F_BQ);
    const long long b = bh / hq;
    const int h = (int)(bh % hq);
    const long long kvh = b * hkv + h / (hq / hkv);
    const T* kb = k + kvh * kstride;
    const T* vb = v + kvh * vstride;

    // Q's tile passes through sk into registers (A fragments, 16 dims each).
    f_load<F_BQ>(sk, q + bh * (long long)l * FD, q0, l, tid);
    f_wait();
    __syncthreads();
    unsigned qa[FD / 16][4];
    #pragma unroll
    for (int c = 0; c < FD / 16; ++c)
        f_ldm(qa[c][0], qa[c][1], qa[c][2], qa[c][3],
              f_smem(sk + (w * 16 + (lane & 15)) * F_LD + c * 16 + (lane >> 4) * 8));
    __syncthreads();

    const int off = s - l;
    int kend = s;
    if (causal) {
        const long long lim = (long long)q0 + F_BQ + off;  // one past the block's last key
        kend = lim < 0 ? 0 : (lim < s ? (int)lim : s);
    }
    const int ntk = (kend + F_BK - 1) / F_BK;
    float o[FD / 8][4];
    #pragma unroll
    for (int d = 0; d < FD / 8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m[2] = {-F_INF, -F_INF}, lsum[2] = {0.f, 0.f};
    const int row0 = q0 + w * 16 + g;  // this thread's rows: row0 and row0 + 8
    if (ntk > 0) f_load<F_BK>(sk, kb, 0, s, tid);
    for (int j = 0; j < ntk; ++j) {
        const int k0 = j * F_BK;
        f_wait();
        __syncthreads();  // K_j is in sk, and every warp is done reading sv
        f_load<F_BK>(sv, vb, k0, s, tid);
        float sc[F_BK / 8][4];
        #pragma unroll
        for (int n = 0; n < F_BK / 8; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.f;
        #pragma unroll
        for (int c = 0; c < FD / 16; ++c) f_mma_cols<F_BK / 8>(sc, qa[c], sk, c, lane);
        // Scale (to base 2) and mask: keys past S, and under causal past row + off.
        const bool edge = k0 + F_BK > s || (causal && k0 + F_BK - 1 > q0 + off);
        #pragma unroll
        for (int n = 0; n < F_BK / 8; ++n) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) {
                float x = sc[n][e] * scale_log2;
                if (edge) {
                    const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                    const int row = row0 + (e >> 1) * 8;
                    if (key >= s || (causal && key > row + off)) x = -F_INF;
                }
                sc[n][e] = x;
            }
        }
        #pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = -F_INF;
            #pragma unroll
            for (int n = 0; n < F_BK / 8; ++n) mx = fmaxf(mx, fmaxf(sc[n][2 * r], sc[n][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float nm = fmaxf(m[r], mx);
            // Nothing seen yet: subtract 0, so masked scores give exp2(-inf) = 0, not NaN.
            const float mu = nm == -F_INF ? 0.f : nm;
            const float f = exp2f(m[r] - mu);
            m[r] = nm;
            float sum = 0.f;
            #pragma unroll
            for (int n = 0; n < F_BK / 8; ++n) {
                sc[n][2 * r] = exp2f(sc[n][2 * r] - mu);
                sc[n][2 * r + 1] = exp2f(sc[n][2 * r + 1] - mu);
                sum += sc[n][2 * r] + sc[n][2 * r + 1];
            }
            // Each lane keeps its own part of the row sum (the quad shares f).
            lsum[r] = lsum[r] * f + sum;
            #pragma unroll
            for (int d = 0; d < FD / 8; ++d) {
                o[d][2 * r] *= f;
                o[d][2 * r + 1] *= f;
            }
        }
        f_wait();
        __syncthreads();  // V_j is in sv, and every warp is done reading sk
        if (j + 1 < ntk) f_load<F_BK>(sk, kb, k0 + F_BK, s, tid);
        #pragma unroll
        for (int c = 0; c < F_BK / 16; ++c) f_mma_rows(o, sc, c, sv, lane);
    }
    #pragma unroll
    for (int r = 0; r < 2; ++r) {
        float sum = lsum[r];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const int row = row0 + r * 8;
        const bool live = row < l;  // the quad's; every lane stays for the shuffles
        const float inv = 1.f / sum;  // every key masked: 0 * inf = NaN
        if (live) {
            unsigned* orow = (unsigned*)(out + (bh * l + row) * FD);
            #pragma unroll
            for (int d = 0; d < FD / 8; ++d)
                orow[d * 4 + t4] = f_pack(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
            if (lse != 0 && t4 == 0) lse[bh * l + row] = m[r] + log2f(sum);
        }
        if (dsum != 0) {
            // D = g · o for the backward pass, from the unrounded output.
            float acc = 0.f;
            if (live) {
                const unsigned* grow = (const unsigned*)(gco + (bh * l + row) * FD);
                #pragma unroll
                for (int d = 0; d < FD / 8; ++d) {
                    const unsigned gp = grow[d * 4 + t4];
                    T lo, hi;
                    lo.b = (unsigned short)(gp & 0xffffu);
                    hi.b = (unsigned short)(gp >> 16);
                    acc += o[d][2 * r] * inv * ld(lo) + o[d][2 * r + 1] * inv * ld(hi);
                }
            }
            acc += __shfl_xor_sync(0xffffffffu, acc, 1);
            acc += __shfl_xor_sync(0xffffffffu, acc, 2);
            if (live && t4 == 0) dsum[bh * l + row] = acc;
        }
    }
}

// ---- backward: dk and dv (`bkv`), then dq (`bq`) -------------------------------------------
// Both recompute the scores from q and k and the weights from the forward pass's lse
// (P = exp2(S·scale·log2 e - lse)); with D = g · o, dS = P (dP - D) where dP = g vᵀ.
// A row whose lse is -inf or NaN (it saw no key, or a NaN) gives NaN weights for every key,
// as the decomposition's gradient does; masked keys get no dS.

// Per (64-key tile, key/value head): warp w owns keys k0 + 16w .. +15 (the rows of Sᵀ = K Qᵀ
// and dPᵀ = V gᵀ), walks the group's query heads and their rows in tiles of 32, and keeps
// its dK and dV in registers: dV += Pᵀ g, dK += dSᵀ Q. Shared memory (dynamic): K and V
// tiles of 64 rows, Q and g tiles of 32, the 32 rows' lse and D.
extern "C" __global__ void __launch_bounds__(128) KNAME(bkv)(T* __restrict__ dk,
    T* __restrict__ dv, const T* __restrict__ q, const T* __restrict__ k,
    const T* __restrict__ v, const T* __restrict__ go, const float* __restrict__ lse,
    const float* __restrict__ dsum, long long bkh, int hq, int hkv, int l, int s,
    float scale_log2, float scale, int causal, long long kstride, long long vstride) {
    extern __shared__ __align__(16) unsigned char f_sh[];
    T* sk = (T*)f_sh;
    T* sv = sk + 64 * F_LD;
    T* sq = sv + 64 * F_LD;
    T* sg = sq + 32 * F_LD;
    float* sl = (float*)(sg + 32 * F_LD);
    float* sd = sl + 32;
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const long long kvh = blockIdx.x % bkh;
    const int k0 = (int)(blockIdx.x / bkh) * 64;
    const long long b = kvh / hkv;
    const int hk = (int)(kvh % hkv), group = hq / hkv;
    f_load<64>(sk, k + kvh * kstride, k0, s, tid);
    f_load<64>(sv, v + kvh * vstride, k0, s, tid);
    float dka[FD / 8][4], dva[FD / 8][4];
    #pragma unroll
    for (int d = 0; d < FD / 8; ++d)
        #pragma unroll
        for (int e = 0; e < 4; ++e) dka[d][e] = dva[d][e] = 0.f;
    const int off = s - l;
    // Rows below k0 - off see none of these keys; with more queries than keys the rows that
    // see no key at all are walked too (their NaN weights reach every dv row).
    const int qstart = causal && off >= 0 && k0 - off > 0 ? k0 - off : 0;
    const int key0 = k0 + w * 16 + g;  // this thread's keys: key0 and key0 + 8
    for (int hh = 0; hh < group; ++hh) {
        const long long bh = b * hq + (long long)hk * group + hh;
        const T* qb = q + bh * (long long)l * FD;
        const T* gb = go + bh * (long long)l * FD;
        for (int i0 = qstart; i0 < l; i0 += 32) {
            __syncthreads();  // every warp is done with the last tiles
            f_load<32>(sq, qb, i0, l, tid);
            f_load<32>(sg, gb, i0, l, tid);
            if (tid < 32) {
                const int r = i0 + tid;
                sl[tid] = r < l ? lse[bh * l + r] : 0.f;
                sd[tid] = r < l ? dsum[bh * l + r] : 0.f;
            }
            f_wait();
            __syncthreads();
            float st[4][4], dpt[4][4];
            #pragma unroll
            for (int n = 0; n < 4; ++n)
                #pragma unroll
                for (int e = 0; e < 4; ++e) st[n][e] = dpt[n][e] = 0.f;
            #pragma unroll
            for (int c = 0; c < FD / 16; ++c) {
                unsigned ka[4], va[4];
                const int arow = (w * 16 + (lane & 15)) * F_LD + c * 16 + (lane >> 4) * 8;
                f_ldm(ka[0], ka[1], ka[2], ka[3], f_smem(sk + arow));
                f_ldm(va[0], va[1], va[2], va[3], f_smem(sv + arow));
                f_mma_cols<4>(st, ka, sq, c, lane);
                f_mma_cols<4>(dpt, va, sg, c, lane);
            }
            // Pᵀ into st and dSᵀ into dpt.
            #pragma unroll
            for (int n = 0; n < 4; ++n) {
                #pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int key = key0 + (e >> 1) * 8;
                    const int qr = n * 8 + 2 * t4 + (e & 1), qi = i0 + qr;
                    const float lq = sl[qr];
                    float p = 0.f, ds = 0.f;
                    if (qi < l && key < s) {
                        if (causal && key > qi + off) {
                            p = lq > -F_INF ? 0.f : __int_as_float(0x7fc00000);
                        } else {
                            p = exp2f(st[n][e] * scale_log2 - lq);
                            ds = p * (dpt[n][e] - sd[qr]);
                        }
                    }
                    st[n][e] = p;
                    dpt[n][e] = ds;
                }
            }
            #pragma unroll
            for (int c = 0; c < 2; ++c) {
                f_mma_rows(dva, st, c, sg, lane);
                f_mma_rows(dka, dpt, c, sq, lane);
            }
        }
    }
    f_wait();  // when no query row saw these keys, their tiles' copies are still pending
    #pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int key = key0 + r * 8;
        if (key >= s) continue;
        unsigned* krow = (unsigned*)(dk + (kvh * s + key) * FD);
        unsigned* vrow = (unsigned*)(dv + (kvh * s + key) * FD);
        #pragma unroll
        for (int d = 0; d < FD / 8; ++d) {
            krow[d * 4 + t4] = f_pack(dka[d][2 * r] * scale, dka[d][2 * r + 1] * scale);
            vrow[d * 4 + t4] = f_pack(dva[d][2 * r], dva[d][2 * r + 1]);
        }
    }
}

// Per (64-query tile, query head): warp w owns rows q0 + 16w .. +15 with their Q and g as A
// fragments, walks the keys in tiles of 32 (S = Q Kᵀ, dP = g Vᵀ) and keeps dQ += dS K in
// registers. Shared memory (static): a 64-row staging tile for Q and g, K and V tiles of 32.
extern "C" __global__ void __launch_bounds__(128) KNAME(bq)(T* __restrict__ dq,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    const T* __restrict__ go, const float* __restrict__ lse, const float* __restrict__ dsum,
    long long bhs, int hq, int hkv, int l, int s, float scale_log2, float scale, int causal,
    long long kstride, long long vstride) {
    __shared__ __align__(16) T stage[64 * F_LD];
    __shared__ __align__(16) T sk[32 * F_LD];
    __shared__ __align__(16) T sv[32 * F_LD];
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const long long ntq = (l + 63) / 64;
    const long long bh = blockIdx.x % bhs;
    const int q0 = (int)((ntq - 1 - blockIdx.x / bhs) * 64);
    const long long b = bh / hq;
    const int h = (int)(bh % hq);
    const long long kvh = b * hkv + h / (hq / hkv);
    const T* kb = k + kvh * kstride;
    const T* vb = v + kvh * vstride;
    unsigned qa[FD / 16][4], ga[FD / 16][4];
    const int arow = (w * 16 + (lane & 15)) * F_LD + (lane >> 4) * 8;
    f_load<64>(stage, q + bh * (long long)l * FD, q0, l, tid);
    f_wait();
    __syncthreads();
    #pragma unroll
    for (int c = 0; c < FD / 16; ++c) f_ldm(qa[c][0], qa[c][1], qa[c][2], qa[c][3], f_smem(stage + arow + c * 16));
    __syncthreads();
    f_load<64>(stage, go + bh * (long long)l * FD, q0, l, tid);
    f_wait();
    __syncthreads();
    #pragma unroll
    for (int c = 0; c < FD / 16; ++c) f_ldm(ga[c][0], ga[c][1], ga[c][2], ga[c][3], f_smem(stage + arow + c * 16));
    const int row0 = q0 + w * 16 + g;
    float lq[2], dd[2];
    #pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = row0 + r * 8;
        lq[r] = row < l ? lse[bh * l + row] : 0.f;
        dd[r] = row < l ? dsum[bh * l + row] : 0.f;
    }
    const int off = s - l;
    int kend = s;
    if (causal) {
        const long long lim = (long long)q0 + 64 + off;
        kend = lim < 0 ? 0 : (lim < s ? (int)lim : s);
    }
    float dqa[FD / 8][4];
    #pragma unroll
    for (int d = 0; d < FD / 8; ++d) dqa[d][0] = dqa[d][1] = dqa[d][2] = dqa[d][3] = 0.f;
    for (int k0 = 0; k0 < kend; k0 += 32) {
        __syncthreads();  // every warp is done with the last tiles (and the staging tile)
        f_load<32>(sk, kb, k0, s, tid);
        f_load<32>(sv, vb, k0, s, tid);
        f_wait();
        __syncthreads();
        float sc[4][4], dp[4][4];
        #pragma unroll
        for (int n = 0; n < 4; ++n)
            #pragma unroll
            for (int e = 0; e < 4; ++e) sc[n][e] = dp[n][e] = 0.f;
        #pragma unroll
        for (int c = 0; c < FD / 16; ++c) {
            f_mma_cols<4>(sc, qa[c], sk, c, lane);
            f_mma_cols<4>(dp, ga[c], sv, c, lane);
        }
        #pragma unroll
        for (int n = 0; n < 4; ++n) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                const int r = e >> 1, row = row0 + r * 8;
                float ds = 0.f;
                if (key < s && !(causal && key > row + off)) {
                    const float p = exp2f(sc[n][e] * scale_log2 - lq[r]);
                    ds = p * (dp[n][e] - dd[r]);
                }
                sc[n][e] = ds;
            }
        }
        #pragma unroll
        for (int c = 0; c < 2; ++c) f_mma_rows(dqa, sc, c, sk, lane);
    }
    #pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = row0 + r * 8;
        if (row >= l) continue;
        unsigned* qrow = (unsigned*)(dq + (bh * l + row) * FD);
        #pragma unroll
        for (int d = 0; d < FD / 8; ++d) qrow[d * 4 + t4] = f_pack(dqa[d][2 * r] * scale, dqa[d][2 * r + 1] * scale);
    }
}
