#!/usr/bin/env bash
# Migrations that work, between TWO real daemons (S the source, D the destination) driven by
# the real CLI: pre-copy of a 3-device group, --precopy off, a device that keeps dirtying, the
# downtime target under a steady dirty_rate (converging, and not: the reason in `jobs`),
# a group mixing flag sets (no pre-copy), manual switchover, the unix-socket transport, group
# save/restore to a stream file (and the refusals of a wrong, damaged or truncated file),
# `watch`, and ten migrations back and forth in a row. Every migration is checked by content: the sim `digest` of each source device at
# its end (the source group ends in STOP) equals the destination device's.
# Timings are only checked structurally (present, consistent), never against thresholds.
# Device lists ($(devs_of ...)) are split into words on purpose; the fd listings are diagnostics.
# shellcheck disable=SC2046,SC2012
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# Debug level: "Call .../WatchEvents" in a log says the daemon follows a watch from then on.
start_named_daemon S --log-level debug
start_named_daemon D --log-level debug

MIG_TIMEOUT=120 # bound of one `migrate --wait` (the test's own, around the CLI's): a hang detector

# ---- helpers



# pair GROUP OPTS... : the same devices on S (seeds 1000, 1010, ...) and D (default seeds)
SEED_NEXT=1000
pair() {
    local group=$1
    shift
    mkgroup S "$group" "$SEED_NEXT" "$@"
    mkgroup D "$group" - "$@"
    SEED_NEXT=$((SEED_NEXT + 10))
}

# log_lines NAME / log_since NAME MARK TEXT: TEXT in daemon NAME's log after line MARK
log_lines() { wc -l <"$T/$1.log"; }
log_since() { tail -n +$(($2 + 1)) "$T/$1.log" | grep -F -- "$3" >/dev/null; } # see lib.sh

# migrate_wait GROUP ARGS... : migrate --wait on S (bounded); sets MIG (the JSON), SID
migrate_wait() {
    local group=$1
    shift
    expect_exit 0 timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "$S_SOCK" --json \
        --timeout 10 migrate "$group" --to "$ADDR" --token "$TOKEN" --wait "$@"
    MIG=$OUT
    SID=$(jf "$MIG" id)
}

# sd DAEMON DEV... : "DEV state digest" per device, from one `devices --json`
sd() {
    local j daemon=$1
    shift
    j=$(njctl "$daemon" devices)
    "$PY" -c '
import json, sys
devs = {d["id"]: d for d in json.loads(sys.argv[1])}
for i in sys.argv[2:]:
    print(i, devs[i]["state"], devs[i]["digest"])' "$j" "$@"
}

# same_content WHAT DEST_STATE DEV... : every source device in stop, the destination's in
# DEST_STATE, and equal digests device by device
same_content() {
    local what=$1 dstate=$2 src dst dev st dg dst_st dst_dg
    shift 2
    src=$(sd S "$@")
    dst=$(sd D "$@")
    while read -r dev st dg; do
        read -r _ dst_st dst_dg <<<"$(grep "^$dev " <<<"$dst")"
        assert_eq "stop" "$st" "$what: source $dev ends in stop"
        assert_eq "$dstate" "$dst_st" "$what: destination $dev in $dstate"
        assert_eq "$dg" "$dst_dg" "$what: $dev has the source's content on the destination (digest)"
    done <<<"$src"
}

# differ_before WHAT DEV... : sanity: the digests differ before migrating
differ_before() {
    local what=$1 src dst dev st dg dst_dg
    shift
    src=$(sd S "$@")
    dst=$(sd D "$@")
    while read -r dev st dg; do
        read -r _ _ dst_dg <<<"$(grep "^$dev " <<<"$dst")"
        assert_ne "$dg" "$dst_dg" "$what: $dev differs before the migration"
    done <<<"$src"
}

# ge A B WHAT (integers)
assert_ge() {
    assert_le "$2" "$1" "$3"
}

num_ok() { # a JSON number (the CLI prints ms with three decimals)
    [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]
}

# ms_le A B: A <= B for decimal milliseconds
ms_le() {
    "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"
}

# job_in_list DAEMON ID : "<state>" of ID in `jobs --json`, or "absent"
job_in_list() {
    local j
    j=$(njctl "$1" jobs)
    "$PY" -c '
import json, sys
m = [m for m in json.loads(sys.argv[1]) if m["id"] == sys.argv[2]]
print(m[0]["state"] + "/" + m[0]["role"] if m else "absent")' "$j" "$2"
}

# ==== 1. pre-copy migration of a 3-device group, auto-resume on the destination

SIZE=8M
SIZE_B=$((8 << 20))
pair pc "size=$SIZE" "size=$SIZE" "size=$SIZE"
DEVS=$(devs_of pc 3)
# shellcheck disable=SC2086
differ_before "pre-copy" $DEVS
incoming D pc --listen 127.0.0.1:0 --resume
assert_match "$ADDR" '^127\.0\.0\.1:[1-9][0-9]*$' "incoming: the address actually bound (port chosen)"
assert_match "$TOKEN" '^[0-9a-f]{64}$' "incoming: a token"
assert_eq "waiting" "$(jf "$INC" phase)" "incoming: phase waiting"
assert_eq "true" "$(jf "$INC" auto_resume)" "incoming --resume: auto_resume"
migrate_wait pc
assert_eq "completed" "$(jf "$MIG" state)" "pre-copy migration: state completed"
assert_eq "completed" "$(jf "$MIG" phase)" "pre-copy migration: phase completed"
assert_eq "" "$(jkeys "$MIG" | tr ' ' '\n' | grep -x error || true)" "pre-copy migration: no error key"
BYTES=$(jf "$MIG" bytes)
assert_ge "$BYTES" $((3 * SIZE_B)) "pre-copy migration: bytes >= 3 x size"
DT=$(jf "$MIG" downtime_ms)
EL=$(jf "$MIG" elapsed_ms)
PRE=$(jf "$MIG" precopy_ms)
check "pre-copy migration: downtime_ms present" num_ok "$DT"
check "pre-copy migration: downtime_ms > 0 (a switchover happened)" ms_le 0.001 "$DT"
check "pre-copy migration: downtime_ms <= elapsed_ms" ms_le "$DT" "$EL"
check "pre-copy migration: precopy_ms > 0 (there was a pre-copy phase)" ms_le 0.001 "$PRE"
for i in 0 1 2; do
    assert_ge "$(jf "$MIG" "devices.$i.precopy_bytes")" "$SIZE_B" "pre-copy migration: device $i moved its initial data during pre-copy"
    assert_eq "true" "$(jf "$MIG" "devices.$i.done")" "pre-copy migration: device $i done"
done
# shellcheck disable=SC2086
same_content "pre-copy migration" running $DEVS
expect_exit 0 njctl S job "$SID"
assert_eq "completed source" "$(jf "$OUT" state) $(jf "$OUT" role)" "job $SID on the source: completed, role source"
assert_eq "$BYTES" "$(jf "$OUT" bytes)" "job on the source: the same bytes as migrate --wait printed"
expect_exit 0 njctl D job "$DID"
assert_eq "completed destination" "$(jf "$OUT" state) $(jf "$OUT" role)" "job $DID on the destination: completed, role destination"
assert_eq "$BYTES" "$(jf "$OUT" bytes)" "the destination counted the bytes the source sent"
assert_ne "$ADDR" "$(jf "$OUT" peer)" "job on the destination: the peer is the source, not its own address"
assert_match "$(jf "$OUT" peer)" '^127\.0\.0\.1:[1-9][0-9]*$' "  ... the source's address"
expect_exit 0 njctl D group show pc
assert_eq "false" "$(jf "$OUT" last_transition.forced)" "the destination's group after a normal migration: not marked forced"
assert_eq "completed/source" "$(job_in_list S "$SID")" "jobs on the source lists it completed"
assert_eq "completed/destination" "$(job_in_list D "$DID")" "jobs on the destination lists it completed"
expect_exit 0 timeout -k 2 60 "$VFIO_MIGCTL" --socket "$S_SOCK" watch "$SID"
assert_contains "$OUT" "completed" "watch of the completed source job: says completed"
expect_exit 0 timeout -k 2 60 "$VFIO_MIGCTL" --socket "$D_SOCK" --json watch "$DID"
assert_eq "end completed" "$(jget "$OUT" kind migration.state | tr '\n' ' ' | sed 's/ $//')" "watch --json of the destination job: one line, its end event, completed"
expect_error FAILED_PRECONDITION njctl S switchover "$SID"
expect_error FAILED_PRECONDITION njctl S cancel "$SID"
# the source group is back to usable: it can be resumed (the VM stays on the destination, but
# the daemon must not keep it locked)
expect_exit 0 njctl S group state pc running
# shellcheck disable=SC2034 # read indirectly (${!fdsvar})
FDS_S=$(fd_count "$S_PID")
# shellcheck disable=SC2034
FDS_D=$(fd_count "$D_PID")

# ==== 2. without pre-copy; the destination is not resumed

pair np "size=$SIZE" "size=$SIZE"
incoming D np --listen 127.0.0.1:0
assert_eq "false" "$(jf "$INC" auto_resume)" "incoming without --resume: auto_resume false"
migrate_wait np --precopy off
assert_eq "completed" "$(jf "$MIG" state)" "--precopy off: completed"
assert_eq "off" "$(jf "$MIG" options.precopy)" "--precopy off: in the job's options"
check "--precopy off: no pre-copy time (precopy_ms 0)" ms_le "$(jf "$MIG" precopy_ms)" 0
assert_eq "0 0" "$(jf "$MIG" devices.0.precopy_bytes devices.1.precopy_bytes | tr '\n' ' ' | sed 's/ $//')" "--precopy off: no pre-copy bytes"
assert_ge "$(jf "$MIG" bytes)" $((2 * SIZE_B)) "--precopy off: bytes >= 2 x size"
# shellcheck disable=SC2046
same_content "--precopy off" stop $(devs_of np 2)

# ==== 3. a device that keeps dirtying during pre-copy still converges

pair dirty "size=$SIZE,precopy_dirty=256K" "size=$SIZE"
G0=$(dev_prop S dirty_0 generation)
incoming D dirty --listen 127.0.0.1:0 --resume
migrate_wait dirty --max-precopy-ms 20000
assert_eq "completed" "$(jf "$MIG" state)" "precopy_dirty: completed"
check "precopy_dirty: pre-copy converged before the 20 s cap" ms_le "$(jf "$MIG" precopy_ms)" 19999
assert_le $((SIZE_B + 1)) "$(jf "$MIG" devices.0.precopy_bytes)" "precopy_dirty: the dirtying device re-sent dirty chunks during pre-copy"
assert_le $((G0 + 2)) "$(dev_prop S dirty_0 generation)" "precopy_dirty: the device really was dirtied (generation moved)"
# shellcheck disable=SC2046
same_content "precopy_dirty" running $(devs_of dirty 2)

# ==== 3b. the downtime target under a steady dirtying workload (dirty_rate, docs/migration.md
# "When pre-copy ends"). Neither case depends on the machine's speed. Converging: a device
# that does not dirty reports nothing left once its image is read, which fits any target at
# any rate. Not converging: 64 GB/s of dirtying keeps the whole 32 MiB device dirty between
# any two reads, and moving 32 MiB within the 1 ms target would take a 32 GB/s pipeline of
# generation, CRC, two socket copies and verification; so the 300 ms cap ends the pre-copy.

pair calm "size=32M,dirty_rate=0" "size=32M"
incoming D calm --listen 127.0.0.1:0 --resume
migrate_wait calm --downtime-ms 1 --max-precopy-ms 600000
assert_eq "completed" "$(jf "$MIG" state)" "dirty_rate=0: completed"
assert_eq "true" "$(jf "$MIG" precopy_converged)" "dirty_rate=0: pre-copy converged"
assert_match "$(jf "$MIG" switchover_reason)" '^pre-copy converged in [0-9]+ ms: 0\.0 MiB left at [0-9]+\.[0-9] MiB/s needs 0 ms <= target 1 ms$' \
    "dirty_rate=0: the reason says it converged, with nothing left"
# shellcheck disable=SC2046
same_content "dirty_rate=0" running $(devs_of calm 2)

pair storm "size=32M,dirty_rate=64G" "size=32M"
G0=$(dev_prop S storm_0 generation)
incoming D storm --listen 127.0.0.1:0 --resume
migrate_wait storm --downtime-ms 1 --max-precopy-ms 300
assert_eq "completed" "$(jf "$MIG" state)" "dirty_rate=64G: completed all the same (switched over at the cap)"
assert_eq "false" "$(jf "$MIG" precopy_converged)" "dirty_rate=64G: pre-copy did not converge"
REASON=$(jf "$MIG" switchover_reason)
assert_match "$REASON" '^pre-copy did not converge in [0-9]+ ms: [0-9]+\.[0-9] MiB left( \(initial data still unsent\))? at [0-9]+\.[0-9] MiB/s needs [0-9]+ ms > target 1 ms$' \
    "dirty_rate=64G: the reason names what is left, the rate, the estimate and the target"
REASON_MS=$(sed -E 's/^pre-copy did not converge in ([0-9]+) ms.*/\1/' <<<"$REASON")
assert_le 300 "$REASON_MS" "dirty_rate=64G: it gave up only once max_precopy_ms (300) had passed"
check "dirty_rate=64G: precopy_ms covers the 300 ms cap" ms_le 300 "$(jf "$MIG" precopy_ms)"
assert_le $((G0 + 512)) "$(dev_prop S storm_0 generation)" "dirty_rate=64G: the device dirtied at least every chunk once"
expect_exit 0 nctl S jobs
assert_contains "$(grep "^$SID " <<<"$OUT")" "$REASON" "jobs: the SWITCHOVER column has the reason"
expect_exit 0 nctl S job "$SID"
assert_contains "$OUT" "switchover:        $REASON" "job: a switchover line with the reason"
assert_contains "$(cat "$T/S.log")" "$REASON; the downtime will exceed the target" "the source's log warns"
# shellcheck disable=SC2046
same_content "dirty_rate=64G" running $(devs_of storm 2)

# ==== 4. mixed flag sets: devices without PRE_COPY -> no pre-copy phase

pair mixed "size=4M" "size=4M,flags=stop_copy+p2p" "size=4M,flags=stop_copy"
incoming D mixed --listen 127.0.0.1:0 --resume
migrate_wait mixed
assert_eq "completed" "$(jf "$MIG" state)" "mixed flags: completed"
check "mixed flags: no pre-copy phase (precopy_ms 0)" ms_le "$(jf "$MIG" precopy_ms)" 0
assert_eq "0 0 0" "$(jf "$MIG" devices.0.precopy_bytes devices.1.precopy_bytes devices.2.precopy_bytes | tr '\n' ' ' | sed 's/ $//')" "mixed flags: no pre-copy bytes"
# shellcheck disable=SC2046
same_content "mixed flags" running $(devs_of mixed 3)

# ==== 5. manual switchover

pair man "size=$SIZE" "size=$SIZE"
incoming D man --listen 127.0.0.1:0 --resume
expect_exit 0 njctl S migrate man --to "$ADDR" --token "$TOKEN" --switchover manual
SID=$(jf "$OUT" id)
assert_eq "manual" "$(jf "$OUT" options.switchover)" "manual switchover: in the job's options"
if wait_job S "$SID" "$STATE_WAIT" ready over; then
    pass "manual switchover: the job ended its pre-copy in time"
else
    fail "manual switchover: the job ended its pre-copy in time" "last: $JOB"
fi
assert_eq "ready active" "$(jf "$JOB" phase state | tr '\n' ' ' | sed 's/ $//')" "manual switchover: waits in phase ready"
assert_eq "pre_copy pre_copy" "$(njctl S group show man | "$PY" -c 'import json,sys; print(" ".join(d["state"] for d in json.load(sys.stdin)["devices"]))')" "manual switchover: in ready the source still runs (pre_copy)"
sleep 0.3 # not a bet on speed: a slower machine only makes an early switchover less likely
assert_eq "ready" "$(jget "$(job_json S "$SID")" phase)" "manual switchover: still ready a moment later (no automatic switchover)"
assert_eq "active" "$(jget "$(job_json D "$DID")" state)" "manual switchover: the destination job is active meanwhile"
# watch follows the events of a running migration (WatchEvents): the one job on the source,
# every job on the destination (--json); both must see it through to its end and exit. Each
# must follow before the switchover: each has printed the job's first event.
"$VFIO_MIGCTL" --socket "$S_SOCK" watch "$SID" >"$T/watch_one.out" 2>"$T/watch_one.err" &
WATCH_ONE=$!
"$VFIO_MIGCTL" --socket "$D_SOCK" --json watch >"$T/watch_all.out" 2>"$T/watch_all.err" &
WATCH_ALL=$!
wait_state "watch ID: prints the job's first event" test -s "$T/watch_one.out"
assert_contains "$(cat "$T/watch_one.out")" "$SID source man" "watch ID: its first line names the job, its role and group"
# A stream of events, one JSON line each as it happens: the job's current phase comes at once.
wait_state "watch --json (all): prints the destination job's first event before its end" \
    test -s "$T/watch_all.out"
assert_eq "phase $DID active" "$(head -n 1 "$T/watch_all.out" | { read -r l; jget "$l" kind migration.id migration.state | tr '\n' ' ' | sed 's/ $//'; })" \
    "watch --json (all): the first line is a phase event of the active job"
# Interrupting a watch stops the watching, not the migration: exit 1 and a sentence. The
# interrupt comes once the watch has printed the first event (a state, not a delay).
"$VFIO_MIGCTL" --socket "$S_SOCK" watch "$SID" >"$T/watch_int.out" 2>"$T/watch_int.err" &
WATCH_INT=$!
wait_state "watch to be interrupted: prints the job's first event" test -s "$T/watch_int.out"
kill -INT "$WATCH_INT"
expect_ended "$WATCH_INT" 1 "watch interrupted (SIGINT)"
assert_contains "$(cat "$T/watch_int.err")" "interrupted; migration $SID goes on" "watch interrupted: says the migration goes on"
assert_eq "ready active" "$(jget "$(job_json S "$SID")" phase state | tr '\n' ' ' | sed 's/ $//')" "watch interrupted: the migration is untouched"
expect_exit 0 njctl S switchover "$SID"
if wait_job S "$SID" "$STATE_WAIT" over; then
    pass "manual switchover: ended in time after switchover"
else
    fail "manual switchover: ended in time after switchover" "last: $JOB"
fi
assert_eq "completed" "$(jf "$JOB" state)" "manual switchover: completed"
wait_job D "$DID" "$STATE_WAIT" over || true
assert_eq "completed" "$(jf "$JOB" state)" "manual switchover: the destination job completed"
expect_ended "$WATCH_ONE" 0 "watch ID: ended with the migration"
expect_ended "$WATCH_ALL" 0 "watch --json (all): ended with the migration"
WOUT=$(cat "$T/watch_one.out")
assert_line_match "$WOUT" "^[0-9:]{8} $SID source man, peer .*: ready$" "watch ID: the phase it began in (ready)"
assert_line_match "$WOUT" "^[0-9:]{8} $SID switchover$" "watch ID: the switchover, as it happened"
assert_line_match "$WOUT" "^[0-9:]{8} $SID completed" "watch ID: the end, completed"
assert_eq "" "$(cat "$T/watch_one.err")" "watch ID: nothing on stderr"
assert_eq "" "$(cat "$T/watch_all.err")" "watch --json (all): nothing on stderr"
WALL=$(tail -n 1 "$T/watch_all.out")
assert_eq "$DID" "$("$PY" -S -c '
import json, sys
print(" ".join(sorted({json.loads(l)["migration"]["id"] for l in open(sys.argv[1])})))' "$T/watch_all.out")" \
    "watch --json (all) on the destination: every line one JSON object, all about the one job"
assert_eq "end $DID completed destination" "$(jget "$WALL" kind migration.id migration.state migration.role | tr '\n' ' ' | sed 's/ $//')" "watch --json (all): the last line, the job's end, completed"
# shellcheck disable=SC2046
same_content "manual switchover" running $(devs_of man 2)

# ==== 5b. migrate --wait interrupted: the waiting stops, the migration goes on

pair mwi "size=$SIZE"
incoming D mwi --listen 127.0.0.1:0 --resume
"$VFIO_MIGCTL" --socket "$S_SOCK" --json migrate mwi --to "$ADDR" --token "$TOKEN" \
    --switchover manual --wait >"$T/mwi.out" 2>"$T/mwi.err" &
MWI=$!
MWI_ID=""
mwi_ready() { # the job appears, then waits in ready (manual switchover)
    MWI_ID=$(njctl S jobs | "$PY" -c 'import json,sys; j=[m for m in json.load(sys.stdin) if m["group"]=="mwi"]; print(j[0]["id"] if j else "")')
    [[ -n "$MWI_ID" && "$(jget "$(job_json S "$MWI_ID")" phase)" == ready ]]
}
wait_state "migrate --wait interrupted: the job waits in ready" mwi_ready
# The CLI catches SIGTERM from the moment it has the daemon's answer (the job) and waits for
# its end: the signal is sent once it does, not after a delay.
wait_state "migrate --wait: waits for the end (SIGTERM handled)" sig_caught "$MWI" TERM
kill -TERM "$MWI"
expect_ended "$MWI" 1 "migrate --wait interrupted (SIGTERM)"
assert_contains "$(cat "$T/mwi.err")" "interrupted; migration $MWI_ID goes on" "migrate --wait interrupted: says the migration goes on"
assert_eq "$MWI_ID active" "$(jget "$(cat "$T/mwi.out")" id state | tr '\n' ' ' | sed 's/ $//')" "migrate --wait --json interrupted: the last document, the job still active"
assert_eq "ready active" "$(jget "$(job_json S "$MWI_ID")" phase state | tr '\n' ' ' | sed 's/ $//')" "migrate --wait interrupted: the migration is untouched"
expect_exit 0 njctl S switchover "$MWI_ID"
wait_job S "$MWI_ID" "$STATE_WAIT" over || true
assert_eq "completed" "$(jf "$JOB" state)" "migrate --wait interrupted: the migration then completes"
wait_job D "$DID" "$STATE_WAIT" over || true
# shellcheck disable=SC2046
same_content "migrate --wait interrupted" running $(devs_of mwi 1)

# ==== 6. the unix socket transport

pair ux "size=$SIZE" "size=$SIZE"
incoming D ux --listen "unix:$T/mig.sock" --resume
assert_eq "unix:$T/mig.sock" "$ADDR" "unix transport: the address is the socket"
migrate_wait ux
assert_eq "completed" "$(jf "$MIG" state)" "unix transport: completed"
# shellcheck disable=SC2046
same_content "unix transport" running $(devs_of ux 2)
# the same path again (the old socket file is stale now)
expect_exit 0 njctl S group state ux running
expect_exit 0 njctl D group state ux running
incoming D ux --listen "unix:$T/mig.sock" --resume
migrate_wait ux
assert_eq "completed" "$(jf "$MIG" state)" "unix transport: the same path works for a second migration"

# ==== 7. group save and restore (stream files)

# 7a. round trip: save on S, restore into D's group of the same name
pair sv "size=2M" "size=2M"
differ_before "save/restore" sv_0 sv_1
SAVED=$T/sv.stream
expect_exit 0 njctl S save sv "$SAVED"
assert_eq "stop" "$(jf "$OUT" state)" "save: the group ends in stop"
assert_le $((2 * (2 << 20))) "$(jf "$OUT" bytes)" "save: bytes >= 2 x size"
assert_file_exists "$SAVED" "save: the file exists"
assert_eq "" "$(find "$T" -name '.sv.stream.vfio-migd-partial*')" "save: no partial file left"
if [[ -f "$SAVED" ]]; then
    expect_exit 0 njctl D restore sv "$SAVED"
    assert_eq "running" "$(jf "$OUT" state)" "restore: the group ends running"
    assert_le $((2 * (2 << 20))) "$(jf "$OUT" bytes)" "restore: bytes >= 2 x size"
    same_content "save/restore round trip" running sv_0 sv_1
else
    fail "save/restore round trip: restore the saved file" "no file: the save failed"
fi

# 7b. restore of a stream file built here from docs/stream-format.md and the sim content
# model of docs/simulated-devices.md (independent of `save`): a correct one restores, and
# another group's, a damaged or a truncated one is refused before any device is touched.
cat >"$T/mkstream.py" <<'PYEOF'
import os, struct, sys, random
sys.path.insert(0, os.path.join(os.environ["SRCDIR"], "tests"))
from streamfile import crc32c, encode_descriptor, header, record as rec, s16  # docs/stream-format.md
M = (1 << 64) - 1
def sm(x):
    x = (x + 0x9E3779B97F4A7C15) & M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
    return x ^ (x >> 31)
def digest(seed, size, gen):
    return sm(sm(sm(seed) ^ size) ^ gen)
def image(seed, size, gen):
    payload = size - 64
    n = (payload + 65535) // 65536
    h = b"VFSIMDEV" + struct.pack("<IIQQQI", 1, 0, size, seed, gen, 65536) + bytes(16)
    h += struct.pack("<I", crc32c(h))
    out = [h]
    for i in range(n):
        ver = gen // n + (1 if i < gen % n else 0)
        key = sm(seed ^ ((i * 0xD1B54A32D192ED03) & M) ^ ((ver * 0x8CB92BA72F3D8DD7) & M))
        ln = min(65536, payload - i * 65536)
        words = (ln + 7) // 8
        out.append(struct.pack("<%dQ" % words, *[key ^ ((j * 0x9E3779B97F4A7C15) & M) for j in range(words)])[:ln])
    return b"".join(out)
# mkstream.py FILE GROUP SIZE GEN NAME:SEED...
path, group, size, gen = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
devs = [(a.split(":")[0], int(a.split(":")[1])) for a in sys.argv[5:]]
out = [header(random.getrandbits(64))]
man = s16(group.encode()) + struct.pack("<I", len(devs))
for name, _ in devs:
    # the sim's compatibility descriptor (docs/stream-format.md): model and size, rule equal
    desc = encode_descriptor([(0, "model", "generic"), (0, "size", str(size))])
    man += s16(name.encode()) + struct.pack("<IQ", 7, size) + s16(b"sim") + s16(desc)
out.append(rec(1, 0xFFFFFFFF, 0, man))
totals = []
for i, (name, seed) in enumerate(devs):
    data = image(seed, size, gen)
    n = 0
    for off in range(0, len(data), 1 << 20):
        out.append(rec(2, i, n, data[off:off + (1 << 20)]))
        n += 1
    out.append(rec(3, i, n, struct.pack("<QQ", len(data), n)))
    totals.append((len(data), n))
out.append(rec(4, 0xFFFFFFFF, 1, struct.pack("<I", len(devs)) + b"".join(struct.pack("<QQ", b, r) for b, r in totals)))
open(path, "wb").write(b"".join(out))
for name, seed in devs:
    print("%s %016x" % (name, digest(seed, size, gen)))
PYEOF
mkgroup D rs - "size=256K" "size=256K"
mkgroup D ro - "size=256K" "size=256K"
GEN_FILE=$T/rs.stream
EXPECTED=$("$PY" "$T/mkstream.py" "$GEN_FILE" rs 262144 7 rs_0:4242 rs_1:4343)
# flip FILE OFFSET OUT: OUT is FILE with the byte at OFFSET (negative: from the middle) flipped
flip() {
    "$PY" -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read()); o = int(sys.argv[2])
o = len(b) // 2 if o < 0 else o
b[o] ^= 0xFF; open(sys.argv[3], "wb").write(b)' "$@"
}
flip "$GEN_FILE" -1 "$T/damaged.stream"
# Layout of the generated file: stream header 32, MANIFEST record 32 + 118 (two devices with
# a 30-byte descriptor each), then device 0's DEVICE_DATA record (header 32, payload 262144)
# at 182, its DEVICE_END at 262358.
flip "$GEN_FILE" $((182 + 32 + 1000)) "$T/damaged-payload.stream"
flip "$GEN_FILE" $((262358 + 4)) "$T/damaged-header.stream"
head -c $(($(stat -c %s "$GEN_FILE") * 2 / 3)) "$GEN_FILE" >"$T/short.stream"

devices_now() { # the whole `devices --json` of D, canonical
    jnorm "$(njctl D devices)"
}
BEFORE=$(devices_now)
expect_error FAILED_PRECONDITION njctl D restore ro "$GEN_FILE"
assert_contains "$ERR" "'rs'" "restore into another group: the error names the file's group"
assert_eq "$BEFORE" "$(devices_now)" "restore into another group: no device touched"
expect_error INVALID_ARGUMENT njctl D restore rs "$T/damaged.stream"
assert_eq "$BEFORE" "$(devices_now)" "restore of a damaged file (byte in the middle): no device touched"
expect_error INVALID_ARGUMENT njctl D restore rs "$T/damaged-payload.stream"
assert_match "$ERR" "payload CRC mismatch" "restore of a damaged payload: the error says payload CRC mismatch"
assert_eq "$BEFORE" "$(devices_now)" "restore of a damaged payload: no device touched"
expect_error INVALID_ARGUMENT njctl D restore rs "$T/damaged-header.stream"
assert_match "$ERR" "header CRC mismatch" "restore of a damaged record header: the error says what is wrong (header CRC mismatch)"
assert_eq "$BEFORE" "$(devices_now)" "restore of a damaged record header: no device touched"
expect_error INVALID_ARGUMENT njctl D restore rs "$T/short.stream"
assert_match "$ERR" "end(s|ed) before|truncated" "restore of a truncated file: the error says it ends early"
assert_eq "$BEFORE" "$(devices_now)" "restore of a truncated file: no device touched"
expect_error NOT_FOUND njctl D restore rs "$T/nosuch.stream"
expect_exit 0 njctl D restore rs "$GEN_FILE"
assert_eq "running" "$(jf "$OUT" state)" "restore of a correct stream: the group ends running"
assert_eq "$((2 * 262144))" "$(jf "$OUT" bytes)" "restore of a correct stream: bytes"
GOT=$(for d in rs_0 rs_1; do printf '%s %s\n' "$d" "$(dev_prop D "$d" digest)"; done)
assert_eq "$EXPECTED" "$GOT" "restore of a correct stream: the devices hold the stream's content (digest)"
expect_exit 0 njctl D restore rs "$GEN_FILE" --stop
assert_eq "stop stop" "$(dev_prop D rs_0 state) $(dev_prop D rs_1 state)" "restore --stop: the group ends in stop"
PARTIALS=$(find "$T" -name '*vfio-migd-partial*' | tr '\n' ' ')
assert_eq "" "$PARTIALS" "no partial file anywhere"

# ==== the daemons hold no more fds than after the first migration

for name in S D; do
    pidvar="${name}_PID"
    fdsvar="FDS_$name"
    if wait_fds "${!pidvar}" "${!fdsvar}" 5; then
        pass "daemon $name: no fd leaked (as many as after the first migration)"
    else
        fail "daemon $name: no fd leaked (as many as after the first migration)" "$(fd_count "${!pidvar}") open, ${!fdsvar} then: $(ls -l "/proc/${!pidvar}/fd" 2>&1 | tail -n +2)"
    fi
done

# ==== 8. back and forth: the group migrates S -> D -> S -> ... ten times in a row; every
# migration completes and the content arrives each time. Many short migrations in a row give
# races between the end of the switchover and the destination's answer their chances. Last in
# the script, as such a failure may leave a job stuck.

pair pp "size=4M" "size=4M" "size=4M"
PP_OK=0
PP_FAIL=""
for round in 1 2 3 4 5 6 7 8 9 10; do
    if ((round % 2)); then FROM=S TO=D; else FROM=D TO=S; fi
    run njctl "$TO" incoming pp --listen 127.0.0.1:0 --resume
    if [[ "$RC" != 0 ]]; then
        PP_FAIL="round $round: incoming on $TO: exit $RC: $ERR"
        break
    fi
    a=$(jf "$OUT" address)
    t=$(jf "$OUT" token)
    sockvar="${FROM}_SOCK"
    run timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "${!sockvar}" --json --timeout 10 migrate pp --to "$a" --token "$t" --wait
    if [[ "$RC" != 0 || "$(jf "$OUT" state)" != completed ]]; then
        id=$(jf "$OUT" id)
        if [[ -z "$id" ]]; then
            id=$(jf "$(njctl "$FROM" jobs)" 0.id)
        fi
        sleep 1
        PP_FAIL="round $round ($FROM -> $TO): migrate --wait exit $RC, state '$(jf "$OUT" state)'; $ERR
one second later, the source job: $(jf "$(job_json "$FROM" "$id")" phase state error | tr '\n' ' ')
the destination job: $(jf "$(njctl "$TO" jobs)" 0.phase 0.state | tr '\n' ' ')
devices: source $(digests "$FROM" $(devs_of pp 3)), destination $(digests "$TO" $(devs_of pp 3))"
        break
    fi
    from_sd=$(sd "$FROM" $(devs_of pp 3) | cut -d' ' -f1,3)
    to_sd=$(sd "$TO" $(devs_of pp 3) | cut -d' ' -f1,3)
    if [[ "$from_sd" != "$to_sd" ]]; then
        PP_FAIL="round $round ($FROM -> $TO): completed, but the content differs: $from_sd vs $to_sd"
        break
    fi
    PP_OK=$((PP_OK + 1))
done
if [[ -z "$PP_FAIL" ]]; then
    pass "back and forth: 10 migrations in a row completed, the content arrived each time"
else
    fail "back and forth: 10 migrations in a row completed, the content arrived each time" "$PP_OK completed, then $PP_FAIL"
fi
