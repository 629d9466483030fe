#!/usr/bin/env bash
# One device's stream spread over several data channels (docs/stream-format.md, "One device
# over several channels"), between two real daemons driven by the real CLI: a device forced
# over 3 channels without pre-copy and with it (pre-copy on the first channel, stop-copy on
# all three) keeps its content (the sim digest on both sides); 1 channel still works as
# before; 8 channels, more handshakes than the source keeps in flight; the automatic count to
# a destination on this host counts half the CPUs; --channels out of range and the
# [migration] channels key are refused with their sentences, before anything moves.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_named_daemon S
start_named_daemon D

MIG_TIMEOUT=120 # a hang detector for one `migrate --wait`, not a speed threshold

# one GROUP SEED SIMOPTS : a one-device group on S (seeded) and D (default seed)
one() {
    njctl S attach --sim "$3,seed=$2" --name "$1_0" >/dev/null
    njctl S group create "$1" "$1_0" >/dev/null
    njctl D attach --sim "$3" --name "$1_0" >/dev/null
    njctl D group create "$1" "$1_0" >/dev/null
}

# field DAEMON DEV KEY : a field of DEV in DAEMON's `devices --json`
field() {
    "$PY" -c '
import json, sys
print([d for d in json.loads(sys.argv[1]) if d["id"] == sys.argv[2]][0][sys.argv[3]])' \
        "$(njctl "$1" devices)" "$2" "$3"
}
digest() { field "$1" "$2" digest; }
state() { field "$1" "$2" state; }

# moved GROUP CHANNELS ARGS... : migrate GROUP with --channels CHANNELS; the content arrives
moved() {
    local group=$1 channels=$2 before
    shift 2
    before=$(digest S "${group}_0")
    assert_ne "$before" "$(digest D "${group}_0")" "$group: the devices differ before"
    incoming D "$group" --listen 127.0.0.1:0
    expect_exit 0 timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "$S_SOCK" --json \
        --timeout 10 migrate "$group" --to "$ADDR" --token "$TOKEN" --wait --channels "$channels" "$@"
    assert_eq "completed" "$(jf "$OUT" state)" "$group over $channels channels: completed"
    assert_eq "$channels" "$(jf "$OUT" options.channels)" "$group: the options say $channels channels"
    assert_eq "stop" "$(state S "${group}_0")" "$group: the source device in stop"
    assert_eq "$(digest S "${group}_0")" "$(digest D "${group}_0")" "$group over $channels channels: the destination has the source's content (digest)"
    assert_eq "stop" "$(state D "${group}_0")" "$group: the destination device in stop"
}

# ==== 1. 3 channels, no pre-copy: every record of the stop-copy over three connections
one spread3 100 "size=48M"
moved spread3 3 --precopy off
assert_contains "$(cat "$T/S.log")" "device 'spread3_0' goes over 3 data channels" \
    "the source says the device went over 3 channels"

# ==== 2. 3 channels with pre-copy (and a device that dirties): the sequence runs on
one spread3p 200 "size=24M,dirty_rate=64M"
moved spread3p 3

# ==== 3. one channel: as before
one single 300 "size=8M"
moved single 1 --precopy off

# ==== 3b. 8 channels: more DATA_HELLOs than the source keeps waiting for an answer at once
# (migration_source.c: at most MIGRATION_PREAUTH_PER_PEER, 4), so the answers of the first
# are read while the last are sent
one spread8 350 "size=16M"
moved spread8 8 --precopy off

# ==== 3c. the automatic count with the destination on this host (core/spread.h): the sender
# and the receiver of every channel share these CPUs, so half of them count. A device of
# 512 MiB would get min(CPUs, 4) channels to another host; here it gets min(CPUs / 2, 4).
one autohere 370 "size=512M"
CPUS=$(nproc)
PLANNED=$((CPUS < 4 ? CPUS : 4))
HERE=$((CPUS / 2 < 4 ? CPUS / 2 : 4))
HERE=$((HERE < 1 ? 1 : HERE))
moved autohere 0 --precopy off
if [ "$PLANNED" -gt "$HERE" ]; then
    assert_contains "$(cat "$T/S.log")" "device 'autohere_0' takes $HERE data channel(s), not $PLANNED: the destination runs on this host" \
        "the automatic count with the destination here: $HERE channel(s) on $CPUS CPUs, not $PLANNED"
else
    assert_not_contains "$(cat "$T/S.log")" "device 'autohere_0' takes" \
        "one CPU: one channel planned, nothing to take back"
fi

# ==== 4. refusals, before anything moves
one refused 400 "size=4M"
D0=$(digest D refused_0)
expect_exit 2 "$VFIO_MIGCTL" --socket "$S_SOCK" migrate refused --to 127.0.0.1:1 --token x --channels 9
assert_contains "$ERR" "--channels: '9' is not a number of data channels per device from 1 to 8" \
    "--channels 9: the CLI says the range"
assert_eq "running" "$(state S refused_0)" "a refused --channels moved nothing"
assert_eq "$D0" "$(digest D refused_0)" "nor the destination"
printf '[migration]\nchannels = 9\n' >"$T/bad.conf"
expect_exit 1 "$VFIO_MIGD" --config "$T/bad.conf" --check-config
assert_contains "$OUT$ERR" "channels" "a channels key over 8 is refused by the configuration check"

