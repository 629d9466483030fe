#!/usr/bin/env bash
# Who may do what (issue 11 item 6), with real uids: the daemon runs as root, the real CLI as
# the unprivileged user 65534 (setpriv) whose primary group is the socket's group, so that it
# can connect at all. With the default roles it may probe (health, version) and nothing else;
# granted the reader role it may look but every change is refused with PERMISSION_DENIED and
# a sentence naming it, the role and the keys that grant it, and nothing changes; granted the
# operator role (by name or number, in a file read at a restart or on SIGHUP) it may change
# devices. Root stays an operator throughout. Needs root (setpriv --reuid); skips otherwise.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if [[ "$(id -u)" != 0 ]]; then
    echo "# skipped: running another user's CLI needs root (id -u is $(id -u))"
    exit 77
fi

USER_ID=65534
USER_NAME=$(getent passwd "$USER_ID" | cut -d: -f1)
SOCK_GID=4243 # the socket's group, and the user's primary group: no name needed
CONF=$T/vfio-migd.conf
# The user must reach the socket in $T (mode 0700 from mktemp): traverse only.
chmod 0711 "$T"

# uctl ARGS: the CLI as that user, primary group the socket's, no supplementary groups.
uctl() {
    timeout -k 2 "$CTL_TIMEOUT" setpriv --reuid="$USER_ID" --regid="$SOCK_GID" --clear-groups \
        "$VFIO_MIGCTL" --socket "$SOCK" "$@"
}

# refused ROLE METHOD CMD...: CMD (a uctl call) exits 1 with PERMISSION_DENIED and the sentence.
refused() {
    local role=$1 method=$2 keys
    shift 2
    if [[ "$role" == operator ]]; then
        keys="needs the operator role; grant it with [api] operator_users or operator_groups in $CONF"
    else
        keys="needs the reader role (or the operator role); grant it with [api] reader_users or reader_groups in $CONF"
    fi
    expect_exit 1 "$@"
    assert_contains "$ERR" "uid $USER_ID ($USER_NAME) may not call $method: " \
        "  ... names the caller and the method"
    assert_contains "$ERR" "$keys" "  ... says which role and how to grant it"
    assert_contains "$ERR" "PERMISSION_DENIED" "  ... as PERMISSION_DENIED"
}

start() {
    start_daemon --config "$CONF" --socket-group "$SOCK_GID"
}

# ---- the defaults: root operates, the user may only probe

: >"$CONF"
start
assert_contains "$(<"$T/daemon.log")" "API roles: operators are users 'root'" \
    "the daemon logs the roles at start"
if ! getent group vfio-migd >/dev/null; then
    assert_contains "$(<"$T/daemon.log")" "The default group(s) vfio-migd of the API roles do not exist on this host and grant nothing" \
        "a default group the host lacks is said once, and grants nothing"
fi
expect_exit 0 uctl health
assert_eq "SERVING" "$OUT" "health is open to anyone who can connect"
expect_exit 0 uctl version
expect_exit 0 ctl attach --sim size=4K --name d0
refused reader ListDevices uctl devices
refused reader GetDevice uctl show d0
refused operator AttachDevice uctl attach --sim size=4K --name d1
expect_exit 1 uctl --json devices
assert_eq "PERMISSION_DENIED" "$(jget "$OUT" code)" "--json: the code"
expect_exit 0 ctl show d0
stop_daemon

# ---- readers by their primary group (a number): they look, every change is refused

printf '[api]\nreader_groups = %s\n' "$SOCK_GID" >"$CONF"
start
expect_exit 0 ctl attach --sim size=4K --name d0
expect_exit 0 ctl group create g0 d0
B=$(snapshot)
expect_exit 0 uctl devices
assert_contains "$OUT" "d0" "a reader lists the devices"
expect_exit 0 uctl show d0
expect_exit 0 uctl group show g0
expect_exit 0 uctl jobs
refused operator AttachDevice uctl attach --sim size=4K --name d1
refused operator SetDeviceState uctl state d0 stop
refused operator ResetDevice uctl reset d0
refused operator DetachDevice uctl detach d0
refused operator GroupTransition uctl group state g0 stop
refused operator DeleteGroup uctl group delete g0
refused operator Save uctl save g0 "$T/x.sav"
refused operator PrepareIncoming uctl incoming g0 --listen tcp:127.0.0.1:0
refused operator CancelMigration uctl cancel m1
refused operator ResolveMigration uctl resolve m1 --abort
assert_eq "$B" "$(snapshot)" "after every refusal, the devices are as they were"
assert_file_absent "$T/x.sav" "a refused save writes nothing"

# ---- SIGHUP grants the operator role (by user name) without a restart

MARK=$(log_mark)
printf '[api]\nreader_groups = %s\noperator_users = root, %s\n' "$SOCK_GID" "$USER_NAME" >"$CONF"
kill -HUP "$DAEMON_PID"
wait_state "SIGHUP: the daemon reloads the roles" log_since "$MARK" "Reloaded on SIGHUP: changed operator_users"
expect_exit 0 uctl state d0 stop
expect_exit 0 uctl attach --sim size=4K --name d1
expect_exit 0 ctl show d1
stop_daemon

# ---- a restart with the operator role by group (a number), reader role withdrawn

printf '[api]\nreader_groups =\noperator_groups = %s\n' "$SOCK_GID" >"$CONF"
start
expect_exit 0 uctl attach --sim size=4K --name d2
expect_exit 0 uctl devices
assert_contains "$OUT" "d2" "an operator is also a reader"
stop_daemon

# ---- a restart without any grant: refused again, root still operates

printf '[api]\noperator_users = 0\nreader_groups =\n' >"$CONF"
start
refused operator AttachDevice uctl attach --sim size=4K --name d3
refused reader ListDevices uctl devices
expect_exit 0 ctl attach --sim size=4K --name d3
stop_daemon

# ---- a name that does not resolve is a problem on its line: the daemon does not start

printf '[api]\n\noperator_users = root no-such-user-vfio-migd\n' >"$CONF"
expect_exit 1 timeout 10 "$VFIO_MIGD" --config "$CONF" --socket "$T/never.sock"
assert_contains "$ERR" "$CONF:3: [api] operator_users names no user of this host: 'no-such-user-vfio-migd'" \
    "an unknown user: the line and the name"
assert_file_absent "$T/never.sock" "an unknown user: no socket"
