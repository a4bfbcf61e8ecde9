# Sourced by the GPU scripts, from the repository root on the GPU machine: unpacks the
# carried .devpack/ (once per machine), keeps NVRTC's kernels in one cache and sets $out,
# where logs go ($OUT when the device tool gives one).
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
export INGOT_KERNEL_CACHE=${INGOT_KERNEL_CACHE:-/tmp/ingot-kernels} PYTHONUNBUFFERED=1
mkdir -p "$INGOT_KERNEL_CACHE"
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
