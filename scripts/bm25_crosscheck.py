#!/usr/bin/env python3
"""Reference Okapi BM25 scores for the Go package models/bm25.

Usage: bm25_crosscheck.py IN.json OUT.json

IN.json (written by models/bm25/crosscheck_test.go):
  {"k1": 1.5, "b": 0.75,
   "docs":    [["term", ...], ...],   # documents, already tokenized by Go
   "queries": [["term", ...], ...]}   # queries, likewise

OUT.json:
  {"numpy":     [[score per doc] per query],
   "rank_bm25": [[score per doc] per query] or null (a score is null
                 where rank_bm25 gives NaN: an empty document with b = 1),
   "rank_bm25_version": "0.2.2" or null,
   "rank_bm25_error": null or why it could not be imported}

Both use the same formula as models/bm25 with Lucene's idf,
  idf(t) = ln(1 + (N - n + 0.5) / (n + 0.5)),
  score(d, q) = sum over query tokens t (repeats count) of
                idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl)).
"numpy" is written here from the formula, vectorised over documents.
"rank_bm25" is the rank_bm25 package's BM25Okapi with its idf swapped for
Lucene's (its own is ln((N - n + 0.5) / (n + 0.5)) with negative values
floored to 0.25 * mean idf), so its term-frequency part is an independent
implementation. Tokenization is not compared here: the Go side passes tokens.
"""
import json
import math
import sys

import numpy as np


def lucene_idf(n_docs, df):
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def numpy_scores(docs, queries, k1, b):
    n_docs = len(docs)
    doc_len = np.array([len(d) for d in docs], dtype=np.float64)
    avgdl = doc_len.sum() / n_docs
    tf = {}  # term -> array of counts per document
    for i, d in enumerate(docs):
        for t in d:
            tf.setdefault(t, np.zeros(n_docs))[i] += 1
    idf = {t: lucene_idf(n_docs, int(np.count_nonzero(c))) for t, c in tf.items()}
    norm = k1 * (1 - b + b * doc_len / avgdl) if avgdl > 0 else np.zeros(n_docs)
    out = []
    for q in queries:
        s = np.zeros(n_docs)
        for t in q:
            if t not in tf:
                continue
            c = tf[t]
            s += np.where(c > 0, idf[t] * (c * (k1 + 1) / np.maximum(c + norm, 1e-300)), 0.0)
        out.append(s.tolist())
    return out


def rank_bm25_scores(docs, queries, k1, b):
    from rank_bm25 import BM25Okapi

    class LuceneIDF(BM25Okapi):
        def _calc_idf(self, nd):
            for word, freq in nd.items():
                self.idf[word] = lucene_idf(self.corpus_size, freq)

    bm = LuceneIDF(docs, k1=k1, b=b)
    # rank_bm25 computes 0/0 = NaN for an empty document when b = 1 (its
    # length norm is 0 there); JSON has no NaN, so those come out as null.
    return [[None if math.isnan(x) else x for x in bm.get_scores(q).tolist()] for q in queries]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        req = json.load(f)
    k1, b, docs, queries = float(req["k1"]), float(req["b"]), req["docs"], req["queries"]
    res = {"numpy": numpy_scores(docs, queries, k1, b), "rank_bm25": None,
           "rank_bm25_version": None, "rank_bm25_error": None}
    try:
        from importlib import metadata
        res["rank_bm25"] = rank_bm25_scores(docs, queries, k1, b)
        res["rank_bm25_version"] = metadata.version("rank_bm25")
    except ImportError as e:
        res["rank_bm25_error"] = str(e)
    with open(sys.argv[2], "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
