# Herald's tasks. `make help` lists them; CI runs `make test` (.ci/run).
.DEFAULT_GOAL := help
VENV := .venv/bin

.PHONY: help setup kube-assets check test run infra-up infra-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

setup: ## install everything from nothing: Postgres binaries, .venv, Kafka jars
	@bash deploy/local/setup.sh

kube-assets: setup ## find or build (once, ~13 min) etcd and kube-apiserver for the real-cluster tier
	@$(VENV)/python -m herald_dev.kubeassets >/dev/null

check: setup ## lint and type checks: ruff, ruff format, mypy --strict, import-linter
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports

test: check kube-assets ## the whole suite, against a real Kafka broker, Postgres and kube-apiserver that it starts itself
	$(VENV)/pytest

run: setup ## the demo: a canary rollout from a simulated cluster to a verifying webhook receiver
	$(VENV)/python -m herald_dev.demo

infra-up: setup ## start (or reuse) the local Kafka broker and Postgres; prints their env
	@$(VENV)/python -m herald_dev.infra up

infra-down: ## stop what infra-up started
	@[ ! -x $(VENV)/python ] || $(VENV)/python -m herald_dev.infra down

clean: infra-down ## remove the virtualenv, caches and local state
	rm -rf .venv .cache .herald-local .mypy_cache .ruff_cache .pytest_cache tests/consumers/java/target
