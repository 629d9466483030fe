#!/usr/bin/env bash
# save and restore of a device through the real daemon: a device's save is a one-device
# stream file (docs/stream-format.md) taken by the same path as a group's. A round trip moves
# a device's state into another (digests), the file's format (decoded by tests/streamfile.py,
# not by the daemon), --resume/--stop/--force, relative paths, damaged/truncated/foreign files
# (and the retired single-device format) refused before the device is touched, a device that
# rejects the data, arc failures during a save, no ".partial" file left behind, the
# device/group decision made by the daemon (and refused when NAME is both), and a device's
# save being a job that `jobs` lists and `cancel` stops.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SIZE=262144 # size=256K
STREAMFILE="$PY -S $SRCDIR/tests/streamfile.py"

# stream FILE: the file decoded and checked by tests/streamfile.py, as JSON
stream() {
    $STREAMFILE decode "$1"
}

# flip_byte FILE OFFSET: inverts one byte in place (printf + dd)
flip_byte() {
    local f=$1 off=$2 b
    b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' $((b ^ 0xff)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# partials DIR NAME: the daemon's partial files of a save to DIR/NAME (files.h)
partials() {
    find "$1" -maxdepth 1 -name ".$2.vfio-migd-partial-*"
}

no_partials() {
    local left
    left=$(find "$T" -name '*vfio-migd-partial*' -o -name '*.partial')
    assert_eq "" "$left" "no partial file anywhere ($1)"
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
assert_eq "" "$(partials "$T" a.sav)" "after save: no partial file of a.sav"

# The file of one 256 KiB sim device: stream header 32, MANIFEST record 32 + 59 (group and
# device "A", flags, size, back-end "sim", a 30-byte descriptor), DEVICE_DATA record 32 +
# 262144 at 123, DEVICE_END 32 + 16 at 262299, STREAM_END 32 + 20 at 262347.
H=$(stream "$T/a.sav")
assert_eq "true" "$(jget "$H" valid)" "file: a valid stream (CRCs, sequences, totals) $(jget "$H" why 2>/dev/null)"
assert_eq "$((262347 + 52))" "$(jget "$H" file_size)" "file: stream header, manifest, one record, ends"
assert_eq "VFMIGSTR 1.1" "$(jget "$H" magic) $(jget "$H" version)" "file: magic, version 1.1 (the DEVICE_IRQS record)"
assert_eq "A 1" "$(jget "$H" group) $(jget "$H" 'devices.#')" "file: one device, the manifest named after it"
assert_eq "A 7 sim $SIZE $SIZE" \
    "$(jget "$H" devices.0.name devices.0.flags devices.0.backend devices.0.size devices.0.data_bytes | tr '\n' ' ' | sed 's/ $//')" \
    "file: the device's name, migration flags, back-end, size and data"
assert_eq "generic equal $SIZE equal" \
    "$(jget "$H" devices.0.descriptor.model.value devices.0.descriptor.model.rule devices.0.descriptor.size.value devices.0.descriptor.size.rule | tr '\n' ' ' | sed 's/ $//')" \
    "file: the sim's compatibility descriptor (model, size; rule equal)"
assert_eq "600" "$(stat -c %a "$T/a.sav")" "file: mode 0600"
assert_eq "save device A" "$(jget "$OUT" migration.role migration.subject migration.group | tr '\n' ' ' | sed 's/ $//')" \
    "save: the daemon says it saved a device (its job: role save, subject device)"

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
assert_eq "true" "$(jget "$(stream "$T/a.sav")" valid)" "save --force: the new file is valid"
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
flip_byte "$T/bad-data.sav" $((155 + 1000))
refused_file INVALID_ARGUMENT "$T/bad-data.sav" "damaged" "a flipped data byte"
assert_contains "$(dev_field B stats.last_error)" "damaged" "a flipped data byte: recorded in last_error"
assert_contains "$(dev_field B stats.last_error)" "payload CRC mismatch" "  ... saying what is damaged"
cp "$T/a.sav" "$T/bad-last.sav"
flip_byte "$T/bad-last.sav" $((155 + SIZE - 1))
refused_file INVALID_ARGUMENT "$T/bad-last.sav" "damaged" "the last data byte flipped"
cp "$T/a.sav" "$T/bad-magic.sav"
flip_byte "$T/bad-magic.sav" 3
refused_file INVALID_ARGUMENT "$T/bad-magic.sav" "bad-magic.sav" "a flipped magic byte"
assert_contains "$ERR" "not a vfio-migd stream" "  ... says it is not a stream"
cp "$T/a.sav" "$T/bad-hcrc.sav"
flip_byte "$T/bad-hcrc.sav" 26
refused_file INVALID_ARGUMENT "$T/bad-hcrc.sav" "bad-hcrc.sav" "a flipped stream header byte"
cp "$T/a.sav" "$T/bad-rhdr.sav"
flip_byte "$T/bad-rhdr.sav" $((262299 + 4))
refused_file INVALID_ARGUMENT "$T/bad-rhdr.sav" "header CRC mismatch" "a flipped byte in DEVICE_END's header"
cp "$T/a.sav" "$T/short.sav"
truncate -s $((155 + SIZE - 100)) "$T/short.sav"
refused_file INVALID_ARGUMENT "$T/short.sav" "truncated" "a truncated file"
cp "$T/a.sav" "$T/header-only.sav"
truncate -s 32 "$T/header-only.sav"
refused_file INVALID_ARGUMENT "$T/header-only.sav" "truncated" "a file with the stream header only"
cp "$T/a.sav" "$T/no-end.sav"
truncate -s 262347 "$T/no-end.sav"
refused_file INVALID_ARGUMENT "$T/no-end.sav" "ended before STREAM_END" "a file without STREAM_END"
head -c 10 "$T/a.sav" >"$T/tiny.sav"
refused_file INVALID_ARGUMENT "$T/tiny.sav" "truncated" "a 10-byte file"
: >"$T/empty.sav"
refused_file INVALID_ARGUMENT "$T/empty.sav" "empty.sav" "an empty file"
cp "$T/a.sav" "$T/long.sav"
printf 'x' >>"$T/long.sav"
refused_file INVALID_ARGUMENT "$T/long.sav" "after STREAM_END" "a file with a byte too many"
head -c 5000 /dev/urandom >"$T/random.sav"
refused_file INVALID_ARGUMENT "$T/random.sav" "random.sav" "a file of random bytes"
$STREAMFILE rewrite "$T/a.sav" "$T/kernel.sav" --backend kernel
refused_file FAILED_PRECONDITION "$T/kernel.sav" "'kernel'" "a file from another back-end"
assert_contains "$ERR" "device 'B': backend: source 'kernel', destination 'sim'" "  ... names the device, the field and both values"
$STREAMFILE retired "$T/old.sav"
refused_file FAILED_PRECONDITION "$T/old.sav" \
    "'$T/old.sav' was written by an older vfio-migd in the retired single-device format" \
    "a file in the retired single-device format"
expect_exit 0 jctl attach --sim size=128K --name W
W0=$(snapshot --ignore-last-error)
expect_error FAILED_PRECONDITION jctl restore W "$T/a.sav"
assert_contains "$ERR" "device 'W': size: source '$SIZE', destination '131072'" \
    "a file of a device of another size: refused, naming the field and both values"
assert_eq "$W0" "$(snapshot --ignore-last-error)" "  ... before any device was touched"
refused_file NOT_FOUND "$T/missing.sav" "missing.sav" "a missing file"
assert_eq "stop $DB" "$(dev_field B state) $(dev_field B digest)" "after every refused file: B still in stop, same digest"
assert_eq "$TB" "$(dev_field B stats.transitions)" "after every refused file: B's transitions unchanged"
expect_exit 0 jctl detach W
expect_exit 0 jctl restore B "$T/a.sav"
assert_eq "$DA" "$(dev_field B digest)" "B restores a good file after the refusals"
no_partials "after refused restores"

# ---- a device that rejects the data: ABORTED, the device reset and usable

expect_exit 0 jctl attach --sim size=128K --name D
# Valid records, CRCs and descriptor, but no sim image inside: only the device can tell.
$STREAMFILE craft "$T/garbage.sav" --garbage 131072 --backend sim --name D \
    --descriptor equal:model=generic,equal:size=131072
expect_error ABORTED jctl restore D "$T/garbage.sav"
assert_match "$ERR" "\(E[A-Z0-9]+\)" "garbage: the message names the errno"
assert_contains "$ERR" "rejected the data at byte 0" "garbage: the message says where the device refused it"
assert_contains "$ERR" "device reset, now in running" "garbage: the message says the device was reset"
S=$(dev_json D)
assert_eq "running false" "$(jget "$S" state) $(jget "$S" data_session_open)" "garbage: device reset to running, no session"
assert_eq "1" "$(jget "$S" stats.resets)" "garbage: stats.resets 1"
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
assert_eq "" "$(partials "$T" f.sav)" "failed save: no partial file"
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
assert_eq "" "$(partials "$T" g.sav)" "failed save after the data: no partial file"
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

# The save's stop arc is held until the checks below are done.
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' slow)" --name slow
jctl save slow "$T/slow.sav" >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
is_saving() { [[ "$(dev_field slow busy_operation)" == save ]]; }
wait_state "a slow save shows busy_operation save" is_saving
P=$(partials "$T" slow.sav)
assert_match "$P" "^$T/\\.slow\\.sav\\.vfio-migd-partial-[A-Za-z0-9]{6}$" \
    "while saving: the data goes to a partial file of the daemon's, next to slow.sav"
assert_eq "600 $(id -u)" "$(stat -c '%a %u' "$P")" "  ... mode 0600, owned by the daemon"
assert_file_absent "$T/slow.sav" "while saving: no file under the final name"
expect_error FAILED_PRECONDITION jctl restore slow "$T/a.sav"
assert_contains "$ERR" "busy" "restore while saving: busy"
expect_error FAILED_PRECONDITION jctl save slow "$T/slow2.sav"
assert_eq "" "$(partials "$T" slow2.sav)" "a refused second save creates no partial file"
refused_while_held slow "the save" "the slow save succeeds"
assert_eq "4096" "$(jget "$(<"$T/bg.out")" bytes 2>&1)" "the slow save: 4096 bytes"
assert_file_exists "$T/slow.sav" "after the slow save: the file has its name"
assert_eq "" "$(partials "$T" slow.sav)" "after the slow save: no partial file"
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
assert_eq "1" "$(jget "$(stream "$T/s1.sav")" devices.0.flags)" "flags=stop_copy save: flags 1 in the file"
expect_exit 0 jctl restore s2 "$T/s1.sav"
assert_eq "running->stop stop->resuming resuming->stop stop->running" "$(jlist "$OUT" arcs)" \
    "flags=stop_copy restore: the arcs"
assert_eq "$(dev_field s1 digest)" "$(dev_field s2 digest)" "flags=stop_copy round trip: equal digests"

# Into a device in stop_copy: the path passes through stop.
expect_exit 0 jctl state s2 stop_copy
expect_exit 0 jctl restore s2 "$T/s1.sav"
assert_eq "stop_copy->stop stop->resuming resuming->stop stop->running" "$(jlist "$OUT" arcs)" \
    "restore into a device in stop_copy: the arcs"

# Several MiB: many 512 KiB records each way.
expect_exit 0 jctl attach --sim size=5M --name L1
expect_exit 0 jctl attach --sim size=5M --name L2
expect_exit 0 jctl save L1 "$T/l.sav"
assert_eq "5242880" "$(jget "$OUT" bytes)" "5 MiB save: bytes"
assert_eq "true 5242880" "$(jget "$(stream "$T/l.sav")" valid devices.0.data_bytes | tr '\n' ' ' | sed 's/ $//')" \
    "5 MiB save: a valid file with every byte"
expect_exit 0 jctl restore L2 "$T/l.sav"
assert_eq "$(dev_field L1 digest)" "$(dev_field L2 digest)" "5 MiB round trip: equal digests"

# A file saved by A restores into a device attached later, after A is gone.
expect_exit 0 jctl detach A
expect_exit 0 jctl attach --sim size=256K --name A2
expect_exit 0 jctl restore A2 "$T/a.sav"
assert_eq "$DA" "$(dev_field A2 digest)" "a save outlives its device"

# ---- what NAME is: the daemon decides, and refuses to guess

expect_exit 0 jctl attach --sim size=64K --name twin
expect_exit 0 jctl attach --sim size=64K --name tw0
expect_exit 0 jctl group create twin tw0
B0=$(snapshot)
expect_error INVALID_ARGUMENT jctl save twin "$T/twin.sav"
assert_contains "$ERR" "'twin' is both a group and a device" "NAME both a group and a device: refused"
assert_contains "$ERR" "--group or --device" "  ... saying how to choose"
assert_eq "" "$(partials "$T" twin.sav)" "  ... no file"
assert_eq "$B0" "$(snapshot)" "  ... and nothing changed"
expect_error INVALID_ARGUMENT jctl restore twin "$T/a.sav"
assert_contains "$ERR" "--group or --device" "restore of such a NAME: refused the same way"
expect_exit 0 jctl save twin "$T/twin-dev.sav" --device --resume
assert_eq "twin device" "$(jget "$OUT" id migration.subject | tr '\n' ' ' | sed 's/ $//')" \
    "save --device: the device (id, subject device)"
assert_eq "twin" "$(jget "$(stream "$T/twin-dev.sav")" devices.0.name)" "  ... its file holds device twin"
expect_exit 0 jctl save twin "$T/twin-grp.sav" --group --resume
assert_eq "twin group" "$(jget "$OUT" group migration.subject | tr '\n' ' ' | sed 's/ $//')" \
    "save --group: the group (group, subject group)"
assert_eq "tw0" "$(jget "$(stream "$T/twin-grp.sav")" devices.0.name)" "  ... its file holds the group's device tw0"
expect_exit 0 jctl save tw0 "$T/tw0.sav" --resume
assert_eq "tw0 device" "$(jget "$OUT" id migration.subject | tr '\n' ' ' | sed 's/ $//')" \
    "a device of a group saved on its own: no group of that name, so the device"
expect_exit 0 ctl save twin "$T/twin-dev2.sav" --device --resume
assert_contains "$OUT" "saved twin to '$T/twin-dev2.sav'" "save --device (text): the device's line"
expect_exit 0 jctl attach --sim size=64K --name p0
expect_exit 0 jctl attach --sim size=64K --name p1
expect_exit 0 jctl group create pair p0 p1
expect_exit 0 jctl save pair "$T/pair.sav" --resume
assert_eq "pair group 2" "$(jget "$OUT" group migration.subject 'migration.devices.#' | tr '\n' ' ' | sed 's/ $//')" \
    "save of a group (NAME only a group): the group's two devices"
B0=$(snapshot --ignore-last-error)
expect_error FAILED_PRECONDITION jctl restore tw0 "$T/pair.sav"
assert_contains "$ERR" "the source has 2 devices, device 'tw0' here has 1" \
    "a two-device file into a device: refused, saying why"
assert_eq "$B0" "$(snapshot --ignore-last-error)" "  ... before anything moved"

# ---- a device's save is a job: jobs lists it, cancel stops it and takes the device back

# The stop arc is held: the cancel lands while the device is still on its way to stop_copy
# (the job says so: phase connecting), before any data moved.
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' slow2)" --name slow2
jctl save slow2 "$T/slow2.sav" >"$T/bg2.out" 2>"$T/bg2.err" &
BG=$!
slow2_job() {
    jctl jobs | "$PY" -S -c '
import json, sys
j = [m for m in json.load(sys.stdin) if m["group"] == "slow2" and m["state"] == "active"]
print("%s %s %s %s" % (j[0]["id"], j[0]["role"], j[0]["subject"], j[0]["phase"]) if j else "")'
}
has_job() { [[ -n "$(slow2_job)" ]]; }
wait_state "a device's save in flight is listed by jobs" has_job
read -r JID JROLE JSUBJECT JPHASE <<<"$(slow2_job)"
assert_eq "save device connecting" "$JROLE $JSUBJECT $JPHASE" "  ... as a save of a device, stopping it"
expect_exit 0 jctl cancel "$JID"
release slow2
wait_bg
assert_eq "1 CANCELLED" "$BGRC $(jget "$(<"$T/bg2.out")" code 2>&1)" "the cancelled save answers CANCELLED"
assert_eq "running false" "$(dev_field slow2 state) $(dev_field slow2 busy)" \
    "the cancelled save: the device is back in running, idle"
assert_file_absent "$T/slow2.sav" "the cancelled save: no file"
assert_eq "cancelled" "$(jget "$(jctl job "$JID")" state)" "the job ended cancelled"

no_partials "at the end"
