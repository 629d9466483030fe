#!/usr/bin/env bash
# The HiSilicon plugin (plugins/hisi/, docs/vendors/hisi.md) with two real daemons, the real
# CLI and its sim model (attach --sim model=hisi,...): `plugins` and `show` (prerequisites with
# their fixes, the descriptor, flags 0x5); a group of hisi devices migrated between the
# daemons, checked by digest; for each rule (dev_id, qp_num, que_iso_cfg) an incompatible pair
# refused before the source moves; a match-data mismatch the descriptors cannot see (the
# stream's magic) refused by the destination DURING PRE-COPY, with --switchover manual so the
# switchover provably never ran; the interrupt fault (EBUSY when stopping) leaving the group
# running; and the P2P rule for a group of devices without P2P.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_plugin_daemons "$BUILDDIR/plugins/hisi.so"

# ==== plugins, show

expect_exit 0 njctl S plugins
assert_eq "hisi 1.1 hisi" "$(jf "$OUT" 0.name) $(jf "$OUT" 0.abi) $(jf "$OUT" 0.sim_model)" \
    "plugins: hisi, its ABI and its sim model"
assert_contains "$(jf "$OUT" 0.claims)" "pci_id=19e5:a259 variant_driver=hisi_acc_vfio_pci" "  ... claiming the HPRE VF among others"

expect_exit 0 njctl S attach --sim model=hisi,dev_id=a256,qp_num=32,iso=1,content=11 --name z0
expect_exit 0 njctl S show z0
assert_eq "hisi 5" "$(jf "$OUT" plugin) $(jf "$OUT" migration_flags)" "show: the plugin, flags 0x5 (no P2P)"
assert_eq "a256 32 1 v2" \
    "$(jf "$OUT" descriptor.dev_id) $(jf "$OUT" descriptor.qp_num) $(jf "$OUT" descriptor.que_iso_cfg) $(jf "$OUT" descriptor.stream_magic)" \
    "show: the descriptor (device ID, queue pairs, isolation, stream magic)"
assert_eq "true true true true" \
    "$(jf "$OUT" prerequisites.0.ok) $(jf "$OUT" prerequisites.1.ok) $(jf "$OUT" prerequisites.2.ok) $(jf "$OUT" prerequisites.3.ok)" \
    "show: every prerequisite holds"
expect_exit 0 njctl S attach --sim model=hisi,pf_driver=vfio-pci,qm_ver=0x21,driver=vfio-pci --name bad
expect_exit 0 njctl S show bad
assert_eq "false vfio-migctl bind ADDRESS" "$(jf "$OUT" prerequisites.0.ok) $(jf "$OUT" prerequisites.0.fix)" \
    "a VF bound elsewhere: the fix binds it"
assert_contains "$(jf "$OUT" prerequisites.2.fix)" "modprobe hisi_zip && echo" "a PF on another driver: the fix binds the native one"
assert_contains "$(jf "$OUT" prerequisites.3.message)" "version 0x21, migration needs V3 (0x30)" \
    "an old QM: said so"
expect_error INVALID_ARGUMENT njctl S attach --sim model=hisi,qp_num=0 --name nq
assert_contains "$ERR" "qp_num: '0' is not a valid value" "a bad model value is refused, naming the key"
expect_error INVALID_ARGUMENT njctl S attach --sim model=hisi,size=4K --name ns
assert_contains "$ERR" "size: has no effect with model=hisi" "the sim's content keys are refused with the model"

# ==== a group of hisi devices migrates, checked by digest

expect_exit 0 njctl S attach --sim model=hisi,dev_id=a251,qp_num=64,content=12 --name z1
expect_exit 0 njctl S group create g z0 z1
expect_exit 0 njctl D attach --sim model=hisi,dev_id=a256,qp_num=32,iso=1,content=99 --name z0
expect_exit 0 njctl D attach --sim model=hisi,dev_id=a251,qp_num=64,content=98 --name z1
expect_exit 0 njctl D group create g z0 z1
assert_ne "$(jf "$(njctl S show z0)" digest)" "$(jf "$(njctl D show z0)" digest)" "the two sides start different"
incoming D g --listen 127.0.0.1:0 --resume
expect_exit 0 njctl S --timeout 20 migrate g --to "$ADDR" --token "$TOKEN" --wait
assert_eq "completed" "$(jf "$OUT" state)" "a group of two hisi devices migrated"
for dev in z0 z1; do
    assert_eq "$(jf "$(njctl S show $dev)" digest)" "$(jf "$(njctl D show $dev)" digest)" \
        "  ... $dev: the destination has the source's content"
done
assert_eq "running" "$(jf "$(njctl D show z0)" state)" "  ... and runs there"

# ==== each rule: an incompatible pair refused before the source moves

check_refused() { # NAME SRC-OPTS DST-OPTS EXPECTED-ERROR
    local name=$1 before after
    expect_exit 0 njctl S attach --sim "model=hisi,$2" --name "$name"
    expect_exit 0 njctl S group create "g$name" "$name"
    expect_exit 0 njctl D attach --sim "model=hisi,$3" --name "$name"
    expect_exit 0 njctl D group create "g$name" "$name"
    before=$(njctl S group show "g$name")
    incoming D "g$name" --listen 127.0.0.1:0
    expect_exit 1 njctl S --timeout 20 migrate "g$name" --to "$ADDR" --token "$TOKEN" --wait
    assert_contains "$ERR" "$4" "$name: refused, naming the field and both values"
    after=$(njctl S group show "g$name")
    assert_eq "$(jf "$before" last_transition)" "$(jf "$after" last_transition)" \
        "  ... the source's last transition unchanged"
    assert_eq "running" "$(jf "$(njctl S show "$name")" state)" "  ... its device running"
}
check_refused rd dev_id=a251 dev_id=a259 "device 'rd': dev_id: source 'a251', destination 'a259'"
check_refused rq qp_num=64 qp_num=32 "device 'rq': qp_num: source '64', destination '32'"
check_refused ri iso=0 iso=1 "device 'ri': que_iso_cfg: source '0', destination '1'"

# ==== the match data checked by the destination during pre-copy: a source writing a magic
# this destination's driver does not take (stream_magic is informational, so the descriptors
# agree); --switchover manual: the switchover cannot have run

expect_exit 0 njctl S attach --sim model=hisi,magic=0x1111111111111111,content=5 --name pm
expect_exit 0 njctl S group create gpm pm
expect_exit 0 njctl D attach --sim model=hisi --name pm
expect_exit 0 njctl D group create gpm pm
DIGEST=$(jf "$(njctl S show pm)" digest)
incoming D gpm --listen 127.0.0.1:0
expect_exit 1 njctl S --timeout 20 migrate gpm --to "$ADDR" --token "$TOKEN" --switchover manual --wait
assert_contains "$ERR" "acc_magic: the stream has 0x1111111111111111" \
    "a match mismatch is refused during pre-copy, naming the field"
expect_exit 0 njctl S show pm
assert_eq "running $DIGEST" "$(jf "$OUT" state) $(jf "$OUT" digest)" "  ... the source running, its content as it was"
expect_exit 0 njctl D show pm
assert_eq "running" "$(jf "$OUT" state)" "  ... the destination device back to running"

# ==== the interrupt fault: stopping fails with EBUSY; the group goes back to running

expect_exit 0 njctl S attach --sim model=hisi,irq_pending=1 --name q0
expect_exit 0 njctl S attach --sim model=hisi --name q1
expect_exit 0 njctl S group create gq q0 q1
expect_error FAILED_PRECONDITION njctl S group state gq stop
assert_contains "$ERR" "device 'q0' lacks P2P (its migration flags are stop_copy+pre_copy)" "the P2P rule: a group of devices without P2P needs --force, saying why"
expect_exit 1 njctl S group state gq stop --force
assert_contains "$ERR" "EBUSY" "stopping a device with pending interrupts fails with EBUSY"
assert_eq "running" "$(jf "$(njctl S show q0)" state)" "  ... the device stays running (the arc's start)"
expect_exit 0 njctl D attach --sim model=hisi --name q0
expect_exit 0 njctl D attach --sim model=hisi --name q1
expect_exit 0 njctl D group create gq q0 q1
incoming D gq --listen 127.0.0.1:0
expect_exit 1 njctl S --timeout 20 migrate gq --to "$ADDR" --token "$TOKEN" --wait
assert_contains "$ERR" "EBUSY" "a migration whose switchover meets the fault fails with EBUSY"
assert_eq "running running" "$(jf "$(njctl S show q0)" state) $(jf "$(njctl S show q1)" state)" \
    "  ... and the source group is back to running"
