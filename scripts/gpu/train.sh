#!/usr/bin/env bash
# Trains the shipped language model on the GPU machine, with .devpack (scripts/gpu/pack.sh)
# and data/shakespeare (scripts/data/fetch_shakespeare.sh) carried:
#   bash scripts/gpu/train.sh start [CONFIG...]  the smoke config in the foreground (a quick
#                                check of training on the GPU), then each CONFIG (default
#                                configs/shakespeare.json) detached and side by side (a small
#                                model leaves the GPU mostly idle), so later calls can run
#                                other work while they train
#   bash scripts/gpu/train.sh wait [SECS]  waits for them (at most SECS), then copies the
#                                folder of the lowest validation loss, the logs and a sample
#                                to $OUT
# Models are written outside the repository copy (/tmp/train-out/NAME), which later calls
# replace.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=/tmp/ingot-kernels
mkdir -p "$INGOT_KERNEL_CACHE" /tmp/train-out
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
case ${1:-} in
start)
  shift
  [ $# -gt 0 ] || set -- configs/shakespeare.json
  sed 's#"out": *"[^"]*"#"out": "/tmp/smoke"#' configs/smoke.json > /tmp/smoke.json
  timeout 180 .device/bin/ingot train /tmp/smoke.json --device cuda 2>&1 | tail -3
  : > /tmp/train.pids
  for config in "$@"; do
    name=$(basename "$config" .json)
    sed "s#\"out\": *\"[^\"]*\"#\"out\": \"/tmp/train-out/$name\"#" "$config" > "/tmp/train-$name.json"
    cp "$config" "/tmp/train-out/$name.config.json"
    setsid nohup .device/bin/ingot train "/tmp/train-$name.json" --device cuda \
      > "/tmp/train-out/$name.log" 2>&1 < /dev/null &
    echo $! >> /tmp/train.pids
  done
  sleep 20; tail -n 3 /tmp/train-out/*.log
  ;;
wait)
  end=$((SECONDS + ${2:-500}))
  for pid in $(cat /tmp/train.pids); do
    while kill -0 "$pid" 2> /dev/null && [ $SECONDS -lt $end ]; do sleep 5; done
  done
  tail -n 6 /tmp/train-out/*.log
  best=$(python3 -c '
import glob, json, os
runs = []
for f in glob.glob("/tmp/train-out/*/training.json"):
    r = json.load(open(f))
    runs.append((r["validation_loss"], os.path.dirname(f)))
    print(f, "validation", r["validation_loss"], "saved step", r.get("saved_step"), "tok/s", round(r["tokens_per_second"]), file=__import__("sys").stderr)
print(min(runs)[1] if runs else "")')
  tar czf "$out/train-logs.tgz" -C /tmp/train-out $(cd /tmp/train-out && ls *.log *.config.json */training.json 2> /dev/null)
  if [ -n "$best" ]; then
    echo "== best: $best"
    cp "$best"/config.json "$best"/model.safetensors "$best"/tokenizer.json "$best"/training.json "$out/"
    cp "/tmp/train-out/$(basename "$best").config.json" "$out/train-config.json"
    for dev in cuda cpu; do
      .device/bin/ingot generate --model "$best" --device $dev --prompt "ROMEO:" --max-tokens 200 \
        --seed 1 > "/tmp/sample-$dev.txt" 2> "/tmp/sample-$dev.err"
      echo "== $dev: $(tail -n 1 /tmp/sample-$dev.err)"
    done
    cp /tmp/sample-cuda.txt "$out/sample.txt"
    cat /tmp/sample-cuda.txt; echo
    cmp -s /tmp/sample-cuda.txt /tmp/sample-cpu.txt && echo "== GPU and CPU samples are the same text" || echo "== GPU and CPU samples differ"
  fi
  ;;
*) echo "usage: train.sh start [CONFIG...] | wait [SECS]"; exit 2 ;;
esac
