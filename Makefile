# infra-fleet: every command a developer or CI needs. `make help` lists them.

SHELL := /bin/bash
VENV := .venv
ARCH ?= arm64
FN ?= cluster-scheduler
EVENT ?= events/scheduler-plan.json
FUNCTIONS := $(notdir $(wildcard functions/*))
LAMBDA_DIR := $(or $(CARGO_TARGET_DIR),target)/lambda

# Tools installed by `make setup` (moto_server, cargo-lambda, zig) come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup build test fmt lint invoke local-aws demo

help:
	@echo "make setup                      Python venv with moto, cargo-lambda and zig (.venv); npm test fixtures"
	@echo "make test                       all tests (unit + integration against moto)"
	@echo "make demo                       the scheduler's morning and evening, locally on moto"
	@echo "make build [ARCH=x86-64]        release zips under target/lambda/ (arm64 by default)"
	@echo "make invoke FN=... EVENT=...    run one function once on an event file"
	@echo "make local-aws                  moto with the fleet table and bus, for make invoke"
	@echo "make fmt lint                   rustfmt, clippy -D warnings"

setup: $(VENV)/.installed tests/support/node_modules/.installed

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# GitHub's published webhook examples, which the DORA tests sign and send.
tests/support/node_modules/.installed: tests/support/package.json
	cd tests/support && npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

build: setup
	cargo lambda build --release $(addprefix --bin ,$(FUNCTIONS)) $(if $(filter x86-64 x86_64,$(ARCH)),--x86-64,--arm64) --output-format zip
	@for f in $(FUNCTIONS); do ls -l $(LAMBDA_DIR)/$$f/bootstrap.zip | awk -v f=$$f '{printf "%-20s %8.1f KiB\n", f, $$5/1024}'; done

# The demo test runs the function binaries as the demo does, so build them first.
test: setup
	cargo build --workspace --bins
	cargo test --workspace --all-targets

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings

invoke:
	cargo run --quiet -p $(FN) -- --event $(EVENT)

local-aws: setup
	cargo run --quiet -p fleet-tests --bin local-aws

demo: setup
	cargo build --quiet -p cluster-scheduler
	cargo run --quiet -p fleet-tests --bin demo -- $(ARGS)
