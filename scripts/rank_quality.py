"""Quality of a running `capflow serve` on Seal-Tools test_in_domain, through /rank
(docs/serving.md, "Where candidates come from"): MRR@10 and nDCG@5 of the relevant
capabilities (the fields of the tools each query calls) when the request names no
candidates (the server's ANN, or its whole catalog with --whole-catalog-max), when it
names every capability, and when it names the level-0 ones.

    .venv/bin/python scripts/rank_quality.py [http://127.0.0.1:8089] [../shared/datasets/seal-tools]
"""
import json
import math
import sys
import urllib.request

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8089"
data = sys.argv[2] if len(sys.argv) > 2 else "../shared/datasets/seal-tools"
tools = {}
for line in open(f"{data}/tool.jsonl"):
    t = json.loads(line)
    tools[t["api_name"]] = t["field"]
rows = [json.loads(line) for line in open(f"{data}/test_in_domain.jsonl")]
level0 = sorted(set(tools.values()))
everything = level0 + sorted({f.split("/")[0] for f in level0})


def rank(body):
    req = urllib.request.Request(base + "/rank", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        d = json.load(r)
    return [x["capability_id"] for x in d["rankings"]], d["candidates"]


for name, cands in [("no candidate_ids", None), ("every capability", everything), ("level-0 capabilities", level0)]:
    mrr = ndcg = 0.0
    sources = {}
    for r in rows:
        rel = {tools[c["api"]] for c in r["calling"] if c["api"] in tools}
        body = {"intent": r["query"], "top_k": 10}
        if cands is not None:
            body["candidate_ids"] = cands
        ranked, src = rank(body)
        sources[src] = sources.get(src, 0) + 1
        mrr += next((1 / (i + 1) for i, c in enumerate(ranked) if c in rel), 0)
        dcg = sum(1 / math.log2(i + 2) for i, c in enumerate(ranked[:5]) if c in rel)
        ndcg += dcg / sum(1 / math.log2(i + 2) for i in range(min(5, len(rel))))
    print(f"{name}: MRR@10 {mrr / len(rows):.4f} nDCG@5 {ndcg / len(rows):.4f} candidates {sources}")
