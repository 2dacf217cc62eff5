# vidsight — the two commands that matter:
#   make run    installs what is missing, builds in release, serves on 127.0.0.1:8080
#   make test   formatting, lints and every test
ADDR ?= 127.0.0.1:8080
DATA_DIR ?= ./data
CARGO ?= cargo

.PHONY: run test deps test-deps build fmt lint unit matrix test-cluster bench clean

deps:
	@scripts/install-deps.sh

# what the tests need on top: the S3 test server, PostgreSQL and Redis running
test-deps:
	@scripts/install-deps.sh --test
	@scripts/services.sh

build: deps
	$(CARGO) build --release --locked --bin vidsight

run: build
	./target/release/vidsight serve --addr $(ADDR) --data-dir $(DATA_DIR)

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

# the integration suite again, on the production backends (PostgreSQL, RabbitMQ, S3, Redis)
matrix:
	TEST_BACKENDS=production $(CARGO) test --locked -p vidsight --test api --test auth --test live --test uploads

# the production topology on this machine: nginx, 2 api, 2 workers, PostgreSQL, RabbitMQ,
# Redis, S3; a worker SIGKILLed mid-job and RabbitMQ restarted (runs alone: it stops RabbitMQ)
test-cluster:
	$(CARGO) test --locked -p vidsight --test cluster -- --ignored --nocapture

test: test-deps fmt lint unit matrix test-cluster

bench: build test-deps
	scripts/bench.sh
	scripts/bench-production.sh

clean:
	$(CARGO) clean
