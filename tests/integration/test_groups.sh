#!/usr/bin/env bash
# Groups through the real daemon and CLI: create/show/list/delete, P2P-safe transitions with
# the recorded timeline checked for the invariant (no device stopped while another runs),
# rollback on an injected arc failure with every device's final state in the JSON, the P2P
# precondition and --force, busy refusals, and bad input that changes nothing.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# Debug level: the trace of each arc's start (op_run_arc) tells when every device is in its arc.
start_daemon --log-level debug

# The invariant, checked on `group show --json`'s last_transition.timeline: during an arc a
# device counts as in both its from and its to state; a reset arc leaves it quiescent.
check_invariant() {
    "$PY" - "$1" <<'PYEOF'
import json, sys
t = json.loads(sys.argv[1])["last_transition"]
run, stop = {"running", "pre_copy"}, {"stop", "stop_copy", "resuming"}
spans = {}
for d in t["devices"]:
    spans[d["id"]] = [(0.0, float("inf"), {d["start_state"]})]
arcs = sorted(t["timeline"], key=lambda a: a["start_ms"])
final = {d["id"]: d["state"] for d in t["devices"]}
state = {d["id"]: (d["start_state"], 0.0) for d in t["devices"]}
out = {d["id"]: [] for d in t["devices"]}
for k, a in enumerate(arcs):
    cur, since = state[a["id"]]
    out[a["id"]].append((since, a["start_ms"], {cur}))
    to = "quiescent" if a.get("reset") else a["to"]
    out[a["id"]].append((a["start_ms"], a["end_ms"], {a["from"], to}))
    if a.get("errno"):
        # A failed arc leaves the device where the next arc starts from (or its final state).
        nxt = [b for b in arcs[k + 1:] if b["id"] == a["id"]]
        to = nxt[0]["from"] if nxt else final[a["id"]]
        out[a["id"]].append((a["start_ms"], a["end_ms"], {to}))
    state[a["id"]] = (to, a["end_ms"])
for i, (cur, since) in state.items():
    out[i].append((since, float("inf"), {cur}))
for i in out:
    for j in out:
        if i == j:
            continue
        for (a0, a1, s) in out[i]:
            for (b0, b1, r) in out[j]:
                if s & stop and r & run and a0 < b1 and b0 < a1:
                    print("violation: %s %s [%s,%s] vs %s %s [%s,%s]" % (i, s, a0, a1, j, r, b0, b1))
                    sys.exit(1)
print("ok")
PYEOF
}

# The quiesce arc of each is held until all three are in it (see the stop below).
for i in 0 1 2; do
    expect_exit 0 jctl attach --sim "size=64K,$(held 'running->running_p2p' quiesce)" --name "n$i"
done

# ---- create, show, list

expect_exit 0 jctl group create vm n0 n1 n2
assert_eq "vm" "$(jget "$OUT" name)" "group create: name"
assert_eq "n0 n1 n2" "$(jget "$OUT" devices.0.id devices.1.id devices.2.id | tr '\n' ' ' | sed 's/ $//')" "group create: devices in order"
assert_eq "running" "$(jget "$OUT" devices.0.state)" "group create --json: devices are objects with a state, as in show and list"
assert_eq "vm" "$(dev_field n0 group)" "show --json: a member's group"
expect_exit 0 ctl devices
assert_line_match "$OUT" "^n1 +sim .* vm$" "devices (text): the GROUP column names a member's group"
expect_exit 0 jctl group list
assert_eq "vm" "$(jget "$OUT" 0.name)" "group list: the group"
expect_exit 0 jctl group show vm
assert_eq "running running running" "$(jget "$OUT" 'devices.0.state' 'devices.1.state' 'devices.2.state' | tr '\n' ' ' | sed 's/ $//')" "group show: states"
# The text forms are tables like every other: headers, one state for the group, --no-headers.
expect_exit 0 ctl group list
assert_line_match "$OUT" "^NAME +DEVICES +STATE +BUSY$" "group list (text): header"
assert_line_match "$OUT" "^vm +3 +running +no$" "group list (text): one state for the group, not running,running,running"
expect_exit 0 ctl --no-headers group list
assert_eq "1" "$(wc -l <<<"$OUT")" "group list --no-headers: the row alone"
expect_exit 0 ctl group show vm
assert_line_match "$OUT" "^DEVICE +STATE$" "group show (text): the device table has a header"
assert_line_match "$OUT" "^n0 +running$" "group show (text): a device's row"

# ---- P2P-safe stop and resume

jctl group state vm stop >"$T/stop.out" 2>"$T/stop.err" &
BG=$!
all_quiescing() {
    local i
    for i in 0 1 2; do
        grep -q -F "trace op_run_arc: n$i running->running_p2p" "$T/daemon.log" || return 1
    done
}
wait_state "group stop: every device is in its quiesce arc at once" all_quiescing
release quiesce
wait_bg
assert_eq "0" "$BGRC" "group stop: exit 0"
S=$(<"$T/stop.out")
assert_eq "stop" "$(jget "$S" state)" "group stop: state"
assert_eq "2" "$(jget "$S" phases)" "group stop: two phases (quiesce, stop)"
for i in 0 1 2; do
    assert_eq "stop" "$(jget "$S" "devices.$i.state")" "group stop: device $i in stop"
    assert_eq "running->running_p2p running_p2p->stop" "$(jlist "$S" "devices.$i.arcs")" "group stop: device $i arcs"
done
assert_match "$(jget "$S" elapsed_ms)" "^[0-9.]+$" "group stop: elapsed_ms"
# Parallel: the held quiesce arcs overlap in the recorded timeline (held until all had begun:
# no arc is assumed to last long enough for the others to start).
PAR=$("$PY" -c '
import json, sys
t = json.loads(sys.argv[1])["timeline"]
a = [x for x in t if x["from"] + "->" + x["to"] == "running->running_p2p"]
print(len(a) == 3 and all(x["start_ms"] < y["end_ms"] and y["start_ms"] < x["end_ms"] for x in a for y in a))
' "$S")
assert_eq "True" "$PAR" "group stop: the quiesce phase runs on every device at once"
expect_exit 0 jctl group show vm
assert_eq "ok" "$(check_invariant "$OUT")" "timeline of the stop: P2P invariant holds"
expect_exit 0 ctl group show vm
assert_contains "$OUT" "running_p2p -> stop" "group show (text) prints the timeline"
assert_line_match "$OUT" "^DEVICE +START +STATE +ERROR$" "group show (text): the last transition's table has a header"
assert_line_match "$OUT" "^n0 +running +stop +-$" "group show (text): no error is '-', as in every table"
assert_not_contains "$OUT" "[forced]" "a transition without force is not marked forced"

expect_exit 0 jctl group state vm running
assert_eq "running" "$(jget "$OUT" state)" "group resume: state"
assert_eq "stop->running_p2p running_p2p->running" "$(jlist "$OUT" devices.1.arcs)" "group resume: arcs"
expect_exit 0 jctl group show vm
assert_eq "ok" "$(check_invariant "$OUT")" "timeline of the resume: P2P invariant holds"

expect_exit 0 jctl group state vm pre_copy
assert_eq "1" "$(jget "$OUT" phases)" "running -> pre_copy needs no barrier"
expect_exit 0 jctl group state vm stop_copy
assert_eq "pre_copy->pre_copy_p2p pre_copy_p2p->stop_copy" "$(jlist "$OUT" devices.0.arcs)" "pre_copy -> stop_copy keeps the session"
expect_exit 0 jctl group state vm running

# ---- rollback on a failing arc

expect_exit 0 jctl attach --sim "size=64K,latency_ms=5" --name a
expect_exit 0 jctl attach --sim "size=64K,latency_ms=5,fail_arc=running_p2p->stop,fail_errno=5" --name bad
expect_exit 0 jctl attach --sim "size=64K,latency_ms=5" --name b
expect_exit 0 jctl group create vm2 a bad b
expect_error ABORTED jctl group state vm2 stop
F=$OUT
assert_contains "$(jget "$F" error)" "EIO" "failed transition: errno in the error"
assert_eq "true" "$(jget "$F" rolled_back)" "failed transition: rolled back"
assert_eq "running running running" "$(jget "$F" devices.0.state devices.1.state devices.2.state | tr '\n' ' ' | sed 's/ $//')" "failed transition: every device back in running"
assert_eq "running_p2p->stop" "$(jget "$F" devices.1.failed_arc)" "failed transition: the failed arc"
assert_eq "5" "$(jget "$F" devices.1.errno)" "failed transition: its errno"
assert_contains "$ERR" "brought back" "failed transition: stderr says it was rolled back"
for id in a bad b; do
    assert_eq "running" "$(dev_field "$id" state)" "after the rollback: $id running"
done
expect_exit 0 jctl group show vm2
assert_eq "ok" "$(check_invariant "$OUT")" "timeline with the rollback: P2P invariant holds"

# ---- P2P precondition and --force

expect_exit 0 jctl attach --sim "size=64K,flags=stop_copy" --name plain
expect_exit 0 jctl attach --sim "size=64K" --name c
expect_exit 0 jctl group create vm3 plain c
expect_error FAILED_PRECONDITION jctl group state vm3 stop
assert_contains "$ERR" "lacks P2P" "no P2P: the reason"
assert_contains "$ERR" "(\`--force\`)" "no P2P: names the option, not the API's field"
assert_eq "running" "$(dev_field plain state)" "no P2P: nothing moved"
expect_exit 0 jctl group state vm3 stop --force
assert_eq "true" "$(jget "$OUT" forced)" "--force: done, marked forced"
assert_eq "stop" "$(dev_field plain state)" "--force: the non-P2P device stopped"

# ---- busy

# Both devices' stop arcs are held: the transition runs until the refusals have been checked.
expect_exit 0 jctl attach --sim "size=64K,$(held 'running_p2p->stop' slow)" --name s0
expect_exit 0 jctl attach --sim "size=64K,$(held 'running_p2p->stop' slow)" --name s1
expect_exit 0 jctl group create slow s0 s1
ctl group state slow stop >"$T/bg.out" 2>&1 &
BG=$!
group_busy() { [[ "$(jget "$(jctl group show slow)" busy)" == true ]]; }
wait_state "the slow transition is under way" group_busy
expect_error FAILED_PRECONDITION jctl group state slow running
expect_error FAILED_PRECONDITION jctl state s0 running --force
assert_contains "$ERR" "device 's0' is busy" "a forced state change during the transition: busy"
# Between its arcs too: the transition holds both devices, and show says so.
assert_eq "true true" "$(dev_field s0 busy) $(dev_field s1 busy)" "show: both devices busy during the transition"
assert_match "$(dev_field s0 busy_operation)" "^(set-state|group-transition)$" "show: busy with the transition"
expect_error FAILED_PRECONDITION jctl group delete slow
refused_while_held slow "the transition" "the slow transition completed"
assert_eq "stop stop" "$(dev_field s0 state) $(dev_field s1 state)" "the slow transition reached stop"

# ---- bad input changes nothing

expect_exit 0 jctl attach --sim "size=64K" --name free
BEFORE=$(jctl devices)
expect_error NOT_FOUND jctl group create g1 free nosuch
expect_error ALREADY_EXISTS jctl group create vm a
expect_error FAILED_PRECONDITION jctl group create g2 n0
expect_error INVALID_ARGUMENT jctl group create "bad name" n0
expect_error INVALID_ARGUMENT jctl group state vm error
expect_exit 2 ctl group state vm bogus
expect_exit 2 ctl group frobnicate
expect_error NOT_FOUND jctl group state nosuch stop
expect_error NOT_FOUND jctl group show nosuch
expect_error FAILED_PRECONDITION jctl detach n0
assert_contains "$ERR" "belongs to group 'vm'" "detach of a grouped device: the reason"
expect_exit 0 jctl group state vm stop_copy
expect_error INVALID_ARGUMENT jctl group state vm pre_copy
assert_contains "$ERR" "STOP_COPY" "stop_copy -> pre_copy refused with the kernel's reason"
expect_exit 0 jctl group state vm running
assert_eq "$(jnorm "$(jget "$BEFORE" '#')")" "$(jnorm "$(jget "$(jctl devices)" '#')")" "bad requests added no device"
expect_exit 0 jctl group list
assert_eq "4" "$(jget "$OUT" '#')" "bad requests made no group"

# ---- one device of a group alone (issue 11 item 6)

# What moves one device while the others stay breaks the group's P2P-safe order: refused,
# naming the group command and the option that forces it; what only reads is not.
expect_exit 0 jctl attach --sim "size=64K" --name al0
expect_exit 0 jctl attach --sim "size=64K" --name al1
expect_exit 0 jctl attach --sim "size=64K" --name loner
expect_exit 0 jctl save loner "$T/loner.sav" --resume
expect_exit 0 jctl group create alone al0 al1
ALONE_BEFORE=$(snapshot)
alone_refused() { # WHAT GROUP-COMMAND OPTION CMD...
    local what=$1 command=$2 option=$3
    shift 3
    expect_error FAILED_PRECONDITION jctl "$@"
    assert_contains "$ERR" "device 'al0' belongs to group 'alone': $what breaks the group's P2P-safe order; use '$command' for the whole group, or $option to act on this device alone" \
        "$1 of a grouped device: refused with the group command and $option"
}
alone_refused "changing its state alone" "vfio-migctl group state alone TARGET" --force state al0 stop
alone_refused "resetting it alone (it runs again)" "vfio-migctl group reset alone" --force reset al0
alone_refused "saving it alone (it stops)" "vfio-migctl save alone FILE --group" --force-grouped \
    save al0 "$T/al0.sav"
alone_refused "saving it alone (it stops)" "vfio-migctl save alone FILE --group" --force-grouped \
    save al0 "$T/al0.sav" --device --resume
alone_refused "restoring it alone" "vfio-migctl restore alone FILE --group" --force-grouped \
    restore al0 "$T/loner.sav"
assert_file_absent "$T/al0.sav" "the refused save wrote no file"
assert_eq "$ALONE_BEFORE" "$(snapshot)" "the refused requests changed nothing"
expect_exit 0 jctl state al0
assert_eq "running" "$(jget "$OUT" state)" "reading a grouped device's state is not refused"
expect_exit 0 jctl group state alone stop
assert_eq "stop stop" "$(dev_field al0 state) $(dev_field al1 state)" "the group command moves them both"
expect_exit 0 jctl group state alone running
# --force (--force-grouped for a file) does it on this device alone.
expect_exit 0 jctl state al0 running_p2p --force
assert_eq "running_p2p running" "$(dev_field al0 state) $(dev_field al1 state)" "state --force: this device alone"
expect_exit 0 jctl reset al0 --force
assert_eq "running running" "$(dev_field al0 state) $(dev_field al1 state)" "reset --force: this device alone"
expect_exit 0 jctl save al0 "$T/al0.sav" --resume --force-grouped
assert_file_exists "$T/al0.sav" "save --force-grouped: the file"
expect_exit 0 jctl restore al0 "$T/loner.sav" --force-grouped
assert_eq "$(dev_field loner digest)" "$(dev_field al0 digest)" "restore --force-grouped: al0 holds loner's state"
# A device left where only a reset helps names the forced reset and the group reset.
expect_exit 0 jctl state al0 resuming --force
expect_error FAILED_PRECONDITION jctl state al0 running
expect_exit 1 ctl state al0 stop_copy --force
assert_contains "$ERR" "'vfio-migctl reset --force al0' brings it back to running (its migration state is discarded), or 'vfio-migctl group reset alone' the whole group" \
    "a grouped device in resuming: the way out is the forced reset or the group reset"
expect_exit 0 jctl group reset alone

# A migration holds its devices from the moment it exists: show says busy, with what.
expect_exit 0 jctl incoming alone --listen 127.0.0.1:0
MID=$(jget "$OUT" id)
assert_eq "true migration" "$(dev_field al0 busy) $(dev_field al0 busy_operation)" "show: busy with the migration"
expect_error FAILED_PRECONDITION jctl state al0 stop --force
assert_contains "$ERR" "device 'al0' is busy: migration" "a forced state change during the migration: busy"
expect_exit 0 jctl cancel "$MID"
wait_state "the cancelled migration lets the device go" test "$(dev_field al0 busy)" == false
expect_exit 0 jctl group delete alone

# ---- delete

expect_exit 0 jctl group delete vm
expect_exit 0 jctl detach n0
assert_eq "3" "$(jget "$(jctl group list)" '#')" "group delete: gone from the list"
