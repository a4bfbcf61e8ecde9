#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (device.tar.xz of a few test executables
# and ingot-gpu-bench, torch.json from an earlier PyTorch bench of the same card type):
# the staged tests through suite.sh with the launch thread on, then the tiny-op rows twice.
set -uo pipefail
export INGOT_CUDA_LAUNCH_THREAD=1
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=/tmp/ingot-kernels; mkdir -p "$INGOT_KERNEL_CACHE"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
OUT=$out bash scripts/gpu/suite.sh "${1:-90}" 8 > "$out/suite.txt" 2>&1
tail -24 "$out/suite.txt" | cut -c1-220
printf '#!/bin/sh\ncat %s\n' "$PWD/.devpack/torch.json" > /tmp/py && chmod +x /tmp/py
for run in 1 2; do
  timeout 100 .device/bin/ingot-gpu-bench --python /tmp/py --only tiny 2>&1 | grep -v '^{' | grep -E " us "
done
