"""GPT-2 small training steps in PyTorch, the peer of `ingot-train-bench` (started by it).

The same model as ingot_nn::models::Gpt2 (learned positions, pre-norm blocks, tanh GELU,
tied output layer), the same data shapes and optimizer (AdamW, betas 0.9/0.95, weight
decay 0.1) under bf16 autocast with f32 master weights. Attention is
F.scaled_dot_product_attention (what a PyTorch user writes; it picks flash attention).
Prints one JSON object: per mode (eager, compile) seconds per step and peak memory.

  python3 scripts/gpu/torch_gpt2.py [--steps N] [--warmup N] [--batch B] [--seq T] [--modes eager,compile]
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, e, nh):
        super().__init__()
        self.nh = nh
        self.ln_1 = nn.LayerNorm(e)
        self.c_attn = nn.Linear(e, 3 * e)
        self.attn_proj = nn.Linear(e, e)
        self.ln_2 = nn.LayerNorm(e)
        self.c_fc = nn.Linear(e, 4 * e)
        self.mlp_proj = nn.Linear(4 * e, e)

    def forward(self, x):
        b, t, e = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(e, dim=2)
        q, k, v = (z.view(b, t, self.nh, e // self.nh).transpose(1, 2) for z in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(o.transpose(1, 2).reshape(b, t, e))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, vocab=50257, positions=1024, e=768, layers=12, nh=12):
        super().__init__()
        self.wte = nn.Embedding(vocab, e)
        self.wpe = nn.Embedding(positions, e)
        self.h = nn.ModuleList(Block(e, nh) for _ in range(layers))
        self.ln_f = nn.LayerNorm(e)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(t, device=ids.device))
        for blk in self.h:
            x = blk(x)
        return self.ln_f(x) @ self.wte.weight.t()


def run(mode, args):
    torch.manual_seed(0)
    dev = "cuda"
    model = Gpt2().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, 50257, (args.batch, args.seq + 1), generator=g).to(dev)
    x, y = ids[:, :-1], ids[:, 1:]

    def step(x, y):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    fn = torch.compile(step) if mode == "compile" else step
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        loss = fn(x, y)
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = fn(x, y)
    torch.cuda.synchronize()
    secs = (time.perf_counter() - t0) / args.steps
    out = {
        "seconds_per_step": secs,
        "tokens_per_second": args.batch * args.seq / secs,
        "peak_bytes": torch.cuda.max_memory_allocated(),
        "warmup_seconds": warm,
        "loss": float(loss),
    }
    del model, opt
    torch.cuda.empty_cache()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--modes", default="eager,compile")
    args = p.parse_args()
    res = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name()}
    for m in args.modes.split(","):
        try:
            res[m] = run(m, args)
        except Exception as e:  # a mode that fails is reported, the others still run
            print(f"torch_gpt2: {m} failed: {e}", file=sys.stderr)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
