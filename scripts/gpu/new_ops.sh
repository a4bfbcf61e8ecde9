#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (scripts/gpu/pack.sh or the build in the
# developers' notes): the suites behind the GELU primitives and the fused softmax cross
# entropy on the GPU (each op against the CPU or an f64 reference), then the training
# models that use them.
#   bash scripts/gpu/new_ops.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
mkdir -p "$INGOT_KERNEL_CACHE"
for t in fast_cross_entropy losses gpt2 amp elementwise; do
  for exe in .device/tests/$t-*; do
    [ -x "$exe" ] || continue
    log=$(INGOT_TEST_DEVICE=cuda timeout 240 "$exe" 2>&1)
    echo "== $(basename "$exe") rc=$? $(grep -E '^test result' <<< "$log" | tail -1)"
    grep -E "^test .*FAILED|panicked at" <<< "$log" | head -6 | cut -c1-300
    grep -A8 "^---- " <<< "$log" | head -24 | cut -c1-300
  done
done
