# shellcheck shell=bash
# vmm_client.sh — the example VMM client (examples/vmm-client.c, $VMM_CLIENT) driven by a
# test, sourced after lib.sh by tests/integration/test_vmm.sh, test_irq_migration.sh and
# tests/kernel/irq_test.sh.
# Every wait is on the client's own lines (its stderr "ready" and "done:" lines, its stdout
# {"vector":V} lines), bounded by lib.sh's STATE_WAIT, never on time.
#
#   client_start DEVICE N [INDEX [OPTION...]]  vmm-client on $VMM_SOCK takes DEVICE and wires
#                     N vectors (enabling INDEX, default msix, when the device has none
#                     enabled), with more client OPTIONs (--stay: it outlives the daemon); its
#                     stdin is a fifo the test holds; waits for "ready"; sets CLIENT_PID.
#                     Its stdout and stderr: $T/c.out, $T/c.err (new for each client)
#   client_stop       SIGTERM, and waits for it
#   client_do LINE    a stdin command (mask V, unmask V, give, reconnect), waited for
#                     ("done: LINE", counted at each poll)
#   got V             how many {"vector":V} lines the client printed
#   got_at_least V N  whether it printed at least N of them
: "${VMM_CLIENT:?VMM_CLIENT must name the example client}"

CLIENT_PID=
client_start() {
    rm -f "$T/c.in" "$T/c.out" "$T/c.err"
    mkfifo "$T/c.in"
    exec {CIN}<>"$T/c.in"
    "$VMM_CLIENT" --socket "$VMM_SOCK" --device "$1" --vectors "$2" --index "${3:-msix}" "${@:4}" \
        <&"$CIN" >"$T/c.out" 2>"$T/c.err" {JSON_W}>&- {JSON_R}<&- &
    CLIENT_PID=$!
    wait_state "vmm-client ($1, $2 vectors) is ready" grep -q "vmm-client: ready" "$T/c.err"
}
client_stop() {
    kill "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
    exec {CIN}>&-
}
client_do() {
    local before
    before=$(grep -c "vmm-client: done: $1\$" "$T/c.err" || true)
    echo "$1" >&"$CIN"
    wait_state "vmm-client did '$1'" done_more "$1" "$before"
}
# done_more LINE N: more than N "done: LINE" lines on the client's stderr, counted at each poll
# (a count expanded once, when wait_state is called, would never change: a client slower than
# the call made the wait time out)
done_more() { (($(grep -c "vmm-client: done: $1\$" "$T/c.err" || true) > $2)); }
got() { grep -c "^{\"vector\":$1}\$" "$T/c.out" || true; }
got_at_least() { (($(got "$1") >= $2)); }
