#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts a daemon with two
# simulated devices, saves one device's state to a file (RUNNING -> ... -> STOP_COPY, reading
# all of it), restores it into the other (-> RESUMING, write, -> RUNNING), verifies that the
# second device now holds exactly the first one's state, and prints each step.
# It leaves nothing running and nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
B=${BUILD_DIR:-build}
CTL="$B/vfio-migctl"
tmp=$(mktemp -d /tmp/vfio-migd-demo.XXXXXX)
sock="$tmp/api.sock"
daemon_pid=

cleanup() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

bold= plain=
if [ -t 1 ]; then bold=$(tput bold 2>/dev/null || true) plain=$(tput sgr0 2>/dev/null || true); fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ %s\n' "vfio-migctl ${*}"; "$CTL" --socket "$sock" "$@"; }
json() { "$CTL" --socket "$sock" --json "$@"; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

step "1. Start vfio-migd on $sock"
"$B/vfio-migd" --socket "$sock" --log-level warning &
daemon_pid=$!
for _ in $(seq 100); do
    "$CTL" --socket "$sock" health >/dev/null 2>&1 && break
    sleep 0.05
done
run health
run version

step "2. Attach two simulated devices (64 MiB of state each, 5 ms per kernel arc)"
run attach --sim flags=stop_copy+p2p+pre_copy,size=64M,latency_ms=5 --name vm1-nic
run attach --sim flags=stop_copy+p2p+pre_copy,size=64M,latency_ms=5 --name vm2-nic
run devices
src_digest=$(json show vm1-nic | field digest)
dst_before=$(json show vm2-nic | field digest)
echo "state digest: vm1-nic=$src_digest vm2-nic=$dst_before"

step "3. The kernel's path from RUNNING to STOP_COPY (computed, no device touched)"
run path running stop_copy

step "4. Save vm1-nic: RUNNING -> ... -> STOP_COPY, read its whole state, -> STOP"
run save vm1-nic "$tmp/vm1-nic.state"
ls -l "$tmp/vm1-nic.state" | awk '{print "file:", $5, "bytes"}'
src_digest=$(json show vm1-nic | field digest)

step "5. Restore into vm2-nic: -> RESUMING, write every byte (verified by the device), -> RUNNING"
run restore vm2-nic "$tmp/vm1-nic.state"

step "6. Verify"
dst_after=$(json show vm2-nic | field digest)
echo "vm1-nic digest at save time: $src_digest"
echo "vm2-nic digest before:       $dst_before"
echo "vm2-nic digest after:        $dst_after"
run devices
if [ "$src_digest" != "$dst_after" ]; then
    echo "${bold}FAILED: vm2-nic does not hold vm1-nic's state${plain}" >&2
    exit 1
fi
echo
echo "${bold}OK: vm2-nic now holds exactly the state saved from vm1-nic.${plain}"

step "7. Stop the daemon"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
echo "vfio-migd exited with status $?"
daemon_pid=
