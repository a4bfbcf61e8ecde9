#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (a pack holding ingot's reduce, sort and
# cuda tests and ingot-gpu-bench): the one-pass look-back scan (scan.cuh `lb`, the default)
# against those suites, the reduce suite again with the two-pass scan (INGOT_CUDA_SCAN=two),
# and with 4 positions a thread (many tiles: look-backs across windows), then the 16M f32
# cumsum row under each, alternating, with the look-back's tile at 32, 16 and 8 positions a
# thread (INGOT_CUDA_SCAN_ITEMS; CONFIGS="MODE:ITEMS ..." to choose), beside one PyTorch
# measurement of the run.
#   bash scripts/gpu/scan_lb.sh [reps]
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
mkdir -p "$INGOT_KERNEL_CACHE"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
r() { timeout 240 "$@" 2>&1 | grep -E "^test result|panicked|left:|right:|error" | tr '\n' ' ' | cut -c1-600; echo; }
for t in .device/tests/reduce-* .device/tests/sort-* .device/tests/cuda-*; do
  echo "== $t"; INGOT_TEST_DEVICE=cuda r "$t"
done
for t in .device/tests/reduce-*; do
  echo "== two-pass: $t"; INGOT_TEST_DEVICE=cuda INGOT_CUDA_SCAN=two r "$t" scan
  # Small tiles: many more tiles a line, so the look-back crosses windows.
  echo "== look-back, 4 a thread: $t"; INGOT_TEST_DEVICE=cuda INGOT_CUDA_SCAN_ITEMS=4 r "$t" scan
done
# PyTorch's cumsum row alone, timed as scripts/gpu/torch_bench.py times it.
python3 - > /tmp/torch-scan.json <<'PY' || echo '{}' > /tmp/torch-scan.json
import json, sys, torch
sys.path.insert(0, "scripts/gpu")
from torch_timing import median_seconds
v = torch.rand(1 << 24, device="cuda")
print(json.dumps({"cumsum": median_seconds(lambda: torch.cumsum(v, dim=0))}))
PY
printf '#!/bin/sh\ncat /tmp/torch-scan.json\n' > /tmp/torch-cat && chmod +x /tmp/torch-cat
for rep in $(seq "${1:-2}"); do
  for cfg in ${CONFIGS:-lb:32 two:8 lb:16 lb:8}; do
    echo "== $cfg ($rep): $(INGOT_CUDA_SCAN=${cfg%%:*} INGOT_CUDA_SCAN_ITEMS=${cfg##*:} .device/bin/ingot-gpu-bench --only cumsum --python /tmp/torch-cat 2>&1 | grep -i "cumsum" | head -1 | tr -s ' ')"
  done
done
