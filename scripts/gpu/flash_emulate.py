"""Emulates crates/ingot/src/backend/cuda/kernels/flash.cuh lane by lane, with the
fragment layouts of mma.sync m16n8k16 and ldmatrix as the PTX ISA gives them, against plain
NumPy attention and its gradient (float64, no rounding to 16 bits). It checks the kernels'
index arithmetic (which lane holds which element, the causal and edge masks, the online
softmax, the backward's tiles) on a machine without a GPU; it mirrors the kernels by hand,
so change it with them. Slow (pure Python lanes): small shapes only.

usage: python3 scripts/gpu/flash_emulate.py
"""
import numpy as np

BQ = BK = 64
def ldm(tile, addr, trans):
    # addr[lane] = (row, col): lanes 8i..8i+7 give matrix i's rows. Returns regs[lane][i] = (lo, hi)
    regs = [[None]*4 for _ in range(32)]
    for i in range(4):
        M = np.array([tile[addr[8*i+r][0], addr[8*i+r][1]:addr[8*i+r][1]+8] for r in range(8)])
        for lane in range(32):
            g, t = lane >> 2, lane & 3
            regs[lane][i] = (M[2*t][g], M[2*t+1][g]) if trans else (M[g][2*t], M[g][2*t+1])
    return regs
def mma(c, a, b0, b1):
    # c[lane] 4 floats, a[lane] 4 pairs, b0/b1[lane] pairs
    A = np.zeros((16,16)); B = np.zeros((16,8))
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        A[g,2*t:2*t+2] = a[lane][0]; A[g+8,2*t:2*t+2] = a[lane][1]
        A[g,2*t+8:2*t+10] = a[lane][2]; A[g+8,2*t+8:2*t+10] = a[lane][3]
        B[2*t:2*t+2,g] = b0[lane]; B[2*t+8:2*t+10,g] = b1[lane]
    C = np.zeros((16,8))
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        C[g,2*t:2*t+2] = c[lane][0:2]; C[g+8,2*t:2*t+2] = c[lane][2:4]
    C = C + A @ B
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        c[lane][0:2] = C[g,2*t:2*t+2]; c[lane][2:4] = C[g+8,2*t:2*t+2]
def tile(src, r0, rows, R, FD):
    t = np.zeros((R, FD + 8))
    for r in range(R):
        if r0 + r < rows: t[r, :FD] = src[r0 + r]
    return t
def frag_a(t, w, c):
    return ldm(t, [(w*16 + (lane & 15), c*16 + (lane >> 4)*8) for lane in range(32)], False)
def frag_b(t, n, c):
    return ldm(t, [(n*8 + (lane & 7) + (lane >> 4)*8, c*16 + ((lane >> 3) & 1)*8) for lane in range(32)], False)
def frag_bt(t, c, d):
    return ldm(t, [(c*16 + (lane & 15), d*16 + (lane >> 4)*8) for lane in range(32)], True)
def col(regs, i): return [regs[x][i] for x in range(32)]
def packA(acc, c):
    return [((acc[x][2*c][0], acc[x][2*c][1]), (acc[x][2*c][2], acc[x][2*c][3]), (acc[x][2*c+1][0], acc[x][2*c+1][1]), (acc[x][2*c+1][2], acc[x][2*c+1][3])) for x in range(32)]
def mma_cols(acc, a, t, c, nt):
    # kernels' f_mma_cols: acc[.][n] for n < nt += a (A fragments) . rows of t transposed.
    for n in range(0, nt, 2):
        b = frag_b(t, n, c)
        mma([acc[x][n] for x in range(32)], a, col(b, 0), col(b, 1))
        mma([acc[x][n + 1] for x in range(32)], a, col(b, 2), col(b, 3))
def mma_rows(acc, a_acc, c, t, FD):
    # kernels' f_mma_rows: acc += chunk c of a_acc (C fragments reused as A) . rows of t.
    pa = packA(a_acc, c)
    for d in range(FD // 16):
        b = frag_bt(t, c, d)
        mma([acc[x][2*d] for x in range(32)], pa, col(b, 0), col(b, 1))
        mma([acc[x][2*d+1] for x in range(32)], pa, col(b, 2), col(b, 3))
def forward(q, k, v, scale, causal, FD, go):
    # Also the epilogue's lse (base 2) and D = g . o for the backward pass.
    l, s = q.shape[0], k.shape[0]
    out = np.full((l, FD), np.nan)
    lse2 = np.full(l, np.nan); dsum = np.full(l, np.nan)
    ntq = (l + BQ - 1) // BQ
    off = s - l
    for qt in range(ntq):
        q0 = qt * BQ
        sk = tile(q, q0, l, BQ, FD)
        kend = s
        if causal:
            lim = q0 + BQ + off
            kend = 0 if lim < 0 else min(lim, s)
        ntk = (kend + BK - 1) // BK
        for w in range(4):
            qa = [frag_a(sk, w, c) for c in range(FD // 16)]
            o = [np.zeros((FD//8, 4)) for _ in range(32)]
            m = [[-np.inf, -np.inf] for _ in range(32)]
            ls = [[0., 0.] for _ in range(32)]
            for j in range(ntk):
                k0 = j * BK
                skk = tile(k, k0, s, BK, FD); sv = tile(v, k0, s, BK, FD)
                sc = [np.zeros((BK//8, 4)) for _ in range(32)]
                for c in range(FD // 16):
                    mma_cols(sc, qa[c], skk, c, BK // 8)
                for lane in range(32):
                    g, t4 = lane >> 2, lane & 3
                    row0 = q0 + w*16 + g
                    for n in range(BK//8):
                        for e in range(4):
                            x = sc[lane][n][e] * scale * np.log2(np.e)
                            key = k0 + n*8 + 2*t4 + (e & 1); row = row0 + (e >> 1)*8
                            if key >= s or (causal and key > row + off): x = -np.inf
                            sc[lane][n][e] = x
                for r in range(2):
                    for quad in range(8):
                        lanes = range(4*quad, 4*quad+4)
                        mx = max(max(sc[x][n][2*r], sc[x][n][2*r+1]) for x in lanes for n in range(BK//8))
                        for x in lanes:
                            nm = max(m[x][r], mx); mu = 0 if nm == -np.inf else nm
                            f = 2.0 ** (m[x][r] - mu); m[x][r] = nm
                            tot = 0
                            for n in range(BK//8):
                                for e in (2*r, 2*r+1):
                                    sc[x][n][e] = 2.0 ** (sc[x][n][e] - mu); tot += sc[x][n][e]
                            ls[x][r] = ls[x][r]*f + tot
                            o[x][:, 2*r:2*r+2] *= f
                for c in range(BK // 16):
                    mma_rows(o, sc, c, sv, FD)
            for lane in range(32):
                g, t4 = lane >> 2, lane & 3
                for r in range(2):
                    tot = sum(ls[x][r] for x in range(4*(lane>>2), 4*(lane>>2)+4))
                    row = q0 + w*16 + g + 8*r
                    if row >= l: continue
                    with np.errstate(all='ignore'):
                        inv = 1.0 / tot
                        for d in range(FD // 8):
                            out[row, 8*d + 2*t4] = o[lane][d][2*r] * inv
                            out[row, 8*d + 2*t4 + 1] = o[lane][d][2*r+1] * inv
                        lse2[row] = m[lane][r] + np.log2(tot)
                        # D: each lane's pairs of g against its o, summed over the quad.
                        acc = 0.0
                        for x in range(4*(lane>>2), 4*(lane>>2)+4):
                            tx = x & 3
                            for d in range(FD // 8):
                                acc += o[x][d][2*r] * inv * go[row, 8*d + 2*tx] + o[x][d][2*r+1] * inv * go[row, 8*d + 2*tx + 1]
                        dsum[row] = acc
    return out, lse2, dsum
def ref_forward(q, k, v, scale, causal):
    l, s = q.shape[0], k.shape[0]
    S = q @ k.T * scale
    if causal:
        S = np.where(np.arange(s)[None, :] <= np.arange(l)[:, None] + s - l, S, -np.inf)
    with np.errstate(all='ignore'):
        P = np.exp(S - S.max(1, keepdims=True)); P /= P.sum(1, keepdims=True)
    return P @ v
L2E = np.log2(np.e)

def bkv(q, k, v, go, lse2, dsum, scale, causal, FD):
    l, s = q.shape[0], k.shape[0]
    dk = np.zeros((s, FD)); dv = np.zeros((s, FD)); off = s - l
    for k0 in range(0, s, 64):
        sk = tile(k, k0, s, 64, FD); sv = tile(v, k0, s, 64, FD)
        qstart = k0 - off if (causal and off >= 0 and k0 - off > 0) else 0
        for w in range(4):
            dka = [np.zeros((FD//8, 4)) for _ in range(32)]; dva = [np.zeros((FD//8, 4)) for _ in range(32)]
            for i0 in range(qstart, l, 32):
                sq = tile(q, i0, l, 32, FD); sg = tile(go, i0, l, 32, FD)
                sl = [lse2[i0+t] if i0+t < l else 0 for t in range(32)]; sd = [dsum[i0+t] if i0+t < l else 0 for t in range(32)]
                st = [np.zeros((4,4)) for _ in range(32)]; dpt = [np.zeros((4,4)) for _ in range(32)]
                for c in range(FD//16):
                    ka = frag_a(sk, w, c); va = frag_a(sv, w, c)
                    mma_cols(st, ka, sq, c, 4)
                    mma_cols(dpt, va, sg, c, 4)
                for lane in range(32):
                    g, t4 = lane >> 2, lane & 3
                    key0 = k0 + w*16 + g
                    for n in range(4):
                        for e in range(4):
                            key = key0 + (e >> 1)*8; qr = n*8 + 2*t4 + (e & 1); qi = i0 + qr; lq = sl[qr]
                            p = ds = 0.0
                            if qi < l and key < s:
                                if causal and key > qi + off:
                                    p = 0.0 if lq > -np.inf else np.nan
                                else:
                                    with np.errstate(all='ignore'):
                                        p = 2.0 ** (st[lane][n][e]*scale*L2E - lq); ds = p * (dpt[lane][n][e] - sd[qr])
                            st[lane][n][e] = p; dpt[lane][n][e] = ds
                for c in range(2):
                    mma_rows(dva, st, c, sg, FD)
                    mma_rows(dka, dpt, c, sq, FD)
            for lane in range(32):
                g, t4 = lane >> 2, lane & 3
                for r in range(2):
                    key = k0 + w*16 + g + 8*r
                    if key >= s: continue
                    for d in range(FD//8):
                        dk[key, 8*d+2*t4:8*d+2*t4+2] = dka[lane][d][2*r:2*r+2] * scale
                        dv[key, 8*d+2*t4:8*d+2*t4+2] = dva[lane][d][2*r:2*r+2]
    return dk, dv
def bq(q, k, v, go, lse2, dsum, scale, causal, FD):
    l, s = q.shape[0], k.shape[0]; off = s - l
    dq = np.full((l, FD), np.nan)
    for q0 in range(0, l, 64):
        st_q = tile(q, q0, l, 64, FD); st_g = tile(go, q0, l, 64, FD)
        kend = s
        if causal:
            lim = q0 + 64 + off; kend = 0 if lim < 0 else min(lim, s)
        for w in range(4):
            qa = [frag_a(st_q, w, c) for c in range(FD//16)]; ga = [frag_a(st_g, w, c) for c in range(FD//16)]
            dqa = [np.zeros((FD//8, 4)) for _ in range(32)]
            for k0 in range(0, kend, 32):
                sk = tile(k, k0, s, 32, FD); sv = tile(v, k0, s, 32, FD)
                sc = [np.zeros((4,4)) for _ in range(32)]; dp = [np.zeros((4,4)) for _ in range(32)]
                for c in range(FD//16):
                    mma_cols(sc, qa[c], sk, c, 4)
                    mma_cols(dp, ga[c], sv, c, 4)
                for lane in range(32):
                    g, t4 = lane >> 2, lane & 3
                    row0 = q0 + w*16 + g
                    for n in range(4):
                        for e in range(4):
                            key = k0 + n*8 + 2*t4 + (e & 1); r = e >> 1; row = row0 + 8*r
                            lq = lse2[row] if row < l else 0; dd = dsum[row] if row < l else 0
                            ds = 0.0
                            if key < s and not (causal and key > row + off):
                                with np.errstate(all='ignore'):
                                    p = 2.0 ** (sc[lane][n][e]*scale*L2E - lq); ds = p * (dp[lane][n][e] - dd)
                            sc[lane][n][e] = ds
                for c in range(2):
                    mma_rows(dqa, sc, c, sk, FD)
            for lane in range(32):
                g, t4 = lane >> 2, lane & 3
                for r in range(2):
                    row = q0 + w*16 + g + 8*r
                    if row >= l: continue
                    for d in range(FD//8):
                        dq[row, 8*d+2*t4:8*d+2*t4+2] = dqa[lane][d][2*r:2*r+2] * scale
    return dq
def ref_backward(q, k, v, go, scale, causal):
    l, s = q.shape[0], k.shape[0]
    S = q @ k.T * scale
    allow = np.arange(s)[None, :] <= np.arange(l)[:, None] + s - l if causal else np.ones((l, s), bool)
    S = np.where(allow, S, -np.inf)
    with np.errstate(all='ignore'):
        m = S.max(1, keepdims=True); P = np.exp(S - m); z = P.sum(1, keepdims=True); P = P / z
        lse2 = ((m + np.log(z)) / np.log(2)).ravel()
        O = P @ v
        dV = P.T @ go; dP = go @ v.T; D = (go * O).sum(1)
        dS = np.where(allow, P * (dP - D[:, None]), 0)
        dQ = dS @ k * scale; dK = dS.T @ q * scale
    return dQ, dK, dV, lse2, D


def main():
    rng = np.random.default_rng(1)
    worst = 0.0
    for (l, s, fd, causal) in [(70, 70, 16, True), (20, 90, 32, True), (80, 17, 16, True),
                               (33, 130, 48, False), (100, 100, 16, False)]:
        q, k, v = (rng.standard_normal((n, fd)) for n in (l, s, s))
        go = rng.standard_normal((l, fd))
        dq_want, dk_want, dv_want, lse2, d = ref_backward(q, k, v, go, 0.3, causal)
        out, lse_got, d_got = forward(q, k, v, 0.3, causal, fd, go)
        got = {
            "out": (out, ref_forward(q, k, v, 0.3, causal)),
            "lse": (lse_got, lse2),
            "D": (d_got, d),
            "dq": (bq(q, k, v, go, lse2, d, 0.3, causal, fd), dq_want),
        }
        dk, dv = bkv(q, k, v, go, lse2, d, 0.3, causal, fd)
        got["dk"], got["dv"] = (dk, dk_want), (dv, dv_want)
        for name, (a, b) in got.items():
            if name == "lse":
                # A row that sees no key: -inf in the kernel, NaN here; both mean "dead".
                a = np.where(np.isfinite(a), a, np.nan)
            assert (np.isnan(a) == np.isnan(b)).all(), f"{name} l {l} s {s}: NaN pattern differs"
            ok = ~np.isnan(b)
            err = float(np.abs(a[ok] - b[ok]).max()) if ok.any() else 0.0
            worst = max(worst, err)
            assert err < 1e-9, f"{name} l {l} s {s} d {fd} causal {causal}: error {err}"
        print(f"l {l} s {s} d {fd} causal {causal}: forward, lse, D, dq, dk, dv agree")
    print(f"flash_emulate: all agree (largest error {worst:.1e})")


if __name__ == "__main__":
    main()
