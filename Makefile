# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Node 24 comes from the npm registry (the `node` devDependency); npm scripts put it first on the PATH.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# Caches live outside the checkout so a fresh clone (CI) reuses them.
export RTGW_CACHE ?= $(HOME)/.cache/realtime-gateway

.PHONY: help run test bench images deps npm-deps system-deps kube-binaries helm-kubectl typecheck test-unit test-integration test-e2e gateway operator

help:
	@echo "make run    one gateway on embedded defaults (http://localhost:8081), prints a dev token"
	@echo "make test   installs what the tests need, then runs every tier (typecheck, unit, integration, e2e)"
	@echo "make bench  runs the benchmarks against plain ws, socket.io and Centrifugo (results in test/bench/results/)"
	@echo "make images builds realtime-gateway/gateway:<version> and realtime-gateway/operator:<version> with buildah"

node_modules/.package-lock.json: package.json package-lock.json gateway/package.json operator/package.json
	@# A registry hiccup (idle timeout, reset) should not fail a whole CI run: retried twice.
	@for attempt in 1 2 3; do npm ci --no-audit --no-fund && exit 0; echo "npm ci failed (attempt $$attempt of 3)" >&2; sleep 10; done; exit 1
	@touch $@

npm-deps: node_modules/.package-lock.json

system-deps:
	bash scripts/install-system-deps.sh

kube-binaries:
	bash scripts/build-kube-binaries.sh

helm-kubectl: npm-deps
	bash scripts/install-helm-kubectl.sh

deps: npm-deps system-deps kube-binaries helm-kubectl

images: npm-deps
	bash scripts/build-images.sh

bench: npm-deps system-deps
	node test/bench/run.ts

run: npm-deps
	npm run -s dev

gateway: npm-deps
	npm run -s gateway

operator: npm-deps
	npm run -s operator

typecheck: npm-deps
	npm run -s typecheck

test-unit: npm-deps
	npm run -s test:unit

test-integration: deps
	npm run -s test:integration

test-e2e: deps
	npm run -s test:e2e

test: deps
	npm run -s typecheck
	npm run -s test:unit
	npm run -s test:integration
	npm run -s test:e2e
	# The benchmark harness, briefly, so it cannot rot: it checks that figures are sane, never that they are fast.
	node test/bench/run.ts --smoke
	BENCH_BROADCASTS=5000 node --expose-gc test/bench/memory-store.ts
