#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried: a few test
# executables one at a time on the GPU (so no process waits on another's time slices), then
# optionally the micro-benchmarks under scripts/gpu/micro (built with nvcc there) and the
# GPU bench. Logs and the bench's JSON go to $OUT. MICRO="gemv" runs only those micros.
#   bash scripts/gpu/check.sh "conv reduce cuda" [suite[:SECS:JOBS]] [micro] [bench] [stats]
#       [cross] [trace:WORD] [nsys:WORD] [ncu:WORD:REGEX] [with:VAR=VALUE:TEST:WORD]
# The first argument may be "" (no single executables). suite: every staged test executable
# through scripts/gpu/suite.sh, JOBS at a time, SECS each at most (default 120 and 4).
# stats: the bench again with INGOT_CUDA_STATS=1 (convolution plans, fallbacks); cross: the
# NumPy cross-check with --device cuda; trace:WORD: the bench's WORD rows with every GPU op
# synchronized and timed (INGOT_CUDA_SLOW_MS=0); nsys:WORD: those rows under Nsight
# Systems, its kernel summary (when nsys is installed); ncu:WORD:REGEX: the first 24
# kernels whose names match REGEX in those rows, each timed by Nsight Compute;
# with:VAR=VALUE:TEST:WORD: test executable TEST and the bench's WORD rows with VAR=VALUE
# in the environment (for example with:INGOT_CUDA_SCAN=two:reduce:cumsum).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/prelude.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
shift_tests=$1; shift
for t in $shift_tests; do
  INGOT_TEST_DEVICE=cuda timeout 240 .device/tests/$t-* > "$out/t-$t.log" 2>&1
  echo "== $t rc=$? $(grep -E '^test result' "$out/t-$t.log" | tail -1)"
  grep -E "^test .*FAILED|panicked at" "$out/t-$t.log" | head -6 | cut -c1-300
  grep -A12 "^---- " "$out/t-$t.log" | head -30 | cut -c1-300
done
for what in "$@"; do
  case $what in
  suite*)
    IFS=: read -r _ secs jobs <<< "$what"
    OUT=$out bash scripts/gpu/suite.sh "${secs:-120}" "${jobs:-4}" > "$out/suite.txt" 2>&1
    tail -40 "$out/suite.txt" | cut -c1-240
    ;;
  micro)
    # A micro-benchmark names the libraries it links on a "// LINK:" line.
    for f in scripts/gpu/micro/*.cu; do
      case " ${MICRO:-} " in "  ") ;; *" $(basename "$f" .cu) "*) ;; *) continue ;; esac
      libs=$(sed -n 's|^// LINK: ||p' "$f")
      nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/micro "$f" $libs && echo "== $f" && timeout 180 /tmp/micro > "$out/micro-$(basename "$f" .cu).txt"
      cat "$out/micro-$(basename "$f" .cu).txt" | cut -c1-200
    done
    ;;
  bench)
    timeout 300 .device/bin/ingot-gpu-bench --json "$out/gpu-bench.json" > "$out/bench.txt" 2>&1
    echo "== bench rc=$?"; grep -v '^{' "$out/bench.txt" | tail -32 | cut -c1-200
    ;;
  cross)
    timeout 240 python3 scripts/crosscheck/run.py --ingot .device/bin/ingot --device cuda > "$out/cross.txt" 2>&1
    echo "== cross rc=$?"; grep -E "crosscheck:|FAIL" "$out/cross.txt" | tail -12 | cut -c1-300
    ;;
  trace:*)
    INGOT_CUDA_SLOW_MS=0 timeout 200 .device/bin/ingot-gpu-bench --only "${what#trace:}" > "$out/trace.txt" 2>&1
    echo "== trace ${what#trace:} rc=$?"; grep -v '^{' "$out/trace.txt" | tail -45 | cut -c1-220
    ;;
  nsys:*)
    if command -v nsys > /dev/null; then
      timeout 300 nsys profile -o /tmp/prof --force-overwrite true .device/bin/ingot-gpu-bench --only "${what#nsys:}" > /dev/null 2>&1
      nsys stats -r cuda_gpu_kern_sum /tmp/prof.nsys-rep 2>/dev/null | head -40 | cut -c1-250
    else
      echo "== no nsys here"; ls /usr/local/cuda/bin 2>/dev/null | tr '\n' ' '
    fi
    ;;
  ncu:*)
    IFS=: read -r _ word regex <<< "$what"
    timeout 300 /usr/local/cuda/bin/ncu --clock-control none --kernel-name "regex:$regex" -c 24 \
      --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,launch__grid_size \
      .device/bin/ingot-gpu-bench --only "$word" > "$out/ncu.txt" 2>&1
    echo "== ncu $word rc=$?"
    grep -E "^  [a-z_0-9]+.*\(|gpu__time_duration|dram__throughput|sm__throughput|registers|warps_active|grid_size" "$out/ncu.txt" | head -150 | cut -c1-160
    ;;
  with:*)
    IFS=: read -r _ setting test word <<< "$what"
    env "$setting" INGOT_TEST_DEVICE=cuda timeout 240 .device/tests/$test-* > "$out/with-$test.log" 2>&1
    echo "== $setting $test rc=$? $(grep -E '^test result' "$out/with-$test.log" | tail -1)"
    grep -E "^test .*FAILED|panicked at" "$out/with-$test.log" | head -6 | cut -c1-300
    env "$setting" timeout 200 .device/bin/ingot-gpu-bench --only "$word" > "$out/with-bench.txt" 2>&1
    echo "== $setting bench $word rc=$?"; grep -v '^{' "$out/with-bench.txt" | tail -12 | cut -c1-200
    ;;
  stats)
    INGOT_CUDA_STATS=1 timeout 300 .device/bin/ingot-gpu-bench > "$out/bench-stats.txt" 2>&1
    echo "== bench with stats rc=$?"
    grep -E "ingot-cuda: conv" "$out/bench-stats.txt" | cut -c1-240 | sort | uniq -c | sort -rn | head -60
    ;;
  esac
done
