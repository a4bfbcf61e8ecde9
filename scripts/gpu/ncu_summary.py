"""Summarizes scripts/gpu/kernels.sh's ncu.csv: the kernels of the last decode step (from
the last embedding gather to the end) with their GPU times, and totals by kernel name.
    python3 scripts/gpu/ncu_summary.py ncu.csv [KERNELS_PER_STEP]"""
import csv, sys, collections

rows = []
with open(sys.argv[1]) as f:
    lines = [l for l in f if l.startswith('"')]
for r in csv.DictReader(lines):
    if r.get("Metric Name") == "gpu__time_duration.sum":
        rows.append((r["Kernel Name"], float(r["Metric Value"].replace(",", "")) / 1e3, r["Grid Size"], r["Block Size"]))
per = int(sys.argv[2]) if len(sys.argv) > 2 else None
if per is None:
    # The last decode step starts after the last-but-one argmax-like reduction: find the
    # last two kernels whose name mentions arg and take what lies between.
    idx = [i for i, r in enumerate(rows) if "arg" in r[0]]
    start = idx[-2] + 1 if len(idx) >= 2 else 0
else:
    start = len(rows) - per
step = rows[start:]
total = sum(r[1] for r in step)
print(f"{len(step)} kernels in the last step, {total:.1f} us of GPU time")
for name, us, grid, block in step:
    print(f"{us:9.2f} us  {name[:70]:70s} grid {grid} block {block}")
by = collections.defaultdict(lambda: [0, 0.0])
for name, us, *_ in step:
    key = name.split("(")[0][:60]
    by[key][0] += 1
    by[key][1] += us
print("\nby kernel:")
for k, (n, us) in sorted(by.items(), key=lambda kv: -kv[1][1]):
    print(f"{us:9.1f} us {n:4d}x  {k}")
