#!/usr/bin/env bash
# The mlx5 plugin (plugins/mlx5, docs/vendors/mlx5.md) with two real daemons and the real CLI,
# on sim devices that say they are ConnectX VFs (pci_id=15b3:101e): what `show` reports
# (plugin, prerequisites with their fixes, descriptor); the firmware's limit of 4 VFs of one
# PF migrating at once (a fifth migration waits in phase "waiting" and says so in the log,
# then starts when one of the four ends; a group of 5 such VFs is refused).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PLUGINS=$T/plugins
mkdir -p "$PLUGINS"
ln -s "$BUILDDIR/plugins/mlx5.so" "$PLUGINS/mlx5.so"
start_named_daemon S --plugin-dir "$PLUGINS"
start_named_daemon D --plugin-dir "$PLUGINS"

VF=pci_id=15b3:101e,driver=mlx5_vfio_pci,pf=3b:00.0,size=64K

# ==== show: plugin, prerequisites and their fixes, descriptor

expect_exit 0 njctl S plugins
assert_eq "mlx5" "$(jf "$OUT" 0.name)" "plugins: mlx5 loaded"
expect_exit 0 njctl S attach --sim "$VF,pci=3b:00.2" --name nic0
expect_exit 0 njctl S show nic0
assert_eq "mlx5" "$(jf "$OUT" plugin)" "show: the mlx5 plugin claims 15b3:101e"
assert_eq "bound to mlx5_vfio_pci true" "$(jf "$OUT" prerequisites.0.check) $(jf "$OUT" prerequisites.0.ok)" \
    "show: bound to the variant driver"
assert_eq "PF eswitch in switchdev mode true" "$(jf "$OUT" prerequisites.1.check) $(jf "$OUT" prerequisites.1.ok)" \
    "show: the PF's eswitch"
assert_eq "VF port function migratable true" "$(jf "$OUT" prerequisites.2.check) $(jf "$OUT" prerequisites.2.ok)" \
    "show: the VF's port function"
assert_eq "101e" "$(jf "$OUT" descriptor.device_id)" "show: descriptor device_id"
assert_eq "yes" "$(jf "$OUT" descriptor.chunk_mode)" "show: descriptor chunk_mode"
assert_match "$(jf "$OUT" descriptor.psid)" '^MT_[0-9]+$' "show: descriptor psid"

expect_exit 0 njctl S attach --sim "pci_id=15b3:101e,driver=vfio-pci,pci=3b:00.3,pf=3b:00.0,migratable=0" --name bad
expect_exit 0 njctl S show bad
assert_eq "false" "$(jf "$OUT" prerequisites.0.ok)" "show: plain vfio-pci is not enough"
assert_contains "$(jf "$OUT" prerequisites.0.message)" "bound to vfio-pci, not mlx5_vfio_pci" "  ... saying so"
assert_eq "vfio-migctl bind 0000:3b:00.3" "$(jf "$OUT" prerequisites.0.fix)" "  ... with the command that binds it"
assert_eq "false" "$(jf "$OUT" prerequisites.2.ok)" "show: migratable disabled"
assert_contains "$(jf "$OUT" prerequisites.2.fix)" \
    "devlink port function set pci/0000:3b:00.0/1 migratable enable && echo 0000:3b:00.3 > /sys/bus/pci/drivers/mlx5_vfio_pci/unbind" \
    "  ... the fix enables it, then rebinds"
expect_exit 0 nctl S show bad
assert_contains "$OUT" "devlink port function set" "show (text): the fix"
expect_exit 0 njctl S detach bad

# ==== at most 4 VFs of one PF migrate at once: the fifth waits, then starts

IDS=()
for i in 1 2 3 4 5; do
    if [[ $i -gt 1 ]]; then
        expect_exit 0 njctl S attach --sim "$VF,pci=3b:00.$((i + 1))" --name "nic$((i - 1))"
    fi
    expect_exit 0 njctl S group create "q$i" "nic$((i - 1))"
    expect_exit 0 njctl D attach --sim "$VF,pci=3b:00.$((i + 1))" --name "nic$((i - 1))"
    expect_exit 0 njctl D group create "q$i" "nic$((i - 1))"
    incoming D "q$i" --listen 127.0.0.1:0
    expect_exit 0 njctl S migrate "q$i" --to "$ADDR" --token "$TOKEN" --switchover manual
    IDS+=("$(jf "$OUT" id)")
    if [[ $i -le 4 ]]; then
        wait_job S "${IDS[-1]}" "$STATE_WAIT" ready over
        assert_eq "ready" "$(jf "$JOB" phase)" "VF $i of the PF: migrating (waits in ready)"
    fi
done
expect_exit 0 njctl S job "${IDS[4]}"
assert_eq "waiting" "$(jf "$OUT" phase)" "the fifth VF of the PF waits"
assert_contains "$(named_log S)" "Migration ${IDS[4]} waits its turn: 5 devices of parent 0000:3b:00.0 would migrate at once, and plugin 'mlx5' allows 4" \
    "  ... and the log says why"
assert_eq "pre_copy running" "$(jf "$(njctl S show nic0)" state) $(jf "$(njctl S show nic4)" state)" \
    "  ... its VF untouched while the others pre-copy"
expect_exit 0 njctl S cancel "${IDS[0]}"
wait_job S "${IDS[4]}" "$STATE_WAIT" ready over
assert_eq "ready" "$(jf "$JOB" phase)" "one of the four ended: the fifth started"
assert_contains "$(named_log S)" "Migration ${IDS[4]}: its turn came, starting." "  ... saying so"
expect_exit 0 njctl S switchover "${IDS[4]}"
wait_job S "${IDS[4]}" "$STATE_WAIT" over
assert_eq "completed" "$(jf "$JOB" state)" "  ... and completed"
for i in 1 2 3; do
    expect_exit 0 njctl S cancel "${IDS[$i]}"
done

# A group that alone has more VFs of one PF than the firmware takes can never start.
for i in 0 1 2 3 4; do
    expect_exit 0 njctl S attach --sim "$VF,pci=3b:01.$i" --name "g$i"
done
expect_exit 0 njctl S group create big g0 g1 g2 g3 g4
expect_exit 0 njctl D attach --sim "$VF,pci=3b:01.0" --name g0
expect_exit 0 njctl D group create big g0
incoming D big --listen 127.0.0.1:0
expect_exit 1 njctl S migrate big --to "$ADDR" --token "$TOKEN"
assert_contains "$ERR" "group 'big' cannot migrate: 5 devices of parent 0000:3b:00.0 would migrate at once" \
    "a group of 5 VFs of one PF: refused, saying why"
assert_eq "running" "$(jf "$(njctl S show g0)" state)" "  ... its devices untouched"
