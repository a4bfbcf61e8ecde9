#!/usr/bin/env bash
# Runs on the GPU machine with .devpack/ carried: an older build's `ingot` against this
# one on the same decode benchmark, interleaved (old, new, old, new), so that a change is
# measured on one machine in one call rather than across leases (H100s of one kind differ
# by up to ~20% in decode tokens/s). The old binary comes xz-compressed in .devold/:
#   git worktree add /tmp/old REV && (cd /tmp/old && CARGO_TARGET_DIR=$PWD/target \
#     CARGO_PROFILE_RELEASE_LTO=false cargo build --release -p ingot-cli)
#   mkdir -p .devold && cp target/release/ingot .devold/ingot-old && strip .devold/ingot-old \
#     && xz -T2 -3 .devold/ingot-old      # then carry [".devpack", ".devold"]
#   CONFIG=configs/lm/llama-3-8b.json PROMPT=512 bash scripts/gpu/compare_builds.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
[ -x /tmp/ingot-old ] || { xz -dc .devold/ingot-old.xz > /tmp/ingot-old && chmod +x /tmp/ingot-old; }
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels}
mkdir -p "$INGOT_KERNEL_CACHE"
args="bench-lm --config ${CONFIG:-configs/lm/llama-3-8b.json} --dtype bf16 --prompt-tokens ${PROMPT:-512} --new-tokens ${NEW:-64}"
for round in 1 2; do
  for build in old new; do
    bin=.device/bin/ingot; [ $build = old ] && bin=/tmp/ingot-old
    echo "== $build ($round)"
    timeout 120 $bin $args 2>&1 | grep -E '^\| ingot|decode step'
  done
done
