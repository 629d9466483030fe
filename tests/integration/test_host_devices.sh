#!/usr/bin/env bash
# Host readiness through the real daemon and CLI on a fake sysfs tree (vfio-migd --sysfs-root):
# `host-devices` lists each function a plugin claims or VFIO holds with its driver, the variant
# driver it needs, its plugin, whether it can migrate now and the failing prerequisites with
# their fixes; `bind` makes the unbind / driver_override / bind writes a real kernel would act
# on (here: files whose content the test reads back) and refuses what it should, writing
# nothing. The tree holds what daemon/backend/kernel_sysfs.c and the plugins read: the bus
# links, vendor/device, the driver links, a VF's physfn and a HiSilicon PF's revision (its QM
# version). devlink cannot be faked (it is netlink, not sysfs): the mlx5 checks that read it
# must answer "cannot tell", never pass.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SYS=$T/sys
PCIDEV=devices/pci0000:3a

# put REL [TEXT]: a file under the tree with TEXT (an empty file without it)
put() {
    mkdir -p "$(dirname "$SYS/$1")"
    printf '%s' "${2-}" >"$SYS/$1"
}

# pci_function BDF VENDOR DEVICE DRIVER|- [PF]: a PCI function; "-": bound to no driver
pci_function() {
    local bdf=$1 dir=$SYS/$PCIDEV/$1
    mkdir -p "$dir" "$SYS/bus/pci/devices"
    printf '0x%s\n' "$2" >"$dir/vendor"
    printf '0x%s\n' "$3" >"$dir/device"
    : >"$dir/driver_override"
    ln -s "../../../$PCIDEV/$bdf" "$SYS/bus/pci/devices/$bdf"
    if [[ "$4" != - ]]; then
        ln -s "../../../bus/pci/drivers/$4" "$dir/driver"
    fi
    if [[ -n "${5-}" ]]; then
        ln -s "../$5" "$dir/physfn"
    fi
}

# driver NAME: a loaded driver, with the bind and unbind files sysfs gives it
driver() {
    put "bus/pci/drivers/$1/bind"
    put "bus/pci/drivers/$1/unbind"
}

MLX_VFIO=0000:3b:00.2 # mlx5 VF on plain vfio-pci: needs mlx5_vfio_pci
MLX_OK=0000:3b:00.3   # mlx5 VF on mlx5_vfio_pci: bound right, devlink cannot tell
ZIP_OK=0000:7d:00.1   # hisi ZIP VF, PF on hisi_zip, QM V3: can migrate
ZIP_BAD=0000:7e:00.1  # hisi ZIP VF on vfio-pci, PF unbound, QM 0x21
NIC=0000:5e:00.0      # an Intel function on its host driver: nobody's business
for d in vfio-pci mlx5_core mlx5_vfio_pci hisi_zip ixgbevf; do
    driver "$d"
done
pci_function 0000:3b:00.0 15b3 101d mlx5_core
pci_function "$MLX_VFIO" 15b3 101e vfio-pci 0000:3b:00.0
pci_function "$MLX_OK" 15b3 101e mlx5_vfio_pci 0000:3b:00.0
pci_function 0000:7d:00.0 19e5 a250 hisi_zip
put "$PCIDEV/0000:7d:00.0/revision" $'0x30\n'
pci_function "$ZIP_OK" 19e5 a251 hisi_acc_vfio_pci 0000:7d:00.0
pci_function 0000:7e:00.0 19e5 a250 -
put "$PCIDEV/0000:7e:00.0/revision" $'0x21\n'
pci_function "$ZIP_BAD" 19e5 a251 vfio-pci 0000:7e:00.0
pci_function "$NIC" 8086 1515 ixgbevf

PLUGINS=$T/plugins
mkdir -p "$PLUGINS"
ln -s "$BUILDDIR/plugins/mlx5.so" "$PLUGINS/mlx5.so"
ln -s "$BUILDDIR/plugins/hisi.so" "$PLUGINS/hisi.so"

# ==== the option itself: refusals stop the daemon with the reason

run timeout 20 "$VFIO_MIGD" --config /dev/null --socket "$T/x.sock" --sysfs-root sys
assert_eq 2 "$RC" "--sysfs-root with a relative path: the daemon does not start (a configuration error)"
assert_contains "$ERR" "--sysfs-root must be an absolute path" "  ... and says what it takes"
run timeout 20 "$VFIO_MIGD" --config /dev/null --socket "$T/x.sock" --sysfs-root "$SYS/$PCIDEV/$NIC/vendor"
assert_eq 1 "$RC" "--sysfs-root naming a file: the daemon does not start"
assert_contains "$ERR" "is not a directory (set [daemon] sysfs_root or --sysfs-root to a directory" \
    "  ... and says why and what to set"

start_named_daemon S --plugin-dir "$PLUGINS" --sysfs-root "$SYS"

# ==== host-devices

expect_exit 0 njctl S host-devices
HD=$OUT
assert_eq "4" "$(jf "$HD" '#')" "four functions listed: the two mlx5 VFs, the two hisi VFs"
assert_eq "$MLX_VFIO $MLX_OK $ZIP_OK $ZIP_BAD" \
    "$(jf "$HD" 0.address) $(jf "$HD" 1.address) $(jf "$HD" 2.address) $(jf "$HD" 3.address)" \
    "  ... by address; not the PFs nor the host driver's NIC"
assert_not_contains "$HD" "$NIC" "  ... the NIC on ixgbevf is not listed"

# an mlx5 VF on plain vfio-pci
assert_eq "vfio-pci mlx5_vfio_pci mlx5 false" \
    "$(jf "$HD" 0.driver) $(jf "$HD" 0.variant_driver) $(jf "$HD" 0.plugin) $(jf "$HD" 0.can_migrate)" \
    "mlx5 VF on vfio-pci: its driver, the variant driver it needs, its plugin, cannot migrate"
assert_eq "15b3 101e" "$(jf "$HD" 0.vendor_id) $(jf "$HD" 0.device_id)" "  ... its IDs"
assert_eq "bound to mlx5_vfio_pci false" "$(jf "$HD" 0.prerequisites.0.check) $(jf "$HD" 0.prerequisites.0.ok)" \
    "  ... the daemon's binding check fails"
assert_eq "the function is bound to vfio-pci, not to mlx5_vfio_pci" "$(jf "$HD" 0.prerequisites.0.message)" \
    "  ... saying what it is bound to"
assert_eq "vfio-migctl bind $MLX_VFIO" "$(jf "$HD" 0.prerequisites.0.fix)" "  ... with the bind as its fix"
assert_contains "$(jf "$HD" 0.prerequisites.1.message)" "plain vfio-pci and mlx5_core have no mlx5 migration" \
    "  ... the plugin says why vfio-pci is not enough"

# an mlx5 VF on mlx5_vfio_pci: bound right, the devlink checks cannot tell (never ok)
assert_eq "mlx5_vfio_pci false true true" \
    "$(jf "$HD" 1.driver) $(jf "$HD" 1.can_migrate) $(jf "$HD" 1.prerequisites.0.ok) $(jf "$HD" 1.prerequisites.1.ok)" \
    "mlx5 VF on mlx5_vfio_pci: bound right, yet cannot migrate"
assert_eq "PF eswitch in switchdev mode false" \
    "$(jf "$HD" 1.prerequisites.2.check) $(jf "$HD" 1.prerequisites.2.ok)" "  ... the eswitch mode is not known"
assert_contains "$(jf "$HD" 1.prerequisites.2.message)" "cannot tell: reading the eswitch mode of pci/0000:3b:00.0 over devlink failed" \
    "  ... the message says devlink cannot tell, for the VF's PF"
assert_eq "devlink dev eswitch set pci/0000:3b:00.0 mode switchdev" "$(jf "$HD" 1.prerequisites.2.fix)" \
    "  ... the fix names the PF"
assert_eq "VF port function migratable false" \
    "$(jf "$HD" 1.prerequisites.3.check) $(jf "$HD" 1.prerequisites.3.ok)" "  ... nor is 'migratable'"
assert_contains "$(jf "$HD" 1.prerequisites.3.message)" "cannot tell: reading" "  ... cannot tell either"
assert_contains "$(jf "$HD" 1.prerequisites.3.fix)" "migratable enable && echo $MLX_OK > /sys/bus/pci/drivers/mlx5_vfio_pci/unbind" \
    "  ... the fix enables it, then rebinds the VF"

# a hisi VF ready to go
assert_eq "hisi_acc_vfio_pci hisi_acc_vfio_pci hisi true" \
    "$(jf "$HD" 2.driver) $(jf "$HD" 2.variant_driver) $(jf "$HD" 2.plugin) $(jf "$HD" 2.can_migrate)" \
    "hisi VF with its PF on hisi_zip and QM V3: can migrate"
assert_eq "5 true true true true true" \
    "$(jf "$HD" 2.prerequisites.#) $(jf "$HD" 2.prerequisites.0.ok) $(jf "$HD" 2.prerequisites.1.ok) $(jf "$HD" 2.prerequisites.2.ok) $(jf "$HD" 2.prerequisites.3.ok) $(jf "$HD" 2.prerequisites.4.ok)" \
    "  ... every prerequisite holds"

# a hisi VF on vfio-pci whose PF is unbound and whose QM is too old
assert_eq "vfio-pci hisi_acc_vfio_pci false" \
    "$(jf "$HD" 3.driver) $(jf "$HD" 3.variant_driver) $(jf "$HD" 3.can_migrate)" \
    "hisi VF on vfio-pci, PF unbound, old QM: cannot migrate"
assert_eq "vfio-migctl bind $ZIP_BAD" "$(jf "$HD" 3.prerequisites.0.fix)" "  ... fix: bind it"
assert_eq "PF bound to its native driver false" \
    "$(jf "$HD" 3.prerequisites.3.check) $(jf "$HD" 3.prerequisites.3.ok)" "  ... the PF is not on hisi_zip"
assert_contains "$(jf "$HD" 3.prerequisites.3.message)" "the PF 0000:7e:00.0 is bound to 'no driver', not to hisi_zip" \
    "  ... said so"
assert_eq "modprobe hisi_zip && echo 0000:7e:00.0 > /sys/bus/pci/drivers/hisi_zip/bind && vfio-migctl bind $ZIP_BAD" \
    "$(jf "$HD" 3.prerequisites.3.fix)" "  ... the fix binds the PF, then the VF again"
assert_eq "PF QM version >= V3 false" \
    "$(jf "$HD" 3.prerequisites.4.check) $(jf "$HD" 3.prerequisites.4.ok)" "  ... the QM is too old"
assert_contains "$(jf "$HD" 3.prerequisites.4.message)" "version 0x21, migration needs V3 (0x30) or later" \
    "  ... said so, with its version"

expect_exit 0 nctl S host-devices
assert_contains "$OUT" "$MLX_VFIO 15b3:101e driver vfio-pci (needs mlx5_vfio_pci) plugin mlx5: cannot migrate now" \
    "the text form: one line per function"
assert_contains "$OUT" "  FAILED bound to mlx5_vfio_pci: the function is bound to vfio-pci, not to mlx5_vfio_pci; fix: vfio-migctl bind $MLX_VFIO" \
    "  ... then each failing check with its fix"

# ==== bind: refusals write nothing

sums() { cat "$SYS"/bus/pci/drivers/*/bind "$SYS"/bus/pci/drivers/*/unbind "$SYS/$PCIDEV"/*/driver_override | md5sum; }
BEFORE=$(sums)
expect_error INVALID_ARGUMENT njctl S bind nonsense
assert_contains "$ERR" "'nonsense' is not a PCI address (e.g. 0000:3b:00.2)" "bind: a malformed address is refused"
expect_error NOT_FOUND njctl S bind 0000:3b:01.0
assert_contains "$ERR" "no PCI function 0000:3b:01.0 on this host" "bind: a function that is not there"
expect_error NOT_FOUND njctl S bind "$ZIP_BAD"
assert_contains "$ERR" "the driver hisi_acc_vfio_pci is not loaded: modprobe hisi_acc_vfio_pci, then bind again" \
    "bind: the variant driver is not loaded: refused with the modprobe"
# a function the daemon holds: unbinding it would pull it from under the daemon's fds
expect_exit 0 njctl S attach --sim "size=4K,pci=$MLX_VFIO" --name held
expect_error FAILED_PRECONDITION njctl S bind 3b:00.2
assert_contains "$ERR" "PCI function $MLX_VFIO is attached as device 'held': a bind would unbind it from under the daemon; detach it first ('vfio-migctl detach held'), then bind" \
    "bind: a function attached to the daemon (in any spelling of its address) is refused"
expect_exit 0 njctl S detach held
expect_exit 0 njctl S bind "$MLX_OK"
assert_eq "false mlx5_vfio_pci" "$(jf "$OUT" changed) $(jf "$OUT" driver)" "bind: already bound to what it needs"
assert_not_contains "$(<"$T/S.log")" "Bound PCI function $MLX_OK" "  ... and no bind is logged"
assert_eq "$BEFORE" "$(sums)" "  ... none of these wrote anything"

# ==== bind: the three writes, in the files the kernel would act on

expect_exit 0 njctl S bind "$MLX_VFIO"
assert_eq "$MLX_VFIO vfio-pci mlx5_vfio_pci true" \
    "$(jf "$OUT" address) $(jf "$OUT" driver_before) $(jf "$OUT" driver) $(jf "$OUT" changed)" \
    "bind an mlx5 VF: from vfio-pci to mlx5_vfio_pci"
assert_eq "$MLX_VFIO" "$(<"$SYS/bus/pci/drivers/vfio-pci/unbind")" "  ... unbound from vfio-pci"
assert_eq "mlx5_vfio_pci" "$(<"$SYS/$PCIDEV/$MLX_VFIO/driver_override")" "  ... driver_override names the variant driver"
assert_eq "$MLX_VFIO" "$(<"$SYS/bus/pci/drivers/mlx5_vfio_pci/bind")" "  ... bound to mlx5_vfio_pci"
assert_eq "" "$(<"$SYS/bus/pci/drivers/mlx5_core/unbind")$(<"$SYS/$PCIDEV/$MLX_OK/driver_override")" \
    "  ... and nothing else was written"
assert_contains "$(<"$T/S.log")" "Bound PCI function $MLX_VFIO to mlx5_vfio_pci (was vfio-pci) on request." \
    "  ... the daemon logs it"

# an unbound function: no unbind, override, bind
driver hisi_acc_vfio_pci
rm "$SYS/$PCIDEV/$ZIP_BAD/driver"
expect_exit 0 njctl S bind "$ZIP_BAD"
assert_eq " hisi_acc_vfio_pci true" "$(jf "$OUT" driver_before) $(jf "$OUT" driver) $(jf "$OUT" changed)" \
    "bind an unbound hisi VF once its variant driver is loaded"
assert_eq "hisi_acc_vfio_pci $ZIP_BAD" \
    "$(<"$SYS/$PCIDEV/$ZIP_BAD/driver_override") $(<"$SYS/bus/pci/drivers/hisi_acc_vfio_pci/bind")" \
    "  ... driver_override, then bind"
assert_eq "" "$(<"$SYS/bus/pci/drivers/hisi_acc_vfio_pci/unbind")" "  ... and no unbind: it had no driver"
