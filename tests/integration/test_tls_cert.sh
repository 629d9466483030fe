#!/usr/bin/env bash
# Migrations in TLS 1.3 with certificates (--tls cert, mTLS; issue 11 item 7), between real
# daemons whose certificates this test makes with openssl in its temporary directory:
#   1. both daemons with a certificate of one CA: a migration with --tls cert on both sides
#      completes, its options say cert, and each daemon logs the other's certificate name;
#   2. a daemon whose certificate another CA signed is refused during the handshake, as a
#      source and as a destination; nothing changes on either side (the destination waits on,
#      the source's devices are untouched);
#   3. --tls cert on one side and psk on the other refuse each other, naming --tls;
#   4. a daemon without a certificate refuses --tls cert at the call, saying what to set;
#   5. a missing key file, a key readable by others, a key that is a symlink and a
#      certificate with another key each stop the daemon at start with a sentence naming it.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PKI=$T/pki
mkdir -p "$PKI"

# new_ca NAME : a self-signed CA (P-256) in $PKI/NAME.pem, its key in $PKI/NAME.key
new_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=$1" -keyout "$PKI/$1.key" -out "$PKI/$1.pem" 2>/dev/null
}
# new_cert NAME CA : a certificate CN=NAME signed by CA, key mode 0600
new_cert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
        -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.pem" -CAkey "$PKI/$2.key" \
        -CAcreateserial -days 2 -out "$PKI/$1.pem" 2>/dev/null
    chmod 600 "$PKI/$1.key"
}
new_ca migration-ca
new_ca other-ca
new_cert daemon-s migration-ca
new_cert daemon-d migration-ca
new_cert rogue other-ca
for f in migration-ca.pem daemon-s.pem daemon-d.pem rogue.pem; do
    if [[ -s "$PKI/$f" ]]; then pass "openssl made $f"; else fail "openssl made $f"; exit 1; fi
done

# cert_args NAME [CA] : the daemon options of certificate NAME, trusting CA (migration-ca)
cert_args() {
    printf '%s\n' --tls-cert "$PKI/$1.pem" --tls-key "$PKI/$1.key" \
        --tls-ca "$PKI/${2:-migration-ca}.pem"
}
mapfile -t S_ARGS < <(cert_args daemon-s)
mapfile -t D_ARGS < <(cert_args daemon-d)
mapfile -t R_ARGS < <(cert_args rogue other-ca)
start_named_daemon S "${S_ARGS[@]}"
start_named_daemon D "${D_ARGS[@]}"
start_named_daemon R "${R_ARGS[@]}"
start_named_daemon P # no certificate

# log_after NAME MARK TEXT : whether NAME's log has TEXT past line MARK (waits for it)
log_after() {
    wait_until "$STATE_WAIT" grep -qF -- "$3" <(tail -n +"$(($2 + 1))" "$T/$1.log")
}

# ==== 1. a migration with certificates

mkgroup S good 5100 "size=2M"
mkgroup D good - "size=2M"
MARK_S=$(wc -l <"$T/S.log")
MARK_D=$(wc -l <"$T/D.log")
incoming D good --listen 127.0.0.1:0 --resume --tls cert
expect_exit 0 njctl S migrate good --to "$ADDR" --token "$TOKEN" --wait --tls cert
assert_eq "completed" "$(jf "$OUT" state)" "cert: the migration completed"
assert_eq "cert" "$(jf "$OUT" options.tls)" "cert: the migration's options say tls cert"
assert_eq "$(dev_prop S good_0 digest)" "$(dev_prop D good_0 digest)" \
    "cert: the destination holds the source's content"
if log_after D "$MARK_D" "certificate '/CN=daemon-s'"; then
    pass "cert: the destination logs the source's certificate name"
else
    fail "cert: the destination logs the source's certificate name" "$(tail -n 5 "$T/D.log")"
fi
if log_after S "$MARK_S" "certificate '/CN=daemon-d'"; then
    pass "cert: the source logs the destination's certificate name"
else
    fail "cert: the source logs the destination's certificate name" "$(tail -n 5 "$T/S.log")"
fi

# ==== 2. a certificate of another CA is refused in the handshake; nothing changes

# refused_cert SRC DST GROUP SEED WHAT TEXT : a migration SRC -> DST with --tls cert on both
# sides fails, the error holding TEXT; SRC's devices are as before, DST's job still waits
refused_cert() {
    local src=$1 dst=$2 group=$3 seed=$4 what=$5 text=$6 before
    mkgroup "$src" "$group" "$seed" "size=1M"
    mkgroup "$dst" "$group" - "size=1M"
    before=$(jnorm "$(njctl "$src" devices)")
    incoming "$dst" "$group" --listen 127.0.0.1:0 --tls cert
    run njctl "$src" migrate "$group" --to "$ADDR" --token "$TOKEN" --wait --tls cert
    assert_eq "1" "$RC" "$what: migrate --wait exits 1"
    assert_contains "$OUT" "$text" "$what: the error says '$text'"
    assert_eq "$before" "$(jnorm "$(njctl "$src" devices)")" "$what: no source device changed"
    assert_eq "waiting" "$(jget "$(job_json "$dst" "$DID")" phase)" \
        "$what: the destination still waits"
}

MARK_D=$(wc -l <"$T/D.log")
refused_cert R D rogue 5200 "rogue source" "TLS handshake"
if log_after D "$MARK_D" "not one signed by this daemon's [migration] tls_ca"; then
    pass "rogue source: the destination logs the refused certificate"
else
    fail "rogue source: the destination logs the refused certificate" "$(tail -n 5 "$T/D.log")"
fi
# The right source still migrates to it afterwards.
mkgroup S rogue 5200 "size=1M"
expect_exit 0 njctl S migrate rogue --to "$ADDR" --token "$TOKEN" --wait --tls cert
assert_eq "completed" "$(jf "$OUT" state)" "rogue source: the right source migrates afterwards"

refused_cert S R torogue 5300 "rogue destination" "certificate"

# ==== 3. cert against psk, both ways, naming --tls

# tls_mismatch SOURCE_TLS DEST_TLS WHAT: D listens for group mix with --tls DEST_TLS; S's
# migration with --tls SOURCE_TLS is refused, naming --tls, and D still waits.
tls_mismatch() {
    incoming D mix --listen 127.0.0.1:0 --tls "$2"
    run njctl S migrate mix --to "$ADDR" --token "$TOKEN" --wait --tls "$1"
    assert_eq "1" "$RC" "$3: refused"
    assert_contains "$OUT" "same --tls on both sides" "$3: names --tls"
    assert_eq "waiting" "$(jget "$(job_json D "$DID")" phase)" "$3: the destination still waits"
}

mkgroup S mix 5400 "size=1M"
mkgroup D mix - "size=1M"
tls_mismatch psk cert "psk source, cert destination"
expect_exit 0 njctl D cancel "$DID"
tls_mismatch cert psk "cert source, psk destination"
expect_exit 0 njctl S migrate mix --to "$ADDR" --token "$TOKEN" --wait --tls psk
assert_eq "completed" "$(jf "$OUT" state)" "the token is still good after both refusals"

# ==== 4. a daemon without a certificate refuses --tls cert at the call

mkgroup P nocert 5500 "size=1M"
run njctl P incoming nocert --listen 127.0.0.1:0 --tls cert
assert_ne "0" "$RC" "no certificate: incoming --tls cert is refused"
assert_contains "$OUT$ERR" "tls_cert, tls_key and tls_ca" "no certificate: the refusal says what to set"
run njctl P migrate nocert --to 127.0.0.1:9 --token "$(printf '%064d' 0)" --tls cert
assert_ne "0" "$RC" "no certificate: migrate --tls cert is refused"
assert_contains "$OUT$ERR" "tls_cert, tls_key and tls_ca" "no certificate: ... saying what to set"
assert_eq "running" "$(dev_prop P nocert_0 state)" "no certificate: the device did not move"

# ==== 5. bad files stop the daemon at start, naming them

# refused_at_start WHAT TEXT ARGS... : the daemon exits non-zero, its output holding TEXT
refused_at_start() {
    local what=$1 text=$2
    shift 2
    run timeout -k 1 "$DAEMON_WAIT" "$VFIO_MIGD" --socket "$T/bad.sock" --allowed-dirs \
        "$ALLOW_DIR" "$@"
    if [[ "$RC" != 0 && "$RC" != 124 && "$RC" != 137 ]]; then
        pass "$what: the daemon does not start (exit $RC)"
    else
        fail "$what: the daemon does not start" "exit $RC"
    fi
    assert_contains "$OUT$ERR" "$text" "$what: it says '$text'"
}
refused_at_start "missing key" "cannot open the key file '$PKI/none.key'" \
    --tls-cert "$PKI/daemon-s.pem" --tls-key "$PKI/none.key" --tls-ca "$PKI/migration-ca.pem"
cp "$PKI/daemon-s.key" "$PKI/open.key"
chmod 644 "$PKI/open.key"
refused_at_start "key readable by others" "chmod 600 $PKI/open.key" \
    --tls-cert "$PKI/daemon-s.pem" --tls-key "$PKI/open.key" --tls-ca "$PKI/migration-ca.pem"
ln -s "$PKI/daemon-s.key" "$PKI/link.key"
refused_at_start "key through a symlink" "cannot open the key file '$PKI/link.key'" \
    --tls-cert "$PKI/daemon-s.pem" --tls-key "$PKI/link.key" --tls-ca "$PKI/migration-ca.pem"
refused_at_start "another certificate's key" "is not the key of the certificate" \
    --tls-cert "$PKI/daemon-s.pem" --tls-key "$PKI/daemon-d.key" --tls-ca "$PKI/migration-ca.pem"
refused_at_start "tls = cert without files" "tls = cert needs this daemon's certificate" \
    --tls cert
refused_at_start "only some of the three" "tls_ca is not set" \
    --tls-cert "$PKI/daemon-s.pem" --tls-key "$PKI/daemon-s.key"
