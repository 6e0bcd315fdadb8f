#!/usr/bin/env bash
# The whole test suite: what the README's test command runs and what CI runs.
# Later issues add the real third-party peers here (sipp, baresip, linphonec,
# kamailio, redis-server), installed from Debian packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== third-party peers"
bash scripts/install-peers.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== fuzz the SIP parser (${FUZZ_SECONDS:-60} s)"
bash scripts/fuzz.sh
