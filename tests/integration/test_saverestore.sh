#!/usr/bin/env bash
# save and restore through the real daemon: a round trip moves a device's state into another
# (digests), the save file's format (docs/save-file.md), --resume/--stop/--force, relative
# paths, damaged/truncated/foreign files refused before the device is touched, a device that
# rejects the data, arc failures during a save, and no ".partial" file left behind.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SIZE=262144 # size=256K

# savefile FILE: the header decoded and checked, as JSON
savefile() {
    "$PY" -S - "$1" <<'EOF'
import json, struct, sys, zlib
data = open(sys.argv[1], "rb").read()
h = data[:64]
magic, version, hsize, flags, r1, nbytes, dcrc, r2, backend, r3, hcrc = struct.unpack("<8sIIIIQII16sII", h)
print(json.dumps({
    "file_size": len(data),
    "magic": magic.decode("latin-1"),
    "version": version,
    "header_size": hsize,
    "flags": flags,
    "data_bytes": nbytes,
    "data_crc_ok": zlib.crc32(data[64:]) & 0xffffffff == dcrc,
    "header_crc_ok": zlib.crc32(h[:60]) & 0xffffffff == hcrc,
    "reserved_zero": r1 == 0 and r2 == 0 and r3 == 0,
    "backend": backend.rstrip(b"\0").decode("latin-1"),
}))
EOF
}

# flip_byte FILE OFFSET: inverts one byte in place (printf + dd)
flip_byte() {
    local f=$1 off=$2 b
    b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' $((b ^ 0xff)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# set_backend FILE NAME: rewrites the header's back-end name with a valid header CRC
set_backend() {
    "$PY" -S - "$1" "$2" <<'EOF'
import struct, sys, zlib
f, name = sys.argv[1], sys.argv[2].encode()
data = bytearray(open(f, "rb").read())
data[40:56] = name.ljust(16, b"\0")
data[60:64] = struct.pack("<I", zlib.crc32(bytes(data[:60])) & 0xffffffff)
open(f, "wb").write(data)
EOF
}

no_partials() {
    local left
    left=$(find "$T" -name '*.partial')
    assert_eq "" "$left" "no .partial file anywhere ($1)"
}

start_daemon

expect_exit 0 jctl attach --sim size=256K --name A
expect_exit 0 jctl attach --sim size=256K --name B
expect_exit 0 jctl attach --sim size=256K --name C
assert_ne "$(dev_field A digest)" "$(dev_field B digest)" "before: A and B differ"

# ---- save

expect_exit 0 jctl save A "$T/a.sav"
assert_eq "stop" "$(jget "$OUT" state)" "save: the device ends in stop"
assert_eq "$SIZE" "$(jget "$OUT" bytes)" "save: bytes equals the size option"
assert_eq "$T/a.sav" "$(jget "$OUT" path)" "save: path"
assert_eq "running->running_p2p running_p2p->stop stop->stop_copy stop_copy->stop" \
    "$(jlist "$OUT" arcs)" "save: the arcs"
S=$(dev_json A)
DA=$(jget "$S" digest)
assert_eq "stop" "$(jget "$S" state)" "after save: show says stop"
assert_eq "false" "$(jget "$S" data_session_open)" "after save: no data session"
assert_eq "$SIZE" "$(jget "$S" stats.bytes_saved)" "after save: stats.bytes_saved"
assert_eq "1" "$(jget "$S" stats.transitions)" "after save: one transition"
assert_file_absent "$T/a.sav.partial" "after save: no a.sav.partial"

H=$(savefile "$T/a.sav")
assert_eq "$((SIZE + 64))" "$(jget "$H" file_size)" "file: 64-byte header + data"
assert_eq "VFMIGDSV" "$(jget "$H" magic)" "file: magic"
assert_eq "1 64" "$(jget "$H" version) $(jget "$H" header_size)" "file: version 1, header size 64"
assert_eq "7" "$(jget "$H" flags)" "file: the device's migration flags"
assert_eq "$SIZE" "$(jget "$H" data_bytes)" "file: data bytes"
assert_eq "true" "$(jget "$H" data_crc_ok)" "file: data CRC-32"
assert_eq "true" "$(jget "$H" header_crc_ok)" "file: header CRC-32"
assert_eq "true" "$(jget "$H" reserved_zero)" "file: reserved fields are 0"
assert_eq "sim" "$(jget "$H" backend)" "file: back-end sim"
assert_eq "600" "$(stat -c %a "$T/a.sav")" "file: mode 0600"

# ---- restore

expect_exit 0 jctl restore B "$T/a.sav"
assert_eq "running" "$(jget "$OUT" state)" "restore: the device ends in running"
assert_eq "$SIZE" "$(jget "$OUT" bytes)" "restore: bytes"
assert_eq "running->running_p2p running_p2p->stop stop->resuming resuming->stop stop->running_p2p running_p2p->running" \
    "$(jlist "$OUT" arcs)" "restore: the arcs"
S=$(dev_json B)
assert_eq "$DA" "$(jget "$S" digest)" "round trip: B's digest equals A's at save time"
assert_eq "$(dev_field A seed) $(dev_field A generation)" "$(jget "$S" seed) $(jget "$S" generation)" \
    "round trip: B took A's seed and generation"
assert_eq "running false" "$(jget "$S" state) $(jget "$S" data_session_open)" "after restore: running, no data session"
assert_eq "$SIZE" "$(jget "$S" stats.bytes_restored)" "after restore: stats.bytes_restored"

expect_exit 0 jctl restore C "$T/a.sav" --stop
assert_eq "stop" "$(jget "$OUT" state)" "restore --stop: ends in stop"
assert_eq "running->running_p2p running_p2p->stop stop->resuming resuming->stop" \
    "$(jlist "$OUT" arcs)" "restore --stop: the arcs"
assert_eq "stop $DA" "$(dev_field C state) $(dev_field C digest)" "restore --stop: stop, A's digest"
expect_exit 0 jctl state C running

# save --resume
expect_exit 0 jctl save A "$T/a2.sav" --resume
assert_eq "running" "$(jget "$OUT" state)" "save --resume: ends in running"
assert_eq "stop->stop_copy stop_copy->stop stop->running_p2p running_p2p->running" \
    "$(jlist "$OUT" arcs)" "save --resume from stop: the arcs"
assert_eq "running" "$(dev_field A state)" "save --resume: show says running"

# Text output.
expect_exit 0 ctl save A "$T/a3.sav"
assert_contains "$OUT" "saved A to '$T/a3.sav'" "save (text): what went where"
assert_contains "$OUT" "($SIZE bytes)" "save (text): bytes"
expect_exit 0 ctl restore C "$T/a3.sav"
assert_contains "$OUT" "restored C from '$T/a3.sav'" "restore (text): what came from where"
assert_eq "$(dev_field A digest)" "$(dev_field C digest)" "restore (text): C has A's state"

# ---- overwriting

MD5=$(md5sum <"$T/a.sav")
B0=$(snapshot)
expect_error ALREADY_EXISTS jctl save A "$T/a.sav"
assert_contains "$ERR" "$T/a.sav" "existing file: the message names it"
assert_contains "$ERR" "--force" "existing file: the message points at --force"
assert_eq "$MD5" "$(md5sum <"$T/a.sav")" "existing file: left alone"
assert_eq "$B0" "$(snapshot)" "existing file: the device is untouched"
expect_exit 0 jctl state A running
expect_exit 0 jctl save A "$T/a.sav" --force
assert_eq "$SIZE" "$(jget "$OUT" bytes)" "save --force: saved"
assert_ne "$MD5" "$(md5sum <"$T/a.sav")" "save --force: the file was replaced"
assert_eq "true" "$(jget "$(savefile "$T/a.sav")" data_crc_ok)" "save --force: the new file is valid"
DA=$(dev_field A digest)
no_partials "after --force"

# ---- relative paths: made absolute against the CLI's working directory

mkdir "$T/rel"
# shellcheck disable=SC2016 # expanded by the inner bash
expect_exit 0 bash -c 'cd "$1" && shift && "$@"' _ "$T/rel" \
    "$VFIO_MIGCTL" --socket "$SOCK" --json save A rel.sav --resume
assert_eq "$T/rel/rel.sav" "$(jget "$OUT" path)" "relative FILE: made absolute"
assert_file_exists "$T/rel/rel.sav" "relative FILE: written in the CLI's directory"
# shellcheck disable=SC2016 # expanded by the inner bash
expect_exit 0 bash -c 'cd "$1" && shift && "$@"' _ "$T/rel" \
    "$VFIO_MIGCTL" --socket "$SOCK" --json save A ../up.sav --resume
assert_file_exists "$T/up.sav" "relative FILE with ..: written where it points"
# shellcheck disable=SC2016 # expanded by the inner bash
expect_exit 0 bash -c 'cd "$1" && shift && "$@"' _ "$T/rel" \
    "$VFIO_MIGCTL" --socket "$SOCK" --json restore B rel.sav
assert_eq "$T/rel/rel.sav" "$(jget "$OUT" path)" "relative FILE for restore: made absolute"

# ---- bad files are refused before the device is touched

# refused_file CODE FILE NEEDLE WHAT: restore into B fails with CODE, NEEDLE in the message, and
# nothing about any device changes (last_error records the failure, checked separately)
refused_file() {
    local code=$1 file=$2 needle=$3 what=$4 before
    before=$(snapshot --ignore-last-error)
    expect_error "$code" jctl restore B "$file"
    assert_contains "$ERR" "$needle" "$what: the message says '$needle'"
    assert_eq "$before" "$(snapshot --ignore-last-error)" "$what: no device changed (state, digest, stats)"
}

expect_exit 0 jctl state B stop
DB=$(dev_field B digest)
TB=$(dev_field B stats.transitions)
cp "$T/a.sav" "$T/bad-data.sav"
flip_byte "$T/bad-data.sav" $((64 + 1000))
refused_file INVALID_ARGUMENT "$T/bad-data.sav" "damaged" "a flipped data byte"
assert_contains "$(dev_field B stats.last_error)" "damaged" "a flipped data byte: recorded in last_error"
cp "$T/a.sav" "$T/bad-last.sav"
flip_byte "$T/bad-last.sav" $((64 + SIZE - 1))
refused_file INVALID_ARGUMENT "$T/bad-last.sav" "damaged" "the last data byte flipped"
cp "$T/a.sav" "$T/bad-magic.sav"
flip_byte "$T/bad-magic.sav" 3
refused_file INVALID_ARGUMENT "$T/bad-magic.sav" "bad-magic.sav" "a flipped magic byte"
cp "$T/a.sav" "$T/bad-hcrc.sav"
flip_byte "$T/bad-hcrc.sav" 26
refused_file INVALID_ARGUMENT "$T/bad-hcrc.sav" "bad-hcrc.sav" "a flipped header byte"
cp "$T/a.sav" "$T/short.sav"
truncate -s $((64 + SIZE - 100)) "$T/short.sav"
refused_file INVALID_ARGUMENT "$T/short.sav" "truncated" "a truncated file"
cp "$T/a.sav" "$T/header-only.sav"
truncate -s 64 "$T/header-only.sav"
refused_file INVALID_ARGUMENT "$T/header-only.sav" "truncated" "a file with the header only"
head -c 10 "$T/a.sav" >"$T/tiny.sav"
refused_file INVALID_ARGUMENT "$T/tiny.sav" "too short" "a 10-byte file"
: >"$T/empty.sav"
refused_file INVALID_ARGUMENT "$T/empty.sav" "empty.sav" "an empty file"
cp "$T/a.sav" "$T/long.sav"
printf 'x' >>"$T/long.sav"
refused_file INVALID_ARGUMENT "$T/long.sav" "too long" "a file with a byte too many"
head -c 5000 /dev/urandom >"$T/random.sav"
refused_file INVALID_ARGUMENT "$T/random.sav" "random.sav" "a file of random bytes"
cp "$T/a.sav" "$T/kernel.sav"
set_backend "$T/kernel.sav" kernel
refused_file FAILED_PRECONDITION "$T/kernel.sav" "'kernel'" "a file from another back-end"
refused_file NOT_FOUND "$T/missing.sav" "missing.sav" "a missing file"
assert_eq "stop $DB" "$(dev_field B state) $(dev_field B digest)" "after every refused file: B still in stop, same digest"
assert_eq "$TB" "$(dev_field B stats.transitions)" "after every refused file: B's transitions unchanged"
expect_exit 0 jctl restore B "$T/a.sav"
assert_eq "$DA" "$(dev_field B digest)" "B restores a good file after the refusals"
no_partials "after refused restores"

# ---- a device that rejects the data: ABORTED, the device reset and usable

expect_exit 0 jctl attach --sim size=128K --name D
expect_error ABORTED jctl restore D "$T/a.sav"
assert_match "$ERR" "\(E[A-Z0-9]+\)" "wrong size: the message names the errno"
assert_contains "$ERR" "reset" "wrong size: the message says the device was reset"
S=$(dev_json D)
assert_eq "running false" "$(jget "$S" state) $(jget "$S" data_session_open)" "wrong size: device reset to running, no session"
assert_eq "1" "$(jget "$S" stats.resets)" "wrong size: stats.resets 1"
expect_exit 0 jctl save D "$T/d.sav"
assert_eq "131072" "$(jget "$OUT" bytes)" "after the rejected restore: D saves"
DD=$(dev_field D digest)
expect_exit 0 jctl attach --sim size=128K --name E
expect_exit 0 jctl restore E "$T/d.sav"
assert_eq "$DD" "$(dev_field E digest)" "D's state after the rejected restore moves into E"
expect_exit 0 jctl restore D "$T/d.sav"
assert_eq "running $DD" "$(dev_field D state) $(dev_field D digest)" "D takes a valid restore after the rejected one"

# ---- arc failures during a save: no file, device rolled back

expect_exit 0 jctl attach --sim "size=64K,fail_arc=stop->stop_copy" --name F
expect_error ABORTED jctl save F "$T/f.sav"
assert_contains "$ERR" "EIO" "save, stop->stop_copy fails: EIO"
assert_contains "$ERR" "stop->stop_copy" "save, stop->stop_copy fails: names the arc"
assert_contains "$ERR" "rolled back" "save, stop->stop_copy fails: says the device was rolled back"
assert_file_absent "$T/f.sav" "failed save: no file"
assert_file_absent "$T/f.sav.partial" "failed save: no partial file"
S=$(dev_json F)
assert_eq "running" "$(jget "$S" state)" "failed save: device rolled back to running"
assert_eq "1" "$(jget "$S" stats.failed_arcs)" "failed save: stats.failed_arcs 1"
assert_eq "0" "$(jget "$S" stats.bytes_saved)" "failed save: nothing counted as saved"
# --force on an existing file: a failed save leaves the old file alone.
cp "$T/a.sav" "$T/f.sav"
expect_error ABORTED jctl save F "$T/f.sav" --force
check "failed save --force: the existing file is untouched" cmp -s "$T/a.sav" "$T/f.sav"
rm -f "$T/f.sav"

# The arc after the data fails once (stop_copy -> stop): the rollback takes it again.
expect_exit 0 jctl attach --sim "size=64K,flags=stop_copy,fail_arc=stop_copy->stop,fail_nth=1" --name G
expect_error ABORTED jctl save G "$T/g.sav"
assert_contains "$ERR" "stop_copy->stop" "save, stop_copy->stop fails: names the arc"
assert_file_absent "$T/g.sav" "failed save after the data: no file"
assert_file_absent "$T/g.sav.partial" "failed save after the data: no partial file"
assert_eq "running" "$(dev_field G state)" "failed save after the data: device rolled back to running"
expect_exit 0 jctl save G "$T/g.sav"
assert_eq "65536" "$(jget "$OUT" bytes)" "G saves once the fault has fired"

# Arc failures during a restore. On the way in (stop -> resuming): ABORTED, the device is where
# the message says. At the validation (resuming -> stop): the device is reset.
expect_exit 0 jctl attach --sim "size=256K,fail_arc=stop->resuming" --name R1
expect_error ABORTED jctl restore R1 "$T/a.sav"
assert_contains "$ERR" "stop->resuming" "restore, stop->resuming fails: names the arc"
assert_contains "$ERR" "EIO" "restore, stop->resuming fails: EIO"
assert_contains "$ERR" "now in $(dev_field R1 state)" "restore, stop->resuming fails: the message says where the device is"
assert_eq "false" "$(dev_field R1 data_session_open)" "restore, stop->resuming fails: no data session"
expect_exit 0 jctl attach --sim "size=256K,fail_arc=resuming->stop" --name R2
expect_error ABORTED jctl restore R2 "$T/a.sav"
assert_contains "$ERR" "resuming->stop" "restore, the validation arc fails: names the arc"
assert_contains "$ERR" "reset" "restore, the validation arc fails: the device was reset"
S=$(dev_json R2)
assert_eq "running 1 false" "$(jget "$S" state) $(jget "$S" stats.resets) $(jget "$S" data_session_open)" \
    "restore, the validation arc fails: running after one reset, no data session"

# A directory that does not exist: NOT_FOUND, device untouched.
B0=$(snapshot --ignore-last-error)
expect_error NOT_FOUND jctl save A "$T/no/such/dir/x.sav"
assert_eq "$B0" "$(snapshot --ignore-last-error)" "save into a missing directory: no device changed"
no_partials "after failed saves"

# --force onto a directory: a refusal the caller can act on, not an internal error; the
# device is back where it was and the directory is left alone.
mkdir "$T/a-dir"
expect_exit 1 jctl save A "$T/a-dir" --force
CODE=$(jget "$OUT" code 2>&1 || true)
check "save --force onto a directory: not INTERNAL (got $CODE)" test "$CODE" != INTERNAL
check "save --force onto a directory: the message names it" test "${ERR#*a-dir}" != "$ERR"
assert_eq "running" "$(dev_field A state)" "save --force onto a directory: the device is running"
check "save --force onto a directory: still a directory" test -d "$T/a-dir"
no_partials "after a save onto a directory"

# ---- a save in flight: busy, and the file only appears under its name when complete

expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,latency_ms=600" --name slow
jctl save slow "$T/slow.sav" >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
is_saving() { [[ "$(dev_field slow busy_operation)" == save ]]; }
check "a slow save shows busy_operation save" wait_until 3 is_saving
assert_file_exists "$T/slow.sav.partial" "while saving: the data goes to slow.sav.partial"
assert_file_absent "$T/slow.sav" "while saving: no file under the final name"
expect_error FAILED_PRECONDITION jctl restore slow "$T/a.sav"
assert_contains "$ERR" "busy" "restore while saving: busy"
expect_error FAILED_PRECONDITION jctl save slow "$T/slow2.sav"
assert_file_absent "$T/slow2.sav.partial" "a refused second save creates no partial file"
BGRC=0
wait "$BG" || BGRC=$?
assert_eq "0" "$BGRC" "the slow save succeeds"
assert_eq "4096" "$(jget "$(<"$T/bg.out")" bytes 2>&1)" "the slow save: 4096 bytes"
assert_file_exists "$T/slow.sav" "after the slow save: the file has its name"
assert_file_absent "$T/slow.sav.partial" "after the slow save: no partial file"
expect_exit 0 jctl detach slow

# ---- more round trips

# From pre_copy: the saving data fd opened on running->pre_copy carries the whole state.
expect_exit 0 jctl attach --sim size=256K --name P
expect_exit 0 jctl attach --sim size=256K --name Q
expect_exit 0 jctl state P pre_copy
expect_exit 0 jctl save P "$T/p.sav"
assert_eq "pre_copy->pre_copy_p2p pre_copy_p2p->stop_copy stop_copy->stop" "$(jlist "$OUT" arcs)" \
    "save from pre_copy: the arcs"
check "save from pre_copy: at least the size in bytes" test "$(jget "$OUT" bytes)" -ge "$SIZE"
expect_exit 0 jctl restore Q "$T/p.sav"
assert_eq "$(dev_field P digest)" "$(dev_field Q digest)" "round trip from pre_copy: equal digests"

# flags=stop_copy, 4K: the shortest paths.
expect_exit 0 jctl attach --sim size=4K,flags=stop_copy --name s1
expect_exit 0 jctl attach --sim size=4K,flags=stop_copy --name s2
expect_exit 0 jctl save s1 "$T/s1.sav"
assert_eq "running->stop stop->stop_copy stop_copy->stop" "$(jlist "$OUT" arcs)" "flags=stop_copy save: the arcs"
assert_eq "4096" "$(jget "$OUT" bytes)" "flags=stop_copy save: 4096 bytes"
assert_eq "1" "$(jget "$(savefile "$T/s1.sav")" flags)" "flags=stop_copy save: flags 1 in the file"
expect_exit 0 jctl restore s2 "$T/s1.sav"
assert_eq "running->stop stop->resuming resuming->stop stop->running" "$(jlist "$OUT" arcs)" \
    "flags=stop_copy restore: the arcs"
assert_eq "$(dev_field s1 digest)" "$(dev_field s2 digest)" "flags=stop_copy round trip: equal digests"

# Into a device in stop_copy: the path passes through stop.
expect_exit 0 jctl state s2 stop_copy
expect_exit 0 jctl restore s2 "$T/s1.sav"
assert_eq "stop_copy->stop stop->resuming resuming->stop stop->running" "$(jlist "$OUT" arcs)" \
    "restore into a device in stop_copy: the arcs"

# Several MiB: more than one 1 MiB slice each way.
expect_exit 0 jctl attach --sim size=5M --name L1
expect_exit 0 jctl attach --sim size=5M --name L2
expect_exit 0 jctl save L1 "$T/l.sav"
assert_eq "5242880" "$(jget "$OUT" bytes)" "5 MiB save: bytes"
assert_eq "$((5242880 + 64))" "$(stat -c %s "$T/l.sav")" "5 MiB save: file size"
expect_exit 0 jctl restore L2 "$T/l.sav"
assert_eq "$(dev_field L1 digest)" "$(dev_field L2 digest)" "5 MiB round trip: equal digests"

# A file saved by A restores into a device attached later, after A is gone.
expect_exit 0 jctl detach A
expect_exit 0 jctl attach --sim size=256K --name A2
expect_exit 0 jctl restore A2 "$T/a.sav"
assert_eq "$DA" "$(dev_field A2 digest)" "a save outlives its device"

no_partials "at the end"
