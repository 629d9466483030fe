#!/usr/bin/env bash
# Interrupts through the API and the CLI (issue 14): `irqs` (the --json contract), `irq enable`
# with the exclusive indexes and the refusals that name the fix, mask -> three loopback
# triggers -> pending -> unmask clears it. Waits are on the daemon's state (the latch's read
# sets pending), never on time.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_daemon

expect_exit 0 jctl attach --sim "size=4K,msix=8,msi=1,intx=1" --name nic
expect_exit 0 jctl irqs nic
assert_eq "none 0 0" "$(jget "$OUT" index count vectors.# | tr '\n' ' ' | sed 's/ $//')" \
    "a new device has nothing enabled"

expect_exit 0 jctl irq enable nic msix 4
expect_exit 0 jctl irqs nic
assert_eq "msix 4" "$(jget "$OUT" index count | tr '\n' ' ' | sed 's/ $//')" "msix 4 enabled"
assert_eq "count index latch_wakeups latch_wakeups_total vectors" \
    "$(jkeys "$OUT" | sort | tr '\n' ' ' | sed 's/ $//')" "irqs --json has exactly the contract's keys"
assert_eq "in_use masked pending vector" "$(jkeys "$OUT" vectors.0 | sort | tr '\n' ' ' | sed 's/ $//')" \
    "  ... and so has each vector"
assert_eq "3 true false false" "$(jget "$OUT" vectors.3.vector vectors.3.in_use vectors.3.masked vectors.3.pending | tr '\n' ' ' | sed 's/ $//')" \
    "vector 3 in use, unmasked, nothing pending"

# ==== refusals: each names what is wrong and the command that fixes it; nothing changes
expect_error FAILED_PRECONDITION jctl irq enable nic msi 1
assert_contains "$ERR" "vfio-migctl irq enable nic msix 0" "  ... says how to disable msix first"
expect_error INVALID_ARGUMENT jctl irq enable nic msix 9
assert_contains "$ERR" "has 8 msix vectors" "  ... says how many there are"
expect_error INVALID_ARGUMENT jctl irq enable nic msix 2
assert_contains "$ERR" "only grows" "  ... shrinking is refused"
expect_error NOT_FOUND jctl irq mask nic 4
assert_contains "$ERR" "no vector 4 in use" "  ... a vector beyond the count"
expect_exit 2 ctl irq enable nic msx 4
assert_contains "$ERR" "not an interrupt index" "  ... a bad index name is a usage error"
expect_exit 2 ctl irq frob nic 1
expect_exit 0 jctl irqs nic
assert_eq "msix 4" "$(jget "$OUT" index count | tr '\n' ' ' | sed 's/ $//')" "nothing changed"

# ==== mask, three triggers, the interrupts wait as one pending bit; unmasked with no VMM to
# deliver it to, it stays pending (the VMM test delivers it: test_vmm.sh)
expect_exit 0 jctl irq mask nic 1
assert_eq "true" "$(jget "$OUT" vectors.1.masked)" "vector 1 masked (the answer is the state after)"
for i in 1 2 3; do
    expect_exit 0 jctl irq trigger nic 1
done
pending() { [[ "$(jget "$(jctl irqs nic)" vectors.1.pending)" == "$1" ]]; }
wait_state "three triggers while masked: vector 1 pending" pending true
WAKEUPS=$(jget "$(jctl irqs nic)" latch_wakeups)
check "the latch's read woke the daemon (latch_wakeups $WAKEUPS >= 1)" test "$WAKEUPS" -ge 1
expect_exit 0 jctl irq unmask nic 1
expect_exit 0 jctl irqs nic
assert_eq "false true" "$(jget "$OUT" vectors.1.masked vectors.1.pending | tr '\n' ' ' | sed 's/ $//')" \
    "unmasked with no VMM holding it: still pending, nothing lost"

# ==== growth (NORESIZE) keeps mask and pending; disabling forgets them
expect_exit 0 jctl irq mask nic 2
expect_exit 0 jctl irq trigger nic 2
pending2() { [[ "$(jget "$(jctl irqs nic)" vectors.2.pending)" == "$1" ]]; }
wait_state "vector 2 pending" pending2 true
expect_exit 0 jctl irq enable nic msix 8
expect_exit 0 jctl irqs nic
assert_eq "8 true true" "$(jget "$OUT" count vectors.2.masked vectors.2.pending | tr '\n' ' ' | sed 's/ $//')" \
    "grown to 8: vector 2 still masked and pending"
expect_exit 0 jctl irq enable nic msix 0
expect_exit 0 jctl irq enable nic msi 1
expect_exit 0 jctl irqs nic
assert_eq "msi 1 false" "$(jget "$OUT" index count vectors.0.pending | tr '\n' ' ' | sed 's/ $//')" \
    "msix disabled, msi enabled"
expect_exit 0 ctl irqs nic
assert_contains "$OUT" "held by: no VMM" "the text form says who holds the device"

