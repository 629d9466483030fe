#!/usr/bin/env bash
# The daemon's life: command line, one daemon per socket, SIGTERM/SIGINT (also with an
# operation in flight), a stale socket after kill -9, systemd notifications (READY, STOPPING,
# WATCHDOG), and no fd leak over many operations.
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

expect_exit 2 timeout 10 "$VFIO_MIGD" --socket "$T/x.sock" --log-level loud
assert_contains "$ERR" "'loud'" "bad --log-level: names the value"
expect_exit 2 timeout 10 "$VFIO_MIGD" --socket "$T/x.sock" --log-level ""
expect_exit 2 timeout 10 "$VFIO_MIGD" --socket "$T/x.sock" --workers 0
assert_contains "$ERR" "--workers" "bad --workers: names the option"
expect_exit 2 timeout 10 "$VFIO_MIGD" --socket "$T/x.sock" --workers many
for bad in 0 65537 many ""; do
    expect_exit 2 timeout 10 "$VFIO_MIGD" --socket "$T/x.sock" --max-connections "$bad"
    assert_contains "$ERR" "--max-connections must be a whole number from 1 to 65536" "bad --max-connections '$bad': says the range"
done
expect_exit 2 timeout 10 "$VFIO_MIGD" --socket "$T/x.sock" --frobnicate
expect_exit 2 timeout 10 "$VFIO_MIGD" --socket "$T/x.sock" extra-argument
assert_contains "$ERR" "extra-argument" "unexpected argument: named"
expect_exit 2 timeout 10 "$VFIO_MIGD" --socket
assert_file_absent "$T/x.sock" "usage errors create no socket"
assert_file_absent "$T/x.sock.lock" "usage errors create no lock file"
for level in debug info notice warning error; do
    expect_exit 0 "$VFIO_MIGD" --log-level "$level" --version
done

# A socket whose directory cannot be created: exit 1 at once, with a message.
: >"$T/plain-file"
expect_exit 1 timeout 10 "$VFIO_MIGD" --socket "$T/plain-file/api.sock"
assert_contains "$ERR" "$T/plain-file/api.sock" "unusable socket path: the message names it"

# A socket path longer than a unix socket address can hold: refused as a bad option (exit 2)
# before anything is created, with the limit.
LONG=$T/$(printf 'l%.0s' {1..120}).sock
expect_exit 2 timeout 10 "$VFIO_MIGD" --socket "$LONG"
assert_contains "$ERR" "--socket must be an absolute path of at most 107 bytes, not '$T/" \
    "a socket path too long: the message names the option, the limit and the path"

# ---- one daemon per socket

start_daemon
FIRST=$DAEMON_PID
assert_eq "660" "$(stat -c %a "$SOCK")" "the socket is mode 0660"
assert_eq "$FIRST" "$(tr -d '\n' <"$SOCK.lock")" "the lock file holds the daemon's pid"
INODE=$(stat -c %i "$SOCK")
t0=$(ms_now)
expect_exit 1 timeout 10 "$VFIO_MIGD" --socket "$SOCK"
assert_le $(($(ms_now) - t0)) 5000 "a second daemon gives up within 5 s"
assert_contains "$ERR" "pid $FIRST" "a second daemon: names the first one's pid"
assert_contains "$ERR" "'$SOCK'" "a second daemon: names the socket"
assert_contains "$ERR" "already serves" "a second daemon: says the socket is served"
assert_eq "$INODE" "$(stat -c %i "$SOCK" 2>&1)" "a second daemon leaves the first one's socket in place"
expect_exit 0 jctl version
assert_eq "$FIRST" "$(jget "$OUT" pid)" "the first daemon still serves"
expect_exit 0 jctl attach --sim size=4K --name still-here
expect_exit 0 ctl health
# Also with another spelling of the same path.
expect_exit 1 timeout 10 "$VFIO_MIGD" --socket "$T/./api.sock"
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

# slow_shutdown LATENCY_MS: SIGTERM while a state change of one arc sleeps LATENCY_MS
slow_shutdown() {
    local latency=$1 bg bgrc=0 t0 code
    start_daemon
    expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,latency_ms=$latency" --name slow
    jctl state slow stop >"$T/bg.out" 2>"$T/bg.err" &
    bg=$!
    is_busy() { [[ "$(dev_field slow busy)" == true ]]; }
    check "latency_ms=$latency: the device is busy" wait_until 3 is_busy
    t0=$(ms_now)
    kill -TERM "$DAEMON_PID"
    sleep 0.2
    # New calls are refused while the daemon stops.
    run jctl attach --sim size=4K --name late
    if [[ "$RC" == 3 || ("$RC" == 1 && "$(jget "$OUT" code 2>/dev/null)" == UNAVAILABLE) ]]; then
        pass "latency_ms=$latency: a call during shutdown is refused (exit $RC)"
    else
        fail "latency_ms=$latency: a call during shutdown is refused" "exit $RC" "
stdout: $OUT" "
stderr: $ERR"
    fi
    stop_daemon none
    assert_eq "0" "$DAEMON_RC" "latency_ms=$latency: SIGTERM with an operation in flight: exit 0"
    assert_le $(($(ms_now) - t0)) $((latency + 4000)) "latency_ms=$latency: the daemon exits within $((latency + 4000)) ms"
    wait "$bg" || bgrc=$?
    code=$(jget "$(<"$T/bg.out")" code 2>/dev/null || true)
    case "$bgrc" in
    0) assert_eq "stop" "$(jget "$(<"$T/bg.out")" state 2>&1)" "latency_ms=$latency: the client got its answer: stop" ;;
    1) check "latency_ms=$latency: the client was cancelled (code $code)" test "$code" = CANCELLED -o "$code" = UNAVAILABLE ;;
    3) pass "latency_ms=$latency: the client was told the daemon is unavailable" ;;
    *) fail "latency_ms=$latency: the client gets an answer, UNAVAILABLE or CANCELLED" "exit $bgrc: $(<"$T/bg.out") $(<"$T/bg.err")" ;;
    esac
    assert_file_absent "$SOCK" "latency_ms=$latency: the socket file is removed"
}
# Within the 2 s grace period the call completes; beyond it the call is cancelled and the
# daemon still waits for the device operation before it exits.
slow_shutdown 1000
slow_shutdown 3000

# A second SIGTERM while the daemon waits for an operation is still a graceful stop: the
# documented contract is "wait for running device operations, exit 0".
start_daemon
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,latency_ms=1500" --name slow2
jctl state slow2 stop >/dev/null 2>&1 &
BG=$!
is_busy2() { [[ "$(dev_field slow2 busy)" == true ]]; }
check "the device is busy" wait_until 3 is_busy2
kill -TERM "$DAEMON_PID"
sleep 0.3
stop_daemon TERM
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
end = time.time() + 60
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
check "the notify socket listens" wait_until 5 has_line LISTENING
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=200000 start_daemon
check "READY=1 arrives" wait_until 5 has_line "READY=1"
assert_contains "$(<"$T/notify.log")" "STATUS=" "a STATUS= arrives with READY=1"
check "WATCHDOG=1 arrives (WATCHDOG_USEC=200000)" wait_until 3 has_line "WATCHDOG=1"
if has_line "STOPPING=1"; then
    fail "no STOPPING=1 before the signal" "$(<"$T/notify.log")"
else
    pass "no STOPPING=1 before the signal"
fi
stop_daemon TERM
assert_eq "0" "$DAEMON_RC" "with NOTIFY_SOCKET and a watchdog: exit 0 on SIGTERM"
check "STOPPING=1 arrives on SIGTERM" wait_until 3 has_line "STOPPING=1"
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
wait_until 3 settled || true
assert_eq "$FD0" "$(fd_count "$PID")" "the daemon has as many fds after 50 cycles as before"
expect_exit 0 jctl devices
assert_eq "failsave warm" "$("$PY" -S -c 'import json,sys; print(" ".join(d["id"] for d in json.loads(sys.argv[1])))' "$OUT")" \
    "after the cycles only the two long-lived devices are attached"
assert_file_absent "$T/fs.sav" "failed saves left no file"
assert_eq "" "$(find "$T" -name '*vfio-migd-partial*')" "no partial file left"
