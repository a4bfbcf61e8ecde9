#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (a pack holding ingot-gpu-bench): the 16M
# f32 cumsum of ingot-gpu-bench with the two-pass scan (INGOT_CUDA_SCAN=two) under several
# tilings (scan.rs: INGOT_CUDA_SCAN_ITEMS, INGOT_CUDA_SCAN_RUNS), each beside one PyTorch
# measurement of the run. scripts/gpu/scan_lb.sh compares it with the default look-back.
#   bash scripts/gpu/scan_tune.sh ["ITEMS:RUNS ..."]
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
python3 scripts/gpu/torch_bench.py > /tmp/torch-scan.json || echo '{}' > /tmp/torch-scan.json
printf '#!/bin/sh\ncat /tmp/torch-scan.json\n' > /tmp/torch-cat && chmod +x /tmp/torch-cat
for cfg in ${1:-"default 8:2048 8:8192 16:4096"}; do
  if [ "$cfg" = default ]; then
    env=(INGOT_CUDA_SCAN=two)
  else
    env=(INGOT_CUDA_SCAN=two INGOT_CUDA_SCAN_ITEMS="${cfg%%:*}" INGOT_CUDA_SCAN_RUNS="${cfg##*:}")
  fi
  for rep in 1 2; do
    echo "== $cfg ($rep): $(env "${env[@]}" .device/bin/ingot-gpu-bench --only cumsum --python /tmp/torch-cat 2>&1 | grep -i "cumsum" | head -1 | tr -s ' ')"
  done
done
