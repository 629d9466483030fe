#!/usr/bin/env bash
# The mlx5 plugin (plugins/mlx5, docs/vendors/mlx5.md) with two real daemons and the real CLI,
# on sim devices that say they are ConnectX VFs (pci_id=15b3:101e): what `show` reports
# (plugin, prerequisites with their fixes, descriptor); the firmware's limit of 4 VFs of one
# PF migrating at once (a fifth migration waits in phase "waiting" and says so in the log,
# then starts when one of the four ends; a group of 5 such VFs is refused); and the plugin's
# sim model (model=mlx5) between two daemons: pre-copy driven by PRECOPY_INFO, a 5 GiB VF in
# chunk mode that no daemon holds in memory, both checked by digest; PSID and firmware
# mismatches refused before the source moves.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_plugin_daemons "$BUILDDIR/plugins/mlx5.so"

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

# ==== the mlx5 sim model (model=mlx5) between two daemons

MVF=model=mlx5,pci_id=15b3:101e,driver=mlx5_vfio_pci,pf=5e:00.0
digest() { jf "$(njctl "$1" show "$2")" digest; }
newest_job() { jf "$(njctl "$1" jobs)" 0.id; }

expect_exit 1 njctl S attach --sim "$MVF,pci=5e:00.7,chunk=0,image=5G" --name nochunk
assert_contains "$ERR" "without chunk mode" "model: an image over 4 GiB without chunk mode is refused"
expect_exit 0 njctl S attach --sim "$MVF,pci=5e:00.6,eswitch=legacy" --name leg
expect_exit 0 njctl S show leg
assert_eq "false" "$(jf "$OUT" prerequisites.1.ok)" "model: a PF in legacy mode fails its prerequisite"
assert_eq "devlink dev eswitch set pci/0000:5e:00.0 mode switchdev" "$(jf "$OUT" prerequisites.1.fix)" \
    "  ... with the command that fixes it"

# Pre-copy driven by PRECOPY_INFO: with manual switchover the job waits in ready while the
# pumps go on, and every byte past the initial image came from an incremental SAVE that the
# ioctl started (read() alone answers -ENOMSG).
expect_exit 0 njctl S attach --sim "$MVF,pci=5e:00.2,image=4M,dirty=256K,content=11" --name m0
expect_exit 0 njctl S group create gm m0
expect_exit 0 njctl D attach --sim "$MVF,pci=5e:00.2,image=4K,content=22" --name m0
expect_exit 0 njctl D group create gm m0
assert_ne "$(digest S m0)" "$(digest D m0)" "model: source and destination start with other content"
incoming D gm --listen 127.0.0.1:0 --resume
expect_exit 0 njctl S migrate gm --to "$ADDR" --token "$TOKEN" --switchover manual
MID=$(jf "$OUT" id)
INITIAL=$((24 + 80 + 4 * 1024 * 1024))
past_initial() { (($(jf "$(job_json S "$MID")" devices.0.precopy_bytes) > INITIAL)); }
wait_state "model: pre-copy reads incremental SAVEs past the initial image" past_initial
expect_exit 0 njctl S switchover "$MID"
wait_job S "$MID" "$STATE_WAIT" over
assert_eq "completed" "$(jf "$JOB" state)" "model: the migration completed"
assert_eq "$(digest S m0)" "$(digest D m0)" "  ... the destination has the source's state (digest)"

# A 5 GiB VF in chunk mode: 640 FW_DATA records of 8 MiB; the content is generated, so no
# daemon holds the image.
expect_exit 0 njctl S attach --sim "$MVF,pci=5e:00.3,image=5G,content=33" --name big0
expect_exit 0 njctl S group create gb big0
expect_exit 0 njctl D attach --sim "$MVF,pci=5e:00.3,image=4K,content=44" --name big0
expect_exit 0 njctl D group create gb big0
incoming D gb --listen 127.0.0.1:0 --resume
# 5 GiB through TLS on a loaded 2-CPU machine ran at 50 MiB/s: the CLI's hang guard (CTL_TIMEOUT,
# 60 s) must not become a speed threshold, so this one call gets a bound no sane run reaches.
CTL_TIMEOUT=900 expect_exit 0 njctl S --timeout 900 migrate gb --to "$ADDR" --token "$TOKEN" --wait
assert_eq "$(digest S big0)" "$(digest D big0)" "model: a 5 GiB VF migrated in chunk mode (digest)"
assert_eq "yes" "$(jf "$(njctl D show big0)" descriptor.chunk_mode)" "  ... in chunk mode"
hwm_mb() { awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$1/status"; }
assert_le "$(hwm_mb "$S_PID")" 512 "  ... the source daemon never held it (peak RSS in MiB)"
assert_le "$(hwm_mb "$D_PID")" 512 "  ... nor the destination daemon"

# PSID and firmware mismatches: refused before the source moves, naming the field.
mismatch() { # NAME SOURCE-OPTIONS DESTINATION-OPTIONS EXPECTED-ERROR
    expect_exit 0 njctl S attach --sim "$MVF,pci=5e:01.0,$2" --name "$1"
    expect_exit 0 njctl S group create "g$1" "$1"
    expect_exit 0 njctl D attach --sim "$MVF,pci=5e:01.0,$3" --name "$1"
    expect_exit 0 njctl D group create "g$1" "$1"
    incoming D "g$1" --listen 127.0.0.1:0
    BEFORE=$(njctl S show "$1")
    expect_exit 1 njctl S --timeout 30 migrate "g$1" --to "$ADDR" --token "$TOKEN" --wait
    assert_contains "$ERR" "$4" "model: $1 mismatch refused, naming the field and both values"
    AFTER=$(njctl S show "$1")
    assert_eq "running $(jf "$BEFORE" stats.transitions)" "$(jf "$AFTER" state) $(jf "$AFTER" stats.transitions)" \
        "  ... the source device still running, not one transition run"
}
mismatch psid psid=MT_0000000359 psid=MT_0000000360 \
    "device 'psid': psid: source 'MT_0000000359', destination 'MT_0000000360'"
mismatch fw fw=22.36.1010 fw=22.37.1000 \
    "device 'fw': fw_version: source '22.36.1010', destination '22.37.1000'"
