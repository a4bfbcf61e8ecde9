#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (test executables fast_linear, cuda,
# linalg, grad, vmap, attention, compile; ingot-gpu-bench; ingot-train-bench): checks
# cuBLASLt as the default matmul path, most important first, so a call cut short keeps
# the first results:
#   1. the fast_linear and cuda tests on the GPU;
#   2. the fast::linear rows beside F.linear, with INGOT_CUDA_STATS=1 (refusals, fallbacks);
#   3. the linalg, grad, vmap, attention and compile suites on the GPU, five at once;
#   4. the bench's matmul rows beside PyTorch, tuned cuBLASLt and cuBLAS's GEMM alternating;
#   5. the GPT-2 training step beside PyTorch (eager and torch.compile), then with
#      INGOT_CUDA_GEMM=ex (ingot alone).
#   bash scripts/gpu/lt_default.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/prelude.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
summary() {
  echo "== $1 rc=$2 $(grep -E '^test result' "$3" | tail -1)"
  grep -E "^test .*FAILED|panicked at" -A3 "$3" | head -12 | cut -c1-300
}
for t in fast_linear cuda; do
  INGOT_TEST_DEVICE=cuda timeout 120 .device/tests/$t-* > /tmp/t-$t.log 2>&1
  summary "$t" $? /tmp/t-$t.log
done
INGOT_CUDA_STATS=1 timeout 120 .device/bin/ingot-gpu-bench --only linear > "$out/linear.txt" 2>&1
echo "== linear rc=$?"; grep -E "^linear|CPU|cublasGemmEx|candidate" "$out/linear.txt" | head -8 | cut -c1-240
pids=()
for t in linalg grad vmap attention compile; do
  (INGOT_TEST_DEVICE=cuda timeout 150 .device/tests/$t-* > /tmp/t-$t.log 2>&1; echo $? > /tmp/rc-$t) &
  pids+=($!)
done
wait "${pids[@]}"
for t in linalg grad vmap attention compile; do summary "$t" "$(cat /tmp/rc-$t)" /tmp/t-$t.log; done
# PyTorch's own times move by several percent from one process to the next, so the modes
# alternate, twice each.
for r in 1 2; do
  for mode in tune ex; do
    INGOT_CUDA_GEMM=$mode timeout 120 .device/bin/ingot-gpu-bench --only matmul \
      --json "$out/matmul-$mode-$r.json" > /tmp/matmul.txt 2>&1
    echo "== matmul $mode round $r rc=$?"; grep -E "^matmul" /tmp/matmul.txt | cut -c1-160
  done
done
timeout 200 .device/bin/ingot-train-bench --steps 10 --warmup 2 --json "$out/train.json" \
  > "$out/train.txt" 2>&1
echo "== GPT-2 step rc=$?"; grep -v '^{' "$out/train.txt" | grep -v Warning | tail -7 | cut -c1-200
INGOT_CUDA_GEMM=ex timeout 150 .device/bin/ingot-train-bench --steps 10 --warmup 2 --no-torch \
  > /tmp/train-ex.txt 2>&1
echo "== GPT-2 step (ex) rc=$?"; grep -v '^{' /tmp/train-ex.txt | tail -3 | cut -c1-200
