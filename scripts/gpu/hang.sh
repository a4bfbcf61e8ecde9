#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .device/ unpacked:
#   bash scripts/gpu/hang.sh NAME TEST SECONDS
# Runs one test of test executable NAME alone with every GPU op printed as it starts
# (INGOT_CUDA_SLOW_MS=0) and every NVRTC compile printed; if it is still running after
# SECONDS, records the GPU's load, each thread's kernel stack and (where cuda-gdb is there)
# each thread's backtrace, then kills it. Log: $OUT/hang-NAME.txt; its end is printed.
set -uo pipefail
cd "$(dirname "$0")/../.."
name=$1; test=$2; secs=$3
log=${OUT:-/tmp}/hang-$name.txt
exe=$(ls .device/tests/"$name"-* | head -1)
INGOT_TEST_DEVICE=cuda INGOT_CUDA_SLOW_MS=0 INGOT_CUDA_LOG_COMPILES=1 \
  "$exe" "$test" --exact --nocapture --test-threads=1 >"$log" 2>&1 &
pid=$!
for _ in $(seq "$secs"); do kill -0 $pid 2>/dev/null || break; sleep 1; done
if kill -0 $pid 2>/dev/null; then
  {
    echo "== still running after ${secs}s"
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
    for t in /proc/$pid/task/*; do
      echo "-- task $(basename "$t") $(cat "$t"/comm) wchan=$(cat "$t"/wchan 2>/dev/null)"
      head -12 "$t"/stack 2>/dev/null
    done
    gdbx=$(command -v cuda-gdb || command -v gdb || ls /usr/local/cuda/bin/cuda-gdb 2>/dev/null)
    [ -n "$gdbx" ] && timeout 90 "$gdbx" -p $pid -batch -ex "set pagination off" \
      -ex "thread apply all bt 30" 2>&1 | grep -E '^Thread|^#' | head -150
  } >>"$log" 2>&1
  kill -9 $pid
fi
wait $pid 2>/dev/null
echo "== $name $test"; grep -v '^ingot-cuda: start' "$log" | tail -5; grep '^ingot-cuda: start' "$log" | tail -4
grep -A400 '== still running' "$log" | head -120
