// Micro-benchmark: where the compiled gelu's time goes on the GPU. The same chain over
// 256M f32 with four tanh forms: the CPU-exact f64 rational (ingot's), CUDA's tanhf, an
// f32 rational, and none; and a plain copy for the bandwidth. nvcc -O3 -arch=sm_90a.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

// ingot's f32 tanh: a (4,4) rational in z = x^2, in f64 (kernels/elementwise.cuh's m_tanh).
__device__ __forceinline__ void tanh_pq(float xf, double& x, double& p, double& q) {
    x = (double)xf;
    x = x < -9.0 ? -9.0 : (x > 9.0 ? 9.0 : x);
    double z = x * x;
    p = fma(fma(fma(fma(1.335401547897828e-8, z, 2.0608714522106114e-5), z,
        0.003495571296949932), z, 0.13381013624383414), z, 0.9999999796875829);
    q = fma(fma(fma(fma(7.776320716775055e-7, z, 3.2856031813140917e-4), z,
        0.025876924712820625), z, 0.46714329321388726), z, 1.0);
}
__device__ __forceinline__ float tanh_f64r(float xf) {
    double x, p, q;
    tanh_pq(xf, x, p, q);
    return (float)(__dmul_rn(x, p) / q);
}
// The same rational with the quotient from a reciprocal refined by Newton steps in f64.
__device__ __forceinline__ float tanh_f64n(float xf) {
    double x, p, q;
    tanh_pq(xf, x, p, q);
    double n = __dmul_rn(x, p);
    double r = (double)(1.0f / (float)q);
    r = fma(r, fma(-q, r, 1.0), r);
    r = fma(r, fma(-q, r, 1.0), r);
    double y = n * r;
    y = fma(r, fma(-q, y, n), y);
    return (float)y;
}
__device__ __forceinline__ float tanh_f32r(float x) {
    x = fminf(fmaxf(x, -9.f), 9.f);
    float z = x * x;
    float p = fmaf(fmaf(fmaf(fmaf(1.335401547897828e-8f, z, 2.0608714522106114e-5f), z,
        0.003495571296949932f), z, 0.13381013624383414f), z, 0.9999999796875829f);
    float q = fmaf(fmaf(fmaf(fmaf(7.776320716775055e-7f, z, 3.2856031813140917e-4f), z,
        0.025876924712820625f), z, 0.46714329321388726f), z, 1.0f);
    return x * p / q;
}

template <int K> __device__ __forceinline__ float th(float v) {
    if (K == 0) return tanh_f64r(v);
    if (K == 1) return tanhf(v);
    if (K == 2) return tanh_f32r(v);
    if (K == 3) return tanh_f64n(v);
    return v;
}

template <int K> __global__ void __launch_bounds__(256) gelu(float* __restrict__ y, const float* __restrict__ x, long long n) {
    long long i0 = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i0 + 4 > n) return;
    float4 q = *(const float4*)(x + i0);
    float v[4] = {q.x, q.y, q.z, q.w}, r[4];
    #pragma unroll
    for (int k = 0; k < 4; ++k) {
        float a = v[k];
        float c = a * a * a;
        float in = (a + c * 0.044715f) * 0.7978845608f;
        r[k] = (a * 0.5f) * (th<K>(in) + 1.0f);
    }
    *(float4*)(y + i0) = make_float4(r[0], r[1], r[2], r[3]);
}
__global__ void copyk(float* __restrict__ y, const float* __restrict__ x, long long n) {
    long long i0 = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i0 + 4 <= n) *(float4*)(y + i0) = *(const float4*)(x + i0);
}

template <class F> float timeit(F f) {
    cudaEvent_t a, b;
    cudaEventCreate(&a); cudaEventCreate(&b);
    f();
    cudaEventRecord(a);
    for (int i = 0; i < 20; ++i) f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms; cudaEventElapsedTime(&ms, a, b);
    return ms / 20;
}
__global__ void fill(float* x, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = (float)((i * 2654435761ll) % 20000) / 2500.f - 4.f;
}
int main() {
    long long n = 1ll << 28;
    float *x, *y;
    cudaMalloc(&x, n * 4); cudaMalloc(&y, n * 4);
    fill<<<(n + 255) / 256, 256>>>(x, n);
    unsigned blocks = (unsigned)(n / 1024);
    printf("copy          %.3f ms\n", timeit([&] { copyk<<<blocks, 256>>>(y, x, n); }));
    printf("gelu f64 rational (ingot) %.3f ms\n", timeit([&] { gelu<0><<<blocks, 256>>>(y, x, n); }));
    printf("gelu f64 newton quotient  %.3f ms\n", timeit([&] { gelu<3><<<blocks, 256>>>(y, x, n); }));
    printf("gelu tanhf                %.3f ms\n", timeit([&] { gelu<1><<<blocks, 256>>>(y, x, n); }));
    printf("gelu f32 rational         %.3f ms\n", timeit([&] { gelu<2><<<blocks, 256>>>(y, x, n); }));
    printf("gelu no tanh              %.3f ms\n", timeit([&] { gelu<4><<<blocks, 256>>>(y, x, n); }));
    // How often the Newton quotient's f32 bits differ from the exact division's.
    float *y2; cudaMalloc(&y2, n * 4);
    gelu<0><<<blocks, 256>>>(y, x, n); gelu<3><<<blocks, 256>>>(y2, x, n);
    cudaDeviceSynchronize();
    float *h1 = (float*)malloc(n * 4), *h2 = (float*)malloc(n * 4);
    cudaMemcpy(h1, y, n * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(h2, y2, n * 4, cudaMemcpyDeviceToHost);
    long long diff = 0;
    for (long long i = 0; i < n; ++i) diff += h1[i] != h2[i];
    printf("newton quotient differs from the exact division in %lld of %lld\n", diff, n);
    return 0;
}
