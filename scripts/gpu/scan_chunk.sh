#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (a pack holding ingot's reduce, sort and cuda
# tests, ingot-nn's gpt2 and amp tests and ingot-gpu-bench): the chunked one-launch scan
# (scan.cuh `chunk`, INGOT_CUDA_SCAN=chunk) against the suites, then the 16M f32 cumsum row with it and
# with the two-pass scan (INGOT_CUDA_SCAN=two), alternating, beside one PyTorch measurement,
# then the gpt2 / amp binaries several times each (the cuBLAS lock of commit 9636f3c).
#   bash scripts/gpu/scan_chunk.sh [reps]
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
mkdir -p "$INGOT_KERNEL_CACHE"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
r() { "$@" 2>&1 | grep -E "^test result|panicked|left:|right:|error" | tr '\n' ' ' | cut -c1-400; echo; }
for t in .device/tests/reduce-* .device/tests/sort-* .device/tests/cuda-*; do
  echo "== $t"; INGOT_TEST_DEVICE=cuda INGOT_CUDA_SCAN=chunk r "$t"
done
for t in .device/tests/reduce-*; do
  echo "== two-pass: $t"; INGOT_TEST_DEVICE=cuda INGOT_CUDA_SCAN=two r "$t" scan
done
python3 scripts/gpu/torch_bench.py > /tmp/torch-scan.json || echo '{}' > /tmp/torch-scan.json
printf '#!/bin/sh\ncat /tmp/torch-scan.json\n' > /tmp/torch-cat && chmod +x /tmp/torch-cat
for rep in $(seq "${1:-3}"); do
  for mode in chunk two; do
    echo "== $mode ($rep): $(INGOT_CUDA_SCAN=$mode .device/bin/ingot-gpu-bench --only cumsum --python /tmp/torch-cat 2>&1 | grep -i "cumsum" | head -1 | tr -s ' ')"
  done
done
for t in .device/tests/gpt2-* .device/tests/amp-*; do
  fail=0
  for _ in 1 2 3 4; do INGOT_TEST_DEVICE=cuda "$t" -q >/dev/null 2>&1 || fail=$((fail + 1)); done
  echo "== $(basename "$t"): $fail of 4 runs failed"
done
