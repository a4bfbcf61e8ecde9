"""Makes the Hugging Face Llama fixture of crates/ingot-nn/tests/hf_llama.rs: a tiny
LlamaForCausalLM with random weights (grouped-query heads, untied embeddings, rope_theta
50000, which transformers 5 writes inside rope_parameters), saved by transformers itself (config.json, model.safetensors), and its float64
logits for two fixed sequences. ingot must load the folder and give the same logits.

usage: python3 scripts/hf/llama_fixture.py [OUT_DIR]   (needs torch and transformers)
"""
import json
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

out = sys.argv[1] if len(sys.argv) > 1 else "crates/ingot-nn/tests/fixtures/hf-llama"
torch.manual_seed(0)
cfg = LlamaConfig(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    rope_theta=50000.0,
    tie_word_embeddings=False,
    attention_bias=False,
    mlp_bias=False,
)
model = LlamaForCausalLM(cfg).eval()
with torch.no_grad():
    # Random init is mostly small normals; widen the norms so they matter too.
    for name, p in model.named_parameters():
        if "norm" in name:
            p.uniform_(0.5, 1.5)
model.save_pretrained(out, safe_serialization=True)
ids = [[1, 17, 42, 5, 58, 3, 61, 9, 31, 47, 2, 50], [4, 4, 60, 12, 7, 36, 23, 1, 0, 63, 38, 11]]
with torch.no_grad():
    logits = model.double()(torch.tensor(ids)).logits
json.dump(
    {
        "ids": ids,
        "shape": list(logits.shape),
        "logits": [round(x, 10) for x in logits.flatten().tolist()],
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
    },
    open(os.path.join(out, "logits.json"), "w"),
)
os.remove(os.path.join(out, "generation_config.json"))  # not read by the test
print(out, sorted(os.listdir(out)))
