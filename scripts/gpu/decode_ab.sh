#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried: where a decoded token's time goes on the
# Llama-3-8B geometry (bf16, 128-token prompt, 64 new tokens), each switch against the
# default build in the same call: the matrix-vector kernel (INGOT_CUDA_GEMV=0: cuBLAS),
# joined projections (--separate-projections), the compiled SwiGLU (INGOT_DISABLE_COMPILE=1),
# then the host time by op (INGOT_CUDA_STATS=1).
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
B=".device/bin/ingot bench-lm --config ${CONFIG:-configs/lm/llama-3-8b.json} --dtype bf16 --prompt-tokens 128 --new-tokens 64"
row() { grep -E '^\| ingot|decode step'; }
echo "== default"; timeout 120 $B 2>&1 | row
echo "== INGOT_CUDA_GEMV=0"; INGOT_CUDA_GEMV=0 timeout 120 $B 2>&1 | row
echo "== --separate-projections"; timeout 120 $B --separate-projections 2>&1 | row
echo "== INGOT_DISABLE_COMPILE=1"; INGOT_DISABLE_COMPILE=1 timeout 120 $B 2>&1 | row
echo "== INGOT_CUDA_STATS=1"; INGOT_CUDA_STATS=1 timeout 120 $B 2>&1 | grep -v '^{' | grep -E 'calls|decode step|^\| ingot'
