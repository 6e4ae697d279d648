# The two commands a user needs: `make up` and `make test`. See README.md.
CARGO ?= cargo
PODWAY := target/release/podway

.PHONY: up test build bench deps-run deps-test fmt lint clean

up: deps-run build
	$(PODWAY) up

build:
	$(CARGO) build --release --bin podway

test: deps-test
	$(CARGO) build --release --bin podway
	PODWAY_BIN=$(CURDIR)/$(PODWAY) $(CARGO) test --release --workspace --no-fail-fast -- --test-threads=2

bench: deps-test build
	bench/run.sh

deps-run:
	scripts/install-deps.sh run

deps-test:
	scripts/install-deps.sh test

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
