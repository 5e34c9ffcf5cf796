# infra-fleet: every command a developer or CI needs. `make help` lists them.

SHELL := /bin/bash
VENV := .venv
ARCH ?= arm64
FN ?= cluster-scheduler
EVENT ?= events/scheduler-plan.json
FUNCTIONS := $(notdir $(wildcard functions/*))
# What the demo runs: the six function binaries and the demo itself (not the bench and
# local tools); the same features as a workspace build, so nothing is built twice.
DEMO_BUILD := $(addprefix -p ,$(FUNCTIONS)) -p fleet-tests $(addprefix --bin ,$(FUNCTIONS) demo)
LAMBDA_DIR := $(or $(CARGO_TARGET_DIR),target)/lambda

# Tools installed by `make setup` (moto_server, cargo-lambda, zig) come first on PATH, then
# the cargo subcommands built into .tools (cargo-deny, cargo-fuzz).
TOOLS := $(CURDIR)/.tools
export PATH := $(CURDIR)/$(VENV)/bin:$(TOOLS)/bin:$(PATH)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))
# Where cargo deny keeps the RustSec advisory database. Its host is out of this machine's
# reach: with a clone there (README, "Dependencies") advisories are checked, without one
# that check is skipped, saying so. Licenses, bans and sources are always checked.
ADVISORY_DBS ?= $(or $(CARGO_HOME),$(HOME)/.cargo)/advisory-dbs

STACK ?= fleet
CONFIG ?= infra/fleet.toml
CONFIG_PARAMETER ?= /fleet/config
PARAMS ?=
DEPLOY_VENV := .venv-deploy

.PHONY: help setup build test infra-check deny fuzz fmt lint invoke local-aws demo demo-ready demo-bins bench deploy deploy-preflight deploy-spoke deploy-fn destroy

help:
	@echo "make setup                      Python venv (.venv: moto, cfn-lint, checkov, cargo-lambda, zig); npm test fixtures"
	@echo "make test                       all tests (unit + integration against moto)"
	@echo "make demo [ARGS=\"--date 2027-03-29\"] a day of the fleet (any Monday), locally on moto"
	@echo "make build [ARCH=x86-64]        release zips under target/lambda/ (arm64 by default)"
	@echo "make invoke FN=... EVENT=...    run one function once on an event file"
	@echo "make local-aws                  moto with the fleet table and bus, for make invoke"
	@echo "make fmt lint                   rustfmt, clippy -D warnings"
	@echo "make infra-check                cfn-lint and checkov on infra/template.yaml"
	@echo "make deny                       cargo deny: licenses, bans, sources; advisories when a database is there"
	@echo "make fuzz [FUZZ_SECONDS=60]     every fuzz target under libFuzzer for FUZZ_SECONDS each"
	@echo "make bench [SECTIONS=\"4 6\"]     measure cold start, memory, drain, DORA, ingest, fan-out, API calls -> BENCHMARKS.md"
	@echo "make deploy PREFIX=... [STACK=fleet] [CONFIG=infra/fleet.toml] [PARAMS='Name=value ...']"
	@echo "                                SAM build (cargo-lambda) and deploy of every function"
	@echo "make deploy-spoke ACCOUNT=... PREFIX=... ACCOUNT_PROFILE=... [REGIONS='us-east-1 eu-central-1'] (ACCOUNT=hub: no profile)"
	@echo "                                the spoke stack (infra/spoke.yaml) in one [[account]] (ACCOUNT=hub: the hub account's other regions, forwarding only)"
	@echo "make deploy-fn FN=...            new code for one deployed function (cargo lambda deploy)"
	@echo "make destroy [STACK=fleet]       delete the stack (the state table is kept)"

setup: $(VENV)/.installed tests/support/node_modules/.installed

# The demo needs only the local AWS (moto); the tests add the infra checks and the Lambda
# build tools to the same venv. --no-compile: Python compiles what it imports, when it does.
$(VENV)/.demo-installed: requirements-demo.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -r requirements-demo.txt
	touch $@

$(VENV)/.installed: requirements-dev.txt $(VENV)/.demo-installed
	$(VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -r requirements-dev.txt
	touch $@

# GitHub's published webhook examples, which the DORA tests sign and send.
tests/support/node_modules/.installed: tests/support/package.json
	cd tests/support && npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

build: setup
	cargo lambda build --release $(addprefix --bin ,$(FUNCTIONS)) $(if $(filter x86-64 x86_64,$(ARCH)),--x86-64,--arm64) --output-format zip
	@for f in $(FUNCTIONS); do ls -l $(LAMBDA_DIR)/$$f/bootstrap.zip | awk -v f=$$f '{printf "%-20s %8.1f KiB\n", f, $$5/1024}'; done

# The demo test runs the function binaries as the demo does, so build them first. The
# release zips are built too: their sizes are part of what a change is checked for. On
# this x86-64 host they need no cross linker: plain cargo (CARGO_LAMBDA_COMPILER=cargo)
# instead of zig, whose linker wrapper's path differs per clone and made every clone
# rebuild the whole release graph (about 20 minutes) whatever CARGO_TARGET_DIR kept.
# libtest runs each test on a 2 MiB thread; the functions poll their handler on the
# process's main thread (#[tokio::main]: 8 MiB). The tests give the handlers the stack
# they have in Lambda: a debug build's tick nests futures deeper than a release build's.
test: export RUST_MIN_STACK = 8388608
test: setup infra-check deny
	cargo build --workspace --bins
	cargo test --workspace --all-targets
	CARGO_LAMBDA_COMPILER=cargo $(MAKE) --no-print-directory build ARCH=x86-64

# The SAM template, then the CloudFormation SAM expands it into (checkov does not expand
# SAM policies by itself). CKV_AWS_258 (a Function URL with AuthType NONE) is the
# webhook's by design: senders cannot sign SigV4, the function verifies each request.
TRANSFORMED := $(or $(CARGO_TARGET_DIR),target)/template.cfn.json
infra-check: setup
	cfn-lint infra/template.yaml infra/spoke.yaml
	checkov --quiet --compact --skip-download --framework cloudformation -f infra/template.yaml -f infra/spoke.yaml
	@mkdir -p $(dir $(TRANSFORMED))
	python infra/sam-transform.py infra/template.yaml > $(TRANSFORMED)
	cfn-lint $(TRANSFORMED)
	checkov --quiet --compact --skip-download --framework cloudformation --skip-check CKV_AWS_258 -f $(TRANSFORMED)

$(TOOLS)/bin/cargo-deny:
	cargo install cargo-deny --version 0.20.2 --locked --root $(TOOLS)

# Without an advisory database the check fails, unless ALLOW_NO_ADVISORIES=1 says that
# skipping it is known and accepted (CI here cannot reach the database's host).
deny: $(TOOLS)/bin/cargo-deny
	cargo deny check licenses bans sources
	@ls -d $(ADVISORY_DBS)/advisory-db-*/crates >/dev/null 2>&1 || \
		timeout 120 cargo deny fetch db >/dev/null 2>&1 || true
	@if ls -d $(ADVISORY_DBS)/advisory-db-*/crates >/dev/null 2>&1; then \
		cargo deny --offline check advisories; \
	elif [ "$(ALLOW_NO_ADVISORIES)" = 1 ]; then \
		echo "cargo deny: advisories NOT CHECKED: no advisory database under $(ADVISORY_DBS); ALLOW_NO_ADVISORIES=1 accepts that (see README, Dependencies)"; \
	else \
		echo "cargo deny: no advisory database under $(ADVISORY_DBS): clone one there (README, Dependencies) or set ALLOW_NO_ADVISORIES=1 to run without the advisory check" >&2; \
		exit 1; \
	fi

$(TOOLS)/bin/cargo-fuzz:
	cargo install cargo-fuzz --version 0.13.2 --locked --root $(TOOLS)

# libFuzzer without sanitizers, so it builds on the stable toolchain; seeds are the sample
# events and the example config. A crash stops here and leaves its input in fuzz/artifacts.
fuzz: $(TOOLS)/bin/cargo-fuzz
	cp Cargo.lock fuzz/Cargo.lock
	@for t in $(FUZZ_TARGETS); do mkdir -p fuzz/corpus/$$t; done
	@for t in $(filter-out config,$(FUZZ_TARGETS)); do cp events/*.json fuzz/corpus/$$t/; done
	cp infra/fleet.example.toml fuzz/corpus/config/
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		cargo fuzz run --sanitizer none $$t fuzz/corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done

fmt:
	cargo fmt --all

# Clippy, then the docs: every public item of `shared` is documented (#![deny(missing_docs)])
# and no doc link is broken.
lint:
	cargo clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --lib

invoke:
	cargo run --quiet -p $(FN) -- --event $(EVENT)

local-aws: setup
	cargo run --quiet -p fleet-tests --bin local-aws

# Release binaries, as Lambda runs them; the zips for their sizes; DuckDB for the DORA
# comparison. SECTIONS="4 6" runs some sections and prints them (BENCHMARKS.md is kept).
bench: setup $(VENV)/.bench-installed $(VENV)/bin/kubectl
	CARGO_LAMBDA_COMPILER=cargo $(MAKE) --no-print-directory build ARCH=x86-64
	cargo build --release --workspace --bins
	cargo run --release --quiet -p fleet-tests --bin bench -- $(SECTIONS)

$(VENV)/.bench-installed: requirements-bench.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

# The kubectl the drain comparison runs: Debian 12's kubernetes-client (1.20.2, the drain
# helper AWS Node Termination Handler uses), fetched without root from apt's configured
# sources and unpacked, never a kubectl from PATH. Only `make bench` needs it.
KUBECTL_VERSION := v1.20.2
$(VENV)/bin/kubectl:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; chmod 755 "$$tmp"; \
		(cd "$$tmp" && apt-get download -q kubernetes-client && dpkg-deb -x kubernetes-client_*.deb root); \
		"$$tmp/root/usr/bin/kubectl" version --client --short | grep -qx 'Client Version: $(KUBECTL_VERSION)' || \
			{ echo "kubernetes-client is not kubectl $(KUBECTL_VERSION): $$("$$tmp/root/usr/bin/kubectl" version --client --short)" >&2; exit 1; }; \
		install -D -m 755 "$$tmp/root/usr/bin/kubectl" $@
	$@ version --client --short

# The venv installs while cargo builds (make -j2): on a fresh clone the build is most of
# the wait (BENCHMARKS.md, "Fresh clone").
demo:
	@$(MAKE) --no-print-directory -j2 demo-ready
	cargo run --quiet -p fleet-tests --bin demo -- $(ARGS)

demo-ready: $(VENV)/.demo-installed tests/support/node_modules/.installed demo-bins

demo-bins:
	cargo build --quiet $(CARGO_BUILD_FLAGS) $(DEMO_BUILD)

$(DEPLOY_VENV)/.installed: requirements-deploy.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-deploy.txt
	touch $@

# Needs AWS credentials (see README, "Deploy"). The config goes to SSM first, then SAM
# builds every function with cargo-lambda and deploys the stack.
# What needs nothing installed is checked first.
deploy-preflight:
	@test -f $(CONFIG) || { echo "no $(CONFIG): copy infra/fleet.example.toml and edit it"; exit 1; }
	@test -n "$(PREFIX)" || { echo "PREFIX=<ClusterNamePrefix> is required: every cluster name of $(CONFIG) starts with it (README, Deploy)"; exit 1; }

deploy: deploy-preflight setup $(DEPLOY_VENV)/.installed
	cargo run --quiet -p fleet-shared --bin fleet-config -- params $(CONFIG) $(PREFIX) > $(DEPLOY_VENV)/params
	$(DEPLOY_VENV)/bin/python infra/put-config.py $(CONFIG) $(CONFIG_PARAMETER)
	$(DEPLOY_VENV)/bin/sam build --beta-features --template-file infra/template.yaml --build-dir .aws-sam/build
	$(DEPLOY_VENV)/bin/sam deploy --template-file .aws-sam/build/template.yaml --stack-name $(STACK) \
		--region $$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["fleet"]["region"])' $(CONFIG)) \
		--capabilities CAPABILITY_IAM --resolve-s3 --no-fail-on-empty-changeset \
		--parameter-overrides FleetConfigParameter=$(CONFIG_PARAMETER) ClusterNamePrefix=$(PREFIX) $$(cat $(DEPLOY_VENV)/params) $(PARAMS)

# One spoke account (README, "Accounts and regions"): ACCOUNT names its [[account]];
# ACCOUNT_PROFILE is an AWS CLI profile of that account (the hub's credentials are the
# default ones); REGIONS defaults to the account's regions in the config.
deploy-spoke: deploy-preflight setup $(DEPLOY_VENV)/.installed
	@test -n "$(ACCOUNT)" || { echo "ACCOUNT=<[[account]] name of $(CONFIG), or hub> is required"; exit 1; }
	@test -n "$(PREFIX)" || { echo "PREFIX=<the hub's ClusterNamePrefix> is required"; exit 1; }
	cargo run --quiet -p fleet-shared --bin fleet-config -- spoke-params $(CONFIG) $(ACCOUNT) $(PREFIX) > $(DEPLOY_VENV)/spoke-params
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" $(DEPLOY_VENV)/bin/python infra/deploy-spoke.py \
		$(CONFIG) $(ACCOUNT) $(STACK) $(PREFIX) $(DEPLOY_VENV)/spoke-params "$(REGIONS)" "$(ACCOUNT_PROFILE)"

deploy-fn: setup
	cargo lambda build --release --bin $(FN) $(if $(filter x86-64 x86_64,$(ARCH)),--x86-64,--arm64)
	cargo lambda deploy --binary-name $(FN) $(STACK)-$(FN)

destroy: $(DEPLOY_VENV)/.installed
	$(DEPLOY_VENV)/bin/sam delete --stack-name $(STACK) --no-prompts
