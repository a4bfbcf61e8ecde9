#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried: ingot-gpu-bench's matmul rows (each in
# turns with PyTorch) under each INGOT_CUDA_GEMM mode, alternating, then once more with
# INGOT_CUDA_STATS=1 to print which of cuBLASLt's candidates the tuned products kept and
# each one's time; then (unless NO_TESTS=1) the staged test executables one at a time.
#   bash scripts/gpu/gemm_lt.sh [ROUNDS] [MODES]   (default 2 rounds of "tune lt ex")
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/prelude.sh
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
for r in $(seq "${1:-2}"); do
  for mode in ${2:-tune lt ex}; do
    INGOT_CUDA_GEMM=$mode timeout 240 .device/bin/ingot-gpu-bench --only matmul > "$out/mm-$mode-$r.txt" 2>&1
    echo "== $mode round $r rc=$?"; grep -E "^matmul" "$out/mm-$mode-$r.txt" | cut -c1-160
  done
done
INGOT_CUDA_GEMM=tune INGOT_CUDA_STATS=1 timeout 240 .device/bin/ingot-gpu-bench --only matmul --python false > "$out/mm-stats.txt" 2>&1
echo "== stats rc=$?"; grep -E "cuBLASLt candidate|to cublasGemmEx" "$out/mm-stats.txt" | head -12 | cut -c1-300
[ -n "${NO_TESTS:-}" ] && exit 0
for t in .device/tests/*; do
  n=$(basename "$t")
  INGOT_TEST_DEVICE=cuda timeout 300 "$t" > "$out/t-$n.log" 2>&1
  echo "== $n rc=$? $(grep -E '^test result' "$out/t-$n.log" | tail -1)"
  grep -E "^test .*FAILED|panicked at" "$out/t-$n.log" | head -6 | cut -c1-300
  grep -A12 "^---- " "$out/t-$n.log" | head -30 | cut -c1-300
done
