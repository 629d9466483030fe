#!/usr/bin/env bash
# kernel_fsm — does core/fsm predict the real kernel, and does the daemon give the kernel's
# verdicts? Runs inside the Linux 6.12 test VM (run-vm.sh, booted with mtty.dyndbg=+p so mtty
# logs every arc it runs; ctest runs it as kernel_fsm) on one mtty mdev ($MTTY_UUIDS):
#   1. kernel-mtty-fsm direct --mdev: every (current, target) pair as ONE combined SET through
#      the kernel back-end on the group path, against fsm_compute_path and mtty's own log;
#   2. the same on the iommufd cdev path;
#   3. kernel-mtty-fsm daemon: the same requests through a running daemon's SetDeviceState,
#      plus the numbers the API has that the kernel has not (0 = unset, 9, 100).
# See tests/kernel/mtty_fsm.c. Needs VFIO_MIGD, VFIO_MIGCTL, BUILDDIR, RESULTS.
set -u
read -r U _ <<<"$MTTY_UUIDS"
KFSM=$BUILDDIR/kernel-mtty-fsm
SOCK=/tmp/fsm.sock
failed=0

echo "# 1. direct, group path"
"$KFSM" direct --mdev "$U" || failed=1
echo "# 2. direct, iommufd cdev path"
"$KFSM" direct --cdev "$U" || failed=1

echo "# 3. through the daemon"
"$VFIO_MIGD" --socket "$SOCK" --log-level debug >"$RESULTS/fsm_test-daemon.log" 2>&1 &
pid=$!
for _ in $(seq 600); do # until it serves: at least a minute (a hang detector)
    "$VFIO_MIGCTL" --socket "$SOCK" health >/dev/null 2>&1 && break
    sleep 0.1
done
if "$VFIO_MIGCTL" --socket "$SOCK" attach --mdev "$U" --name A; then
    "$KFSM" daemon "$SOCK" A "$U" || failed=1
else
    echo "not ok - the daemon attaches $U"
    failed=1
fi
kill -TERM "$pid"
wait "$pid" || { echo "not ok - the daemon exits 0 on SIGTERM"; failed=1; }
dmesg >"$RESULTS/fsm_test-dmesg.log" 2>/dev/null
exit $failed
