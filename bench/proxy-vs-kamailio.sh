#!/usr/bin/env bash
# The same SIPp call load against `callkit-voip server` and against Kamailio
# (Debian package; an equivalent registrar + proxy in bench/kamailio.cfg),
# in one run: a callee registers with digest auth, then a caller places
# calls with digest auth (407), ACK and BYE through Record-Route. The
# offered rate steps up until more than 0.1 % of calls fail or fewer than
# 95 % of the offered calls per second complete; the last rate that held
# is each server's result, and the script prints their ratio.
#
# Usage: bench/proxy-vs-kamailio.sh [SECONDS_PER_STEP] [RATES...]
#   e.g. bench/proxy-vs-kamailio.sh 5 100 200 400 800 1200 1600
set -euo pipefail
STEP_SECS=${1:-5}
shift || true
RATES=("$@")
[ "${#RATES[@]}" -gt 0 ] || RATES=(400 800 1200 1600 2000 2400 2800 3200 4000)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIPP_DIR="$ROOT/tests/sipp"
BIN="${CALLKIT_BIN:-$ROOT/target/release/callkit-voip}"
for tool in sipp kamailio; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed: run scripts/install-peers.sh" >&2; exit 1; }
done
[ -x "$BIN" ] || cargo build --release --bin callkit-voip --manifest-path "$ROOT/Cargo.toml"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One step: CALLS calls at RATE/s against 127.0.0.1:$1; prints "ok failed secs".
load_step() {
    local port=$1 rate=$2 calls=$3 dir=$4
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$(cd "$dir" && timeout $((STEP_SECS * 6 + 60)) sipp -sf "$SIPP_DIR/server_caller.xml" "127.0.0.1:$port" \
        -p "$(free_port)" -s bob -au alice -ap s3cret -r "$rate" -m "$calls" -l $((rate * 4 + 100)) \
        -nostdin -timeout $((STEP_SECS * 6 + 30))s -max_socket 2048 2>/dev/null || true)
    t1=$(date +%s.%N)
    local ok failed
    ok=$(echo "$out" | grep 'Successful call' | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
    failed=$(echo "$out" | grep 'Failed call' | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
    echo "${ok:-0} ${failed:-0} $(echo "$t1 - $t0" | bc)"
}

# Registers the callee at 127.0.0.1:$1 and starts it; steps the load up.
run_against() {
    local name=$1 port=$2 dir="$WORK/$1"
    mkdir -p "$dir"
    local callee_port
    callee_port=$(free_port)
    (cd "$dir" && timeout 20 sipp -sf "$SIPP_DIR/register.xml" "127.0.0.1:$port" -p "$callee_port" \
        -s bob -au bob -ap builder -m 1 -nostdin -timeout 15s >/dev/null 2>&1) \
        || { echo "$name: the callee could not register" >&2; return 1; }
    (cd "$dir" && exec sipp -sf "$SIPP_DIR/server_callee.xml" -p "$callee_port" -nostdin \
        -timeout 3600s >/dev/null 2>&1) &
    local callee=$!
    sleep 0.5
    local best=0
    for rate in "${RATES[@]}"; do
        local calls=$((rate * STEP_SECS))
        read -r ok failed secs < <(load_step "$port" "$rate" "$calls" "$dir")
        local cps
        cps=$(echo "scale=1; $ok / $secs" | bc)
        local held
        held=$(echo "$failed * 1000 <= $calls && $ok * 100 >= $calls * 95" | bc)
        printf '%-9s offered %5d calls/s: %6d ok, %4d failed, %6.1f s → %7.1f calls/s %s\n' \
            "$name" "$rate" "$ok" "$failed" "$secs" "$cps" "$([ "$held" = 1 ] && echo held || echo '(over)')" >&2
        [ "$held" = 1 ] || break
        best=$rate
    done
    kill "$callee" 2>/dev/null || true
    echo "$best"
}

# --- callkit-voip server ---
OURS_PORT=$(free_port)
"$BIN" user add alice --password s3cret --db "$WORK/bench.db" >/dev/null
"$BIN" user add bob --password builder --db "$WORK/bench.db" >/dev/null
"$BIN" server --listen "127.0.0.1:$OURS_PORT" --db "$WORK/bench.db" --metrics off --digest MD5 >/dev/null 2>&1 &
PIDS+=($!)
sleep 1
OURS=$(run_against callkit "$OURS_PORT")
kill "${PIDS[0]}" 2>/dev/null || true

# --- Kamailio ---
KAM_PORT=$(free_port)
sed "s/BENCH_PORT/$KAM_PORT/" "$ROOT/bench/kamailio.cfg" > "$WORK/kamailio.cfg"
# 512 MiB of shared memory (the default 64 MiB runs out past ~1000 calls/s:
# tm answers "500 I'm terribly sorry, server error occurred").
kamailio -f "$WORK/kamailio.cfg" -DD -E -m 512 -M 32 -P "$WORK/kamailio.pid" >/dev/null 2>&1 &
PIDS+=($!)
sleep 1.5
KAM=$(run_against kamailio "$KAM_PORT")

echo "callkit-voip server: $OURS calls/s held (≤ 0.1 % failed)"
echo "Kamailio 5.6:        $KAM calls/s held (≤ 0.1 % failed)"
if [ "$KAM" -gt 0 ]; then
    echo "ratio (callkit-voip / Kamailio): $(echo "scale=2; $OURS / $KAM" | bc)"
fi
