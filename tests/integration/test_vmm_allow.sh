#!/usr/bin/env bash
# A device's own VMM allow-list (issue 14 item 3, "per device or global"), with the real
# daemon, the real CLI and the example VMM client: attach --vmm-users/--vmm-groups set it,
# `show` says it, a list naming another uid refuses TAKE with the sentence and changes nothing
# (the global list, which names the test's uid, does not widen it), a list naming the test's
# uid (by name) or its gid admits it, a device without a list follows the global list, a peer
# named only by a device's list gets onto the socket, bad lists attach nothing, the global list
# follows a SIGHUP reload, and the list survives the daemon's restart under the
# service-manager harness. Every wait is on an event.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
: "${VMM_CLIENT:?VMM_CLIENT must name the example client}"

ME=$(id -u)
MYGID=$(id -g)
MYNAME=$(id -un)
# A uid that is not the test's (nobody's neighbour: a number needs no user of that id).
OTHER=65533
[[ $ME != "$OTHER" ]] || OTHER=65532

VMM_SOCK=$T/vmm.sock
# take DEVICE TAG: the example client takes DEVICE (one MSI-X vector) and gives it back at
# once; its exit status in RC, its stderr in $T/TAG.err. A refusal ends it with status 1.
take() {
    "$VMM_CLIENT" --socket "$VMM_SOCK" --device "$1" --vectors 1 </dev/null >"$T/$2.out" \
        2>"$T/$2.err" &
    local pid=$!
    if wait_exit "$pid" "$STATE_WAIT"; then
        RC=$WAIT_RC
    else
        kill -KILL "$pid" 2>/dev/null || true
        RC=timeout
    fi
}
# takes DEVICE TAG: the client was admitted (it got as far as "ready"), then ended by EOF
takes() {
    take "$1" "$2"
    assert_contains "$(cat "$T/$2.err")" "vmm-client: ready" "$1: the test's uid takes it ($3)"
}
irqs_of() { jnorm "$(jctl irqs "$1")"; }

# ==== the global list names the test's uid; devices with and without their own list
start_daemon --vmm-users "$ME"
expect_exit 0 jctl attach --sim "size=4K,msix=4" --name plain
assert_eq "[] []" "$(jget "$OUT" vmm_uids vmm_gids | tr '\n' ' ' | sed 's/ $//')" \
    "attach without a list: vmm_uids and vmm_gids are empty"
expect_exit 0 jctl attach --sim "size=4K,msix=4" --name locked --vmm-users "$OTHER"
assert_eq "[$OTHER]" "$(jget "$OUT" vmm_uids)" "attach --vmm-users $OTHER: the answer shows it"
expect_exit 0 ctl show locked
assert_line_match "$OUT" "^vmm allow-list: +own: uids $OTHER; gids -\$" "show: the device's own list"
expect_exit 0 ctl show plain
assert_line_match "$OUT" "^vmm allow-list: +global \\(\\[vmm\\] allowed_users, allowed_groups\\)\$" \
    "show: a device without a list follows the global one"

# A list naming another uid: TAKE refused in words, nothing changed.
BEFORE_SHOW=$(jnorm "$(jctl show locked)")
BEFORE_IRQS=$(irqs_of locked)
take locked refused
assert_eq 1 "$RC" "the test's uid (on the global list) may not take 'locked'"
assert_contains "$(cat "$T/refused.err")" \
    "ERR EACCES uid $ME (gid $MYGID) may not take device 'locked': its own VMM allow-list does not name it" \
    "  ... told so, naming the device, the uid and the gid"
assert_contains "$(cat "$T/refused.err")" "attach the device with --vmm-users $ME" \
    "  ... and the command that admits it"
assert_contains "$(cat "$T/daemon.log")" "refused device 'locked': not on the device's own VMM allow-list" \
    "  ... and logged"
assert_eq "$BEFORE_SHOW" "$(jnorm "$(jctl show locked)")" "  ... the device is as it was"
assert_eq "$BEFORE_IRQS" "$(irqs_of locked)" "  ... its interrupts too (nothing enabled)"
assert_eq 0 "$(jget "$(jctl show locked)" holder_pid)" "  ... and no one holds it"

# A device without a list follows the global list, which names the test's uid.
takes plain plain "the global list"

# A list naming the test's user by name, or its primary group: admitted.
expect_exit 0 jctl attach --sim "size=4K,msix=4" --name byname --vmm-users "$OTHER,$MYNAME"
assert_eq "[$OTHER, $ME]" "$(jget "$OUT" vmm_uids | tr '\n' ' ' | sed 's/ $//')" \
    "--vmm-users $OTHER,$MYNAME: the name resolved by the daemon, in order"
takes byname byname "named by its user name"
expect_exit 0 jctl attach --sim "size=4K,msix=4" --name bygroup --vmm-groups "$MYGID"
assert_eq "[] [$MYGID]" "$(jget "$OUT" vmm_uids vmm_gids | tr '\n' ' ' | sed 's/ $//')" \
    "--vmm-groups $MYGID: the answer shows it"
takes bygroup bygroup "its primary group"

# ==== bad lists: refused in words, nothing attached
B=$(snapshot)
expect_error INVALID_ARGUMENT jctl attach --sim "size=4K" --name bad --vmm-users no-such-user-x1
assert_contains "$ERR" "names no user of this host: 'no-such-user-x1'" "  ... an unknown user, named"
expect_error INVALID_ARGUMENT jctl attach --sim "size=4K" --name bad --vmm-groups 'a b'
assert_contains "$ERR" "group 'a b' is neither a name nor a numeric id" "  ... a malformed group"
expect_error INVALID_ARGUMENT jctl attach --sim "size=4K" --name bad --vmm-users 4294967295
MANY=$(seq -s, 1000 1032)
expect_error INVALID_ARGUMENT jctl attach --sim "size=4K" --name bad --vmm-users "$MANY"
assert_contains "$ERR" "names 33 users, at most 32" "  ... too many users"
expect_exit 2 ctl attach --sim "size=4K" --name bad --vmm-users ,
assert_contains "$ERR" "names no one" "  ... a list of no one is a usage error"
assert_eq "$B" "$(snapshot)" "after every refusal, the devices are as they were"
stop_daemon
assert_eq 0 "$DAEMON_RC" "the daemon stops cleanly"

# ==== the global list names someone else: a device's own list lets the test's uid on
printf '[vmm]\nallowed_users = %s\n' "$OTHER" >"$T/vmm.conf"
start_daemon --config "$T/vmm.conf"
expect_exit 0 ctl attach --sim "size=4K,msix=4" --name plain
take plain early
assert_eq 1 "$RC" "named by no list: refused when it connects"
assert_contains "$(cat "$T/early.err")" "ERR EACCES uid $ME may not take devices" "  ... in words"
expect_exit 0 ctl attach --sim "size=4K,msix=4" --name own --vmm-users "$ME"
takes own own "its own list, though the global one does not name it"
take plain plain2
assert_eq 1 "$RC" "on the socket, it still may not take a device that follows the global list"
assert_contains "$(cat "$T/plain2.err")" \
    "ERR EACCES uid $ME (gid $MYGID) may not take device 'plain': it follows [vmm] allowed_users and allowed_groups" \
    "  ... told which list refused it"
# The global list follows a reload (SIGHUP); a device's own list stays as attached.
printf '[vmm]\nallowed_users = %s\n' "$ME" >"$T/vmm.conf"
MARK=$(log_mark)
kill -HUP "$DAEMON_PID"
wait_state "SIGHUP: the global VMM list changed" log_since "$MARK" "Reloaded on SIGHUP: changed allowed_users."
takes plain plain3 "the global list, once reloaded"
takes own own2 "its own list, which the reload did not touch"
stop_daemon

# ==== a non-root peer, named only by a device's list (needs root and setpriv)
if [[ $ME == 0 ]] && command -v setpriv >/dev/null; then
    start_daemon
    expect_exit 0 ctl attach --sim "size=4K,msix=4" --name guest --vmm-users 65534
    chmod o+x "$T" && chmod 0666 "$VMM_SOCK" # only the credentials check stands in the way
    setpriv --reuid=65534 --regid=65534 --clear-groups "$VMM_CLIENT" --socket "$VMM_SOCK" \
        --device guest --vectors 1 </dev/null >"$T/nobody.out" 2>"$T/nobody.err" &
    expect_ended $! 0 "uid 65534, on 'guest''s list only, takes it"
    assert_contains "$(cat "$T/nobody.err")" "vmm-client: ready" "  ... and wired its vector"
    take guest rootless
    assert_eq 1 "$RC" "root, on the global list but not on 'guest''s, may not take it"
    stop_daemon
else
    pass "# SKIP the non-root peer needs root and setpriv"
fi

# ==== the list survives a restart (service-manager harness, fd store on)
SDSOCK=$SDH/api.sock
VMM_SOCK=$SDH/vmm.sock
sdctl() { timeout -k 2 "$CTL_TIMEOUT" "$VFIO_MIGCTL" --socket "$SDSOCK" --json "$@"; }
start_service() {
    expect_exit 0 sdh start --log "$SDH/service.log" -- "$VFIO_MIGD" --log-level info \
        --allowed-dirs "$T" --vmm-users "$ME"
    expect_exit 0 sdh wait-notify READY=1
}
trap 'status=$?; sdh_quit; (exit $status); _on_exit' EXIT
sdh_serve --fdstore-max 16
sdh listen api "$SDSOCK" >/dev/null
start_service
expect_exit 0 sdctl attach --sim "size=4K,msix=4" --name locked --vmm-users "$OTHER" \
    --vmm-groups "$OTHER"
expect_exit 0 sdctl attach --sim "size=4K,msix=4" --name mine --vmm-users "$OTHER,$ME"
expect_exit 0 sdh kill KILL
expect_exit 0 sdh wait-exit
start_service
assert_contains "$(cat "$SDH/service.log")" "recovered 2 device(s)" "both devices came back"
assert_eq "[$OTHER] [$OTHER]" "$(jget "$(sdctl show locked)" vmm_uids vmm_gids | tr '\n' ' ' | sed 's/ $//')" \
    "'locked' keeps its list across SIGKILL"
assert_eq "[$OTHER, $ME]" "$(jget "$(sdctl show mine)" vmm_uids | tr '\n' ' ' | sed 's/ $//')" \
    "'mine' keeps its list"
take locked sd-refused
assert_eq 1 "$RC" "after the restart, 'locked' still refuses the test's uid"
assert_contains "$(cat "$T/sd-refused.err")" "may not take device 'locked': its own VMM allow-list" \
    "  ... by its own list"
takes mine sd-mine "after the restart, by its kept list"
sdh_quit
