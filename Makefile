# modelmux: `make dev` serves the gateway locally, `make test` runs every check.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PORT ?= 8787

.PHONY: dev test setup build size seed fmt clippy unit integration dev-check compat browser dry-run bench bench-smoke fuzz clean

# The worker's wasm, gzipped, may not pass this (`make size`, part of `make test`).
WASM_BUDGET_GZ := 975000

dev: setup
	@$(MAKE) --no-print-directory build
	@bash scripts/seed
	@PORT=$(PORT) bash scripts/dev

# Each phase in turn, with what it took (README "The two commands" has a fresh run's).
PHASES := fmt clippy unit build size integration dev-check compat browser dry-run bench-smoke
test: setup
	@set -e; for p in $(PHASES); do t=$$(date +%s); $(MAKE) --no-print-directory $$p; echo "test: $$p took $$(( $$(date +%s) - t ))s"; done

setup:
	@t=$$(date +%s); bash scripts/setup; d=$$(( $$(date +%s) - t )); [ $$d -lt 5 ] || echo "setup took $${d}s"

build:
	@mkdir -p target && $(ENV) bash scripts/build 3>&1 > target/build.log 2>&1 || { tail -40 target/build.log; exit 1; }
	@grep -h "^build: up to date" target/build.log || true
	@echo "build: build/index_bg.wasm $$(stat -c %s build/index_bg.wasm) bytes, $$(gzip -9c build/index_bg.wasm | wc -c) gzipped (budget $(WASM_BUDGET_GZ))"

size: build
	@gz=$$(gzip -9c build/index_bg.wasm | wc -c); [ $$gz -le $(WASM_BUDGET_GZ) ] || { echo "size: the worker is $$gz bytes gzipped, over its budget of $(WASM_BUDGET_GZ)" >&2; exit 1; }

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

# scripts/dev (what `make dev` runs) with a stand-in wrangler: slow builds, early exits,
# stalls; then the real one, serving the demo model.
dev-check: build
	$(ENV) node --test --test-concurrency=1 tests/dev/

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
	cargo run -q --manifest-path bench/memory/Cargo.toml --target-dir target/bench-memory
	$(ENV) $(PIN) node bench/run.mjs

# Every part of `make bench`, briefly: proves it runs, not how fast. The criterion
# benches run once each in the test profile (no release build); no peers, no oha.
bench-smoke: setup build
	@bash scripts/bench-setup --smoke
	set -o pipefail; cargo test -q --bench pipeline 2>&1 | tail -3
	cargo check -q --manifest-path bench/memory/Cargo.toml --target-dir target/bench-memory
	$(ENV) $(PIN) node bench/run.mjs --smoke

clean:
	rm -rf build target .wrangler

# The long fuzz campaign (`make test` runs the same targets with 256 inputs each):
# FUZZ_CASES inputs per target, with overflow checks on; prints each target's count.
FUZZ_CASES ?= 100000
fuzz:
	set -o pipefail; PROPTEST_CASES=$(FUZZ_CASES) cargo test --profile fuzz --test fuzz -- --nocapture --test-threads=2 2>&1 | grep -E '^fuzz |^test result|panicked|failed'
