// Micro-benchmark: what one kernel launch costs the host, and how fast the GPU retires
// back-to-back tiny kernels on one stream: the floor under ingot's "tiny op" row.
//   host, burst B: B launches timed on the host after a synchronize, so the driver's queue
//       starts empty (B small: pure host cost; B = 10000: the queue may fill, and then the
//       host waits for the GPU and measures the GPU's rate instead).
//   gpu: events around 10000 launches, the GPU's time per kernel.
// Kernels: empty; an add of 4 floats taking ingot's map-kernel parameters (about 220 bytes:
// shape and strides by value). Streams: a non-blocking stream (what ingot uses), the legacy
// default stream.
// LINK: -lcuda
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <cstdlib>
#include <cuda.h>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)
#define DK(x) do { CUresult e = (x); if (e != CUDA_SUCCESS) { printf("CU %d at %d\n", (int)e, __LINE__); exit(1); } } while (0)

struct Shape { int nd; long long dim[6]; };
struct Strides { long long off; long long st[6]; long long mode; };

extern "C" __global__ void empty() {}
extern "C" __global__ void add4(float* y, long long n, int vec, Shape s, const float* a,
                                Strides sa, const float* b, Strides sb) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}

extern "C" __global__ void add_ptrs(float* y, const float* a, const float* b, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main() {
    CK(cudaFree(0));
    float *y, *a, *b;
    CK(cudaMalloc(&y, 64)); CK(cudaMalloc(&a, 64)); CK(cudaMalloc(&b, 64));
    CUfunction fe, fa;
    CK(cudaGetFuncBySymbol(&fe, (const void*)empty));
    CK(cudaGetFuncBySymbol(&fa, (const void*)add4));
    CUfunction fp;
    CK(cudaGetFuncBySymbol(&fp, (const void*)add_ptrs));
    cudaStream_t nb;
    CK(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking));
    Shape s{1, {4}};
    Strides st{0, {1}, 1};
    long long n = 4; int vec = 1;
    void* add_args[] = {&y, &n, &vec, &s, &a, &st, &b, &st};
    struct K { const char* name; CUfunction f; void** args; };
    void* ptr_args[] = {&y, &a, &b, &n};
    K ks[] = {{"empty", fe, nullptr}, {"add4 (ingot's params)", fa, add_args},
              {"add (4 params)", fp, ptr_args}};
    struct S { const char* name; CUstream s; };
    S ss[] = {{"non-blocking", (CUstream)nb}, {"legacy default", (CUstream)0}};
    printf("%-24s %-16s %10s %10s %10s %10s %10s\n", "kernel", "stream", "burst 1", "burst 16",
           "burst 256", "10000", "gpu/kernel");
    for (auto& k : ks) {
        for (auto& sv : ss) {
            for (int w = 0; w < 2000; w++)
                DK(cuLaunchKernel(k.f, 1, 1, 1, 32, 1, 1, 0, sv.s, k.args, nullptr));
            CK(cudaDeviceSynchronize());
            double res[4];
            int bursts[4] = {1, 16, 256, 10000};
            for (int bi = 0; bi < 4; bi++) {
                int B = bursts[bi];
                int reps = B == 10000 ? 3 : 20000 / B;
                double tot = 0;
                for (int r = 0; r < reps; r++) {
                    CK(cudaDeviceSynchronize());
                    double t = now();
                    for (int i = 0; i < B; i++)
                        DK(cuLaunchKernel(k.f, 1, 1, 1, 32, 1, 1, 0, sv.s, k.args, nullptr));
                    tot += now() - t;
                }
                res[bi] = tot / (reps * (double)B) * 1e6;
            }
            CK(cudaDeviceSynchronize());
            cudaEvent_t e0, e1;
            CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
            CK(cudaEventRecord(e0, (cudaStream_t)sv.s));
            for (int i = 0; i < 10000; i++)
                DK(cuLaunchKernel(k.f, 1, 1, 1, 32, 1, 1, 0, sv.s, k.args, nullptr));
            CK(cudaEventRecord(e1, (cudaStream_t)sv.s));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            printf("%-24s %-16s %8.2f us %8.2f us %8.2f us %8.2f us %8.2f us\n", k.name, sv.name,
                   res[0], res[1], res[2], res[3], ms * 1e3 / 10000);
        }
    }
    // The same add4 with its parameters as one buffer (CU_LAUNCH_PARAM_BUFFER_POINTER).
    {
        alignas(8) unsigned char buf[224] = {};
        memcpy(buf + 0, &y, 8); memcpy(buf + 8, &n, 8); memcpy(buf + 16, &vec, 4);
        memcpy(buf + 24, &s, sizeof(Shape)); memcpy(buf + 80, &a, 8);
        memcpy(buf + 88, &st, sizeof(Strides)); memcpy(buf + 152, &b, 8);
        memcpy(buf + 160, &st, sizeof(Strides));
        size_t size = sizeof(buf);
        void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                         CU_LAUNCH_PARAM_END};
        for (int w = 0; w < 2000; w++)
            DK(cuLaunchKernel(fa, 1, 1, 1, 32, 1, 1, 0, (CUstream)nb, nullptr, extra));
        CK(cudaDeviceSynchronize());
        double tot = 0;
        for (int r = 0; r < 20000; r++) {
            CK(cudaStreamSynchronize(nb));
            double t = now();
            DK(cuLaunchKernel(fa, 1, 1, 1, 32, 1, 1, 0, (CUstream)nb, nullptr, extra));
            tot += now() - t;
        }
        CK(cudaDeviceSynchronize());
        float* h = (float*)malloc(64);
        printf("add4 as one param buffer, burst 1: %.2f us\n", tot / 20000 * 1e6);
        free(h);
    }
    // A launch thread: the caller pushes each launch to a ring that a spinning thread
    // drains, so the caller pays a copy of the arguments and the thread pays the driver.
    {
        struct Job { unsigned char buf[224]; };
        const int R = 1 << 14;
        static Job ring[1 << 14];
        std::atomic<long> head{0}, tail{0};
        std::atomic<bool> stop{false};
        std::thread th([&] {
            CK(cudaSetDevice(0));
            long t = 0;
            while (true) {
                long h = head.load(std::memory_order_acquire);
                if (t == h) {
                    if (stop.load()) break;
                    continue;
                }
                size_t size = 224;
                void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, ring[t % R].buf,
                                 CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
                DK(cuLaunchKernel(fa, 1, 1, 1, 32, 1, 1, 0, (CUstream)nb, nullptr, extra));
                t++;
                tail.store(t, std::memory_order_release);
            }
        });
        alignas(8) unsigned char buf[224] = {};
        memcpy(buf + 0, &y, 8); memcpy(buf + 8, &n, 8); memcpy(buf + 16, &vec, 4);
        memcpy(buf + 24, &s, sizeof(Shape)); memcpy(buf + 80, &a, 8);
        memcpy(buf + 88, &st, sizeof(Strides)); memcpy(buf + 152, &b, 8);
        memcpy(buf + 160, &st, sizeof(Strides));
        for (int rep = 0; rep < 3; rep++) {
            long h0 = head.load();
            double t = now();
            for (int i = 0; i < 10000; i++) {
                memcpy(ring[(h0 + i) % R].buf, buf, 224);
                head.store(h0 + i + 1, std::memory_order_release);
            }
            double pushed = now() - t;
            while (tail.load(std::memory_order_acquire) != h0 + 10000) {}
            CK(cudaStreamSynchronize(nb));
            double done = now() - t;
            printf("launch thread, 10000 adds: caller %.2f us per op, through synchronize %.2f us per op\n",
                   pushed / 10000 * 1e6, done / 10000 * 1e6);
        }
        stop = true;
        th.join();
    }
    // A CUDA graph of 100 adds, replayed: the GPU's time per kernel inside a graph.
    cudaGraph_t gr;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(nb, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < 100; i++)
        DK(cuLaunchKernel(fa, 1, 1, 1, 32, 1, 1, 0, (CUstream)nb, add_args, nullptr));
    CK(cudaStreamEndCapture(nb, &gr));
    CK(cudaGraphInstantiate(&ge, gr, 0));
    for (int w = 0; w < 10; w++) CK(cudaGraphLaunch(ge, nb));
    CK(cudaStreamSynchronize(nb));
    double t = now();
    for (int w = 0; w < 100; w++) CK(cudaGraphLaunch(ge, nb));
    CK(cudaStreamSynchronize(nb));
    printf("graph of 100 adds: %.2f us per kernel (host and GPU together)\n",
           (now() - t) / 10000 * 1e6);
    return 0;
}
