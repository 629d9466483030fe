#!/usr/bin/env bash
# Migrations that fail, between real daemons driven by the real CLI. For every failure: the
# SOURCE devices are RUNNING with their state kept (digest unchanged when the failure comes
# before the switchover; after it, only the one documented stop step of the generation), the
# DESTINATION devices are reset (running) and reusable (a correct migration into them works
# next), both jobs end with an error naming what happened, within a generous bound, and
# neither daemon keeps an fd it did not have before (counted after the jobs ended).
# Failures: destination killed, source killed, link cut and one byte corrupted (through
# tcp_proxy.py), wrong / reused token, a destination device refusing the data (validation at
# resuming->stop; size mismatch at the manifest), an arc failing at the source's switchover,
# cancel on either side.
# Device lists ($(devs_of ...)) are split into words on purpose; the fd listings are diagnostics.
# shellcheck disable=SC2046,SC2012
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

END_BOUND=60 # seconds: "it ended", never a performance claim

start_named_daemon S
start_named_daemon D

# ---- helpers

# scenario NAME : the checks that follow are about NAME (W). A wait that ran into its bound
# (HUNG) is reported once: the later waits of the same scenario then give up after 2 s.
HUNG=0
scenario() {
    W=$1
    HUNG=0
}
bound() {
    if ((HUNG)); then echo 2; else echo "$END_BOUND"; fi
}



# migrate_wait DAEMON GROUP TO TOKEN ARGS... : `migrate --wait`, bounded; OUT, ERR, RC
migrate_wait() {
    local daemon=$1 group=$2 to=$3 token=$4 sockvar="${1}_SOCK"
    shift 4
    run timeout -k 2 "$(bound)" "$VFIO_MIGCTL" --socket "${!sockvar}" --json --timeout 10 \
        migrate "$group" --to "$to" --token "$token" --wait "$@"
    if [[ "$RC" == 124 || "$RC" == 137 ]]; then
        HUNG=1
        _diag "migrate --wait of $group did not end within its bound: $ERR"
    fi
}

# bg_migrate DAEMON GROUP TO TOKEN ARGS... : `migrate --wait` in the background; BG_PID
bg_migrate() {
    local daemon=$1 group=$2 to=$3 token=$4 sockvar="${1}_SOCK"
    shift 4
    timeout -k 2 "$END_BOUND" "$VFIO_MIGCTL" --socket "${!sockvar}" --json --timeout 10 \
        migrate "$group" --to "$to" --token "$token" --wait "$@" >"$T/bg.out" 2>"$T/bg.err" &
    BG_PID=$!
}

# bg_end WHAT : waits for the background migrate (bounded); one check; OUT, ERR, RC
bg_end() {
    if wait_exit "$BG_PID" $((END_BOUND + 5)); then
        RC=$WAIT_RC
        pass "$1: migrate --wait returned (within ${END_BOUND} s)"
    else
        kill -KILL "$BG_PID" 2>/dev/null || true
        wait "$BG_PID" 2>/dev/null || true
        RC=timeout
        HUNG=1
        fail "$1: migrate --wait returned (within ${END_BOUND} s)" "still waiting; killed"
    fi
    OUT=$(<"$T/bg.out")
    ERR=$(<"$T/bg.err")
}

# source_job DAEMON GROUP : the id of the newest source job of GROUP (empty if none)
source_job() {
    local j
    j=$(njctl "$1" jobs 2>/dev/null || echo '[]')
    "$PY" -c '
import json, sys
m = [m for m in json.loads(sys.argv[1]) if m["group"] == sys.argv[2] and m["role"] == "source"]
print(m[0]["id"] if m else "")' "$j" "$2"
}

# wait_source_job DAEMON GROUP : waits (STATE_WAIT) for the newest source job of GROUP; sets SID
has_source_job() {
    SID=$(source_job "$1" "$2")
    [[ -n "$SID" ]]
}
wait_source_job() {
    wait_until "$STATE_WAIT" has_source_job "$1" "$2" || true
}

# wait_moving DAEMON ID MIN_BYTES WHAT : the job moved data in pre-copy (bounded). The failures
# "during pre-copy" start their migration with --switchover manual: it stays before the
# switchover (precopy, or ready once converged) until the failure comes, however slowly the
# test gets there; the bandwidth limit makes it likely that data still flows then.
job_moving() {
    local j phase
    j=$(job_json "$1" "$2")
    phase=$(jf "$j" phase)
    [[ ("$phase" == precopy || "$phase" == ready) && "$(jf "$j" bytes)" -ge "$3" ]]
}
wait_moving() {
    if wait_until "$STATE_WAIT" job_moving "$1" "$2" "$3"; then
        pass "$4: pre-copy under way ($1 job $2 moved >= $3 bytes)"
    else
        fail "$4: pre-copy under way ($1 job $2 moved >= $3 bytes)" "job: $(job_json "$1" "$2")"
    fi
}

# facts DAEMON GROUP N : one line per device of GROUP, from one `devices --json`:
# "ID state digest generation seed transitions resets busy data_session_open"
facts() {
    local j
    j=$(njctl "$1" devices)
    "$PY" -c '
import json, sys
want = sys.argv[2].split()
devs = {d["id"]: d for d in json.loads(sys.argv[1])}
for i in want:
    d = devs[i]
    v = [d["state"], d["digest"], d["generation"], d["seed"], d["stats"]["transitions"],
         d["stats"]["resets"], d["busy"], d["data_session_open"]]
    print(i, " ".join(str(x).lower() if isinstance(x, bool) else str(x) for x in v))' "$j" "$(devs_of "$2" "$3")"
}

# remember DAEMON GROUP N : KEPT[DAEMON.DEV] = the facts now; refresh DAEMON GROUP N : NOW[...]
declare -A KEPT=() NOW=()
_facts_into() { # _facts_into ARRAY DAEMON GROUP N
    local -n into=$1
    local lines dev rest
    lines=$(facts "$2" "$3" "$4")
    while read -r dev rest; do
        # shellcheck disable=SC2034 # a nameref
        into[$2.$dev]=$rest
    done <<<"$lines"
}
remember() { _facts_into KEPT "$@"; }
refresh() { _facts_into NOW "$@"; }
# kept DAEMON DEV FIELD / now DAEMON DEV FIELD: 1 state, 2 digest, 3 generation, 4 seed,
# 5 transitions, 6 resets, 7 busy, 8 data_session_open
_field() {
    local -a f
    read -r -a f <<<"$1"
    echo "${f[$(($2 - 1))]}"
}
kept() { _field "${KEPT[$1.$2]}" "$3"; }
now() { _field "${NOW[$1.$2]}" "$3"; }

# source_kept WHAT GROUP N MODE : every source device of S running, its state kept.
# MODE before: failure before any device stopped: digest unchanged;
# MODE after: the group went through the switchover: seed unchanged, generation +1 at most
# (the stop arc, docs/simulated-devices.md), and the device is running again;
# MODE untouched: digest unchanged and not even a transition ran (stats.transitions).
source_kept() {
    local what=$1 group=$2 n=$3 mode=$4 dev g g0
    refresh S "$group" "$n"
    for dev in $(devs_of "$group" "$n"); do
        assert_eq "running" "$(now S "$dev" 1)" "$what: source $dev is running"
        case $mode in
        before | untouched)
            assert_eq "$(kept S "$dev" 2)" "$(now S "$dev" 2)" "$what: source $dev keeps its state (digest unchanged)"
            ;;
        after)
            g0=$(kept S "$dev" 3)
            g=$(now S "$dev" 3)
            assert_eq "$(kept S "$dev" 4)" "$(now S "$dev" 4)" "$what: source $dev keeps its content seed"
            if ((g == g0 || g == g0 + 1)); then
                pass "$what: source $dev keeps its state (generation $g0 -> $g: the stop arc only)"
            else
                fail "$what: source $dev keeps its state (generation $g0 -> $g: the stop arc only)"
            fi
            ;;
        esac
        if [[ $mode == untouched ]]; then
            assert_eq "$(kept S "$dev" 5)" "$(now S "$dev" 5)" "$what: source $dev never left running (no transition)"
        fi
        assert_eq "false" "$(now S "$dev" 7)" "$what: source $dev is not busy"
    done
}

# dest_untouched WHAT DAEMON GROUP N : digest, transitions and resets as remembered
dest_untouched() {
    local what=$1 daemon=$2 dev
    refresh "$daemon" "$3" "$4"
    for dev in $(devs_of "$3" "$4"); do
        assert_eq "$(kept "$daemon" "$dev" 2) $(kept "$daemon" "$dev" 5) $(kept "$daemon" "$dev" 6)" "$(now "$daemon" "$dev" 2) $(now "$daemon" "$dev" 5) $(now "$daemon" "$dev" 6)" "$what: destination $dev untouched (digest, transitions, resets)"
    done
}

# dest_reset WHAT DAEMON GROUP N : every destination device running, idle, no data session
dest_reset() {
    local what=$1 daemon=$2 dev
    refresh "$daemon" "$3" "$4"
    for dev in $(devs_of "$3" "$4"); do
        assert_eq "running false false" "$(now "$daemon" "$dev" 1) $(now "$daemon" "$dev" 7) $(now "$daemon" "$dev" 8)" "$what: destination $dev reset (running, idle, no data session)"
    done
}

# job_ended WHAT DAEMON ID STATE ERE : the job ends (bounded) in STATE, its error matching ERE
job_ended() {
    local what=$1 daemon=$2 id=$3 state=$4 re=$5
    if wait_job "$daemon" "$id" "$(bound)" over; then
        pass "$what: $daemon job $id ended (within ${END_BOUND} s)"
    else
        HUNG=1
        fail "$what: $daemon job $id ended (within ${END_BOUND} s)" "last: $JOB"
    fi
    assert_eq "$state" "$(jf "$JOB" state)" "$what: $daemon job $id $state"
    assert_match "$(jf "$JOB" error)" "$re" "$what: $daemon job $id's error names what happened"
}

# fds_mark / fds_back WHAT : fd counts of S and D before, and back to them after the jobs ended
fds_mark() {
    # shellcheck disable=SC2034 # read indirectly (${!n})
    FD_S=$(fd_count "$S_PID")
    # shellcheck disable=SC2034
    FD_D=$(fd_count "$D_PID")
}
fds_back() {
    local what=$1 name pid n
    for name in "${@:2}"; do
        pid="${name}_PID"
        n="FD_$name"
        if wait_fds "${!pid}" "${!n}" "$STATE_WAIT"; then
            pass "$what: no fd leaked by $name"
        else
            fail "$what: no fd leaked by $name" "$(fd_count "${!pid}") fds open, ${!n} before: $(ls -l "/proc/${!pid}/fd" 2>&1 | tail -n +2)"
        fi
    done
}

# reusable WHAT SRC DST GROUP N : a correct migration SRC -> DST of GROUP completes and the
# destination holds the source's content
reusable() {
    local what=$1 src=$2 dst=$3 group=$4 n=$5 dev
    expect_exit 0 njctl "$dst" incoming "$group" --listen 127.0.0.1:0 --resume
    local a t
    a=$(jf "$OUT" address)
    t=$(jf "$OUT" token)
    migrate_wait "$src" "$group" "$a" "$t"
    assert_eq "completed" "$(jf "$OUT" state)" "$what: then a correct migration into the same devices completes" 
    if [[ "$RC" != 0 ]]; then
        _diag "rc $RC: $ERR"
    fi
    assert_eq "$(facts "$src" "$group" "$n" | cut -d' ' -f1-3)" "$(facts "$dst" "$group" "$n" | cut -d' ' -f1-3 | sed 's/ running / stop /')" "$what: ... and the destination holds the source's content (source stop, destination running, same digests)"
}

# migrate_fails GROUP ARGS... : `incoming` on D with ARGS, then a migration of GROUP from S
# that must fail: migrate --wait exits 1 and the job says failed; sets SID
migrate_fails() {
    local group=$1
    shift
    incoming D "$group" --listen 127.0.0.1:0 "$@"
    migrate_wait S "$group" "$ADDR" "$TOKEN"
    assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: migrate --wait exits 1, failed"
    SID=$(jf "$OUT" id)
}

# recovered GROUP N : after a failed migration S -> D of GROUP, the destination is reset, the fds
# are back, and a correct migration of the same devices works
recovered() {
    dest_reset "$W" D "$1" "$2"
    fds_back "$W" S D
    reusable "$W" S D "$1" "$2"
}

# moving GROUP SEEDBASE : two 16 MiB devices a side, a manual-switchover migration S -> D at
# 10 MB/s (long enough to act on it in pre-copy) seen moving; sets SID and DID
moving() {
    mkgroup S "$1" "$2" "size=16M" "size=16M"
    mkgroup D "$1" - "size=16M" "size=16M"
    remember S "$1" 2
    fds_mark
    incoming D "$1" --listen 127.0.0.1:0 --resume
    expect_exit 0 njctl S migrate "$1" --to "$ADDR" --token "$TOKEN" --bandwidth 10M --switchover manual
    SID=$(jf "$OUT" id)
    wait_moving S "$SID" $((2 << 20)) "$W"
}

# A warm-up migration: the daemons' lazily opened fds exist before the first count.
mkgroup S warm 500 "size=1M"
mkgroup D warm - "size=1M"
incoming D warm --listen 127.0.0.1:0
migrate_wait S warm "$ADDR" "$TOKEN"
assert_eq "completed" "$(jf "$OUT" state)" "warm-up migration completes"

# ==== 1. the destination daemon is killed (SIGKILL) during pre-copy

scenario "destination killed"
start_named_daemon DK
mkgroup S dk 1100 "size=64M" "size=64M" "size=64M"
mkgroup DK dk - "size=64M" "size=64M" "size=64M"
mkgroup D dk - "size=64M" "size=64M" "size=64M"
remember S dk 3
fds_mark
incoming DK dk --listen 127.0.0.1:0
bg_migrate S dk "$ADDR" "$TOKEN" --bandwidth 20M --switchover manual
wait_source_job S dk
wait_moving S "$SID" $((4 << 20)) "$W"
stop_daemon KILL "$DK_PID"
bg_end "$W"
assert_eq "1" "$RC" "$W: migrate --wait exits 1"
assert_eq "failed" "$(jf "$OUT" state)" "$W: the migration failed"
assert_match "$(jf "$OUT" error)" "lost the destination|destination.*(closed|reset)" "$W: the error says the destination was lost"
job_ended "$W" S "$SID" failed "destination"
source_kept "$W" dk 3 before
fds_back "$W" S
reusable "$W (a new destination)" S D dk 3

# ==== 2. the source daemon is killed (SIGKILL) during pre-copy

scenario "source killed"
start_named_daemon SK
mkgroup SK sk 1200 "size=64M" "size=64M" "size=64M"
mkgroup D sk - "size=64M" "size=64M" "size=64M"
mkgroup S sk 1300 "size=64M" "size=64M" "size=64M"
fds_mark
incoming D sk --listen 127.0.0.1:0
expect_exit 0 njctl SK migrate sk --to "$ADDR" --token "$TOKEN" --bandwidth 20M --switchover manual
SKID=$(jf "$OUT" id)
wait_moving SK "$SKID" $((4 << 20)) "$W"
# A watch of the job on the daemon that dies must end too: exit 3, the daemon went away.
"$VFIO_MIGCTL" --socket "$SK_SOCK" watch "$SKID" >"$T/skwatch.out" 2>"$T/skwatch.err" &
SKW=$!
wait_until "$STATE_WAIT" test -s "$T/skwatch.out" || true
stop_daemon KILL "$SK_PID"
if wait_exit "$SKW" "$STATE_WAIT"; then
    assert_eq 3 "$WAIT_RC" "$W: watch on the killed daemon ends with exit 3 (the daemon went away)"
    assert_contains "$(cat "$T/skwatch.err")" "is the daemon running?" "$W: watch on the killed daemon says so"
else
    kill "$SKW" 2>/dev/null || true
    fail "$W: watch on the killed daemon ends" "still running $STATE_WAIT s after the kill"
fi
job_ended "$W" D "$DID" failed "lost the source|source.*(closed|reset)"
dest_reset "$W" D sk 3
fds_back "$W" D
reusable "$W (a new source)" S D sk 3

# ==== 3. the link is cut (the proxy between them is killed) during pre-copy

scenario "link cut"
mkgroup S cut 1400 "size=16M" "size=16M" "size=16M"
mkgroup D cut - "size=16M" "size=16M" "size=16M"
remember S cut 3
fds_mark
incoming D cut --listen 127.0.0.1:0
start_proxy "$ADDR"
bg_migrate S cut "$PROXY_ADDR" "$TOKEN" --bandwidth 10M --switchover manual
wait_source_job S cut
wait_moving S "$SID" $((2 << 20)) "$W"
assert_eq "4" "$(grep -c forwarding "$T/proxy.log" || true)" "$W: the proxy carries the control and the 3 data connections"
stop_proxy
bg_end "$W"
assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: migrate --wait exits 1, failed"
job_ended "$W" S "$SID" failed "lost the destination|closed|reset|Broken pipe"
job_ended "$W" D "$DID" failed "lost the source|closed|reset"
source_kept "$W" cut 3 before
recovered cut 3

# ==== 4. one byte of a data channel is corrupted on the way: in TLS (the default) the record
# fails its authentication, which no resealed CRC could pass; in clear (--tls off) the CRC
# catches it.

corrupt_record() {
    local tls=$1 group=$2 seed=$3 needle=$4
    scenario "corrupt record ($tls)"
    : >"$T/proxy.log"
    mkgroup S "$group" "$seed" "size=16M" "size=16M" "size=16M"
    mkgroup D "$group" - "size=16M" "size=16M" "size=16M"
    remember S "$group" 3
    fds_mark
    incoming D "$group" --listen 127.0.0.1:0 --tls "$tls"
    start_proxy "$ADDR" --flip-at $(((5 << 20) / 2)) # in the 3rd 1 MiB record's payload
    migrate_wait S "$group" "$PROXY_ADDR" "$TOKEN" --bandwidth 20M --tls "$tls"
    stop_proxy
    assert_contains "$(cat "$T/proxy.log")" "flipping byte" "$W: the proxy flipped a byte"
    assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: migrate --wait exits 1, failed"
    SID=$(jf "$OUT" id)
    job_ended "$W" D "$DID" failed "$needle"
    job_ended "$W" S "$SID" failed "$needle"
    source_kept "$W" "$group" 3 before
    recovered "$group" 3
}
corrupt_record psk crc 1500 "TLS record failed its authentication"
corrupt_record off crcclear 1550 "CRC"

# ==== 5. tokens: wrong, used by a running migration, used by a completed one, by a refused one

scenario "wrong token"
mkgroup S tok 1600 "size=4M" "size=4M"
mkgroup D tok - "size=4M" "size=4M"
remember S tok 2
remember D tok 2
fds_mark
incoming D tok --listen 127.0.0.1:0 --resume
GOOD_ADDR=$ADDR
GOOD_TOKEN=$TOKEN
TOK_DID=$DID
migrate_wait S tok "$ADDR" "$(printf '%064d' 0)"
assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: migrate --wait exits 1, failed"
assert_match "$(jf "$OUT" error)" "token" "$W: the error says the token was wrong"
source_kept "$W" tok 2 untouched
assert_eq "waiting" "$(jget "$(job_json D "$TOK_DID")" phase)" "$W: the incoming migration still waits (a wrong token does not use it up)"
expect_error INVALID_ARGUMENT njctl S migrate tok --to "$ADDR" --token short

scenario "token in use"
mkgroup S tku 1700 "size=4M" "size=4M"
remember S tku 2
expect_exit 0 njctl S migrate tok --to "$GOOD_ADDR" --token "$GOOD_TOKEN" --switchover manual
FIRST=$(jf "$OUT" id)
wait_job S "$FIRST" "$END_BOUND" ready over || true
assert_eq "ready" "$(jf "$JOB" phase)" "$W: the first migration waits in ready"
migrate_wait S tku "$GOOD_ADDR" "$GOOD_TOKEN"
assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: a second source with the same token: exits 1, failed"
assert_match "$(jf "$OUT" error)" "token" "$W: the error says the token was already used"
source_kept "$W" tku 2 untouched
assert_eq "ready active" "$(jget "$(job_json S "$FIRST")" phase state | tr '\n' ' ' | sed 's/ $//')" "$W: the first migration is not disturbed"
expect_exit 0 njctl S switchover "$FIRST"
wait_job S "$FIRST" "$END_BOUND" over || true
assert_eq "completed" "$(jf "$JOB" state)" "$W: the first migration then completes"
assert_eq "$(facts S tok 2 | cut -d' ' -f1,3)" "$(facts D tok 2 | cut -d' ' -f1,3)" "$W: ... and the content arrived (digests)"

scenario "token reused after completion"
expect_exit 0 njctl S group state tok running
remember S tok 2
remember D tok 2
migrate_wait S tok "$GOOD_ADDR" "$GOOD_TOKEN"
assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: exits 1, failed"
assert_match "$(jf "$OUT" error)" "token|refused|connect" "$W: the error says why"
source_kept "$W" tok 2 before
dest_untouched "$W" D tok 2

scenario "token reused after a refusal"
mkgroup D tku - "size=4M" "size=2M" # device 1 has the wrong size: the manifest is refused
remember D tku 2
incoming D tku --listen 127.0.0.1:0
migrate_wait S tku "$ADDR" "$TOKEN"
assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: the first attempt is refused (size mismatch)"
migrate_wait S tku "$ADDR" "$TOKEN"
assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: the second attempt with the same token: exits 1, failed"
assert_match "$(jf "$OUT" error)" "token|refused|connect" "$W: the error says why"
source_kept "$W" tku 2 untouched
dest_untouched "$W" D tku 2
fds_back "tokens" S D

# ==== 6. a destination device refuses the data

scenario "size mismatch"
mkgroup S sz 1800 "size=4M" "size=4M"
mkgroup D sz - "size=4M" "size=2M"
remember S sz 2
remember D sz 2
fds_mark
migrate_fails sz
assert_match "$(jf "$OUT" error)" "sz_1.*size" "$W: the error names the device and its size"
job_ended "$W" D "$DID" failed "sz_1.*size"
source_kept "$W" sz 2 untouched
dest_untouched "$W (refused before anything moved)" D sz 2
fds_back "$W" S D
expect_exit 0 njctl D incoming sz --listen 127.0.0.1:0
CID=$(jf "$OUT" id)
pass "$W: the destination group takes a new incoming migration"
expect_exit 0 njctl D cancel "$CID"

scenario "validation fails at resuming->stop"
mkgroup S val 1900 "size=4M" "size=4M"
mkgroup D val - "size=4M" "size=4M,fail_arc=resuming->stop,fail_nth=1"
remember S val 2
remember D val 2
fds_mark
migrate_fails val --resume
job_ended "$W" S "$SID" failed "val_1.*resuming->stop"
job_ended "$W" D "$DID" failed "val_1.*resuming->stop"
source_kept "$W" val 2 after
dest_reset "$W" D val 2
assert_le $(($(kept D val_1 6) + 1)) "$(now D val_1 6)" "$W: the destination device was reset"
fds_back "$W" S D
reusable "$W" S D val 2

# ==== 7. an arc fails at the source's switchover

scenario "switchover arc fails"
mkgroup S sw 2000 "size=4M" "size=4M,fail_arc=pre_copy_p2p->stop_copy,fail_nth=1" "size=4M"
mkgroup D sw - "size=4M" "size=4M" "size=4M"
remember S sw 3
fds_mark
migrate_fails sw --resume
job_ended "$W" S "$SID" failed "sw_1.*pre_copy_p2p->stop_copy"
job_ended "$W" D "$DID" failed "source failed.*sw_1.*pre_copy_p2p->stop_copy"
source_kept "$W" sw 3 after
assert_eq "$(kept S sw_1 3)" "$(now S sw_1 3)" "$W: the failing device's arc changed nothing"
recovered sw 3

# ==== 8. cancel: the source during pre-copy, the destination during pre-copy, while waiting

scenario "cancel on the source"
moving cs 2100
expect_exit 0 njctl S cancel "$SID"
job_ended "$W" S "$SID" cancelled "cancel"
job_ended "$W" D "$DID" failed "cancel"
expect_exit 1 timeout -k 2 60 "$VFIO_MIGCTL" --socket "$S_SOCK" watch "$SID"
source_kept "$W" cs 2 before
recovered cs 2

scenario "cancel on the destination"
moving cd 2200
# docs/migration.md, Phases: the destination is in precopy while pre-copy records arrive
assert_eq "precopy" "$(jf "$(job_json D "$DID")" phase)" "$W: meanwhile the destination job is in phase precopy too"
expect_exit 0 njctl D cancel "$DID"
job_ended "$W" D "$DID" cancelled "cancel"
job_ended "$W" S "$SID" failed "cancel"
source_kept "$W" cd 2 before
recovered cd 2

scenario "cancel of a waiting incoming migration"
mkgroup S cw 2300 "size=4M" "size=4M"
mkgroup D cw - "size=4M" "size=4M"
remember S cw 2
remember D cw 2
fds_mark
incoming D cw --listen 127.0.0.1:0
expect_exit 0 njctl D cancel "$DID"
job_ended "$W" D "$DID" cancelled "cancel"
dest_untouched "$W" D cw 2
expect_error FAILED_PRECONDITION njctl D cancel "$DID"
fds_back "$W" D
migrate_wait S cw "$ADDR" "$TOKEN"
assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$W: its address and token no longer work"
source_kept "$W" cw 2 untouched
reusable "$W" S D cw 2
