"""Makes the tiny BERT fixture of crates/ingot-nn/tests/bert.rs: a random BertModel (vocab
64, hidden 32, 2 layers, 4 heads, exact-erf GELU) saved by transformers itself into
crates/ingot-nn/tests/fixtures/hf-bert, and in hidden.json its float64 last hidden state
and pooler output for a right-padded batch of two sequences with an attention mask and
token type ids.

usage: python3 scripts/hf/bert_fixture.py [OUT_DIR]   (needs torch and transformers)
"""
import json
import os
import sys

import torch
import transformers as tf

out = sys.argv[1] if len(sys.argv) > 1 else "crates/ingot-nn/tests/fixtures/hf-bert"
torch.manual_seed(0)
cfg = tf.BertConfig(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    hidden_act="gelu",
    max_position_embeddings=32,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    pad_token_id=0,
)
cfg._attn_implementation = "eager"
model = tf.BertModel(cfg).eval()
with torch.no_grad():
    # Widen the small random init so norms, biases and positions matter.
    for name, p in model.named_parameters():
        if "LayerNorm" in name and name.endswith("weight"):
            p.uniform_(0.5, 1.5)
        elif name.endswith("bias"):
            p.normal_(0.0, 0.5)
        else:
            p.normal_(0.0, 0.2)
model.save_pretrained(out, safe_serialization=True)
gen = os.path.join(out, "generation_config.json")
if os.path.exists(gen):
    os.remove(gen)

ids = [
    [2, 17, 42, 5, 58, 3, 61, 9, 31, 47, 11, 3],
    [2, 40, 8, 63, 3, 22, 3, 0, 0, 0, 0, 0],
]
mask = [[1] * 12, [1] * 7 + [0] * 5]
types = [[0] * 6 + [1] * 6, [0] * 5 + [1] * 2 + [0] * 5]
m = model.double()
with torch.no_grad():
    o = m(
        input_ids=torch.tensor(ids),
        attention_mask=torch.tensor(mask),
        token_type_ids=torch.tensor(types),
    )
flat = lambda t: [round(x, 10) for x in t.flatten().tolist()]
json.dump(
    {
        "ids": ids,
        "attention_mask": mask,
        "token_type_ids": types,
        "shape": list(o.last_hidden_state.shape),
        "last_hidden_state": flat(o.last_hidden_state),
        "pooler_output": flat(o.pooler_output),
        "transformers": tf.__version__,
        "torch": torch.__version__,
    },
    open(os.path.join(out, "hidden.json"), "w"),
)
print(out, sorted(os.listdir(out)))
