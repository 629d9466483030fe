#!/usr/bin/env bash
# The daemon's life: command line, one daemon per socket, SIGTERM/SIGINT (also with an
# operation in flight), SIGHUP (a reload, never a stop), a stale socket after kill -9, systemd
# notifications (READY, STOPPING, WATCHDOG), and no fd leak over many operations.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# ---- command line

expect_exit 0 "$VFIO_MIGD" --help
assert_contains "$OUT" "Usage: vfio-migd" "--help prints the usage"
assert_contains "$OUT" "--socket" "--help documents --socket"
assert_contains "$OUT" "--log-level" "--help documents --log-level"
assert_contains "$OUT" "--max-connections" "--help documents --max-connections"
expect_exit 0 "$VFIO_MIGD" -h
expect_exit 0 "$VFIO_MIGD" --version
assert_eq "vfio-migd $PROJECT_VERSION" "$OUT" "--version prints the version"
expect_exit 0 "$VFIO_MIGD" -V
assert_eq "vfio-migd $PROJECT_VERSION" "$OUT" "-V prints the version"

expect_exit 2 timeout 60 "$VFIO_MIGD" --socket "$T/x.sock" --log-level loud
assert_contains "$ERR" "'loud'" "bad --log-level: names the value"
expect_exit 2 timeout 60 "$VFIO_MIGD" --socket "$T/x.sock" --log-level ""
expect_exit 2 timeout 60 "$VFIO_MIGD" --socket "$T/x.sock" --workers 0
assert_contains "$ERR" "--workers" "bad --workers: names the option"
expect_exit 2 timeout 60 "$VFIO_MIGD" --socket "$T/x.sock" --workers many
for bad in 0 65537 many ""; do
    expect_exit 2 timeout 60 "$VFIO_MIGD" --socket "$T/x.sock" --max-connections "$bad"
    assert_contains "$ERR" "--max-connections must be a whole number from 1 to 65536" "bad --max-connections '$bad': says the range"
done
expect_exit 2 timeout 60 "$VFIO_MIGD" --socket "$T/x.sock" --frobnicate
expect_exit 2 timeout 60 "$VFIO_MIGD" --socket "$T/x.sock" extra-argument
assert_contains "$ERR" "extra-argument" "unexpected argument: named"
expect_exit 2 timeout 60 "$VFIO_MIGD" --socket
assert_file_absent "$T/x.sock" "usage errors create no socket"
assert_file_absent "$T/x.sock.lock" "usage errors create no lock file"
for level in debug info notice warning error; do
    expect_exit 0 "$VFIO_MIGD" --log-level "$level" --version
done

# A socket whose directory cannot be created: exit 1 at once, with a message.
: >"$T/plain-file"
expect_exit 1 timeout 60 "$VFIO_MIGD" --socket "$T/plain-file/api.sock"
assert_contains "$ERR" "$T/plain-file/api.sock" "unusable socket path: the message names it"

# A socket path longer than a unix socket address can hold: refused as a bad option (exit 2)
# before anything is created, with the limit.
LONG=$T/$(printf 'l%.0s' {1..120}).sock
expect_exit 2 timeout 60 "$VFIO_MIGD" --socket "$LONG"
assert_contains "$ERR" "--socket must be an absolute path of at most 107 bytes, not '$T/" \
    "a socket path too long: the message names the option, the limit and the path"

# ---- one daemon per socket

start_daemon
FIRST=$DAEMON_PID
assert_eq "660" "$(stat -c %a "$SOCK")" "the socket is mode 0660"
assert_eq "$FIRST" "$(tr -d '\n' <"$SOCK.lock")" "the lock file holds the daemon's pid"
INODE=$(stat -c %i "$SOCK")
# It gives up at once rather than waiting for the socket: a wait would run into timeout(1)'s
# bound (exit 124), far beyond anything a start-up takes, and fail the exit-status check.
expect_exit 1 timeout 60 "$VFIO_MIGD" --socket "$SOCK"
assert_contains "$ERR" "pid $FIRST" "a second daemon: names the first one's pid"
assert_contains "$ERR" "'$SOCK'" "a second daemon: names the socket"
assert_contains "$ERR" "already serves" "a second daemon: says the socket is served"
assert_eq "$INODE" "$(stat -c %i "$SOCK" 2>&1)" "a second daemon leaves the first one's socket in place"
expect_exit 0 jctl version
assert_eq "$FIRST" "$(jget "$OUT" pid)" "the first daemon still serves"
expect_exit 0 jctl attach --sim size=4K --name still-here
expect_exit 0 ctl health
# Also with another spelling of the same path.
expect_exit 1 timeout 60 "$VFIO_MIGD" --socket "$T/./api.sock"
assert_eq "$FIRST" "$(jget "$(jctl version)" pid)" "the first daemon still serves after './' spelling"

# ---- SIGTERM: exit 0, socket removed

stop_daemon TERM "$FIRST"
assert_eq "0" "$DAEMON_RC" "SIGTERM: exit 0"
assert_file_absent "$SOCK" "SIGTERM: the socket file is removed"
assert_contains "$(<"$T/daemon.log")" "shutting down" "SIGTERM: the log says it is shutting down"
expect_exit 3 ctl health

start_daemon
stop_daemon INT
assert_eq "0" "$DAEMON_RC" "SIGINT: exit 0"
assert_file_absent "$SOCK" "SIGINT: the socket file is removed"

# ---- the workers exist before the first device operation (daemon/worker.h)

# libuv would make its pool inside the first operation and delay it by milliseconds; the
# daemon makes it at start-up. Nothing has been queued yet here: only health was asked.
start_daemon --workers 40
assert_le 41 "$(find "/proc/$DAEMON_PID/task" -mindepth 1 -maxdepth 1 | wc -l)" \
    "--workers 40: the 40 worker threads run once the daemon serves, before any operation"
stop_daemon TERM
assert_eq "0" "$DAEMON_RC" "--workers 40: SIGTERM, exit 0"

# ---- SIGTERM with an operation in flight

# term_while_held NAME HOLD PREFIX : attaches NAME with its running->stop arc held (HOLD as held()
# takes it), runs `state NAME stop` in the background (BG; its output in $T/bg.out and bg.err),
# and sends SIGTERM once the device is busy. MARK is the log before the signal; PREFIX starts
# the names of the two checks.
dev_busy() { [[ "$(dev_field "$1" busy)" == true ]]; }
term_while_held() {
    local name=$1 hold=$2 prefix=$3
    expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' "$hold")" \
        --name "$name"
    jctl state "$name" stop >"$T/bg.out" 2>"$T/bg.err" &
    BG=$!
    wait_state "${prefix}the device is busy" dev_busy "$name"
    MARK=$(log_mark)
    kill -TERM "$DAEMON_PID"
    wait_state "${prefix}the daemon begins to shut down" log_since "$MARK" "shutting down"
}

# slow_shutdown MODE: SIGTERM while the one arc of a state change is held (so the operation is
# in flight for as long as the test needs, whatever the machine's speed).
#  early: released as soon as the daemon refuses new calls; the call completes within the 2 s
#         grace period or is cancelled at its end (on a busy machine): both are right.
#  late:  released only once the daemon has said that it cancels the calls still in flight (the
#         grace period is over): the client is cancelled, and the daemon, still running,
#         waits for the operation before it exits.
slow_shutdown() {
    local mode=$1 bgrc=0 code
    start_daemon
    term_while_held slow "$mode" "$mode: "
    # New calls are refused while the daemon stops.
    run jctl attach --sim size=4K --name late
    if [[ "$RC" == 3 || ("$RC" == 1 && "$(jget "$OUT" code 2>/dev/null)" == UNAVAILABLE) ]]; then
        pass "$mode: a call during shutdown is refused (exit $RC)"
    else
        fail "$mode: a call during shutdown is refused" "exit $RC" "
stdout: $OUT" "
stderr: $ERR"
    fi
    if [[ "$mode" == late ]]; then
        wait_state "$mode: the call in flight is cancelled after the grace period" \
            log_since "$MARK" "Cancelling 1 call(s) still in flight"
        check "$mode: the daemon still waits for the held operation" proc_running "$DAEMON_PID"
    fi
    release "$mode"
    stop_daemon none
    assert_eq "0" "$DAEMON_RC" "$mode: SIGTERM with an operation in flight: exit 0"
    wait "$BG" || bgrc=$?
    code=$(jget "$(<"$T/bg.out")" code 2>/dev/null || true)
    case "$mode $bgrc" in
    "early 0") assert_eq "stop" "$(jget "$(<"$T/bg.out")" state 2>&1)" "$mode: the client got its answer: stop" ;;
    *" 1") check "$mode: the client was cancelled (code $code)" test "$code" = CANCELLED -o "$code" = UNAVAILABLE ;;
    *" 3") pass "$mode: the client was told the daemon is unavailable" ;;
    *) fail "$mode: the client gets an answer, UNAVAILABLE or CANCELLED" "exit $bgrc: $(<"$T/bg.out") $(<"$T/bg.err")" ;;
    esac
    assert_file_absent "$SOCK" "$mode: the socket file is removed"
}
slow_shutdown early
slow_shutdown late

# ---- SIGHUP reloads what can change at run time and never stops the daemon, not even with
# an operation in flight

start_daemon
expect_exit 0 jctl attach --sim size=4K --name hup0
expect_exit 0 jctl state hup0 stop
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' hup)" --name hup1
jctl state hup1 stop >"$T/hup.out" 2>"$T/hup.err" &
BG=$!
hup1_busy() { [[ "$(dev_field hup1 busy)" == true ]]; }
wait_state "SIGHUP: an operation is in flight" hup1_busy
B=$(snapshot)
MARK=$(log_mark)
kill -HUP "$DAEMON_PID"
wait_state "SIGHUP: the daemon says what it reloaded" \
    log_since "$MARK" "Reloaded on SIGHUP: nothing changed."
check "SIGHUP: the daemon still runs" proc_running "$DAEMON_PID"
assert_eq "$B" "$(snapshot)" "SIGHUP: the devices are as they were"
expect_exit 0 ctl health
assert_eq "SERVING" "$OUT" "SIGHUP: the daemon still serves"
release hup
wait_bg
assert_eq "0 stop" "$BGRC $(jget "$(<"$T/hup.out")" state 2>&1)" "SIGHUP: the operation in flight completed"
# One at a time: two signals sent at once may reach the daemon as one (they do not queue).
reloads() { (($(tail -n +$((MARK + 1)) "$T/daemon.log" | grep -c -F "Reloaded on SIGHUP") == $1)); }
kill -HUP "$DAEMON_PID"
wait_state "SIGHUP again: reloads again" reloads 2
kill -HUP "$DAEMON_PID"
wait_state "SIGHUP a third time: reloads again" reloads 3
stop_daemon TERM
assert_eq "0" "$DAEMON_RC" "after SIGHUPs, SIGTERM: exit 0"
assert_file_absent "$SOCK" "after SIGHUPs, SIGTERM: the socket file is removed"

# ---- SIGHUP reads the configuration file again: run-time keys change, the others are named,
# a bad file changes nothing

CONF=$T/reload.conf
printf '[migration]\ndowntime_target_ms = 300\n' >"$CONF"
start_daemon --config "$CONF"
MARK=$(log_mark)
printf '[daemon]\nworkers = 3\n[migration]\ndowntime_target_ms = 120\n' >"$CONF"
kill -HUP "$DAEMON_PID"
wait_state "SIGHUP with a changed file: it names what changed and what takes a restart" \
    log_since "$MARK" "Reloaded on SIGHUP: changed downtime_target_ms; takes a restart, unchanged: workers."
MARK=$(log_mark)
printf '[migration]\ndowntime_target_ms = lots\n' >"$CONF"
kill -HUP "$DAEMON_PID"
wait_state "SIGHUP with a bad file: refused" log_since "$MARK" "Reload on SIGHUP refused"
check "SIGHUP with a bad file: the problem is named with its line" \
    log_since "$MARK" "$CONF:2:"
expect_exit 0 ctl health
assert_eq "SERVING" "$OUT" "SIGHUP with a bad file: the daemon still serves"
MARK=$(log_mark)
printf '[daemon]\nworkers = 3\n[migration]\ndowntime_target_ms = 120\n' >"$CONF"
kill -HUP "$DAEMON_PID"
wait_state "SIGHUP after a refused reload: compares with what is in effect" \
    log_since "$MARK" "Reloaded on SIGHUP: nothing changed; takes a restart, unchanged: workers."
stop_daemon TERM

# A second SIGTERM while the daemon waits for an operation is still a graceful stop: the
# documented contract is "wait for running device operations, exit 0".
start_daemon
term_while_held slow2 twice "the first SIGTERM: "
kill -TERM "$DAEMON_PID"
wait_state "the second SIGTERM is handled" log_since "$MARK" "again; still waiting"
check "after the second SIGTERM the daemon still waits for the held operation" proc_running "$DAEMON_PID"
kill -HUP "$DAEMON_PID"
wait_state "a SIGHUP during shutdown is handled" log_since "$MARK" "SIGHUP while shutting down"
check "after a SIGHUP during shutdown the daemon still waits" proc_running "$DAEMON_PID"
release twice
stop_daemon none
assert_eq "0" "$DAEMON_RC" "a second SIGTERM during shutdown: still exit 0 (not killed by the signal)"
assert_file_absent "$SOCK" "a second SIGTERM during shutdown: the socket file is still removed"
wait "$BG" || true
rm -f "$SOCK"

# ---- a stale socket (kill -9) does not stop a new daemon

start_daemon
expect_exit 0 jctl attach --sim size=4K --name doomed
stop_daemon KILL
assert_eq "137" "$DAEMON_RC" "kill -9: the daemon dies"
assert_file_exists "$SOCK" "kill -9 leaves the socket file behind"
start_daemon
assert_eq "$DAEMON_PID" "$(jget "$(jctl version)" pid)" "a new daemon serves on the stale socket"
expect_exit 0 jctl devices
assert_eq "[]" "$(jnorm "$OUT")" "the new daemon starts with no devices"
stop_daemon
assert_eq "0" "$DAEMON_RC" "the new daemon exits 0"

# The socket's directory is created when missing.
DEEP=$T/deep/er/api.sock
start_daemon --socket "$DEEP"
expect_exit 0 "$VFIO_MIGCTL" --socket "$DEEP" health
assert_eq "660" "$(stat -c %a "$DEEP")" "a socket in created directories: mode 0660"
stop_daemon
assert_eq "0" "$DAEMON_RC" "a daemon on a created directory exits 0"
assert_file_absent "$DEEP" "its socket is removed"

# ---- systemd notifications

"$PY" -S - "$T/notify.sock" "$T/notify.log" <<'EOF' &
import socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.1)
end = time.time() + 600
with open(out, "a", buffering=1) as f:
    f.write("LISTENING\n")
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        f.write(d.decode(errors="replace").replace("\n", "|") + "\n")
EOF
NOTIFIER=$!
has_line() { [[ -f "$T/notify.log" ]] && grep -q -- "$1" "$T/notify.log"; }
wait_state "the notify socket listens" has_line LISTENING
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=200000 start_daemon
wait_state "READY=1 arrives" has_line "READY=1"
assert_contains "$(<"$T/notify.log")" "STATUS=" "a STATUS= arrives with READY=1"
wait_state "WATCHDOG=1 arrives (WATCHDOG_USEC=200000)" has_line "WATCHDOG=1"
if has_line "STOPPING=1"; then
    fail "no STOPPING=1 before the signal" "$(<"$T/notify.log")"
else
    pass "no STOPPING=1 before the signal"
fi
stop_daemon TERM
assert_eq "0" "$DAEMON_RC" "with NOTIFY_SOCKET and a watchdog: exit 0 on SIGTERM"
wait_state "STOPPING=1 arrives on SIGTERM" has_line "STOPPING=1"
READY_LINE=$(grep -n "READY=1" "$T/notify.log" | head -n1 | cut -d: -f1)
STOP_LINE=$(grep -n "STOPPING=1" "$T/notify.log" | head -n1 | cut -d: -f1)
assert_le "$READY_LINE" "$STOP_LINE" "READY=1 comes before STOPPING=1"
kill -TERM "$NOTIFIER" 2>/dev/null || true
wait "$NOTIFIER" 2>/dev/null || true

# Without NOTIFY_SOCKET nothing is required: the daemons above ran without one.

# ---- --log-level debug: a trace line per arc

start_daemon --log-level debug
expect_exit 0 jctl attach --sim size=4K --name traced
expect_exit 0 jctl state traced stop
stop_daemon
assert_contains "$(<"$T/daemon.log")" "running_p2p->stop" "--log-level debug: trace lines name the arcs"

# --log-level warning: info lines are left out, warnings kept.
: >"$T/daemon.log"
start_daemon --log-level warning
expect_exit 0 jctl attach --sim "size=4K,fail_arc=running->pre_copy" --name quiet
expect_exit 1 jctl state quiet pre_copy
stop_daemon
assert_not_contains "$(<"$T/daemon.log")" "Attached sim device" "--log-level warning: no info lines"
assert_contains "$(<"$T/daemon.log")" "warning: Device 'quiet'" "--log-level warning: warnings are logged"

# Under systemd, with stderr the journal, messages are journal entries: test_journal.sh.

# ---- no fd leak

start_daemon
PID=$DAEMON_PID
expect_exit 0 jctl attach --sim "size=4K,fail_arc=stop->stop_copy" --name failsave
expect_exit 0 jctl attach --sim size=4K --name warm
expect_exit 0 jctl save warm "$T/c.sav" --force
cp "$T/c.sav" "$T/bad.sav"
printf 'x' | dd of="$T/bad.sav" bs=1 seek=100 conv=notrunc status=none
cycle() {
    local i=$1 c=$VFIO_MIGCTL s=$SOCK
    "$c" --socket "$s" attach --sim size=4K --name "c$i" >/dev/null &&
        "$c" --socket "$s" save "c$i" "$T/c.sav" --force >/dev/null &&
        "$c" --socket "$s" restore "c$i" "$T/c.sav" >/dev/null &&
        ! "$c" --socket "$s" restore "c$i" "$T/bad.sav" >/dev/null 2>&1 &&
        ! "$c" --socket "$s" restore "c$i" "$T/missing.sav" >/dev/null 2>&1 &&
        ! "$c" --socket "$s" save failsave "$T/fs.sav" >/dev/null 2>&1 &&
        "$c" --socket "$s" detach "c$i" >/dev/null
}
check "warm-up cycle" cycle warm1
check "warm-up cycle" cycle warm2
FD0=$(fd_count "$PID")
check "the daemon's fds can be counted ($FD0)" test "$FD0" -gt 3
ok_cycles=0
for i in $(seq 1 50); do
    if cycle "$i"; then
        ok_cycles=$((ok_cycles + 1))
    fi
done
assert_eq "50" "$ok_cycles" "50 attach/save/restore/bad restores/failed save/detach cycles succeed"
settled() { (($(fd_count "$PID") <= FD0)); }
wait_until "$STATE_WAIT" settled || true
# At most as many: FD0 may still count the connection of the CLI call just before it, which
# the daemon closes when it sees the hang-up (a leak per cycle would add 50).
assert_le "$(fd_count "$PID")" "$FD0" "the daemon has no more fds after 50 cycles than before"
expect_exit 0 jctl devices
assert_eq "failsave warm" "$("$PY" -S -c 'import json,sys; print(" ".join(d["id"] for d in json.loads(sys.argv[1])))' "$OUT")" \
    "after the cycles only the two long-lived devices are attached"
assert_file_absent "$T/fs.sav" "failed saves left no file"
assert_eq "" "$(find "$T" -name '*vfio-migd-partial*')" "no partial file left"
