// Max and average pooling over channels-last inputs (N, *spatial, C), 1 to 3 spatial dims
// (fewer are padded in front with dims of size 1). One thread per output element; the
// window's taps run in row-major order, as the CPU's, so averages sum in the same order.
// The including source defines T (storage), CT (compute type: float, or double for f64),
// MAXPOOL (1 max, 0 average) and KNAME(k).

struct PoolGeo {
    long long c;
    long long in[3];
    long long out[3];
    long long win[3];
    long long stride[3];
    long long lo[3];
    long long count_pad;
    long long total;
};

// The taps [k0, k1) of a window of `win` starting at o * stride - lo that land inside an
// axis of length n (the others are padding).
DEV void tap_range(long long o, long long n, long long win, long long stride, long long lo,
                   long long& k0, long long& k1) {
    long long s = o * stride - lo;
    k0 = s < 0 ? -s : 0;
    k1 = n - s < win ? n - s : win;
    if (k1 < k0) k1 = k0;
}

extern "C" __global__ void __launch_bounds__(256)
KNAME(pool)(T* __restrict__ out, const T* __restrict__ x, PoolGeo g) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= g.total) return;
    long long ch = i % g.c, r = i / g.c;
    long long o2 = r % g.out[2]; r /= g.out[2];
    long long o1 = r % g.out[1]; r /= g.out[1];
    long long o0 = r % g.out[0];
    long long b = r / g.out[0];
    long long a0, b0, a1, b1, a2, b2;
    tap_range(o0, g.in[0], g.win[0], g.stride[0], g.lo[0], a0, b0);
    tap_range(o1, g.in[1], g.win[1], g.stride[1], g.lo[1], a1, b1);
    tap_range(o2, g.in[2], g.win[2], g.stride[2], g.lo[2], a2, b2);
    long long s0 = o0 * g.stride[0] - g.lo[0];
    long long s1 = o1 * g.stride[1] - g.lo[1];
    long long s2 = o2 * g.stride[2] - g.lo[2];
    const T* xb = x + b * g.in[0] * g.in[1] * g.in[2] * g.c + ch;
#if MAXPOOL
    // Padding never wins; NaN wins and then stays (v != v), as on the CPU.
    CT m = (CT)__int_as_float(0xff800000);
    for (long long k0 = a0; k0 < b0; ++k0)
        for (long long k1 = a1; k1 < b1; ++k1) {
            const T* row = xb + ((s0 + k0) * g.in[1] + (s1 + k1)) * g.in[2] * g.c;
            for (long long k2 = a2; k2 < b2; ++k2) {
                CT v = ld(row[(s2 + k2) * g.c]);
                if (v > m || v != v) m = v;
            }
        }
    out[i] = st<T>(m);
#else
    CT s = (CT)0;
    for (long long k0 = a0; k0 < b0; ++k0)
        for (long long k1 = a1; k1 < b1; ++k1) {
            const T* row = xb + ((s0 + k0) * g.in[1] + (s1 + k1)) * g.in[2] * g.c;
            for (long long k2 = a2; k2 < b2; ++k2) s += ld(row[(s2 + k2) * g.c]);
        }
    long long div = g.count_pad ? g.win[0] * g.win[1] * g.win[2]
                                : (b0 - a0) * (b1 - a1) * (b2 - a2);
    out[i] = st<T>(s / (CT)div);
#endif
}
