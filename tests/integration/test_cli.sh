#!/usr/bin/env bash
# vfio-migctl's own contract: help, usage errors (exit 2, nothing sent), an unreachable daemon
# (exit 3), `version` without a daemon, and `path` (the kernel's arcs) against a real daemon.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

NOSOCK=$T/nobody-here.sock
COMMANDS=(devices attach detach show state path reset save restore health version watch log-level)

# The CLI on a socket where nothing listens: anything that exits 2 here was refused before
# any call (a call would have ended in exit 3).
nctl() {
    timeout -k 2 "$CTL_TIMEOUT" "$VFIO_MIGCTL" --socket "$NOSOCK" "$@"
}

# ---- help

expect_exit 0 "$VFIO_MIGCTL" --help
assert_contains "$OUT" "Usage: vfio-migctl" "--help prints the usage"
for c in "${COMMANDS[@]}"; do
    assert_line_match "$OUT" "^  $c +[A-Z]" "--help lists '$c'"
done
assert_contains "$OUT" "Exit status" "--help documents the exit statuses"
expect_exit 0 "$VFIO_MIGCTL" -h
assert_contains "$OUT" "Usage: vfio-migctl" "-h prints the usage"

for c in "${COMMANDS[@]}"; do
    expect_exit 0 nctl "$c" --help
    assert_contains "$OUT" "Usage: vfio-migctl [OPTIONS] $c" "'$c --help' shows the usage of '$c'"
    assert_eq "" "$ERR" "'$c --help' writes nothing on stderr"
done
# Help wins wherever it appears, also after arguments, and calls nothing.
expect_exit 0 nctl state dev0 stop --help
assert_contains "$OUT" "TARGET" "'state ... --help' documents TARGET"
expect_exit 0 nctl save dev0 /x --help
assert_contains "$OUT" "--force" "'save --help' documents --force"
expect_exit 0 nctl restore --help
assert_contains "$OUT" "--stop" "'restore --help' documents --stop"
expect_exit 0 nctl attach --help
assert_contains "$OUT" "--sim" "'attach --help' documents --sim"
assert_contains "$OUT" "--name" "'attach --help' documents --name"
expect_exit 0 nctl path -h
assert_contains "$OUT" "--flags" "'path -h' documents --flags"

# ---- help COMMAND: exactly COMMAND --help (like `git help`, `virsh help`)

expect_exit 0 nctl help
H=$OUT
expect_exit 0 nctl --help
assert_eq "$OUT" "$H" "'help' alone: the same as --help"
assert_line_match "$H" "^  help +[A-Z]" "--help lists 'help'"
for c in "${COMMANDS[@]}" group region; do
    expect_exit 0 nctl help "$c"
    H=$OUT
    expect_exit 0 nctl "$c" --help
    assert_eq "$OUT" "$H" "'help $c': the same text as '$c --help'"
done
expect_exit 0 nctl help group state
H=$OUT
expect_exit 0 nctl group state --help
assert_eq "$OUT" "$H" "'help group state': the same text as 'group state --help'"
expect_exit 2 nctl help frobnicate
assert_contains "$ERR" "unknown command 'frobnicate'" "'help' of an unknown command: says so"

# ---- --version: the client alone

expect_exit 0 nctl --version
assert_eq "vfio-migctl $PROJECT_VERSION" "$OUT" "--version prints the client's version"

# ---- usage errors: exit 2, a message, nothing on stdout, no call

usage() {
    expect_exit 2 nctl "$@"
    assert_contains "$ERR" "Try 'vfio-migctl " "  ... points at --help"
    assert_eq "" "$OUT" "  ... prints nothing on stdout"
}

usage
assert_contains "$ERR" "no command" "no command: says so"
usage region read dev0 0 0 0
assert_contains "$ERR" "LENGTH '0' is not a number from 1 to 4096" "region read LENGTH 0: refused with the range it checks"
usage region frob
assert_contains "$ERR" "unknown subcommand 'frob' (read or write)" "region frob: an unknown subcommand, not a missing argument"
usage region read dev0
assert_contains "$ERR" "missing argument; usage: vfio-migctl region read ID REGION OFFSET LENGTH" "region read without its arguments: missing argument"
usage frobnicate
assert_contains "$ERR" "'frobnicate'" "unknown command: names it"
usage --bogus devices
assert_contains "$ERR" "--bogus" "unknown global option: names it"
usage devices --bogus
assert_contains "$ERR" "--bogus" "unknown command option: names it"
assert_contains "$ERR" "Try 'vfio-migctl devices --help'" "a command's usage error points at its own --help"
usage state dev0 stop --frob
usage devices extra
assert_contains "$ERR" "too many arguments" "'devices extra': too many arguments"
usage show
assert_contains "$ERR" "missing argument" "'show' without ID: missing argument"
usage detach a b
usage state
usage state a stop extra
usage save a
usage restore a
usage save a ""
usage path running
usage reset
usage version extra
usage --timeout abc devices
assert_contains "$ERR" "abc" "bad --timeout: names the value"
usage --timeout -1 devices
usage --socket "" devices
usage --socket
assert_contains "$ERR" "needs an argument" "--socket without a value: needs an argument"
usage attach
assert_contains "$ERR" "--sim" "attach without a source: lists the sources"
usage attach --sim "" --pci 0000:00:01.0
usage attach --pci 0000:00:01.0 --model generic
usage attach --sim
usage save a f --bogus
usage path running stop --flags bogus
assert_contains "$ERR" "bogus" "bad --flags: names the value"
usage path running stop --flags
# A flag given a value: named in words (getopt's own report was a raw option value, printed
# as a control character).
usage devices --json=1
assert_contains "$ERR" "option '--json' takes no argument" "--json=1: the flag takes no argument"
usage show dev0 --help=yes
assert_contains "$ERR" "option '--help' takes no argument" "--help=yes: the flag takes no argument"
usage migrate g --to a:1 --token t --wait=1
assert_contains "$ERR" "option '--wait' takes no argument" "--wait=1: the flag takes no argument"

# Bad state names are refused by the CLI, with the valid names.
usage state dev0 nowhere
assert_contains "$ERR" "'nowhere'" "bad target: names it"
assert_contains "$ERR" "running" "bad target: lists the valid states"
assert_contains "$ERR" "pre_copy_p2p" "bad target: lists every state"
usage state dev0 ""
usage state dev0 stopcopy
usage path nowhere stop
usage path running nowhere
usage path running_p2p2 stop
# --json changes nothing for usage errors.
expect_exit 2 nctl --json state dev0 nowhere

# ---- no daemon: exit 3 with a plain message

expect_exit 3 nctl devices
assert_contains "$ERR" "$NOSOCK" "no daemon: the message names the socket"
assert_contains "$ERR" "cannot reach vfio-migd" "no daemon: the message says the daemon cannot be reached"
assert_eq "" "$OUT" "no daemon: nothing on stdout without --json"
expect_exit 3 nctl --json show dev0
assert_eq "UNAVAILABLE" "$(jget "$OUT" code)" "no daemon, --json: code UNAVAILABLE on stdout"
assert_contains "$(jget "$OUT" error)" "$NOSOCK" "no daemon, --json: the error names the socket"
for c in "devices" "show a" "state a" "state a stop" "attach --sim size=4K" "detach a" "reset a" \
    "save a f" "restore a f" "path running stop" "health" "watch" "watch m1" "jobs"; do
    # shellcheck disable=SC2086
    expect_exit 3 nctl $c
done

# $VFIO_MIGD_SOCKET is the default socket, --socket overrides it.
expect_exit 3 env VFIO_MIGD_SOCKET="$T/from-env.sock" "$VFIO_MIGCTL" devices
assert_contains "$ERR" "$T/from-env.sock" "\$VFIO_MIGD_SOCKET is used when --socket is not given"
expect_exit 3 env VFIO_MIGD_SOCKET="$T/from-env.sock" "$VFIO_MIGCTL" --socket "$T/opt.sock" devices
assert_contains "$ERR" "$T/opt.sock" "--socket wins over \$VFIO_MIGD_SOCKET"

# A path that is not a socket, and a socket file nobody listens on (a dead daemon's).
: >"$T/plain-file"
expect_exit 3 timeout 60 "$VFIO_MIGCTL" --socket "$T/plain-file" devices
assert_contains "$ERR" "$T/plain-file" "not a socket: the message names the path"
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$T/dead.sock"
# It fails at once, without waiting for the daemon to appear: with --timeout 0 (no deadline) a
# wait would last until timeout(1)'s bound (exit 124), and fail the exit-status check.
expect_exit 3 timeout 60 "$VFIO_MIGCTL" --socket "$T/dead.sock" --timeout 0 devices
assert_contains "$ERR" "$T/dead.sock" "dead socket: the message names the path"
# The same through a server-streaming call (WatchEvents): the stream fails, it does not hang.
expect_exit 3 timeout 60 "$VFIO_MIGCTL" --socket "$T/dead.sock" watch m1
assert_contains "$ERR" "$T/dead.sock" "dead socket, watch: the message names the path"
expect_exit 3 timeout 60 "$VFIO_MIGCTL" --socket "$T/dead.sock" --json watch
assert_eq "UNAVAILABLE" "$(jget "$OUT" code)" "dead socket, watch --json: code UNAVAILABLE on stdout"
mkdir "$T/a-directory"
expect_exit 3 timeout 60 "$VFIO_MIGCTL" --socket "$T/a-directory" health

# Each wrong path gets one sentence that names it, says what is there and what to do (no gRPC
# diagnostics): a file, a directory, a socket nobody listens on, a server that speaks no HTTP/2.
HINT="use --socket to name the daemon's socket (the default is /run/vfio-migd/api.sock)"
# not_ours CASE PATH SENTENCE [ARGS]: `health` on PATH exits 3 with exactly SENTENCE
not_ours() {
    expect_exit 3 timeout 60 "$VFIO_MIGCTL" --socket "$2" "${@:4}" health
    assert_eq "vfio-migctl: health: $3 (UNAVAILABLE)" "$ERR" "--socket $1: one plain sentence"
    assert_not_contains "$ERR" "failed to connect" "--socket $1: no gRPC diagnostics"
}
not_ours "a regular file" "$T/plain-file" \
    "'$T/plain-file' is not a vfio-migd API socket (it is a regular file); $HINT"
not_ours "a directory" "$T/a-directory" \
    "'$T/a-directory' is not a vfio-migd API socket (it is a directory); $HINT"
not_ours "nobody listening" "$T/dead.sock" \
    "cannot reach vfio-migd at '$T/dead.sock': nobody listens on this socket (is the daemon running? a daemon that was killed leaves its socket behind); start it, or $HINT"
not_ours "no such file" "$NOSOCK" \
    "cannot reach vfio-migd at '$NOSOCK': there is no such file (is the daemon running?); start it, or $HINT"
# foreign_unix MODE: a server that is not vfio-migd (foreign_server.py) on $T/MODE.sock
foreign_unix() {
    "$PY" "$SRCDIR/tests/integration/foreign_server.py" "$1" --port-file "$T/$1.ready" \
        --unix "$T/$1.sock" &
    FPID=$!
    check "a $1 server listens on $T/$1.sock" wait_until "$STATE_WAIT" test -s "$T/$1.ready"
}
foreign_unix http
not_ours "an HTTP/1.1 server" "$T/http.sock" \
    "'$T/http.sock' is not a vfio-migd API socket (the server listening there answers HTTP/1.x); $HINT"
kill "$FPID"
foreign_unix random
not_ours "a server sending random bytes" "$T/random.sock" \
    "'$T/random.sock' is not a vfio-migd API socket (the server listening there sent bytes that are not HTTP/2); $HINT"
kill "$FPID"
foreign_unix close
not_ours "a server closing at once" "$T/close.sock" \
    "the server at '$T/close.sock' closed the connection without answering: either it is not vfio-migd (then $HINT) or the daemon has --max-connections clients already (its log says 'Refused an API connection'; retry later)"
kill "$FPID"
# A server that never answers: our deadline ends the wait, and the sentence says why (gRPC's
# own connection timeout, 20 s, would say it too when --timeout is longer).
foreign_unix silent
not_ours "a silent server" "$T/silent.sock" \
    "nothing at '$T/silent.sock' answered as a gRPC server within 1 s: it is not a vfio-migd API socket, or the daemon is stuck (its log, or \`systemctl status vfio-migd\`, says why); $HINT" \
    --timeout 1
kill "$FPID"

# `version` prints the client's version even when the daemon is unreachable.
expect_exit 3 nctl version
assert_contains "$OUT" "$PROJECT_VERSION" "version without a daemon: prints the client's version"
assert_contains "$ERR" "cannot reach vfio-migd" "version without a daemon: says the daemon cannot be reached"
expect_exit 3 nctl --json version
assert_eq "$PROJECT_VERSION" "$(jget "$OUT" client_version)" "version --json without a daemon: client_version"
assert_eq "UNAVAILABLE" "$(jget "$OUT" code)" "version --json without a daemon: code UNAVAILABLE"

# ---- a socket we may not use: the daemon may well run, so say what to do, not "is it running?"

mkdir -p "$T/perm"
: >"$T/perm/api.sock"
chgrp adm "$T/perm/api.sock"
chmod 660 "$T/perm/api.sock"
chmod 711 "$T" # nobody may pass through to it, not read it
expect_exit 3 setpriv --reuid=65534 --regid=65534 --clear-groups "$VFIO_MIGCTL" --socket "$T/perm/api.sock" devices
assert_contains "$ERR" "permission denied on '$T/perm/api.sock': run as root or as a member of group 'adm'" "a socket we may not use: names the group to join"
assert_not_contains "$ERR" "is the daemon running" "  ... and does not ask whether the daemon runs"
chmod 700 "$T"

# ---- with a daemon

start_daemon

expect_exit 0 ctl health
assert_eq "SERVING" "$OUT" "health: SERVING"
expect_exit 0 jctl version
assert_eq "$PROJECT_VERSION" "$(jget "$OUT" client_version)" "version: client_version"
assert_eq "$PROJECT_VERSION" "$(jget "$OUT" daemon_version)" "version: daemon_version"
assert_eq "$DAEMON_PID" "$(jget "$OUT" pid)" "version: the daemon's pid"
expect_exit 0 ctl version
assert_match "$OUT" "client: +$PROJECT_VERSION" "version (text): client line"
assert_match "$OUT" "pid: +$DAEMON_PID" "version (text): pid line"

# ---- log-level: read and changed at run time (like `ovs-appctl vlog/set`)

expect_exit 0 ctl log-level
assert_eq "info" "$OUT" "log-level: the level the daemon started with"
expect_exit 0 ctl devices
assert_not_contains "$(cat "$T/daemon.log")" "Call /vfio_migd.v1.DeviceService/ListDevices" "at info, no debug line about calls"
expect_exit 0 ctl log-level debug
assert_eq "log level debug (was info)" "$OUT" "log-level debug: says what changed"
expect_exit 0 jctl log-level
assert_eq "debug" "$(jget "$OUT" level)" "log-level --json: the level now in force"
expect_exit 0 ctl devices
assert_contains "$(cat "$T/daemon.log")" "Call /vfio_migd.v1.DeviceService/ListDevices" "at debug, the daemon logs its calls at once"
assert_contains "$(cat "$T/daemon.log")" "(rpc/server.c:" "debug lines name their source file relative to the tree"
assert_not_contains "$(cat "$T/daemon.log")" "$SRCDIR/" "  ... never by the build machine's absolute path"
expect_error INVALID_ARGUMENT jctl log-level loud
assert_contains "$ERR" "unknown log level 'loud': use error, warning, notice, info or debug" "log-level of a wrong name: lists the levels"
expect_exit 0 jctl log-level
assert_eq "debug" "$(jget "$OUT" level)" "  ... and changes nothing"
expect_exit 0 jctl log-level info
assert_eq "info debug" "$(jget "$OUT" level previous | tr '\n' ' ' | sed 's/ $//')" "log-level info --json: level and previous"
usage log-level ''
assert_contains "$ERR" "LEVEL" "log-level '': refused, names LEVEL"

# --opt=value and "--" (cli.md "Global options").
expect_exit 0 "$VFIO_MIGCTL" --socket="$SOCK" --timeout=5 --json devices
assert_eq "[]" "$(jnorm "$OUT")" "--socket=PATH --timeout=5 work"
expect_exit 0 jctl path --flags=stop_copy running stop
assert_eq "running->stop" "$(jlist "$OUT" arcs)" "path --flags=stop_copy works"
expect_exit 0 jctl path --flags stop_copy -- running stop
assert_eq "running->stop" "$(jlist "$OUT" arcs)" "'--' ends a command's options"
expect_exit 0 "$VFIO_MIGCTL" --socket "$SOCK" --json -- devices
assert_eq "[]" "$(jnorm "$OUT")" "'--' ends the global options"

# Global options are also accepted after the command.
expect_exit 0 "$VFIO_MIGCTL" devices --json --socket "$SOCK"
assert_eq "[]" "$(jnorm "$OUT")" "global options after the command: --json --socket"
expect_exit 0 env VFIO_MIGD_SOCKET="$SOCK" "$VFIO_MIGCTL" --json devices
assert_eq "[]" "$(jnorm "$OUT")" "\$VFIO_MIGD_SOCKET reaches the daemon"

# ---- path: the kernel's arcs (drivers/vfio/vfio_main.c vfio_mig_get_next_state)

# path_is FROM TO FLAGS "ARC ARC..." SESSION_ARC
path_is() {
    local from=$1 to=$2 flags=$3 want=$4 session=$5 what
    what="path $from -> $to (flags $flags)"
    expect_exit 0 jctl path "$from" "$to" --flags "$flags"
    assert_eq "$want" "$(jlist "$OUT" arcs 2>&1)" "$what: arcs"
    assert_eq "$session" "$(jget "$OUT" data_session_arc 2>&1)" "$what: data_session_arc"
}

ALL=stop_copy+p2p+pre_copy
path_is running stop_copy "$ALL" "running->running_p2p running_p2p->stop stop->stop_copy" 2
path_is running stop_copy stop_copy "running->stop stop->stop_copy" 1
path_is running stop_copy stop_copy+p2p "running->running_p2p running_p2p->stop stop->stop_copy" 2
path_is running stop_copy stop_copy+pre_copy "running->stop stop->stop_copy" 1
path_is pre_copy stop_copy "$ALL" "pre_copy->pre_copy_p2p pre_copy_p2p->stop_copy" -1
path_is pre_copy stop_copy stop_copy+pre_copy "pre_copy->stop_copy" -1
path_is running pre_copy "$ALL" "running->pre_copy" 0
path_is running pre_copy stop_copy+pre_copy "running->pre_copy" 0
path_is running pre_copy_p2p "$ALL" "running->running_p2p running_p2p->pre_copy_p2p" 1
path_is pre_copy_p2p running "$ALL" "pre_copy_p2p->running_p2p running_p2p->running" -1
path_is pre_copy running_p2p "$ALL" "pre_copy->running running->running_p2p" -1
path_is running stop "$ALL" "running->running_p2p running_p2p->stop" -1
path_is running stop stop_copy "running->stop" -1
path_is stop running stop_copy+p2p "stop->running_p2p running_p2p->running" -1
path_is stop running stop_copy "stop->running" -1
path_is stop resuming "$ALL" "stop->resuming" 0
path_is running resuming "$ALL" "running->running_p2p running_p2p->stop stop->resuming" 2
path_is resuming running stop_copy "resuming->stop stop->running" -1
path_is resuming running "$ALL" "resuming->stop stop->running_p2p running_p2p->running" -1
path_is resuming pre_copy "$ALL" \
    "resuming->stop stop->running_p2p running_p2p->running running->pre_copy" 3
path_is stop_copy running stop_copy+pre_copy "stop_copy->stop stop->running" -1
path_is stop_copy resuming "$ALL" "stop_copy->stop stop->resuming" 1
path_is running running "$ALL" "" -1
path_is stop stop stop_copy "" -1

# Default flags are all three; short and upper-case names; numeric flags.
expect_exit 0 jctl path running stop_copy
assert_eq "running->running_p2p running_p2p->stop stop->stop_copy" "$(jlist "$OUT" arcs)" \
    "path without --flags: all three flags"
assert_eq "stop_copy p2p pre_copy" "$(jlist "$OUT" flags)" "path JSON: flags"
assert_eq "running" "$(jget "$OUT" from)" "path JSON: from"
assert_eq "stop_copy" "$(jget "$OUT" to)" "path JSON: to"
expect_exit 0 jctl path run sc --flags 1
assert_eq "running->stop stop->stop_copy" "$(jlist "$OUT" arcs)" "path run sc --flags 1 (short names, numeric flags)"
expect_exit 0 jctl path RUNNING PCP2P --flags 7
assert_eq "running->running_p2p running_p2p->pre_copy_p2p" "$(jlist "$OUT" arcs)" "path RUNNING PCP2P --flags 7"
expect_exit 0 jctl path res rp2p --flags stop_copy,p2p
assert_eq "resuming->stop stop->running_p2p" "$(jlist "$OUT" arcs)" "path res rp2p --flags stop_copy,p2p"

# Text output.
expect_exit 0 ctl path running stop_copy
assert_contains "$OUT" "running -> running_p2p -> stop -> stop_copy" "path (text): the chain"
assert_contains "$OUT" "opens a data session" "path (text): names the data-session arc"
expect_exit 0 ctl path running running
assert_contains "$OUT" "no arcs" "path running running (text): no arcs"

# Refusals: exit 1, INVALID_ARGUMENT, EINVAL and the reason.
refused() {
    expect_error INVALID_ARGUMENT jctl path "$@"
    assert_contains "$ERR" "EINVAL" "  ... the message says EINVAL"
}
refused stop_copy pre_copy
assert_contains "$ERR" "STOP_COPY -> PRE_COPY" "stop_copy -> pre_copy: the kernel forbids it"
refused stop_copy pre_copy_p2p
refused stop_copy pre_copy --flags stop_copy+pre_copy
refused running error
assert_contains "$ERR" "ERROR can never be requested" "running -> error: ERROR can never be requested"
refused error running
assert_contains "$ERR" "only a device reset" "error -> running: only a reset leaves ERROR"
refused error error
refused running pre_copy --flags stop_copy
assert_contains "$ERR" "needs a migration flag" "pre_copy with flags stop_copy: the target needs a flag"
refused pre_copy stop --flags stop_copy
assert_contains "$ERR" "does not exist" "from pre_copy with flags stop_copy: the state does not exist"
refused running running_p2p --flags stop_copy+pre_copy
refused running pre_copy_p2p --flags stop_copy+pre_copy
refused running stop --flags p2p
assert_contains "$ERR" "legal sets" "flags p2p: not a legal flag set"
refused running stop --flags 0
refused running stop --flags pre_copy
refused running stop --flags 8
# Without --json: the same message on stderr, nothing on stdout.
expect_exit 1 ctl path stop_copy pre_copy
assert_eq "" "$OUT" "refusal without --json: nothing on stdout"
assert_contains "$ERR" "(INVALID_ARGUMENT)" "refusal without --json: the code on stderr"

# Other daemon-side errors exit 1 (not 2, not 3).
expect_error NOT_FOUND jctl show no-such-device
expect_exit 1 ctl health no.such.Service
expect_exit 0 ctl health vfio_migd.v1.DeviceService
expect_exit 0 jctl health vfio_migd.v1.SystemService
assert_eq "serving" "$(jget "$OUT" status)" "health --json: status serving"

# --timeout bounds the wait for an answer: DEADLINE_EXCEEDED (exit 1, not "unreachable"); the
# operation itself goes on in the daemon.
# The operation's arc is held until released: DEADLINE_EXCEEDED can only come from --timeout,
# not from the answer. 3 s leave the call time to reach even a loaded daemon.
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' slow)" --name slow
expect_error DEADLINE_EXCEEDED jctl --timeout 3 state slow stop
assert_contains "$ERR" "--timeout" "--timeout expired: the message points at --timeout"
assert_eq "true set-state" "$(dev_field slow busy) $(dev_field slow busy_operation)" \
    "after the client gave up, the operation still runs in the daemon"
release slow
idle() { [[ "$(dev_field slow busy)" == false ]]; }
wait_state "the operation completes in the daemon" idle
assert_eq "stop" "$(dev_field slow state)" "the timed-out state change reached stop in the daemon"
expect_exit 0 jctl --timeout 0 state slow running
assert_eq "running" "$(jget "$OUT" state)" "--timeout 0 waits for ever"

# A reader that went away (`vfio-migctl devices | head -1`): stdout is a pipe whose reading end
# is closed before the CLI writes, and SIGPIPE has its default action, as under a shell. The
# CLI says it could not write and exits 1; it is not killed silently by SIGPIPE (141).
expect_exit 0 jctl attach --sim size=4K --name piped
run "$PY" -S -c '
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE, timeout=60)
sys.stderr.write(p.stderr.decode(errors="replace"))
print(p.returncode)' "$VFIO_MIGCTL" --socket "$SOCK" devices
assert_eq "1" "$OUT" "closed stdout: exit 1, not killed by SIGPIPE"
assert_contains "$ERR" "cannot write to stdout" "closed stdout: the CLI says so"
