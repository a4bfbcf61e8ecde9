#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried: the GPT-2
# small training step (issue 5's benchmark) and the checks behind its kernels. Logs go to
# $OUT.
#   bash scripts/gpu/gpt2_step.sh [tests] [bench] [profile]   (default: all three)
# tests:   the CUDA backend's own checks (ordered scatter-adds among them), the index and
#          attention suites on the GPU
# bench:   ingot eager and compiled (TrainStep) beside PyTorch eager and torch.compile
# profile: where each ingot mode's GPU time goes (INGOT_CUDA_PROFILE=1, 2 steps)
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels} PYTHONUNBUFFERED=1
mkdir -p "$INGOT_KERNEL_CACHE"
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
[ $# -gt 0 ] || set -- tests bench profile
for what in "$@"; do
  case $what in
  tests)
    for t in cuda index attention; do
      INGOT_TEST_DEVICE=cuda timeout 240 .device/tests/$t-* > "$out/test-$t.log" 2>&1
      echo "== $t rc=$? $(grep -E '^test result' "$out/test-$t.log" | tail -1)"
      grep -E "^test .*FAILED|panicked at" "$out/test-$t.log" | head -6 | cut -c1-300
      grep -A8 "^---- " "$out/test-$t.log" | head -24 | cut -c1-300
    done
    ;;
  bench)
    timeout 420 .device/bin/ingot-train-bench --steps 10 --warmup 2 \
      --json "$out/train.json" > "$out/train.txt" 2> "$out/train.err"
    echo "== GPT-2 train rc=$?"
    grep -v '^{' "$out/train.txt" | tail -9 | cut -c1-200
    grep -E "fallbacks|Error|error" "$out/train.err" | head -5 | cut -c1-400
    ;;
  profile)
    for mode in eager compiled; do
      INGOT_CUDA_PROFILE=1 INGOT_CUDA_STATS=1 timeout 200 .device/bin/ingot-train-bench \
        --steps 2 --warmup 1 --no-torch --modes $mode > "$out/profile-$mode.txt" 2>&1
      echo "== profile $mode rc=$? ($out/profile-$mode.txt)"
    done
    ;;
  esac
done
