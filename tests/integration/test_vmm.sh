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
