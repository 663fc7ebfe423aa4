#!/usr/bin/env python3
"""Golden token ids for the Go tokenizer tests (models/textembed).

Writes into models/textembed/testdata/:
  unigram_tokenizer.json  a small XLM-R-like Unigram tokenizer trained here on
                          Seal-Tools tool descriptions with HF `tokenizers`
                          (NFKC normalizer + Replace " {2,}"->" ", Metaspace
                          pre-tokenizer prepend_scheme=always, TemplateProcessing
                          <s> $A </s>), vocab ~2000.
  xlmr_spm_tokenizer.json the real XLM-RoBERTa/BGE-M3 pipeline: a SentencePiece
                          Unigram model (nmt_nfkc rule, vocab 2000) trained here
                          on the same text with `sentencepiece`, converted by
                          transformers' XLMRobertaConverter (Precompiled charsmap
                          normalizer + Replace " {2,}", Metaspace, <s> $A </s>,
                          fairseq id layout <s>=0 <pad>=1 </s>=2 <unk>=3).
  tiny_xlmr/               a tiny random-weight XLM-RoBERTa sentence encoder over
                          that tokenizer (CLS pooling + Normalize, as BGE-M3;
                          max_seq_length 32; inputs input_ids and attention_mask
                          only) exported to ONNX, with its sentence-transformers
                          files; the test adds xlmr_spm_tokenizer.json.
  tiny_xlmr_golden.json   that encoder's embeddings of the strings below, from
                          sentence-transformers (needs torch, sentence-transformers).
  tokenizers_golden.json  for those and for the real MiniLM WordPiece
                          tokenizer.json: ~30 varied strings and their ids as the
                          reference (Rust) `tokenizers` library encodes them with
                          special tokens.

Re-run (a venv with `tokenizers`, `sentencepiece`, `transformers`, e.g. the
throwaway golden venv of scripts/golden_minilm.py plus `pip install sentencepiece`):
  .local/golden-venv/bin/python scripts/golden_tokenizers.py \
      [--seal-tools /work/shared/datasets/seal-tools] \
      [--minilm .local/models/src/all-MiniLM-L6-v2]
Training is deterministic for a given `tokenizers` version; the version used is
recorded in the golden file.
"""
import argparse
import json
import os
import sys
from importlib import metadata

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers, Regex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "models", "textembed", "testdata")

STRINGS = [
    "Analyze the chemical evidence collected from a crime scene",
    "getWeatherForecast(city='Paris', days=3)",
    "Café naïve résumé — déjà vu",
    "ÅNGSTRÖM Ünïcödé ÇA",
    "東京の天気を教えてください",
    "北京是中国的首都",
    "안녕하세요 세계",
    "Привет, мир!",
    "مرحبا بالعالم",
    "emoji 🙂🚀 and 👩‍💻 zwj",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "   leading and trailing spaces   ",
    "multiple     internal      spaces",
    "tabs\tand\nnewlines\r\nmixed",
    "",
    " ",
    "!!!???...,,,",
    "a",
    "x" * 40,
    "full-width ＡＢＣ１２３ and ligature ﬁ ﬂ",
    "superscript x² and fraction ½ and ™",
    "non\u00a0breaking\u2009thin\u3000ideographic",
    "URL https://example.com/api/v1/tools?id=42&x=y",
    "snake_case_identifier and camelCaseIdentifier and CONSTANT_CASE",
    "Numbers 3.14159 1,000,000 -42 1e-9",
    "combining e\u0301 vs precomposed é",
    "quotes “smart” ‘single’ «guillemets»",
    "math ∑ ∫ √ ≤ ≥ ≠",
    "mixed English 和中文 text",
    "The tool books a flight from New York to London for two adults on 2024-05-01.",
]


def seal_texts(seal_dir):
    out = []
    with open(os.path.join(seal_dir, "tool.jsonl"), encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            out.append(t["api_name"] + ": " + t.get("api_description", ""))
            for name, p in (t.get("parameters") or {}).items():
                out.append(name + " " + str(p.get("description", "")))
    return out


def train_unigram(texts):
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=2000,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    return tok


def train_xlmr_spm(texts, workdir):
    import sentencepiece as spm
    from transformers.convert_slow_tokenizer import XLMRobertaConverter

    corpus = os.path.join(workdir, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(texts))
    prefix = os.path.join(workdir, "spm")
    # XLM-R's own SentencePiece layout: <unk>=0 <s>=1 </s>=2, no pad piece.
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=2000, model_type="unigram",
        normalization_rule_name="nmt_nfkc", character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2,
    )

    class Original:  # what XLMRobertaConverter reads of a slow tokenizer
        vocab_file = prefix + ".model"
        add_prefix_space = True
        legacy = True

        def convert_tokens_to_ids(self, token):
            return {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}[token]

    return XLMRobertaConverter(Original()).converted()


def tiny_xlmr(tok_path, workdir):
    """Random tiny XLM-R, its ONNX export and its sentence-transformers golden."""
    import shutil

    import torch
    from sentence_transformers import SentenceTransformer, models as st_models
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    cfg = XLMRobertaConfig(
        vocab_size=Tokenizer.from_file(tok_path).get_vocab_size(), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=66, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    hf = XLMRobertaModel(cfg, add_pooling_layer=False).eval()
    src = os.path.join(workdir, "hf")
    hf.save_pretrained(src)
    shutil.copy(tok_path, os.path.join(src, "tokenizer.json"))

    word = st_models.Transformer(src, max_seq_length=32)
    pool = st_models.Pooling(word.get_word_embedding_dimension(), pooling_mode="cls")
    st = SentenceTransformer(modules=[word, pool, st_models.Normalize()], device="cpu")
    st_dir = os.path.join(workdir, "st")
    st.save(st_dir)
    emb = st.encode(STRINGS, batch_size=8, convert_to_numpy=True)
    ids = [st.tokenizer(s, truncation=True, max_length=32)["input_ids"] for s in STRINGS]

    out_dir = os.path.join(OUT, "tiny_xlmr")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.join(out_dir, "1_Pooling"))
    for rel in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer_config.json", "1_Pooling/config.json"):
        shutil.copy(os.path.join(st_dir, rel), os.path.join(out_dir, rel))

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    x = torch.tensor([[0, 5, 6, 2], [0, 7, 2, 1]])
    torch.onnx.export(
        Wrap(hf), (x, (x != 1).long()), os.path.join(out_dir, "model.onnx"),
        input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "last_hidden_state")},
        opset_version=17, dynamo=False,
    )
    return [
        {"text": s, "ids": i, "embedding": [float(f"{v:.7g}") for v in e.tolist()]}
        for s, i, e in zip(STRINGS, ids, emb)
    ]


def golden(tok):
    return [{"text": s, "ids": tok.encode(s, add_special_tokens=True).ids} for s in STRINGS]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seal-tools", default=os.environ.get("CAPFLOW_SEALTOOLS_DIR", "/work/shared/datasets/seal-tools"))
    ap.add_argument("--minilm", default=os.path.join(ROOT, ".local", "models", "src", "all-MiniLM-L6-v2"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    uni = train_unigram(seal_texts(args.seal_tools))
    uni_path = os.path.join(OUT, "unigram_tokenizer.json")
    uni.save(uni_path)

    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        xlmr = train_xlmr_spm(seal_texts(args.seal_tools), tmp)
    xlmr.save(os.path.join(OUT, "xlmr_spm_tokenizer.json"))
    with tempfile.TemporaryDirectory() as tmp:
        tiny = tiny_xlmr(os.path.join(OUT, "xlmr_spm_tokenizer.json"), tmp)
    with open(os.path.join(OUT, "tiny_xlmr_golden.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "scripts/golden_tokenizers.py", "tokenizer": "xlmr_spm_tokenizer.json",
                   "versions": {p: metadata.version(p) for p in ("sentence-transformers", "transformers", "torch")},
                   "cases": tiny}, f, ensure_ascii=False)
        f.write("\n")

    wp = Tokenizer.from_file(os.path.join(args.minilm, "tokenizer.json"))
    wp.no_truncation()
    wp.no_padding()

    doc = {
        "generator": "scripts/golden_tokenizers.py",
        "versions": {p: metadata.version(p) for p in ("tokenizers", "sentencepiece", "transformers")},
        "rerun": ".local/golden-venv/bin/python scripts/golden_tokenizers.py",
        "tokenizers": {
            "unigram": {"file": "unigram_tokenizer.json", "cases": golden(uni)},
            "xlmr_spm": {"file": "xlmr_spm_tokenizer.json", "cases": golden(xlmr)},
            "minilm_wordpiece": {"file": "minilm/tokenizer.json", "cases": golden(wp)},
        },
    }
    with open(os.path.join(OUT, "tokenizers_golden.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
    print("wrote", uni_path, "and tokenizers_golden.json", file=sys.stderr)


if __name__ == "__main__":
    main()
