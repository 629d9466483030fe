#!/usr/bin/env bash
# Say what the peer is (issue 10 item 6): a migration sent to a port where something else
# answers — a real server in another language (foreign_server.py): HTTP, random bytes, a
# close, a few bytes and a close, silence, a vfio-migd message out of turn, a message cut
# short, an older vfio-migd (protocol 1, whose hand-over is no commit) — fails with a sentence
# that names the peer and what it is not ("the peer at ADDR is not a vfio-migd data port"),
# never with an errno meant for something else ("Argument list
# too long", "No data available"), and changes nothing on the source. A port where nothing
# listens says so, and names the command that opens one.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

FOREIGN="$SRCDIR/tests/integration/foreign_server.py"
TOKEN=$(printf '%064d' 7)

# In clear (--tls off): foreign_server.py answers as a clear peer would; a TLS source facing a
# clear port is test_tls.sh's.
start_daemon --tls off
for i in 0 1; do
    expect_exit 0 jctl attach --sim "size=64K" --name "d$i"
done
expect_exit 0 jctl group create vm d0 d1
BEFORE=$(jnorm "$(jctl group show vm)" devices)

# foreign MODE: starts foreign_server.py MODE; FPID, FADDR
foreign() {
    rm -f "$T/foreign.port"
    "$PY" "$FOREIGN" "$1" --port-file "$T/foreign.port" 2>>"$T/foreign.log" &
    FPID=$!
    if wait_until "$STATE_WAIT" test -s "$T/foreign.port"; then
        FADDR=$(<"$T/foreign.port")
    else
        fail "foreign server $1 started" "no port file within $STATE_WAIT s"
        FADDR=127.0.0.1:1
    fi
}

foreign_stop() {
    kill -TERM "$FPID" 2>/dev/null
    wait "$FPID" 2>/dev/null || true
}

# to_foreign MODE NEEDLE [ARGS...]: a migration to a MODE server fails, naming the peer
to_foreign() {
    local mode=$1 needle=$2 error
    shift 2
    foreign "$mode"
    expect_exit 1 jctl migrate vm --to "$FADDR" --token "$TOKEN" --wait "$@"
    error=$(jf "$OUT" error)
    assert_contains "$error" "the peer at '$FADDR'" "$mode: the error names the peer"
    assert_contains "$error" "$needle" "$mode: the error says what the peer is"
    assert_contains "$ERR" "$needle" "$mode: stderr says it too"
    for leak in "Argument list too long" "No data available" "Protocol error" \
        "Bad message" "unexpected message"; do
        assert_not_contains "$error" "$leak" "$mode: no internal errno text ($leak)"
    done
    assert_eq "$BEFORE" "$(jnorm "$(jctl group show vm)" devices)" "$mode: nothing moved"
    foreign_stop
}

to_foreign http "is not a vfio-migd data port: it answered 'HTTP/1.1 400 Bad Request"
to_foreign random "is not a vfio-migd data port: it answered '"
# (closed, or reset when the HELLO arrived before the close: either is "no answer")
to_foreign close "): it is not a vfio-migd data port, or its daemon stopped"
to_foreign short "is not a vfio-migd data port: it answered 'SSH'"
to_foreign silent "gave no answer (it sent nothing within the timeout): it is not a vfio-migd data port" \
    --peer-timeout-ms 300
to_foreign confirm "answered CONFIRM (0 bytes) where ACCEPT was due"
to_foreign truncated "ended the connection inside message ACCEPT (10 of 64 bytes)"
# An older vfio-migd, whose hand-over is no commit: refused before anything moved.
to_foreign v1 "speaks vfio-migd control protocol 1, this source 3: its hand-over is no commit"

# Nothing listens: the port of a server that just ended.
foreign close
foreign_stop
expect_exit 1 jctl migrate vm --to "$FADDR" --token "$TOKEN" --wait
assert_contains "$(jf "$OUT" error)" "nothing listens there (connection refused)" \
    "closed port: says nothing listens there"
assert_contains "$(jf "$OUT" error)" "'vfio-migctl incoming'" \
    "closed port: names the command that opens a port"
assert_eq "$BEFORE" "$(jnorm "$(jctl group show vm)" devices)" "closed port: nothing moved"
