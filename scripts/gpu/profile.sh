#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried (scripts/gpu/pack.sh):
#   bash scripts/gpu/profile.sh SECONDS NAME [NAME...]
# Each named test executable (reduce, export, ...) alone on the GPU, one test at a time, its
# output not captured, with INGOT_CUDA_STATS=1: every finished test line is stamped with the
# seconds since the start, so a slow test shows, and the backend's host-time table (by op
# and by driver call) is printed every 10 s. Logs go to $OUT/profile-NAME.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
limit=$1; shift
out=${OUT:-/tmp}
for name in "$@"; do
  exe=$(ls .device/tests/"$name"-* | head -1)
  INGOT_TEST_DEVICE=cuda INGOT_CUDA_STATS=1 timeout "$limit" "$exe" --test-threads=1 --nocapture 2>&1 \
    | awk -v t0="$(date +%s.%N)" '{ "date +%s.%N" | getline now; close("date +%s.%N"); printf "%7.2f %s\n", now - t0, $0; fflush() }' \
    > "$out/profile-$name.txt"
  echo "== $name"; grep -E '^ *[0-9.]+ test |test result' "$out/profile-$name.txt" | tail -30
  echo "-- last stats"; tac "$out/profile-$name.txt" | awk '/ingot-cuda stats/{print; exit} {print}' | tac | head -16
done
