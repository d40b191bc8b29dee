# Gatehouse: `make run` and `make test` do all set-up on a fresh Debian 12
# machine with the Swift toolchain (system packages, build, run / test).

SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build needs (C libraries behind the system-library targets).
BUILD_PACKAGES := libmicrohttpd-dev libssl-dev libargon2-dev libsqlite3-dev pkg-config
# Debian packages only the tests and benchmarks need.
TEST_PACKAGES := wrk apache2-utils
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps test-deps build build-debug run test format clean

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

format:
	swift-format format --in-place --recursive Package.swift Sources Tests Benchmarks

clean:
	rm -rf .build
