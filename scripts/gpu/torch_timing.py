"""How the PyTorch side of ingot's GPU benchmarks times a case: CUDA events around `reps`
back-to-back calls after a warm-up call, median of 5 such batches, in seconds a call."""
import torch


def median_seconds(fn, reps=20):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1000 / reps)
    times.sort()
    return times[2]
