#!/usr/bin/env bash
# kernel_irq — interrupts of a real VFIO device handed to a VMM (issue 14 item 7), inside the
# Linux 6.12 test VM (run-vm.sh -M 2; ctest runs it as kernel_irq). Two mtty-1 mdevs A and B
# ($MTTY_UUIDS); A: GET_IRQ_INFO gives INTx (1, maskable, automasked) and MSI (1 vector,
# NORESIZE); its MSI-X index answers EINVAL (none). The daemon runs with the kernel back-end;
# the example VMM client (examples/vmm-client.c) takes A over the VMM socket. Checked:
#  - `irqs` shows what mtty offers; the client enables MSI with 1 vector and hands over its
#    eventfd: the kernel's loopback (`irq trigger`, SET_IRQS DATA_NONE|ACTION_TRIGGER) reaches
#    the client as {"vector":0}, exactly once, with no wake-up of the daemon (latch_wakeups
#    stays 0: mtty signals the client's eventfd itself);
#  - `irq mask` (emulated: vfio-pci and mtty answer ENOTTY to an MSI mask), three triggers:
#    nothing reaches the client, `irqs` shows vector 0 pending; `irq unmask` -> delivered
#    exactly once (a later trigger is the barrier that proves no second one follows);
#  - the client gives the device back; MSI disabled; a new client enables INTx: a trigger is
#    delivered once. mtty automasks INTx when it signals it, as vfio-pci does, so the next
#    interrupt needs an unmask: the client's `unmask 0` (VFIO's ACTION_UNMASK) lets a second
#    trigger through;
#  - A's MSI vector masked and pending, migrated to B on a second daemon (the stream's
#    DEVICE_IRQS record): B shows it masked and pending; a client takes B and unmasks it ->
#    delivered exactly once (a later trigger is the barrier).
# Every wait is on the client's lines or the daemon's state (vmm_client.sh), never on time.
# Needs: VFIO_MIGD, VFIO_MIGCTL, VMM_CLIENT, RESULTS (a writable shared dir).
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=tests/integration/vmm_client.sh
source "$(dirname "$0")/../integration/vmm_client.sh"

read -r UA UB <<<"$MTTY_UUIDS"
VMM_SOCK=$T/vmm.sock
pending() { [[ "$(jget "$(jctl irqs A)" vectors.0.pending)" == "$1" ]]; }
wakeups() { jget "$(jctl irqs A)" latch_wakeups; }
given_back() { [[ "$(ctl irqs A)" == *"held by: no VMM"* ]]; }

start_daemon
expect_exit 0 jctl attach --mdev "$UA" --name A
expect_exit 0 ctl irqs A
assert_contains "$OUT" "index none, 0 vectors enabled (device offers intx 1, msi 1, msix 0)" \
    "irqs A: mtty offers INTx and one MSI vector, no MSI-X (GET_IRQ_INFO)"

# ==== MSI, 1 vector, the client's eventfd: the kernel signals it directly
client_start A 1 msi
expect_exit 0 jctl irqs A
assert_eq "msi 1 true false false" \
    "$(jget "$OUT" index count vectors.0.in_use vectors.0.masked vectors.0.pending | tr '\n' ' ' | sed 's/ $//')" \
    "the client enabled MSI with 1 vector, unmasked, nothing pending"
expect_exit 0 ctl irqs A
assert_contains "$OUT" "held by: pid $CLIENT_PID" "irqs names the client's pid"
expect_exit 0 jctl irq trigger A 0
wait_state "the loopback trigger reached the client" got_at_least 0 1
assert_eq 1 "$(got 0)" "  ... exactly once"
assert_eq 0 "$(wakeups)" "  ... signalled by the kernel: the daemon never woke up for it"

# ==== emulated mask: three triggers wait as one pending bit; the unmask delivers it once
client_do "mask 0"
assert_eq true "$(jget "$(jctl irqs A)" vectors.0.masked)" "vector 0 masked"
for i in 1 2 3; do
    expect_exit 0 jctl irq trigger A 0
done
wait_state "masked: the triggers set vector 0 pending" pending true
assert_eq 1 "$(got 0)" "  ... and nothing reached the client"
client_do "unmask 0"
wait_state "unmasked: the pending interrupt reached the client" got_at_least 0 2
assert_eq false "$(jget "$(jctl irqs A)" vectors.0.pending)" "  ... pending cleared"
expect_exit 0 jctl irq trigger A 0
wait_state "a later trigger arrived (ordering barrier)" got_at_least 0 3
assert_eq 3 "$(got 0)" "three triggers while masked were delivered exactly once"
client_stop
wait_state "the device is given back" given_back

# ==== INTx: enabled by the next client once MSI is off
expect_exit 0 jctl irq enable A msi 0
client_start A 1 intx
assert_eq "intx 1" "$(jget "$(jctl irqs A)" index count | tr '\n' ' ' | sed 's/ $//')" \
    "the client enabled INTx"
expect_exit 0 jctl irq trigger A 0
wait_state "an INTx trigger reached the client" got_at_least 0 1
client_do "unmask 0"
expect_exit 0 jctl irq trigger A 0
wait_state "after the unmask (mtty automasks INTx), the next INTx arrived" got_at_least 0 2
assert_eq 2 "$(got 0)" "  ... two triggers, two interrupts"
client_stop

# ==== a migration: A's MSI vector masked and pending moves to mtty B on a second daemon, where
# a client that takes the device and unmasks it gets it exactly once
expect_exit 0 jctl irq enable A intx 0
client_start A 1 msi
client_do "mask 0"
expect_exit 0 jctl irq trigger A 0
wait_state "masked: the trigger set vector 0 pending" pending true
client_stop
start_named_daemon D --vmm-socket "$T/D-vmm.sock"
expect_exit 0 njctl D attach --mdev "$UB" --name A
expect_exit 0 njctl D group create g A
expect_exit 0 jctl group create g A
expect_exit 0 njctl D incoming g --listen 127.0.0.1:0 --resume
ADDR=$(jget "$OUT" address) TOKEN=$(jget "$OUT" token)
expect_exit 0 jctl migrate g --to "$ADDR" --token "$TOKEN" --wait
assert_eq "msi 1 true true" \
    "$(jget "$(njctl D irqs A)" index count vectors.0.masked vectors.0.pending | tr '\n' ' ' | sed 's/ $//')" \
    "on B: MSI with 1 vector, vector 0 masked and pending, as on A"
VMM_SOCK=$T/D-vmm.sock client_start A 1 msi
client_do "unmask 0"
wait_state "B: the unmask delivered the interrupt pending on A" got_at_least 0 1
expect_exit 0 njctl D irq trigger A 0
wait_state "B: a later trigger arrived (ordering barrier)" got_at_least 0 2
assert_eq 2 "$(got 0)" "B: the interrupt pending on A was delivered exactly once"
client_stop
cp "$T/D.log" "$RESULTS/irq_test-D.log" 2>/dev/null || true

cp "$T/daemon.log" "$RESULTS/irq_test-daemon.log" 2>/dev/null || true
