#!/usr/bin/env python3
"""Summary of a CUPTI timeline written by scripts/gpu/micro/cupti_trace.c.

Prints GPU kernel time by kernel, driver-call time by call, how busy the GPU was over the
last part of the run (the steady steps), and the longest idle gaps on the GPU with the
driver calls the host was in during each gap and the kernel that ended it.

    python3 scripts/gpu/trace_summary.py TRACE.csv [--tail FRACTION] [--gaps N]
"""
import argparse
import collections


def by_time(title, records, top):
    """Prints records grouped by name (first 70 characters): total ms, count, longest ms."""
    by = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for s, e, _, _, name in records:
        t = by[name[:70]]
        t[0] += 1
        t[1] += (e - s) / 1e6
        t[2] = max(t[2], (e - s) / 1e6)
    print(title)
    for name, (n, ms, mx) in sorted(by.items(), key=lambda x: -x[1][1])[:top]:
        print(f"  {ms:9.2f} {n:7d} {mx:8.3f}  {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--tail", type=float, default=0.5, help="share of the run (by time) to analyse, from its end")
    ap.add_argument("--gaps", type=int, default=12)
    a = ap.parse_args()
    kernels, calls = [], []
    with open(a.csv, errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split(",", 5)
            if len(parts) < 6:
                continue
            kind, s, e, who, corr, name = parts
            rec = (int(s), int(e), int(who), int(corr), name)
            (kernels if kind == "K" else calls).append(rec)
    if not kernels:
        print("no kernels recorded")
        return
    kernels.sort()
    calls.sort()
    t_end = max(k[1] for k in kernels)
    t0 = kernels[0][0] + (t_end - kernels[0][0]) * (1 - a.tail)
    ks = [k for k in kernels if k[0] >= t0]
    cs = [c for c in calls if c[0] >= t0]
    span = (t_end - t0) / 1e6
    busy, last = 0, t0
    gaps = []
    for s, e, stream, corr, name in ks:
        if s > last:
            gaps.append((s - last, last, s, name, corr))
        busy += max(0, e - max(s, last))
        last = max(last, e)
    print(f"last {a.tail:.0%} of the run: {span:.1f} ms, {len(ks)} kernels, GPU busy {busy / 1e6:.1f} ms ({100 * busy / 1e6 / span:.0f}%)")
    by_time("kernels by GPU time:  ms  calls  max ms  name", ks, 18)
    by_time("driver calls by host time:  ms  calls  max ms  call", cs, 14)
    print(f"longest GPU idle gaps (total idle {(span * 1e6 - busy) / 1e6:.1f} ms):")
    starts = [c[0] for c in cs]
    import bisect
    for g, s, e, name, corr in sorted(gaps, reverse=True)[: a.gaps]:
        i = bisect.bisect_left(starts, s - 50_000_000)
        inside = collections.defaultdict(float)
        for c in cs[i:]:
            if c[0] > e:
                break
            ov = min(c[1], e) - max(c[0], s)
            if ov > 0:
                inside[c[4]] += ov / 1e6
        launch = next((c for c in cs[i:] if c[3] == corr), None)
        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(inside.items(), key=lambda x: -x[1])[:4])
        when = f"launched {(e - launch[1]) / 1e6:.3f} ms before it ran" if launch else ""
        print(f"  {g / 1e6:8.3f} ms at {(s - t0) / 1e6:9.2f} ms, then {name[:60]} {when}; host in: {top}")


if __name__ == "__main__":
    main()
