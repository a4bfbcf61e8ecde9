// Walsh-Hadamard transform over rows of n = 2^logn elements, times `scale`, with the CPU's
// butterflies (stage h pairs a and a + h inside blocks of 2h, h = 1, 2, 4, ...) in the
// compute type CT, so every element sees the same additions in the same order, then one
// multiply by the scale and one rounding to T. The including source defines T, CT and
// KNAME(k).

// One block per row, the row in shared memory (n * sizeof(CT) bytes of dynamic shared memory).
extern "C" __global__ void __launch_bounds__(512)
KNAME(rows)(T* __restrict__ out, const T* __restrict__ x, int logn, CT scale) {
    extern __shared__ double smem_d[];
    CT* w = (CT*)smem_d;
    const long long n = 1ll << logn;
    const long long base = (long long)blockIdx.x * n;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) w[j] = ld(x[base + j]);
    __syncthreads();
    for (int lh = 0; lh < logn; ++lh) {
        const long long h = 1ll << lh;
        for (long long t = threadIdx.x; t < n / 2; t += blockDim.x) {
            long long a = ((t >> lh) << (lh + 1)) + (t & (h - 1)), b = a + h;
            CT u = w[a], v = w[b];
            w[a] = u + v;
            w[b] = u - v;
        }
        __syncthreads();
    }
    for (long long j = threadIdx.x; j < n; j += blockDim.x) out[base + j] = st<T>(w[j] * scale);
}

// Rows too long for shared memory: the row in global memory `w` (compute type), one launch
// per stage. `load` fills w from x, `stage` runs stage lh over all rows (one thread per
// pair), `store` writes out = w * scale (w may be out itself when T is CT).
extern "C" __global__ void __launch_bounds__(256)
KNAME(load)(CT* __restrict__ w, const T* __restrict__ x, long long total) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) w[i] = ld(x[i]);
}
extern "C" __global__ void __launch_bounds__(256)
KNAME(stage)(CT* __restrict__ w, long long pairs, int logn, int lh) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= pairs) return;
    const long long half = 1ll << (logn - 1), h = 1ll << lh;
    long long row = t >> (logn - 1), k = t & (half - 1);
    long long a = (row << logn) + ((k >> lh) << (lh + 1)) + (k & (h - 1)), b = a + h;
    CT u = w[a], v = w[b];
    w[a] = u + v;
    w[b] = u - v;
}
extern "C" __global__ void __launch_bounds__(256)
KNAME(store)(T* out, const CT* w, CT scale, long long total) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) out[i] = st<T>(w[i] * scale);
}

// ---- grid_sample -----------------------------------------------------------------------------
// As cpu/misc.rs (PyTorch's grid_sampler_2d): input (N, H, W, C), grid (N, Ho, Wo, 2) of
// (x, y) in [-1, 1], output (N, Ho, Wo, C) zero where no tap lands. Source coordinates and
// bilinear weights in f64; the sum in CT. One thread per output element.

// PyTorch's reflect_coordinates: x reflected into [low/2, high/2] (given doubled).
DEV double gs_reflect(double x, long long twice_low, long long twice_high) {
    if (twice_low == twice_high) return 0.0;
    double mn = (double)twice_low / 2.0;
    double span = (double)(twice_high - twice_low) / 2.0;
    x = fabs(x - mn);
    double extra = fmod(x, span);
    double flips = floor(x / span);
    return fmod(flips, 2.0) == 0.0 ? extra + mn : span - extra + mn;
}

// padding: 0 zeros, 1 border, 2 reflection. Non-finite results become -100 (out of bounds).
DEV double gs_source(double c, long long size, int padding, int align) {
    double s = (double)size;
    double x = align ? (c + 1.0) / 2.0 * (s - 1.0) : ((c + 1.0) * s - 1.0) / 2.0;
    if (padding == 1) {
        x = fmin(fmax(x, 0.0), s - 1.0);
    } else if (padding == 2) {
        x = align ? gs_reflect(x, 0, 2 * (size - 1)) : gs_reflect(x, -1, 2 * size - 1);
        x = fmin(fmax(x, 0.0), s - 1.0);
    }
    return (x - x == 0.0) ? x : -100.0;
}

extern "C" __global__ void __launch_bounds__(256)
KNAME(grid_sample)(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ grid,
                   long long h, long long w, long long c, long long ho, long long wo,
                   int bilinear, int padding, int align, long long total) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long ch = i % c, pix = i / c;  // pix = (n * ho + y) * wo + x
    long long n = pix / (ho * wo);
    double gx = to_f64(grid[pix * 2]), gy = to_f64(grid[pix * 2 + 1]);
    double ix = gs_source(gx, w, padding, align);
    double iy = gs_source(gy, h, padding, align);
    const T* img = x + n * h * w * c + ch;
    double fh = (double)h, fw = (double)w;
    if (!bilinear) {
        // Round half to even, as PyTorch's nearbyint.
        double xr = rint(ix), yr = rint(iy);
        bool in = yr >= 0.0 && xr >= 0.0 && yr < fh && xr < fw;
        out[i] = in ? img[((long long)yr * w + (long long)xr) * c] : st<T>((CT)0);
        return;
    }
    double x0 = floor(ix), y0 = floor(iy);
    double x1 = x0 + 1.0, y1 = y0 + 1.0;
    double cy[4] = {y0, y0, y1, y1};
    double cx[4] = {x0, x1, x0, x1};
    double wt[4] = {(x1 - ix) * (y1 - iy), (ix - x0) * (y1 - iy), (x1 - ix) * (iy - y0),
                    (ix - x0) * (iy - y0)};
    CT acc = (CT)0;
    #pragma unroll
    for (int k = 0; k < 4; ++k) {
        if (cy[k] >= 0.0 && cx[k] >= 0.0 && cy[k] < fh && cx[k] < fw) {
            CT v = ld(img[((long long)cy[k] * w + (long long)cx[k]) * c]);
            acc = acc + v * (CT)wt[k];
        }
    }
    out[i] = st<T>(acc);
}
