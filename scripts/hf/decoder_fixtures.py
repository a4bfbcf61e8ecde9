"""Makes the Hugging Face decoder fixtures of crates/ingot-nn/tests/hf_decoders.rs: for each
architecture ingot loads (Llama 3 with its rope scaling, Mistral with a sliding window,
Qwen2 with biases, linear rope scaling and sliding layers, Qwen3 with q/k norms and YaRN,
Phi-3 with fused projections and partial rotary, Gemma 2 with soft-capping and alternating
windows), a tiny model with random weights saved by transformers itself, and in
logits.json: its float64 logits for two fixed sequences, and a greedy continuation of 32
tokens from a prompt with the logits of every position of prompt + continuation.
Windows are small (8) so the continuation runs past them.

usage: python3 scripts/hf/decoder_fixtures.py [OUT_ROOT]   (needs torch and transformers)
"""
import json
import os
import sys

import torch
import transformers as tf

root = sys.argv[1] if len(sys.argv) > 1 else "crates/ingot-nn/tests/fixtures"
common = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
)
cases = {
    "hf-llama3": (
        tf.LlamaConfig,
        tf.LlamaForCausalLM,
        dict(
            tie_word_embeddings=True,
            rope_parameters=dict(
                rope_type="llama3",
                rope_theta=10000.0,
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=16,
            ),
        ),
    ),
    "hf-mistral": (
        tf.MistralConfig,
        tf.MistralForCausalLM,
        dict(sliding_window=8, head_dim=16, rope_parameters=dict(rope_type="default", rope_theta=20000.0)),
    ),
    "hf-qwen2": (
        tf.Qwen2Config,
        tf.Qwen2ForCausalLM,
        dict(
            use_sliding_window=True,
            sliding_window=8,
            max_window_layers=1,
            rope_parameters=dict(rope_type="linear", rope_theta=10000.0, factor=2.0),
        ),
    ),
    "hf-qwen3": (
        tf.Qwen3Config,
        tf.Qwen3ForCausalLM,
        dict(
            head_dim=16,
            tie_word_embeddings=True,
            rope_parameters=dict(
                rope_type="yarn",
                rope_theta=10000.0,
                factor=4.0,
                original_max_position_embeddings=16,
            ),
        ),
    ),
    "hf-phi3": (
        tf.Phi3Config,
        tf.Phi3ForCausalLM,
        dict(
            sliding_window=8,
            pad_token_id=0,
            rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5),
        ),
    ),
    "hf-gemma2": (
        tf.Gemma2Config,
        tf.Gemma2ForCausalLM,
        dict(
            head_dim=16,
            sliding_window=8,
            query_pre_attn_scalar=24,
            attn_logit_softcapping=5.0,
            final_logit_softcapping=10.0,
            pad_token_id=0,
        ),
    ),
}
ids = [[1, 17, 42, 5, 58, 3, 61, 9, 31, 47, 2, 50], [4, 4, 60, 12, 7, 36, 23, 1, 0, 63, 38, 11]]
for name, (cfg_cls, model_cls, extra) in cases.items():
    torch.manual_seed(0)
    cfg = cfg_cls(**{**common, **extra})
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).eval()
    with torch.no_grad():
        # Widen the small random init so norms and biases matter; Gemma's norms are 1 + w.
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.uniform_(-0.5, 0.5) if name == "hf-gemma2" else p.uniform_(0.5, 1.5)
            elif pname.endswith("bias"):
                p.normal_(0.0, 0.5)
            elif "embed" in pname and name == "hf-gemma2":
                p.normal_(0.0, 0.05)  # tied and scaled by sqrt(hidden): not only echo the input
            else:
                p.normal_(0.0, 0.2)
    out = os.path.join(root, name)
    model.save_pretrained(out, safe_serialization=True)
    m = model.double()
    with torch.no_grad():
        logits = m(torch.tensor(ids)).logits
        prompt = torch.tensor([ids[0][:6]])
        gen = m.generate(prompt, max_new_tokens=32, do_sample=False, min_new_tokens=32)
        full = m(gen).logits[0]
    flat = lambda t: [round(x, 10) for x in t.flatten().tolist()]
    json.dump(
        {
            "ids": ids,
            "shape": list(logits.shape),
            "logits": flat(logits),
            "prompt": ids[0][:6],
            "greedy": gen[0].tolist()[6:],
            "greedy_logits": flat(full),
            "transformers": tf.__version__,
            "torch": torch.__version__,
        },
        open(os.path.join(out, "logits.json"), "w"),
    )
    print(out, sorted(os.listdir(out)), "greedy", gen[0].tolist()[6:])
