#!/usr/bin/env bash
# Interrupts through a migration and a save file (issue 14 item 4), between two real daemons
# with real eventfds through examples/vmm-client: a sim device with msix=8, a VMM client
# holding it, vector 3 masked and triggered (pending); migrated with the client still there,
# migrated over three data channels and saved/restored with the client gone. On the destination `irqs --json` shows the
# source's index, count, mask and pending bits; a client that takes the device and unmasks 3
# gets exactly one {"vector":3} and no other line. A destination with msix=4 while the source
# uses 8 is refused before the source moves (dry run and migrate name the field). Every wait
# is on an event: the client's stderr lines, its {"vector":V} lines, or a daemon's state.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
: "${VMM_CLIENT:?VMM_CLIENT must name the example client}"

start_named_daemon S --vmm-socket "$T/S-vmm.sock"
start_named_daemon D --vmm-socket "$T/D-vmm.sock"
MIG_TIMEOUT=120 # bound of one `migrate --wait` (a hang detector, not a performance target)

# shellcheck source=vmm_client.sh
source "$(dirname "$0")/vmm_client.sh"
# on_client_start DAEMON DEVICE: vmm_client.sh's client with 8 vectors on DAEMON's VMM socket
on_client_start() { VMM_SOCK=$T/$1-vmm.sock client_start "$2" 8; }
# client_quit: "quit" on its stdin, then its exit (stdout flushed: every line is in c.out)
client_quit() {
    echo quit >&"$CIN"
    wait_exit "$CLIENT_PID" 20 || true
    wait "$CLIENT_PID" 2>/dev/null || true
    exec {CIN}>&-
}
# irq_state DAEMON DEV: "index count" then per vector "v in_use masked pending", one line each
irq_state() {
    "$PY" -c '
import json, sys
j = json.loads(sys.argv[1])
print(j["index"], j["count"])
for v in j["vectors"]:
    print(v["vector"], *(json.dumps(v[k]) for k in ("in_use", "masked", "pending")))' "$(njctl "$1" irqs "$2")"
}
pending_on() { [[ "$(jget "$(njctl "$1" irqs "$2")" "vectors.$3.pending")" == "$4" ]]; }

# prepare DEV: on S, a client holds DEV with msix 8; vector 3 masked, then triggered
prepare() {
    on_client_start S "$1"
    client_do "mask 3"
    expect_exit 0 njctl S irq trigger "$1" 3
    wait_state "S: vector 3 waits as pending" pending_on S "$1" 3 true
    assert_eq 0 "$(got 3)" "S: nothing reached the client while masked"
}

# deliver_once DEV WHAT: on D a client takes DEV and unmasks 3: exactly one {"vector":3}, no
# other line (a second delivery would be counted on the same eventfd read, before "done")
deliver_once() {
    on_client_start D "$1"
    assert_eq 0 "$(wc -l <"$T/c.out")" "$2: taking the device delivers nothing (3 is masked)"
    client_do "unmask 3"
    wait_state "$2: vector 3 delivered on the destination" got_at_least 3 1
    client_quit
    assert_eq '{"vector":3}' "$(cat "$T/c.out")" "$2: exactly one {\"vector\":3}, and no other line"
}

# ==== 1. live migration, the source's client still holding the device

mkgroup S lm - "size=4K,msix=8"
mkgroup D lm - "size=4K,msix=8"
prepare lm_0
SRC_IRQS=$(irq_state S lm_0)
assert_eq "msix 8" "$(head -1 <<<"$SRC_IRQS")" "S: msix 8 enabled by the client"
assert_eq "3 true true true" "$(sed -n 5p <<<"$SRC_IRQS")" "S: vector 3 in use, masked, pending"
expect_exit 0 njctl S show lm_0
assert_contains "$(jf "$OUT" compat)" "irq.msix.count" "show: the descriptor names the vectors used"
incoming D lm --listen 127.0.0.1:0 --resume
expect_exit 0 timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "$S_SOCK" --json --timeout 10 \
    migrate lm --to "$ADDR" --token "$TOKEN" --wait
assert_eq "completed" "$(jf "$OUT" state)" "migrate with a VMM holding the device: completed"
client_quit
assert_eq "running" "$(jf "$(njctl D show lm_0)" state)" "D: the device runs"
assert_eq "$SRC_IRQS" "$(irq_state D lm_0)" "D: irqs shows the source's index, count, mask and pending bits"
deliver_once lm_0 "migration"

# ==== 1b. a device spread over three data channels: its interrupt state comes with its end,
# after every channel's data (the client gone before the migration)

mkgroup S sp - "size=4M,msix=8"
mkgroup D sp - "size=4M,msix=8"
prepare sp_0
client_quit
SRC_IRQS=$(irq_state S sp_0)
incoming D sp --listen 127.0.0.1:0 --resume
expect_exit 0 timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "$S_SOCK" --json --timeout 10 \
    migrate sp --to "$ADDR" --token "$TOKEN" --wait --channels 3 --precopy off
assert_eq "completed" "$(jf "$OUT" state)" "migrate over 3 channels: completed"
assert_eq "$(jf "$(njctl S show sp_0)" digest)" "$(jf "$(njctl D show sp_0)" digest)" \
    "  ... the device's data arrived whole"
assert_eq "$SRC_IRQS" "$(irq_state D sp_0)" "  ... and its interrupt state"
deliver_once sp_0 "spread migration"

# ==== 2. save -> restore, the client gone before the save

expect_exit 0 njctl S attach --sim "size=4K,msix=8" --name sv
expect_exit 0 njctl D attach --sim "size=4K,msix=8" --name rs
prepare sv
client_quit
wait_state "S: the client is gone, vector 3 still pending" pending_on S sv 3 true
SRC_IRQS=$(irq_state S sv)
expect_exit 0 njctl S save sv "$T/sv.sav"
expect_exit 0 njctl D restore rs "$T/sv.sav"
assert_eq "running" "$(jf "$OUT" state)" "restore: the device runs"
assert_eq "$SRC_IRQS" "$(irq_state D rs)" "restore: irqs shows the saved index, count, mask and pending bits"
deliver_once rs "restore"

# ==== 3. a destination with fewer vectors: refused before the source moves

mkgroup S small - "size=4K,msix=8"
mkgroup D small - "size=4K,msix=4"
prepare small_0
BEFORE=$(njctl S show small_0)
incoming D small --listen 127.0.0.1:0
expect_exit 1 njctl S migrate small --to "$ADDR" --token "$TOKEN" --dry-run
assert_eq "false small_0 irq.msix.count 8 4" \
    "$(jf "$OUT" compatible) $(jf "$OUT" mismatches.0.device) $(jf "$OUT" mismatches.0.field) $(jf "$OUT" mismatches.0.source) $(jf "$OUT" mismatches.0.destination)" \
    "dry run: (device, field, source, destination) of the vectors"
expect_exit 1 njctl S --timeout 10 migrate small --to "$ADDR" --token "$TOKEN" --wait
assert_contains "$ERR" "device 'small_0': irq.msix.count: source '8', destination '4'" \
    "a refused migrate names the field with both values"
AFTER=$(njctl S show small_0)
assert_eq "running $(jf "$BEFORE" stats.transitions)" "$(jf "$AFTER" state) $(jf "$AFTER" stats.transitions)" \
    "  ... the source device still running, not one transition run"
assert_eq "msix 8" "$(irq_state S small_0 | head -1)" "  ... its interrupts untouched"
check "  ... vector 3 still pending on the source" pending_on S small_0 3 true
client_quit
