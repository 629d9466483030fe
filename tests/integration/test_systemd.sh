#!/usr/bin/env bash
# The daemon under a service manager (tests/systemd/sdharness.py plays systemd 252):
#  - socket activation: the daemon serves the listening socket passed as 'api' (and makes
#    none of its own), a client that connected before the daemon ran is answered, a client
#    that connects while the daemon is dead (SIGKILL) waits in the socket's queue and is
#    answered by the next daemon; the socket file outlives the daemon; a daemon started by
#    hand on the same path is kept out;
#  - an 'api' fd of the wrong kind, or two of them, stop the daemon with a message that says
#    what is wrong and what to set; an fd of another name is closed with a warning;
#  - notifications: READY=1 with STATUS=, STATUS= on each change of what the daemon holds
#    (devices, groups, running migrations), WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1;
#  - the connection limit (--max-connections) and accept() running out of fds: refused or
#    paused with a log line, served again once clients leave;
#  - the harness's fd store (the daemon uses it: test_restart.sh), with a
#    stand-in service: fds kept by name across the service's end and passed back after the
#    sockets; duplicates, bad names and fds beyond FileDescriptorStoreMax dropped;
#    FDSTOREREMOVE; only the main process heard.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SDSOCK=$SDH/api.sock
sdctl() { timeout -k 2 "$CTL_TIMEOUT" "$VFIO_MIGCTL" --socket "$SDSOCK" "$@"; }
service_log() { cat "$SDH/service.log" 2>/dev/null || true; }
queued_is() { [[ "$(sdh queued api)" == "$1" ]]; }

sdh_serve

# ---- socket activation: a client that came before the daemon is answered

sdh listen api "$SDSOCK" >/dev/null
sdctl health >"$T/early.out" 2>&1 &
EARLY=$!
check "a client connects before any daemon runs and waits in the queue" wait_until 10 queued_is 1
expect_exit 0 sdh start -- "$VFIO_MIGD" --socket "$T/unused.sock"
PID1=$OUT
expect_exit 0 sdh wait-notify READY=1
EARLY_RC=0
wait "$EARLY" || EARLY_RC=$?
assert_eq "0 SERVING" "$EARLY_RC $(<"$T/early.out")" "the early client is answered: SERVING"
assert_contains "$(service_log)" "serving on '$SDSOCK' (socket activation)" \
    "the log names systemd's socket and says it was passed"
assert_file_absent "$T/unused.sock" "no socket of its own at --socket"
expect_exit 0 sdctl --json version
assert_eq "$PID1" "$(jget "$OUT" pid)" "the daemon under the harness answers"
expect_exit 0 sdctl attach --sim size=4K --name act0

# A daemon started by hand on systemd's path would replace the socket: the lock keeps it out.
INODE=$(stat -c %i "$SDSOCK")
expect_exit 1 timeout 10 "$VFIO_MIGD" --socket "$SDSOCK"
assert_contains "$ERR" "(pid $PID1) already serves '$SDSOCK'" "a daemon by hand on the path is refused"
assert_eq "$INODE" "$(stat -c %i "$SDSOCK")" "systemd's socket file is left in place"

# ---- a restart: connections wait in the queue while no daemon runs

expect_exit 0 sdh kill KILL
expect_exit 0 sdh wait-exit
assert_eq "killed SIGKILL" "$OUT" "SIGKILL ends the daemon"
assert_file_exists "$SDSOCK" "the socket file outlives the daemon"
sdctl --json version >"$T/queued.out" 2>&1 &
QUEUED=$!
check "a client connects while no daemon runs and waits in the queue" wait_until 10 queued_is 1
expect_exit 0 sdh start -- "$VFIO_MIGD"
PID2=$OUT
expect_exit 0 sdh wait-notify READY=1
QUEUED_RC=0
wait "$QUEUED" || QUEUED_RC=$?
assert_eq "0" "$QUEUED_RC" "the queued client's call succeeds"
assert_eq "$PID2" "$(jget "$(<"$T/queued.out")" pid 2>&1)" "the new daemon answered it"
assert_eq "[]" "$(jnorm "$(sdctl --json devices)")" "the new daemon starts with no devices"

# SIGTERM: exit 0, and systemd's socket is neither removed nor closed for the next daemon.
expect_exit 0 sdh kill TERM
expect_exit 0 sdh wait-exit
assert_eq "exited 0" "$OUT" "SIGTERM: exit 0"
assert_eq "$INODE" "$(stat -c %i "$SDSOCK")" "SIGTERM leaves systemd's socket file"
expect_exit 0 sdh start -- "$VFIO_MIGD"
expect_exit 0 sdh wait-notify READY=1
expect_exit 0 sdctl health
expect_exit 0 sdh kill TERM
expect_exit 0 sdh wait-exit

# ---- what systemd passes as 'api' must be a listening unix stream socket

# refused KIND WHAT: the daemon given a wrong 'api' fd exits 1 at once, naming the fault.
refused() {
    local kind=$1 what=$2
    sdh close api >/dev/null
    : >"$SDH/service.log"
    expect_exit 0 sdh pass api "$kind" "$SDH/dgram.sock"
    expect_exit 0 sdh start -- "$VFIO_MIGD" --socket "$T/unused.sock"
    expect_exit 0 sdh wait-exit
    assert_eq "exited 1" "$OUT" "'api' $kind: the daemon exits 1"
    assert_contains "$(service_log)" "$what; vfio-migd.socket needs ListenStream=" "'api' $kind: says '$what' and the fix"
    assert_file_absent "$T/unused.sock" "'api' $kind: no socket made instead"
    rm -f "$SDH/dgram.sock"
}
refused file "is not a socket"
refused dgram "is not a stream socket"
refused stream "is not listening"

sdh close api >/dev/null
sdh listen api "$SDH/a1.sock" >/dev/null
sdh listen api "$SDH/a2.sock" >/dev/null
: >"$SDH/service.log"
expect_exit 0 sdh start -- "$VFIO_MIGD" --socket "$T/unused.sock"
expect_exit 0 sdh wait-exit
assert_eq "exited 1" "$OUT" "two 'api' fds: the daemon exits 1"
assert_contains "$(service_log)" "several fds named 'api'" "two 'api' fds: says so"
sdh close api >/dev/null

# An fd under another name: the daemon makes its own socket and closes that fd, saying so.
sdh listen other "$SDH/other.sock" >/dev/null
: >"$SDH/service.log"
expect_exit 0 sdh start -- "$VFIO_MIGD" --socket "$SOCK"
OTHER_PID=$OUT
expect_exit 0 sdh wait-notify READY=1
expect_exit 0 ctl health
assert_line_match "$(service_log)" "Closing fd [0-9]+ that systemd passed as 'other': nothing here uses it" \
    "an fd of another name is closed with a warning"
assert_not_contains "$(ss -xlnpH src "$SDH/other.sock")" "pid=$OTHER_PID," \
    "the daemon no longer holds that socket"
expect_exit 0 sdh kill TERM
expect_exit 0 sdh wait-exit
sdh close other >/dev/null

# ---- notifications: READY, STATUS= on every change, WATCHDOG, STOPPING

sdh listen api "$SDSOCK" >/dev/null
expect_exit 0 sdh start --watchdog-usec 200000 -- "$VFIO_MIGD" --allowed-dirs "$ALLOW_DIR"
expect_exit 0 sdh wait-notify READY=1
assert_eq "READY=1|STATUS=Serving: 0 devices, 0 groups, 0 migrations running" "$OUT" \
    "READY=1 comes with what the daemon holds"
expect_exit 0 sdh wait-notify WATCHDOG=1 --count 3
pass "WATCHDOG=1 pings keep coming (WATCHDOG_USEC=200000)"
expect_exit 0 sdctl attach --sim size=4K --name s0
expect_exit 0 sdh wait-notify "^STATUS=Serving: 1 device, 0 groups, 0 migrations running$"
expect_exit 0 sdctl attach --sim "size=4K,latency_ms=300" --name s1
expect_exit 0 sdctl group create g0 s0 s1
expect_exit 0 sdh wait-notify "^STATUS=Serving: 2 devices, 1 group, 0 migrations running$"
sdctl save g0 "$T/g0.sav" --group --resume >/dev/null 2>&1 &
SAVE=$!
expect_exit 0 sdh wait-notify "^STATUS=Serving: 2 devices, 1 group, 1 migration running$"
wait "$SAVE"
expect_exit 0 sdh wait-notify "^STATUS=Serving: 2 devices, 1 group, 0 migrations running$" --count 2
pass "a save is a migration running while it runs, and STATUS= says when it ended"
expect_exit 0 sdh status
assert_eq "Serving: 2 devices, 1 group, 0 migrations running" "$OUT" "the last STATUS= is current"
expect_exit 0 sdctl group delete g0
expect_exit 0 sdctl detach s1
expect_exit 0 sdh wait-notify "^STATUS=Serving: 1 device, 0 groups, 0 migrations running$" --count 2
N_STATUS=$(sdh messages | grep -c "STATUS=" || true)
assert_le "$N_STATUS" 12 "STATUS= is sent on changes only ($N_STATUS lines), not with every ping"
expect_exit 0 sdh kill TERM
expect_exit 0 sdh wait-notify STOPPING=1
expect_exit 0 sdh wait-notify "^STATUS=Shutting down: 1 device"
expect_exit 0 sdh wait-exit
assert_eq "exited 0" "$OUT" "with a watchdog: exit 0 on SIGTERM"

# ---- the connection limit

# hold N: N raw connections that send nothing, kept open until $T/hold.stop exists.
hold() {
    rm -f "$T/hold.ready" "$T/hold.stop"
    "$PY" -S - "$SDSOCK" "$1" "$T" <<'EOF' &
import os, socket, sys
path, n, t = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for _ in range(n):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    conns.append(c)
open(t + "/hold.ready", "w").close()
while not os.path.exists(t + "/hold.stop"):
    os.read(os.open(t + "/hold.fifo", os.O_RDONLY), 1)
EOF
    HOLD=$!
    wait_until 10 test -e "$T/hold.ready"
}
release() {
    touch "$T/hold.stop"
    echo >"$T/hold.fifo"
    wait "$HOLD" || true
}
mkfifo "$T/hold.fifo"

: >"$SDH/service.log"
expect_exit 0 sdh start -- "$VFIO_MIGD" --max-connections 3
expect_exit 0 sdh wait-notify READY=1
hold 3
expect_exit 3 sdctl health
assert_contains "$ERR" "UNAVAILABLE" "beyond --max-connections: the client is told the daemon is unavailable"
assert_line_match "$(service_log)" "Refused an API connection from pid [0-9]+ \\(uid [0-9]+\\): 3 connections are open, the maximum .*Raise --max-connections" \
    "the refusal is logged with the option to raise"
release
healthy() { sdctl health >/dev/null 2>&1; }
check "once the clients leave, a new one is served" wait_until 10 healthy
expect_exit 0 sdh kill TERM
expect_exit 0 sdh wait-exit
assert_eq "exited 0" "$OUT" "--max-connections 3: exit 0"

# Out of fds (RLIMIT_NOFILE 128, no connection limit to speak of): accept() fails with
# EMFILE; the daemon pauses, logs it (rate-limited), keeps running, and serves again once
# the clients leave.
: >"$SDH/service.log"
expect_exit 0 sdh start -- /usr/bin/prlimit --nofile=128 -- "$VFIO_MIGD" --max-connections 1000
expect_exit 0 sdh wait-notify READY=1
T_HOLD=$(ms_now)
hold 200
emfile_logged() { grep -q "Cannot accept API connections: Too many open files; pausing accepts" "$SDH/service.log"; }
check "out of fds: the pause is logged" wait_until 10 emfile_logged
N_LOGGED=$(grep -c "Cannot accept API connections" "$SDH/service.log" || true)
WINDOWS=$((($(ms_now) - T_HOLD) / 10000 + 1))
assert_le "$N_LOGGED" $((5 * WINDOWS)) "out of fds: at most 5 lines per 10 s ($N_LOGGED in $WINDOWS windows)"
assert_contains "$(service_log)" "Raise LimitNOFILE= (ulimit -n) or lower --max-connections" \
    "out of fds: the log says what to change"
release
check "out of fds, once the clients leave: served again" wait_until 20 healthy
expect_exit 0 sdh kill TERM
expect_exit 0 sdh wait-exit
assert_eq "exited 0" "$OUT" "after running out of fds: exit 0 on SIGTERM"


# ---- the harness's fd store, with a stand-in service (python, so that it can send fds)

sdh_quit
SDH=$T/sd2
sdh_serve --fdstore-max 3
sdh listen api "$SDH/api.sock" >/dev/null
cat >"$T/service.py" <<'EOF'
import array, os, socket, sys
def notify(text, fds=()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    s.sendmsg([text.encode()], anc, 0, os.environ["NOTIFY_SOCKET"])
def memfd(text):
    fd = os.memfd_create("state")
    os.write(fd, text.encode())
    return fd
def kind(fd):
    return "socket" if os.readlink("/proc/self/fd/%d" % fd).startswith("socket:") else "file"
with open(sys.argv[2], "w") as out:
    n = int(os.environ.get("LISTEN_FDS", "0"))
    out.write("pid-ok=%s\n" % (os.environ.get("LISTEN_PID") == str(os.getpid())))
    for i, name in enumerate(os.environ.get("LISTEN_FDNAMES", "").split(":")[:n]):
        k = kind(3 + i)
        text = os.pread(3 + i, 64, 0).decode() if k == "file" else "-"
        out.write("%d %s %s %s\n" % (3 + i, name, k, text))
if sys.argv[1] == "store":
    a, b = memfd("a"), memfd("b")
    notify("FDSTORE=1\nFDNAME=state", [a, b])
    notify("FDSTORE=1\nFDNAME=again", [a])                  # the same file: first name stays
    notify("FDSTORE=1\nFDNAME=bad:name", [memfd("c")])      # ':' is not allowed: closed
    if os.fork() == 0:
        notify("FDSTORE=1\nFDNAME=child", [memfd("z")])     # not the main process: ignored
        os._exit(0)
    os.wait()
    notify("FDSTORE=1\nFDNAME=extra", [memfd("x"), memfd("y")])  # the store holds 3: y goes
    notify("READY=1")
elif sys.argv[1] == "remove":
    notify("FDSTOREREMOVE=1\nFDNAME=state")
    notify("READY=1")
else:
    notify("READY=1")
EOF
# service MODE: runs the stand-in once, to its end.
service() {
    expect_exit 0 sdh start -- /usr/bin/python3 -S "$T/service.py" "$1" "$T/$1.txt"
    expect_exit 0 sdh wait-notify READY=1
    expect_exit 0 sdh wait-exit
}
service store
expect_exit 0 sdh fdstore
assert_eq "state state extra" "$(echo $OUT)" \
    "stored by name: a duplicate, a bad name, a child's message and the 4th fd dropped"
assert_contains "$(<"$SDH/harness.log")" "ignored a message from pid" "a child's message is not heard"
service check
assert_eq "pid-ok=True
3 api socket -
4 state file a
5 state file b
6 extra file x" "$(<"$T/check.txt")" \
    "the next start: LISTEN_PID its own, the socket first, then the stored fds, the same files"
service remove
expect_exit 0 sdh fdstore
assert_eq "extra" "$OUT" "FDSTOREREMOVE=1 closes every fd of that name"
expect_exit 0 sdh fdstore-clear
expect_exit 0 sdh fdstore
assert_eq "" "$OUT" "fdstore-clear empties the store (systemctl stop)"

sdh_quit
