#!/usr/bin/env bash
# Logs an operator can filter (docs/operations.md "Logs"):
#  - stderr that is not the journal (no JOURNAL_STREAM, or one naming another file) gets
#    today's lines, "vfio-migd: <level>: <message>", and no fields;
#  - stderr that is the journal (JOURNAL_STREAM = its dev:ino): every message is a journal
#    entry sent natively (sd_journal_sendv), with PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE,
#    CODE_LINE and, for a device, a group or a migration, VFIO_MIGD_DEVICE=, VFIO_MIGD_GROUP=,
#    VFIO_MIGD_MIGRATION= (a group's and a running migration's entries name every device), so
#    that filtering on one device finds its whole history; nothing goes to stderr;
#  - stderr that is the journal while journald's socket is missing: "<N>message" lines on
#    stderr (sd_journal_sendv() would drop them and report success).
# journald's socket is /run/systemd/journal/socket, a fixed path: those runs happen in a
# private mount namespace with a tmpfs on /run, where tests/systemd/journal_sink.py listens
# instead (as root, or as a user who may make user namespaces; skipped otherwise).
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# ---- stderr is not the journal: today's format

start_daemon
expect_exit 0 jctl attach --sim "size=4K,fail_arc=running->pre_copy" --name plain
expect_exit 1 jctl state plain pre_copy
stop_daemon
LOG=$(<"$T/daemon.log")
assert_line_match "$LOG" "^vfio-migd: info: vfio-migd $PROJECT_VERSION serving on '$SOCK' \\(grpc" \
    "plain stderr: 'vfio-migd: info: ...' lines"
assert_line_match "$LOG" "^vfio-migd: warning: Device 'plain': state change failed: arc running->pre_copy" \
    "plain stderr: a device's warning, as before"
assert_not_contains "$LOG" "VFIO_MIGD_" "plain stderr: no fields"

# JOURNAL_STREAM inherited, but stderr is elsewhere: not the journal (systemd.exec(5)).
: >"$T/daemon.log"
JOURNAL_STREAM=8:12345 start_daemon
stop_daemon
assert_line_match "$(<"$T/daemon.log")" "^vfio-migd: info: vfio-migd $PROJECT_VERSION serving" \
    "JOURNAL_STREAM naming another file: plain lines"

# ---- stderr is the journal, in a mount namespace of its own

if unshare --mount true 2>/dev/null; then
    NS=(unshare --mount)
elif unshare --user --map-root-user --mount true 2>/dev/null; then
    NS=(unshare --user --map-root-user --mount)
else
    printf '# SKIP the journal runs: cannot make a mount namespace here (unshare)\n'
    exit 0
fi

# journal_daemon SINK ARGS...: a daemon whose stderr ($T/jd.err) is "the journal", in a
# namespace where /run is empty but for journald's socket, served by the sink when SINK is
# "sink"; waits until it answers on $T/j.sock.
JSOCK=$T/j.sock
journal_daemon() {
    local sink=$1
    shift
    : >"$T/jd.err"
    JOURNAL_STREAM=$(stat -c '%d:%i' "$T/jd.err") "${NS[@]}" bash -c '
        set -e
        mount -t tmpfs -o mode=0755 tmpfs /run
        mkdir -p /run/systemd/journal
        if [[ "$1" == sink ]]; then
            "$PY" -S "$SRCDIR/tests/systemd/journal_sink.py" /run/systemd/journal/socket \
                "$T/journal.jsonl" --parent $$ &
            for _ in $(seq 200); do [[ -S /run/systemd/journal/socket ]] && break; sleep 0.05; done
        fi
        shift
        exec "$VFIO_MIGD" --socket "$T/j.sock" --allowed-dirs "'"$ALLOW_DIR"'" "$@"' journal_daemon "$sink" "$@" 2>>"$T/jd.err" &
    DAEMON_PID=$!
    DAEMON_PIDS+=("$DAEMON_PID")
    check "the daemon under a journal comes up" wait_until 10 jhealthy
}
jhealthy() { timeout -k 1 5 "$VFIO_MIGCTL" --socket "$JSOCK" health >/dev/null 2>&1; }
export PY SRCDIR T VFIO_MIGD
jj() { timeout -k 2 "$CTL_TIMEOUT" "$VFIO_MIGCTL" --socket "$JSOCK" --json "$@"; }

# entries FIELD VALUE: the MESSAGE of every entry that has FIELD=VALUE, one a line.
# entry MESSAGE_ERE: the first entry whose MESSAGE matches, as canonical JSON.
_entries_py='
import json, re, sys
mode, path = sys.argv[1], sys.argv[2]
for line in open(path):
    e = json.loads(line)
    msg = e.get("MESSAGE", [""])[0]
    if mode == "field" and sys.argv[4] in e.get(sys.argv[3], []):
        print(msg)
    elif mode == "entry" and re.search(sys.argv[3], msg):
        print(json.dumps({k: v for k, v in e.items() if k != "MESSAGE"}, sort_keys=True))
        break
'
entries() { "$PY" -S -c "$_entries_py" field "$T/journal.jsonl" "$@"; }
entry() { "$PY" -S -c "$_entries_py" entry "$T/journal.jsonl" "$@"; }

journal_daemon sink --log-level debug
expect_exit 0 jj attach --sim size=4K --name jd0
expect_exit 0 jj attach --sim size=4K --name jd1
expect_exit 0 jj attach --sim "size=4K,fail_arc=running->pre_copy" --name jd2
expect_exit 0 jj group create jg jd0 jd1
expect_exit 0 jj save jg "$T/jg.sav" --group --resume
MIG=$(jget "$(jj jobs)" 0.id)
expect_exit 1 jj state jd2 pre_copy
expect_exit 0 jj group delete jg
expect_exit 0 jj detach jd1
stop_daemon
assert_eq "0" "$DAEMON_RC" "the daemon under a journal exits 0"

assert_eq "" "$(<"$T/jd.err")" "stderr is the journal: every message went as an entry, none to stderr"
assert_eq '{"CODE_FILE": ["daemon/main.c"], "CODE_LINE": ["'"$(grep -n 'log_info("vfio-migd %s serving on' "$SRCDIR/daemon/main.c" | cut -d: -f1)"'"], "PRIORITY": ["6"], "SYSLOG_IDENTIFIER": ["vfio-migd"]}' \
    "$(entry "^vfio-migd $PROJECT_VERSION serving on '$JSOCK'")" \
    "a daemon-wide entry: priority, identifier, file and line, no object field"
assert_eq '{"CODE_FILE": ["daemon/manager.c"], "CODE_LINE": ["'"$(grep -n 'Attached sim device' "$SRCDIR/daemon/manager.c" | cut -d: -f1)"'"], "PRIORITY": ["6"], "SYSLOG_IDENTIFIER": ["vfio-migd"], "VFIO_MIGD_DEVICE": ["jd0"]}' \
    "$(entry "^Attached sim device 'jd0'")" "a device's entry carries VFIO_MIGD_DEVICE"
assert_match "$(entry "^Created group 'jg'")" '"VFIO_MIGD_DEVICE": \["jd0", "jd1"\], "VFIO_MIGD_GROUP": \["jg"\]' \
    "a group's entry carries VFIO_MIGD_GROUP and every member"
assert_match "$(entry "^Migration $MIG \\(save, group 'jg'\\): new -> ")" \
    '"VFIO_MIGD_DEVICE": \["jd0", "jd1"\], "VFIO_MIGD_GROUP": \["jg"\], "VFIO_MIGD_MIGRATION": \["'"$MIG"'"\]' \
    "a migration's entry carries VFIO_MIGD_MIGRATION, its group and its devices"
assert_match "$(entry "^Device 'jd2': state change failed: arc running->pre_copy")" '"PRIORITY": \["4"\].*"VFIO_MIGD_DEVICE": \["jd2"\]' \
    "a device's warning: priority 4 and its device"
assert_match "$(entry "^trace op_run_arc: jd2 ")" '"PRIORITY": \["7"\].*"VFIO_MIGD_DEVICE": \["jd2"\]' \
    "a device's trace line (from a worker) carries its device"

# What `journalctl VFIO_MIGD_DEVICE=jd0` would show: jd0's history, and only jd0's.
HIST=$(entries VFIO_MIGD_DEVICE jd0)
for m in "Attached sim device 'jd0'" "Created group 'jg'" "Group 'jg': running -> stop_copy done" \
    "Migration $MIG (save, group 'jg'): new -> " "Group 'jg': stop_copy -> running done" \
    "trace op_run_arc: jd0 running->running_p2p" "Deleted group 'jg'"; do
    assert_contains "$HIST" "$m" "VFIO_MIGD_DEVICE=jd0 finds: $m"
done
assert_not_contains "$HIST" "jd2" "VFIO_MIGD_DEVICE=jd0 finds nothing about jd2"
assert_not_contains "$HIST" "serving on" "VFIO_MIGD_DEVICE=jd0 finds no daemon-wide line"
assert_contains "$(entries VFIO_MIGD_DEVICE jd1)" "Detached device 'jd1'" "VFIO_MIGD_DEVICE=jd1 finds its detach"
assert_contains "$(entries VFIO_MIGD_MIGRATION "$MIG")" "completed" "VFIO_MIGD_MIGRATION=$MIG finds its end"

# ---- stderr is the journal, but journald's socket is missing: <N> lines on the stream

journal_daemon nosink
expect_exit 0 jj attach --sim "size=4K,fail_arc=running->pre_copy" --name journal
expect_exit 1 jj state journal pre_copy
stop_daemon
assert_line_match "$(<"$T/jd.err")" "^<6>vfio-migd $PROJECT_VERSION serving" "no journald: info lines start with <6>"
assert_line_match "$(<"$T/jd.err")" "^<4>Device 'journal'" "no journald: warnings start with <4>"
