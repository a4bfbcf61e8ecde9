// A timeline of a process's GPU kernels and CUDA driver calls, for machines without Nsight
// Systems: built as a shared library on the GPU machine and preloaded into the program,
//   nvcc -O2 -shared -Xcompiler -fPIC -DKREC=CUpti_ActivityKernel9 -o /tmp/trace.so \
//        scripts/gpu/micro/cupti_trace.c -I$CUPTI/include -L$CUPTI/lib64 -lcupti
//   CUPTI_TRACE_OUT=/tmp/trace.csv LD_PRELOAD=/tmp/trace.so PROGRAM ...
// (scripts/gpu/trace.sh does both and picks KREC, the newest kernel record the headers
// have). Writes one CSV line a record: `K,start_ns,end_ns,stream,correlation,name` for a
// kernel and `A,start_ns,end_ns,thread,correlation,call` for a driver call;
// scripts/gpu/trace_summary.py reads it.
#include <cupti.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KREC
#define KREC CUpti_ActivityKernel9
#endif

static FILE* out;
#define BUF (8u << 20)

static void CUPTIAPI requested(uint8_t** buffer, size_t* size, size_t* max_records) {
    *buffer = (uint8_t*)aligned_alloc(8, BUF);
    *size = BUF;
    *max_records = 0;
}

static void CUPTIAPI completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t size,
    size_t valid) {
    (void)ctx;
    (void)stream;
    (void)size;
    CUpti_Activity* rec = NULL;
    while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
            const KREC* k = (const KREC*)rec;
            fprintf(out, "K,%llu,%llu,%u,%u,%.120s\n", (unsigned long long)k->start,
                (unsigned long long)k->end, k->streamId, k->correlationId, k->name ? k->name : "?");
        } else if (rec->kind == CUPTI_ACTIVITY_KIND_DRIVER) {
            const CUpti_ActivityAPI* a = (const CUpti_ActivityAPI*)rec;
            const char* name = NULL;
            cuptiGetCallbackName(CUPTI_CB_DOMAIN_DRIVER_API, a->cbid, &name);
            fprintf(out, "A,%llu,%llu,%u,%u,%s\n", (unsigned long long)a->start,
                (unsigned long long)a->end, a->threadId, a->correlationId, name ? name : "?");
        }
    }
    free(buffer);
}

__attribute__((constructor)) static void start(void) {
    const char* path = getenv("CUPTI_TRACE_OUT");
    out = fopen(path ? path : "/tmp/trace.csv", "w");
    if (!out) return;
    cuptiActivityRegisterCallbacks(requested, completed);
    cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER);
}

__attribute__((destructor)) static void stop(void) {
    if (!out) return;
    cuptiActivityFlushAll(1);
    fclose(out);
}
