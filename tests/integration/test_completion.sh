#!/usr/bin/env bash
# Bash completion of vfio-migctl (packaging/bash-completion/vfio-migctl), called as bash calls
# it: COMP_WORDS/COMP_CWORD set, the function run, COMPREPLY read. Commands and options come
# from the CLI's --help; device, group and migration names from a live daemon with sim
# devices (through --socket or $VFIO_MIGD_SOCKET); with no daemon, or one that never
# answers, nothing is offered and the completion still returns.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

COMPLETION=$SRCDIR/packaging/bash-completion/vfio-migctl
# As an interactive shell finds it: by name, on PATH.
PATH=$(dirname "$VFIO_MIGCTL"):$PATH
# shellcheck source=../../packaging/bash-completion/vfio-migctl
source "$COMPLETION"

# comp WORD... : completes the last word of "vfio-migctl WORD..."; prints the candidates
# sorted, space-separated
comp() {
    COMP_WORDS=(vfio-migctl "$@")
    COMP_CWORD=$#
    COMPREPLY=()
    _vfio_migctl
    printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}

assert_contains "$(complete -p vfio-migctl)" "_vfio_migctl" "the completion is registered for vfio-migctl"

# ---- commands and options, from --help (no daemon needed)

ALL=$("$VFIO_MIGCTL" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')
assert_eq "$ALL" "$(comp "")" "every command of --help, and only those"
assert_eq "describe detach devices" "$(comp de)" "a command's prefix"
assert_eq "--help --json --no-headers --socket --timeout --version" "$(comp --)" "global options"
assert_eq "debug" "$(comp log-level d)" "log-level: the levels"
assert_eq "group" "$(comp help gr)" "help: the commands"
assert_contains "$(comp migrate vm1 --pr)" "--precopy" "a command's options"
assert_eq "auto off" "$(comp migrate vm1 --precopy "")" "--precopy's values, from the usage"
assert_eq "auto manual" "$(comp migrate vm1 --switchover "")" "--switchover's values"
assert_eq "create delete list reset show state" "$(comp group "")" "group's subcommands"
assert_eq "read write" "$(comp region "")" "region's subcommands"
assert_eq "pre_copy pre_copy_p2p" "$(comp path running pre)" "states, with no daemon"
assert_eq "" "$(comp attach --name "")" "an option's free-form argument: nothing"
: >"$T/savefile"
assert_contains "$(comp save vm1 "$T/save")" "$T/savefile" "a file argument: files"

# ---- names from a live daemon

start_daemon
expect_exit 0 jctl attach --sim size=4K --name nic0
expect_exit 0 jctl attach --sim size=4K --name nic1
expect_exit 0 jctl attach --sim size=4K --name disk0
expect_exit 0 jctl group create vm1 nic0 nic1
expect_exit 0 jctl save vm1 "$T/vm1.save"

assert_eq "disk0 nic0 nic1" "$(comp --socket "$SOCK" show "")" "show: the daemon's devices"
assert_eq "nic0 nic1" "$(comp --socket "$SOCK" detach n)" "detach: devices by prefix"
assert_eq "disk0 nic0 nic1" "$(comp --socket="$SOCK" reset "")" "--socket=PATH is followed too"
assert_eq "vm1" "$(comp --socket "$SOCK" group show "")" "group show: the daemon's groups"
assert_eq "vm1" "$(comp --socket "$SOCK" group reset "")" "group reset: the daemon's groups"
assert_eq "disk0 nic0 nic1" "$(comp --socket "$SOCK" group create vm2 "")" "group create: devices"
assert_eq "disk0 nic0 nic1" "$(comp --socket "$SOCK" group create vm2 disk0 "")" \
    "group create: devices, for every further argument"
assert_eq "stop stop_copy" "$(comp --socket "$SOCK" group state vm1 st)" "group state: states"
assert_eq "disk0 nic0 nic1 vm1" "$(comp --socket "$SOCK" save "")" "save: groups and devices"
assert_eq "m1" "$(comp --socket "$SOCK" job "")" "job: the daemon's migrations"
assert_eq "nic0 nic1" "$(comp --json --socket "$SOCK" --timeout 5 state n)" \
    "global options with arguments before the command are skipped"
assert_eq "running running_p2p" "$(comp --socket "$SOCK" state nic0 runn)" "state DEV: states"
assert_eq "disk0 nic0 nic1" "$(comp --socket "$SOCK" region read "")" "region read: devices"
assert_eq "disk0 nic0 nic1" "$(comp show --socket "$SOCK" "")" "--socket after the command"
assert_eq "disk0 nic0 nic1" "$(VFIO_MIGD_SOCKET=$SOCK comp show "")" "\$VFIO_MIGD_SOCKET"

# ---- no daemon, or one that never answers: nothing, and the completion returns

assert_eq "" "$(comp --socket "$T/none.sock" show "")" "no daemon: no names"
"$PY" -S - "$T/mute.sock" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
conns = []
end = time.time() + 60
s.settimeout(0.2)
while time.time() < end:
    try:
        conns.append(s.accept()[0])  # accept, then never answer
    except socket.timeout:
        pass
EOF
MUTE=$!
have_mute() { [[ -S "$T/mute.sock" ]]; }
check "a listener that never answers is up" wait_until 5 have_mute
run timeout 20 bash -c "PATH='$PATH'; source '$COMPLETION'; COMP_WORDS=(vfio-migctl --socket '$T/mute.sock' show ''); COMP_CWORD=4; _vfio_migctl; echo \"[\${COMPREPLY[*]}]\""
assert_eq "0" "$RC" "a daemon that never answers: the completion returns (the CLI's --timeout 1)"
assert_eq "[]" "$OUT" "a daemon that never answers: no names"
kill "$MUTE" 2>/dev/null || true
wait "$MUTE" 2>/dev/null || true
