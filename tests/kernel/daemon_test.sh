#!/usr/bin/env bash
# kernel_daemon — the real daemon and CLI on real VFIO devices, inside the Linux 6.12 test VM
# (run-vm.sh; ctest runs it as kernel_daemon). Four mtty-1 mdevs A B C E ($MTTY_UUIDS) and one
# mtty-2 mdev D created here. Checked, through vfio-migctl unless said otherwise:
#  - attach through both access paths (A: mdev UUID -> group/container, B: its cdev from
#    /sys/bus/mdev/devices/<uuid>/vfio-dev/ -> iommufd), the flags, and `show`'s kernel facts;
#  - attach refusals with their sentences: malformed addresses, no such device, a PCI device
#    bound to another driver, a group another process holds, the same device twice;
#  - save A, restore into B (a device's save is a one-device stream file), with the UART data
#    checked end to end (scratch register and the
#    bytes pushed into A's loop-back FIFO read back from B) through ReadRegion/WriteRegion;
#  - pre-copy: `state A pre_copy`, a change while pre-copying, then `save` continues the open
#    session (pre_copy -> pre_copy_p2p -> stop_copy, no new fd) and the file restores right;
#  - refusals that change nothing (snapshot before/after): ERROR as a target, STOP_COPY ->
#    PRE_COPY, region access in stop or out of bounds;
#  - garbage into RESUMING: a CRC-valid stream of garbage (mtty: bad magic -> EFAULT), a
#    truncated stream (RESUMING -> STOP fails with EINVAL) and a two-port stream into a
#    one-port device are refused with the errno, the device is reset and works afterwards;
#  - the daemon SIGKILLed with A in STOP: a new daemon attaching A reports found_state stop,
#    recovered, and A runs again (mtty keeps its migration state across close);
#  - detach releases everything: A attaches again, through the other path.
# The daemon runs without any capability, as vfio-migd.service's empty CapabilityBoundingSet=
# leaves it (uid 0, which owns the VFIO nodes): so every step above also proves the unit
# takes nothing away that real devices need.
# Needs: VFIO_MIGD, VFIO_MIGCTL, BUILDDIR (kernel-mtty-fsm), RESULTS (a writable shared dir).
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

KFSM=$BUILDDIR/kernel-mtty-fsm
STREAMFILE="$PY -S $SRCDIR/tests/streamfile.py"
read -r UA UB UC UE <<<"$MTTY_UUIDS"
UD=83b8f4f2-509f-382f-3c1e-e6bfe0fa00d2

cdev_of() { echo "/dev/vfio/devices/$(ls "/sys/bus/mdev/devices/$1/vfio-dev")"; }
group_of() { basename "$(readlink "/sys/bus/mdev/devices/$1/iommu_group")"; }
# show_field ID LABEL: a "label: value" line of `show ID` (text: no JSON parser to start)
show_field() {
    local line
    while IFS= read -r line; do
        if [[ "$line" =~ ^$2:\ +(.*)$ ]]; then
            echo "${BASH_REMATCH[1]}"
            return 0
        fi
    done < <(ctl show "$1")
    return 1
}
# reg_read ID REGION OFFSET: one byte, as two hex digits
reg_read() { ctl region read "$1" "$2" "$3" 1; }
reg_write() { ctl region write "$1" "$2" "$3" "$4" >/dev/null; }
# fifo_push ID STRING / fifo_pop ID N: mtty's loop-back FIFO (BAR0 offset 0), one byte a time
fifo_push() {
    local i
    for ((i = 0; i < ${#2}; i++)); do
        reg_write "$1" 0 0 "$(printf '%02x' "'${2:i:1}")"
    done
}
fifo_pop() {
    local i popped=''
    for ((i = 0; i < $2; i++)); do
        popped+=$(reg_read "$1" 0 0)
    done
    echo "$popped"
}

# The guest's page cache starts cold: load python (JSON checks) while the daemon starts.
("$PY" -S -c 'import json' >/dev/null 2>&1 &)
echo "$UD" >/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create
DAEMON_PREFIX=(setpriv --bounding-set=-all --inh-caps=-all --no-new-privs)
start_daemon
assert_eq "0000000000000000 0000000000000000" \
    "$(awk '/^CapEff|^CapBnd/ {printf "%s%s", s, $2; s=" "}' "/proc/$DAEMON_PID/status")" \
    "the daemon runs with no capability (effective, bounding), as the unit leaves it"

# ---- attach, both access paths, and the kernel facts
j=$(jctl attach --mdev "$UA" --name A)
assert_eq "kernel running 7 true" "$(jget "$j" backend state migration_flags migratable | tr '\n' ' ' | sed 's/ $//')" \
    "A attached by mdev UUID: kernel, running, flags 7, migratable"
assert_eq "stop_copy p2p pre_copy" "$(jget "$j" 'flags[]')" "A's flags: stop_copy+p2p+pre_copy"
assert_eq "group /dev/vfio/$(group_of "$UA") $(group_of "$UA")" \
    "$(jget "$j" properties.access properties.path properties.group | tr '\n' ' ' | sed 's/ $//')" \
    "A: access group, path /dev/vfio/N, group N (sysfs)"
assert_eq "$UA mdev mtty 0x2 (pci) 9 5 supported 60" \
    "$(jget "$j" properties.device properties.bus properties.driver properties.device_flags \
        properties.regions properties.irqs properties.dma_logging properties.data_size | tr '\n' ' ' | sed 's/ $//')" \
    "A: device, bus, driver, device_flags, regions, irqs, dma_logging, data_size"
CB=$(cdev_of "$UB")
j=$(jctl attach --cdev "$CB" --name B)
assert_eq "iommufd $CB $UB $(group_of "$UB")" \
    "$(jget "$j" properties.access properties.path properties.device properties.group | tr '\n' ' ' | sed 's/ $//')" \
    "B attached by cdev: access iommufd, its cdev path, the mdev behind it"
expect_exit 0 ctl show A
assert_line_match "$OUT" '^access: +group$' "show A prints the kernel facts (access: group)"
assert_line_match "$OUT" '^dma_logging: +supported$' "show A: dma_logging: supported"
assert_line_match "$OUT" '^data size: +60 B' "show A: data size 60 B (MIG_DATA_SIZE)"
expect_exit 0 jctl version
assert_contains "$(jget "$OUT" 'backends[]')" kernel "version lists the kernel back-end"

# ---- attach refusals
expect_error INVALID_ARGUMENT jctl attach --pci 3b:00
assert_contains "$ERR" "'3b:00' is not a PCI address: expected DDDD:BB:DD.F" "  ... says the form"
expect_error NOT_FOUND jctl attach --pci 0000:3b:00.2
assert_contains "$ERR" "no device 0000:3b:00.2 in sysfs" "  ... says so"
expect_error NOT_FOUND jctl attach --cdev /dev/vfio/devices/vfio99
PCIDEV=$(for d in /sys/bus/pci/devices/*; do [ -e "$d/driver" ] && { basename "$d"; break; }; done)
PCIDRV=$(basename "$(readlink "/sys/bus/pci/devices/$PCIDEV/driver")")
expect_error FAILED_PRECONDITION jctl attach --pci "$PCIDEV"
assert_contains "$ERR" "device $PCIDEV is bound to '$PCIDRV', not to a vfio driver (bind it to vfio-pci or its variant driver: see docs/kernel.md)" \
    "  ... a PCI device on '$PCIDRV': says what to bind"
expect_error FAILED_PRECONDITION jctl attach --mdev "$UA" --name A2
assert_contains "$ERR" "is already attached to this daemon" "  ... A twice"
exec 3<>"/dev/vfio/$(group_of "$UC")" # this shell now owns C's group, as QEMU would
expect_error FAILED_PRECONDITION jctl attach --mdev "$UC"
assert_contains "$ERR" "/dev/vfio/$(group_of "$UC") is busy: another process (QEMU?) owns the group" \
    "  ... C's group held by another process"
exec 3>&-
assert_eq 2 "$(jget "$(jctl devices)" '#')" "the refused attaches left nothing behind (A and B only)"

# ---- save A, restore into B: the UART data arrives
reg_write A 0 7 5a
fifo_push A 'hi!'
reg_write B 0 7 11
expect_exit 0 jctl save A "$T/a.sav"
assert_eq "stop 60" "$(jget "$OUT" state bytes | tr '\n' ' ' | sed 's/ $//')" "save A: 60 bytes, A in stop"
assert_eq "running->running_p2p running_p2p->stop stop->stop_copy stop_copy->stop" "$(jget "$OUT" 'arcs[]')" \
    "save A: the kernel's arcs"
expect_exit 0 jctl restore B "$T/a.sav"
assert_eq "running 60" "$(jget "$OUT" state bytes | tr '\n' ' ' | sed 's/ $//')" "restore into B: 60 bytes, B running"
assert_eq 5a "$(reg_read B 0 7)" "B's scratch register holds A's 5a"
assert_eq 686921 "$(fifo_pop B 3)" "B's FIFO pops A's 'hi!'"

# ---- refusals that change nothing
before=$(snapshot --ignore-last-error)
expect_error FAILED_PRECONDITION jctl region read A 0 7 1
assert_contains "$ERR" "device 'A' is in stop: its regions may be accessed only in running or pre_copy" \
    "region access refused while A is stopped"
expect_error INVALID_ARGUMENT jctl state A error
assert_contains "$ERR" "ERROR can never be requested" "  ... ERROR as a target"
expect_error INVALID_ARGUMENT jctl region read B 0 8 1
assert_contains "$ERR" "bytes [8, 9) lie outside region 0 of device 'B'" "  ... outside BAR0"
expect_error NOT_FOUND jctl region read B 12 0 1
expect_exit 2 ctl region read B 0 0 0 # LENGTH is 1 to 4096: the CLI refuses 0 itself
assert_contains "$ERR" "LENGTH '0' is not a number from 1 to 4096" "  ... saying the range it checks"
expect_exit 2 ctl region write B 0 0 zz
assert_eq "$before" "$(snapshot --ignore-last-error)" "the refused requests changed nothing"
expect_exit 0 ctl attach --sim size=1M --name S
expect_error FAILED_PRECONDITION jctl region read S 0 0 1
assert_contains "$ERR" "device 'S' (back-end 'sim') has no regions to access" "  ... a sim device has no regions"
expect_exit 0 ctl detach S

# ---- pre-copy: the open pre-copy session is what save continues
expect_exit 0 jctl reset A
assert_eq 686921 "$(fifo_pop A 3)" "A still holds 'hi!': saving read the device's state, it did not take it"
reg_write A 0 7 77
fifo_push A ok
expect_exit 0 jctl state A pre_copy
assert_eq "running->pre_copy" "$(jget "$OUT" 'arcs[]')" "A: running -> pre_copy"
assert_eq open "$(show_field A "data session")" "A holds the pre-copy data session"
reg_write A 0 7 a5
assert_eq a5 "$(reg_read A 0 7)" "A runs in pre_copy: its registers can change (scratch a5)"
expect_exit 0 jctl save A "$T/pc.sav"
assert_eq "pre_copy->pre_copy_p2p pre_copy_p2p->stop_copy stop_copy->stop" "$(jget "$OUT" 'arcs[]')" \
    "save from pre_copy: pre_copy_p2p, stop_copy (no new session), stop"
assert_eq 60 "$(jget "$OUT" bytes)" "  ... the header from pre-copy and the rest: 60 bytes"
expect_exit 0 jctl restore B "$T/pc.sav"
assert_eq a5 "$(reg_read B 0 7)" "B got the scratch value written during pre-copy (a5)"
assert_eq 6f6b "$(fifo_pop B 2)" "B's FIFO pops 'ok'"
expect_exit 0 jctl state A running
expect_exit 0 jctl state A stop_copy
before=$(snapshot --ignore-last-error)
expect_error INVALID_ARGUMENT jctl state A pre_copy
assert_contains "$ERR" "forbids STOP_COPY -> PRE_COPY" "  ... stop_copy -> pre_copy refused up front"
assert_eq "$before" "$(snapshot --ignore-last-error)" "  ... and nothing changed"
expect_exit 0 jctl state A running

# ---- garbage into RESUMING: refused with the kernel's errno, device reset and usable
$STREAMFILE craft "$T/garbage.sav" --garbage 60 --backend kernel --flags 7
expect_error ABORTED jctl restore B "$T/garbage.sav"
assert_contains "$ERR" "device 'B' rejected the data at byte 0: Bad address (EFAULT)" \
    "garbage (CRC-valid stream): mtty refuses the bad magic with EFAULT"
assert_contains "$ERR" "device reset, now in running" "  ... and B was reset"
assert_eq running "$(ctl state B)" "B is running"
$STREAMFILE rewrite "$T/a.sav" "$T/short.sav" --truncate 10
expect_error ABORTED jctl restore B "$T/short.sav"
assert_contains "$ERR" "arc resuming->stop failed: Invalid argument (EINVAL)" \
    "a truncated stream: mtty's final check at resuming -> stop fails with EINVAL"
assert_eq running "$(ctl state B)" "  ... B reset to running"
j=$(jctl attach --mdev "$UD" --name D)
assert_eq 96 "$(jget "$j" data_size)" "D (mtty-2, two ports): data size 96"
expect_error ABORTED jctl restore D "$T/a.sav"
assert_contains "$ERR" "Bad address (EFAULT)" "a one-port stream into a two-port device: EFAULT (nr_ports)"
expect_exit 0 jctl restore B "$T/a.sav"
assert_eq 5a "$(reg_read B 0 7)" "B works after the refusals: a good restore lands (scratch 5a)"
assert_eq 2 "$(show_field B resets)" "B was reset once per refused restore"

# ---- detach releases the device: A attaches again, through the other path
expect_exit 0 ctl detach A
j=$(jctl attach --cdev "$(cdev_of "$UA")" --name A)
assert_eq "iommufd running" "$(jget "$j" properties.access state | tr '\n' ' ' | sed 's/ $//')" \
    "A detached and attached again through its cdev"

# ---- the daemon killed with A stopped: the next daemon finds and recovers it
expect_exit 0 jctl state A stop
stop_daemon KILL
assert_eq 137 "$DAEMON_RC" "the daemon died of SIGKILL with A in stop"
start_daemon
found=$("$KFSM" attach "$SOCK" A --mdev "$UA")
assert_eq "found_state=stop recovered=1 state=running" "$found" \
    "a new daemon attaching A: found in stop (mtty keeps its state), reset, running"
assert_eq 1 "$(show_field A resets)" "  ... one reset"
expect_exit 0 jctl state A stop
expect_exit 0 jctl state A running
assert_eq "running" "$(ctl state A)" "  ... and A moves again"
j=$("$KFSM" attach "$SOCK" E --mdev "$UE")
assert_eq "found_state=running recovered=0 state=running" "$j" "a device found running is not reset"

cp "$T/daemon.log" "$RESULTS/daemon_test-daemon.log" 2>/dev/null || true
dmesg >"$RESULTS/daemon_test-dmesg.log" 2>/dev/null || true
