#!/usr/bin/env bash
# The configuration file (vfio-migd.conf(5)) with the real daemon: settings from the file take
# effect (socket, its mode and group, workers, the default migration policy, seen in a real
# migration), the command line wins over the file, --check-config lists every problem with its
# line, a bad file or a missing named file stops the daemon before it creates anything, and the
# shipped default file is exactly the commented defaults (every key, with its default).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

CONF=$T/vfio-migd.conf

# ---- --check-config and --dump-config

printf '[daemon]\nworkers = 12\n[api]\nsocket_mode = 0640\n' >"$CONF"
expect_exit 0 "$VFIO_MIGD" --config "$CONF" --check-config
assert_contains "$OUT" "configuration OK ($CONF)" "--check-config: a good file is OK"
expect_exit 0 "$VFIO_MIGD" --config "$CONF" --dump-config --workers 3
assert_line_match "$OUT" "^workers = 3$" "--dump-config: the command line wins over the file"
assert_line_match "$OUT" "^socket_mode = 0640$" "--dump-config: the file's value"
assert_line_match "$OUT" "^max_precopy_ms = 30000$" "--dump-config: a default"

cat >"$CONF" <<'EOF'
# a file with a problem of every kind
[daemon]
worker = 4
workers = 0
log_level = loud

[deamon]
this line is not ini
[api]
socket_mode = 0666
socket = relative/path
[migration]
precopy = perhaps
bandwidth_limit = 2T
timeout_ms = 30s
EOF
expect_exit 1 "$VFIO_MIGD" --config "$CONF" --check-config
for want in \
    "$CONF:3: unknown key 'worker' in [daemon]; did you mean 'workers'?" \
    "$CONF:4: [daemon] workers must be a whole number from 1 to 1024, not '0'" \
    "$CONF:5: [daemon] log_level must be one of debug, info, notice, warning, error, not 'loud'" \
    "$CONF:8: expected 'key = value'" \
    "$CONF:10: [api] socket_mode must be an octal mode from 0600 to 0770" \
    "$CONF:11: [api] socket must be an absolute path of at most 107 bytes, not 'relative/path'" \
    "$CONF:13: [migration] precopy must be yes or no" \
    "$CONF:14: [migration] bandwidth_limit must be bytes per second from 0 to 1024G" \
    "$CONF:15: [migration] timeout_ms must be a whole number from 1 to 86400000, not '30s'" \
    "9 problems in the configuration"; do
    assert_contains "$ERR" "$want" "--check-config lists: ${want:0:60}"
done
# [deamon] has no key under it, so there is nothing there to report; with one there is.
printf '[deamon]\nworkers = 2\n' >"$CONF"
expect_exit 1 "$VFIO_MIGD" --config "$CONF" --check-config
assert_contains "$ERR" "$CONF:2: unknown section [deamon]; did you mean [daemon]?" \
    "--check-config: a misspelt section, with a guess"

# A bad option is a usage error (2), listed with the file's problems.
expect_exit 2 "$VFIO_MIGD" --config "$CONF" --check-config --precopy sometimes
assert_contains "$ERR" "vfio-migd: --precopy must be yes or no" "a bad option is named"
assert_contains "$ERR" "$CONF:2: unknown section" "... with the file's problems"

# ---- a bad file stops the daemon: nothing is created, the message gives the line

printf '[api]\nsocket = %s\n[daemon]\nworkers = 9000\n' "$T/never.sock" >"$CONF"
expect_exit 1 timeout 10 "$VFIO_MIGD" --config "$CONF"
assert_contains "$ERR" "$CONF:4: [daemon] workers must be a whole number from 1 to 1024, not '9000'" \
    "a bad file: the daemon says the line and the range"
assert_contains "$ERR" "not starting" "a bad file: the daemon says it does not start"
assert_file_absent "$T/never.sock" "a bad file: no socket"
assert_file_absent "$T/never.sock.lock" "a bad file: no lock file"

# A named file that does not exist is an error; so is a directory.
expect_exit 1 timeout 10 "$VFIO_MIGD" --config "$T/missing.conf" --socket "$T/never.sock"
assert_contains "$ERR" "$T/missing.conf: cannot open the configuration file: No such file" \
    "a missing --config file stops the daemon"
expect_exit 1 timeout 10 "$VFIO_MIGD" --config "$T" --socket "$T/never.sock"
assert_contains "$ERR" "cannot read the configuration file" "a directory as --config"
assert_file_absent "$T/never.sock" "no socket either way"

# A group that does not exist: refused with the line, before the socket exists.
printf '\n[api]\nsocket_group = no-such-group-vfio-migd\n' >"$CONF"
expect_exit 1 timeout 10 "$VFIO_MIGD" --config "$CONF" --socket "$T/never.sock"
assert_contains "$ERR" "$CONF:3: [api] socket_group names no group of this host" \
    "an unknown group: refused with its line"
assert_file_absent "$T/never.sock" "an unknown group: no socket"

# ---- settings from the file take effect

cat >"$CONF" <<EOF
[daemon]
workers = 40
log_level = warning
[api]
socket = $T/from-file.sock
socket_mode = 0600
[migration]
precopy = no
max_precopy_ms = 4321
downtime_target_ms = 77
bandwidth_limit = 512M
timeout_ms = 9000
EOF
"$VFIO_MIGD" --config "$CONF" >>"$T/daemon.log" 2>&1 &
FPID=$!
DAEMON_PIDS+=("$FPID")
up() { "$VFIO_MIGCTL" --socket "$T/from-file.sock" health >/dev/null 2>&1; }
check "the daemon serves on the file's socket" wait_until 10 up
assert_eq "600" "$(stat -c %a "$T/from-file.sock")" "the file's socket_mode"
assert_le 41 "$(find "/proc/$FPID/task" -mindepth 1 -maxdepth 1 | wc -l)" \
    "the file's workers: 40 worker threads run"
stop_daemon TERM "$FPID"
assert_eq "0" "$DAEMON_RC" "the daemon on the file's socket exits 0"
assert_not_contains "$(<"$T/daemon.log")" "serving on '$T/from-file.sock'" \
    "the file's log_level (warning): no info line"

# The command line wins: socket, mode, workers.
"$VFIO_MIGD" --config "$CONF" --socket "$T/cli.sock" --socket-mode 0660 --workers 2 \
    >>"$T/daemon.log" 2>&1 &
CPID=$!
DAEMON_PIDS+=("$CPID")
up_cli() { "$VFIO_MIGCTL" --socket "$T/cli.sock" health >/dev/null 2>&1; }
check "--socket wins over the file's socket" wait_until 10 up_cli
assert_file_absent "$T/from-file.sock" "... and the file's socket is not made"
assert_eq "660" "$(stat -c %a "$T/cli.sock")" "--socket-mode wins over the file's socket_mode"
assert_le "$(find "/proc/$CPID/task" -mindepth 1 -maxdepth 1 | wc -l)" 30 \
    "--workers 2 wins over the file's 40"
stop_daemon TERM "$CPID"
assert_eq "0" "$DAEMON_RC" "exit 0"

# The socket's group (root can give it any group; others only their own).
if [[ "$(id -u)" == 0 ]] && getent group nogroup >/dev/null; then
    printf '[api]\nsocket_group = nogroup\nsocket_mode = 0660\n' >"$T/group.conf"
    start_daemon --config "$T/group.conf"
    assert_eq "nogroup 660" "$(stat -c '%G %a' "$SOCK")" "socket_group: the socket's group and mode"
    stop_daemon
else
    printf '[api]\nsocket_group = %s\n' "$(id -g)" >"$T/group.conf"
    start_daemon --config "$T/group.conf"
    assert_eq "$(id -g)" "$(stat -c '%g' "$SOCK")" "socket_group (a number): the socket's group"
    stop_daemon
fi

# The default migration policy, seen in a real migration: S runs with the file's [migration].
start_named_daemon S --config "$CONF"
start_named_daemon D
mkgroup S vm 5 "size=1M" "size=1M"
mkgroup D vm - "size=1M" "size=1M"
expect_exit 0 njctl D incoming vm --listen 127.0.0.1:0
ADDR=$(jf "$OUT" address)
TOKEN=$(jf "$OUT" token)
# --precopy auto is the API's default: the host's "precopy = no" still holds.
expect_exit 0 timeout -k 2 20 "$VFIO_MIGCTL" --socket "$S_SOCK" --json --timeout 10 \
    migrate vm --to "$ADDR" --token "$TOKEN" --precopy auto --downtime-ms 55 --wait
MIG=$OUT
assert_eq "completed" "$(jf "$MIG" state)" "a migration with the file's policy completes"
assert_eq "off" "$(jf "$MIG" options.precopy)" "the file's precopy = no holds"
assert_eq "0" "$(jf "$MIG" devices.0.precopy_bytes)" "... no pre-copy bytes"
assert_eq "4321" "$(jf "$MIG" options.max_precopy_ms)" "the file's max_precopy_ms"
assert_eq "55" "$(jf "$MIG" options.downtime_target_ms)" "the request's downtime wins over the file's"
assert_eq "$((512 << 20))" "$(jf "$MIG" options.bandwidth_limit)" "the file's bandwidth_limit"
assert_eq "9000" "$(jf "$MIG" options.timeout_ms)" "the file's timeout_ms"

# ---- the shipped default file: every key, commented out, with its default

SHIPPED=$SRCDIR/packaging/vfio-migd.conf
WANT=$("$VFIO_MIGD" --config /dev/null --dump-config | sed -E 's/^([a-z_]+ = )/#\1/')
if [[ "$WANT" == "$(<"$SHIPPED")" ]]; then
    pass "packaging/vfio-migd.conf is the commented --dump-config of the defaults"
else
    fail "packaging/vfio-migd.conf is the commented --dump-config of the defaults" \
        "$(diff <(printf '%s\n' "$WANT") "$SHIPPED" | head -20)" "
regenerate: build/vfio-migd --config /dev/null --dump-config | sed -E 's/^([a-z_]+ = )/#\\1/' >packaging/vfio-migd.conf"
fi
sed -E 's/^#([a-z_]+ = )/\1/' "$SHIPPED" >"$T/uncommented.conf"
expect_exit 0 "$VFIO_MIGD" --config "$T/uncommented.conf" --check-config
expect_exit 0 "$VFIO_MIGD" --config "$T/uncommented.conf" --dump-config
assert_eq "$("$VFIO_MIGD" --config /dev/null --dump-config)" "$OUT" \
    "the shipped file, uncommented, is the defaults"
