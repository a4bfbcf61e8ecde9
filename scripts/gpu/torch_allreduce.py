"""torch.distributed's side of ingot-dist-bench: all_reduce (sum) over NCCL at the same sizes,
timed the same way, under the same launcher (`ingot launch -n N -- python3 THIS`, which sets
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT and keeps NVLink multicast off).

usage: python3 scripts/gpu/torch_allreduce.py [--dtype bf16|f32] [--max-mib M] [--json FILE]
"""
import json
import os
import sys
import time

import torch
import torch.distributed as tdist


def arg(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


dtype = {"f32": torch.float32, "f16": torch.float16}.get(arg("--dtype", "bf16"), torch.bfloat16)
max_mib = int(arg("--max-mib", "1024"))
local = int(os.environ.get("LOCAL_RANK", "0"))
torch.cuda.set_device(local)
tdist.init_process_group("nccl", device_id=torch.device("cuda", local))
rank, n = tdist.get_rank(), tdist.get_world_size()
rows = []
mib = 1
while mib <= max_mib:
    nbytes = mib << 20
    x = torch.full((nbytes // torch.tensor([], dtype=dtype).element_size(),), float(rank + 1),
                   dtype=dtype, device="cuda")
    tdist.all_reduce(x.clone())
    torch.cuda.synchronize()
    reps = max(5, min(100, 4096 // mib))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            tdist.all_reduce(x)  # in place, as training's gradient buckets are
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / reps)
    times.sort()
    t = times[1]
    alg = nbytes / t / 1e9
    rows.append({"bytes": nbytes, "seconds": t, "algbw": alg, "busbw": alg * 2 * (n - 1) / n})
    mib *= 4
if rank == 0:
    out = {"impl": "torch", "world": n, "dtype": str(dtype).split(".")[-1], "rows": rows,
           "nccl": ".".join(map(str, torch.cuda.nccl.version()))}
    path = arg("--json", None)
    if path:
        open(path, "w").write(json.dumps(out) + "\n")
    print(json.dumps(out))
tdist.destroy_process_group()
