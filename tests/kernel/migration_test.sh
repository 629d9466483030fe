#!/usr/bin/env bash
# kernel_migration — groups and migrations of real mtty devices between two real daemons, inside
# the Linux 6.12 test VM (run-vm.sh -M 3 -A tsc=reliable; ctest runs it as kernel_migration).
# Three mtty-1 mdevs A B C ($MTTY_UUIDS): A migrates (S) and B receives (D); C is A's partner
# in the group on S, then D's differently named device. tsc=reliable: without it the guest
# clock has 10 ms steps (jiffies) and every timestamp of a timeline is equal. Two daemons,
# S and D, on two sockets. Checked:
#  - a group of two devices (A, C on S): `group state g stop`, then `running`: each device's
#    arcs (running -> running_p2p -> stop and back), and the timeline of both transitions and
#    of `group show`'s last_transition keeps the P2P invariant: at no instant is one device in
#    stop/stop_copy/resuming while the other is in running/pre_copy (during an arc a device
#    is in both its from and to states). Then both UARTs still work (scratch register);
#  - a manifest mismatch (D's group holds a device of another name): refused, the source
#    device still running and not one transition run on either side;
#  - a wrong token: failed, the source device running and untouched;
#  - S -> D with pre-copy (A on S and B on D are both `tty0` in group `vm`): completed, 60 bytes
#    (mtty's 24-byte header during pre-copy, where mtty's read() returns 0 at the temporary
#    end, and 36 at stop-copy), downtime reported; on D tty0 runs with A's scratch register and
#    the bytes pushed into A's loop-back FIFO; A ends in stop;
#  - D -> S with --precopy off into S's stopped group: new data arrives and replaces A's;
#  - the mtty plugin (both daemons load build/plugins; E and F are mtty-2 mdevs): A (mtty-1)
#    shows plugin mtty and descriptor ports 1, F ports 2; A -> F refused before the source
#    stops, naming the field (ports: source '1', destination '2'), A still running with not
#    one transition more; E -> F (mtty-2 -> mtty-2) completes, 96 bytes, and F has E's
#    scratch register and FIFO bytes (the UART data check). The plugin also sees F's incoming
#    stream before F does (its header checked against F's two ports).
# Needs: VFIO_MIGD, VFIO_MIGCTL, RESULTS (a writable shared dir). Every CLI call costs about
# half a second under TCG: checks read several fields of one answer at once.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

read -r UA UB UC UE UF <<<"$MTTY_UUIDS"

# Under TCG every exec costs 0.2 s (python 0.8 s): the CLI is called without timeout(1) (its own
# --timeout bounds each call) and the JSON is read by ONE python process, started now (its cold
# start overlaps the daemons'), answering on a coprocess pipe.
# shellcheck disable=SC2016 # python source
_jq_py='
import json, sys
def walk(doc, path):
    for part in [p for p in path.split(".") if p != ""]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc
def text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)
INF = float("inf")
STOPPED, RUNS = {"stop", "stop_copy", "resuming"}, {"running", "pre_copy"}
def together(a, b):
    # closed segments (states, t0, t1); timestamps have microseconds: segments that only
    # touch, or meet in a point interior to neither, are not proven concurrent
    lo, hi = max(a[1], b[1]), min(a[2], b[2])
    return lo < hi or (lo == hi and any(x[1] < lo < x[2] for x in (a, b)))
def transition(doc):
    out = ["state %s rolled_back %s" % (doc["state"], text(doc["rolled_back"]))]
    arcs = {d["id"]: d["arcs"] for d in doc["devices"]}
    out += ["%s %s" % (i, " ".join(arcs[i])) for i in sorted(arcs)]
    tl = {}
    for a in doc["timeline"]:
        tl.setdefault(a["id"], []).append(a)
    same = set(tl) <= set(arcs) and all(
        [a["from"] + "->" + a["to"] for a in tl.get(i, [])] == arcs[i] for i in arcs) and all(
        a["start_ms"] <= a["end_ms"] for a in doc["timeline"])
    out.append("timeline " + ("matches" if same else "DIFFERS: " + json.dumps(doc["timeline"])))
    seg = {}  # device -> its states over time: before, during (both) and after each arc
    for i, l in tl.items():
        l, s, t = sorted(l, key=lambda a: a["start_ms"]), [], -INF
        for a in l:
            s += [({a["from"]}, t, a["start_ms"]), ({a["from"], a["to"]}, a["start_ms"], a["end_ms"])]
            t = a["end_ms"]
        seg[i] = s + [({l[-1]["to"]}, t, INF)]
    bad = ["%s in %s [%s, %s] while %s in %s [%s, %s]" % (
        x, "/".join(sorted(a[0])), a[1], a[2], y, "/".join(sorted(b[0])), b[1], b[2])
        for x in seg for y in seg if x != y for a in seg[x] if a[0] & STOPPED
        for b in seg[y] if b[0] & RUNS and together(a, b)]
    out.append("p2p " + ("kept" if not bad else "BROKEN: " + "; ".join(bad)))
    return "\n".join(out)
while True:
    head = sys.stdin.readline()
    if not head:
        break
    mode, *args = head.rstrip("\n").split("\t")
    lines = []
    while True:
        l = sys.stdin.readline()
        if not l or l == "\x1e\n":
            break
        lines.append(l)
    try:
        doc = json.loads("".join(lines))
        if mode == "get":
            res = " ".join(text(walk(doc, p)) for p in args)
        elif mode == "expr":
            res = text(eval(args[0], {"d": doc}))
        elif mode == "norm":
            res = json.dumps(walk(doc, args[0]), sort_keys=True)
        else:
            res = transition(walk(doc, args[0] if args else ""))
    except Exception as e:
        res = "jq %s: %s: %s" % (mode, type(e).__name__, e)
    sys.stdout.write(res + "\n\x1e\n")
    sys.stdout.flush()
'
coproc JQ { exec "$PY" -S -u -c "$_jq_py"; }
JQ_IN=${JQ[1]} JQ_OUT=${JQ[0]}
# jq_ask MODE JSON [ARG...]: one question to the python process; its answer on stdout
jq_ask() {
    local mode=$1 doc=$2 line res='' IFS=$'\t'
    shift 2
    local args="$*" # the arguments travel on the header line: their newlines become spaces
    printf '%s\n%s\n\x1e\n' "$mode${args:+$'\t'${args//$'\n'/ }}" "$doc" >&"$JQ_IN"
    while IFS= read -r line <&"$JQ_OUT"; do
        [[ "$line" == $'\x1e' ]] && break
        res+=${res:+$'\n'}$line
    done
    printf '%s\n' "$res"
}
# jf JSON PATH...: the fields on one line, space-separated (dot paths: devices.0.state)
jf() { jq_ask get "$@"; }
# jx JSON EXPR: a python expression over the document d, e.g. 'd["bytes"] > 0' -> true/false
jx() { jq_ask expr "$@"; }
# transition_facts JSON [PATH]: a group transition (`group state`, or PATH=last_transition of
# `group show`) in five lines: its state, each device's arcs, whether the timeline holds exactly
# those arcs in order (start <= end), and the P2P invariant over the timeline.
transition_facts() { jq_ask transition "$@"; }

# mc NAME ARGS... / mj NAME ARGS...: the CLI on daemon NAME (mj: --json)
mc() {
    local sockvar="${1}_SOCK"
    shift
    "$VFIO_MIGCTL" --socket "${!sockvar}" --timeout "$CTL_TIMEOUT" "$@"
}
mj() {
    local name=$1
    shift
    mc "$name" --json "$@"
}
# migrate_wait NAME ARGS...: `migrate ARGS --wait --json` on NAME, bounded (a hang detector,
# generous for TCG on a loaded host); OUT, ERR, RC
migrate_wait() {
    local sockvar="${1}_SOCK"
    shift
    run timeout -k 2 300 "$VFIO_MIGCTL" --socket "${!sockvar}" --json --timeout "$CTL_TIMEOUT" \
        migrate "$@" --wait
}
# reg_read NAME ID OFFSET / reg_write NAME ID OFFSET HEX: one byte of BAR0 (region 0)
reg_read() { mc "$1" region read "$2" 0 "$3" 1; }
reg_write() { mc "$1" region write "$2" 0 "$3" "$4" >/dev/null; }
# fifo_push NAME ID STRING / fifo_pop NAME ID N: mtty's loop-back FIFO (offset 0), a byte a time
fifo_push() {
    local i
    for ((i = 0; i < ${#3}; i++)); do
        reg_write "$1" "$2" 0 "$(printf '%02x' "'${3:i:1}")"
    done
}
fifo_pop() {
    local i popped=''
    for ((i = 0; i < $3; i++)); do
        popped+=$(reg_read "$1" "$2" 0)
    done
    echo "$popped"
}
# dev_facts NAME ID: "state transitions resets" of `show ID`
dev_facts() { jf "$(mj "$1" show "$2")" state stats.transitions stats.resets; }
# migration_refused FACTS DGROUP WHAT ERROR ERROR_WHAT: S's group vm migrated into D's group
# DGROUP fails (migrate --wait exits 1) with ERROR in its error, and S's tty0 still has FACTS:
# refused before anything moved
migration_refused() {
    local facts=$1 dgroup=$2 what=$3 error=$4 error_what=$5
    expect_exit 0 mj D incoming "$dgroup" --listen 127.0.0.1:0
    migrate_wait S vm --to "$(jf "$OUT" address)" --token "$(jf "$OUT" token)"
    assert_eq "1 failed" "$RC $(jf "$OUT" state)" "$what: migrate --wait exits 1, failed"
    assert_contains "$(jf "$OUT" error)" "$error" "  ... $error_what"
    assert_eq "$facts" "$(dev_facts S tty0)" \
        "  ... the source device is still running, not one transition run"
}

start_named_daemon S --plugin-dir "$BUILDDIR/plugins"
start_named_daemon D --plugin-dir "$BUILDDIR/plugins"

# ==== 1. a group of two devices: P2P-safe stop and resume, arcs and timeline

expect_exit 0 mj S attach --mdev "$UA" --name tty0
expect_exit 0 mj S attach --mdev "$UC" --name tty1
expect_exit 0 mj S group create g tty0 tty1
expect_exit 0 mj S group state g stop
printf '%s\n' "$OUT" >"$RESULTS/migration_test-group-stop.json" # the timelines, for a look
assert_eq "state stop rolled_back false
tty0 running->running_p2p running_p2p->stop
tty1 running->running_p2p running_p2p->stop
timeline matches
p2p kept" "$(transition_facts "$OUT")" "group stop: both devices running -> running_p2p -> stop, timeline P2P-safe"
expect_exit 0 mj S group state g running
RUN_JSON=$OUT
printf '%s\n' "$OUT" >"$RESULTS/migration_test-group-running.json"
assert_eq "state running rolled_back false
tty0 stop->running_p2p running_p2p->running
tty1 stop->running_p2p running_p2p->running
timeline matches
p2p kept" "$(transition_facts "$RUN_JSON")" "group running: both devices stop -> running_p2p -> running, timeline P2P-safe"
expect_exit 0 mj S group show g
assert_eq "false running running" "$(jf "$OUT" busy devices.0.state devices.1.state)" "group show: idle, both running"
assert_eq "$(transition_facts "$RUN_JSON")" "$(transition_facts "$OUT" last_transition)" \
    "group show: last_transition is the resume, with the same arcs and a P2P-safe timeline"
assert_eq "$(jq_ask norm "$RUN_JSON" timeline)" "$(jq_ask norm "$OUT" last_transition.timeline)" \
    "  ... and the same timeline, arc for arc"
reg_write S tty0 7 5a
reg_write S tty1 7 c3
assert_eq "5a c3" "$(reg_read S tty0 7) $(reg_read S tty1 7)" \
    "after the round trip both UARTs work (scratch registers 5a, c3 written and read back)"

# ==== the migration set-up: group vm = {tty0} on both daemons (A on S, B on D), and on D a
# group odd = {ttyX} (C: same kind of device, another name) for the manifest mismatch

expect_exit 0 mj S group delete g
expect_exit 0 mj S group create vm tty0
expect_exit 0 mj S detach tty1
expect_exit 0 mj D attach --mdev "$UB" --name tty0
expect_exit 0 mj D group create vm tty0
expect_exit 0 mj D attach --mdev "$UC" --name ttyX
expect_exit 0 mj D group create odd ttyX
fifo_push S tty0 'hi!' # A: FIFO 'hi!', scratch 5a (above)
A0=$(dev_facts S tty0)
assert_match "$A0" '^running [0-9]+ 0$' "A (S tty0) is running before the migrations"

# ==== 2. refusals before anything moves: a manifest mismatch, a wrong token

migration_refused "$A0" odd "manifest mismatch" \
    "the source's device 'tty0' has no device of that name in group 'odd' here" \
    "the error names the device missing on the destination"
assert_match "$(dev_facts D ttyX)" '^running 0 0$' "  ... the destination device is untouched (running, no transition)"

expect_exit 0 mj D incoming vm --listen 127.0.0.1:0 --resume
ADDR=$(jf "$OUT" address) TOKEN=$(jf "$OUT" token) DID=$(jf "$OUT" id)
migrate_wait S vm --to "$ADDR" --token "$(printf '%064d' 0)"
assert_eq "1 failed" "$RC $(jf "$OUT" state)" "wrong token: migrate --wait exits 1, failed"
assert_contains "$(jf "$OUT" error)" "does not hold this token" "  ... the error says so"
assert_eq "$A0" "$(dev_facts S tty0)" "  ... the source device is still running, not one transition run"

# ==== 3. S -> D, pre-copy auto (the incoming migration the wrong token did not use up)

migrate_wait S vm --to "$ADDR" --token "$TOKEN"
MIG=$OUT
assert_eq "0 completed completed auto 60 tty0 stop 24 36 true" \
    "$RC $(jf "$MIG" state phase options.precopy bytes devices.0.id devices.0.state devices.0.precopy_bytes \
        devices.0.stopcopy_bytes devices.0.done)" \
    "S -> D: exits 0, completed, 60 bytes: mtty's 24-byte header in pre-copy, 36 at stop-copy; A ends in stop"
assert_eq ok "$(jx "$MIG" '"ok" if 0 < d["downtime_ms"] <= d["elapsed_ms"] and d["precopy_ms"] > 0 else
    "downtime %s elapsed %s precopy %s" % (d["downtime_ms"], d["elapsed_ms"], d["precopy_ms"])')" \
    "S -> D: downtime_ms present, > 0 and <= elapsed_ms; a pre-copy phase (precopy_ms > 0)"
expect_exit 0 mj D job "$DID"
assert_eq "completed destination 60" "$(jf "$OUT" state role bytes)" "the destination's job: completed, 60 bytes"
assert_match "$(dev_facts D tty0)" '^running ' "D's tty0 (B) runs (incoming --resume)"
assert_eq "5a 686921" "$(reg_read D tty0 7) $(fifo_pop D tty0 3)" \
    "D's tty0 has A's scratch register (5a) and pops A's FIFO bytes 'hi!'"

# ==== 4. D -> S, --precopy off, into S's stopped group

reg_write D tty0 7 a5
fifo_push D tty0 ok
expect_exit 0 mj S incoming vm --listen 127.0.0.1:0 --resume
ADDR=$(jf "$OUT" address) TOKEN=$(jf "$OUT" token)
migrate_wait D vm --to "$ADDR" --token "$TOKEN" --precopy off
assert_eq "0 completed off 60 stop 0 60" \
    "$RC $(jf "$OUT" state options.precopy bytes devices.0.state devices.0.precopy_bytes devices.0.stopcopy_bytes)" \
    "D -> S --precopy off: exits 0, completed, 60 bytes all at stop-copy; D's tty0 ends in stop"
assert_eq ok "$(jx "$OUT" '"ok" if 0 < d["downtime_ms"] <= d["elapsed_ms"] and d["precopy_ms"] == 0 else
    "downtime %s elapsed %s precopy %s" % (d["downtime_ms"], d["elapsed_ms"], d["precopy_ms"])')" \
    "D -> S: downtime_ms present, > 0 and <= elapsed_ms; no pre-copy phase"
assert_eq "a5 6f6b" "$(reg_read S tty0 7) $(fifo_pop S tty0 2)" \
    "S's tty0 (A) runs with D's scratch register (a5) and FIFO ('ok', not A's old 'hi!')"

# ==== 5. the mtty plugin: mtty-1 -> mtty-2 refused before the source stops; mtty-2 -> mtty-2

expect_exit 0 mj S show tty0
assert_eq "mtty 1 1.0 true" "$(jf "$OUT" plugin descriptor.ports descriptor.stream_version prerequisites.0.ok)" \
    "A (mtty-1): claimed by the mtty plugin, descriptor ports 1, stream version 1.0, bound to mtty"
expect_exit 0 mj S attach --mdev "$UE" --name tty2
expect_exit 0 mj S group create two tty2
expect_exit 0 mj D group delete vm
expect_exit 0 mj D detach tty0
expect_exit 0 mj D attach --mdev "$UF" --name tty0
expect_exit 0 mj D group create vm tty0
expect_exit 0 mj D show tty0
assert_eq "mtty 2" "$(jf "$OUT" plugin descriptor.ports)" "F (mtty-2): descriptor ports 2"
A1=$(dev_facts S tty0)
migration_refused "$A1" vm "A (mtty-1) -> F (mtty-2)" \
    "device 'tty0': ports: source '1', destination '2'" \
    "the error names the device, the field and both values"

expect_exit 0 mj D group delete vm
expect_exit 0 mj D detach tty0
expect_exit 0 mj D attach --mdev "$UF" --name tty2
expect_exit 0 mj D group create two tty2
reg_write S tty2 7 3c
fifo_push S tty2 'mt2'
expect_exit 0 mj D incoming two --listen 127.0.0.1:0 --resume
migrate_wait S two --to "$(jf "$OUT" address)" --token "$(jf "$OUT" token)"
assert_eq "0 completed 96" "$RC $(jf "$OUT" state bytes)" \
    "E (mtty-2) -> F (mtty-2): completed, 96 bytes (24-byte header and two 36-byte ports)"
assert_eq "3c 6d7432" "$(reg_read D tty2 7) $(fifo_pop D tty2 3)" \
    "F has E's scratch register (3c) and pops E's FIFO bytes 'mt2'"

exec {JQ_IN}>&- # the python process ends at EOF
wait_exit "$JQ_PID" 5 || kill "$JQ_PID"
cp "$T/S.log" "$RESULTS/migration_test-S.log" 2>/dev/null || true
cp "$T/D.log" "$RESULTS/migration_test-D.log" 2>/dev/null || true
dmesg >"$RESULTS/migration_test-dmesg.log" 2>/dev/null || true
