# shellcheck shell=bash
# lib.sh — shared helpers of the integration tests. Every tests/integration/test_*.sh sources it.
#
# The tests start the REAL daemon ($VFIO_MIGD) and drive it with the REAL CLI ($VFIO_MIGCTL),
# as ctest does (CMakeLists.txt sets VFIO_MIGD, VFIO_MIGCTL, SRCDIR, BUILDDIR). To run one
# script by hand from the source tree:
#   VFIO_MIGD=build/vfio-migd VFIO_MIGCTL=build/vfio-migctl bash tests/integration/test_basics.sh
#
# What a test gets:
#   $T                per-test temporary directory, removed on exit
#   $SOCK             $T/api.sock, the socket start_daemon serves on
#   $ALLOW_DIR        the directory the daemons may keep files in (--allowed-dirs), $T unless the
#                     test sets it before it starts one
#   start_daemon ARGS starts a daemon (stderr to $T/daemon.log) and waits until it is healthy;
#                     sets DAEMON_PID. DAEMON_PREFIX (an array, empty by default) is put before
#                     the daemon's command, e.g. (setpriv ...) to run it with fewer privileges. Every daemon started is SIGTERMed and waited for on exit,
#                     and the test fails if one died unexpectedly or did not exit 0.
#   stop_daemon [SIG] [PID]  signals a daemon (default SIGTERM, the last one started) and waits
#                     for it (DAEMON_WAIT s); sets DAEMON_RC; the daemon is no longer watched.
#   ctl ARGS / jctl ARGS     the CLI on $SOCK (jctl adds --json), each call bounded by a timeout
#   check/pass/fail   record one check: prints "ok N - what" or "not ok N - what"
#   assert_eq EXPECTED ACTUAL WHAT, assert_ne, assert_contains HAYSTACK NEEDLE WHAT,
#   assert_not_contains, assert_match HAYSTACK ERE WHAT, assert_line_match HAYSTACK ERE WHAT,
#   assert_le A B WHAT, assert_file_exists PATH WHAT, assert_file_absent PATH WHAT
#   expect_exit CODE CMD...  runs CMD, sets OUT, ERR (its stdout and stderr) and RC, checks RC
#   expect_error GRPC_CODE CMD...  CMD (a jctl call) must exit 1 with {"code": GRPC_CODE}
#   jget JSON PATH... fields of a JSON document, one per line: PATH is dot-separated
#                     (stats.arcs, arcs.0); a last component "#" gives the length of a
#                     list/object, a trailing "[]" the elements of a list on one line
#   jlist JSON PATH   the elements of a list, space-separated
#   jkeys JSON [PATH] the keys of an object, sorted, space-separated
#   dev_json ID, dev_field ID PATH   `show ID --json` and one of its fields
#   devices_field ID PATH   a field of device ID in `devices --json`
#   snapshot [--ignore-last-error]  the whole `devices --json`, canonical: equal snapshots =
#                     nothing changed
#   held ARC NAME     sim options holding ARC (FROM->TO) until `release NAME`: an operation that
#                     must still run when the next command arrives lasts until the test says so
#   release NAME      lets the arcs held for NAME go on (creates $T/NAME.release)
#   wait_state WHAT CMD...  one check: CMD succeeds within STATE_WAIT seconds (polled)
#   sig_caught PID SIG  PID has a handler for SIG (it installed it: /proc/PID/status SigCgt)
#   log_mark, log_since MARK TEXT  a line with TEXT in $T/daemon.log after the mark
#
# No test depends on the machine's speed: a test waits for a state (wait_until, wait_state,
# wait_job) or an event (a line in a log, a file), never for a time, and no check compares a
# duration with a threshold. The bounds of those waits (STATE_WAIT, CTL_TIMEOUT, 30 s for a
# daemon to start or stop) only end a wait that would otherwise hang: they are generous enough
# for a sanitizer build on a loaded machine and are never what a check is about.
# At exit the script prints "<N> passed, <M> failed" and exits 0 only when nothing failed;
# $T is removed unless KEEP_T is set (to read the logs of a failing run).

set -euo pipefail
shopt -s inherit_errexit
set -E

: "${VFIO_MIGD:?VFIO_MIGD must name the vfio-migd binary}"
: "${VFIO_MIGCTL:?VFIO_MIGCTL must name the vfio-migctl binary}"
# Absolute, so that tests may run the tools from another directory.
[[ "$VFIO_MIGD" == /* || "$VFIO_MIGD" != */* ]] || VFIO_MIGD=$PWD/$VFIO_MIGD
[[ "$VFIO_MIGCTL" == /* || "$VFIO_MIGCTL" != */* ]] || VFIO_MIGCTL=$PWD/$VFIO_MIGCTL
SRCDIR=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PY=/usr/bin/python3

T=$(mktemp -d "${TMPDIR:-/tmp}/vfio-migd-it.XXXXXX")
SOCK=$T/api.sock
ALLOW_DIR=$T
# Unset anything from the caller's environment that would change what the tools do.
unset VFIO_MIGD_SOCKET NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID JOURNAL_STREAM LISTEN_FDS || true

DAEMON_PREFIX=()
CHECKS=0
PASSED=0
FAILED=0
DAEMON_PID=''
# shellcheck disable=SC2034 # set by stop_daemon for the tests
DAEMON_RC=''
declare -a DAEMON_PIDS=()
OUT='' ERR='' RC=''
CTL_TIMEOUT=${CTL_TIMEOUT:-60}
STATE_WAIT=${STATE_WAIT:-60}
DAEMON_WAIT=${DAEMON_WAIT:-30} # a daemon starts (answers health) or exits within this

# The project version, as CMakeLists.txt declares it: what --version must print.
# shellcheck disable=SC2034 # used by the tests
PROJECT_VERSION=$(sed -n 's/^project(vfio-migd VERSION \([0-9.]*\).*/\1/p' "$SRCDIR/CMakeLists.txt")

# ---- reporting

_diag() {
    local line
    while IFS= read -r line; do
        printf '#   %s\n' "$line"
    done <<<"$*"
}

pass() {
    CHECKS=$((CHECKS + 1))
    PASSED=$((PASSED + 1))
    printf 'ok %d - %s\n' "$CHECKS" "$1"
}

# fail WHAT [DIAGNOSTIC...]
fail() {
    CHECKS=$((CHECKS + 1))
    FAILED=$((FAILED + 1))
    printf 'not ok %d - %s\n' "$CHECKS" "$1"
    shift
    if (($#)); then
        _diag "$*"
    fi
}

# check WHAT CMD... : passes when CMD succeeds.
check() {
    local what=$1
    shift
    if "$@" >/dev/null; then
        pass "$what"
    else
        fail "$what" "command failed: $*"
    fi
}

_show() {
    # Values can be long (a 70 KiB options string): show the start and the length.
    local v=$1
    if ((${#v} > 2000)); then
        printf '%s... (%d characters)' "${v:0:2000}" "${#v}"
    else
        printf '%s' "$v"
    fi
}

# _verdict HELD WHAT [LABEL VALUE]...: one check, passed when HELD is "yes"; else failed with a
# diagnostic that shows each VALUE (quoted, shortened by _show) after its LABEL, one a line.
_verdict() {
    local held=$1 what=$2 sep=""
    local -a diag=()
    shift 2
    if [[ "$held" == yes ]]; then
        pass "$what"
        return 0
    fi
    while (($# >= 2)); do
        diag+=("$sep$1'$(_show "$2")'")
        sep=$'\n'
        shift 2
    done
    fail "$what" "${diag[@]}"
}

# assert_eq EXPECTED ACTUAL WHAT, assert_ne UNEXPECTED ACTUAL WHAT,
# assert_contains HAYSTACK NEEDLE WHAT, assert_not_contains HAYSTACK NEEDLE WHAT
assert_eq() { _verdict "$([[ "$1" == "$2" ]] && echo yes)" "$3" "expected: " "$1" "actual:   " "$2"; }
assert_ne() { _verdict "$([[ "$1" != "$2" ]] && echo yes)" "$3" "expected anything but: " "$1"; }
assert_contains() {
    _verdict "$([[ "$1" == *"$2"* ]] && echo yes)" "$3" "expected to contain: " "$2" \
        "in:                  " "$1"
}
assert_not_contains() {
    _verdict "$([[ "$1" != *"$2"* ]] && echo yes)" "$3" "expected NOT to contain: " "$2" \
        "in:                      " "$1"
}

# assert_match HAYSTACK ERE WHAT
assert_match() {
    local haystack=$1 re=$2 what=$3
    if [[ "$haystack" =~ $re ]]; then
        pass "$what"
    else
        fail "$what" "expected to match /$re/" "
in: '$(_show "$haystack")'"
    fi
}

# assert_line_match HAYSTACK ERE WHAT: some line of HAYSTACK matches ERE
assert_line_match() {
    local haystack=$1 re=$2 what=$3 line
    while IFS= read -r line; do
        if [[ "$line" =~ $re ]]; then
            pass "$what"
            return 0
        fi
    done <<<"$haystack"
    fail "$what" "expected a line matching /$re/" "
in: '$(_show "$haystack")'"
}

# assert_le A B WHAT (integers)
assert_le() {
    local a=$1 b=$2 what=$3
    if [[ "$a" =~ ^-?[0-9]+$ && "$b" =~ ^-?[0-9]+$ ]] && ((a <= b)); then
        pass "$what"
    else
        fail "$what" "expected $a <= $b"
    fi
}

# assert_file_absent PATH WHAT / assert_file_exists PATH WHAT
assert_file_absent() {
    if [[ ! -e "$1" && ! -L "$1" ]]; then
        pass "$2"
    else
        fail "$2" "'$1' exists: $(ls -la "$1" 2>&1)"
    fi
}

assert_file_exists() {
    if [[ -e "$1" ]]; then
        pass "$2"
    else
        fail "$2" "'$1' does not exist"
    fi
}

# ---- running commands

_cmd_text() {
    local s="$*"
    if ((${#s} > 160)); then
        s="${s:0:160}..."
    fi
    printf '%s' "$s"
}

# run CMD... : runs CMD without failing the script; sets OUT, ERR, RC.
run() {
    RC=0
    "$@" >"$T/.out" 2>"$T/.err" || RC=$?
    OUT=$(<"$T/.out")
    ERR=$(<"$T/.err")
}

# expect_exit CODE CMD... : one check, that CMD exits with CODE; OUT, ERR, RC as run().
expect_exit() {
    local code=$1
    shift
    run "$@"
    if [[ "$RC" == "$code" ]]; then
        pass "exit $code: $(_cmd_text "$@")"
    else
        fail "exit $code: $(_cmd_text "$@")" "exit status $RC" "
stdout: $(_show "$OUT")" "
stderr: $(_show "$ERR")"
    fi
}

# expect_error GRPC_CODE CMD... : CMD (with --json) fails with exit 1 and that gRPC code, both
# in the JSON on stdout and in the message on stderr. Two checks.
expect_error() {
    local code=$1 got
    shift
    expect_exit 1 "$@"
    got=$(jget "$OUT" code 2>/dev/null || true)
    if [[ "$got" == "$code" && "$ERR" == *"($code)"* ]]; then
        pass "  ... answered $code"
    else
        fail "  ... answered $code" "JSON code: '$got'" "
stdout: $(_show "$OUT")" "
stderr: $(_show "$ERR")"
    fi
}

# The CLI, on the test's socket. A hung call is cut off (exit 124) instead of hanging the test.
ctl() {
    timeout -k 2 "$CTL_TIMEOUT" "$VFIO_MIGCTL" --socket "$SOCK" "$@"
}

jctl() {
    ctl --json "$@"
}

# ---- JSON (no jq: python3's json module)
#
# One python process answers every question (a python start costs as much as a CLI call, and a
# test asks hundreds): requests go through $T/.json.in, fields NUL-terminated and ended by a
# \x1e field; the answer is the output lines, error lines marked \x1f, then \x1e and the
# status. Only the test's own shell and its command substitutions ask, one at a time.

_json_py='
import json, sys
def walk(doc, path):
    joined = path.endswith("[]")
    if joined:
        path = path[:-2]
    for part in [p for p in path.split(".") if p != ""]:
        if part == "#":
            return len(doc)
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    if joined:
        return " ".join(text(x) for x in doc)
    return doc
def text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)
def answer(mode, data, paths):
    out, path = [], ""
    try:
        doc = json.loads(data)
        for path in paths or [""]:
            v = walk(doc, path)
            if mode == "get":
                out.append(text(v))
            elif mode == "list":
                out.append(" ".join(text(x) for x in v))
            elif mode == "keys":
                out.append(" ".join(sorted(v.keys())))
            elif mode == "norm":
                out.append(json.dumps(v, sort_keys=True))
        return out, 0
    except Exception as e:
        return out + ["\x1fjget: %r: %s: %s" % (path, type(e).__name__, e)], 1
inp, fields, rest = sys.stdin.buffer, [], b""
while True:
    chunk = inp.read1(65536)
    if not chunk:
        break
    parts = (rest + chunk).split(b"\0")
    rest = parts.pop()
    for f in parts:
        if f != b"\x1e":
            fields.append(f.decode("utf-8", "surrogateescape"))
            continue
        out, rc = answer(fields[0], fields[1] if len(fields) > 1 else "", fields[2:])
        fields = []
        sys.stdout.write("".join(line + "\n" for line in out) + "\x1e%d\n" % rc)
        sys.stdout.flush()
'

mkfifo "$T/.json.in" "$T/.json.out"
"$PY" -S -c "$_json_py" <"$T/.json.in" >"$T/.json.out" &
JSON_PID=$!
exec {JSON_W}>"$T/.json.in" {JSON_R}<"$T/.json.out"

_json_ask() {
    local line rc=1
    printf '%s\0' "$@" $'\x1e' >&"$JSON_W"
    while IFS= read -r -u "$JSON_R" line; do
        case $line in
        $'\x1e'*)
            rc=${line#$'\x1e'}
            break
            ;;
        $'\x1f'*) printf '%s\n' "${line#$'\x1f'}" >&2 ;;
        *) printf '%s\n' "$line" ;;
        esac
    done
    return "$rc"
}

# jget JSON PATH...: one line per PATH (a PATH ending in [] gives a list's elements on one line)
jget() {
    _json_ask get "$@"
}

# jlist JSON PATH
jlist() {
    _json_ask list "$@"
}

# jkeys JSON [PATH]
jkeys() {
    _json_ask keys "$@"
}

# jnorm JSON [PATH]: canonical text (sorted keys), for comparing documents
jnorm() {
    _json_ask norm "$@"
}

# dev_json ID: the device as `show --json` prints it (fails the script if the call fails)
dev_json() {
    jctl show "$1"
}

# dev_field ID PATH
dev_field() {
    local j
    j=$(dev_json "$1")
    jget "$j" "$2"
}

# devices_field ID PATH: a field of device ID as `devices --json` lists it
devices_field() {
    local j
    j=$(jctl devices)
    "$PY" -S -c '
import json, sys
d = [d for d in json.loads(sys.argv[1]) if d["id"] == sys.argv[2]]
if not d:
    sys.exit("devices_field: no device %r in the list" % sys.argv[2])
v = d[0]
for p in sys.argv[3].split("."):
    v = v[int(p)] if isinstance(v, list) else v[p]
print(json.dumps(v) if isinstance(v, (list, dict)) else str(v).lower() if isinstance(v, bool) else v)
' "$j" "$1" "$2"
}

# snapshot [--ignore-last-error]: every device as the daemon reports it, canonical; equal
# snapshots = nothing changed. With --ignore-last-error stats.last_error is left out (a failure
# inside an operation records itself there even when it changed nothing else).
snapshot() {
    local j
    j=$(jctl devices)
    if [[ "${1:-}" == --ignore-last-error ]]; then
        "$PY" -S -c '
import json, sys
doc = json.loads(sys.argv[1])
for d in doc:
    d.get("stats", {}).pop("last_error", None)
print(json.dumps(doc, sort_keys=True))' "$j"
    else
        jnorm "$j"
    fi
}

# ---- holding an arc (docs/simulated-devices.md, "Holding an arc")

held() {
    printf 'hold_arc=%s,hold_until=%s' "$1" "$T/$2.release"
}

release() {
    : >"$T/$1.release"
}

# wait_bg : waits for the background client $BG; BGRC is its exit status
wait_bg() {
    BGRC=0
    wait "$BG" || BGRC=$?
}

# refused_while_held NAME OPERATION WHAT : the refusals just checked came while OPERATION (the
# background client $BG) still ran; then NAME's held arc is released and it succeeds (WHAT)
refused_while_held() {
    check "the refusals came while $2 still ran" proc_running "$BG"
    release "$1"
    wait_bg
    assert_eq "0" "$BGRC" "$3"
}

wait_state() {
    local what=$1
    shift
    if wait_until "$STATE_WAIT" "$@"; then
        pass "$what"
    else
        fail "$what" "not so within $STATE_WAIT s: $*"
    fi
}

# ---- processes

sig_caught() {
    local line mask num
    num=$(kill -l "$2") || return 1
    while IFS= read -r line; do
        if [[ "$line" == SigCgt:* ]]; then
            mask=$((16#${line##*[[:space:]]}))
            (((mask >> (num - 1)) & 1))
            return
        fi
    done <"/proc/$1/status"
    return 1
}

# proc_running PID: the process exists and is not a zombie
proc_running() {
    local stat rest
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    rest=${stat##*) }
    [[ "${rest%% *}" != Z ]]
}

# wait_until TIMEOUT_S CMD... : polls CMD every 50 ms; 0 when it succeeded in time
wait_until() {
    local limit=$(($(ms_now) + $1 * 1000))
    shift
    while :; do
        if "$@"; then
            return 0
        fi
        if (($(ms_now) >= limit)); then
            return 1
        fi
        sleep 0.05
    done
}

# log_mark: the lines of the daemon's log so far; log_since MARK TEXT: a line written after the
# mark has TEXT (every daemon of a test appends to the same log)
log_mark() { wc -l <"$T/daemon.log"; }
# grep reads to the end (no -q): under pipefail, a grep that quits at the match could leave
# tail writing into a closed pipe (SIGPIPE), and the whole test would read "not there".
log_since() { tail -n +$(($1 + 1)) "$T/daemon.log" | grep -F -- "$2" >/dev/null; }

# ms_now: milliseconds since the epoch
ms_now() {
    echo $(($(date +%s%N) / 1000000))
}

# wait_exit PID TIMEOUT_S : waits for a child to exit; sets WAIT_RC (its status, or "timeout")
wait_exit() {
    local pid=$1 limit=$(($(ms_now) + $2 * 1000))
    while proc_running "$pid"; do
        if (($(ms_now) >= limit)); then
            WAIT_RC=timeout
            return 1
        fi
        sleep 0.05
    done
    WAIT_RC=0
    wait "$pid" 2>/dev/null || WAIT_RC=$?
    return 0
}

# expect_ended PID RC WHAT : the background process ends (within STATE_WAIT s) with exit RC
expect_ended() {
    if wait_exit "$1" "$STATE_WAIT"; then
        assert_eq "$2" "$WAIT_RC" "$3: exit $2"
    else
        kill -KILL "$1" 2>/dev/null || true
        fail "$3: ends" "still running $STATE_WAIT s later"
    fi
}

_forget_daemon() {
    local pid=$1 i
    for i in "${!DAEMON_PIDS[@]}"; do
        if [[ "${DAEMON_PIDS[$i]}" == "$pid" ]]; then
            unset "DAEMON_PIDS[$i]"
        fi
    done
}

_daemon_log_tail() {
    if [[ -s "$T/daemon.log" ]]; then
        printf 'last lines of %s:\n' "$T/daemon.log"
        tail -n 15 "$T/daemon.log"
    fi
}

# start_daemon [ARGS...]: serves on $SOCK (the last --socket wins, so ARGS may override it).
# Waits (DAEMON_WAIT s at most) until `health` answers; aborts the test if the daemon does not
# come up.
start_daemon() {
    local sock=$SOCK a prev=
    for a in "$@"; do
        if [[ "$prev" == --socket ]]; then
            sock=$a
        fi
        prev=$a
    done
    "${DAEMON_PREFIX[@]}" "$VFIO_MIGD" --socket "$SOCK" --log-level info --allowed-dirs "$ALLOW_DIR" "$@" \
        >>"$T/daemon.log" 2>&1 {JSON_W}>&- {JSON_R}<&- &
    DAEMON_PID=$!
    DAEMON_PIDS+=("$DAEMON_PID")
    local limit=$(($(ms_now) + DAEMON_WAIT * 1000))
    while :; do
        if ! proc_running "$DAEMON_PID"; then
            wait "$DAEMON_PID" 2>/dev/null || true
            _forget_daemon "$DAEMON_PID"
            fail "daemon starts on '$sock'" "it exited during start-up" "
$(_daemon_log_tail)"
            exit 1
        fi
        if timeout -k 1 20 "$VFIO_MIGCTL" --socket "$sock" health >/dev/null 2>&1; then
            return 0
        fi
        if (($(ms_now) >= limit)); then
            fail "daemon starts on '$sock'" "not healthy after $DAEMON_WAIT s" "
$(_daemon_log_tail)"
            exit 1
        fi
        sleep 0.05
    done
}

# stop_daemon [SIGNAL] [PID]: sends SIGNAL (default TERM; "none": send nothing, it was sent
# already) and waits up to DAEMON_WAIT s; DAEMON_RC is the exit status ("timeout" if it did
# not exit; it is then killed).
stop_daemon() {
    local sig=${1:-TERM} pid=${2:-$DAEMON_PID}
    if [[ "$sig" != none ]]; then
        kill -s "$sig" "$pid" 2>/dev/null || true
    fi
    # shellcheck disable=SC2034 # read by the tests
    if wait_exit "$pid" "$DAEMON_WAIT"; then
        DAEMON_RC=$WAIT_RC
    else
        DAEMON_RC=timeout
        kill -s KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    _forget_daemon "$pid"
}

# fd_count PID
fd_count() {
    local n=0 f
    for f in /proc/"$1"/fd/*; do
        # A sim device's state is a memfd it holds while it is attached (and that the fd store
        # keeps across a restart): one per device, not a leak of an operation.
        [[ "$(readlink "$f" 2>/dev/null)" == /memfd:vfio-migd-sim-state* ]] && continue
        [[ -e "$f" || -L "$f" ]] && n=$((n + 1))
    done
    echo "$n"
}

# ---- exit

_on_err() {
    # set -e is about to end the script: say where, so the failure is easy to find.
    printf '# command failed (status %s) at %s line %s: %s\n' "$1" "${BASH_SOURCE[1]:-?}" "$2" "$3" >&2
}
trap '_on_err $? $LINENO "$BASH_COMMAND"' ERR

_children() {
    # Direct children of this shell that still run (pure bash: no child of our own here).
    local f stat rest pid ppid
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        rest=${stat##*) }
        # rest: "S PPID ..."
        read -r _state ppid _ <<<"$rest"
        pid=${f#/proc/}
        pid=${pid%/stat}
        if [[ "$ppid" == "$$" && "$_state" != Z && "$pid" != "$BASHPID" ]]; then
            printf '%s ' "$pid"
        fi
    done
}

_on_exit() {
    local status=$? pid left
    trap - ERR
    set +e
    if ((status != 0)); then
        fail "the script ran to its end" "it stopped early with status $status"
    fi
    for pid in "${DAEMON_PIDS[@]}"; do
        if ! proc_running "$pid"; then
            local rc=0
            wait "$pid" 2>/dev/null || rc=$?
            fail "daemon $pid was still running at the end" "it died unexpectedly (status $rc)" "
$(_daemon_log_tail)"
            continue
        fi
        kill -TERM "$pid" 2>/dev/null
        if wait_exit "$pid" "$DAEMON_WAIT"; then
            if [[ "$WAIT_RC" == 0 ]]; then
                pass "daemon $pid exits 0 on SIGTERM at the end"
            else
                fail "daemon $pid exits 0 on SIGTERM at the end" "exit status $WAIT_RC" "
$(_daemon_log_tail)"
            fi
        else
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            fail "daemon $pid exits 0 on SIGTERM at the end" "still running $DAEMON_WAIT s after SIGTERM; killed" "
$(_daemon_log_tail)"
        fi
    done
    sdh_quit
    exec {JSON_W}>&- {JSON_R}<&- # the JSON process ends at end of file
    wait_exit "$JSON_PID" 10 || kill -KILL "$JSON_PID" 2>/dev/null
    left=$(_children)
    if [[ -n "$left" ]]; then
        local desc=""
        for pid in $left; do
            desc+="$pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
"
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        done
        fail "no process left behind" "${desc%$'\n'}"
    fi
    if ((CHECKS == 0)); then
        fail "the script made checks" "none was made"
    fi
    if ((FAILED > 0)) && [[ -s "$T/daemon.log" ]]; then
        printf '# daemon log (%s):\n' "$T/daemon.log"
        sed 's/^/#   /' "$T/daemon.log" | tail -n 60
    fi
    [[ -n "${KEEP_T:-}" ]] || rm -rf "$T"
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    if ((FAILED > 0)); then
        exit 1
    fi
    exit 0
}
# ---- the service-manager harness (tests/systemd/sdharness.py plays systemd: notify socket,
# ---- socket units, fd store, LISTEN_FDS; its usage is at the top of that file)
#
#   sdh_serve [--fdstore-max N]  starts a harness in $SDH (= $T/sd) and waits until it answers
#   sdh CMD [ARGS...]            one harness command; its answer on stdout, status 0 when ok
#   sdh_quit                     ends the harness (a service still running under it is killed);
#                                also done at exit
#   sdctl ARGS                   the CLI (--json) on the service's API socket, $SDH/api.sock
#   start_service                vfio-migd under the harness (--log-level info, --allowed-dirs
#                                $T; its log in $SDH/service.log), waited for until READY=1
#   kill_service                 SIGKILL to it, waited for until it exited
#   service_log                  its log so far
SDH=$T/sd
SDH_PID=''
SDSOCK=$SDH/api.sock

sdctl() { timeout -k 2 "$CTL_TIMEOUT" "$VFIO_MIGCTL" --socket "$SDSOCK" --json "$@"; }
service_log() { cat "$SDH/service.log" 2>/dev/null || true; }
start_service() {
    expect_exit 0 sdh start --log "$SDH/service.log" -- "$VFIO_MIGD" --log-level info --allowed-dirs "$T"
    expect_exit 0 sdh wait-notify READY=1
}
kill_service() {
    expect_exit 0 sdh kill KILL
    expect_exit 0 sdh wait-exit
}

sdh() {
    timeout -k 2 120 "$PY" -S "$SRCDIR/tests/systemd/sdharness.py" ctl "$SDH" "$@"
}

sdh_serve() {
    mkdir -p "$SDH"
    "$PY" -S "$SRCDIR/tests/systemd/sdharness.py" serve "$SDH" "$@" 2>>"$SDH/harness.err" &
    SDH_PID=$!
    local limit=$(($(ms_now) + 10000))
    until [[ -S "$SDH/control.sock" ]]; do
        if ! proc_running "$SDH_PID" || (($(ms_now) >= limit)); then
            fail "the service-manager harness starts" "$(cat "$SDH/harness.err" 2>/dev/null)"
            exit 1
        fi
        sleep 0.05
    done
}

sdh_quit() {
    if [[ -n "$SDH_PID" ]]; then
        sdh quit >/dev/null 2>&1 || kill -TERM "$SDH_PID" 2>/dev/null || true
        wait "$SDH_PID" 2>/dev/null || true
        SDH_PID=''
    fi
}

trap _on_exit EXIT
# Interrupted (Ctrl-C, a runner's SIGTERM): still stop the daemons and remove $T.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# =============================================================================================
# ---- Several daemons at once, and migrations (added for test_migration.sh and
# ---- test_migration_failures.sh; nothing above depends on this section)
#
#   start_named_daemon NAME [ARGS...]  starts a daemon serving on $T/NAME.sock, its stderr in
#                     $T/NAME.log, and waits until it is healthy (start_daemon's bound). Sets
#                     ${NAME}_SOCK and ${NAME}_PID (NAME: a shell identifier such as S, D, D2).
#                     The daemon is watched like start_daemon's (stopped and checked at exit;
#                     stop_daemon SIG "$NAME_PID" to end it earlier). At exit the last lines of every named
#                     daemon's log are appended to $T/daemon.log, so a failing test shows them.
#   nctl NAME ARGS / njctl NAME ARGS   the CLI on that daemon (njctl adds --json), bounded by
#                     CTL_TIMEOUT like ctl
#   named_log NAME    that daemon's log so far
#   wait_fds PID N TIMEOUT_S  waits until PID has N open fds or fewer; 0 when in time
#   job_json NAME ID  `job ID --json` on that daemon ('{}' if the call fails)
#   wait_job NAME ID TIMEOUT_S PHASE...  polls job ID until its phase is one of PHASE ("over":
#                     completed, failed or cancelled); sets JOB to its last JSON; 0 when in time
#   digests NAME ID...  "state:digest" of each device, space-separated
#   dev_prop NAME ID PATH   a field of `show ID --json` on that daemon

declare -a NAMED_DAEMONS=()

_named_on_exit() {
    local status=$? n
    set +e # as _on_exit: nothing here may end the script before the daemons are stopped
    for n in "${NAMED_DAEMONS[@]}"; do
        if [[ -s "$T/$n.log" ]]; then
            printf '%s\n' "---- daemon $n (last lines of $T/$n.log)" >>"$T/daemon.log"
            tail -n 30 "$T/$n.log" | sed "s/^/[$n] /" >>"$T/daemon.log"
        fi
    done
    (exit "$status")
    _on_exit
}

start_named_daemon() {
    local name=$1 sock pid limit
    shift
    if [[ ! "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        fail "start_named_daemon: '$name' is not a shell identifier"
        exit 1
    fi
    sock=$T/$name.sock
    "$VFIO_MIGD" --socket "$sock" --log-level info --allowed-dirs "$ALLOW_DIR" "$@" >>"$T/$name.log" 2>&1 \
        {JSON_W}>&- {JSON_R}<&- &
    pid=$!
    DAEMON_PIDS+=("$pid")
    printf -v "${name}_SOCK" '%s' "$sock"
    printf -v "${name}_PID" '%s' "$pid"
    if [[ " ${NAMED_DAEMONS[*]} " != *" $name "* ]]; then
        NAMED_DAEMONS+=("$name")
    fi
    trap _named_on_exit EXIT
    limit=$(($(ms_now) + DAEMON_WAIT * 1000))
    while :; do
        if ! proc_running "$pid"; then
            wait "$pid" 2>/dev/null || true
            _forget_daemon "$pid"
            fail "daemon $name starts on '$sock'" "it exited during start-up" "
$(tail -n 15 "$T/$name.log" 2>/dev/null)"
            exit 1
        fi
        if timeout -k 1 20 "$VFIO_MIGCTL" --socket "$sock" health >/dev/null 2>&1; then
            return 0
        fi
        if (($(ms_now) >= limit)); then
            fail "daemon $name starts on '$sock'" "not healthy after $DAEMON_WAIT s" "
$(tail -n 15 "$T/$name.log" 2>/dev/null)"
            exit 1
        fi
        sleep 0.05
    done
}

# start_plugin_daemons SO...: daemons S and D sharing the plugin directory $PLUGINS, which
# holds a link to each plugin file SO.
start_plugin_daemons() {
    local so
    PLUGINS=$T/plugins
    mkdir -p "$PLUGINS"
    for so in "$@"; do
        ln -s "$so" "$PLUGINS/$(basename "$so")"
    done
    start_named_daemon S --plugin-dir "$PLUGINS"
    start_named_daemon D --plugin-dir "$PLUGINS"
}

nctl() {
    local sockvar="${1}_SOCK"
    shift
    timeout -k 2 "$CTL_TIMEOUT" "$VFIO_MIGCTL" --socket "${!sockvar}" "$@"
}

njctl() {
    local name=$1
    shift
    nctl "$name" --json "$@"
}

named_log() {
    cat "$T/$1.log" 2>/dev/null || true
}

# fds_at_most PID N : 0 when PID holds N open fds or fewer
fds_at_most() {
    (($(fd_count "$1") <= $2))
}

# wait_fds PID N TIMEOUT_S : waits until PID holds N open fds or fewer
wait_fds() {
    wait_until "$3" fds_at_most "$1" "$2"
}

job_json() {
    njctl "$1" job "$2" 2>/dev/null || echo '{}'
}

JOB='{}'
wait_job() {
    local name=$1 id=$2 limit=$(($(ms_now) + $3 * 1000)) phase state p
    shift 3
    while :; do
        JOB=$(job_json "$name" "$id")
        phase=$(jget "$JOB" phase 2>/dev/null || true)
        state=$(jget "$JOB" state 2>/dev/null || true)
        for p in "$@"; do
            if [[ "$p" == "$phase" || ("$p" == over && -n "$state" && "$state" != active) ]]; then
                return 0
            fi
        done
        if (($(ms_now) >= limit)); then
            return 1
        fi
        sleep 0.05
    done
}

digests() {
    local name=$1 id j out=()
    shift
    for id in "$@"; do
        j=$(njctl "$name" show "$id")
        out+=("$(jget "$j" state):$(jget "$j" digest)")
    done
    echo "${out[*]}"
}

dev_prop() {
    local j
    j=$(njctl "$1" show "$2")
    jget "$j" "$3"
}

# jf JSON PATH... : jget that never fails (a failed call's output is not always JSON)
jf() {
    jget "$@" 2>/dev/null || true
}

# start_proxy TARGET ARGS... : tests/integration/tcp_proxy.py TARGET ARGS in the background;
# PROXY_PID, PROXY_ADDR. stop_proxy: kills it (SIGKILL: the kernel closes its every socket).
start_proxy() {
    rm -f "$T/proxy.port"
    "$PY" "$SRCDIR/tests/integration/tcp_proxy.py" "$1" --port-file "$T/proxy.port" "${@:2}" \
        >/dev/null 2>>"$T/proxy.log" &
    PROXY_PID=$!
    if wait_until "$STATE_WAIT" test -s "$T/proxy.port"; then
        PROXY_ADDR=$(<"$T/proxy.port")
    else
        fail "tcp_proxy.py starts" "$(cat "$T/proxy.log")"
        exit 1
    fi
}
stop_proxy() {
    kill -KILL "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
}

# mkgroup DAEMON GROUP SEEDBASE OPTS... : devices GROUP_0.. (one per OPTS), then the group.
# SEEDBASE "-" keeps the default seed (derived from the name: equal on both daemons).
mkgroup() {
    local daemon=$1 group=$2 seedbase=$3 i=0 o ids=()
    shift 3
    for o in "$@"; do
        if [[ "$seedbase" != - ]]; then
            o="$o,seed=$((seedbase + i))"
        fi
        njctl "$daemon" attach --sim "$o" --name "${group}_$i" >/dev/null
        ids+=("${group}_$i")
        i=$((i + 1))
    done
    njctl "$daemon" group create "$group" "${ids[@]}" >/dev/null
}

# devs_of GROUP N : the names mkgroup gives a group's N devices, as words
devs_of() {
    local i
    for ((i = 0; i < $2; i++)); do
        printf '%s_%d ' "$1" "$i"
    done
}

# incoming DAEMON GROUP ARGS... : PrepareIncoming on DAEMON; sets INC (the JSON), ADDR, TOKEN, DID
incoming() {
    local daemon=$1 group=$2
    shift 2
    expect_exit 0 njctl "$daemon" incoming "$group" "$@"
    INC=$OUT
    ADDR=$(jf "$INC" address)
    TOKEN=$(jf "$INC" token)
    DID=$(jf "$INC" id)
}
