"""Writes crates/ingot-nn/tests/fixtures/minilm-embeddings.json for the all-MiniLM-L6-v2 test
of crates/ingot-nn/tests/bert.rs: sentence-transformers' normalized embeddings of a few
varied sentences, and the token ids and attention mask of the batch padded to its longest
sentence, from the model folder's tokenizer. The JSON holds no weights.

usage: python3 scripts/hf/minilm_reference.py MODEL_DIR [OUT_JSON]
       (needs torch, transformers and sentence-transformers; MODEL_DIR is a local
       all-MiniLM-L6-v2 folder with config.json, model.safetensors, tokenizer.json,
       modules.json and 1_Pooling/)
"""
import json
import sys

import sentence_transformers as st
import torch
import transformers as tf

folder = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "crates/ingot-nn/tests/fixtures/minilm-embeddings.json"

long = (
    "The committee met on a grey Tuesday morning to review the proposal, which had been "
    "circulating for weeks among engineers, accountants and a handful of curious students; "
    "after two hours of debate about budgets, timelines, testing strategies and the "
    "unexpected cost of cooling the new data centre, they agreed to fund a smaller pilot "
    "first, measure its energy use carefully over the winter, publish every result openly, "
    "and only then decide whether the full project deserved the money, the people and the "
    "patience it would certainly demand from everyone involved in the months ahead."
)
sentences = [
    "Hello world",
    "A man is playing a guitar on the street.",
    "How do I reset my password?!",
    "Café au lait, naïve résumé — déjà vu.",
    "東京は日本の首都です。",
    "Emoji test: 🚀 launches at 3:45pm (UTC+2), costs $1,299.99 & ships #fast!",
    "x",
    long,
]

model = st.SentenceTransformer(folder, device="cpu")
model.eval()
tok = model.tokenizer
enc = tok(sentences, padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="pt")
with torch.no_grad():
    emb = model.encode(sentences, convert_to_tensor=True, normalize_embeddings=False, batch_size=len(sentences))
assert abs(emb.norm(dim=-1) - 1).max() < 1e-5, "the model's modules should normalize"

json.dump(
    {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "modules": [type(m).__name__ for m in model],
        "max_seq_length": model.max_seq_length,
        "sentences": sentences,
        "ids": enc["input_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        "embeddings": [[round(x, 8) for x in row] for row in emb.tolist()],
        "sentence_transformers": st.__version__,
        "transformers": tf.__version__,
        "torch": torch.__version__,
    },
    open(out, "w", encoding="utf-8"),
    ensure_ascii=False,
)
print(out, "lengths", enc["attention_mask"].sum(-1).tolist(), "modules", [type(m).__name__ for m in model])
