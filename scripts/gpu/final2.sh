#!/usr/bin/env bash
# One-off last GPU call: the suites the last fixes touch, the cross-check, the bench, and
# the bench again with INGOT_CUDA_STATS=1 to see why convolutions went to the CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=/tmp/ingot-kernels PYTHONUNBUFFERED=1
mkdir -p $INGOT_KERNEL_CACHE
for t in index vmap conv reduce cuda sort; do
  INGOT_TEST_DEVICE=cuda timeout 120 .device/tests/$t-* > $OUT/t-$t.log 2>&1
  echo "== $t rc=$? $(grep -E '^test result' $OUT/t-$t.log | tail -1)"
  grep -E "^test .*FAILED|panicked at" $OUT/t-$t.log | head -6 | cut -c1-300
done
timeout 170 python3 scripts/crosscheck/run.py --ingot .device/bin/ingot --device cuda > $OUT/cross.txt 2>&1
echo "== cross rc=$?"; grep -E "crosscheck:|FAIL" $OUT/cross.txt | tail -8 | cut -c1-300
timeout 150 .device/bin/ingot-gpu-bench --json $OUT/gpu-bench.json > $OUT/bench.txt 2>&1
echo "== bench rc=$?"; grep -v '^{' $OUT/bench.txt | tail -30 | cut -c1-200
INGOT_CUDA_STATS=1 timeout 150 .device/bin/ingot-gpu-bench > $OUT/bench-stats.txt 2>&1
echo "== conv fallbacks"; grep "conv to the CPU" $OUT/bench-stats.txt | cut -c1-260 | sort | uniq -c | sort -rn | head -8
