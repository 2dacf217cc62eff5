# vidsight — the two commands that matter:
#   make run    installs what is missing, builds in release, serves on 127.0.0.1:8080
#   make test   formatting, lints and every test
ADDR ?= 127.0.0.1:8080
DATA_DIR ?= ./data
CARGO ?= cargo

.PHONY: run test deps test-deps web web-test build fmt lint unit unit-baseline e2e matrix test-cluster bench bench-accuracy fuzz clean

deps:
	@scripts/install-deps.sh

# what the tests need on top: the S3 test server, PostgreSQL and Redis running
test-deps:
	@scripts/install-deps.sh --test
	@scripts/services.sh

# the web app (React + TypeScript + Vite): built into web/dist, which the binary embeds.
# (vite is pinned to 8.3.4: 8.4 names an optional dependency the registry here does not
# have, and `npm ci` then refuses the lock file)
web:
	cd web && npm ci --no-audit --no-fund && npm run build

# the web app's type check (its API client is generated from docs/openapi.json, so an API
# change that breaks the UI fails here) and unit tests
web-test:
	cd web && npm ci --no-audit --no-fund && npm run gen:api && npx tsc --noEmit && npx vitest run

build: deps web
	$(CARGO) build --release --locked --bin vidsight

run: build
	./target/release/vidsight serve --addr $(ADDR) --data-dir $(DATA_DIR)

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

# the analyzer's unit tests again on a processor without AVX2 (qemu-user emulating a
# Nehalem): its pixel loops are compiled for plain x86-64 and for AVX2 and chosen at run
# time, and `unit` runs only the AVX2 build on this machine
unit-baseline:
	@if [ "$$(uname -m)" = x86_64 ]; then \
	  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="qemu-x86_64 -cpu Nehalem" \
	    $(CARGO) test --locked -p vidsight-analysis --lib; \
	else echo "unit-baseline: not an x86-64 machine, nothing to emulate"; fi

# the integration suite again, on the production backends (PostgreSQL, RabbitMQ, S3, Redis)
matrix:
	TEST_BACKENDS=production $(CARGO) test --locked -p vidsight --test api --test auth --test live --test uploads --test providers

# the web app end to end: the debug server and the built app, driven through Chromium
# (playwright-core, web/e2e/app.e2e.mjs); screenshots and logs land in target/e2e
e2e:
	$(CARGO) build --locked --bin vidsight
	cd web && npm ci --no-audit --no-fund && npm run build && node e2e/app.e2e.mjs

# the production topology on this machine: nginx (serving web/dist when built), 2 api,
# 2 workers, PostgreSQL, RabbitMQ, Redis, S3; a worker SIGKILLed mid-job and RabbitMQ
# restarted (runs alone: it stops RabbitMQ)
test-cluster:
	$(CARGO) test --locked -p vidsight --test cluster -- --ignored --nocapture

test: test-deps fmt lint web-test unit unit-baseline e2e matrix test-cluster

bench: build test-deps
	scripts/bench.sh
	scripts/bench-production.sh
	python3 bench/speed.py

# shot-boundary accuracy: vidsight and PySceneDetect (installed into a virtualenv under
# target/) on a generated corpus with known transitions and on the real clips
bench-accuracy: build
	python3 bench/accuracy.py

# the hand-written parsers of untrusted uploads under libFuzzer (needs a nightly
# toolchain; FUZZ_SECONDS, 300 by default)
fuzz: test-deps
	scripts/fuzz.sh

clean:
	$(CARGO) clean
