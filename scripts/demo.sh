#!/usr/bin/env bash
# The pipeline on the real development data: import Seal-Tools into an
# embedded store under .local/demo, build features with the real
# all-MiniLM-L6-v2 encoder when `make deps` has converted it (else the
# offline hashing encoder), train SHGAT on the dev split, gate it on the
# part of dev training held out and promote it when the gate says improved;
# test_in_domain is only reported, never selected on. Every stage is logged
# to the local MLflow server.
# Called by `make demo` after the services are up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEMO="$ROOT/.local/demo"
SEAL="${CAPFLOW_SEALTOOLS_DIR:-$ROOT/../shared/datasets/seal-tools}"
MODEL="${CAPFLOW_MINILM_DIR:-$ROOT/.local/models/all-MiniLM-L6-v2}"
mkdir -p "$DEMO"
go build -o "$DEMO/capflow" ./cmd/capflow

if [ -f "$MODEL/model.onnx" ]; then
  enc=(--model-dir "$MODEL")
  dim=384
  store="$DEMO/store-minilm.db"
else
  echo "[demo] $MODEL not found: using the hashing encoder (run make deps for the real model)" >&2
  enc=(--encoder hashing)
  dim=1024
  store="$DEMO/store-hashing.db"
fi
"$DEMO/capflow" data import --format sealtools --store-path "$store" --text-dim "$dim" "$SEAL"
"$DEMO/capflow" features build --store-path "$store" --text-dim "$dim" "${enc[@]}" \
  --experiment capflow-demo --run-name features-demo
# The validation split of dev, shared by train (early stopping) and evaluate
# (the gate): evaluate --holdout recomputes it from these two values.
split=(--valid-fraction 0.2 --split-seed 0)
# Train on the dev split (pseudo-experiences; a fifth of dev held out for
# validation), report on test_in_domain, register the model and move it to
# Staging.
"$DEMO/capflow" train --store-path "$store" --text-dim "$dim" "${enc[@]}" \
  --pseudo-prefix dev- "${split[@]}" --candidate-levels 0 --report-prefix test_in_domain- \
  --experiment capflow-demo --run-name train-demo
# Evaluate Staging against Production and the cosine and BM25 baselines on
# the dev hold-out, which decides (the gate, the temperature fit) and which
# training never fitted; test_in_domain is only reported (report_*).
# Promote when the gate says improved.
"$DEMO/capflow" evaluate --store-path "$store" --text-dim "$dim" "${enc[@]}" \
  --model models:/capflow-shgat/Staging --against Production \
  --query-prefix dev- --holdout "${split[@]}" --report-prefix test_in_domain- --levels 0 --promote Production \
  --experiment capflow-demo --run-name evaluate-demo
# Serve whatever is in Production, and ask it a few real questions.
port="${CAPFLOW_DEMO_PORT:-8088}"
if [ -f "$DEMO/serve.pid" ]; then kill "$(cat "$DEMO/serve.pid")" 2>/dev/null || true; fi
"$DEMO/capflow" serve --store-path "$store" --text-dim "$dim" "${enc[@]}" --follow Production \
  --addr "127.0.0.1:$port" --cache-dir "$DEMO/serve-cache" > "$DEMO/serve.log" 2>&1 &
echo $! > "$DEMO/serve.pid"
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  sleep 0.5
done
curl -fs "http://127.0.0.1:$port/readyz" > /dev/null || { echo "[demo] capflow serve did not become ready; see $DEMO/serve.log" >&2; exit 1; }
for intent in \
  "What will the weather be in Paris tomorrow, and can you book me a hotel there?" \
  "Convert 100 US dollars to euros and show me the latest stock price of Apple" \
  "Find a vegetarian recipe for dinner and add the ingredients to my shopping list"; do
  echo
  echo "POST /rank  {\"intent\": \"$intent\", \"top_k\": 3}"
  curl -fs -X POST "http://127.0.0.1:$port/rank" -H 'Content-Type: application/json' \
    -d "{\"intent\": \"$intent\", \"top_k\": 3}"
  echo
done
echo
echo "capflow serve: http://127.0.0.1:$port (POST /rank, /feedback; GET /readyz, /metrics, /openapi.json)"
echo "MLflow UI:     $MLFLOW_TRACKING_URI (experiment capflow-demo)"
echo "stop:          kill \$(cat $DEMO/serve.pid); make services-down"
