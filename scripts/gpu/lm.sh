#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .devpack/ carried
# (scripts/gpu/pack.sh): `ingot bench-lm` beside transformers (eager, same config, same
# prompt, greedy) for each config named, bf16, alone on the GPU. JSON to $OUT/lm-NAME.json.
#   bash scripts/gpu/lm.sh [CONFIG...]   (default: Llama 3.2 1B and Llama 3 8B geometries)
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels} PYTHONUNBUFFERED=1
mkdir -p "$INGOT_KERNEL_CACHE"
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
[ $# -gt 0 ] || set -- configs/lm/llama-3.2-1b.json configs/lm/llama-3-8b.json
for config in "$@"; do
  name=$(basename "$config" .json)
  echo "== $name"
  timeout 240 .device/bin/ingot bench-lm --config "$config" --dtype bf16 \
    --prompt-tokens ${PROMPT:-512} --new-tokens ${NEW:-64} --torch python3 \
    --json "$out/lm-$name.json" 2>&1 | grep -v '^{' | tail -8
done
# Where decode time goes: the last config again with 4 layers and every op's GPU time
# (INGOT_CUDA_PROFILE=1) and host time by op (INGOT_CUDA_STATS=1), the tables to $OUT/lm-profile.txt.
if [ "${PROFILE:-1}" = 1 ]; then
  INGOT_CUDA_PROFILE=1 INGOT_CUDA_STATS=1 timeout 120 .device/bin/ingot bench-lm --config "$config" --dtype bf16 \
    --layers 4 --prompt-tokens 128 --new-tokens 32 > "$out/lm-profile.txt" 2>&1
  echo "profile rc=$? ($out/lm-profile.txt)"
fi
