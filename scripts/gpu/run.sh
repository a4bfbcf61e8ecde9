#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried (scripts/gpu/pack.sh):
#   bash scripts/gpu/run.sh [tests|crosscheck|bench|all] [test filter]
# tests:      every Rust test of the workspace with INGOT_TEST_DEVICE=cuda (all ops on the GPU)
# crosscheck: `ingot ops run --device cuda` against NumPy, the same cases as the CPU's
# bench:      ingot-gpu-bench beside PyTorch; JSON to $OUT/gpu-bench.json when OUT is set
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
what=${1:-all}
filter=${2:-}
rc=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
if [ "$what" = tests ] || [ "$what" = all ]; then
  INGOT_TEST_DEVICE=cuda .device/run-tests $filter 2>&1 | tee ${OUT:-/tmp}/gpu-tests.log \
    | grep -E '^== |^test result|FAILED|panicked' ; [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
if [ "$what" = crosscheck ] || [ "$what" = all ]; then
  python3 scripts/crosscheck/run.py --ingot .device/bin/ingot --device cuda || rc=1
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  .device/bin/ingot-gpu-bench --json ${OUT:-/tmp}/gpu-bench.json || rc=1
fi
exit $rc
