#!/usr/bin/env bash
# Builds, on this CPU machine, everything a GPU run needs: the release test executables of
# the workspace, the ingot CLI and ingot-gpu-bench (through ../shared/tools/device-pack),
# stripped and packed into .devpack/device.tar.xz (the executables share most of their code,
# so a large window compresses them together far below the device tool's 64 MiB limit).
# Then, with the device tool: carry [".devpack"] and run `bash scripts/gpu/run.sh`
# (docs/cuda.md has the whole call).
set -euo pipefail
cd "$(dirname "$0")/../.."
# No LTO for the GPU build: thin LTO re-optimizes all of ingot into each of the ~25 test
# executables (over an hour on 2 cores); without it each links the one optimized library.
export CARGO_PROFILE_RELEASE_LTO=false
../shared/tools/device-pack --bin ingot --bin ingot-gpu-bench --bin ingot-train-bench
# PACK_TESTS="reduce export misc" keeps only those test executables (a smaller, quicker
# archive for a run that checks a few suites).
if [ -n "${PACK_TESTS:-}" ]; then
  for t in .device/tests/*; do
    name=$(basename "$t" | sed 's/-[0-9a-f]*$//')
    case " $PACK_TESTS " in *" $name "*) ;; *) rm -f "$t" ;; esac
  done
fi
strip .device/tests/* .device/bin/*
mkdir -p .devpack
rm -f .devpack/device.tar.xz
tar -cf - .device | xz -T2 --lzma2=preset=3,dict=1GiB > .devpack/device.tar.xz
du -h .devpack/device.tar.xz
