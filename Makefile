# contact-auth — see README.md. `make dev` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR

.PHONY: help install dev test unit lint fmt build-dev bench

help:
	@echo "make dev    the API on 127.0.0.1:3000 with a seeded demo hub and a mail inbox on :8005"
	@echo "make test   lint, unit tests, fixture replay, end-to-end and browser tests"
	@echo "make lint   cargo fmt --check and clippy -D warnings"

install:
	@tools/install.sh

build-dev:
	cargo build --workspace --bins

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

test: lint
	@tools/install.sh --browser
	cargo build --workspace --bins --tests
	node tools/test.mjs

# CPU figures of the pure hot paths (release build); see README "Performance".
bench:
	cargo bench -p contact-auth --bench core
