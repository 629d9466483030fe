#!/usr/bin/env bash
# Interrupts across the daemon's restart (issue 15 item 1), under the service-manager harness
# with its fd store on: a sim device with MSI-X 8 held by the example VMM client (--stay: it
# keeps its eventfds when the daemon goes, as a VMM does), vector 2 masked and triggered
# (pending), vector 3 masked. SIGKILL. While no daemon runs, vector 3's latch is signalled
# through the store's copy (what the kernel does for a masked vector). The next daemon: the
# index still enabled with the same masked/pending bits (vector 3 now pending), the store
# keeps the eventfds under irq/<id>/<v>/vmm|latch, the kernel's loopback on vector 5 reaches
# the client's eventfd without the client registering anything again, and the client,
# reconnecting, unmasks 2 and 3 and gets exactly one interrupt on each. Waits are on events.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
: "${VMM_CLIENT:?VMM_CLIENT must name the example client}"

# Each vector's bits, one word per vector: in_use/masked/pending. (Which vectors a VMM holds
# shows below: the kernel's loopback reaches the client's eventfd.)
vectors() {
    local j v out=()
    j=$(sdctl irqs nic)
    for v in 0 1 2 3 4 5 6 7; do
        out+=("$v:$(jget "$j" "vectors.$v.in_use" "vectors.$v.masked" "vectors.$v.pending" |
            tr '\n' '/')")
    done
    echo "$(jget "$j" index count | tr '\n' ' ')${out[*]}"
}
pending() { [[ "$(jget "$(sdctl irqs nic)" "vectors.$1.pending")" == "$2" ]]; }

VMM_SOCK=$SDH/vmm.sock
# shellcheck source=vmm_client.sh
source "$(dirname "$0")/vmm_client.sh"
# At exit, the client goes too (then lib.sh's own exit handling).
_client_on_exit() {
    local status=$?
    if [[ -n "$CLIENT_PID" ]]; then
        kill "$CLIENT_PID" 2>/dev/null || true
        wait "$CLIENT_PID" 2>/dev/null || true
    fi
    sdh_quit
    (exit "$status")
    _on_exit
}
trap _client_on_exit EXIT

sdh_serve --fdstore-max 64
sdh listen api "$SDSOCK" >/dev/null
start_service
expect_exit 0 sdctl attach --sim "size=4K,msix=8" --name nic
client_start nic 8 msix --stay
client_do "mask 2"
client_do "mask 3"
expect_exit 0 sdctl irq trigger nic 2
wait_state "masked vector 2 triggered: pending" pending 2 true
BEFORE=$(vectors)
assert_contains "$BEFORE" "msix 8" "the client enabled MSI-X 8"
STORE=$(sdh fdstore)
assert_contains "$STORE" "irq/nic/5/vmm" "the VMM's eventfd of vector 5 is in the store"
assert_contains "$STORE" "irq/nic/2/latch" "the latch of masked vector 2 is in the store"

expect_exit 0 sdh kill KILL
expect_exit 0 sdh wait-exit
wait_state "the client saw the daemon go and stays" grep -q "vmm-client: disconnected" "$T/c.err"
# The device raises masked vector 3 while no daemon runs: the kernel signals its latch.
expect_exit 0 sdh signal-fd irq/nic/3/latch
start_service
assert_contains "$(service_log)" "'nic' keeps msix with 8 vectors armed (2 pending, 8 on a VMM's eventfd)" \
    "the log says what came back"
assert_not_contains "$(service_log)" "could not be taken back" "nothing was given up"
AFTER=$(vectors)
EXPECTED=${BEFORE/3:true\/true\/false\//3:true\/true\/true\/}
assert_eq "$EXPECTED" "$AFTER" "the same interrupts after SIGKILL, vector 3 pending from its latch"
STORE=$(sdh fdstore)
assert_contains "$STORE" "irq/nic/5/vmm" "the eventfds are stored again"

# The kernel's loopback on vector 5 goes straight to the client's eventfd: nothing was
# registered again (the client is still disconnected).
expect_exit 0 sdctl irq trigger nic 5
wait_state "vector 5 reaches the client's eventfd after the restart" got_at_least 5 1
assert_eq 1 "$(got 5)" "  ... exactly once"
assert_eq "0 0" "$(got 2) $(got 3)" "masked vectors delivered nothing"

client_do "reconnect"
assert_contains "$(cat "$T/c.err")" "OK nic msix 8" "the reconnecting client finds MSI-X 8 enabled"
client_do "unmask 2"
client_do "unmask 3"
wait_state "unmasked: vector 2 delivered" got_at_least 2 1
wait_state "unmasked: vector 3 delivered" got_at_least 3 1
expect_exit 0 sdctl irq trigger nic 0
wait_state "a later interrupt on vector 0 arrived (ordering barrier)" got_at_least 0 1
assert_eq "1 1" "$(got 2) $(got 3)" "each pending vector delivered exactly once"

# Detaching gives everything back to the store's manager: no irq/ entry left.
client_do "give"
expect_exit 0 sdctl detach nic
assert_not_contains "$(sdh fdstore)" "irq/nic/" "detach removes the interrupt eventfds from the store"
echo quit >&"$CIN"
expect_ended "$CLIENT_PID" 0 "the client quits"
CLIENT_PID=
sdh_quit
