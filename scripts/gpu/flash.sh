#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried: the flash
# attention kernel (INGOT_CUDA_FLASH=1) through the attention suite, the attention rows of
# ingot-gpu-bench with and without it (PyTorch's SDPA in the same run), the 8B geometry's
# time to first token at 2,048 tokens and GPT-2 small's training step with and without it.
# Logs go to $OUT.
#   bash scripts/gpu/flash.sh [tests] [bench] [lm] [train]   (default: all four)
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels} PYTHONUNBUFFERED=1
mkdir -p "$INGOT_KERNEL_CACHE"
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
[ $# -gt 0 ] || set -- tests bench lm train
for what in "$@"; do
  case $what in
  tests)
    for flash in 1 0; do
      INGOT_CUDA_FLASH=$flash INGOT_TEST_DEVICE=cuda timeout 240 .device/tests/attention-* \
        > "$out/attention-flash$flash.log" 2>&1
      echo "== attention INGOT_CUDA_FLASH=$flash rc=$? $(grep -E '^test result' "$out/attention-flash$flash.log" | tail -1)"
      grep -E "^test .*FAILED|panicked at" "$out/attention-flash$flash.log" | head -6 | cut -c1-300
      grep -A8 "^---- " "$out/attention-flash$flash.log" | head -24 | cut -c1-300
    done
    ;;
  bench)
    for flash in 1 0; do
      INGOT_CUDA_FLASH=$flash timeout 200 .device/bin/ingot-gpu-bench --only attention \
        --json "$out/bench-attention-flash$flash.json" > "$out/bench-attention-flash$flash.txt" 2>&1
      echo "== bench attention INGOT_CUDA_FLASH=$flash rc=$?"
      grep -v '^{' "$out/bench-attention-flash$flash.txt" | tail -5 | cut -c1-200
    done
    ;;
  lm)
    for flash in 1 0; do
      # transformers beside the first run only (its figure does not depend on ingot's flag).
      peer=(); [ "$flash" = 1 ] && peer=(--torch python3)
      INGOT_CUDA_FLASH=$flash timeout 240 .device/bin/ingot bench-lm --config configs/lm/llama-3-8b.json \
        --dtype bf16 --prompt-tokens 2048 --new-tokens 16 "${peer[@]}" > "$out/lm-2048-flash$flash.txt" 2>&1
      echo "== 8B 2048-token prompt INGOT_CUDA_FLASH=$flash rc=$?"
      grep -v '^{' "$out/lm-2048-flash$flash.txt" | tail -6 | cut -c1-200
    done
    ;;
  train)
    # GPT-2 small training steps (head dim 64, causal): flash forward and backward against
    # the decomposition, PyTorch eager and torch.compile beside the first; then where the
    # flash step's GPU time goes (INGOT_CUDA_PROFILE=1, 2 steps).
    for flash in 1 0; do
      peer=(); [ "$flash" = 0 ] && peer=(--no-torch)
      INGOT_CUDA_FLASH=$flash timeout 300 .device/bin/ingot-train-bench --steps 10 --warmup 2 \
        "${peer[@]}" --json "$out/train-flash$flash.json" > "$out/train-flash$flash.txt" 2>&1
      echo "== GPT-2 train INGOT_CUDA_FLASH=$flash rc=$?"
      grep -v '^{' "$out/train-flash$flash.txt" | grep -v "^ingot-cuda\|^  " | tail -7 | cut -c1-200
    done
    INGOT_CUDA_FLASH=1 INGOT_CUDA_PROFILE=1 INGOT_CUDA_STATS=1 timeout 200 .device/bin/ingot-train-bench \
      --steps 2 --warmup 1 --no-torch > "$out/train-profile.txt" 2>&1
    echo "== train profile rc=$? ($out/train-profile.txt)"
    ;;
  esac
done
