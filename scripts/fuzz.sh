#!/usr/bin/env bash
# Short coverage-guided fuzz run of the SIP parser (cargo-fuzz / libFuzzer),
# seeded with the RFC 4475 torture messages. FUZZ_SECONDS sets the length.
set -euo pipefail
cd "$(dirname "$0")/../crates/sip/fuzz"
seconds="${FUZZ_SECONDS:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet
fi
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
cp ../tests/rfc4475/*.sip ../testdata/*.sip "$corpus/"
log="$corpus/fuzz.log"
# cargo-fuzz passes nightly-only flags; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them. No sanitizer: the parser has no unsafe code.
status=0
RUSTC_BOOTSTRAP=1 cargo fuzz run parse --sanitizer none "$corpus" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
grep -E "^(Done|stat::number_of_executed_units)" "$log" || true
if [ "$status" -ne 0 ]; then
    echo "the fuzzer found a failure (exit $status):" >&2
    tail -n 80 "$log" >&2
    exit "$status"
fi
