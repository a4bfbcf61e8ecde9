#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (a pack holding at least ingot's cuda,
# compile and amp tests and ingot-nn's gpt2 and amp tests): the CUDA-graph tests, then the
# staged suite with every compiled function replayed as a CUDA graph (INGOT_CUDA_GRAPH=1),
# with the two exact-equality tests that differed in run G18 repeated three times each.
# If it all passes, graphs can become the default (CompileOptions::default in compile.rs).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=/tmp/ingot-kernels INGOT_TEST_DEVICE=cuda
mkdir -p "$INGOT_KERNEL_CACHE"
r() { "$@" 2>&1 | grep -E "^test result|panicked|left:|right:" | tr '\n' ' ' | cut -c1-300; echo; }
for t in .device/tests/cuda-* .device/tests/compile-*; do echo "== $t"; r "$t"; done
for t in .device/tests/amp-* .device/tests/gpt2-*; do
  for i in 1 2 3; do echo "== graphs on: $t ($i)"; INGOT_CUDA_GRAPH=1 r "$t"; done
done
# The gpt2 causal test alone, one thread, then beside the binary's other tests: whether its
# flakiness needs another thread's GPU work.
for t in .device/tests/gpt2-*; do
  for i in 1 2 3 4 5; do echo "== alone: $t ($i)"; r "$t" later_tokens --test-threads=1; done
  for i in 1 2 3 4 5; do echo "== with others: $t ($i)"; r "$t"; done
done
INGOT_CUDA_GRAPH=1 OUT=$out bash scripts/gpu/suite.sh "${1:-180}" 8 > "$out/suite-graphs.txt" 2>&1
tail -30 "$out/suite-graphs.txt" | cut -c1-200
