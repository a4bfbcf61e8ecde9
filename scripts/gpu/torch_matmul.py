"""PyTorch's side of ingot-gpu-bench's matmul rows, measured in turn with ingot's so that
both see the same GPU clock (a power-limited H100 moves it by several percent between the
start and the end of a bench run). Reads lines "bf16 8192" on stdin and answers each with
one line: the seconds one product took (standard normal operands, CUDA events around 10
products after a warm-up, median of 5 batches, as scripts/gpu/torch_bench.py times).

usage: python3 scripts/gpu/torch_matmul.py   (started by ingot-gpu-bench)
"""
import sys

import torch
from torch_timing import median_seconds

dev = "cuda"
g = torch.Generator(device=dev).manual_seed(1)
operands = {}
print("ready", flush=True)
for line in sys.stdin:
    tag, n = line.split()
    n = int(n)
    if (tag, n) not in operands:
        dt = {"bf16": torch.bfloat16, "f16": torch.float16}[tag]
        operands[(tag, n)] = tuple(torch.randn(n, n, device=dev, generator=g).to(dt) for _ in range(2))
    a, b = operands[(tag, n)]
    print(median_seconds(lambda: a @ b, 10), flush=True)
