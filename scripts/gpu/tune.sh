#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried (a pack holding ingot-gpu-bench and ingot's
# attention tests): the tuning knobs of split-KV decoding, each setting in its own process,
# alternating so drift touches all alike.
#   decode: INGOT_CUDA_DEC_BLOCKS x INGOT_CUDA_DEC_U x INGOT_CUDA_DEC_PIPE on the bench's
#           decode row (1 query over 8,192 keys, 32 x 128, bf16); the attention suite
#           with the defaults and with other settings. DEC_BLOCKS and DEC_U in the
#           environment replace the lists swept.
#   matmul: the matmul rows again, beside the one PyTorch measurement of the call.
#   bash scripts/gpu/tune.sh [decode] [matmul] [reps]
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
mkdir -p "$INGOT_KERNEL_CACHE"
reps=1
for a in "$@"; do case $a in [0-9]*) reps=$a ;; esac; done
python3 scripts/gpu/torch_bench.py > /tmp/torch-tune.json 2> /dev/null || echo '{}' > /tmp/torch-tune.json
printf '#!/bin/sh\ncat /tmp/torch-tune.json\n' > /tmp/torch-cat && chmod +x /tmp/torch-cat
row() { grep -iE "$1" | grep -v '^{' | head -1 | tr -s ' ' | cut -c1-200; }
suite() { INGOT_TEST_DEVICE=cuda timeout 240 "$@" 2>&1 | grep -E "^test result|panicked|FAILED" | head -4 | tr '\n' ' '; echo; }
for what in "$@"; do
  case $what in
  decode)
    for t in .device/tests/attention-*; do
      echo "== attention suite (defaults): $(suite "$t")"
      echo "== attention suite, DEC_PIPE=0 DEC_BLOCKS=132: $(INGOT_CUDA_DEC_PIPE=0 INGOT_CUDA_DEC_BLOCKS=132 suite "$t")"
    done
    for rep in $(seq "$reps"); do
      for blocks in ${DEC_BLOCKS:-132 264 396 528 1024}; do
        for u in ${DEC_U:-4}; do
          for pipe in 0 1; do
            echo "== blocks $blocks u $u pipe $pipe ($rep): $(INGOT_CUDA_DEC_BLOCKS=$blocks INGOT_CUDA_DEC_U=$u INGOT_CUDA_DEC_PIPE=$pipe timeout 60 .device/bin/ingot-gpu-bench --only decode --python /tmp/torch-cat 2>&1 | row "attention decode")"
          done
        done
      done
    done
    ;;
  matmul)
    for rep in $(seq "$reps"); do
      echo "== matmul ($rep):"; timeout 60 .device/bin/ingot-gpu-bench --only matmul --python /tmp/torch-cat 2>&1 | grep -E "^matmul" | tr -s ' ' | cut -c1-200
    done
    ;;
  esac
done
