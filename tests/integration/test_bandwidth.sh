#!/usr/bin/env bash
# The bandwidth caps of a live migration, between two real daemons: --bandwidth holds during
# pre-copy and is lifted in stop-copy (as QEMU does), --stopcopy-bandwidth is stop-copy's own
# cap, and `migrate-set` changes both while the migration runs. A capped phase's average rate
# is compared with its cap, within +-10 %, over a transfer of 4 s at the cap: long enough
# that one record (512 KiB) more or less is within the tolerance (the issue's own test).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_named_daemon S
start_named_daemon D

MIG_TIMEOUT=120 # bound of one `migrate --wait`: a hang detector
MIB=$((1 << 20))
SEED=2000

# pair GROUP : two 16 MiB devices on S and on D, grouped
pair() {
    mkgroup S "$1" "$SEED" "size=16M" "size=16M"
    mkgroup D "$1" - "size=16M" "size=16M"
    SEED=$((SEED + 10))
}

# incoming GROUP : PrepareIncoming on D (auto-resume); sets ADDR and TOKEN
incoming() {
    expect_exit 0 njctl D incoming "$1" --listen 127.0.0.1:0 --resume
    ADDR=$(jf "$OUT" address)
    TOKEN=$(jf "$OUT" token)
}

# migrate_wait GROUP ARGS... : migrate --wait on S; sets MIG (the migration's JSON)
migrate_wait() {
    local group=$1
    shift
    expect_exit 0 timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "$S_SOCK" --json \
        migrate "$group" --to "$ADDR" --token "$TOKEN" --wait "$@"
    MIG=$OUT
}

# rate_ok WHAT BYTES MS CAP : BYTES over MS is within +-10 % of CAP bytes per second
rate_ok() {
    local what=$1 verdict
    verdict=$("$PY" -c '
import sys
b, ms, cap = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
rate = b / (ms / 1000.0) if ms > 0 else 0.0
print("%s %.0f B/s (%.1f %% of the cap)" % ("ok" if 0.9 * cap <= rate <= 1.1 * cap else "off",
                                           rate, 100.0 * rate / cap))' "$2" "$3" "$4")
    assert_match "$verdict" "^ok " "$what: the average rate is within 10 % of the cap: $verdict"
}

# sum_devices FIELD : FIELD summed over the migration's devices
sum_devices() {
    "$PY" -c '
import json, sys
print(sum(d[sys.argv[2]] for d in json.loads(sys.argv[1])["migration"]["devices"]))' \
        "$MIG" "$1" 2>/dev/null || "$PY" -c '
import json, sys
print(sum(d[sys.argv[2]] for d in json.loads(sys.argv[1])["devices"]))' "$MIG" "$1"
}

# ==== 1. --bandwidth holds in pre-copy

pair pre
incoming pre
migrate_wait pre --bandwidth 8M
assert_eq "completed" "$(jf "$MIG" state)" "pre-copy capped at 8 MiB/s: the migration completes"
assert_eq "$((8 * MIB))" "$(jf "$MIG" options.bandwidth_limit)" "pre-copy capped: the options say the cap"
assert_eq "$((32 * MIB))" "$(sum_devices precopy_bytes)" "pre-copy capped: every byte went in pre-copy"
rate_ok "pre-copy capped at 8 MiB/s" "$(sum_devices precopy_bytes)" "$(jf "$MIG" precopy_ms)" $((8 * MIB))

# ==== 2. --bandwidth does not hold in stop-copy; --stopcopy-bandwidth does

pair lifted
incoming lifted
migrate_wait lifted --precopy off --bandwidth 1M
assert_eq "completed" "$(jf "$MIG" state)" "no pre-copy, --bandwidth 1M: completes"
assert_eq "$((32 * MIB))" "$(sum_devices stopcopy_bytes)" "no pre-copy: every byte went in stop-copy"
# Held to 1 MiB/s, the 32 MiB would take 32 s of downtime; lifted, it moves at the link's
# rate. 4x the cap is far below what any machine moves over loopback, even under a sanitizer.
check "--bandwidth is lifted in stop-copy: the downtime is not 32 MiB at 1 MiB/s" \
    "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 8000 else 1)' "$(jf "$MIG" downtime_ms)"

pair stop
incoming stop
migrate_wait stop --precopy off --stopcopy-bandwidth 8M
assert_eq "completed" "$(jf "$MIG" state)" "stop-copy capped at 8 MiB/s: completes"
assert_eq "$((8 * MIB))" "$(jf "$MIG" options.stopcopy_bandwidth_limit)" "stop-copy capped: the options say the cap"
rate_ok "stop-copy capped at 8 MiB/s" "$(sum_devices stopcopy_bytes)" "$(jf "$MIG" downtime_ms)" $((8 * MIB))

# ==== 3. migrate-set changes a running migration's caps

pair live
incoming live
# 1 byte per second: each device sends one record, then waits for days unless the cap changes.
expect_exit 0 njctl S migrate live --to "$ADDR" --token "$TOKEN" --bandwidth 1 --switchover manual
SID=$(jf "$OUT" id)
first_records_out() {
    MIG=$(job_json S "$SID")
    (($(sum_devices precopy_bytes) >= 2 * 512 * 1024))
}
wait_state "migrate-set: the capped pre-copy has sent its first records" first_records_out
expect_exit 0 njctl S migrate-set "$SID" --stopcopy-bandwidth 64M
assert_eq "1 $((64 * MIB))" "$(jf "$OUT" options.bandwidth_limit) $(jf "$OUT" options.stopcopy_bandwidth_limit)" \
    "migrate-set --stopcopy-bandwidth: that cap changes, the other stays"
expect_exit 0 nctl S job "$SID"
assert_contains "$OUT" "bandwidth 1 B/s (stop-copy 64 MiB/s)" "job shows both caps"
assert_eq "precopy" "$(jf "$(job_json S "$SID")" phase)" "at 1 B/s, pre-copy is still running"
expect_exit 0 njctl S migrate-set "$SID" --bandwidth 0
assert_eq "0" "$(jf "$OUT" options.bandwidth_limit)" "migrate-set --bandwidth 0: unlimited"
if wait_job S "$SID" "$STATE_WAIT" ready over; then
    assert_eq "ready" "$(jf "$JOB" phase)" "the pre-copy that waited at 1 B/s converges once the cap is lifted"
else
    fail "the pre-copy that waited at 1 B/s converges once the cap is lifted" "still $(jf "$JOB" phase)"
fi
expect_exit 0 njctl S switchover "$SID"
wait_job S "$SID" "$STATE_WAIT" over || true
assert_eq "completed" "$(jf "$JOB" state)" "migrate-set: the migration completes"

# ==== 4. refusals

expect_error FAILED_PRECONDITION njctl S migrate-set "$SID" --bandwidth 1M
assert_contains "$ERR" "moves no more data" "migrate-set on a completed migration: says why"
DID=$(jf "$(njctl D jobs)" 0.id)
expect_error INVALID_ARGUMENT njctl D migrate-set "$DID" --bandwidth 1M
assert_contains "$ERR" "set on the daemon that sends" "migrate-set on the destination: names where"
expect_exit 2 nctl S migrate-set "$SID"
assert_contains "$ERR" "nothing to set" "migrate-set without a cap: usage error"
expect_exit 2 nctl S migrate-set "$SID" --bandwidth fast
assert_contains "$ERR" "--bandwidth: 'fast' is not a rate in bytes per second" "a bad rate: says what a rate is"
expect_error NOT_FOUND njctl S migrate-set m999 --bandwidth 1M

# ==== 5. the caps are a link's: a save to a local file is not held to them

start_named_daemon C --bandwidth-limit 1 --stopcopy-bandwidth-limit 1
expect_exit 0 njctl C attach --sim size=4M --name c0
# At 1 byte per second the save would take weeks: it completes because no cap applies.
expect_exit 0 njctl C save c0 "$ALLOW_DIR/c0.sav"
assert_eq "$((4 * MIB))" "$(jf "$OUT" bytes)" "a save on a daemon with 1 B/s caps: every byte written, uncapped"
