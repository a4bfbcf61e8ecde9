// Threefry-2x32 with 20 rounds, laid out as cpu/random.rs (and JAX) lay it out: counters
// 0..n (one 0 of padding when n is odd) split into halves; pair i is (i, i + half) and its
// two output words go to positions i and i + half. One pair per thread.

DEV unsigned rotl32(unsigned x, unsigned r) { return (x << r) | (x >> (32u - r)); }

DEV void threefry2x32(unsigned k0, unsigned k1, unsigned c0, unsigned c1, unsigned& y0, unsigned& y1) {
    const unsigned ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
    const unsigned rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
    unsigned x0 = c0 + ks[0], x1 = c1 + ks[1];
    #pragma unroll
    for (unsigned i = 0; i < 5; ++i) {
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            x0 += x1;
            x1 = rotl32(x1, rot[i % 2][j]) ^ x0;
        }
        x0 += ks[(i + 1) % 3];
        x1 += ks[(i + 2) % 3] + i + 1;
    }
    y0 = x0;
    y1 = x1;
}

// `key` points at the key's first word; its second is `kstride` words further.
extern "C" __global__ void __launch_bounds__(256)
random_bits_u32(unsigned* __restrict__ out, const unsigned* __restrict__ key, long long kstride, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long half = (n + 1) / 2, full = n / 2;
    if (i >= half) return;
    unsigned k0 = key[0], k1 = key[kstride], y0, y1;
    if (i < full) {
        threefry2x32(k0, k1, (unsigned)i, (unsigned)(i + half), y0, y1);
        out[i] = y0;
        out[i + half] = y1;
    } else {
        // The odd counter pairs with the zero padding.
        threefry2x32(k0, k1, (unsigned)i, 0u, y0, y1);
        out[i] = y0;
    }
}
