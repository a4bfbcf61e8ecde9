#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (ingot-gpu-bench): which cuBLAS kernel
# ingot's and PyTorch's 8192 x 8192 bf16 products run, and for how long, under Nsight
# Compute (kernels serialized, clocks left alone), to tell a kernel choice from clock noise.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
ncu=/usr/local/cuda/bin/ncu
m="--clock-control none --metrics gpu__time_duration.sum,launch__grid_size,launch__registers_per_thread"
echo "== ingot"
# The bench runs each of its four products 153 times (three turns of 51: 4096 bf16, 4096
# f16, 8192 bf16, 8192 f16): 612 kernels reach the last; one line a kernel name with its
# count and mean time.
timeout 300 $ncu $m --kernel-name regex:'nvjet|gemm|sm90' -c 612 .device/bin/ingot-gpu-bench --only matmul --python false 2>&1 \
  | grep -E "^  [a-zA-Z_0-9]+.*\(|gpu__time_duration" | paste - - | tr -s ' ' \
  | awk '{k=$1" ("$(NF-1)")"; n[k]++; t[k]+=$(NF)} END {for (k in n) printf "%s x%d mean %.2f\n", k, n[k], t[k]/n[k]}'
echo "== torch"
timeout 200 $ncu $m --kernel-name regex:'nvjet|gemm|sm90' -c 12 python3 -c "
import torch
for dt in (torch.bfloat16, torch.float16):
    a = torch.randn(8192, 8192, device='cuda').to(dt); b = torch.randn(8192, 8192, device='cuda').to(dt)
    for _ in range(3): a @ b
torch.cuda.synchronize()" 2>&1 | grep -E "^  [a-zA-Z_0-9]+.*\(|gpu__time_duration|grid_size" | paste - - - | tr -s ' ' | cut -c1-220
