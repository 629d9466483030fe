#!/usr/bin/env bash
# The data port resists whoever can reach it (issue 11 item 3), with real daemons and a real
# hostile peer (preauth_peer.py: connections from distinct loopback addresses, each its own
# peer):
#   - a HELLO without a token, with a wrong one, malformed, cut short, or a connection that
#     closes at once changes nothing: the prepared job stays waiting and a source with the
#     right token then migrates; each refusal is logged with the peer and what was wrong,
#     once per peer per interval;
#   - connections that have not authenticated are capped per peer address and per migration;
#   - idle and 1-byte connections never hold a worker: a device state change completes while
#     32 of them are open (with 4 workers, which they would all hold), and they are still open;
#   - the handshake has one total deadline that bytes do not restart (a 1-byte-every-200-ms
#     HELLO is closed after handshake_timeout_ms);
#   - accept() out of fds (RLIMIT_NOFILE lowered with prlimit) pauses instead of spinning:
#     every failed accept() is followed by a pause (the daemon's debug counter), and the API
#     answers again once the connections are gone.
# Every wait is for an event (a closed connection, a log line, a state), never for a time.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PEER="$SRCDIR/tests/integration/preauth_peer.py"
MIG_TIMEOUT=120

# peer NAME ADDR ARGS...: starts preauth_peer.py in the background; its status in $T/NAME.st
declare -A PEER_PIDS=()
peer() {
    local name=$1 addr=$2
    shift 2
    rm -f "$T/$name.st"
    "$PY" "$PEER" "$addr" --status "$T/$name.st" "$@" >/dev/null 2>>"$T/peer.log" &
    PEER_PIDS[$name]=$!
}
peer_stop() {
    kill -TERM "${PEER_PIDS[$1]}" 2>/dev/null || true
    wait "${PEER_PIDS[$1]}" 2>/dev/null || true
}
# peer_state NAME: "open O closed C", the peer's last count
peer_state() { tail -n 1 "$T/$1.st" 2>/dev/null | sed 's/^state //'; }
peer_is() { [[ "$(peer_state "$1")" == "$2" ]]; }

job_phase() { jf "$(njctl "$1" job "$2")" phase; }
api_answers() { nctl "$1" health >/dev/null 2>&1; }
log_has() { grep -q -F -- "$2" "$T/$1.log"; }

# ---- 1. only the right token changes the migration; each refusal is logged with its peer

# In clear (--tls off): preauth_peer.py speaks the clear protocol byte by byte; the same caps
# and deadline with TLS on are test_tls.sh's.
start_named_daemon S --tls off
start_named_daemon D --workers 4 --handshake-timeout-ms 600000 --tls off
mkgroup S a 1000 size=64K
mkgroup D a - size=64K
incoming D a --listen 127.0.0.1:0
A_ADDR=$ADDR A_TOKEN=$TOKEN A_ID=$DID
WRONG=${A_TOKEN//?/0}
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
le32() { printf '%08x' "$1" | sed -E 's/(..)(..)(..)(..)/\4\3\2\1/'; }
# hello LENGTH PAYLOAD_HEX: a HELLO header (type 1) announcing LENGTH bytes, then the payload
hello() { printf '01000000%s%s' "$(le32 "$1")" "$2"; }

declare -A CASES=(
    [2]="$(hello 0 '')|too short to hold a token"
    [3]="$(hello 64 "$(hex "$WRONG")")|wrong token"
    [4]="$(hello 100 "$(hex "$WRONG")$(printf '%072d' 0)")|wrong token"
    [5]="$(hello 20 "$(printf '%040d' 0)")|too short to hold a token"
    [6]="$(hello 1000 "$(hex "$A_TOKEN")")|"
    [7]="474554202f20485454502f312e310d0a0d0a|it sent 'GET / HT"
    [8]="0500000000000000|its first message is DATA_ACCEPT"
    [9]="04000000|"
)
for n in 2 3 4 5 6 7 8 9; do
    send=${CASES[$n]%%|*} words=${CASES[$n]#*|}
    # Cases 6 and 9 are cut short: the peer closes them itself after sending.
    peer "c$n" "$A_ADDR" --from "127.0.0.$n" --send "$send" --max-s 5
    if [[ $n == 6 || $n == 9 ]]; then
        wait_until "$STATE_WAIT" test -s "$T/c$n.st" || true
        peer_stop "c$n"
        words="from 127.0.0.$n:"
    else
        wait_state "case $n: the daemon closed the connection from 127.0.0.$n" peer_is "c$n" "open 0 closed 1"
    fi
    wait_state "case $n: the refusal is logged with its peer and why ('$words')" \
        eval "grep -F 'refused a connection from 127.0.0.$n:' '$T/D.log' | grep -q -F -- \"\$words\""
    assert_eq waiting "$(job_phase D "$A_ID")" "case $n: the prepared job still waits"
done
assert_not_contains "$(<"$T/D.log")" "token was already used" "no refusal used the token up"

# One line per peer and interval: 20 refusals from one address are not 20 lines.
for _ in $(seq 1 20); do
    peer flood "$A_ADDR" --from 127.0.0.10 --per 1 --send 0800000000000000 --max-s 5
    wait_until "$STATE_WAIT" peer_is flood "open 0 closed 1" || true
    peer_stop flood
done
LINES=$(grep -c -F 'refused a connection from 127.0.0.10:' "$T/D.log" || true)
assert_le "$LINES" 10 "20 refusals from one address: at most a line per interval ($LINES lines)"

run timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "$S_SOCK" --json --timeout 10 \
    migrate a --to "$A_ADDR" --token "$A_TOKEN" --wait
assert_eq "0 completed" "$RC $(jf "$OUT" state)" "then the source with the right token migrates"
assert_eq completed "$(job_phase D "$A_ID")" "  ... and the destination's job completed"

# ---- 2. caps per peer and per migration; strangers hold no worker

mkgroup D b - size=64K
mkgroup D c - size=64K
mkgroup D x - size=64K
incoming D b --listen 127.0.0.1:0
B_ADDR=$ADDR B_ID=$DID
incoming D c --listen 127.0.0.1:0
C_ADDR=$ADDR
# Five idle connections (one byte of a header) from one address: four may wait.
peer p20 "$B_ADDR" --from 127.0.0.20 --per 5 --send 01
wait_state "five connections from one address: one is closed at once" peer_is p20 "open 4 closed 1"
wait_state "  ... logged as the per-address cap" \
    log_has D "4 connections from that address wait to authenticate"
# Sixteen more from four addresses: twelve fit in the migration's sixteen.
peer p21 "$B_ADDR" --from 127.0.0.21,127.0.0.22,127.0.0.23,127.0.0.24 --per 4 --send 01
wait_state "twenty connections to one migration: four are closed at once" peer_is p21 "open 12 closed 4"
wait_state "  ... logged as the migration's cap" \
    log_has D "16 connections of this migration wait to authenticate"
# Sixteen more on another migration: 32 slow-loris connections, more than the 4 workers.
peer p31 "$C_ADDR" --from 127.0.0.31,127.0.0.32,127.0.0.33,127.0.0.34 --per 4 --send 01
wait_state "sixteen on the second migration are all taken" peer_is p31 "open 16 closed 0"
expect_exit 0 njctl D state x_0 stop
assert_eq stop "$(jf "$(njctl D show x_0)" state)" "a device state change completes while 32 of them wait"
assert_eq "open 4 closed 1 | open 12 closed 4 | open 16 closed 0" \
    "$(peer_state p20) | $(peer_state p21) | $(peer_state p31)" "  ... and they are all still open"
assert_eq waiting "$(job_phase D "$B_ID")" "the job they crowd still waits"
for p in p20 p21 p31; do peer_stop "$p"; done

# ---- 3. one total deadline: bytes do not restart it

start_named_daemon E --handshake-timeout-ms 1000 --tls off
mkgroup E d - size=64K
incoming E d --listen 127.0.0.1:0
# A HELLO of 1000 bytes, then a zero byte every 200 ms.
peer slow "$ADDR" --from 127.0.0.40 --send 01000000e8030000 --dribble-ms 200 --max-s 90
wait_state "a 1-byte-every-200-ms HELLO is closed at the total deadline" peer_is slow "open 0 closed 1"
assert_contains "$(<"$T/E.log")" "did not send a whole HELLO or DATA_HELLO within 1000 ms" \
    "  ... logged with its deadline"
assert_eq waiting "$(job_phase E "$DID")" "  ... and the job still waits"
peer_stop slow

# ---- 4. out of fds: accept() pauses, and the API answers again

start_named_daemon F --handshake-timeout-ms 600000 --log-level debug --tls off
mkgroup F e - size=64K
incoming F e --listen 127.0.0.1:0
F_ADDR=$ADDR
# A soft limit that leaves the daemon three free fd numbers.
LIMIT=$("$PY" -c '
import os, sys
used = {int(f) for f in os.listdir("/proc/%s/fd" % sys.argv[1])}
free, n = 0, 0
while free < 3:
    free += n not in used
    n += 1
print(n)' "$F_PID")
prlimit --pid "$F_PID" --nofile="$LIMIT":
peer hog "$F_ADDR" --from 127.0.0.50,127.0.0.51,127.0.0.52,127.0.0.53 --per 4 --send 01
wait_state "more connections than fds: accept() fails and pauses" \
    log_has F "cannot accept connections on its data port"
wait_until "$STATE_WAIT" log_has F "pause 3 of" || true
FAILS=$(grep -o -E 'accept\(\) on the data port failed: .* \(failure [0-9]+, pause [0-9]+ of' "$T/F.log" |
    sed -E 's/.*failure ([0-9]+), pause ([0-9]+) of/\1 \2/')
BAD=$(awk '$1 != $2' <<<"$FAILS")
assert_ne "" "$FAILS" "the daemon counts its failed accept() calls"
assert_eq "" "$BAD" "every failed accept() was followed by a pause: the loop does not spin"
peer_stop hog
prlimit --pid "$F_PID" --nofile=1024:
wait_state "the API answers once the connections are gone" api_answers F
assert_eq waiting "$(job_phase F "$(jf "$(njctl F jobs)" 0.id)")" "  ... and the job still waits"

