"""PyTorch's side of ingot-gpu-bench: the same cases on the same GPU, in the same run.
Prints one JSON object {case: seconds} on stdout. Timing: CUDA events around `reps`
back-to-back runs after a warm-up, median of 5 such batches, divided by reps.

usage: python3 scripts/gpu/torch_bench.py [--quick]
"""
import json
import sys

import torch

quick = "--quick" in sys.argv
dev = "cuda"
res = {}


def timeit(name, fn, reps=20):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1000 / reps)
    times.sort()
    res[name] = times[2]


g = torch.Generator(device=dev).manual_seed(0)
big = (1 << 24) if quick else (1 << 28)
x = torch.rand(big, device=dev, generator=g) * 2 - 1
y = torch.rand(big, device=dev, generator=g) * 2 - 1
timeit("copy", lambda: x.clone())
timeit("exp", lambda: torch.exp(x))
timeit("add", lambda: x + y)
m = torch.rand(4096, 4096, device=dev, generator=g)
timeit("sum_last", lambda: m.sum(dim=1))
timeit("sum_first", lambda: m.sum(dim=0))
timeit("sum_all", lambda: m.sum())


def gelu(v):
    return 0.5 * v * (1 + torch.tanh(0.7978845608 * (v + 0.044715 * v * v * v)))


timeit("gelu_uncompiled", lambda: gelu(x), reps=5)
try:
    gelu_c = torch.compile(gelu)
    timeit("gelu_compiled", lambda: gelu_c(x), reps=5)
except Exception as e:  # no compiler toolchain for inductor: leave the row empty
    print(f"torch.compile unavailable: {e}", file=sys.stderr)
timeit("softmax", lambda: torch.softmax(m, dim=-1))
v = torch.rand(1 << 24, device=dev, generator=g)
timeit("cumsum", lambda: torch.cumsum(v, dim=0))
for n in ([4096] if quick else [4096, 8192]):
    for dt, tag in ((torch.bfloat16, "bf16"), (torch.float16, "f16")):
        a = torch.randn(n, n, device=dev, generator=g).to(dt)
        b = torch.randn(n, n, device=dev, generator=g).to(dt)
        timeit(f"matmul_{tag}_{n}", lambda: a @ b, reps=10)
# One tiny op: host time to build and enqueue it (no sync), as the eager overhead.
import time

s = torch.ones(4, device=dev)
for _ in range(100):
    s = s + 1
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(10000):
    s = s + 1
dt = time.perf_counter() - t
torch.cuda.synchronize()
res["tiny_op"] = dt / 10000
print(json.dumps(res))
