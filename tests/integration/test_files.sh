#!/usr/bin/env bash
# The daemon's files against a hostile file system (issue 11 items 1 and 2; daemon/files.h):
#  - saves, restores and unix listening sockets only in the allowed directories ([files]
#    allowed_dirs and the state directory), never through a symbolic link, never over anything but a
#    regular file; the saved file is created by the daemon (mode 0600, its owner), under a
#    name of its own, whatever was planted at the old "FILE.partial" name;
#  - a restore reads the one file it opened and checked: a file renamed over it while the
#    devices move is not what is loaded, a file rewritten in place is refused, a FIFO is
#    refused at once and blocks nothing;
#  - the lock file next to the API socket is never a link or a FIFO;
#  - a unix listening socket never replaces a file, and only the socket the daemon bound is
#    removed;
#  - the partial files of a daemon killed mid-save are removed when a daemon starts.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

STREAMFILE="$PY -S $SRCDIR/tests/streamfile.py"
OUTSIDE=$T/outside # not an allowed directory: the daemons here allow $T/in only
IN=$T/in
mkdir -p "$OUTSIDE" "$IN/sub"
ALLOW_DIR=$IN

partials() { find "$1" -name '*vfio-migd-partial*'; }

start_daemon

expect_exit 0 jctl attach --sim size=64K --name A
expect_exit 0 jctl attach --sim size=64K --name B
expect_exit 0 jctl save A "$IN/a.sav" --resume
DA=$(dev_field A digest)

# ==== outside the allowed directories: refused, nothing written, no device moved

B0=$(snapshot --ignore-last-error)
expect_error PERMISSION_DENIED jctl save A "$OUTSIDE/x.sav"
assert_contains "$ERR" "'$OUTSIDE/x.sav' is outside the directories where vfio-migd reads and writes files ('/var/lib/vfio-migd', '$IN')" \
    "a save outside: the message names the path and the allowed directories"
assert_contains "$ERR" "allowed_dirs" "  ... and the way to allow one"
expect_error PERMISSION_DENIED jctl save A "$IN/../outside/y.sav"
assert_contains "$ERR" "'$OUTSIDE/y.sav' is outside" "a save through '..': the path is taken as text first"
cp "$IN/a.sav" "$OUTSIDE/a.sav"
expect_error PERMISSION_DENIED jctl restore B "$OUTSIDE/a.sav"
assert_eq "" "$(ls -A "$OUTSIDE" | grep -v '^a.sav$' || true)" "nothing was written outside"
assert_eq "$B0" "$(snapshot --ignore-last-error)" "no device moved for a refused path"
expect_exit 0 jctl save A "$IN/sub/../b.sav" --resume
assert_eq "$IN/b.sav" "$(jget "$OUT" path)" "a save through '..' that stays inside: allowed, its path canonical"

# ==== symbolic links

echo "precious" >"$OUTSIDE/victim"
ln -s "$OUTSIDE/victim" "$IN/link.sav"
expect_error ALREADY_EXISTS jctl save A "$IN/link.sav"
expect_error PERMISSION_DENIED jctl save A "$IN/link.sav" --force
assert_contains "$ERR" "'$IN/link.sav' is a symbolic link" "save --force over a link: refused, saying why"
assert_contains "$ERR" "rm '$IN/link.sav'" "  ... and what to do"
assert_eq "precious" "$(cat "$OUTSIDE/victim")" "  ... the link's target is untouched"
check "  ... the link is still a link" test -L "$IN/link.sav"
ln -s "$OUTSIDE" "$IN/linkdir"
expect_error PERMISSION_DENIED jctl save A "$IN/linkdir/x.sav"
assert_contains "$ERR" "goes through a symbolic link" "a save through a linked directory: refused"
assert_file_absent "$OUTSIDE/x.sav" "  ... nothing written where it points"
B0=$(snapshot --ignore-last-error)
ln -s "$IN/a.sav" "$IN/alias.sav"
expect_error PERMISSION_DENIED jctl restore B "$IN/alias.sav"
assert_contains "$ERR" "is a symbolic link" "a restore from a link: refused"
expect_error PERMISSION_DENIED jctl restore B "$IN/linkdir/a.sav"
assert_eq "$B0" "$(snapshot --ignore-last-error)" "no device moved for a link"

# The old attack: a user plants FILE.partial, a link to a file of root's, or a file of theirs,
# world-writable. The daemon neither writes through the one nor keeps the other.
ln -s "$OUTSIDE/victim" "$IN/vm.sav.partial"
expect_exit 0 jctl save A "$IN/vm.sav" --resume
assert_eq "precious" "$(cat "$OUTSIDE/victim")" "a planted FILE.partial link: its target is untouched"
check "  ... the planted link is left as it was" test -L "$IN/vm.sav.partial"
assert_eq "true" "$(jget "$($STREAMFILE decode "$IN/vm.sav")" valid)" "  ... and the save is whole"
(umask 0 && echo planted >"$IN/vm2.sav.partial" && chmod 0666 "$IN/vm2.sav.partial")
expect_exit 0 jctl save A "$IN/vm2.sav" --resume
assert_eq "600 $(id -u)" "$(stat -c '%a %u' "$IN/vm2.sav")" "a planted world-writable FILE.partial: the save is the daemon's, 0600"
assert_eq "planted" "$(cat "$IN/vm2.sav.partial")" "  ... and the planted file is not reused"
assert_eq "" "$(partials "$IN")" "no partial file of the daemon's left"

# ==== one open: what is checked is what is loaded

# R moves slowly (two arcs of 1.5 s from running_p2p to resuming): once it is in running_p2p
# the file was checked, and the load has not begun.
expect_exit 0 jctl attach --sim size=64K,latency_ms=1500 --name R
expect_exit 0 jctl attach --sim size=64K --name O
expect_exit 0 jctl save O "$IN/other.sav" --resume
# Another device's state, and a back-end the check refuses: were it loaded, R would say so.
$STREAMFILE rewrite "$IN/other.sav" "$IN/swap.sav" --backend kernel
cp "$IN/a.sav" "$IN/r.sav"
jctl restore R "$IN/r.sav" >"$T/r.out" 2>"$T/r.err" &
BG=$!
in_p2p() { [[ "$(dev_field R state)" == running_p2p ]]; }
check "the restore has checked the file and moves R" wait_until 20 in_p2p
mv "$IN/swap.sav" "$IN/r.sav" # renamed over the path while the devices move
wait_bg
assert_eq "0" "$BGRC" "a file renamed over the path meanwhile: the restore goes on $(cat "$T/r.err")"
assert_eq "running $DA" "$(dev_field R state) $(dev_field R digest)" \
    "  ... R holds the state of the file that was checked (A's), not the swapped one"

# Rewritten in place (the same inode), at any moment until the devices have taken it all:
# refused, and the device (touched by then) reset. R2 also takes its data slowly (4 s).
expect_exit 0 jctl attach --sim size=64K,latency_ms=1500,data_rate=16K --name R2
cp "$IN/a.sav" "$IN/r2.sav"
$STREAMFILE rewrite "$IN/other.sav" "$IN/inplace.sav" --backend kernel
jctl restore R2 "$IN/r2.sav" >"$T/r.out" 2>"$T/r.err" &
BG=$!
r2_in_p2p() { [[ "$(dev_field R2 state)" == running_p2p ]]; }
check "the second restore has checked the file and moves R2" wait_until 20 r2_in_p2p
cat "$IN/inplace.sav" >"$IN/r2.sav"
wait_bg
assert_eq "1 INVALID_ARGUMENT" "$BGRC $(jget "$(<"$T/r.out")" code 2>&1)" \
    "a file rewritten in place meanwhile: refused (the file is at fault)"
assert_contains "$(<"$T/r.err")" "changed while it was being restored" "  ... saying the file changed"
assert_contains "$(<"$T/r.err")" "device reset" "  ... and that R2 was reset"
assert_eq "running" "$(dev_field R2 state)" "  ... R2 is running"
assert_ne "$(dev_field O digest)" "$(dev_field R2 digest)" "  ... and does not hold the unchecked state"

# A FIFO: refused at once, and nothing waits on it (no writer ever comes).
mkfifo "$IN/fifo.sav"
B0=$(snapshot --ignore-last-error)
expect_error INVALID_ARGUMENT jctl restore B "$IN/fifo.sav"
assert_contains "$ERR" "not a regular file" "a FIFO: refused as not a regular file"
assert_eq "$B0" "$(snapshot --ignore-last-error)" "  ... no device moved"
ln -s "$IN/fifo.sav" "$IN/fifo-link.sav"
expect_error PERMISSION_DENIED jctl restore B "$IN/fifo-link.sav"
expect_exit 0 jctl restore B "$IN/a.sav"
assert_eq "$DA" "$(dev_field B digest)" "after the FIFO: B restores at once (nothing blocked)"

# ==== unix listening sockets

expect_exit 0 jctl group create ug B
echo "keep me" >"$IN/taken.sock"
expect_error ALREADY_EXISTS jctl incoming ug --listen "unix:$IN/taken.sock"
assert_contains "$ERR" "removes nothing it did not create" "listen on an existing file: refused"
assert_eq "keep me" "$(cat "$IN/taken.sock")" "  ... the file is still there"
expect_error PERMISSION_DENIED jctl incoming ug --listen "unix:$OUTSIDE/m.sock"
assert_file_absent "$OUTSIDE/m.sock" "listen outside: refused, no socket made"
expect_error PERMISSION_DENIED jctl incoming ug --listen "unix:$IN/linkdir/m.sock"
expect_exit 0 jctl incoming ug --listen "unix:$IN/m.sock"
ID=$(jget "$OUT" id)
check "listen in an allowed directory: the socket is there" test -S "$IN/m.sock"
expect_exit 0 jctl cancel "$ID"
gone() { [[ ! -e "$IN/m.sock" ]]; }
check "  ... and removed when the migration ends" wait_until 10 gone
expect_exit 0 jctl incoming ug --listen "unix:$IN/m2.sock"
ID=$(jget "$OUT" id)
rm "$IN/m2.sock"
echo "someone else's" >"$IN/m2.sock"
expect_exit 0 jctl cancel "$ID"
ended() { [[ "$(jget "$(jctl job "$ID")" state)" != active ]]; }
check "the second incoming migration ends" wait_until 10 ended
assert_eq "someone else's" "$(cat "$IN/m2.sock" 2>&1)" "a file put where the socket was is not removed"

# ==== the lock file next to the API socket

mkdir "$T/l1" "$T/l2"
echo "precious" >"$OUTSIDE/lockvictim"
ln -s "$OUTSIDE/lockvictim" "$T/l1/api.sock.lock"
expect_exit 1 timeout -k 1 20 "$VFIO_MIGD" --socket "$T/l1/api.sock" --allowed-dirs "$IN"
assert_contains "$ERR" "is a symbolic link" "a link at SOCKET.lock: the daemon refuses to start"
assert_eq "precious" "$(cat "$OUTSIDE/lockvictim")" "  ... and the file it points to is untouched"
mkfifo "$T/l2/api.sock.lock"
expect_exit 1 timeout -k 1 20 "$VFIO_MIGD" --socket "$T/l2/api.sock" --allowed-dirs "$IN"
assert_contains "$ERR" "not a regular file" "a FIFO at SOCKET.lock: refused at once"

# ==== stale partial files: removed when a daemon starts, unless a daemon holds them

STALE1="$IN/.old.sav.vfio-migd-partial-Ab12Cd"
STALE2="$IN/sub/.old.sav.vfio-migd-partial-Ef34Gh"
NOT_OURS="$IN/.old.sav.vfio-migd-partial-x" # not the daemon's pattern
echo stale >"$STALE1"
echo stale >"$STALE2"
echo mine >"$NOT_OURS"
ln -s "$OUTSIDE/victim" "$IN/.lnk.sav.vfio-migd-partial-Zz99Zz"
echo outside >"$OUTSIDE/.old.sav.vfio-migd-partial-Ab12Cd"
start_named_daemon S2
assert_file_absent "$STALE1" "a stale partial file is removed at start"
assert_file_absent "$STALE2" "  ... in a subdirectory too"
assert_file_exists "$NOT_OURS" "  ... a name that is not the daemon's stays"
check "  ... a link stays" test -L "$IN/.lnk.sav.vfio-migd-partial-Zz99Zz"
assert_file_exists "$OUTSIDE/.old.sav.vfio-migd-partial-Ab12Cd" "  ... nothing outside the allowed directories is touched"
assert_contains "$(named_log S2)" "Removed '$STALE1'" "  ... and the daemon says what it removed"
