"""PyTorch's side of ingot-gpu-bench: the same cases on the same GPU, in the same run.
Prints one JSON object {case: seconds} on stdout. Timing: CUDA events around `reps`
back-to-back runs after a warm-up, median of 5 such batches, divided by reps.

usage: python3 scripts/gpu/torch_bench.py [--quick]
"""
import json
import sys

import torch
from torch_timing import median_seconds

quick = "--quick" in sys.argv
dev = "cuda"
res = {}


def timeit(name, fn, reps=20):
    res[name] = median_seconds(fn, reps)


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
z = torch.complex(torch.rand(1 << 24, device=dev, generator=g), torch.rand(1 << 24, device=dev, generator=g))
timeit("fft_c64_2p24", lambda: torch.fft.fft(z))
del z
sv = torch.rand(1 << 24, device=dev, generator=g)
timeit("sort_16m", lambda: torch.sort(sv), reps=5)
timeit("argsort_16m", lambda: torch.argsort(sv), reps=5)
del sv


def resnet50_convs():
    """ResNet-50's convolutions as (size, C_in, C_out, kernel, stride, padding), as in
    ingot-gpu-bench."""
    v = [(224, 3, 64, 7, 2, 3)]
    h, cin = 56, 64
    for i, (w, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for b in range(blocks):
            s = 2 if b == 0 and i > 0 else 1
            ho = h // s
            v += [(h, cin, w, 1, 1, 0), (h, w, w, 3, s, 1), (ho, w, 4 * w, 1, 1, 0)]
            if b == 0:
                v.append((h, cin, 4 * w, 1, s, 0))
            h, cin = ho, 4 * w
    return v


batch = 8 if quick else 64
cl = torch.channels_last
stack = [
    (torch.rand(batch, cin, h, h, device=dev, generator=g).to(torch.bfloat16).to(memory_format=cl),
     torch.rand(cout, cin, k, k, device=dev, generator=g).to(torch.bfloat16).to(memory_format=cl), s, p)
    for (h, cin, cout, k, s, p) in resnet50_convs()
]


def convs():
    for x, w, s, p in stack:
        torch.nn.functional.conv2d(x, w, stride=s, padding=p)


timeit("resnet50_convs", convs, reps=5)
del stack
for n in ([4096] if quick else [4096, 8192]):
    for dt, tag in ((torch.bfloat16, "bf16"), (torch.float16, "f16")):
        a = torch.randn(n, n, device=dev, generator=g).to(dt)
        b = torch.randn(n, n, device=dev, generator=g).to(dt)
        timeit(f"matmul_{tag}_{n}", lambda: a @ b, reps=10)
# Attention as ingot-gpu-bench's rows: causal prefill (2, 32, 4096, 128) and one query over
# 8,192 cached keys, bf16, through F.scaled_dot_product_attention (its fastest backend here).
F = torch.nn.functional
q, k, v = (torch.rand(2, 32, 4096, 128, device=dev, generator=g).to(torch.bfloat16) * 2 - 1 for _ in range(3))
timeit("attention_prefill", lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), reps=5)
q = torch.rand(1, 32, 1, 128, device=dev, generator=g).to(torch.bfloat16)
k, v = (torch.rand(1, 32, 8192, 128, device=dev, generator=g).to(torch.bfloat16) for _ in range(2))
timeit("attention_decode", lambda: F.scaled_dot_product_attention(q, k, v))
del q, k, v
# A GPT-2 MLP projection (8 x 1024 tokens, 768 -> 3072) with its bias, and with the tanh
# GELU after it: F.linear is one cuBLASLt call with a bias epilogue; the GELU is a kernel more.
x = (torch.rand(8192, 768, device=dev, generator=g) * 2 - 1).to(torch.bfloat16)
W = (torch.rand(3072, 768, device=dev, generator=g) * 2 - 1).to(torch.bfloat16)
bias = (torch.rand(3072, device=dev, generator=g) * 2 - 1).to(torch.bfloat16)
timeit("linear_bias", lambda: F.linear(x, W, bias))
timeit("linear_bias_gelu", lambda: F.gelu(F.linear(x, W, bias), approximate="tanh"))
del x, W, bias
# A step of ~100 small kernels (ingot's "small step" row): eager, and replayed from a CUDA
# graph (captured after warm-up on a side stream, as PyTorch's docs show).
hs = torch.rand(64, 256, device=dev, generator=g) * 2 - 1
ws = [(torch.rand(256, 256, device=dev, generator=g) * 2 - 1) * 0.1 for _ in range(32)]


def small_step(h):
    for w in ws:
        h = h @ w
        h = h - h.mean(dim=1, keepdim=True)
        h = torch.tanh(h)
    return h


timeit("step_eager", lambda: small_step(hs), reps=200)
static_in = hs.clone()
side = torch.cuda.Stream()
side.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(side):
    for _ in range(3):
        small_step(static_in)
torch.cuda.current_stream().wait_stream(side)
step_graph = torch.cuda.CUDAGraph()
with torch.cuda.graph(step_graph):
    static_out = small_step(static_in)


def replay():
    static_in.copy_(hs)
    step_graph.replay()


timeit("step_graph", replay, reps=200)
# One tiny op: time to build and launch it, through the final synchronize (ingot's row is
# timed the same way), as the eager overhead.
import time

s = torch.ones(4, device=dev)
for _ in range(100):
    s = s + 1
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(10000):
    s = s + 1
torch.cuda.synchronize()
dt = time.perf_counter() - t
res["tiny_op"] = dt / 10000
print(json.dumps(res))
