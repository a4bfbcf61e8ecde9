// Micro-benchmark: matrix-vector kernels for decoding (x[m,k] @ W[n,k]^T, bf16, f32
// accumulation) on the Llama-3-8B shapes, beside cuBLAS in the same process. Each variant
// runs 40 times in a CUDA graph over weights rotated through > 2x the L2, so every call
// reads HBM. nvcc -O3 -arch=sm_90a -o gemv gemv.cu -lcublas && ./gemv
//   cur:  ingot's kernel as of G10 (kernels/gemv.cuh): groups of wpr warps per output,
//         activations re-read through L1 beside every weight load.
//   rows<R,U,XS>: each warp computes R outputs at once (one activation vector feeds R weight
//         vectors), U 16-byte loads per row in flight per thread; XS stages the activation
//         rows in shared memory; warps walk output groups in a grid-stride loop so the grid
//         can be sized to the machine ("persistent") or to the work.
// LINK: -lcublas
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)

struct __align__(16) U4 { unsigned x, y, z, w; };
__device__ __forceinline__ U4 ld_stream(const void* p) {
    U4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
__device__ __forceinline__ U4 ld_cached(const void* p) {
    U4 r;
    asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
__device__ __forceinline__ float lo(unsigned v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float hi(unsigned v) { return __uint_as_float(v & 0xffff0000u); }
__device__ __forceinline__ float dot2(unsigned a, unsigned b, float acc) {
    return fmaf(hi(a), hi(b), fmaf(lo(a), lo(b), acc));
}
__device__ __forceinline__ float dot(const U4& a, const U4& b, float acc) {
    return dot2(a.w, b.w, dot2(a.z, b.z, dot2(a.y, b.y, dot2(a.x, b.x, acc))));
}
__device__ __forceinline__ unsigned short f2bf(float f) {
    unsigned u = __float_as_uint(f);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

// --- the current kernel (m <= 8, vec path only) ---
template <int LOADS>
__global__ void __launch_bounds__(256) cur(unsigned short* out, const unsigned short* a,
    const unsigned short* w, int m, long long n, long long k, int wpr) {
    __shared__ float sh[8][8];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int per_block = 8 / wpr;
    const long long j = (long long)blockIdx.x * per_block + warp / wpr;
    const int gw = warp % wpr;
    const long long gt = (long long)gw * 32 + lane, gsize = (long long)wpr * 32;
    float acc[8];
    #pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = 0.f;
    if (j < n) {
        const U4* wv = (const U4*)(w + j * k);
        const long long nv = k / 8;
        for (long long v0 = gt; v0 < nv; v0 += LOADS * gsize) {
            U4 x[LOADS];
            #pragma unroll
            for (int u = 0; u < LOADS; ++u) { long long v = v0 + u * gsize; if (v < nv) x[u] = ld_stream(wv + v); }
            #pragma unroll
            for (int u = 0; u < LOADS; ++u) {
                long long v = v0 + u * gsize;
                if (v < nv) {
                    #pragma unroll
                    for (int i = 0; i < 8; ++i) if (i < m) acc[i] = dot(x[u], ld_cached((const U4*)(a + i * k) + v), acc[i]);
                }
            }
        }
    }
    #pragma unroll
    for (int i = 0; i < 8; ++i)
        #pragma unroll
        for (int d = 16; d > 0; d >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], d);
    if (wpr > 1) {
        if (lane == 0) for (int i = 0; i < 8; ++i) sh[warp][i] = acc[i];
        __syncthreads();
        if (gw == 0 && lane < m && j < n) {
            float s = 0.f;
            for (int q = 0; q < wpr; ++q) s += sh[warp + q][lane];
            out[lane * n + j] = f2bf(s);
        }
    } else if (j < n && lane < m) {
        float s = 0.f;
        for (int i = 0; i < 8; ++i) if (i == lane) s = acc[i];
        out[lane * n + j] = f2bf(s);
    }
}

// --- R outputs per warp, U loads per output row in flight, M activation rows (compile time) ---
template <int R, int U, int M, bool XS>
__global__ void __launch_bounds__(256) rows(unsigned short* out, const unsigned short* a,
    const unsigned short* w, long long n, long long k) {
    extern __shared__ U4 xs[];  // M rows of k/8 vectors (XS)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long long nv = k / 8;
    if (XS) {
        for (long long v = threadIdx.x; v < nv * M; v += blockDim.x)
            xs[v] = ld_cached((const U4*)a + v);
        __syncthreads();
    }
    const long long groups = (n + R - 1) / R;
    const long long wstride = (long long)gridDim.x * 8;
    for (long long g = (long long)blockIdx.x * 8 + warp; g < groups; g += wstride) {
        const long long j0 = g * R;
        float acc[R][M];
        #pragma unroll
        for (int r = 0; r < R; ++r)
            #pragma unroll
            for (int i = 0; i < M; ++i) acc[r][i] = 0.f;
        const U4* wr[R];
        #pragma unroll
        for (int r = 0; r < R; ++r) wr[r] = (const U4*)(w + (j0 + r < n ? j0 + r : j0) * k);
        for (long long v0 = lane; v0 < nv; v0 += 32 * U) {
            U4 q[R][U];
            #pragma unroll
            for (int u = 0; u < U; ++u) {
                long long v = v0 + 32 * u;
                #pragma unroll
                for (int r = 0; r < R; ++r) if (v < nv) q[r][u] = ld_stream(wr[r] + v);
            }
            #pragma unroll
            for (int u = 0; u < U; ++u) {
                long long v = v0 + 32 * u;
                if (v < nv) {
                    #pragma unroll
                    for (int i = 0; i < M; ++i) {
                        U4 xv = XS ? xs[i * nv + v] : ld_cached((const U4*)a + i * nv + v);
                        #pragma unroll
                        for (int r = 0; r < R; ++r) acc[r][i] = dot(q[r][u], xv, acc[r][i]);
                    }
                }
            }
        }
        #pragma unroll
        for (int r = 0; r < R; ++r)
            #pragma unroll
            for (int i = 0; i < M; ++i)
                #pragma unroll
                for (int d = 16; d > 0; d >>= 1) acc[r][i] += __shfl_xor_sync(0xffffffffu, acc[r][i], d);
        if (lane == 0) {
            #pragma unroll
            for (int r = 0; r < R; ++r)
                #pragma unroll
                for (int i = 0; i < M; ++i)
                    if (j0 + r < n) out[i * n + j0 + r] = f2bf(acc[r][i]);
        }
    }
}

__global__ void fill(unsigned short* p, long long n, unsigned seed) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        unsigned h = (unsigned)(i * 2654435761ull) ^ seed;
        h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
        p[i] = f2bf(((float)(h & 0xffff) / 65536.f - 0.5f) * 0.1f);
    }
}

static float bf2f(unsigned short b) { unsigned u = (unsigned)b << 16; float f; memcpy(&f, &u, 4); return f; }

int main(int argc, char** argv) {
    int sms; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    cudaStream_t st; CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cublasHandle_t h; cublasCreate(&h); cublasSetStream(h, st);
    const long long pool_bytes = 1ll << 30;  // 1 GiB of weights, rotated
    unsigned short* pool; CK(cudaMalloc(&pool, pool_bytes));
    fill<<<(pool_bytes / 2 + 255) / 256, 256>>>(pool, pool_bytes / 2, 1234);
    unsigned short *x, *y, *yref; CK(cudaMalloc(&x, 8 * 14336 * 2)); CK(cudaMalloc(&y, 8 * 200000 * 2)); CK(cudaMalloc(&yref, 8 * 200000 * 2));
    fill<<<(8 * 14336 + 255) / 256, 256>>>(x, 8 * 14336, 99);
    CK(cudaDeviceSynchronize());
    struct S { const char* name; long long n, k; };
    S shapes[] = {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336}, {"head", 128256, 4096}};
    int ms_[] = {1, 4};
    printf("[");
    bool first = true;
    for (int mi = 0; mi < 2; ++mi) {
        int m = ms_[mi];
        for (auto& s : shapes) {
            long long bytes = s.n * s.k * 2;
            int copies = (int)(pool_bytes / bytes); if (copies > 40) copies = 40;
            // Weight copy c starts at c * bytes (rounded to 256 bytes).
            long long stride = (bytes + 255) / 256 * 128;
            copies = (int)(pool_bytes / 2 / stride); if (copies > 40) copies = 40;
            auto wat = [&](int c) { return pool + (long long)c * stride; };
            auto run = [&](auto launch, const char* label) {
                // Correctness on copy 0 against cuBLAS.
                CK(cudaMemsetAsync(y, 0xff, m * s.n * 2, st));
                launch(wat(0), y);
                CK(cudaStreamSynchronize(st));
                std::vector<unsigned short> a(m * s.n), b(m * s.n);
                CK(cudaMemcpy(a.data(), y, m * s.n * 2, cudaMemcpyDeviceToHost));
                CK(cudaMemcpy(b.data(), yref, m * s.n * 2, cudaMemcpyDeviceToHost));
                double err = 0, mag = 0;
                for (long long i = 0; i < m * s.n; ++i) { double d = bf2f(a[i]) - bf2f(b[i]); err = fmax(err, fabs(d)); mag = fmax(mag, fabs(bf2f(b[i]))); }
                const int reps = 40;
                cudaGraph_t gr; cudaGraphExec_t ge;
                CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
                for (int r = 0; r < reps; ++r) launch(wat(r % copies), y);
                CK(cudaStreamEndCapture(st, &gr));
                CK(cudaGraphInstantiate(&ge, gr, 0));
                CK(cudaGraphLaunch(ge, st)); CK(cudaStreamSynchronize(st));
                cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
                float best = 1e9;
                for (int t = 0; t < 5; ++t) {
                    cudaEventRecord(e0, st); CK(cudaGraphLaunch(ge, st)); cudaEventRecord(e1, st);
                    CK(cudaEventSynchronize(e1));
                    float msf; cudaEventElapsedTime(&msf, e0, e1); best = fminf(best, msf);
                }
                double us = best * 1e3 / reps;
                printf("%s{\"m\":%d,\"shape\":\"%s\",\"n\":%lld,\"k\":%lld,\"kernel\":\"%s\",\"us\":%.2f,\"tb_s\":%.3f,\"max_err\":%.3g,\"max_ref\":%.3g}\n",
                    first ? "" : ",", m, s.name, s.n, s.k, label, us, bytes / (us * 1e-6) / 1e12, err, mag);
                first = false;
                fflush(stdout);
                cudaGraphExecDestroy(ge); cudaGraphDestroy(gr);
            };
            auto cublas = [&](const unsigned short* W, unsigned short* out) {
                float al = 1.f, be = 0.f;
                cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)s.n, m, (int)s.k, &al, W, CUDA_R_16BF, (int)s.k,
                    x, CUDA_R_16BF, (int)s.k, &be, out, CUDA_R_16BF, (int)s.n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            };
            cublas(wat(0), yref); CK(cudaStreamSynchronize(st));
            run(cublas, "cublas");
            // Current kernel with its heuristic.
            int wpr = 1; { long long t = 8192 / s.n; while (wpr < t) wpr *= 2; if (wpr > 8) wpr = 8; }
            while (wpr < 8 && s.k * 2 > 8192 * wpr) wpr *= 2;
            while (wpr > 1 && s.k < wpr * 32 * 16) wpr /= 2;
            run([&](const unsigned short* W, unsigned short* out) {
                cur<4><<<(unsigned)((s.n + 8 / wpr - 1) / (8 / wpr)), 256, 0, st>>>(out, x, W, m, s.n, s.k, wpr);
            }, "cur");
#define ROWS(R, U, XS, GRIDMUL) do { \
            size_t smem = XS ? (size_t)m * s.k * 2 : 0; \
            auto body = [&](const unsigned short* W, unsigned short* out) { \
                long long groups = (s.n + R - 1) / R; long long need = (groups + 7) / 8; \
                long long grid = GRIDMUL > 0 ? (long long)sms * GRIDMUL : need; if (grid > need) grid = need; \
                if (m == 1) rows<R, U, 1, XS><<<(unsigned)grid, 256, smem, st>>>(out, x, W, s.n, s.k); \
                else rows<R, U, 4, XS><<<(unsigned)grid, 256, smem, st>>>(out, x, W, s.n, s.k); \
            }; \
            if (XS) { CK(cudaFuncSetAttribute(rows<R, U, 1, XS>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200000)); \
                      CK(cudaFuncSetAttribute(rows<R, U, 4, XS>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200000)); } \
            char lab[64]; snprintf(lab, sizeof lab, "rows R%d U%d %s grid%s%d", R, U, XS ? "smem" : "l1", GRIDMUL > 0 ? "=sm*" : "=all", GRIDMUL); \
            run(body, lab); } while (0)
            ROWS(1, 4, false, 0);
            ROWS(1, 8, false, 0);
            ROWS(2, 4, false, 0);
            ROWS(2, 8, false, 0);
            ROWS(4, 2, false, 0);
            ROWS(4, 4, false, 0);
            ROWS(2, 4, true, 0);
            ROWS(4, 4, true, 0);
            ROWS(2, 4, false, 4);
            ROWS(2, 8, false, 2);
            ROWS(4, 4, false, 2);
            ROWS(4, 4, true, 4);
        }
    }
    printf("]\n");
    return 0;
}
