# contact-auth — see README.md. `make dev` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR

.PHONY: help install dev test unit lint fmt build-dev load bench check-template build sam-build invoke deploy mutants mutants-conditions cost sam-local

help:
	@echo "make dev    the API on 127.0.0.1:3000 with a seeded demo hub and a mail inbox on :8005"
	@echo "make test   lint, unit tests, fixture replay, end-to-end and browser tests"
	@echo "make lint   cargo fmt --check and clippy -D warnings"
	@echo "make invoke FN=login EVENT=events/login/success.json   one fixture through one function (cargo lambda)"
	@echo "make build  every bootstrap for Lambda (arm64, release); make deploy"
	@echo "make cost   measure each route and write docs/cost.md; make bench  CPU figures"

install:
	@tools/install.sh

# The workspace's binaries, then each function as `cargo lambda watch` runs it
# (`cargo run --bin <fn>` resolves features for that package alone, unlike --workspace, so
# its first build in a fresh target dir recompiles the AWS SDK crates): built here, the
# stack's first requests start at once instead of compiling for minutes.
build-dev:
	cargo build --workspace --bins
	@for f in $(FUNCTIONS); do cargo build --bin $$f || exit 1; done

dev: install build-dev
	node tools/stack.mjs

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

# Unit tests alone (no servers).
unit:
	cargo test --workspace

# SKIP_SAM_BUILD=1 leaves out `sam build` (minutes after a change to shared/) while you
# iterate; CI never sets it.
test: lint check-template
ifneq ($(SKIP_SAM_BUILD),1)
	$(MAKE) sam-build
endif
	@tools/install.sh --browser --qemu
	cargo build --workspace --bins --tests
	$(MAKE) build-dev
	node tools/test.mjs

# CPU figures of the pure hot paths (release build); see README "Performance".
# The flash-crowd scenario (tools/load.mjs; README "Performance" has the figures).
load: install build-dev
	node tools/load.mjs

bench:
	cargo bench -p contact-auth --bench core
	cargo build --release --bin hosted-page --bin jwks --bin register --bin login --bin mailer --bin contact-auth-admin
	node tools/init-bench.mjs

# The cost model (README "Operating it"): per route, the DynamoDB capacity and CPU time of
# one request, measured through the fixture replay (release build) against DynamoDB Local;
# writes docs/cost.md from docs/cost-inputs.json (cited prices, the usage profile).
cost: install
	node tools/cost.mjs

# SAM's own emulator for people who have Docker (not run here): the built functions on
# :3001 against the make dev stack (README "Deploying"). Run make dev and sam build first.
sam-local: install
	node tools/sam-local.mjs

# Mutation testing of the pure decisions and the request edge with plain unit tests (no
# servers; not in CI: one rebuild per mutant, long on 2 cores). MUTANTS_FILES narrows it,
# e.g. `make mutants MUTANTS_FILES=shared/src/domain/redirect.rs`. Results: mutants.out/.
# In place (no copy of the tree, so no cold build): do not edit sources while it runs.
MUTANTS_FILES ?= shared/src/domain/*.rs shared/src/edge.rs
mutants:
	@tools/install.sh --mutants
	.tools/bin/cargo-mutants mutants --in-place -p contact-auth $(addprefix -f ,$(MUTANTS_FILES)) --test-tool cargo -- --lib

# Mutation testing of the DynamoDB condition expressions (cargo-mutants does not mutate
# string literals): each clause of every condition in shared/src/adapters/dynamo/*.rs made
# always true (or, in a disjunction, always false), judged by the fixture replay against
# DynamoDB Local. In place, like `make mutants`; results in mutants.out/conditions.txt.
# Not in CI (one rebuild per mutant). MUTANTS_FILE=links narrows it to one file.
mutants-conditions: install
	node tools/condition-mutants.mjs $(MUTANTS_FILE)

# Template checks: sam validate --lint, then the SAM-translated template through cfn-lint
# (catches bad references inside functions and invalid IAM actions). Offline.
TEMPLATE_REGION ?= eu-west-1
check-template: install
	@mkdir -p .dev
	AWS_DEFAULT_REGION=$(TEMPLATE_REGION) SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint
	AWS_DEFAULT_REGION=$(TEMPLATE_REGION) .venv/bin/python tools/sam_translate.py .dev/template.cfn.json
	.venv/bin/cfn-lint .dev/template.cfn.json

# Every bootstrap for Lambda (arm64, release, cross-compiled by cargo-lambda with zig), in
# one cargo run so the release links share both cores: target/lambda/<crate>/bootstrap.
FUNCTIONS := $(notdir $(wildcard functions/*))
build:
	@tools/install.sh --arm64
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS))

# `sam build` (plain, as SAM users run it; samconfig.toml sets build_in_source): SAM runs
# each function's build-<LogicalId> rule below in this checkout. No Docker. The built
# bootstraps are checked by tools/check_build.py in make test (tools/test.mjs).
sam-build: install
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(TEMPLATE_REGION)} SAM_CLI_TELEMETRY=0 .venv/bin/sam build

# `sam build` calls build-<LogicalId> (BuildMethod: makefile) once per function. Each call
# builds every bootstrap in one cargo run (what make build does: the release links share
# both cores); the first call does the work, the others find the binaries fresh. Then it
# copies its own. The crate is the logical id without `Function`, in kebab case
# (MagicConsume -> magic-consume); testkit/tests/tables.rs checks the template builds one
# per crate. tools/install.sh is idempotent (it does nothing once the tools are in place).
crate_of = $(shell echo '$(1)' | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr 'A-Z' 'a-z')
build-%Function:
	@tools/install.sh --arm64
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS))
	cp "$(CARGO_TARGET_DIR)/lambda/$(call crate_of,$*)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"

# One fixture through one function's binary with cargo lambda's Runtime API emulator and
# `cargo lambda invoke` (no Docker); checks the result against <case>.expected.json.
invoke: install
	@if [ -z "$(FN)" ] || [ -z "$(EVENT)" ]; then echo "usage: make invoke FN=<function> EVENT=events/<function>/<case>.json"; exit 2; fi
	node tools/invoke.mjs "$(FN)" "$(EVENT)"

# Guided first deploy (adds its answers to samconfig.toml); later deploys reuse them. Needs
# AWS credentials. The same as `sam build && sam deploy --guided`.
deploy: sam-build
	.venv/bin/sam deploy --guided
