#!/usr/bin/env bash
# Bad input changes nothing (issue 10 item 3): everything a stream says about a device — the
# device count and names, the migration flags, the back-end, every field of the compatibility
# descriptor (another value, a field only one side has, none at all, malformed bytes) and, for
# a group, the group's name — is checked against the target before any device is touched, and
# the refusal names the mismatch in plain words. Every field, on every path that takes a
# stream: the restore of a device, the restore of a group, and the destination of a live
# migration (its HELLO built from the same files, as docs/migration.md lays it out). After
# each refusal the targets are as they were: state, digest, statistics, last transition.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

STREAMFILE="$PY -S $SRCDIR/tests/streamfile.py"
SIZE=262144
SIM_DESC="equal:model=generic,equal:size=$SIZE"

# variant NAME ARGS...: $T/NAME.sav, the base file ($BASE) rewritten by streamfile.py
variant() {
    local name=$1
    shift
    $STREAMFILE rewrite "$BASE" "$T/$name.sav" "$@"
}

# The cases every path is tested with: NAME|REWRITE ARGS|CODE|WHAT THE MESSAGE SAYS. Device
# 1 is the one changed, or device 0 for a one-device file (DEV is replaced).
CASES=(
    "flags|--device DEV.flags=3|FAILED_PRECONDITION|migration_flags: source 'stop_copy+p2p', destination 'stop_copy+p2p+pre_copy'"
    "noflags|--device DEV.flags=0|FAILED_PRECONDITION|migration_flags: source 'none', destination 'stop_copy+p2p+pre_copy'"
    "backend|--device DEV.backend=kernel|FAILED_PRECONDITION|backend: source 'kernel', destination 'sim'"
    "model|--device DEV.descriptor=equal:model=mlx5,equal:size=$SIZE|FAILED_PRECONDITION|model: source 'mlx5', destination 'generic'"
    "size|--device DEV.descriptor=equal:model=generic,equal:size=131072|FAILED_PRECONDITION|size: source '131072', destination '262144'"
    "extra|--device DEV.descriptor=$SIM_DESC,equal:fw=22.1|FAILED_PRECONDITION|fw: source '22.1', destination '(absent)'"
    "missing|--device DEV.descriptor=equal:model=generic|FAILED_PRECONDITION|size: source '(absent)', destination '262144'"
    "nodesc|--device DEV.descriptor=|FAILED_PRECONDITION|model: source '(absent)', destination 'generic'"
    "atleast|--device DEV.descriptor=equal:model=generic,at_least:size=262145|FAILED_PRECONDITION|size: source '262145', destination '262144'"
    "malformed|--device DEV.descriptor=hex:0201|INVALID_ARGUMENT|malformed compatibility descriptor"
)

# each_case DEV FN: FN NAME CODE NEEDLE for every case, its file made with DEV
each_case() {
    local dev=$1 fn=$2 c name args code needle
    for c in "${CASES[@]}"; do
        IFS='|' read -r name args code needle <<<"$c"
        # shellcheck disable=SC2086 # the rewrite's arguments are words
        variant "$name" ${args//DEV/$dev}
        "$fn" "$name" "$code" "$needle"
    done
}

start_daemon

# ==== a device's restore

expect_exit 0 jctl attach --sim size=256K --name A
expect_exit 0 jctl attach --sim size=256K --name B
expect_exit 0 jctl save A "$T/a.sav" --resume
BASE=$T/a.sav
expect_exit 0 jctl state B stop # a target not in running: it must stay where it is, too
DB=$(dev_field B digest)

# refused TARGET WHAT NAME CODE NEEDLE: restoring $T/NAME.sav into TARGET fails with CODE and
# NEEDLE in the message, and no device changed
refused() {
    local target=$1 what=$2 name=$3 code=$4 needle=$5 before
    before=$(snapshot --ignore-last-error)
    expect_error "$code" jctl restore "$target" "$T/$name.sav"
    assert_contains "$ERR" "$needle" "$what, $name: the message says '$needle'"
    assert_eq "$before" "$(snapshot --ignore-last-error)" \
        "$what, $name: no device changed (state, digest, statistics)"
}
device_refused() { refused B "device restore" "$@"; }
each_case 0 device_refused
assert_contains "$(dev_field B stats.last_error)" "malformed" "device restore: the refusal is B's last error"

# A two-device file: the device twice, under two names.
"$PY" -S - "$T/a.sav" "$T/two.sav" <<'PYEOF'
import os, sys
sys.path.insert(0, os.path.join(os.environ["SRCDIR"], "tests"))
import streamfile as sf
_, group, devs = sf.parse(open(sys.argv[1], "rb").read())
twin = dict(devs[0], name="A2")
open(sys.argv[2], "wb").write(sf.build(group, [devs[0], twin]))
PYEOF
device_refused two FAILED_PRECONDITION "the source has 2 devices, device 'B' here has 1"
assert_eq "stop $DB" "$(dev_field B state) $(dev_field B digest)" "device restore: after every refusal B is in stop with its own state"
expect_exit 0 jctl restore B "$T/a.sav" --stop
assert_eq "stop $(dev_field A digest)" "$(dev_field B state) $(dev_field B digest)" \
    "device restore: the unchanged file restores into B"

# ==== a group's restore

expect_exit 0 jctl attach --sim size=256K --name g_0
expect_exit 0 jctl attach --sim size=256K --name g_1
expect_exit 0 jctl group create G g_0 g_1
expect_exit 0 jctl save G "$T/g.sav" --resume
BASE=$T/g.sav
expect_exit 0 jctl state g_1 running_p2p --force # targets in two states: both must stay

group_refused() { refused G "group restore" "$@"; }
each_case 1 group_refused
variant gname --group H
group_refused gname FAILED_PRECONDITION "holds group 'H', not 'G'"
variant dname --device 1.name=g_9
group_refused dname FAILED_PRECONDITION "the source's device 'g_9' has no device of that name in group 'G' here"
assert_contains "$ERR" "device 'g_1' of group 'G' here has no device of that name" \
    "group restore, dname: ... and the group's device without a partner"
variant drop --drop 1
group_refused drop FAILED_PRECONDITION "the source has 1 devices, group 'G' here has 2"
variant both --device 0.flags=1 --device 1.backend=kernel
group_refused both FAILED_PRECONDITION "device 'g_0': migration_flags: source 'stop_copy', destination 'stop_copy+p2p+pre_copy'"
assert_contains "$ERR" "device 'g_1': backend: source 'kernel', destination 'sim'" \
    "group restore, both: every mismatch is listed"
assert_eq "running running_p2p" "$(dev_field g_0 state) $(dev_field g_1 state)" \
    "group restore: after every refusal the devices are where they were"

# ==== the destination of a live migration: the HELLO carries the file's header and manifest

# In clear (--tls off): hello.py speaks the protocol itself, as a clear source would.
start_named_daemon D --tls off
for d in g_0 g_1; do
    expect_exit 0 njctl D attach --sim size=256K --name "$d"
done
expect_exit 0 njctl D group create G g_0 g_1
expect_exit 0 njctl D state g_0 stop --force

# hello ADDR TOKEN FILE: sends FILE's stream header and MANIFEST as a source's HELLO and
# prints the answer: "<type> <text>"
cat >"$T/hello.py" <<'PYEOF'
import socket, struct, sys
addr, token, path = sys.argv[1:4]
data = open(path, "rb").read()
length = struct.unpack_from("<I", data, 32 + 12)[0]
payload = token.encode() + data[:32] + data[32:64 + length]
host, port = addr.rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=20)
s.sendall(struct.pack("<II", 1, len(payload)) + payload)
def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit("the destination closed the connection after %d bytes" % len(b))
        b += c
    return b
t, n = struct.unpack("<II", recv(8))
print(t, recv(n).decode())
PYEOF

dest_refused() {
    local name=$1 code=$2 needle=$3 before id addr token
    before=$(jnorm "$(njctl D devices)")
    expect_exit 0 njctl D incoming G --listen 127.0.0.1:0
    id=$(jf "$OUT" id)
    addr=$(jf "$OUT" address)
    token=$(jf "$OUT" token)
    expect_exit 0 "$PY" -S "$T/hello.py" "$addr" "$token" "$T/$name.sav"
    assert_match "$OUT" "^3 " "destination, $name: the answer is REFUSE (3)"
    assert_contains "$OUT" "$needle" "destination, $name: the refusal says '$needle'"
    wait_job D "$id" 10 over || true
    assert_eq "failed" "$(jf "$JOB" state)" "destination, $name: the job failed"
    assert_contains "$(jf "$JOB" error)" "$needle" "destination, $name: the job's error says it too"
    assert_eq "$before" "$(jnorm "$(njctl D devices)")" \
        "destination, $name: no device changed (state, digest, statistics)"
}
# INVALID_ARGUMENT or FAILED_PRECONDITION: the REFUSE text is what the source sees
each_case 1 dest_refused
dest_refused dname - "the source's device 'g_9' has no device of that name in group 'G' here"
dest_refused drop - "the source has 1 devices, group 'G' here has 2"
dest_refused both - "device 'g_1': backend: source 'kernel', destination 'sim'"
assert_eq "stop running" "$(dev_prop D g_0 state) $(dev_prop D g_1 state)" \
    "destination: after every refusal its devices are where they were"
