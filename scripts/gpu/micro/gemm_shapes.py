"""cuBLAS's gemm_strided_batched_ex exactly as ingot's matmul calls it (row-major C = A B as
column-major C^T = B^T A^T, bf16 in and out, f32 compute, CUBLAS_GEMM_DEFAULT), timed with
CUDA events beside torch.matmul on the same operands, for the GPT-2 step's projection
shapes. A diagnostic for shapes that profile far slower than their neighbours.

  python3 scripts/gpu/micro/gemm_shapes.py
"""
import ctypes
import torch

lib = ctypes.CDLL("libcublas.so.13")
R_16BF, COMPUTE_32F, OP_N = 14, 68, 0
one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)


def ingot_call(h, a, b, c):
    m, k = a.shape
    n = b.shape[1]
    st = lib.cublasGemmStridedBatchedEx(
        ctypes.c_void_p(h), OP_N, OP_N, n, m, k, ctypes.byref(one),
        ctypes.c_void_p(b.data_ptr()), R_16BF, n, ctypes.c_longlong(k * n),
        ctypes.c_void_p(a.data_ptr()), R_16BF, k, ctypes.c_longlong(m * k),
        ctypes.byref(zero), ctypes.c_void_p(c.data_ptr()), R_16BF, n,
        ctypes.c_longlong(m * n), 1, COMPUTE_32F, -1)
    assert st == 0, st


def timed(f, reps=20):
    f()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(reps):
        f()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / reps


h = torch.cuda.current_blas_handle()
# A handle of our own as ingot creates it: the library's default workspace (PyTorch sets
# its own on its handle), on the default stream.
own = ctypes.c_void_p()
assert lib.cublasCreate_v2(ctypes.byref(own)) == 0
own_ws = ctypes.c_void_p()
assert lib.cublasCreate_v2(ctypes.byref(own_ws)) == 0
ws = torch.empty(32 << 20, device="cuda", dtype=torch.uint8)
assert lib.cublasSetWorkspace_v2(own_ws, ctypes.c_void_p(ws.data_ptr()), ctypes.c_size_t(32 << 20)) == 0
for (m, k, n) in [(8192, 768, 2304), (8192, 768, 3072), (8192, 768, 768), (8192, 3072, 768),
                  (8192, 768, 50257), (8192, 768, 2048), (8192, 768, 2560)]:
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
    t_own = timed(lambda: ingot_call(own.value, a, b, c))
    t_ws = timed(lambda: ingot_call(own_ws.value, a, b, c))
    t_ingot = timed(lambda: ingot_call(h, a, b, c))
    ref = a @ b
    err = (c.float() - ref.float()).abs().max().item()
    t_torch = timed(lambda: a @ b)
    tf = 2 * m * n * k / 1e12
    print(f"({m},{k})x({k},{n}): own handle {t_own*1e3:8.1f} us, with a 32 MiB workspace {t_ws*1e3:8.1f} us | "
          f"on torch's handle {t_ingot*1e3:8.1f} us {tf/t_ingot*1e3:6.0f} TFLOP/s | "
          f"torch {t_torch*1e3:8.1f} us {tf/t_torch*1e3:6.0f} TFLOP/s | max diff {err:.3g}")
