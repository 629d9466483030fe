/* SPDX-License-Identifier: MIT */
/*
 * kernel-backend-check — the kernel back-end (daemon/backend/kernel.c) call by call against
 * the real Linux 6.12 VFIO uAPI and mtty, in the test VM. No daemon: this is the vtable the
 * daemon drives, with nothing in between.
 *
 *   kernel-backend-check UUID_A UUID_B UUID_C     three mtty-1 mdevs, all RUNNING
 *
 * A is opened through its group (mdev UUID), B through its iommufd cdev, C is used for the
 * refusals (busy, permissions, duplicates) and for fd hygiene. Checked:
 *  - attach facts: flags stop_copy+p2p+pre_copy, state, every describe() property;
 *  - refusals with their sentences: the same device twice, a group another process holds
 *    (both paths), no permission on the group node / cdev (an unprivileged child);
 *  - region access: config space (vendor 4348, device 3253), bounds, missing regions;
 *  - a pre-copy save of A the way the checklist says (kernel-uapi.md §11): PRECOPY_INFO and
 *    read() to the temporary end (read() == 0, which in PRE_COPY means "nothing more for
 *    now"), a change made while pre-copying, PRE_COPY -> PRE_COPY_P2P -> STOP_COPY with no new
 *    fd, the rest read to EOF, the session dead after STOP; restored into B with the UART data
 *    (scratch register + loop-back FIFO) checked end to end;
 *  - sessions: -EBADF reading a resuming session, -ENOTTY for PRECOPY_INFO on it, -ENOMEM /
 *    -EFAULT for garbage (mtty's checks), -ENODEV after a reset, after STOP and after the
 *    device was freed;
 *  - fds: every fd the back-end opens is close-on-exec, and opening and freeing a device
 *    leaves the process with exactly the fds it had.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/backend.h"
#include "ktest.h"

#define SCR 7  /* mtty BAR0: scratch register */
#define THR 0  /* mtty BAR0: transmit (write) / receive (read) through the loop-back FIFO */

static BackendDevice *
open_dev(KernelAddressKind kind, const char *value, BackendInfo *info, char *err, size_t size,
         int *ret_r)
{
    KernelAddress addr = {kind, value};
    BackendDevice *bd = NULL;
    BackendInfo dummy;

    err[0] = '\0';
    *ret_r = kernel_device_open(&addr, "/sys", &bd, info ? info : &dummy, err, size);
    return *ret_r < 0 ? NULL : bd;
}

static const char *
prop(BackendDevice *bd, const char *key)
{
    static BackendProperty props[BACKEND_MAX_PROPERTIES];
    int n = bd->ops->describe(bd, props, BACKEND_MAX_PROPERTIES);

    for (int i = 0; i < n; i++) {
        if (strcmp(props[i].key, key) == 0) {
            return props[i].value;
        }
    }
    return "(none)";
}

static int
uart(BackendDevice *bd, unsigned reg, uint8_t *v, bool write)
{
    ssize_t n = bd->ops->region_access(bd, 0, reg, v, 1, write);

    return n == 1 ? 0 : n < 0 ? (int) n : -EIO;
}

static unsigned
group_of(const char *uuid)
{
    char path[256], target[256];
    ssize_t n;

    (void) snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/iommu_group", uuid);
    n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0) {
        return ~0u;
    }
    target[n] = '\0';
    return (unsigned) strtoul(strrchr(target, '/') + 1, NULL, 10);
}

/* ---- facts */

static void
check_facts(BackendDevice *a, const BackendInfo *ia, BackendDevice *b, const BackendInfo *ib,
            const char *ua, const char *ub)
{
    char want[128];

    ktest_check(ia->migratable && ia->mig_flags == MIG_FLAGS_ALL &&
                    ia->initial_state == DEVICE_STATE_RUNNING,
                "A (group path): migratable, flags 0x%x = stop_copy+p2p+pre_copy, found in %s",
                ia->mig_flags, fsm_state_name(ia->initial_state));
    ktest_check(ib->migratable && ib->mig_flags == MIG_FLAGS_ALL,
                "B (iommufd path): migratable, flags 0x%x", ib->mig_flags);
    (void) snprintf(want, sizeof(want), "/dev/vfio/%u", group_of(ua));
    ktest_check(strcmp(prop(a, "access"), "group") == 0 && strcmp(prop(a, "path"), want) == 0,
                "A: access %s, path %s", prop(a, "access"), prop(a, "path"));
    (void) snprintf(want, sizeof(want), "%u", group_of(ua));
    ktest_check(strcmp(prop(a, "group"), want) == 0 && strcmp(prop(a, "device"), ua) == 0 &&
                    strcmp(prop(a, "bus"), "mdev") == 0 && strcmp(prop(a, "driver"), "mtty") == 0,
                "A: group %s, device %s, bus %s, driver %s", prop(a, "group"), prop(a, "device"),
                prop(a, "bus"), prop(a, "driver"));
    ktest_check(strcmp(prop(a, "device_flags"), "0x2 (pci)") == 0 &&
                    strcmp(prop(a, "regions"), "9") == 0 && strcmp(prop(a, "irqs"), "5") == 0,
                "A: device_flags %s (mtty does not advertise reset), regions %s, irqs %s",
                prop(a, "device_flags"), prop(a, "regions"), prop(a, "irqs"));
    ktest_check(strcmp(prop(a, "dma_logging"), "supported") == 0 &&
                    strcmp(prop(a, "data_size"), "60") == 0,
                "A: dma_logging %s, data_size %s", prop(a, "dma_logging"), prop(a, "data_size"));
    ktest_check(strncmp(prop(a, "cdev"), "vfio", 4) == 0, "A: cdev %s", prop(a, "cdev"));
    ktest_check(strcmp(prop(b, "access"), "iommufd") == 0 &&
                    strncmp(prop(b, "path"), "/dev/vfio/devices/vfio", 22) == 0 &&
                    strcmp(prop(b, "device"), ub) == 0 && atoi(prop(b, "ioas")) > 0,
                "B: access %s, path %s, device %s, ioas %s", prop(b, "access"), prop(b, "path"),
                prop(b, "device"), prop(b, "ioas"));
}

/* ---- refusals */

/* Opening @value as @kind is refused with EBUSY, in words that contain @needle (any words
 * when @needle is NULL); @what names the case in the report. */
static void
expect_busy(KernelAddressKind kind, const char *value, const char *needle, const char *what)
{
    char err[512];
    int r;

    (void) open_dev(kind, value, NULL, err, sizeof(err), &r);
    ktest_check(r == -EBUSY && (!needle || strstr(err, needle)), "%s: %d: %s", what, r, err);
}

static void
check_duplicates(const char *ua, const char *cdev_a, const char *ub)
{
    expect_busy(KERNEL_ADDRESS_MDEV, ua, "is already attached to this daemon",
                "A again through its group");
    expect_busy(KERNEL_ADDRESS_CDEV, cdev_a, "is already attached to this daemon",
                "A again through its cdev");
    expect_busy(KERNEL_ADDRESS_MDEV, ub, NULL, "B (open by cdev) through its group");
}

/* A child holds /dev/vfio/<group of C> open, as QEMU would. */
static void
check_busy_group(const char *uc, const char *cdev_c)
{
    char node[64], c = 'n';
    int up[2], down[2]; /* child -> parent, parent -> child */
    pid_t pid;

    (void) snprintf(node, sizeof(node), "/dev/vfio/%u", group_of(uc));
    if (pipe(up) < 0 || pipe(down) < 0) {
        ktest_check(false, "pipes");
        return;
    }
    pid = fork();
    if (pid == 0) {
        int fd = open(node, O_RDWR);

        (void) !write(up[1], fd >= 0 ? "y" : "n", 1);
        (void) !read(down[0], &c, 1); /* until the parent is done */
        _exit(0);
    }
    (void) !read(up[0], &c, 1);
    ktest_check(c == 'y', "a child holds %s", node);
    expect_busy(KERNEL_ADDRESS_MDEV, uc, "is busy: another process (QEMU?) owns the group",
                "C through its group while another process holds it");
    expect_busy(KERNEL_ADDRESS_CDEV, cdev_c, "is busy: another process (QEMU?)",
                "C through its cdev while another process holds its group");
    (void) !write(down[1], "x", 1);
    (void) waitpid(pid, NULL, 0);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
}

/* An unprivileged child: /dev/vfio/N and the cdev are root's (0600). */
static void
check_permissions(const char *uc, const char *cdev_c)
{
    static const char *const paths[2] = {"group", "cdev"};

    for (int i = 0; i < 2; i++) {
        int status = 0;
        pid_t pid = fork();

        if (pid == 0) {
            char err[512];
            int r;

            if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                setresuid(65534, 65534, 65534) < 0) {
                _exit(2);
            }
            (void) open_dev(i == 0 ? KERNEL_ADDRESS_MDEV : KERNEL_ADDRESS_CDEV,
                            i == 0 ? uc : cdev_c, NULL, err, sizeof(err), &r);
            printf("#   unprivileged open through the %s: %d: %s\n", paths[i], r, err);
            fflush(stdout);
            _exit(r == -EACCES && strstr(err, "permission denied on /dev/vfio/") &&
                          strstr(err, "run as root or grant access") ? 0 : 1);
        }
        (void) waitpid(pid, &status, 0);
        ktest_check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                    "as uid 65534, C through its %s: 'permission denied ... run as root or grant "
                    "access'", paths[i]);
    }
}

/* ---- regions */

static void
check_regions(BackendDevice *a)
{
    uint8_t buf[8] = {0}, v = 0x3c;
    ssize_t n;
    int r;

    n = a->ops->region_access(a, 7, 0, buf, 4, false);
    ktest_check(n == 4 && buf[0] == 0x48 && buf[1] == 0x43 && buf[2] == 0x53 && buf[3] == 0x32,
                "config space: vendor 4348 device 3253 (%zd: %02x%02x %02x%02x)", n, buf[1],
                buf[0], buf[3], buf[2]);
    ktest_check(a->ops->region_access(a, 9, 0, buf, 1, false) == -ENOENT, "region 9: -ENOENT");
    ktest_check(a->ops->region_access(a, 1, 0, buf, 1, false) == -ENOENT,
                "region 1 (mtty-1 has no BAR1): -ENOENT");
    ktest_check(a->ops->region_access(a, 0, 8, buf, 1, false) == -ERANGE,
                "BAR0 is 8 bytes: offset 8 -> -ERANGE");
    ktest_check(a->ops->region_access(a, 0, 7, buf, 2, false) == -ERANGE,
                "BAR0 offset 7, 2 bytes -> -ERANGE");
    r = uart(a, SCR, &v, true);
    v = 0;
    r = r < 0 ? r : uart(a, SCR, &v, false);
    ktest_check(r == 0 && v == 0x3c, "BAR0 scratch register: write 3c, read %02x", v);
}

/* ---- the pre-copy save of A, restored into B */

static void
put_uart_data(BackendDevice *a, BackendDevice *b)
{
    uint8_t v;
    int r = 0;

    for (int i = 0; i < 20; i++) {
        (void) uart(a, THR, &v, false); /* empty both FIFOs */
        (void) uart(b, THR, &v, false);
    }
    v = 0x5a;
    r |= uart(a, SCR, &v, true);
    for (const char *p = "hi!"; *p; p++) {
        v = (uint8_t) *p;
        r |= uart(a, THR, &v, true);
    }
    v = 0x11;
    r |= uart(b, SCR, &v, true);
    ktest_check(r == 0, "A: scratch 5a and 'hi!' in the FIFO; B: scratch 11");
}

/* RUNNING -> PRE_COPY, the initial data to the temporary end. Returns the session. */
static DataSession *
precopy_start(BackendDevice *a, uint8_t *stream, size_t *got)
{
    DataSession *s = NULL;
    uint64_t initial = 0, dirty = 1;
    ssize_t n;
    int r;

    ktest_check(a->ops->set_state(a, DEVICE_STATE_PRE_COPY, &s) == 0 && s,
                "A: running -> pre_copy opens a session");
    if (!s) {
        return NULL;
    }
    r = s->ops->precopy_info(s, &initial, &dirty);
    ktest_check(r == 0 && initial == 24 && dirty == 0,
                "A: PRECOPY_INFO initial_bytes=%llu dirty_bytes=%llu (mtty: 24, 0)",
                (unsigned long long) initial, (unsigned long long) dirty);
    while ((n = s->ops->read(s, stream + *got, 8)) > 0) {
        *got += (size_t) n;
    }
    ktest_check(n == 0 && *got == 24, "A: pre-copy reads 24 bytes, then read() == 0 (mtty's "
                "temporary end; the uAPI says ENOMSG, mlx5 does that): %zd after %zu", n, *got);
    ktest_check(s->ops->precopy_info(s, &initial, &dirty) == 0 && initial == 0 && dirty == 0,
                "A: PRECOPY_INFO now 0/0: nothing more for now");
    ktest_check(s->ops->read(s, stream + *got, 8) == 0, "A: read() still 0: not an error");
    return s;
}

static void
precopy_finish(BackendDevice *a, DataSession *s, uint8_t *stream, size_t *got)
{
    DataSession *extra = NULL;
    uint64_t initial, dirty, size = 0;
    uint8_t v = 0xa5;
    ssize_t n;

    ktest_check(uart(a, SCR, &v, true) == 0, "A: scratch a5 written while pre-copying");
    ktest_check(a->ops->set_state(a, DEVICE_STATE_PRE_COPY_P2P, &extra) == 0 && !extra,
                "A: pre_copy -> pre_copy_p2p: no new session");
    ktest_check(a->ops->set_state(a, DEVICE_STATE_STOP_COPY, &extra) == 0 && !extra,
                "A: pre_copy_p2p -> stop_copy: no new fd, the pre-copy session goes on");
    while ((n = s->ops->read(s, stream + *got, 4096)) > 0) {
        *got += (size_t) n;
    }
    (void) a->ops->data_size(a, &size);
    ktest_check(n == 0 && *got == 60 && size == *got,
                "A: the rest read to EOF: %zu bytes in all = MIG_DATA_SIZE %llu", *got,
                (unsigned long long) size);
    ktest_check(s->ops->read(s, stream, 1) == 0, "A: read() after EOF: 0 again");
    ktest_check(s->ops->precopy_info(s, &initial, &dirty) == -EINVAL,
                "A: PRECOPY_INFO in stop_copy: -EINVAL");
    ktest_check(a->ops->set_state(a, DEVICE_STATE_STOP, &extra) == 0 && !extra,
                "A: stop_copy -> stop");
    ktest_check(s->ops->read(s, stream, 1) == -ENODEV, "A: the session is dead: -ENODEV");
}

static void
restore_into(BackendDevice *b, const uint8_t *stream, size_t size)
{
    DataSession *s = NULL;
    uint64_t i, d;
    uint8_t c;
    int ok = 1;

    ktest_check(b->ops->set_state(b, DEVICE_STATE_RESUMING, &s) == 0 && s,
                "B: running -> resuming (one SET: running_p2p, stop, resuming) opens a session");
    if (!s) {
        return;
    }
    ktest_check(s->ops->read(s, &c, 1) == -EBADF, "B: read() on the resuming session: -EBADF");
    ktest_check(s->ops->precopy_info(s, &i, &d) == -ENOTTY,
                "B: PRECOPY_INFO on the resuming session: -ENOTTY");
    for (size_t off = 0; off < size; off += 7) {
        size_t len = size - off < 7 ? size - off : 7;
        ok &= s->ops->write(s, stream + off, len) == (ssize_t) len;
    }
    ktest_check(ok, "B: %zu bytes written in 7-byte pieces", size);
    ktest_check(b->ops->set_state(b, DEVICE_STATE_RUNNING, NULL) == 0,
                "B: resuming -> running (the load at resuming -> stop passes)");
    ktest_check(s->ops->write(s, stream, 1) == -ENODEV, "B: the resuming session is dead: -ENODEV");
    data_session_free(s);
}

static void
check_uart_arrived(BackendDevice *b)
{
    uint8_t v = 0;
    char rx[4] = "";

    (void) uart(b, SCR, &v, false);
    ktest_check(v == 0xa5,
                "B: scratch %02x = a5, the value A had when it stopped", v);
    for (int i = 0; i < 3; i++) {
        (void) uart(b, THR, (uint8_t *) &rx[i], false);
    }
    ktest_check(strcmp(rx, "hi!") == 0, "B: FIFO pops '%s' = 'hi!'", rx);
}

/* ---- sessions that end */

static void
check_session_ends(BackendDevice *a, BackendDevice *b, const uint8_t *stream)
{
    DataSession *s = NULL;
    DeviceState st = DEVICE_STATE_ERROR;
    uint8_t junk[256];
    uint8_t c;
    int r;

    memset(junk, 0xab, sizeof(junk));
    r = a->ops->reset(a);
    r = r < 0 ? r : a->ops->get_state(a, &st);
    ktest_check(r == 0 && st == DEVICE_STATE_RUNNING,
                "A: reset from stop (VFIO_DEVICE_RESET although mtty does not advertise it): %s",
                fsm_state_name(st));
    (void) a->ops->set_state(a, DEVICE_STATE_STOP_COPY, &s);
    ktest_check(s && a->ops->reset(a) == 0 && s->ops->read(s, &c, 1) == -ENODEV,
                "A: a reset in stop_copy kills the session: -ENODEV");
    data_session_free(s);
    s = NULL;
    (void) b->ops->set_state(b, DEVICE_STATE_RESUMING, &s);
    ktest_check(s && s->ops->write(s, junk, sizeof(junk)) == -ENOMEM,
                "B: 256 garbage bytes into resuming: -ENOMEM (more than the 60 mtty takes)");
    ktest_check(s && s->ops->write(s, junk, 60) == -EFAULT,
                "B: 60 garbage bytes: -EFAULT (bad magic)");
    ktest_check(b->ops->reset(b) == 0 && b->ops->get_state(b, &st) == 0 &&
                    st == DEVICE_STATE_RUNNING && s->ops->write(s, stream, 1) == -ENODEV,
                "B: reset out of resuming: running, session dead");
    data_session_free(s);
}

/* ---- fds */

static int
count_fds(bool *all_cloexec)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    *all_cloexec = true;
    while (d && (de = readdir(d))) {
        int fd = atoi(de->d_name);

        if (de->d_name[0] == '.' || fd == dirfd(d)) {
            continue;
        }
        n++;
        if (fd > 2 && !(fcntl(fd, F_GETFD) & FD_CLOEXEC)) {
            *all_cloexec = false;
            ktest_diag("fd %d is not close-on-exec", fd);
        }
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void
check_fds(const char *uc, const char *cdev_c)
{
    bool cloexec, cloexec_open;
    int before = count_fds(&cloexec), during = 0, after, r;
    char err[512];

    for (int i = 0; i < 3; i++) {
        BackendDevice *c = open_dev(i % 2 ? KERNEL_ADDRESS_CDEV : KERNEL_ADDRESS_MDEV,
                                    i % 2 ? cdev_c : uc, NULL, err, sizeof(err), &r);
        DataSession *s = NULL;
        uint8_t byte;

        if (!c) {
            ktest_check(false, "C opens: %s", err);
            return;
        }
        /* mtty keeps its migration state across close: start each round from RUNNING */
        r = c->ops->reset(c);
        r = r < 0 ? r : c->ops->set_state(c, DEVICE_STATE_STOP_COPY, &s);
        if (r < 0) {
            ktest_diag("C: reset + stop_copy: %s", strerror(-r));
        }
        during = count_fds(&cloexec_open);
        ktest_check(cloexec_open && s, "C (%s path) with a session: every fd close-on-exec (%d)",
                    i % 2 ? "iommufd" : "group", during);
        backend_device_free(c);
        ktest_check(s && s->ops->read(s, &byte, 1) == -ENODEV,
                    "C freed with its session open: the session answers -ENODEV");
        data_session_free(s);
    }
    after = count_fds(&cloexec);
    ktest_check(after == before, "open/free three times leaves the fds as they were (%d -> %d)",
                before, after);
}

int
main(int argc, char **argv)
{
    char cdev_a[128], cdev_b[128], cdev_c[128], err[512];
    BackendInfo ia, ib;
    BackendDevice *a, *b;
    uint8_t stream[4096];
    size_t got = 0;
    DataSession *s;
    int r;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 4 || ktest_mdev_cdev_path(argv[1], cdev_a, sizeof(cdev_a)) < 0 ||
        ktest_mdev_cdev_path(argv[2], cdev_b, sizeof(cdev_b)) < 0 ||
        ktest_mdev_cdev_path(argv[3], cdev_c, sizeof(cdev_c)) < 0) {
        fprintf(stderr, "usage: kernel-backend-check UUID_A UUID_B UUID_C (mtty mdevs)\n");
        return 2;
    }
    check_fds(argv[3], cdev_c);
    a = open_dev(KERNEL_ADDRESS_MDEV, argv[1], &ia, err, sizeof(err), &r);
    b = open_dev(KERNEL_ADDRESS_CDEV, cdev_b, &ib, err, sizeof(err), &r);
    if (!ktest_check(a && b, "A and B open: %s", err)) {
        return ktest_finish();
    }
    check_facts(a, &ia, b, &ib, argv[1], argv[2]);
    check_duplicates(argv[1], cdev_a, argv[2]);
    check_busy_group(argv[3], cdev_c);
    check_permissions(argv[3], cdev_c);
    check_regions(a);

    put_uart_data(a, b);
    s = precopy_start(a, stream, &got);
    if (s) {
        precopy_finish(a, s, stream, &got);
        data_session_free(s);
        restore_into(b, stream, got);
        check_uart_arrived(b);
        check_session_ends(a, b, stream);
    }
    (void) a->ops->reset(a);
    (void) b->ops->reset(b);
    backend_device_free(a);
    backend_device_free(b);
    return ktest_finish();
}
