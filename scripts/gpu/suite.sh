#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried (scripts/gpu/pack.sh):
#   bash scripts/gpu/suite.sh [seconds per binary] [parallel jobs]
# Every staged test executable with INGOT_TEST_DEVICE=cuda, several at once (one GPU is
# shared between processes), each under a time limit. A binary still running after 80% of
# its limit has the stacks of its threads written to its log (gdb if present, else the
# kernel's view from /proc), so a hang is seen rather than only timed out.
# Logs go to $OUT/suite/NAME.log; the summary lists each binary's result line and time.
# With OUT set (the device tool), the logs come back as one $OUT/suite-logs.tar.gz, since
# the tool returns at most 8 files.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
export INGOT_TEST_DEVICE=cuda
limit=${1:-400}
jobs=${2:-6}
logs=${OUT:-/tmp}/suite
mkdir -p "$logs"

stacks() { # pid
  if command -v gdb >/dev/null; then
    gdb -p "$1" -batch -ex "set pagination off" -ex "thread apply all bt 12" 2>/dev/null \
      | grep -E '^Thread|^#' | head -400
  else
    for t in /proc/"$1"/task/*; do
      echo "task $(basename "$t"): $(cat "$t"/comm) wchan=$(cat "$t"/wchan 2>/dev/null) $(cut -d' ' -f3 "$t"/stat)"
    done
  fi
}

one() { # test executable
  local exe=$1 name log start pid waited
  name=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
  log="$logs/$(basename "$exe").log"  # the hash keeps two crates' same-named tests apart
  start=$SECONDS
  "$exe" >"$log" 2>&1 &
  pid=$!
  waited=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if [ "$waited" = $((limit * 8 / 10)) ]; then
      echo "== still running after ${waited}s: stacks" >>"$log"
      stacks "$pid" >>"$log"
    fi
    if [ "$waited" -ge "$limit" ]; then
      kill -9 "$pid" 2>/dev/null
      echo "== killed after ${limit}s" >>"$log"
    fi
  done
  wait "$pid"
  local rc=$?
  printf '%-14s rc=%-3s %5ss  %s\n' "$name" "$rc" "$((SECONDS - start))" \
    "$(grep -E '^test result' "$log" | tail -1)"
}
export -f one stacks
export limit logs

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
command -v gdb >/dev/null && echo "gdb: yes" || echo "gdb: no (stacks from /proc)"
ls .device/tests/* | xargs -P "$jobs" -I{} bash -c 'one {}' | sort | tee "$logs/summary.txt"
grep -l -E 'FAILED|panicked|killed after' "$logs"/*.log 2>/dev/null | while read -r f; do
  echo "---- $(basename "$f")"
  grep -E '^test .* FAILED|panicked at|^failures:|killed after|still running' "$f" | head -20
done
ok=0; grep -q -v 'rc=0 ' "$logs/summary.txt" && ok=1
if [ -n "${OUT:-}" ]; then
  tar -czf "$OUT/suite-logs.tar.gz" -C "$OUT" suite && rm -rf "$OUT/suite"
fi
exit $ok
