#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (ingot-gpu-bench, ingot-train-bench and the
# cuda and fast_linear test executables at least): what decides whether cuBLASLt becomes
# the default matmul path. In order of importance, so a call cut short keeps the first:
#   1. the bench's matmul rows under INGOT_CUDA_GEMM=tune and =ex beside PyTorch, and the
#      tuned choices (scripts/gpu/gemm_lt.sh, one round);
#   2. the cuda and fast_linear tests with INGOT_CUDA_GEMM=tune;
#   3. the fast::linear rows (bias, bias + tanh GELU) under tune beside F.linear;
#   4. the GPT-2 step under tune (with PyTorch) and ex (ingot alone);
#   5. decode attention at other split-KV block counts (INGOT_CUDA_DEC_BLOCKS).
#   bash scripts/gpu/lt_check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/prelude.sh
NO_TESTS=1 bash scripts/gpu/gemm_lt.sh 1 "tune ex"
for t in cuda fast_linear; do
  INGOT_CUDA_GEMM=tune INGOT_TEST_DEVICE=cuda timeout 200 .device/tests/$t-* > /tmp/t-$t.log 2>&1
  echo "== $t (tune) rc=$? $(grep -E '^test result' /tmp/t-$t.log | tail -1)"
  grep -E "FAILED|panicked" -A6 /tmp/t-$t.log | head -14 | cut -c1-300
done
INGOT_CUDA_GEMM=tune timeout 150 .device/bin/ingot-gpu-bench --only linear > /tmp/lin.txt 2>&1
echo "== linear (tune) rc=$?"; grep -v '^{' /tmp/lin.txt | tail -6 | cut -c1-200
for m in tune ex; do
  a=""; [ "$m" = ex ] && a=--no-torch
  INGOT_CUDA_GEMM=$m timeout 200 .device/bin/ingot-train-bench --steps 10 --warmup 2 $a \
    --json "$out/train-$m.json" > /tmp/train-$m.txt 2>&1
  echo "== GPT-2 step ($m) rc=$?"; grep -v '^{' /tmp/train-$m.txt | tail -7 | cut -c1-200
done
for b in 264 396 528; do
  INGOT_CUDA_DEC_BLOCKS=$b timeout 60 .device/bin/ingot-gpu-bench --only "attention decode" \
    --python false > /tmp/dec.txt 2>&1
  echo "== decode blocks $b rc=$?"; grep -E "decode" /tmp/dec.txt | grep -v '^{' | tail -2 | cut -c1-200
done
