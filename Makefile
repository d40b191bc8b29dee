# Gatehouse: `make run` and `make test` do all set-up on a fresh Debian 12
# machine with the Swift toolchain (system packages, build, run / test).

SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build needs (C libraries behind the system-library targets).
BUILD_PACKAGES := libmicrohttpd-dev libssl-dev libargon2-dev libsqlite3-dev libpq-dev pkg-config
# Debian packages only the tests and benchmarks need (nginx: the reverse-proxy
# tests start their own on loopback and stop it; postgresql: the PostgreSQL
# store tests run their own server (initdb in a temporary directory, on a
# loopback port, as the postgres user) and stop it; nothing is left running).
TEST_PACKAGES := wrk apache2-utils nginx postgresql
# Debian packages only `make bench` needs besides those: valgrind counts the
# instructions a request executes (objcopy, in binutils, strips the copy it runs).
BENCH_PACKAGES := valgrind binutils
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps test-deps venv build build-debug run test bench format clean \
	fuzz fuzz-smoke fuzz-build sanitize sanitize-smoke

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

# MARK: - Python for the tests and benchmarks (.venv)

# The interop tests check Gatehouse's tokens with libraries nobody here wrote
# (PyJWT, ...), run from a virtual environment in the repository, .venv/
# (gitignored), made from the pinned Tests/Interop/requirements.txt. The Swift
# tests run .venv/bin/python (or $GATEHOUSE_TEST_PYTHON). pip runs again only
# when requirements.txt changed: .venv/requirements.installed is the copy it
# last installed. The venv is made with $(PYTHON) when it has the venv module
# (a pyenv or python.org build does), else with Debian's python3, after
# installing python3-venv. `make build` and `make run` need no Python.
PYTHON ?= python3
VENV := .venv
VENV_REQUIREMENTS := Tests/Interop/requirements.txt
VENV_STAMP := $(VENV)/requirements.installed

venv:
	@if cmp -s $(VENV_REQUIREMENTS) $(VENV_STAMP) && $(VENV)/bin/python -c '' 2>/dev/null; then exit 0; fi; \
	if ! $(VENV)/bin/python -c '' 2>/dev/null; then \
		python="$(PYTHON)"; \
		if ! "$$python" -c 'import ensurepip, venv' 2>/dev/null; then \
			python=/usr/bin/python3; \
			if ! dpkg-query -W -f='$${Status}' python3-venv 2>/dev/null | grep -q "install ok installed"; then \
				echo "Installing Debian packages: python3-venv ($(PYTHON) cannot make a venv)"; \
				$(SUDO) apt-get update -qq && \
				DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
					python3-venv || exit 1; \
			fi; \
		fi; \
		echo "Creating $(VENV) with $$("$$python" --version 2>&1) ($$(command -v "$$python"))"; \
		"$$python" -m venv --clear $(VENV) || exit 1; \
	fi; \
	echo "Installing $(VENV_REQUIREMENTS) into $(VENV)"; \
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-input \
		-r $(VENV_REQUIREMENTS) || exit 1; \
	cp $(VENV_REQUIREMENTS) $(VENV_STAMP)

# MARK: - Build, run, test

# The release binary, built as docker/Dockerfile builds it: the Swift standard
# library and Foundation linked in statically, so it needs only the C
# libraries' Debian runtime packages (what the image installs, and what
# DeploymentTests checks against this very binary).
RELEASE_BUILD_FLAGS := -c release --product gatehouse --static-swift-stdlib

build: deps
	$(SWIFT) build $(RELEASE_BUILD_FLAGS)

# Starts the service on its embedded defaults (127.0.0.1:8080, data in ./data).
run: build
	.build/release/gatehouse

# Suites whose assertions are about time (request deadlines, shutdown grace,
# kills under load, latency while flooded): `make test` runs them on their own
# after the rest, since with every other suite running beside them on two
# cores, connecting 500 sockets took 7 s and a request took over 5 s to reach
# the server (seen in CI), and they measured the machine instead of Gatehouse.
# RevocationFeedTimingTests: a `gatehouse users` change reaches the service within 1 s.
# PostgresOutageUnderLoadTests: PostgreSQL stopped under load, ready within 10 s of its return.
# They run one at a time (--no-parallel, about a minute): the load of one (six client threads and
# PostgreSQL in the outage test) once starved another's 150 ms sleep past a 1.5 s request in CI.
TIMING_TESTS ?= ConnectionLimitTests|ShutdownTests|LoginFloodTests|CrashSafetyTests|ShutdownUnderLoadTests|RevocationFeedTimingTests|RevocationFanOutTimingTests|PostgresOutageUnderLoadTests

# Builds everything in debug (with the gatehouse binary the end-to-end tests
# start) and runs every test. `build` first: DeploymentTests checks the release
# binary (.build/release/gatehouse) against docker/Dockerfile.
test: test-deps venv build
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(TIMING_TESTS)' 2>&1 | tee .build/test-output.txt; \
		exit $${PIPESTATUS[0]}
	$(SWIFT) test --skip-build --no-parallel --filter '$(TIMING_TESTS)' 2>&1 | tee -a .build/test-output.txt; \
		exit $${PIPESTATUS[0]}
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory sanitize-smoke

# Benchmarks on loopback, bounded, one run: wrk against a bare libmicrohttpd
# handler (the ceiling) and gatehouse (/protected, /login, /protected during a
# login storm, /auth/verify with each signing algorithm), peak RSS, an RSS soak,
# the JOSE micro-benchmark, and two instances behind nginx on SQLite and on a
# real PostgreSQL (nginx and postgresql come with test-deps); prints a Markdown
# table and writes .build/bench-results.md. Servers are pinned to CPU 0 with
# one thread, wrk to CPU 1.
# Variables (environment), see Benchmarks/bench.sh for all of them:
#   BENCH_SECONDS=5        seconds per wrk run
#   BENCH_SOAK_SECONDS=300 soak length (0 skips it); the default run takes about 9 minutes after the build
#   BENCH_CONNECTIONS=50   wrk connections for the throughput runs
#   BENCH_CLUSTER_ROUNDS=2 rounds of the two-instance SQLite/PostgreSQL comparison (0 skips it; ~2.5 minutes)
#   BENCH_ONLY=cluster     run only that comparison (Benchmarks/cluster.sh)
#   BENCH_SCRATCH_PATH=    SwiftPM scratch path (default .build)
# Quick run: BENCH_SECONDS=2 BENCH_SOAK_SECONDS=0 make bench
bench: test-deps venv build
	$(call install_missing,$(BENCH_PACKAGES))
	SWIFT="$(SWIFT)" bash Benchmarks/bench.sh

format:
	swift-format format --in-place --recursive Package.swift Sources Tests Benchmarks

clean:
	rm -rf .build

# MARK: - Fuzzing and sanitizers (Fuzz/README.md)

# libFuzzer targets (Fuzz/FuzzJOSE, Fuzz/FuzzJSON), each run for FUZZ_SECONDS
# from its seed corpus Fuzz/Corpus/<name> (read only) plus the inputs it found
# before in .build/fuzz-corpus/<name> (new ones go there, never into git). A
# crash, a leak (LeakSanitizer, part of ASan), a run over FUZZ_TIMEOUT seconds
# on one input (a hang) or over FUZZ_RSS_MB fails the target and saves the
# input as .build/fuzz-artifacts/<target>-crash-*, -leak-*, -timeout-*, -oom-*.
# Reproduce with: .build/fuzz/release/<target> <that file>
# Built optimised (-c release) for speed, with ASan, and with the standard
# library's debug checks kept (-assert-config Debug: unsafe-buffer subscripts
# are bounds-checked as in a debug build). SwiftPM's --sanitize takes one
# sanitizer per flag and the compiler keeps only the last -sanitize=, so both
# go in one -Xswiftc; --sanitize=fuzzer is still needed for SwiftPM to build
# the targets as libraries that libFuzzer's main() drives. Linked with the
# toolchain's lld: gold warns about ASan's local symbols on every link.
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 60
FUZZ_TIMEOUT ?= 10
FUZZ_RSS_MB ?= 2048
FUZZ_TARGETS := FuzzJOSE FuzzJSON
FUZZ_SCRATCH := .build/fuzz
FUZZ_BUILD := $(SWIFT) build -c release --scratch-path $(FUZZ_SCRATCH) --sanitize=fuzzer \
	-Xswiftc -sanitize=fuzzer,address -Xswiftc -assert-config -Xswiftc Debug -Xswiftc -use-ld=lld

fuzz-build: deps
	@for target in $(FUZZ_TARGETS); do \
		$(FUZZ_BUILD) --product $$target || exit 1; \
	done

# Runs every fuzz target for $(1) seconds, one after the other.
define run_fuzzers
	@mkdir -p .build/fuzz-artifacts
	@for target in $(FUZZ_TARGETS); do \
		name=$${target#Fuzz}; \
		mkdir -p .build/fuzz-corpus/$$name; \
		echo "== $$target for $(1) s (corpus Fuzz/Corpus/$$name + .build/fuzz-corpus/$$name)"; \
		ASAN_OPTIONS=detect_leaks=1:symbolize=1 \
		$(FUZZ_SCRATCH)/release/$$target \
			-max_total_time=$(1) -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=$(FUZZ_RSS_MB) \
			-detect_leaks=1 -print_final_stats=1 \
			-artifact_prefix=.build/fuzz-artifacts/$$target- \
			.build/fuzz-corpus/$$name Fuzz/Corpus/$$name \
			> .build/fuzz-artifacts/$$target.log 2>&1; \
		status=$$?; \
		grep -E '^#[0-9]+[[:space:]]+DONE|^stat::|SUMMARY|==[0-9]+==ERROR|Fatal error|artifact' .build/fuzz-artifacts/$$target.log; \
		if [ $$status -ne 0 ]; then \
			tail -n 60 .build/fuzz-artifacts/$$target.log; \
			echo "$$target failed (exit $$status); log .build/fuzz-artifacts/$$target.log"; \
			exit $$status; \
		fi; \
	done
endef

# FUZZ_SECONDS (default 600) per target.
fuzz: fuzz-build
	$(call run_fuzzers,$(FUZZ_SECONDS))

# What CI runs (in `make test`): FUZZ_SMOKE_SECONDS (default 60) per target.
fuzz-smoke: fuzz-build
	$(call run_fuzzers,$(FUZZ_SMOKE_SECONDS))

# Sanitizer builds live in their own scratch paths (.build/asan, .build/tsan),
# so they never invalidate the normal debug build. Suppressions (each with why):
# Fuzz/lsan.supp (leaks in the toolchain's Foundation and XCTest, and Swift
# weak-reference side tables LSan cannot see), Fuzz/tsan.supp.
ASAN_RUN_OPTIONS := ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/Fuzz/lsan.supp:print_suppressions=0
TSAN_RUN_OPTIONS := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/Fuzz/tsan.supp
# Tests run one at a time (--no-parallel): a sanitizer slows the code two to
# five times, and with forty tests at once the ones with time bounds (slow-loris
# cuts, per-connection deadlines) miss them. SANITIZE_SKIP names tests whose
# bounds hold only at full speed: the login flood expects at most 300 password
# checks, but its token buckets refill while TSan stretches it to 5 s or more,
# and under ASan its RSS bound counts ASan's quarantine.
SANITIZE_SKIP ?= LoginFloodTests
SANITIZE_TEST_FLAGS := --skip-build --no-parallel $(if $(SANITIZE_SKIP),--skip '$(SANITIZE_SKIP)')
# What sanitize-smoke runs: the end-to-end tests, the service's own threads
# over libmicrohttpd, SQLite and OpenSSL.
SANITIZE_SMOKE_FILTER ?= EndToEndTests

# The whole test suite under AddressSanitizer (with LeakSanitizer), then under
# ThreadSanitizer.
sanitize: test-deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build/asan
	$(ASAN_RUN_OPTIONS) $(SWIFT) test --sanitize=address --scratch-path .build/asan $(SANITIZE_TEST_FLAGS)
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build/tsan
	$(TSAN_RUN_OPTIONS) $(SWIFT) test --sanitize=thread --scratch-path .build/tsan $(SANITIZE_TEST_FLAGS)

# What CI runs (in `make test`): ThreadSanitizer over the end-to-end tests.
sanitize-smoke: test-deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build/tsan
	$(TSAN_RUN_OPTIONS) $(SWIFT) test --sanitize=thread --scratch-path .build/tsan $(SANITIZE_TEST_FLAGS) \
		--filter '$(SANITIZE_SMOKE_FILTER)'
