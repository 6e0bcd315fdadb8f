#!/usr/bin/env bash
# Installs the third-party peers the test suite runs against, from Debian's
# packages: SIPp (sip-tester), baresip (baresip-core), linphonec (linphone-cli) and
# Kamailio (kamailio, for bench/proxy-vs-kamailio.sh) and Redis (redis-server,
# the server's shared store). Needs root (CI runs as root); prints what to do
# otherwise.
set -euo pipefail
PACKAGES=(sip-tester baresip-core linphone-cli kamailio redis-server)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} — run: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
