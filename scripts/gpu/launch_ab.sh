#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried: the launch
# thread checked and timed in one call.
#   bash scripts/gpu/launch_ab.sh [seconds per test binary]
# 1. the launch micro-benchmark (scripts/gpu/micro/launch.cu: the driver's cost per launch);
# 2. PyTorch's bench once (saved, and replayed to every ingot bench below through --python);
# 3. the tiny op with the launch thread, without it, and with it again;
# 4. every staged test executable on the GPU (scripts/gpu/suite.sh), the launch thread on,
#    and the cuda tests again with it off;
# 5. the whole ingot bench.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=/tmp/ingot-kernels PYTHONUNBUFFERED=1
mkdir -p "$INGOT_KERNEL_CACHE"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
lscpu | grep -E "Model name" | head -1
MICRO=launch bash scripts/gpu/check.sh "" micro
timeout 240 python3 scripts/gpu/torch_bench.py > "$out/torch.json" 2> "$out/torch.err"
echo "== torch rc=$? tiny_op=$(python3 -c "import json;print(json.load(open('$out/torch.json'))['tiny_op'])" 2>&1)"
printf '#!/bin/sh\ncat %s\n' "$out/torch.json" > /tmp/py && chmod +x /tmp/py
bench() { timeout 120 .device/bin/ingot-gpu-bench --python /tmp/py "$@" 2>&1 | grep -v '^{'; }
for run in on off on; do
  echo "== tiny op, launch thread $run"
  if [ $run = on ]; then v=1; else v=0; fi
  INGOT_CUDA_LAUNCH_THREAD=$v bench --only tiny | grep -E "tiny|us" | grep -v "^copy"
done
INGOT_CUDA_LAUNCH_THREAD=1 OUT=$out bash scripts/gpu/suite.sh "${1:-90}" 8 > "$out/suite.txt" 2>&1
tail -24 "$out/suite.txt" | cut -c1-200
INGOT_CUDA_LAUNCH_THREAD=0 INGOT_TEST_DEVICE=cuda timeout 120 .device/tests/cuda-* > "$out/cuda-off.log" 2>&1
echo "== cuda tests, launch thread off: rc=$? $(grep -E '^test result' "$out/cuda-off.log" | tail -1)"
INGOT_CUDA_LAUNCH_THREAD=1 bench --json "$out/gpu-bench.json" > "$out/bench.txt"
echo "== bench rc=$?"; tail -34 "$out/bench.txt" | cut -c1-200
