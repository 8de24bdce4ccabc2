# imgmesh — the two commands a fresh Debian/Ubuntu machine needs:
#   make dev    run the whole mesh locally with a demo Source and print a URL
#   make test   install what tests need, run every test, stop what it started
# Also: make bench (W1/W2/W4/scale/libvips floor → docs/benchmarks.md),
# make lint, make fuzz (FUZZ_SECONDS per target, default 60).

CARGO ?= cargo
JOBS ?= 2
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: dev test bench lint deps build proto-baseline fuzz

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build -j$(JOBS) --workspace --bins

dev: deps
	@scripts/dev.sh

# Tests start their own redis-server and s3s-fs on free ports and the four
# service binaries as processes; each stops them when it ends. The registry's
# suite also runs on PostgreSQL (a database per test, dropped after it), so a
# server must answer at 127.0.0.1:5432: ensure-postgres.sh starts one.
test: build
	@scripts/ensure-postgres.sh
	$(CARGO) nextest run -j$(JOBS) --build-jobs $(JOBS) --workspace --no-fail-fast

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -j$(JOBS) --workspace --all-targets -- -D warnings
	tools/node_modules/.bin/buf lint
	tools/node_modules/.bin/buf format --diff --exit-code
	tools/node_modules/.bin/buf breaking --against .ci/proto-baseline.json

# Records the current protos as the baseline `buf breaking` checks against
# (run when a release is cut; CI refuses changes that break it).
proto-baseline: deps
	tools/node_modules/.bin/buf build --exclude-source-info -o .ci/proto-baseline.json

bench: deps
	@scripts/install-deps.sh bench
	@scripts/bench.sh

# Every fuzz target under AFL++ (cargo-afl on stable; see fuzz/README.md)
# for FUZZ_SECONDS each; fails when one found a crash.
FUZZ_SECONDS ?= 60
fuzz: deps
	fuzz/run.sh $(FUZZ_SECONDS)
