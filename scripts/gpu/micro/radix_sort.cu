// Micro-benchmark: ingot's radix sort of 16M f32 (kernels/sort.cuh, included as NVRTC builds
// it) in its two forms, beside CUB's DeviceRadixSort:
//   multi: per pass a digit count (hist), an exclusive scan of the counts (CUB's here; ingot
//          uses its own scan kernels) and a move (scatter);
//   sweep: one count of every pass's digits (ghist), then one kernel a pass (onesweep) that
//          finds each tile's output places by decoupled look-back.
// Both sort (payload: the element's bits) and argsort (payload: the position, int64 out).
// Checks every result against a stable sort on the host, on uniform data and on data full
// of ties, NaNs and signed zeros, over one row and over several. nvcc -O3 -arch=sm_90a.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include "../../../crates/ingot/src/backend/cuda/kernels/common.cuh"
#define TI f32
#define KEY u32
#define VAL u32
#define DECODE(k) kdec_f32(k)
#define ROUNDTRIP 1
#define SMALL 4096
#define PASSES 4
#define SORT_CUH "../../../crates/ingot/src/backend/cuda/kernels/sort.cuh"
// Each namespace: one payload (2: the element's bits, sort; 1: the position, argsort), keys per
// thread (RITEMS) and blocks per SM asked of the register allocator (RMINB). Results from an
// H100 are in docs/benchmarks.md (run G15).
#define RITEMS 16
#define RMINB 3
namespace pv {
#define PAYLOAD 2
#define KNAME(k) sv_##k
#include SORT_CUH
#undef PAYLOAD
#undef KNAME
}
namespace pi {
#define PAYLOAD 1
#define KNAME(k) si_##k
#include SORT_CUH
#undef PAYLOAD
#undef KNAME
}
#undef RITEMS
#undef RMINB
#define RITEMS 16
#define RMINB 2
namespace pvB {
#define PAYLOAD 2
#define KNAME(k) svB_##k
#include SORT_CUH
#undef PAYLOAD
#undef KNAME
}
namespace piB {
#define PAYLOAD 1
#define KNAME(k) siB_##k
#include SORT_CUH
#undef PAYLOAD
#undef KNAME
}
#undef RITEMS
#undef RMINB

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__); exit(1); } } while (0)

static unsigned hkey(float f) {
    if (f != f) return 0xffffffffu;
    unsigned b; memcpy(&b, &f, 4);
    if (f == 0.0f) b = 0;
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

typedef void (*Scatter)(u32*, u32*, const u32*, const u32*, const f32*, void*, const u32*, long long, long long, int, int, int);
typedef void (*Hist)(u32*, const u32*, const f32*, long long, long long, int, int);
typedef void (*Sweep)(u32*, u32*, const u32*, const u32*, const f32*, void*, const u32*, u32*, u32*, u32*, const u32*, long long, long long, int, int, int);
typedef void (*GHist)(u32*, u32*, const f32*, long long, long long);

struct Bufs {
    u32 *k[2], *v[2], *counts, *offs, *work;
    void* scan_tmp; size_t scan_bytes;
};

static float g_split[8];  // per-kernel times of the last instrumented run (ms)

// multi: hist + scan + scatter per pass.
static void run_multi(Hist hist, Scatter sc, Bufs& b, const f32* x, void* out, long long lines, long long n, bool split) {
    long long tpr = (n + 4095) / 4096, blocks = lines * tpr, nc = lines * 256 * tpr;
    cudaEvent_t ev[13];
    if (split) for (auto& e : ev) cudaEventCreate(&e);
    int cur = 0;
    for (int p = 0; p < 4; ++p) {
        if (split) cudaEventRecord(ev[3 * p]);
        hist<<<blocks, 256>>>(b.counts, b.k[cur], x, n, tpr, p, p == 0);
        if (split) cudaEventRecord(ev[3 * p + 1]);
        cub::DeviceScan::ExclusiveSum(b.scan_tmp, b.scan_bytes, b.counts, b.offs, (int)nc);
        if (split) cudaEventRecord(ev[3 * p + 2]);
        sc<<<blocks, 256>>>(b.k[1 - cur], b.v[1 - cur], b.k[cur], b.v[cur], x, out, b.offs, n, tpr, p, p == 0, p == 3);
        cur = 1 - cur;
    }
    if (split) {
        cudaEventRecord(ev[12]);
        cudaEventSynchronize(ev[12]);
        float h = 0, s = 0, c = 0, t;
        for (int p = 0; p < 4; ++p) {
            cudaEventElapsedTime(&t, ev[3 * p], ev[3 * p + 1]); h += t;
            cudaEventElapsedTime(&t, ev[3 * p + 1], ev[3 * p + 2]); s += t;
            cudaEventElapsedTime(&t, ev[3 * p + 2], ev[3 * p + 3]); c += t;
            g_split[4 + p] = t;
        }
        g_split[0] = h; g_split[1] = s; g_split[2] = c;
        for (auto& e : ev) cudaEventDestroy(e);
    }
}

// sweep: memset + ghist + onesweep per pass.
struct Var { const char* name; int tile; GHist gh[2]; Sweep sw[2]; };  // [argsort, sort]
static void run_sweep(const Var& v, int pay, Bufs& b, const f32* x, void* out, long long lines, long long n, bool split) {
    GHist gh = v.gh[pay - 1];
    Sweep sw = v.sw[pay - 1];
    long long tpr = (n + v.tile - 1) / v.tile, tiles = lines * tpr;
    u32* counts = b.work;                      // lines * 4 * 256
    u32* tickets = counts + lines * 4 * 256;   // 32
    u32* st[2] = {tickets + 32, tickets + 32 + tiles * 256};
    cudaEvent_t ev[7];
    if (split) for (auto& e : ev) cudaEventCreate(&e);
    if (split) cudaEventRecord(ev[0]);
    cudaMemsetAsync(counts, 0, (lines * 4 * 256 + 32 + tiles * 256) * 4);
    long long gblocks = lines * ((tpr + 7) / 8);
    gh<<<gblocks, 256>>>(counts, tickets + 31, x, n, tpr);
    if (split) cudaEventRecord(ev[1]);
    int cur = 0;
    for (int p = 0; p < 4; ++p) {
        sw<<<tiles, 256>>>(b.k[1 - cur], b.v[1 - cur], b.k[cur], b.v[cur], x, out, counts, st[p & 1], st[1 - (p & 1)], tickets + p, tickets + 31, n, tpr, p, p == 0, p == 3);
        if (split) cudaEventRecord(ev[2 + p]);
        cur = 1 - cur;
    }
    if (split) {
        cudaEventSynchronize(ev[5]);
        float t;
        cudaEventElapsedTime(&t, ev[0], ev[1]); g_split[0] = t;
        for (int p = 0; p < 4; ++p) { cudaEventElapsedTime(&t, ev[1 + p], ev[2 + p]); g_split[4 + p] = t; }
        for (auto& e : ev) cudaEventDestroy(e);
    }
}

template <class F>
static float time_ms(F f, int reps) {
    cudaEvent_t a, z;
    cudaEventCreate(&a); cudaEventCreate(&z);
    std::vector<float> ts;
    for (int r = 0; r < reps; ++r) {
        cudaEventRecord(a);
        f();
        cudaEventRecord(z);
        cudaEventSynchronize(z);
        float t; cudaEventElapsedTime(&t, a, z); ts.push_back(t);
    }
    CK(cudaGetLastError());
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
}

int main(int argc, char** argv) {
    const long long N = 1 << 24;
    Bufs b;
    for (int i = 0; i < 2; ++i) { CK(cudaMalloc(&b.k[i], N * 4)); CK(cudaMalloc(&b.v[i], N * 4)); }
    long long maxc = 256 * ((N + 4095) / 4096) * 4;
    CK(cudaMalloc(&b.counts, maxc * 4)); CK(cudaMalloc(&b.offs, maxc * 4));
    CK(cudaMalloc(&b.work, (4 * 256 * 8 + 32 + 2 * 256 * (N / 2048 + 64)) * 4));
    b.scan_tmp = nullptr; b.scan_bytes = 0;
    cub::DeviceScan::ExclusiveSum(nullptr, b.scan_bytes, b.counts, b.offs, (int)maxc);
    CK(cudaMalloc(&b.scan_tmp, b.scan_bytes));
    f32* x; CK(cudaMalloc(&x, N * 4));
    void* out; CK(cudaMalloc(&out, N * 8));
    Var vars[] = {
        {"sweep", 4096, {(GHist)pi::si_ghist, (GHist)pv::sv_ghist}, {(Sweep)pi::si_onesweep, (Sweep)pv::sv_onesweep}},
        {"sweep-r2", 4096, {(GHist)piB::siB_ghist, (GHist)pvB::svB_ghist}, {(Sweep)piB::siB_onesweep, (Sweep)pvB::svB_onesweep}},
    };
    const int NV = sizeof(vars) / sizeof(vars[0]);
    std::vector<float> hx(N);
    std::vector<unsigned char> hout(N * 8);
    bool all_ok = true;
    if (argc > 1 && !strcmp(argv[1], "prof")) {
        // One run of each form for a profiler (ncu).
        for (long long i = 0; i < N; ++i) hx[i] = (float)rand() / ((float)RAND_MAX + 1.0f);
        CK(cudaMemcpy(x, hx.data(), N * 4, cudaMemcpyHostToDevice));
        run_multi((Hist)pi::si_hist, (Scatter)pi::si_scatter, b, x, out, 1, N, false);
        run_sweep(vars[0], 1, b, x, out, 1, N, false);
        CK(cudaDeviceSynchronize());
        return 0;
    }

    // Correctness: several data sets and row shapes, both forms, both payloads.
    struct Case { const char* name; int kind; long long lines, n; };
    Case cases[] = {{"uniform 1x16M", 0, 1, N}, {"ties+nan+zeros 1x16M", 1, 1, N},
                    {"uniform 3x1000003", 0, 3, 1000003}, {"ties 5x70001", 1, 5, 70001},
                    {"uniform 1x4097", 0, 1, 4097}, {"uniform, one -0.0 3x777777", 2, 3, 777777}};
    srand(7);
    for (auto& cs : cases) {
        long long tot = cs.lines * cs.n;
        for (long long i = 0; i < tot; ++i) {
            if (cs.kind != 1) hx[i] = (float)rand() / ((float)RAND_MAX + 1.0f) - (cs.kind == 2 ? 0.5f : 0.0f);
            else {
                int r = rand() % 9;
                float vals[9] = {0.0f, -0.0f, NAN, -NAN, 1.5f, -2.25f, INFINITY, -INFINITY, 3.0f};
                hx[i] = vals[r];
                if (r == 3) { unsigned u = 0xffc00001u; memcpy(&hx[i], &u, 4); }
            }
        }
        if (cs.kind == 2) { hx[tot / 2] = -0.0f; hx[tot / 3] = 0.0f; }
        CK(cudaMemcpy(x, hx.data(), tot * 4, cudaMemcpyHostToDevice));
        // Host reference: stable sort of positions by key, per row.
        std::vector<unsigned> ref(tot);
        for (long long r = 0; r < cs.lines; ++r) {
            unsigned* rr = ref.data() + r * cs.n;
            for (long long j = 0; j < cs.n; ++j) rr[j] = (unsigned)j;
            const float* xr = hx.data() + r * cs.n;
            std::stable_sort(rr, rr + cs.n, [&](unsigned a, unsigned c) { return hkey(xr[a]) < hkey(xr[c]); });
        }
        for (int form = 0; form <= NV; ++form) {
            for (int pay = 1; pay <= 2; ++pay) {
                CK(cudaMemset(out, 0xAB, tot * 8));
                if (form == 0) run_multi(pay == 1 ? (Hist)pi::si_hist : (Hist)pv::sv_hist, pay == 1 ? (Scatter)pi::si_scatter : (Scatter)pv::sv_scatter, b, x, out, cs.lines, cs.n, false);
                else run_sweep(vars[form - 1], pay, b, x, out, cs.lines, cs.n, false);
                CK(cudaDeviceSynchronize());
                CK(cudaMemcpy(hout.data(), out, tot * (pay == 1 ? 8 : 4), cudaMemcpyDeviceToHost));
                long long bad = 0;
                for (long long i = 0; i < tot; ++i) {
                    long long r = i / cs.n;
                    if (pay == 1) {
                        long long got; memcpy(&got, &hout[i * 8], 8);
                        if (got != (long long)ref[i]) ++bad;
                    } else {
                        unsigned got, want; memcpy(&got, &hout[i * 4], 4);
                        memcpy(&want, &hx[r * cs.n + ref[i]], 4);
                        if (got != want) ++bad;
                    }
                }
                printf("check %-22s %-9s %-7s %s (%lld wrong)\n", cs.name, form ? vars[form - 1].name : "multi", pay == 1 ? "argsort" : "sort", bad ? "FAIL" : "ok", bad);
                if (bad) all_ok = false;
            }
        }
    }

    // Timing: uniform [0, 1) as the benchmark (torch.rand).
    for (long long i = 0; i < N; ++i) hx[i] = (float)rand() / ((float)RAND_MAX + 1.0f);
    CK(cudaMemcpy(x, hx.data(), N * 4, cudaMemcpyHostToDevice));
    printf("\n16M f32 uniform, median of 20 (us)\n");
    for (int pay = 1; pay <= 2; ++pay) {
        const char* nm = pay == 1 ? "argsort" : "sort";
        Hist h = pay == 1 ? (Hist)pi::si_hist : (Hist)pv::sv_hist;
        Scatter s = pay == 1 ? (Scatter)pi::si_scatter : (Scatter)pv::sv_scatter;
        float tm = time_ms([&] { run_multi(h, s, b, x, out, 1, N, false); }, 20);
        run_multi(h, s, b, x, out, 1, N, true);
        printf("%-8s multi %8.1f   hist %.1f scan %.1f scatter %.1f (passes %.1f %.1f %.1f %.1f)\n", nm, tm * 1e3, g_split[0] * 1e3, g_split[1] * 1e3, g_split[2] * 1e3, g_split[4] * 1e3, g_split[5] * 1e3, g_split[6] * 1e3, g_split[7] * 1e3);
        for (int v = 0; v < NV; ++v) {
            float ts = time_ms([&] { run_sweep(vars[v], pay, b, x, out, 1, N, false); }, 20);
            run_sweep(vars[v], pay, b, x, out, 1, N, true);
            printf("%-8s %-9s %8.1f   memset+ghist %.1f passes %.1f %.1f %.1f %.1f\n", nm, vars[v].name, ts * 1e3, g_split[0] * 1e3, g_split[4] * 1e3, g_split[5] * 1e3, g_split[6] * 1e3, g_split[7] * 1e3);
        }
    }
    // CUB: keys (as ingot's u32 keys) with a u32 payload, f32 keys alone, f32 keys with int64
    // positions (what torch.sort / argsort do).
    {
        u32 *ko, *vo; CK(cudaMalloc(&ko, N * 4)); CK(cudaMalloc(&vo, N * 8));
        long long* pos; CK(cudaMalloc(&pos, N * 8));
        std::vector<long long> hp(N); for (long long i = 0; i < N; ++i) hp[i] = i;
        CK(cudaMemcpy(pos, hp.data(), N * 8, cudaMemcpyHostToDevice));
        size_t tb = 0; void* tmp = nullptr;
        cub::DeviceRadixSort::SortPairs(nullptr, tb, (float*)x, (float*)ko, pos, (long long*)vo, (int)N);
        CK(cudaMalloc(&tmp, tb * 2));
        size_t tb2 = tb * 2;
        float t1 = time_ms([&] { cub::DeviceRadixSort::SortPairs(tmp, tb2, (const u32*)x, ko, (const u32*)b.v[0], (u32*)vo, (int)N); }, 20);
        float t2 = time_ms([&] { cub::DeviceRadixSort::SortKeys(tmp, tb2, (const float*)x, (float*)ko, (int)N); }, 20);
        float t3 = time_ms([&] { cub::DeviceRadixSort::SortPairs(tmp, tb2, (const float*)x, (float*)ko, (const long long*)pos, (long long*)vo, (int)N); }, 20);
        printf("cub pairs u32+u32 %8.1f   keys f32 %8.1f   pairs f32+i64 %8.1f\n", t1 * 1e3, t2 * 1e3, t3 * 1e3);
    }
    printf("%s\n", all_ok ? "ALL OK" : "SOME FAILED");
    return 0;
}
