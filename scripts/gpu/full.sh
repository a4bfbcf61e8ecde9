#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried (scripts/gpu/pack.sh):
#   bash scripts/gpu/full.sh [seconds for the tests]
# One device call's worth of checking: the whole test suite with the GPU as the default
# device, the NumPy cross-check with --device cuda, then the benchmark beside PyTorch alone
# on the GPU. The suites share the machine: the two slowest binaries (reduce, export) run
# with their output shown (--nocapture: every compile and every op over 300 ms is printed),
# the others through suite.sh, and the cross-check beside them.
#
# Kernels compiled here are cached in /tmp/ingot-kernels; the cache comes back as
# $OUT/kcache.tgz and, put into .devpack/ as kcache.tgz, is unpacked first next time, so
# a second run compiles only what changed (first use of a kernel costs an NVRTC compile:
# about 0.1-0.5 s each on an idle core, several times that with every core busy).
set -uo pipefail
cd "$(dirname "$0")/../.."
limit=${1:-220}
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
export INGOT_KERNEL_CACHE=/tmp/ingot-kernels PYTHONUNBUFFERED=1
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
mkdir -p "$INGOT_KERNEL_CACHE"
[ -f .devpack/kcache.tgz ] && tar -xzf .devpack/kcache.tgz -C /tmp
echo "kernel cache: $(ls "$INGOT_KERNEL_CACHE" | wc -l) kernels"
mkdir -p .device/slow
mv .device/tests/reduce-* .device/tests/export-* .device/slow/ 2>/dev/null
for t in .device/slow/*; do
  name=$(basename "$t" | sed 's/-[0-9a-f]*$//')
  (INGOT_TEST_DEVICE=cuda INGOT_CUDA_LOG_COMPILES=1 INGOT_CUDA_SLOW_MS=300 \
    timeout "$limit" "$t" --nocapture >"$out/$name.txt" 2>&1
   echo "$name rc=$?" >>"$out/$name.txt") &
done
(timeout "$limit" python3 scripts/crosscheck/run.py --ingot .device/bin/ingot --device cuda \
  >"$out/cross.txt" 2>&1; echo "crosscheck rc=$?" >>"$out/cross.txt") &
OUT=$out bash scripts/gpu/suite.sh "$limit" 8 >"$out/suite.txt" 2>&1
wait
timeout 200 .device/bin/ingot-gpu-bench --json "$out/gpu-bench.json" >"$out/bench.txt" 2>&1
echo "bench rc=$?" >>"$out/bench.txt"
tar -czf "$out/kcache.tgz" -C /tmp ingot-kernels
echo "== bench"; grep -v '^ingot-cuda: compiled\|^{' "$out/bench.txt" | tail -32
echo "== cross-check"; tail -4 "$out/cross.txt"
for t in reduce export; do
  echo "== $t"; grep -E '^test |test result|rc=|panicked' "$out/$t.txt" | grep -v ' ok$' | tail -12
done
echo "== suite"; tail -45 "$out/suite.txt"
