#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried: a CUPTI timeline (kernels and driver calls)
# of the GPT-2 training step, one mode at a time, through scripts/gpu/micro/cupti_trace.c
# preloaded (this machine has no Nsight Systems), summarized by scripts/gpu/trace_summary.py.
# The CSVs go to $OUT (xz-compressed).
#   bash scripts/gpu/trace.sh [eager] [compiled]
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
mkdir -p "$INGOT_KERNEL_CACHE"
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
cupti=""
for d in /usr/local/cuda/extras/CUPTI /usr/local/cuda; do
  [ -f "$d/include/cupti.h" ] && cupti=$d && break
done
[ -n "$cupti" ] || { echo "== no CUPTI headers"; exit 1; }
built=""
for v in 13 12 11 10 9; do
  if nvcc -O2 -shared -Xcompiler -fPIC -DKREC=CUpti_ActivityKernel$v -o /tmp/trace.so \
    scripts/gpu/micro/cupti_trace.c -I"$cupti/include" -L"$cupti/lib64" -lcupti 2> /tmp/trace-build.txt; then
    built=$v; break
  fi
done
[ -n "$built" ] || { echo "== tracer did not build"; head -20 /tmp/trace-build.txt; exit 1; }
echo "== tracer built with CUpti_ActivityKernel$built ($cupti)"
export LD_LIBRARY_PATH="$cupti/lib64:${LD_LIBRARY_PATH:-}"
[ $# -gt 0 ] || set -- eager compiled
for mode in "$@"; do
  CUPTI_TRACE_OUT=/tmp/trace-$mode.csv LD_PRELOAD=/tmp/trace.so timeout 240 \
    .device/bin/ingot-train-bench --steps 3 --warmup 1 --no-torch --modes "$mode" > "$out/trace-$mode.txt" 2>&1
  echo "== $mode rc=$? $(wc -l < /tmp/trace-$mode.csv) records"
  grep -v '^{' "$out/trace-$mode.txt" | tail -4 | cut -c1-200
  python3 scripts/gpu/trace_summary.py /tmp/trace-$mode.csv | head -60
  xz -T4 -c /tmp/trace-$mode.csv > "$out/trace-$mode.csv.xz"
done
