#!/usr/bin/env bash
# The pipeline on the real development data: import Seal-Tools into an
# embedded store under .local/demo, build features with the real
# all-MiniLM-L6-v2 encoder when `make deps` has converted it (else the
# offline hashing encoder), train SHGAT on the dev split, evaluate it on
# test_in_domain and promote it when the gate says improved; every stage is
# logged to the local MLflow server.
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
# Train on the dev split (pseudo-experiences), report on test_in_domain,
# register the model and move it to Staging.
"$DEMO/capflow" train --store-path "$store" --text-dim "$dim" "${enc[@]}" \
  --pseudo-prefix dev- --candidate-levels 0 --report-prefix test_in_domain- \
  --experiment capflow-demo --run-name train-demo
# Evaluate Staging against Production and the baselines; promote when the
# gate says improved.
"$DEMO/capflow" evaluate --store-path "$store" --text-dim "$dim" "${enc[@]}" \
  --model models:/capflow-shgat/Staging --against Production \
  --query-prefix test_in_domain- --calibration-prefix dev- --levels 0 --promote Production \
  --experiment capflow-demo --run-name evaluate-demo
echo
echo "MLflow UI: $MLFLOW_TRACKING_URI (experiment capflow-demo); stop the services with: make services-down"
