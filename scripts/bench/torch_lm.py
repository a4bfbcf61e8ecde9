"""PyTorch's side of `ingot bench-lm`: the same config with random weights through
transformers (eager, a dynamic KV cache), the same prompt and greedy decode, timed the
same way. Prints one JSON line.

usage: python3 scripts/bench/torch_lm.py CONFIG.json PROMPT NEW LAYERS|0 DTYPE DEVICE
"""
import json
import sys
import time

import torch
import transformers as tf

path, prompt, new, layers, dtype, device = sys.argv[1:7]
prompt, new, layers = int(prompt), int(new), int(layers)
cfg = json.load(open(path))
if layers:
    cfg["num_hidden_layers"] = layers
    if isinstance(cfg.get("layer_types"), list):
        cfg["layer_types"] = cfg["layer_types"][:layers]
config = tf.AutoConfig.for_model(**cfg)
config._attn_implementation = "sdpa" if cfg.get("model_type") != "gemma2" else "eager"
dt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
torch.manual_seed(0)
with torch.device(device):
    model = tf.AutoModelForCausalLM.from_config(config, dtype=dt).eval()
ids = torch.tensor([[(i * 7919 + 13) % config.vocab_size for i in range(prompt)]], device=device)


def sync():
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def run(steps):
    cache = tf.DynamicCache(config=config)
    sync()
    t0 = time.perf_counter()
    out = model(ids, past_key_values=cache, use_cache=True)
    tok = out.logits[:, -1:].argmax(-1)
    tok.cpu()
    ttft = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in range(1, steps):
        out = model(tok, past_key_values=cache, use_cache=True)
        tok = out.logits[:, -1:].argmax(-1)
        tok.cpu()
    return ttft, (steps - 1) / max(time.perf_counter() - t1, 1e-9)


run(min(new, 4))
ttft, decode = run(new)
print(json.dumps({
    "peer": f"PyTorch {torch.__version__} eager, transformers {tf.__version__}",
    "time_to_first_token_s": ttft,
    "decode_tokens_per_s": decode,
    "threads": torch.get_num_threads(),
}))
