#!/usr/bin/env bash
# At most one copy of the VM runs (issue 11 item 5): a migration S -> D through tcp_proxy.py,
# which cuts the link at one control message of the hand-over, each in turn (the message itself
# is dropped): HELLO, ACCEPT, STREAM_END, PREPARED, COMMIT, DONE. For each cut point:
#   - each side ends as the commit protocol says (docs/migration.md, "The hand-over"): before
#     the source's commit it rolls back and the destination resets; a side that lost its peer
#     after its commit point is in_doubt, its devices held (busy "in_doubt", not running);
#   - at most one side runs the VM at any point (a source whose job failed, a destination whose
#     job completed);
#   - the orchestrator's rule — ask the other side, then `vfio-migctl resolve ID --resume` or
#     `--abort` — leaves exactly one running copy, holding the source's state.
# "Runs the VM": a source rolled back (job failed, devices running), or a destination that took
# over (job completed, devices running with the source's content).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

END_BOUND=60 # seconds: "it ended", never a performance claim

# Both in clear ([migration] tls = off, as --tls off): the proxy reads the control messages to
# drop each in turn, which TLS would (rightly) not let it do.
start_named_daemon S --tls off
start_named_daemon D --tls off

# state_of DAEMON ID : the job's state ("" when there is no such job)
state_of() { jf "$(job_json "$1" "$2")" state; }

# runs DAEMON ID ROLE : 0 when that side runs the VM now
runs() {
    local st
    st=$(state_of "$1" "$2")
    case $3 in
    source) [[ "$st" == failed || "$st" == cancelled ]] ;;
    destination) [[ "$st" == completed ]] ;;
    esac
}

# copies SID DID : how many sides run the VM now
copies() {
    local n=0
    if runs S "$1" source; then n=$((n + 1)); fi
    if runs D "$2" destination; then n=$((n + 1)); fi
    echo "$n"
}

# device_states DAEMON GROUP : "state busy_operation" of each device, one line
device_states() {
    local out=() dev j
    for dev in $(devs_of "$2" 2); do
        j=$(njctl "$1" show "$dev")
        out+=("$(jf "$j" state)/$(jf "$j" busy_operation)")
    done
    echo "${out[*]}"
}

# resolve_rule DAEMON ID OTHER OTHER_ID : the orchestrator resolves one side in doubt after
# asking the other (docs/migration.md): a destination resumes when the source committed (its
# job in_doubt or completed); a source gives the VM up when the destination's job is completed
# or in_doubt. Retries while the job still stops its workers (FAILED_PRECONDITION, bounded).
resolve_rule() {
    local daemon=$1 id=$2 other_state how
    other_state=$(state_of "$3" "$4")
    if [[ $daemon == D ]]; then
        [[ "$other_state" == in_doubt || "$other_state" == completed ]] && how=--resume || how=--abort
    else
        [[ "$other_state" == completed || "$other_state" == in_doubt ]] && how=--abort || how=--resume
    fi
    if wait_until "$STATE_WAIT" njctl "$daemon" resolve "$id" "$how" >/dev/null 2>&1; then
        pass "$W: $daemon job $id resolved $how (the other side is $other_state)"
    else
        fail "$W: $daemon job $id resolved $how" "$(njctl "$daemon" resolve "$id" "$how" 2>&1)"
    fi
}

# settled DAEMON ID : 0 once the job is no longer active (ended, or in doubt)
settled() {
    local st
    st=$(state_of "$1" "$2")
    [[ -n "$st" && "$st" != active ]]
}

# cut_at MESSAGE SRC_STATE DST_STATE : one migration with the link cut at MESSAGE; the jobs
# must then be in those states (DST_STATE "waiting": the destination never heard the source)
n=0
cut_at() {
    local msg=$1 want_s=$2 want_d=$3 group SID st
    n=$((n + 1))
    group=h$n
    W="cut at $msg"
    mkgroup S "$group" $((2000 + 10 * n)) "size=1M" "size=2M"
    mkgroup D "$group" - "size=1M" "size=2M"
    incoming D "$group" --listen 127.0.0.1:0 --resume
    start_proxy "$ADDR" --cut-at "$msg"
    run timeout -k 2 "$END_BOUND" "$VFIO_MIGCTL" --socket "$S_SOCK" --json --timeout 10 \
        migrate "$group" --to "$PROXY_ADDR" --token "$TOKEN" --wait --peer-timeout-ms 20000
    stop_proxy
    assert_contains "$(cat "$T/proxy.log")" "dropped $msg" "$W: the proxy dropped $msg and cut the link"
    assert_eq "1" "$RC" "$W: migrate --wait exits 1 (the migration did not simply complete)"
    SID=$(jf "$OUT" id)
    if [[ $want_d == waiting ]]; then
        assert_eq "waiting" "$(jf "$(job_json D "$DID")" phase)" "$W: the destination still waits (it never heard the source)"
        expect_exit 0 njctl D cancel "$DID"
    fi
    wait_until "$END_BOUND" settled D "$DID" || true
    wait_until "$END_BOUND" settled S "$SID" || true
    assert_eq "$want_s" "$(state_of S "$SID")" "$W: the source's job is $want_s"
    [[ $want_d == waiting ]] || assert_eq "$want_d" "$(state_of D "$DID")" "$W: the destination's job is $want_d"
    assert_le "$(copies "$SID" "$DID")" 1 "$W: at most one side runs the VM"
    if [[ $want_s == in_doubt ]]; then
        assert_eq "stop_copy/in_doubt stop_copy/in_doubt" "$(device_states S "$group")" "$W: the source's devices are held as they were (stop_copy, busy in_doubt)"
        assert_contains "$(nctl S jobs)" "in_doubt" "$W: 'jobs' on the source shows in_doubt"
        assert_contains "$(jf "$(job_json S "$SID")" error)" "vfio-migctl resolve $SID" "$W: the source's job names the resolve command"
        expect_exit 1 nctl S cancel "$SID"
        assert_contains "$ERR" "is in doubt, it cannot be cancelled" "$W: cancel on the source in doubt is refused, saying why"
    fi
    if [[ $want_d == in_doubt ]]; then
        assert_eq "stop/in_doubt stop/in_doubt" "$(device_states D "$group")" "$W: the destination's devices are held as they were (stop, busy in_doubt)"
        assert_contains "$(nctl D jobs)" "in_doubt" "$W: 'jobs' on the destination shows in_doubt"
        expect_exit 1 nctl D cancel "$DID"
        assert_contains "$ERR" "is in doubt, it cannot be cancelled" "$W: cancel on the destination in doubt is refused, saying why"
    fi
    # The orchestrator: every side in doubt, each after asking the other.
    st=$(state_of S "$SID")
    if [[ $st == in_doubt ]]; then resolve_rule S "$SID" D "$DID"; fi
    if [[ $(state_of D "$DID") == in_doubt ]]; then resolve_rule D "$DID" S "$SID"; fi
    wait_until "$END_BOUND" settled D "$DID" || true
    wait_until "$END_BOUND" settled S "$SID" || true
    assert_eq "1" "$(copies "$SID" "$DID")" "$W: after resolving, exactly one copy runs (source $(state_of S "$SID"), destination $(state_of D "$DID"))"
    if runs D "$DID" destination; then
        assert_eq "$(facts_of S "$group")" "$(facts_of D "$group" | sed 's/running/stop/g')" "$W: the destination holds the source's state (same digests; the source stopped)"
    else
        assert_eq "running/ running/" "$(device_states S "$group")" "$W: the source's devices run again, idle"
    fi
}

# facts_of DAEMON GROUP : "state:digest" of each device
facts_of() { digests "$1" $(devs_of "$2" 2); }

# Before the commit: nothing decided, the source keeps (or takes back) the VM.
cut_at HELLO failed waiting
cut_at ACCEPT failed failed
cut_at STREAM_END failed failed
# PREPARED lost: the source never committed, it rolls back; the destination cannot know.
cut_at PREPARED failed in_doubt
# COMMIT lost: the source committed, the destination never heard it: both in doubt.
cut_at COMMIT in_doubt in_doubt
# DONE lost: the destination took the VM, the source never heard it.
cut_at DONE in_doubt completed

# A daemon stops (SIGTERM, checked at the end of the test) with a job left in doubt.
W="left in doubt"
mkgroup S left 4000 "size=1M" "size=1M"
mkgroup D left - "size=1M" "size=1M"
incoming D left --listen 127.0.0.1:0 --resume
start_proxy "$ADDR" --cut-at COMMIT
run timeout -k 2 "$END_BOUND" "$VFIO_MIGCTL" --socket "$S_SOCK" --json --timeout 10 \
    migrate left --to "$PROXY_ADDR" --token "$TOKEN" --wait
stop_proxy
wait_until "$END_BOUND" settled D "$DID" || true
assert_eq "in_doubt in_doubt" "$(jf "$OUT" state) $(state_of D "$DID")" "$W: both sides in doubt, left so"

# A resolve where nothing is in doubt is refused, and says why.
mkgroup S plain 3000 "size=1M" "size=1M"
mkgroup D plain - "size=1M" "size=1M"
incoming D plain --listen 127.0.0.1:0 --resume
run timeout -k 2 "$END_BOUND" "$VFIO_MIGCTL" --socket "$S_SOCK" --json --timeout 10 \
    migrate plain --to "$ADDR" --token "$TOKEN" --wait
assert_eq "0 completed" "$RC $(jf "$OUT" state)" "an uncut migration completes"
SID=$(jf "$OUT" id)
expect_error FAILED_PRECONDITION njctl S resolve "$SID" --resume
assert_contains "$ERR" "not in doubt" "resolve on a completed migration says it is not in doubt"
expect_exit 2 nctl S resolve "$SID"
assert_contains "$ERR" "--resume" "resolve without an outcome names the two"
