// Layout kernels: strided copies into strided destinations (concatenate, slice_update and
// the copy a non-donated destination needs), pad in every mode, and Threefry random bits.
// The including source defines T (the storage type), C(a, b) (how an update combines with
// the element already there, on compute values) and KNAME(k) (the kernel's name).

// dst[i] = C(dst[i], src[i]) over `shape`, both sides strided (one element per thread).
extern "C" __global__ void __launch_bounds__(256)
KNAME(update)(u64 dst, Strides ds, u64 src, Strides ss, Shape shape, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    T* d = (T*)dst;
    const T* s = (const T*)src;
    long long od, os;
    if (n <= 0x7fffffffLL) {
        od = offset_of<unsigned>((unsigned)i, shape, ds);
        os = offset_of<unsigned>((unsigned)i, shape, ss);
    } else {
        od = offset_of<long long>(i, shape, ds);
        os = offset_of<long long>(i, shape, ss);
    }
    typename Ct<T>::type a = ld(d[od]);
    typename Ct<T>::type b = ld(s[os]);
    d[od] = st<T>(C(a, b));
}

// Pad geometry: per dim the output and input lengths and the low padding; `mode` is
// 0 constant, 1 edge, 2 reflect, 3 symmetric (as cpu/shape.rs's axis_map).
struct PadDims { int nd; int mode; long long out[MAX_DIMS]; long long in[MAX_DIMS]; long long low[MAX_DIMS]; };

// The input index that output index j of a padded axis copies, or -1 for the constant.
DEV long long pad_map(long long j, long long n, long long low, int mode) {
    long long i = j - low;
    if (i >= 0 && i < n) return i;
    if (n == 0 || mode == 0) return -1;
    if (mode == 1) return i < 0 ? 0 : n - 1;
    if (mode == 2) {
        if (n == 1) return 0;
        long long p = 2 * (n - 1), m = ((i % p) + p) % p;
        return m >= n ? p - m : m;
    }
    long long p = 2 * n, m = ((i % p) + p) % p;
    return m >= n ? p - 1 - m : m;
}

// out (row-major over pd.out) = pad(src); `value` holds the constant's bits.
extern "C" __global__ void __launch_bounds__(256)
KNAME(pad)(T* __restrict__ out, u64 src, Strides ss, PadDims pd, long long n, u64 value) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    long long o = ss.off, r = i;
    bool constant = false;
    #pragma unroll
    for (int d = MAX_DIMS - 1; d >= 0; --d) {
        if (d < pd.nd) {
            long long j = r % pd.out[d];
            r /= pd.out[d];
            long long m = pad_map(j, pd.in[d], pd.low[d], pd.mode);
            if (m < 0) constant = true; else o += m * ss.st[d];
        }
    }
    out[i] = constant ? bits_to<T>(value) : ((const T*)src)[o];
}
