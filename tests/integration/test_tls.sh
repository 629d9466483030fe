#!/usr/bin/env bash
# The migration's sockets in TLS 1.3, keyed by the one-time token (issue 11 item 7), between two
# real daemons:
#   1. by default a migration is encrypted: through tcp_proxy.py --capture, the bytes on the
#      wire hold neither the token nor a stretch of the devices' content; the same migration
#      with --tls off on both sides does show both (the test can fail);
#   2. a wrong token fails the TLS handshake: the source's error says so, its devices are
#      untouched, the destination waits on (its log names the failed handshake);
#   3. a clear side and a TLS side refuse each other, each naming --tls;
#   4. a dry run speaks TLS too, and --tls off to a TLS destination is refused.
# A byte flipped in the encrypted stream is test_migration_failures.sh's "corrupt record (psk)".
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_named_daemon S
start_named_daemon D

# A device "probe" on S with the same seed as the migrated one has the same content: its save
# file holds that content in clear, a sample of which must not appear on an encrypted wire.
expect_exit 0 njctl S attach --sim size=4M,seed=4242 --name probe
expect_exit 0 njctl S save probe "$T/probe.sav" --resume
# 64 bytes from the middle of the 4 MiB of data (past the header and the manifest)
PATTERN=$("$PY" -c '
import sys
d = open(sys.argv[1], "rb").read()
p = d[len(d) // 2:len(d) // 2 + 64]
assert len(set(p)) > 8, "the sample is not varied enough to be a fingerprint"
print(p.hex())' "$T/probe.sav")
assert_match "$PATTERN" "^[0-9a-f]{128}$" "a 64-byte sample of the devices' content"

# on_wire FILE HEX : 0 when the bytes of HEX occur in FILE
on_wire() {
    "$PY" -c '
import sys
sys.exit(0 if bytes.fromhex(sys.argv[2]) in open(sys.argv[1], "rb").read() else 1)' "$1" "$2"
}

# migrate_through_proxy GROUP SEED TLS : a migration S -> D through the capturing proxy, with
# --tls TLS on both sides ("" leaves both at the daemons' default); CAP is the capture file
migrate_through_proxy() {
    local group=$1 seed=$2 tls=$3 args=()
    [[ -n "$tls" ]] && args=(--tls "$tls")
    mkgroup S "$group" - "size=4M,seed=$seed"
    mkgroup D "$group" - "size=4M,seed=$seed"
    incoming D "$group" --listen 127.0.0.1:0 --resume "${args[@]}"
    CAP=$T/$group.cap
    : >"$CAP"
    start_proxy "$ADDR" --capture "$CAP"
    expect_exit 0 njctl S migrate "$group" --to "$PROXY_ADDR" --token "$TOKEN" --wait \
        --precopy off "${args[@]}"
    MIG=$OUT
    stop_proxy
    assert_eq "completed" "$(jf "$MIG" state)" "$group: the migration completed"
}

# ==== 1. encrypted by default; in clear with --tls off

migrate_through_proxy enc 4242 ""
assert_eq "psk" "$(jf "$MIG" options.tls)" "default: the migration's options say tls psk"
assert_eq "$(dev_prop S probe digest)" "$(dev_prop D enc_0 digest)" \
    "default: the destination holds the source's content"
CAP_SIZE=$(stat -c %s "$CAP")
if ((CAP_SIZE > 4 * 1024 * 1024)); then
    pass "default: the capture holds the whole migration ($CAP_SIZE bytes)"
else
    fail "default: the capture holds the whole migration" "only $CAP_SIZE bytes"
fi
TOKEN_HEX=$(printf '%s' "$TOKEN" | od -An -tx1 | tr -d ' \n')
if on_wire "$CAP" "$TOKEN_HEX"; then
    fail "default: the token is nowhere on the wire" "found in $CAP"
else
    pass "default: the token is nowhere on the wire"
fi
if on_wire "$CAP" "$PATTERN"; then
    fail "default: the devices' content is nowhere on the wire" "the sample is in $CAP"
else
    pass "default: the devices' content is nowhere on the wire"
fi

migrate_through_proxy clear 4242 off
assert_eq "off" "$(jf "$MIG" options.tls)" "--tls off: the migration's options say tls off"
TOKEN_HEX=$(printf '%s' "$TOKEN" | od -An -tx1 | tr -d ' \n')
if on_wire "$CAP" "$TOKEN_HEX"; then
    pass "--tls off: the token is on the wire (what TLS hides above)"
else
    fail "--tls off: the token is on the wire" "not found in $CAP"
fi
if on_wire "$CAP" "$PATTERN"; then
    pass "--tls off: the devices' content is on the wire (what TLS hides above)"
else
    fail "--tls off: the devices' content is on the wire" "the sample is not in $CAP"
fi

# ==== 2. a wrong token fails the handshake and changes nothing

mkgroup S wrong 4300 "size=1M"
mkgroup D wrong - "size=1M"
BEFORE=$(jnorm "$(njctl S devices)")
incoming D wrong --listen 127.0.0.1:0
MARK=$(wc -l <"$T/D.log")
run njctl S migrate wrong --to "$ADDR" --token "$(printf '%064d' 0)" --wait
assert_eq "1" "$RC" "wrong token: migrate --wait exits 1"
assert_contains "$OUT" "TLS handshake" "wrong token: the source's error names the TLS handshake"
assert_contains "$OUT" "does not hold this token" "wrong token: ... and the token"
assert_eq "$BEFORE" "$(jnorm "$(njctl S devices)")" "wrong token: no source device changed"
assert_eq "waiting" "$(jget "$(job_json D "$DID")" phase)" \
    "wrong token: the destination still waits (a stranger changes nothing)"
if wait_until "$STATE_WAIT" grep -q "TLS handshake failed" <(tail -n +"$((MARK + 1))" "$T/D.log"); then
    pass "wrong token: the destination logs the failed handshake"
else
    fail "wrong token: the destination logs the failed handshake" "$(tail -n 5 "$T/D.log")"
fi
# The right token still works after the stranger.
expect_exit 0 njctl S migrate wrong --to "$ADDR" --token "$TOKEN" --wait
assert_eq "completed" "$(jf "$OUT" state)" "wrong token: the right one migrates afterwards"

# ==== 3. a clear side and a TLS side refuse each other, naming --tls

mkgroup S mix 4400 "size=1M"
mkgroup D mix - "size=1M"
incoming D mix --listen 127.0.0.1:0 --tls off
run njctl S migrate mix --to "$ADDR" --token "$TOKEN" --wait
assert_eq "1" "$RC" "TLS source, clear destination: refused"
assert_contains "$OUT" "--tls" "TLS source, clear destination: the error names --tls"
assert_contains "$OUT" "same --tls on both sides" "TLS source, clear destination: ... on both sides"
assert_eq "waiting" "$(jget "$(job_json D "$DID")" phase)" \
    "TLS source, clear destination: the destination still waits"
expect_exit 0 njctl D cancel "$DID"

incoming D mix --listen 127.0.0.1:0
run njctl S migrate mix --to "$ADDR" --token "$TOKEN" --wait --tls off
assert_eq "1" "$RC" "clear source, TLS destination: refused"
assert_contains "$OUT" "--tls" "clear source, TLS destination: the error names --tls"
assert_contains "$OUT" "same --tls on both sides" "clear source, TLS destination: ... on both sides"
assert_eq "waiting" "$(jget "$(job_json D "$DID")" phase)" \
    "clear source, TLS destination: the destination still waits"

# ==== 4. a dry run in TLS, and refused in clear

expect_exit 0 njctl S migrate mix --to "$ADDR" --token "$TOKEN" --dry-run
assert_eq "true" "$(jf "$OUT" compatible)" "dry run over TLS: compatible"
run njctl S migrate mix --to "$ADDR" --token "$TOKEN" --dry-run --tls off
assert_ne "0" "$RC" "dry run in clear to a TLS destination: refused"
assert_contains "$OUT" "same --tls on both sides" "dry run in clear: the refusal names --tls"
expect_exit 0 njctl S migrate mix --to "$ADDR" --token "$TOKEN" --wait
assert_eq "completed" "$(jf "$OUT" state)" "the token is still good after both dry runs"

