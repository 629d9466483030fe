#!/usr/bin/env bash
# Addresses a peer can use (issue 10 item 5): `incoming --listen 0.0.0.0:0` printed
# `0.0.0.0:PORT` and a migrate command no other host can use. The answer now has
# peer_addresses (this host's interface addresses with the bound port, or the address of the
# route to --peer), the text prints one migrate line per address, and the printed line,
# pasted on the source daemon word for word, migrates. A specific listen address is offered
# as it is; a --peer that is not an address is refused before anything is prepared.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_named_daemon S
start_named_daemon D

# the addresses in a JSON answer, one per line
peer_addrs() { jget "$1" 'peer_addresses[]' | tr ' ' '\n'; }

# ---- 0.0.0.0: interface addresses, never the wildcard

mkgroup S vm1 100 "size=256K"
mkgroup D vm1 - "size=256K"
expect_exit 0 njctl D incoming vm1 --listen 0.0.0.0:0
port=$(jget "$OUT" address | sed 's/.*://')
assert_match "$(jget "$OUT" address)" '^0\.0\.0\.0:[1-9][0-9]*$' "address: what was bound"
addrs=$(peer_addrs "$OUT")
assert_ne "" "$addrs" "0.0.0.0: at least one peer address"
while read -r a; do
    assert_match "$a" "^[0-9.]+:$port\$" "0.0.0.0: $a is an IPv4 address with the bound port"
    assert_ne "0.0.0.0:$port" "$a" "0.0.0.0: $a is not the wildcard"
done <<<"$addrs"
if grep -qv '^127\.' <<<"$addrs"; then
    assert_not_contains "$addrs" "127.0.0.1:" "0.0.0.0: loopback left out when the host has another"
fi
expect_exit 0 njctl D cancel "$(jget "$OUT" id)"

# The text prints one migrate line per peer address; the first, pasted on S, migrates.
expect_exit 0 nctl D incoming vm1 --listen 0.0.0.0:0
assert_not_contains "$OUT" "--to 0.0.0.0:" "text: no migrate line with the wildcard"
line=$(grep -m1 '^  vfio-migctl migrate ' <<<"$OUT")
assert_eq "$(wc -l <<<"$addrs")" "$(grep -c '^  vfio-migctl migrate ' <<<"$OUT")" \
    "text: one migrate line per peer address"
read -r -a words <<<"${line#  vfio-migctl }"
expect_exit 0 timeout -k 2 120 "$VFIO_MIGCTL" --socket "$S_SOCK" "${words[@]}" --wait
assert_ne "" "$(dev_prop D vm1_0 digest)" "the destination device has a digest"
assert_eq "$(dev_prop S vm1_0 digest)" "$(dev_prop D vm1_0 digest)" \
    "the printed migrate line, pasted on the source, migrated the device"

# ---- --peer: the address on the route to the source

mkgroup D vm2 - "size=64K"
expect_exit 0 njctl D incoming vm2 --listen 0.0.0.0:0 --peer 127.0.0.1
port=$(jget "$OUT" address | sed 's/.*://')
assert_eq "127.0.0.1:$port" "$(peer_addrs "$OUT")" "--peer 127.0.0.1: the route's address only"
expect_exit 0 njctl D cancel "$(jget "$OUT" id)"

# ---- [::]: no wildcard, no link-local

mkgroup D vm3 - "size=64K"
expect_exit 0 njctl D incoming vm3 --listen '[::]:0'
addrs=$(peer_addrs "$OUT")
assert_ne "" "$addrs" "[::]: at least one peer address"
assert_not_contains "$addrs" "[::]:" "[::]: the wildcard is not offered"
assert_not_contains "$addrs" "[fe80:" "[::]: no link-local address (it needs a scope)"
expect_exit 0 njctl D cancel "$(jget "$OUT" id)"

# ---- a specific address is offered as it is

mkgroup D vm4 - "size=64K"
expect_exit 0 njctl D incoming vm4 --listen 127.0.0.1:0
assert_eq "$(jget "$OUT" address)" "$(peer_addrs "$OUT")" "127.0.0.1: the bound address alone"
expect_exit 0 njctl D cancel "$(jget "$OUT" id)"

# ---- a bad --peer changes nothing

jobs_before=$(jget "$(njctl D jobs)" '#')
mkgroup D vm5 - "size=64K"
expect_error INVALID_ARGUMENT njctl D incoming vm5 --listen 0.0.0.0:0 --peer 'not an address'
assert_contains "$ERR" "'not an address' is not a numeric host address" "--peer: says what is wrong"
expect_error INVALID_ARGUMENT njctl D incoming vm5 --listen 0.0.0.0:0 --peer 127.0.0.1:80
assert_eq "$jobs_before" "$(jget "$(njctl D jobs)" '#')" "--peer refused: no migration prepared"
