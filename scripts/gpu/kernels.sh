#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried: every kernel's own GPU time (Nsight
# Compute, one metric, kernels serialized) for `bench-lm` on a few layers of a config,
# as CSV in $OUT/ncu.csv; the decode steps are the last kernels. Summarize it here with
# `python3 scripts/gpu/ncu_summary.py ncu.csv`.
#   bash scripts/gpu/kernels.sh [CONFIG] [LAYERS]
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
timeout 300 ncu --metrics gpu__time_duration.sum --csv --print-units base --log-file "$out/ncu.csv" \
  .device/bin/ingot bench-lm --config "${1:-configs/lm/llama-3-8b.json}" --dtype bf16 \
  --layers "${2:-2}" --prompt-tokens 16 --new-tokens 4 > "$out/ncu-app.txt" 2>&1
echo "ncu rc=$? ($(wc -l < "$out/ncu.csv") lines)"; tail -3 "$out/ncu-app.txt"
