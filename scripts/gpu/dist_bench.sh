#!/usr/bin/env bash
# All-reduce bus bandwidth, ingot beside torch.distributed, on this machine's GPUs, both
# under `ingot launch` (so both keep NVLink multicast off). Run from the repository root on
# the GPU machine with .device/ unpacked; prints a table and writes $OUT/dist-bench.json.
#   bash scripts/gpu/dist_bench.sh N [bf16|f32] [MAX_MIB]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .device ] || xz -dc .devpack/device.tar.xz | tar -xf -
n=${1:-2}; dtype=${2:-bf16}; max=${3:-1024}
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
.device/bin/ingot launch -n "$n" -- .device/bin/ingot-dist-bench --dtype "$dtype" --max-mib "$max" --json "$out/dist-ingot.json"
.device/bin/ingot launch -n "$n" -- python3 scripts/gpu/torch_allreduce.py --dtype "$dtype" --max-mib "$max" --json "$out/dist-torch.json" > /dev/null
python3 - "$out" "$n" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
a = json.load(open(f"{out}/dist-ingot.json")); b = json.load(open(f"{out}/dist-torch.json"))
# NVLink 4 (H100/H200 SXM): 450 GB/s each way per GPU; bus bandwidth is measured against it.
limit = 450.0
print(f"all_reduce {a['dtype']} over {n} GPUs (torch NCCL {b.get('nccl')}); limit {limit:.0f} GB/s per direction")
print(f"{'MiB':>8} {'ingot busbw':>12} {'torch busbw':>12} {'ratio':>7}")
rows = []
for x, y in zip(a["rows"], b["rows"]):
    r = x["busbw"] / y["busbw"] if y["busbw"] > 0 else float("nan")
    print(f"{x['bytes'] >> 20:>8} {x['busbw']:>12.1f} {y['busbw']:>12.1f} {r:>7.2f}")
    rows.append({"bytes": x["bytes"], "ingot_busbw": x["busbw"], "torch_busbw": y["busbw"], "ratio": r})
json.dump({"world": n, "dtype": a["dtype"], "limit_gbs": limit, "rows": rows}, open(f"{out}/dist-bench.json", "w"))
PY
