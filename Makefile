# Gatehouse: `make run` and `make test` do all set-up on a fresh Debian 12
# machine with the Swift toolchain (system packages, build, run / test).

SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build needs (C libraries behind the system-library targets).
BUILD_PACKAGES := libmicrohttpd-dev libssl-dev libargon2-dev libsqlite3-dev pkg-config
# Debian packages only the tests and benchmarks need.
TEST_PACKAGES := wrk apache2-utils
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps test-deps build build-debug run test bench format clean

all: build

# Installs whichever of the given Debian packages are missing (sudo only when not root).
define install_missing
	@missing=$$(for package in $(1); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || echo $$package; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(BUILD_PACKAGES))

test-deps: deps
	$(call install_missing,$(TEST_PACKAGES))

build: deps
	$(SWIFT) build -c release --product gatehouse

# Starts the service on its embedded defaults (127.0.0.1:8080, data in ./data).
run: build
	.build/release/gatehouse

# Builds everything in debug (with the gatehouse binary the end-to-end tests
# start) and runs every test.
test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build 2>&1 | tee .build/test-output.txt; \
		exit $${PIPESTATUS[0]}

# Benchmarks on loopback, bounded, one run: wrk against a bare libmicrohttpd
# handler (the ceiling) and gatehouse (/protected, /auth/verify once it exists,
# /login, /protected during a login storm), peak RSS, an RSS soak, and the JOSE
# micro-benchmark; prints a Markdown table and writes .build/bench-results.md.
# Servers are pinned to CPU 0 with one thread, wrk to CPU 1.
# Variables (environment), see Benchmarks/bench.sh for all of them:
#   BENCH_SECONDS=5        seconds per wrk run
#   BENCH_SOAK_SECONDS=300 soak length (0 skips it); the default run takes about 6 minutes after the build
#   BENCH_CONNECTIONS=50   wrk connections for the throughput runs
#   BENCH_SCRATCH_PATH=    SwiftPM scratch path (default .build)
# Quick run: BENCH_SECONDS=2 BENCH_SOAK_SECONDS=0 make bench
bench: test-deps build
	SWIFT="$(SWIFT)" bash Benchmarks/bench.sh

format:
	swift-format format --in-place --recursive Package.swift Sources Tests Benchmarks

clean:
	rm -rf .build
