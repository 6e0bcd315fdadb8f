#!/usr/bin/env bash
# Push-to-ring latency on loopback with a sleeping callee: runs the release
# `callkit-voip demo` RUNS times (each a fresh server, push service and two
# phones; bob asleep with only his push binding) and collects each run's
# push-to-ring — alice's INVITE out → her 180 Ringing in, which holds the
# VoIP push, bob's report to CallKit, his refresh REGISTER and the forwarded
# INVITE — then prints p50, p99 and max. Each run is the first call of a new
# process, so it includes first-use costs (the provider token's ES256
# signature, the first HTTP/2 connection): an upper bound for a warm server.
# Our own processing per call is measured apart by
# `cargo bench -p phone --bench push_to_ring`.
# Usage: bench/push-to-ring.sh [RUNS]   (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100}"
cargo build --quiet --release --bin callkit-voip
bin=target/release/callkit-voip
samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
failed=0
for i in $(seq 1 "$runs"); do
    line=$(timeout 60 "$bin" demo | tail -n 1) || true
    case "$line" in
        "verdict: PASS — push-to-ring "*)
            echo "$line" | sed -E 's/.*push-to-ring ([0-9.]+) ms.*/\1/' >> "$samples" ;;
        *) failed=$((failed + 1)); echo "run $i: $line" >&2 ;;
    esac
done
sort -n "$samples" | awk -v runs="$runs" -v failed="$failed" '
    { v[NR] = $1 }
    END {
        if (NR == 0) { print "no successful runs"; exit 1 }
        p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
        printf "push-to-ring over %d runs (%d failed): p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 < 50 ms)\n", NR, failed, p50, p99, v[NR]
    }'
