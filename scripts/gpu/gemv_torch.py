"""PyTorch's batch-1 decode matmuls (x[1,K] @ W[N,K]^T, bf16) for the Llama-3-8B shapes,
timed inside a CUDA graph of 20 calls (no launch gaps), beside the bandwidth they reach.
The yardstick for ingot's GEMV: `python3 scripts/gpu/gemv_torch.py`."""
import json, torch

shapes = [(4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336), (128256, 4096), (6144, 4096), (28672, 4096)]
rows = []
for n, k in shapes:
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
    # Several weights in turn so each call reads HBM, not L2.
    ws = [w] + [torch.randn_like(w) for _ in range(3)]
    x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        [torch.nn.functional.linear(x, wi) for wi in ws]
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(5):
            for wi in ws:
                torch.nn.functional.linear(x, wi)
    g.replay(); torch.cuda.synchronize()
    best = 1e9
    for _ in range(10):
        s, e = torch.cuda.Event(True), torch.cuda.Event(True)
        s.record(); g.replay(); e.record(); torch.cuda.synchronize()
        best = min(best, s.elapsed_time(e) / 20 * 1e3)
    tbs = n * k * 2 / (best * 1e-6) / 1e12
    rows.append({"n": n, "k": k, "us": best, "tb_s": tbs})
    print(f"torch linear [1,{k}] x [{n},{k}]^T bf16: {best:.2f} us, {tbs:.2f} TB/s")
print(json.dumps(rows))
