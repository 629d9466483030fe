#!/usr/bin/env bash
# The VMM socket with real eventfds, through the example client (issue 14): delivery with no
# daemon hop; mask, three triggers, unmask -> exactly one interrupt; the client disconnecting
# and reconnecting loses nothing; a uid not on the allow-list is refused by SO_PEERCRED; the
# daemon's fds are the same before and after a client's life. Every wait is on an event: the
# client's stderr "ready" line, its {"vector":V} lines, or the daemon's state.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_daemon
VMM_SOCK=$T/vmm.sock
check "the VMM socket is beside the API socket" test -S "$VMM_SOCK"
expect_exit 0 jctl attach --sim "size=4K,msix=8,msi=1,intx=1" --name nic

# shellcheck source=vmm_client.sh
source "$(dirname "$0")/vmm_client.sh"
pending() { [[ "$(jget "$(jctl irqs nic)" "vectors.$1.pending")" == "$2" ]]; }
fds() { find "/proc/$DAEMON_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# ==== take, enable, wire: the holder is named
client_start nic 4
expect_exit 0 ctl irqs nic
assert_contains "$OUT" "held by: pid $CLIENT_PID" "irqs names the VMM's pid"
expect_exit 0 ctl show nic
assert_line_match "$OUT" "^held by: +VMM pid $CLIENT_PID \\(vmm-client\\)\$" "show names the holder: pid and name"
expect_exit 0 jctl show nic
assert_eq "$CLIENT_PID vmm-client" "$(jget "$OUT" holder_pid) $(jget "$OUT" holder_comm)" \
    "show --json: holder_pid and holder_comm"
expect_exit 0 jctl irqs nic
assert_eq "msix 4" "$(jget "$OUT" index count | tr '\n' ' ' | sed 's/ $//')" "the client enabled msix 4"
FDS_READY=$(fds)

# ==== delivery: the kernel's loopback reaches the client's eventfd, with no daemon hop
wakeups() { jget "$(jctl irqs nic)" "$1"; }
assert_eq 0 "$(wakeups latch_wakeups)" "no interrupt so far: the daemon never woke for one"
expect_exit 0 jctl irq trigger nic 2
wait_state "vector 2 delivered" got_at_least 2 1
assert_eq 1 "$(got 2)" "  ... exactly once"
assert_eq "0 0" "$(wakeups latch_wakeups) $(wakeups latch_wakeups_total)" \
    "  ... signalled by the sim (the kernel) directly: no latch wake-up in the daemon"

# ==== mask, three triggers, unmask -> exactly one
client_do "mask 1"
for i in 1 2 3; do
    expect_exit 0 jctl irq trigger nic 1
done
wait_state "masked: the interrupts wait as pending" pending 1 true
check "a masked vector's interrupt wakes the daemon's latch" test "$(wakeups latch_wakeups)" -ge 1
assert_eq 0 "$(got 1)" "  ... nothing reached the client"
client_do "unmask 1"
wait_state "unmasked: vector 1 delivered" got_at_least 1 1
expect_exit 0 jctl irq trigger nic 0
wait_state "a later interrupt on vector 0 arrived (ordering barrier)" got_at_least 0 1
assert_eq 1 "$(got 1)" "three triggers while masked: exactly one interrupt"

# ==== the client goes away: nothing is lost
client_stop
wait_state "the device is given back" test "$(jget "$(jctl irqs nic)" vectors.3.in_use)" == true
expect_exit 0 ctl irqs nic
assert_contains "$OUT" "held by: no VMM" "no holder once the client is gone"
expect_exit 0 ctl show nic
assert_line_match "$OUT" "^held by: +no VMM\$" "show: no holder once the client is gone"
assert_eq 0 "$(jget "$(jctl show nic)" holder_pid)" "show --json: holder_pid 0"
expect_exit 0 jctl irq trigger nic 3
wait_state "with no VMM, vector 3 waits as pending" pending 3 true
client_start nic 4
wait_state "the next client gets the pending interrupt" got_at_least 3 1
expect_exit 0 jctl irq trigger nic 0
wait_state "ordering barrier" got_at_least 0 1
assert_eq 1 "$(got 3)" "  ... exactly once"
assert_eq 0 "$(got 1)" "  ... and nothing else"
assert_eq "$FDS_READY" "$(fds)" "the daemon holds as many fds as with the first client"

# ==== one holder at a time
"$VMM_CLIENT" --socket "$VMM_SOCK" --device nic --vectors 1 </dev/null >"$T/c2.out" 2>"$T/c2.err" &
expect_ended $! 1 "a second client for a held device"
assert_contains "$(cat "$T/c2.err")" "ERR EBUSY device 'nic' is held by VMM pid $CLIENT_PID" \
    "  ... is told who holds it"
client_stop

# ==== hostile messages on the wire (core/vmm_proto.c): each refused with its errno, in the
# protocol's order (the message, HELLO first, a device taken, the words), changing nothing
coproc RAW { python3 "$SRCDIR/tests/integration/vmm_raw.py" "$VMM_SOCK" "$STATE_WAIT"; }
RAW_OUT=${RAW[0]} RAW_IN=${RAW[1]}
# raw N_FDS MESSAGE: one message with N_FDS eventfds; the daemon's answer in $ANSWER
raw() {
    echo "$1 $2" >&"$RAW_IN"
    IFS= read -r ANSWER <&"$RAW_OUT" || ANSWER="(vmm_raw.py ended)"
}
IFS= read -r ANSWER <&"$RAW_OUT" || ANSWER="(vmm_raw.py ended)"
assert_eq "VFIO-MIGD 1" "$ANSWER" "a raw VMM is greeted"
raw 0 "b'ENABLE msix x'"
assert_eq "ERR EPROTO send HELLO 1 first" "$ANSWER" "bad words before HELLO: HELLO first"
raw 0 "b'FO\\x01O'"
assert_eq "ERR EINVAL unknown command 'FO?O' (docs/vmm-protocol.md)" "$ANSWER" \
    "an unknown command, quoted without its control byte"
raw 0 "b'HELLO 1\\x00junk'"
assert_contains "$ANSWER" "ERR EINVAL message refused: byte 7 is a NUL" \
    "a NUL inside a message: refused, not read as 'HELLO 1'"
raw 1 "b'HELLO 1'"
assert_eq "ERR EINVAL HELLO takes no fds; 1 came with it (docs/vmm-protocol.md)" "$ANSWER" \
    "an fd with a command that takes none: refused, not silently closed"
raw 0 "b'x' * 512"
assert_eq "ERR EINVAL unknown command 'xxxxxxxxxxxxxxxx' (docs/vmm-protocol.md)" "$ANSWER" \
    "512 bytes: read"
raw 0 "b'x' * 513"
assert_contains "$ANSWER" "ERR EMSGSIZE message refused" "513 bytes: one too many"
raw 0 "b'x' * 5000"
assert_contains "$ANSWER" "ERR EMSGSIZE message refused" "5000 bytes"
raw 0 "b'HELLO 1'"
assert_eq "OK 1" "$ANSWER" "HELLO on the same connection after every refusal"
raw 0 "b'MASK x'"
assert_eq "ERR ENOENT no device taken: send TAKE <device> first" "$ANSWER" \
    "bad words before TAKE: a device first"
raw 0 "b'TAKE nic'"
assert_eq "OK nic msix 4 1" "$ANSWER" "TAKE answers the index the last client enabled"
raw 3 "b'VECTORS 0 4'"
assert_contains "$ANSWER" "ERR EINVAL VECTORS <start> <count> must come with count eventfds" \
    "VECTORS with one fd missing"
# held_vec V: "held" when a VMM's eventfd is vector V's (the irqs table's last column), "-" not
held_vec() { ctl irqs nic | awk -v v="$1" '$1 == v { print ($NF == "-" ? "-" : "held") }'; }
raw 3 "b'VECTORS 2 3'"
assert_eq "ERR ENOENT vector 4 of 'nic': not in use (ENABLE it first)" "$ANSWER" \
    "VECTORS past the enabled count"
assert_eq "- -" "$(held_vec 2) $(held_vec 3)" \
    "  ... gives no vector: all are checked before the first is given"
raw 2 "b'VECTORS 2 2'"
assert_eq "OK held held" "$ANSWER $(held_vec 2) $(held_vec 3)" "VECTORS within the count: given"
raw 0 "b'GIVE'"
assert_eq "OK" "$ANSWER" "GIVE"
exec {RAW_IN}>&-
wait "$RAW_PID" 2>/dev/null || true

# ==== a uid not on the allow-list: refused by SO_PEERCRED, told how to allow it
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
    chmod o+x "$T" && chmod 0666 "$VMM_SOCK" # only the credentials check stands in the way now
    setpriv --reuid=65534 --regid=65534 --clear-groups "$VMM_CLIENT" --socket "$VMM_SOCK" \
        --device nic --vectors 1 </dev/null >"$T/c3.out" 2>"$T/c3.err" &
    expect_ended $! 1 "uid 65534 (not allowed) is refused"
    assert_contains "$(cat "$T/c3.err")" "ERR EACCES uid 65534 may not take devices" \
        "  ... in words naming the allow-list"
    assert_contains "$(cat "$T/daemon.log")" "VMM socket: refused pid" "  ... and logged"
else
    pass "# SKIP the uid refusal needs root and setpriv"
fi
