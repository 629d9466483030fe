#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and shows a live migration:
# two daemons on this machine, a group of three simulated devices on each, the source's
# state migrated with pre-copy to the destination over loopback TCP (progress on a
# terminal), the content verified on the destination device by device, and a summary.
# It leaves nothing running and nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
B=${BUILD_DIR:-build}
CTL="$B/vfio-migctl"
tmp=$(mktemp -d /tmp/vfio-migd-demo.XXXXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

bold= plain=
if [ -t 1 ]; then bold=$(tput bold 2>/dev/null || true) plain=$(tput sgr0 2>/dev/null || true); fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
on() { local who=$1; shift; printf '%s$ vfio-migctl %s%s\n' "[$who] " "$*" ""; "$CTL" --socket "$tmp/$who.sock" "$@"; }
json() { local who=$1; shift; "$CTL" --socket "$tmp/$who.sock" --json "$@"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[int(k)] if isinstance(d,list) else d[k]
print(d)' "$1"; }

step "1. Start two daemons: 'src' (the VM's host today) and 'dst' (its next host)"
for who in src dst; do
    "$B/vfio-migd" --socket "$tmp/$who.sock" --log-level warning &
    pids+=($!)
done
for who in src dst; do
    for _ in $(seq 100); do "$CTL" --socket "$tmp/$who.sock" health >/dev/null 2>&1 && break; sleep 0.05; done
done
on src version

step "2. The VM's devices: three simulated devices (96 MiB of state in all) in group 'vm1'"
# The source devices keep dirtying state during pre-copy (precopy_dirty), like a busy NIC;
# every kernel arc takes 2 ms. The destination has devices of the same names, fresh state.
for i in 0 1 2; do
    on src attach --sim "size=32M,latency_ms=2,precopy_dirty=128K,seed=$((i + 100))" --name "nic$i" >/dev/null
    on dst attach --sim "size=32M,latency_ms=2,precopy_dirty=128K" --name "nic$i" >/dev/null
done
on src group create vm1 nic0 nic1 nic2
on dst group create vm1 nic0 nic1 nic2
on src devices

step "3. The destination prepares: it listens for this one migration and gives a one-time token"
inc=$(json dst incoming vm1 --listen 127.0.0.1:0 --resume)
addr=$(echo "$inc" | field address)
token=$(echo "$inc" | field token)
echo "listening on $addr, token ${token:0:8}..."

step "4. Live migration: pre-copy while the VM runs, then a P2P-safe switchover"
on src migrate vm1 --to "$addr" --token "$token" --wait
job=$(json src jobs | field 0.id)

step "5. Verify: every destination device holds exactly the source device's state"
ok=1
for i in 0 1 2; do
    s=$(json src show "nic$i" | field digest)
    d=$(json dst show "nic$i" | field digest)
    printf '  nic%d  source %s  destination %s  %s\n' "$i" "$s" "$d" "$([ "$s" = "$d" ] && echo same || echo DIFFERENT)"
    [ "$s" = "$d" ] || ok=0
done
on src group show vm1 | head -5
on dst group show vm1 | head -5
if [ "$ok" != 1 ]; then
    echo "${bold}FAILED: the destination does not hold the source's state${plain}" >&2
    exit 1
fi

step "6. Summary"
j=$(json src job "$job")
python3 - "$j" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
mib = j["bytes"] / 2**20
print(f"  migration {j['id']}: {j['state']}, {mib:.1f} MiB moved in {j['elapsed_ms']:.0f} ms "
      f"({mib / (j['elapsed_ms'] / 1000):.0f} MiB/s)")
print(f"  pre-copy {j['precopy_ms']:.0f} ms while the VM ran; downtime {j['downtime_ms']:.1f} ms "
      f"(switchover start -> destination confirmed)")
for d in j["devices"]:
    print(f"  {d['id']}: {d['precopy_bytes'] / 2**20:.1f} MiB pre-copy + "
          f"{d['stopcopy_bytes'] / 2**20:.2f} MiB stop-copy")
PY
echo
echo "${bold}OK: live migration verified: the destination runs the VM's devices with their exact state.${plain}"

step "7. Stop both daemons"
for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p"; done
pids=()
echo "both daemons exited cleanly"
