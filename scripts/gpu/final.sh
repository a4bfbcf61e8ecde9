#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried:
#   bash scripts/gpu/final.sh tests [seconds per binary] [parallel]   # suite + cross-check
#   bash scripts/gpu/final.sh bench                                   # ingot-gpu-bench alone
# The two halves fit the device tool's 10-minute limit per call; call them back to back
# so the second finds the machine (and its kernel cache) warm.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=/tmp/ingot-kernels PYTHONUNBUFFERED=1
mkdir -p "$INGOT_KERNEL_CACHE"
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
case "${1:-tests}" in
tests)
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  OUT=$out bash scripts/gpu/suite.sh "${2:-120}" "${3:-4}" > "$out/suite.txt" 2>&1
  tail -40 "$out/suite.txt" | cut -c1-240
  timeout 170 python3 scripts/crosscheck/run.py --ingot .device/bin/ingot --device cuda > "$out/cross.txt" 2>&1
  echo "crosscheck rc=$?"; grep -E "crosscheck:|FAIL" "$out/cross.txt" | tail -12 | cut -c1-240
  ;;
bench)
  timeout 300 .device/bin/ingot-gpu-bench --json "$out/gpu-bench.json" > "$out/bench.txt" 2>&1
  echo "bench rc=$?"; grep -v '^{' "$out/bench.txt" | tail -40 | cut -c1-220
  ;;
esac
