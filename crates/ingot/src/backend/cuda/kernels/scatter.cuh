// Scatters: put_along_axis and MLX-style scatter, one thread per update (updates row-major).
// Indices were resolved first (index.cuh / the host) into element offsets `pos`.
// The including source defines T (the storage type; for a set, the unsigned type of the
// element's width), KIND (0 set, else a combining update), for a combining update C(a, b)
// (how an update combines with the element there, on compute values, as cpu/index.rs's
// `Combine`) and optionally NATIVE(p, u) (one atomic instruction doing the same), and
// KNAME(k) (the kernel's name).

// Where update i lands, in elements from the destination's start.
// along (put_along_axis): updates are (outer, m, inner), the destination (outer, n, inner);
//   blk = m * inner, oblk = n * inner, and pos[i] = index * inner.
// scatter: updates are (B, slice); blk = the slice's element count, pos[b] the slice's
//   start, and the slice element's offset comes from its shape `sh` over the
//   destination's strides `ss` (ss.off 0).
struct Geo { long long total; long long along; long long blk; long long oblk; long long inner; };

DEV long long dest_of(long long i, const long long* __restrict__ pos, const Geo& g,
                      const Shape& sh, const Strides& ss) {
    if (g.along) return (i / g.blk) * g.oblk + pos[i] + i % g.inner;
    return pos[i / g.blk] + offset_of<long long>(i % g.blk, sh, ss);
}

#if KIND == 0

// A set where two updates may land on one element: the last in row-major order wins, as on
// the CPU. `claim` keeps in win[o] the largest i + 1 of the updates landing on o (win starts
// zeroed); `set` writes only the update that won (or, unchecked, every update).
template <class W>
DEV void claim_one(W* __restrict__ win, const long long* __restrict__ pos, const Geo& g,
                   const Shape& sh, const Strides& ss) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= g.total) return;
    atomicMax(&win[dest_of(i, pos, g, sh, ss)], (W)(i + 1));
}

template <class W>
DEV void set_one(T* __restrict__ dst, const T* __restrict__ upd,
                 const long long* __restrict__ pos, const Geo& g, const Shape& sh,
                 const Strides& ss, const W* __restrict__ win) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= g.total) return;
    long long o = dest_of(i, pos, g, sh, ss);
    if (win == 0 || win[o] == (W)(i + 1)) dst[o] = upd[i];
}

extern "C" __global__ void __launch_bounds__(256)
KNAME(claim32)(u32* win, const long long* pos, Geo g, Shape sh, Strides ss) {
    claim_one<u32>(win, pos, g, sh, ss);
}
extern "C" __global__ void __launch_bounds__(256)
KNAME(claim64)(u64* win, const long long* pos, Geo g, Shape sh, Strides ss) {
    claim_one<u64>(win, pos, g, sh, ss);
}
extern "C" __global__ void __launch_bounds__(256)
KNAME(set32)(T* dst, const T* upd, const long long* pos, Geo g, Shape sh, Strides ss,
             const u32* win) {
    set_one<u32>(dst, upd, pos, g, sh, ss, win);
}
extern "C" __global__ void __launch_bounds__(256)
KNAME(set64)(T* dst, const T* upd, const long long* pos, Geo g, Shape sh, Strides ss,
             const u64* win) {
    set_one<u64>(dst, upd, pos, g, sh, ss, win);
}

#else

// Complex64 arithmetic and order: elementwise.cuh's c_add, c_mul, c_gt and c_lt (num_complex's
// formulas, the lexicographic order of cpu/index.rs).

// Same-size types' bits reinterpreted.
template <class D, class S> DEV D bitcast(S s) {
    static_assert(sizeof(D) == sizeof(S), "bitcast between sizes");
    union { S s; D d; } v;
    v.s = s;
    return v.d;
}
template <int N> struct UInt;
template <> struct UInt<1> { typedef u8 type; };
template <> struct UInt<2> { typedef u16 type; };
template <> struct UInt<4> { typedef u32 type; };
template <> struct UInt<8> { typedef u64 type; };

// The element x combined with the update u, on storage values.
DEV T comb(T x, T u) { return st<T>(C(ld(x), ld(u))); }

// *p = comb(*p, u) atomically: a compare-and-swap loop on the aligned 32- or 64-bit word
// holding the element (8- and 16-bit elements are a part of their word), unless one atomic
// instruction does it.
// (A template, so that `if constexpr` drops the branch for the other widths.)
template <class U> DEV void atomic_comb(U* p, U u) {
#ifdef NATIVE
    NATIVE(p, u);
#else
    typedef typename UInt<sizeof(U)>::type E;
    if constexpr (sizeof(U) >= 4) {
        typedef typename UInt<sizeof(U)>::type W;
        W* w = (W*)p;
        W old = *(volatile W*)w;
        while (true) {
            W nw = bitcast<W>(comb(bitcast<U>(old), u));
            if (nw == old) return;
            W prev = atomicCAS(w, old, nw);
            if (prev == old) return;
            old = prev;
        }
    } else {
        unsigned long long a = (unsigned long long)p;
        u32* w = (u32*)(a & ~3ull);
        unsigned sh = (unsigned)(a & 3ull) * 8u;
        u32 mask = (sizeof(U) == 1 ? 0xffu : 0xffffu) << sh;
        u32 old = *(volatile u32*)w;
        while (true) {
            E x = (E)(old >> sh);
            E y = bitcast<E>(comb(bitcast<U>(x), u));
            u32 nw = (old & ~mask) | ((u32)y << sh);
            if (nw == old) return;
            u32 prev = atomicCAS(w, old, nw);
            if (prev == old) return;
            old = prev;
        }
    }
#endif
}

// Updates in a fixed order, for float combines whose rounding depends on it: each thread
// owns one lane (a slice element j of a scatter whose slices are whole along the indexed
// axes, or an (outer, inner) column of put_along_axis) and walks that lane's `steps` updates
// in row-major order, so every element receives its updates in the CPU's order and no two
// threads touch one element. blockIdx.y splits each lane's destinations into `parts` by a
// hash of the update's start, for parallelism when lanes are few (an embedding's gradient:
// 768 lanes of 8,192 tokens).
DEV unsigned part_of(long long k, unsigned parts) {
    return (unsigned)(((unsigned long long)k * 0x9E3779B97F4A7C15ull) >> 32) % parts;
}

extern "C" __global__ void __launch_bounds__(256)
KNAME(ordered)(T* dst, const T* __restrict__ upd, const long long* __restrict__ pos, Geo g,
               Shape sh, Strides ss, long long lanes, long long steps, unsigned parts) {
    long long lane = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned part = blockIdx.y;
    if (lane >= lanes) return;
    if (g.along) {
        // Lane (o, c): updates (o, r, c) for r in order, landing at (o, pos / inner, c).
        long long o = lane / g.inner, c = lane % g.inner;
        long long i = o * g.blk + c;
        T* base = dst + o * g.oblk + c;
        for (long long r = 0; r < steps; ++r, i += g.inner) {
            long long k = pos[i];
            if (parts > 1 && part_of(k, parts) != part) continue;
            base[k] = comb(base[k], upd[i]);
        }
    } else {
        // Lane j: slice element j of every update b in order, landing at pos[b] + off(j).
        T* base = dst + offset_of<long long>(lane, sh, ss);
        for (long long b = 0; b < steps; ++b) {
            long long k = pos[b];
            if (parts > 1 && part_of(k, parts) != part) continue;
            base[k] = comb(base[k], upd[b * g.blk + lane]);
        }
    }
}

extern "C" __global__ void __launch_bounds__(256)
KNAME(combine)(T* dst, const T* __restrict__ upd, const long long* __restrict__ pos, Geo g,
               Shape sh, Strides ss) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= g.total) return;
    atomic_comb<T>(dst + dest_of(i, pos, g, sh, ss), upd[i]);
}

#endif
