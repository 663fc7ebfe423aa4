# capflow developer entry points. Real services (MLflow, PostgreSQL+pgvector,
# Redis) are installed by scripts/deps.sh and run by scripts/services.sh on
# 127.0.0.1 with state under .local/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
GOTESTFLAGS ?= -count=1 -timeout 25m -p 2
PKGS      ?= ./...
# Exports MLFLOW_TRACKING_URI, CAPFLOW_PG_DSN, CAPFLOW_REDIS_ADDR, ... (see scripts/services.sh env)
WITH_ENV  := eval "$$(bash scripts/services.sh env)";

.PHONY: help deps services-up services-down services-status env test demo bench-mlflow bench-store bench-node2vec bench-score bench-per bench-train bench-quality bench-recall bench-serve vet fmt clean

help:
	@echo "targets: deps services-up services-down services-status env test demo bench-mlflow bench-store bench-node2vec bench-score bench-per bench-train bench-quality bench-recall bench-serve vet fmt clean"

deps:
	@bash scripts/deps.sh

services-up: deps
	@bash scripts/services.sh up

services-down:
	@bash scripts/services.sh down

services-status:
	@bash scripts/services.sh status

env:
	@bash scripts/services.sh env

test: services-up
	$(WITH_ENV) $(GO) test $(GOTESTFLAGS) $(PKGS)

demo: services-up
	$(WITH_ENV) $(GO) run ./examples/tracking
	$(WITH_ENV) bash scripts/demo.sh

bench-mlflow: deps
	$(WITH_ENV) $(GO) run ./cmd/bench-mlflow $(ARGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	$(GO) fmt $(PKGS)

clean: services-down
	@if [ -L .local/pg ]; then rm -rf "$$(readlink -f .local/pg)"; fi
	rm -rf .local

bench-store: services-up
	$(WITH_ENV) $(GO) run ./cmd/bench-store $(ARGS)

bench-node2vec: deps
	$(WITH_ENV) $(GO) run ./cmd/bench-node2vec $(ARGS)

bench-score: deps
	$(WITH_ENV) $(GO) run ./cmd/bench-score $(ARGS)

bench-per: deps
	$(WITH_ENV) $(GO) run ./cmd/bench-per $(ARGS)

bench-train: deps
	$(WITH_ENV) $(GO) run ./cmd/bench-train $(ARGS)

# the ablation: every model variant trained on Seal-Tools dev, reported on
# test_in_domain, one MLflow run with a child run per variant (cmd/bench-quality).
bench-quality: services-up
	$(WITH_ENV) $(GO) run ./cmd/bench-quality $(ARGS)

# recall@K of the store's ANN candidates, text vs hybrid space, on Seal-Tools test_in_domain
# (reads the demo's store: run `make demo` first).
bench-recall: deps
	$(WITH_ENV) $(GO) run ./cmd/bench-recall $(ARGS)

# wrk against /rank and against `mlflow models serve` of the same model (cmd/bench-serve).
bench-serve: deps
	$(WITH_ENV) $(GO) run ./cmd/bench-serve $(ARGS)
