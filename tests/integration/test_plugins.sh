#!/usr/bin/env bash
# Vendor plugins (issue 13) with two real daemons and the real CLI: what `plugins` lists and
# what a plugin of another ABI major leaves in the log (one line, nothing more); what `show`
# adds for a device a plugin claims (plugin, prerequisites, descriptor); the mtty plugin's
# rules deciding a migration between sim devices that say they are mtty mdevs (driver=mtty,
# mdev_type=mtty-N): mtty-1 -> mtty-2 refused before the source moves, naming the field and
# both values, mtty-2 -> mtty-2 migrated and checked by digest; a plugin whose hook fails
# refuses the migration with its words and leaves the device as it was.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PLUGINS=$T/plugins
mkdir -p "$PLUGINS"
ln -s "$BUILDDIR/plugins/mtty.so" "$PLUGINS/mtty.so"
for p in minimal other_major failing vendor; do
    ln -s "$BUILDDIR/test-plugins/$p.so" "$PLUGINS/$p.so"
done

start_named_daemon S --plugin-dir "$PLUGINS"
start_named_daemon D --plugin-dir "$PLUGINS"

# ==== the plugins loaded, and the one refused

expect_exit 0 njctl S plugins
PL=$OUT
NAMES=$("$PY" -c 'import json, sys; print(" ".join(p["name"] for p in json.loads(sys.argv[1])))' "$PL")
assert_eq "failing minimal mtty vendor" "$NAMES" \
    "plugins: the four of ABI 1, in file-name order; other_major is not there"
assert_eq "1.0" "$(jf "$PL" 2.abi)" "plugins: each with its abi"
assert_eq "1.0" "$(jf "$PL" 2.version)" "plugins: each with its version"
assert_eq "driver=mtty mdev_type=mtty-2" "$(jf "$PL" 2.claims.1)" "plugins: the claims"
N=$(grep -c "other_major" "$T/S.log" || true)
assert_eq 1 "$N" "another ABI major: exactly one log line"
assert_contains "$(grep other_major "$T/S.log")" "built for plugin ABI 2.0, this daemon expects ABI major 1" \
    "  ... saying expected vs found"
assert_contains "$(grep other_major "$T/S.log")" "rebuild it against" "  ... and what to do"

# ==== show: plugin, prerequisites, descriptor

expect_exit 0 njctl S attach --sim driver=mtty,mdev_type=mtty-1,size=96 --name one
expect_exit 0 njctl S attach --sim driver=mtty,mdev_type=mtty-2,size=96 --name two
expect_exit 0 njctl S attach --sim size=96 --name plain
expect_exit 0 njctl S show two
assert_eq "mtty" "$(jf "$OUT" plugin)" "show: the plugin that claims the device"
assert_eq "2" "$(jf "$OUT" descriptor.ports)" "show: the descriptor's ports"
assert_eq "1.0" "$(jf "$OUT" descriptor.stream_version)" "show: the descriptor's stream version"
assert_eq "bound to the mtty driver" "$(jf "$OUT" prerequisites.0.check)" "show: prerequisites"
assert_eq "true" "$(jf "$OUT" prerequisites.0.ok)" "  ... that hold"
expect_exit 0 njctl S show plain
assert_eq "null" "$(jf "$OUT" plugin)" "show: plugin null for a device no plugin claims"
assert_eq "0" "$(jf "$OUT" "prerequisites.#")" "  ... and no prerequisites"
expect_exit 0 nctl S show two
assert_contains "$OUT" "ports = 2 (equal)" "show (text): the descriptor with its rules"

# ==== mtty-1 -> mtty-2: refused before the source moves, naming the field

expect_exit 0 njctl S group create g1 one
expect_exit 0 njctl D attach --sim driver=mtty,mdev_type=mtty-2,size=96 --name one
expect_exit 0 njctl D group create g1 one
BEFORE=$(njctl S show one)
incoming D g1 --listen 127.0.0.1:0
expect_exit 1 njctl S --timeout 10 migrate g1 --to "$ADDR" --token "$TOKEN" --wait
assert_contains "$ERR" "device 'one': ports: source '1', destination '2'" \
    "mtty-1 -> mtty-2 refused, naming the device, the field and both values"
AFTER=$(njctl S show one)
assert_eq "running" "$(jf "$AFTER" state)" "  ... the source device still running"
assert_eq "$(jf "$BEFORE" stats.transitions)" "$(jf "$AFTER" stats.transitions)" \
    "  ... and not one transition more"
assert_eq "$(jf "$BEFORE" stats.arcs)" "$(jf "$AFTER" stats.arcs)" "  ... nor one arc"

# ==== mtty-2 -> mtty-2: migrated, same content

expect_exit 0 njctl S group create g2 two
expect_exit 0 njctl D attach --sim driver=mtty,mdev_type=mtty-2,size=96 --name two
expect_exit 0 njctl D group create g2 two
incoming D g2 --listen 127.0.0.1:0 --resume
expect_exit 0 njctl S --timeout 10 migrate g2 --to "$ADDR" --token "$TOKEN" --wait
assert_eq "$(jf "$(njctl S show two)" digest)" "$(jf "$(njctl D show two)" digest)" \
    "mtty-2 -> mtty-2 migrated: the destination has the source's content"

# ==== a plugin whose hook fails: refused with its words, the device as it was

expect_exit 0 njctl S attach --sim driver=faildrv,size=96 --name f
expect_exit 0 njctl S show f
assert_contains "$(jf "$OUT" plugin_error)" "plugin 'failing': the firmware of 'f' did not answer" \
    "show: the failing hook's words"
expect_exit 0 njctl S group create gf f
expect_exit 0 njctl D attach --sim size=96 --name f
expect_exit 0 njctl D group create gf f
incoming D gf --listen 127.0.0.1:0
BEFORE=$(njctl S show f)
expect_exit 1 njctl S --timeout 10 migrate gf --to "$ADDR" --token "$TOKEN" --wait
assert_contains "$ERR" "the firmware of 'f' did not answer" "a failing descriptor hook refuses the migration"
AFTER=$(njctl S show f)
assert_eq "running" "$(jf "$AFTER" state)" "  ... the device still running"
assert_eq "$(jf "$BEFORE" stats.transitions)" "$(jf "$AFTER" stats.transitions)" \
    "  ... and not one transition more"

