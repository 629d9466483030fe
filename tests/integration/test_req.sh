#!/usr/bin/env bash
# The kernel asking for a device back (REQ, issue 15 item 1), under the service-manager harness
# with its fd store on. The daemon registers an eventfd of its own as each device's REQ
# trigger and keeps it in the store as req/<id>; the kernel signals it when the device's
# driver is being unbound or the device removed. For a sim device (req=1) the kernel's signal
# is a write to that eventfd through the store's copy (sdh signal-fd): the same file.
#   - a device without REQ (the sim's default, like mtty): the log says so, no req/ entry;
#   - an idle device: released (gone from `devices`, its store entries removed, a log line);
#     the REQ repeated changes nothing;
#   - a REQ sent while no daemon ran (SIGKILL): the next daemon takes the eventfd back and
#     releases the device;
#   - a device a VMM holds: the VMM gets "ERR ENODEV ..." unasked and its connection closes;
#   - a device of a group whose live migration is in pre-copy (bandwidth-capped): the job
#     fails naming the kernel's request, the source's devices go back to RUNNING, the device
#     is detached and the group keeps the other one; the destination resets what it had.
# Waits are on states and log lines, never on a time.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

VMM_SOCK=$SDH/vmm.sock
: "${VMM_CLIENT:?VMM_CLIENT must name the example client}"
gone() { ! sdctl show "$1" >/dev/null 2>&1; }
logged() { service_log | grep -F -- "$1" >/dev/null; } # to the end: see log_since (lib.sh)

sdh_serve --fdstore-max 64
sdh listen api "$SDSOCK" >/dev/null
start_service

# ==== no REQ: said once, nothing stored, nothing else changes
expect_exit 0 sdctl attach --sim size=4K --name plain
assert_contains "$(service_log)" "Device 'plain' has no REQ interrupt (the kernel cannot ask for it back)" \
    "a device without REQ: the log says so"
assert_not_contains "$(sdh fdstore)" "req/plain" "  ... and no REQ eventfd is stored"

# ==== an idle device: released on the kernel's request
ID="0000:3b:00.2"
expect_exit 0 sdctl attach --sim "size=4K,req=1,msix=4" --name "$ID"
expect_exit 0 sdctl irq enable "$ID" msix 2
STORE=$(sdh fdstore)
assert_contains "$STORE" "req/0000%3b%00.2" "the REQ eventfd is stored as req/<id>, ':' encoded"
assert_not_contains "$(service_log)" "Device '$ID' has no REQ" "a device with req=1 has REQ"
expect_exit 0 sdh signal-fd "req/0000%3b%00.2"
wait_state "REQ: the idle device is released" gone "$ID"
assert_contains "$(service_log)" "The kernel asks for device '$ID' back (REQ: its driver is being unbound, or the device removed); releasing it." \
    "  ... the log says the kernel asked for it"
assert_contains "$(service_log)" "Detached device '$ID'." "  ... and that it was detached"
assert_not_contains "$(sdh fdstore)" "0000%3b%00.2" "  ... no store entry of it is left (dev/, irq/, req/)"
expect_exit 0 sdctl show plain
assert_eq "running" "$(jget "$OUT" state)" "the device without REQ is untouched"

# The kernel repeats REQ every 10 s until the device is released. A device busy with an
# operation (a state change held in its arc) is released when the operation ends; the REQs
# that came meanwhile are the same request.
expect_exit 0 sdctl attach --sim "size=4K,req=1,$(held 'running->running_p2p' twice)" --name twice
sdctl state twice stop >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
busy() { [[ -n "$(jget "$(sdctl show twice)" busy_operation)" ]]; }
wait_state "a state change runs on the device" busy
expect_exit 0 sdh signal-fd req/twice
wait_state "REQ on a busy device: the request is logged" logged "The kernel asks for device 'twice' back"
expect_exit 0 sdh signal-fd req/twice
check "  ... the device stays while its operation runs" sdctl show twice
release twice
wait_bg
assert_eq 0 "$BGRC" "  ... which completes"
wait_state "  ... and is released when the operation ends" gone twice
assert_eq 1 "$(service_log | grep -c -F "Releasing device 'twice'")" "  ... once, however many REQs came"
assert_eq 1 "$(service_log | grep -c -F "The kernel asks for device 'twice' back")" \
    "  ... the repeated REQ is the same request"

# ==== a REQ while no daemon runs: the eventfd comes back from the store and the next daemon
# releases the device
expect_exit 0 sdctl attach --sim size=4K,req=1 --name r1
kill_service
expect_exit 0 sdh signal-fd req/r1
start_service
wait_state "a REQ sent while no daemon ran releases the device after the restart" gone r1
assert_contains "$(service_log)" "Restart: re-adopted device 'r1'" "  ... it had been re-adopted first"
assert_not_contains "$(sdh fdstore)" "r1" "  ... and its store entries are gone"
expect_exit 0 sdctl show plain

# ==== a device a VMM holds: the VMM is told (an unasked ERR ENODEV) and its connection
# closed, then the device is released
# shellcheck source=vmm_client.sh
source "$(dirname "$0")/vmm_client.sh"
expect_exit 0 sdctl attach --sim "size=4K,req=1,msix=4" --name vm0
client_start vm0 2 msix
expect_exit 0 sdh signal-fd req/vm0
wait_state "REQ on a device a VMM holds: released" gone vm0
wait_state "  ... the VMM was told why" grep -q -F "ERR ENODEV the kernel asked for device 'vm0' back (REQ" \
    "$T/c.err"
expect_ended "$CLIENT_PID" 1 "  ... and its connection closed (the client without --stay exits)"
CLIENT_PID=
exec {CIN}>&-
assert_contains "$(service_log)" "Device 'vm0': VMM pid" "  ... the log says so"

# ==== a live migration in pre-copy: the job fails by its rules, then the device is released
start_named_daemon D
expect_exit 0 njctl D attach --sim size=4M,seed=5 --name m0
expect_exit 0 njctl D attach --sim size=4M,seed=6 --name m1
expect_exit 0 njctl D group create vm m0 m1
expect_exit 0 sdctl attach --sim size=4M,seed=5,req=1 --name m0
expect_exit 0 sdctl attach --sim size=4M,seed=6 --name m1
expect_exit 0 sdctl group create vm m0 m1
incoming D vm --listen 127.0.0.1:0 --tls off
# 64 KiB/s over 8 MiB: pre-copy lasts for minutes, far beyond the test.
expect_exit 0 sdctl migrate vm --to "$ADDR" --token "$TOKEN" --bandwidth 64K --max-precopy-ms 600000 --tls off
JOB=$(jget "$OUT" id)
in_precopy() { [[ "$(jget "$(sdctl job "$JOB")" phase)" == precopy ]]; }
wait_state "the migration is in pre-copy" in_precopy
expect_exit 0 sdh signal-fd req/m0
job_failed() { [[ "$(jget "$(sdctl job "$JOB")" state)" == failed ]]; }
wait_state "REQ during pre-copy: the migration fails" job_failed
assert_contains "$(jget "$(sdctl job "$JOB")" error)" "the kernel asked for device 'm0' back (REQ" \
    "  ... naming the kernel's request"
wait_state "  ... then the device is released" gone m0
expect_exit 0 sdctl show m1
assert_eq "running" "$(jget "$OUT" state)" "the other source device is back to running"
expect_exit 0 sdctl group show vm
assert_not_contains "$OUT" '"m0"' "the group lost the released device"
assert_contains "$OUT" '"m1"' "  ... and keeps the other"
assert_contains "$(service_log)" "Device 'm0' left group 'vm'" "  ... the log says so"
d_failed() { [[ "$(jget "$(njctl D job "$DID")" state)" == failed ]]; }
wait_state "the destination's job fails too (its devices reset)" d_failed
assert_not_contains "$(sdh fdstore)" "req/m0" "the released device's REQ eventfd left the store"

sdh_quit
