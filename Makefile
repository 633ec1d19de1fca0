# modelmux: `make dev` serves the gateway locally, `make test` runs every check.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PORT ?= 8787

.PHONY: dev test setup build seed fmt clippy unit integration compat browser dry-run bench bench-smoke fuzz clean

dev: setup
	@$(MAKE) --no-print-directory build
	@bash scripts/seed
	@PORT=$(PORT) bash scripts/dev

test: setup fmt clippy unit build integration compat browser dry-run bench-smoke

setup:
	@bash scripts/setup

build:
	@mkdir -p target && $(ENV) bash scripts/build > target/build.log 2>&1 || { tail -40 target/build.log; exit 1; }
	@echo "build: build/index_bg.wasm $$(stat -c %s build/index_bg.wasm) bytes, $$(gzip -9c build/index_bg.wasm | wc -c) gzipped"

seed:
	@bash scripts/seed

fmt:
	cargo fmt --check

# Native with rustup's toolchain, wasm32 with Debian's (the only one with wasm32 std).
clippy:
	cargo clippy --all-targets -- -D warnings
	$(ENV) cargo clippy --release --target wasm32-unknown-unknown -- -D warnings

unit:
	cargo test

integration:
	$(ENV) node --test --test-concurrency=1 tests/integration/

compat:
	$(ENV) .venv/bin/python -m pytest -q tests/compat
	$(ENV) node --test tests/compat/

browser:
	$(ENV) node --test tests/browser/

dry-run:
	@$(ENV) d=$$(mktemp -d) && wrangler deploy --dry-run --outdir $$d >/dev/null && echo "wrangler deploy --dry-run: ok ($$(du -sh $$d | cut -f1))" && rm -rf $$d

# Servers pinned to core 0, the load generator to core 1 (see bench/run.mjs).
PIN := $(shell command -v taskset >/dev/null && [ $$(nproc) -gt 1 ] && echo "taskset -c 0")

# Figures side by side with the forwarder floor and the peers (README "Benchmarks").
bench: setup build
	@bash scripts/bench-setup
	set -o pipefail; cargo bench --bench pipeline -- --noplot 2>&1 | grep -E '^[a-z]|time:|thrpt:'
	$(ENV) $(PIN) node bench/run.mjs

# Every part of `make bench`, briefly: proves it runs, not how fast.
bench-smoke: setup build
	@bash scripts/bench-setup
	set -o pipefail; cargo bench --bench pipeline -- --quick --noplot 2>&1 | grep -E '^[a-z]|time:|thrpt:'
	$(ENV) $(PIN) node bench/run.mjs --smoke

clean:
	rm -rf build target .wrangler

# The long fuzz campaign (`make test` runs the same targets with 256 inputs each):
# FUZZ_CASES inputs per target, with overflow checks on; prints each target's count.
FUZZ_CASES ?= 100000
fuzz:
	set -o pipefail; PROPTEST_CASES=$(FUZZ_CASES) cargo test --profile fuzz --test fuzz -- --nocapture --test-threads=2 2>&1 | grep -E '^fuzz |^test result|panicked|failed'
