#!/usr/bin/env bash
# Vendor plugins (issue 13) with two real daemons and the real CLI: what `plugins` lists and
# what a plugin of another ABI major leaves in the log (one line, nothing more); what `show`
# adds for a device a plugin claims (plugin, prerequisites, descriptor); the mtty plugin's
# rules deciding a migration between sim devices that say they are mtty mdevs (driver=mtty,
# mdev_type=mtty-N): mtty-1 -> mtty-2 refused before the source moves, naming the field and
# both values, mtty-2 -> mtty-2 migrated and checked by digest; a plugin whose hook fails
# refuses the migration with its words and leaves the device as it was. Before anything
# stops (the vendor test plugin's rules): migrate --dry-run lists every mismatch and moves
# nothing, the token then still migrates; a refused migrate names every field with both
# values; describe on one daemon, check on the other.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_plugin_daemons "$BUILDDIR/plugins/mtty.so" \
    "$BUILDDIR"/test-plugins/{minimal,other_major,failing,vendor,seam}.so

# ==== the plugins loaded, and the one refused

expect_exit 0 njctl S plugins
PL=$OUT
NAMES=$("$PY" -c 'import json, sys; print(" ".join(p["name"] for p in json.loads(sys.argv[1])))' "$PL")
assert_eq "failing minimal mtty seam vendor" "$NAMES" \
    "plugins: the five of ABI 1, in file-name order; other_major is not there"
assert_eq "1.1" "$(jf "$PL" 2.abi)" "plugins: each with its abi"
assert_eq "seam null" "$(jf "$PL" 3.sim_model) $(jf "$PL" 2.sim_model)" "plugins: the sim model of each"
assert_eq "1.0" "$(jf "$PL" 2.version)" "plugins: each with its version"
assert_eq "driver=mtty mdev_type=mtty-2" "$(jf "$PL" 2.claims.1)" "plugins: the claims"
N=$(grep -c "other_major" "$T/S.log" || true)
assert_eq 1 "$N" "another ABI major: exactly one log line"
assert_contains "$(grep other_major "$T/S.log")" "built for plugin ABI 2.0, this daemon expects ABI major 1" \
    "  ... saying expected vs found"
assert_contains "$(grep other_major "$T/S.log")" "rebuild it against" "  ... and what to do"

# ==== a plugin's sim model (tests/plugins/seam.c): attach --sim model=NAME, its keys, a
# migration through the model's streams between two daemons

expect_error INVALID_ARGUMENT njctl S attach --sim model=nosuch,size=96 --name nm
assert_contains "$ERR" "unknown sim model 'nosuch' (known: generic, seam)" \
    "an unknown model is refused, naming the known ones"
assert_contains "$ERR" "vfio-migctl plugins" "  ... and the command that lists them"
expect_error INVALID_ARGUMENT njctl S attach --sim model=seam,colour=red --name nm
assert_contains "$ERR" "seam: unknown option or bad value 'colour'" "the model refuses a key it does not know"
expect_exit 0 njctl S attach --sim content=42 --model seam --name m
assert_eq "seam 5" "$(jf "$OUT" plugin) $(jf "$OUT" migration_flags)" \
    "attach --model: the model's plugin and the model's flags"
expect_exit 0 njctl D attach --sim model=seam,accept=42 --name m
expect_exit 0 njctl S group create gm m
expect_exit 0 njctl D group create gm m
incoming D gm --listen 127.0.0.1:0 --resume
expect_exit 0 njctl S --timeout 10 migrate gm --to "$ADDR" --token "$TOKEN" --wait
assert_eq "5ea000000000002a" "$(jf "$(njctl D show m)" digest)" \
    "a migration through the model's streams: the destination has the source's content"

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


# ==== before anything stops: dry run, describe, check (the vendor test plugin: fw at_least,
# psid equal, note info)

VOPTS=pci=3b:00.2,pci_id=1234:abcd,driver=vendor_vfio,size=96
expect_exit 0 njctl S attach --sim "$VOPTS,label=22.36.1010/MT_1" --name nic0
expect_exit 0 njctl S group create gv nic0
expect_exit 0 njctl D attach --sim "$VOPTS,label=22.35.9/MT_2" --name nic0
expect_exit 0 njctl D group create gv nic0
incoming D gv --listen 127.0.0.1:0
BEFORE=$(njctl S show nic0)
expect_exit 1 njctl S migrate gv --to "$ADDR" --token "$TOKEN" --dry-run
assert_eq "false 2" "$(jf "$OUT" compatible) $(jf "$OUT" total)" "dry run: not compatible, two mismatches"
assert_eq "nic0 fw 22.36.1010 22.35.9" \
    "$(jf "$OUT" mismatches.0.device) $(jf "$OUT" mismatches.0.field) $(jf "$OUT" mismatches.0.source) $(jf "$OUT" mismatches.0.destination)" \
    "  ... the firmware below the source's (at_least), with both values"
assert_eq "psid MT_1 MT_2" "$(jf "$OUT" mismatches.1.field) $(jf "$OUT" mismatches.1.source) $(jf "$OUT" mismatches.1.destination)" \
    "  ... and the PSID (equal); the note (info) is not compared"
AFTER=$(njctl S show nic0)
assert_eq "running $(jf "$BEFORE" stats.transitions)" "$(jf "$AFTER" state) $(jf "$AFTER" stats.transitions)" \
    "  ... the source device still running, not one transition run"
expect_exit 0 njctl D job "$DID"
assert_eq "waiting" "$(jf "$OUT" phase)" "  ... the destination's migration still waits"
expect_exit 1 nctl S migrate gv --to "$ADDR" --token "$TOKEN" --dry-run
assert_contains "$OUT" "device 'nic0': fw: source '22.36.1010', destination '22.35.9'" "dry run (text): each mismatch"
expect_error PERMISSION_DENIED njctl S migrate gv --to "$ADDR" --token "$(printf '%064d' 7)" --dry-run
assert_contains "$ERR" "does not hold this token" "dry run with a wrong token: refused, saying so"

# A refused migration lists every mismatch, before the source moves
expect_exit 1 njctl S --timeout 10 migrate gv --to "$ADDR" --token "$TOKEN" --wait
assert_contains "$ERR" "device 'nic0': fw: source '22.36.1010', destination '22.35.9'; device 'nic0': psid: source 'MT_1', destination 'MT_2'" \
    "a refused migrate names every field with both values"
assert_eq "running $(jf "$BEFORE" stats.transitions)" "$(jf "$(njctl S show nic0)" state) $(jf "$(njctl S show nic0)" stats.transitions)" \
    "  ... the source device still running, not one transition run"

# A compatible destination: the dry run says so, and the token still serves the migration
expect_exit 0 njctl D attach --sim "$VOPTS,label=22.37/MT_1" --name nic1
expect_exit 0 njctl S attach --sim "$VOPTS,label=22.36.1010/MT_1" --name nic1
expect_exit 0 njctl S group create gw nic1
expect_exit 0 njctl D group create gw nic1
incoming D gw --listen 127.0.0.1:0 --resume
expect_exit 0 njctl S migrate gw --to "$ADDR" --token "$TOKEN" --dry-run
assert_eq "true 0" "$(jf "$OUT" compatible) $(jf "$OUT" "mismatches.#")" "dry run: compatible (newer firmware), no mismatch"
expect_exit 0 njctl S --timeout 10 migrate gw --to "$ADDR" --token "$TOKEN" --wait
assert_eq "completed" "$(jf "$OUT" state)" "  ... and the same token then migrates the group: it was not spent"

# describe on one host, check on the other (the daemon compares)
expect_exit 0 nctl S describe nic0
printf '%s\n' "$OUT" >"$T/nic0.json"
assert_eq "vendor 7 sim" "$(jf "$OUT" plugin) $(jf "$OUT" migration_flags) $(jf "$OUT" backend)" \
    "describe: the plugin, the flags and the back-end"
assert_eq "fw 22.36.1010 at_least" "$(jf "$OUT" fields.2.name) $(jf "$OUT" fields.2.value) $(jf "$OUT" fields.2.rule)" \
    "describe: each field with its value and rule"
expect_exit 1 njctl D check "$T/nic0.json" nic0
assert_eq "false fw psid" "$(jf "$OUT" compatible) $(jf "$OUT" mismatches.0.field) $(jf "$OUT" mismatches.1.field)" \
    "check: the other host's device could not migrate into D's nic0 (fw, psid)"
expect_exit 0 njctl D check "$T/nic0.json" nic1
assert_eq "true" "$(jf "$OUT" compatible)" "check: ... but into D's nic1"
printf '{"backend": "sim"}' >"$T/bad.json"
expect_exit 1 nctl D check "$T/bad.json" nic1
assert_contains "$ERR" "lacks migration_flags" "check: a file that is not a descriptor is refused, saying why"
