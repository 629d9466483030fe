/* SPDX-License-Identifier: MIT */
/*
 * kernel — the back-end for real VFIO devices: every backend.h call is the matching ioctl,
 * read() or write() on a Linux VFIO device fd or migration data fd (VFIO migration protocol
 * v2), and answers what the kernel answered, errno for errno. Nothing here second-guesses the
 * kernel's state machine: a SET goes to the driver, which walks its own path; the caller
 * (device.c) asks for one arc at a time and reads the state back after a failure.
 *
 * The plan:
 *  - Open (loop thread): check the address strictly, look the device up in sysfs
 *    (kernel_sysfs.c; the root is a parameter), then take one of the two access paths of
 *    shared reference kernel-uapi.md §2:
 *      group   (PCI address, mdev UUID): /dev/vfio/vfio container with TYPE1v2, /dev/vfio/<N>
 *              group, VFIO_GROUP_GET_DEVICE_FD. A group file can be open only once system-wide,
 *              so devices of one group attached to this daemon share one KernelGroup.
 *      iommufd (/dev/vfio/devices/vfioM): open the cdev, /dev/iommu, BIND_IOMMUFD,
 *              IOAS_ALLOC, ATTACH_IOMMUFD_PT. One iommufd and one empty IOAS per device:
 *              the daemon maps no DMA, it only moves device state.
 *    Then VFIO_DEVICE_GET_INFO first (mtty caches num_irqs there), PROBE and GET of the
 *    MIGRATION feature (only the four legal flag sets are accepted; -ENOTTY = not migratable),
 *    GET of the state, PROBE of DMA logging. Every failure becomes one sentence saying what to
 *    do about it.
 *  - Re-adopt (loop thread, after the daemon's restart): the same address and sysfs checks,
 *    then the fds the previous daemon kept in the fd store (store_fds) instead of opening
 *    anything: each checked by fstat/readlink, the group's shared with the group's other
 *    re-adopted devices, the facts and the migration state read from the kernel; never a
 *    reset (closing the last fd of a device is what would reset it).
 *  - Device ops (workers): one VFIO_DEVICE_FEATURE ioctl each; a returned data fd becomes a
 *    KernelSession, which owns it and closes it exactly once in session_free().
 *  - Every fd is O_CLOEXEC and has one owner: the device fd, the iommufd and the KernelGroup's
 *    group and container fds belong to the KernelDevice (the group to all devices sharing it,
 *    refcounted); data fds to their KernelSession.
 *
 * Uses:     vfio_abi.h (the uAPI, with what bookworm's headers lack), kernel_sysfs.h,
 *           core/fsm.h (legal flag sets, which arcs open a session).
 * Threads:  kernel_device_open() and free run on the loop; the ops on workers, one per
 *           device at a time (device.c). The list of open devices has its own mutex.
 * Errors:   negative errno exactly as the kernel returned it; logs at debug level only.
 */
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/cleanup.h"
#include "../util/log.h"
#include "../util/macro.h"
#include "kernel_sysfs.h"
#include "vfio_abi.h"

#define CONTAINER_PATH "/dev/vfio/vfio"
#define IOMMUFD_PATH "/dev/iommu"
#define DOCS_HINT "see docs/kernel.md"

typedef enum KernelAccess {
    KERNEL_ACCESS_GROUP,   /* legacy group/container (type1v2) */
    KERNEL_ACCESS_IOMMUFD, /* iommufd cdev */
} KernelAccess;

/* One open /dev/vfio/<N> and its container, shared by this daemon's devices of group N. */
typedef struct KernelGroup {
    unsigned number;
    int group_fd;     /* owned */
    int container_fd; /* owned */
    unsigned refs;    /* devices using it; freed at 0 */
} KernelGroup;

typedef struct KernelDevice KernelDevice;

struct KernelDevice {
    BackendDevice base;
    KernelDevice *next;     /* in open_devices, under open_lock, once open */
    KernelAccess access;
    KernelSysfsBus bus;
    bool bus_known;         /* false for a cdev sysfs cannot resolve */
    char name[KERNEL_SYSFS_NAME_MAX];  /* sysfs name: BDF or UUID ("" if unknown) */
    char cdev[KERNEL_SYSFS_NAME_MAX];  /* "vfioM", "" if none */
    char driver[64];        /* "" if unknown */
    bool group_known;
    unsigned group_number;
    KernelGroup *group;     /* group access: shared, one reference */
    int iommufd;            /* iommufd access: owned */
    uint32_t ioas_id;
    int device_fd;          /* owned */
    struct vfio_device_info info;
    bool migratable;
    uint32_t mig_flags;
    bool dma_logging;
    bool state_known;       /* the last SET/GET/RESET told us where the device is */
    DeviceState state;
};

typedef struct KernelSession {
    DataSession base;
    int fd; /* the migration data fd; owned, closed in kernel_session_free() */
} KernelSession;

static const BackendOps kernel_ops;
static const SessionOps kernel_session_ops;

/* Every open KernelDevice: lets devices of one group share the group file and catches a
 * device attached twice. Touched only by open and free. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static KernelDevice *open_devices;

/* Writes the one sentence that explains a failure into the caller's buffer. */
_printf_(3, 4) static void
fail(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err && err_size > 0) {
        va_start(ap, fmt);
        (void) vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
}

/* ---- VFIO_DEVICE_FEATURE */

/* One VFIO_DEVICE_FEATURE ioctl with @flags and a payload of @size bytes from/to @data.
 * Non-logging; -errno as the kernel returned it. */
static int
kernel_feature(int fd, uint32_t flags, void *data, size_t size)
{
    VfioFeatureBuf buf = {0};

    assert(size <= VFIO_ABI_FEATURE_PAYLOAD_MAX);
    buf.hdr.argsz = (uint32_t) (sizeof(buf.hdr) + size);
    buf.hdr.flags = flags;
    if (data && size > 0) {
        memcpy(buf.hdr.data, data, size);
    }
    if (ioctl(fd, VFIO_DEVICE_FEATURE, &buf.hdr) < 0) {
        return -errno;
    }
    /* GET fills the payload; SET of MIG_DEVICE_STATE writes back data_fd. */
    if (data && size > 0 && !(flags & VFIO_DEVICE_FEATURE_PROBE)) {
        memcpy(data, buf.hdr.data, size);
    }
    return 0;
}

static int
kernel_probe(int fd, uint32_t feature, uint32_t direction)
{
    return kernel_feature(fd, VFIO_DEVICE_FEATURE_PROBE | direction | feature, NULL, 0);
}

/* ---- the group table */

static KernelGroup *
kernel_group_unref(KernelGroup *g)
{
    if (!g || --g->refs > 0) {
        return NULL;
    }
    /* The group before the container: a container lives as long as a group uses it. */
    if (g->group_fd >= 0) {
        (void) close(g->group_fd);
    }
    if (g->container_fd >= 0) {
        (void) close(g->container_fd);
    }
    free(g);
    return NULL;
}
DEFINE_CLEANUP_FUNC(KernelGroup *, kernel_group_unref);

/* The reasons a /dev/vfio node does not open, each with what to do about it. */
static int
fail_open(const char *path, int r, char *err, size_t err_size)
{
    if (r == -EACCES || r == -EPERM) {
        fail(err, err_size, "permission denied on %s: run as root or grant access (%s)", path,
             DOCS_HINT);
        return -EACCES;
    }
    if (r == -EBUSY) {
        fail(err, err_size, "%s is busy: another process (QEMU?) owns the group", path);
        return -EBUSY;
    }
    if (r == -ENOENT || r == -ENODEV || r == -ENXIO) {
        fail(err, err_size, "%s does not exist: the vfio driver is not loaded or the device is "
             "not bound to a vfio driver (%s)", path, DOCS_HINT);
        return -ENOENT;
    }
    fail(err, err_size, "cannot open %s: %s", path, strerror(-r));
    return r;
}

static int
kernel_container_open(int *ret_fd, char *err, size_t err_size)
{
    _cleanup_close_ int fd = open(CONTAINER_PATH, O_RDWR | O_CLOEXEC);
    int api;

    if (fd < 0) {
        return fail_open(CONTAINER_PATH, -errno, err, err_size);
    }
    api = ioctl(fd, VFIO_GET_API_VERSION);
    if (api != VFIO_API_VERSION) {
        fail(err, err_size, "%s speaks VFIO API version %d, not %d", CONTAINER_PATH, api,
             VFIO_API_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
        fail(err, err_size, "the kernel's VFIO container lacks the type1v2 IOMMU backend "
             "(CONFIG_VFIO_IOMMU_TYPE1); attach the device by its cdev (iommufd) instead");
        return -EOPNOTSUPP;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* Opens group @number, checks it is viable, puts it in a new type1v2 container. */
static int
kernel_group_new(const char *root, unsigned number, KernelGroup **ret, char *err,
                 size_t err_size)
{
    _cleanup_(kernel_group_unrefp) KernelGroup *g = calloc(1, sizeof(*g));
    struct vfio_group_status status = {.argsz = sizeof(status)};
    char path[64], blocker[160] = "";
    int r;

    if (!g) {
        return -ENOMEM;
    }
    *g = (KernelGroup){.number = number, .group_fd = -EBADF, .container_fd = -EBADF, .refs = 1};
    r = kernel_container_open(&g->container_fd, err, err_size);
    if (r < 0) {
        return r;
    }
    (void) snprintf(path, sizeof(path), "/dev/vfio/%u", number);
    g->group_fd = open(path, O_RDWR | O_CLOEXEC);
    if (g->group_fd < 0) {
        return fail_open(path, -errno, err, err_size);
    }
    if (ioctl(g->group_fd, VFIO_GROUP_GET_STATUS, &status) < 0) {
        r = -errno;
        fail(err, err_size, "VFIO_GROUP_GET_STATUS on %s failed: %s", path, strerror(-r));
        return r;
    }
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        if (kernel_sysfs_group_blocker(root, number, blocker + 2, sizeof(blocker) - 2) > 0) {
            memcpy(blocker, ": ", 2);
        }
        fail(err, err_size, "group %u is not viable: all devices in the group must be bound to "
             "vfio drivers%s (%s)", number, blocker, DOCS_HINT);
        return -EMEDIUMTYPE;
    }
    /* SET_IOMMU must follow SET_CONTAINER and precede GET_DEVICE_FD (-EINVAL otherwise). */
    if (ioctl(g->group_fd, VFIO_GROUP_SET_CONTAINER, &g->container_fd) < 0 ||
        ioctl(g->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
        r = -errno;
        fail(err, err_size, "cannot put %s into a type1v2 container: %s", path, strerror(-r));
        return r;
    }
    *ret = TAKE_PTR(g);
    return 0;
}

/* The daemon's KernelGroup for @number: shared when another attached device has it open.
 * Called with open_lock held. */
static KernelGroup *
kernel_group_find(unsigned number)
{
    for (KernelDevice *o = open_devices; o; o = o->next) {
        if (o->group && o->group->number == number) {
            o->group->refs++;
            return o->group;
        }
    }
    return NULL;
}

static int
kernel_group_get(const char *root, unsigned number, KernelGroup **ret, char *err,
                 size_t err_size)
{
    *ret = kernel_group_find(number);
    return *ret ? 0 : kernel_group_new(root, number, ret, err, err_size);
}

/* ---- opening: the group path */

/* Sysfs checks of a PCI device or mdev before anything is opened; finds its group. */
static int
kernel_check_sysfs(KernelDevice *kd, const char *root, char *err, size_t err_size)
{
    const char *bus = kernel_sysfs_bus_name(kd->bus);
    char path[PATH_MAX];
    int r;

    r = kernel_sysfs_device_path(root, kd->bus, kd->name, path, sizeof(path));
    if (r < 0) {
        fail(err, err_size, "no device %s in sysfs (%s/bus/%s/devices/%s: %s)", kd->name, root,
             bus, kd->name, strerror(-r));
        return r == -ENOTDIR ? -ENOENT : r;
    }
    r = kernel_sysfs_driver(root, kd->bus, kd->name, kd->driver, sizeof(kd->driver));
    /* mdevs are VFIO devices by construction: their parent's mdev driver registers them. */
    if (kd->bus == KERNEL_SYSFS_BUS_PCI && (r < 0 || !kernel_sysfs_driver_is_vfio(kd->driver))) {
        if (r < 0) {
            fail(err, err_size, "device %s is not bound to a vfio driver (bind it to vfio-pci "
                 "or its variant driver: %s)", kd->name, DOCS_HINT);
        } else {
            fail(err, err_size, "device %s is bound to '%s', not to a vfio driver (bind it to "
                 "vfio-pci or its variant driver: %s)", kd->name, kd->driver, DOCS_HINT);
        }
        return -EMEDIUMTYPE;
    }
    r = kernel_sysfs_iommu_group(root, kd->bus, kd->name, &kd->group_number);
    if (r < 0) {
        fail(err, err_size, "device %s has no IOMMU group (%s): enable the IOMMU "
             "(intel_iommu=on or amd_iommu=on) or see docs/kernel.md", kd->name, strerror(-r));
        return -EMEDIUMTYPE;
    }
    kd->group_known = true;
    kd->bus_known = true;
    (void) kernel_sysfs_vfio_cdev(root, kd->bus, kd->name, kd->cdev, sizeof(kd->cdev));
    return 0;
}

/* Called with open_lock held. */
static int
kernel_open_group(KernelDevice *kd, const char *root, char *err, size_t err_size)
{
    int r;

    r = kernel_check_sysfs(kd, root, err, err_size);
    if (r < 0) {
        return r;
    }
    r = kernel_group_get(root, kd->group_number, &kd->group, err, err_size);
    if (r < 0) {
        return r;
    }
    /* The new fd comes with O_CLOEXEC from the kernel. */
    kd->device_fd = ioctl(kd->group->group_fd, VFIO_GROUP_GET_DEVICE_FD, kd->name);
    if (kd->device_fd < 0) {
        r = -errno;
        kd->device_fd = -EBADF;
        if (r == -EBUSY) {
            fail(err, err_size, "device %s is busy: another process (QEMU?) has opened it "
                 "through its cdev", kd->name);
        } else {
            fail(err, err_size, "cannot get device %s from /dev/vfio/%u: %s", kd->name,
                 kd->group_number, strerror(-r));
        }
        return r;
    }
    return 0;
}

/* ---- opening: the iommufd cdev path */

/* What sysfs knows about the cdev: its device, group and driver (for describe and for the
 * duplicate check). A cdev sysfs cannot resolve is an error only if the node is missing too. */
static void
kernel_cdev_sysfs_facts(KernelDevice *kd, const char *root)
{
    if (kernel_sysfs_cdev_device(root, kd->cdev, &kd->bus, kd->name, sizeof(kd->name)) < 0) {
        kd->name[0] = '\0';
        return;
    }
    kd->bus_known = true;
    kd->group_known = kernel_sysfs_iommu_group(root, kd->bus, kd->name, &kd->group_number) >= 0;
    (void) kernel_sysfs_driver(root, kd->bus, kd->name, kd->driver, sizeof(kd->driver));
}

static int
kernel_iommufd_bind(KernelDevice *kd, const char *path, char *err, size_t err_size)
{
    struct vfio_device_bind_iommufd bind = {.argsz = sizeof(bind), .iommufd = kd->iommufd};
    struct iommu_ioas_alloc ioas = {.size = sizeof(ioas)};
    struct vfio_device_attach_iommufd_pt attach = {.argsz = sizeof(attach)};
    int r;

    /* Every device ioctl but BIND answers -EINVAL until the device is bound. */
    if (ioctl(kd->device_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0) {
        r = -errno;
        if (r == -EBUSY) {
            fail(err, err_size, "%s is busy: another process (QEMU?) owns its group", path);
            return -EBUSY;
        }
        if (r == -EINVAL) {
            /* vfio_df_open(): a cdev may be opened only while nobody else has the device. */
            fail(err, err_size, "%s is busy: another process (QEMU?) has the device open", path);
            return -EBUSY;
        }
        fail(err, err_size, "VFIO_DEVICE_BIND_IOMMUFD on %s failed: %s", path, strerror(-r));
        return r;
    }
    if (ioctl(kd->iommufd, IOMMU_IOAS_ALLOC, &ioas) < 0) {
        r = -errno;
        fail(err, err_size, "IOMMU_IOAS_ALLOC on %s failed: %s", IOMMUFD_PATH, strerror(-r));
        return r;
    }
    kd->ioas_id = ioas.out_ioas_id;
    attach.pt_id = ioas.out_ioas_id;
    if (ioctl(kd->device_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) < 0) {
        r = -errno;
        fail(err, err_size, "VFIO_DEVICE_ATTACH_IOMMUFD_PT on %s failed: %s", path, strerror(-r));
        return r;
    }
    return 0;
}

static int
kernel_open_cdev(KernelDevice *kd, const char *root, const char *path, char *err,
                 size_t err_size)
{
    int r;

    kd->device_fd = open(path, O_RDWR | O_CLOEXEC);
    if (kd->device_fd < 0) {
        r = -errno;
        if (r == -ENOENT && !kd->bus_known) {
            fail(err, err_size, "no device %s: no such VFIO cdev in sysfs (%s/class/vfio-dev/%s); "
                 "is the device bound to a vfio driver, and has the kernel "
                 "CONFIG_VFIO_DEVICE_CDEV? (%s)", path, root, kd->cdev, DOCS_HINT);
            return -ENOENT;
        }
        return fail_open(path, r, err, err_size);
    }
    kd->iommufd = open(IOMMUFD_PATH, O_RDWR | O_CLOEXEC);
    if (kd->iommufd < 0) {
        r = -errno;
        if (r == -ENOENT) {
            fail(err, err_size, "no %s: this kernel has no iommufd (CONFIG_IOMMUFD); attach the "
                 "device by --pci or --mdev (group path) instead", IOMMUFD_PATH);
            return -EOPNOTSUPP;
        }
        return fail_open(IOMMUFD_PATH, r, err, err_size);
    }
    return kernel_iommufd_bind(kd, path, err, err_size);
}

/* ---- opening: facts every path reads */

/* GET_INFO, then the migration feature: flags, state, DMA logging. */
static int
kernel_read_facts(KernelDevice *kd, const char *what, char *err, size_t err_size)
{
    struct vfio_device_feature_migration mig = {0};
    struct vfio_device_feature_mig_state st = {0};
    char flags[64];
    int r;

    kd->info = (struct vfio_device_info){.argsz = sizeof(kd->info)};
    if (ioctl(kd->device_fd, VFIO_DEVICE_GET_INFO, &kd->info) < 0) {
        r = -errno;
        fail(err, err_size, "VFIO_DEVICE_GET_INFO on %s failed: %s", what, strerror(-r));
        return r;
    }
    r = kernel_probe(kd->device_fd, VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_GET);
    if (r == -ENOTTY) {
        kd->migratable = false; /* a device without migration support: attachable, not movable */
        return 0;
    }
    if (r >= 0) {
        r = kernel_feature(kd->device_fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
                           &mig, sizeof(mig));
    }
    if (r < 0) {
        fail(err, err_size, "cannot read the migration support of %s: %s", what, strerror(-r));
        return r;
    }
    if (mig.flags > UINT32_MAX || !fsm_flags_valid((uint32_t) mig.flags)) {
        fail(err, err_size, "%s reports migration flags 0x%" PRIx64 " (%s), not one of the four "
             "sets the kernel defines (stop_copy, stop_copy+p2p, stop_copy+pre_copy, "
             "stop_copy+p2p+pre_copy); refusing to drive it", what, (uint64_t) mig.flags,
             fsm_flags_to_string((uint32_t) mig.flags, flags, sizeof(flags)));
        return -EPROTONOSUPPORT;
    }
    kd->migratable = true;
    kd->mig_flags = (uint32_t) mig.flags;
    r = kernel_feature(kd->device_fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                       &st, sizeof(st));
    if (r < 0 || !fsm_state_valid((int) st.device_state)) {
        fail(err, err_size, "cannot read the migration state of %s: %s", what,
             r < 0 ? strerror(-r) : "the kernel reports a state number this daemon does not know");
        return r < 0 ? r : -EPROTONOSUPPORT;
    }
    kd->state = (DeviceState) st.device_state;
    kd->state_known = true;
    kd->dma_logging = kernel_probe(kd->device_fd, VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
                                   VFIO_DEVICE_FEATURE_SET) >= 0;
    return 0;
}

/* ---- the device object */

static void
kernel_device_destroy(KernelDevice *kd)
{
    if (!kd) {
        return;
    }
    /* The device fd first: the kernel's close_device() ends any data session, and the device
     * must leave its IOMMU context before the group or iommufd goes. */
    if (kd->device_fd >= 0) {
        (void) close(kd->device_fd);
    }
    if (kd->iommufd >= 0) {
        (void) close(kd->iommufd);
    }
    kernel_group_unref(kd->group);
    free(kd);
}

/* A device that failed to open may hold a reference on a group another device shares: drop
 * it under the lock that guards sharing. */
static void
kernel_device_abandon(KernelDevice *kd)
{
    (void) pthread_mutex_lock(&open_lock);
    kernel_device_destroy(kd);
    (void) pthread_mutex_unlock(&open_lock);
}
DEFINE_CLEANUP_FUNC(KernelDevice *, kernel_device_abandon);

static KernelDevice *
kernel_device_alloc(void)
{
    KernelDevice *kd = calloc(1, sizeof(*kd));

    if (kd) {
        kd->base.ops = &kernel_ops;
        kd->device_fd = -EBADF;
        kd->iommufd = -EBADF;
    }
    return kd;
}

/* Each kind of address: how the device is reached, how its canonical name is parsed and the
 * form a refusal says it expects. A cdev has no sysfs bus and its name is the cdev path. */
static const struct {
    KernelAccess access;
    KernelSysfsBus bus;
    bool is_cdev;
    int (*parse)(const char *s, char *buf, size_t size);
    const char *expected;
} kernel_address_kinds[] = {
    [KERNEL_ADDRESS_PCI] = {KERNEL_ACCESS_GROUP, KERNEL_SYSFS_BUS_PCI, false,
                            kernel_sysfs_parse_bdf,
                            "a PCI address: expected DDDD:BB:DD.F, e.g. 0000:3b:00.2"},
    [KERNEL_ADDRESS_MDEV] = {KERNEL_ACCESS_GROUP, KERNEL_SYSFS_BUS_MDEV, false,
                             kernel_sysfs_parse_uuid,
                             "an mdev UUID: expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex "
                             "digits)"},
    [KERNEL_ADDRESS_CDEV] = {KERNEL_ACCESS_IOMMUFD, .is_cdev = true,
                             .parse = kernel_sysfs_parse_cdev_path,
                             .expected = "a VFIO device cdev: expected /dev/vfio/devices/vfioN"},
};

/* Canonical names from the user's address; -EINVAL with the expected form. */
static int
kernel_parse_address(KernelDevice *kd, const KernelAddress *addr, char *err, size_t err_size)
{
    const char *v = addr->value ? addr->value : "";
    __typeof__(&kernel_address_kinds[0]) k;

    if ((unsigned) addr->kind >= ELEMENTSOF(kernel_address_kinds)) {
        fail(err, err_size, "unknown kind of kernel address");
        return -EINVAL;
    }
    k = &kernel_address_kinds[addr->kind];
    kd->access = k->access;
    kd->bus = k->bus;
    if (k->parse(v, k->is_cdev ? kd->cdev : kd->name,
                 k->is_cdev ? sizeof(kd->cdev) : sizeof(kd->name)) < 0) {
        fail(err, err_size, "'%.64s' is not %s", v, k->expected);
        return -EINVAL;
    }
    return 0;
}

/* Called with open_lock held: the same device attached twice would share its migration
 * state between two daemon devices. */
static int
kernel_check_duplicate(const KernelDevice *kd, char *err, size_t err_size)
{
    for (const KernelDevice *o = open_devices; o; o = o->next) {
        if ((kd->name[0] && strcmp(o->name, kd->name) == 0) ||
            (kd->cdev[0] && strcmp(o->cdev, kd->cdev) == 0)) {
            fail(err, err_size, "device %s is already attached to this daemon",
                 kd->name[0] ? kd->name : kd->cdev);
            return -EBUSY;
        }
        /* The kernel would say EBUSY and blame "another process": it is this one. */
        if (kd->access == KERNEL_ACCESS_IOMMUFD && kd->group_known && o->group &&
            o->group->number == kd->group_number) {
            fail(err, err_size, "group %u of %s is open in this daemon for device %s: attach this "
                 "device through its group too (--pci or --mdev)", kd->group_number, kd->cdev,
                 o->name);
            return -EBUSY;
        }
    }
    return 0;
}

/* What sysfs says of a cdev, then the duplicate check: first for an open and a re-adopt.
 * Called with open_lock held. */
static int
kernel_check_new(KernelDevice *kd, const char *root, char *err, size_t err_size)
{
    if (kd->access == KERNEL_ACCESS_IOMMUFD) {
        kernel_cdev_sysfs_facts(kd, root);
    }
    return kernel_check_duplicate(kd, err, err_size);
}

static int
kernel_open_locked(KernelDevice *kd, const KernelAddress *addr, const char *root, char *err,
                   size_t err_size)
{
    int r = kernel_check_new(kd, root, err, err_size);

    if (r < 0) {
        return r;
    }
    if (kd->access == KERNEL_ACCESS_GROUP) {
        return kernel_open_group(kd, root, err, err_size);
    }
    return kernel_open_cdev(kd, root, addr->value, err, err_size);
}

/* The device, its facts read, joins the open devices and goes to the caller. */
static void
kernel_device_publish(KernelDevice *kd, const char *what, BackendDevice **ret,
                      BackendInfo *ret_info, char *err, size_t err_size)
{
    TRACE(kernel_device_open, "%s: %s access, flags 0x%x, state %s", what,
          kd->access == KERNEL_ACCESS_GROUP ? "group" : "iommufd", kd->mig_flags,
          kd->migratable ? fsm_state_name(kd->state) : "-");
    if (ret_info) {
        *ret_info = (BackendInfo){
            .migratable = kd->migratable,
            .mig_flags = kd->mig_flags,
            /* a device without migration has no state: it just runs */
            .initial_state = kd->migratable ? kd->state : DEVICE_STATE_RUNNING,
            .has_group = kd->group != NULL,
            .group = kd->group ? kd->group->number : 0,
        };
    }
    if (err && err_size > 0) {
        err[0] = '\0';
    }
    (void) pthread_mutex_lock(&open_lock);
    kd->next = open_devices;
    open_devices = kd;
    (void) pthread_mutex_unlock(&open_lock);
    *ret = &kd->base;
}

/* Reads the facts of the device *@kdp (opened or re-adopted) and publishes it, taking it from
 * the caller on success. */
static int
kernel_device_finish(KernelDevice **kdp, const char *what, BackendDevice **ret,
                     BackendInfo *ret_info, char *err, size_t err_size)
{
    int r = kernel_read_facts(*kdp, what, err, err_size);

    if (r < 0) {
        return r;
    }
    kernel_device_publish(TAKE_PTR(*kdp), what, ret, ret_info, err, err_size);
    return 0;
}

int
kernel_device_open(const KernelAddress *addr, const char *sysfs_root, BackendDevice **ret,
                   BackendInfo *ret_info, char *err, size_t err_size)
{
    _cleanup_(kernel_device_abandonp) KernelDevice *kd = kernel_device_alloc();
    const char *root = sysfs_root && *sysfs_root ? sysfs_root : "/sys";
    int r;

    if (!kd) {
        return -ENOMEM;
    }
    if (!addr || !ret) {
        return -EINVAL;
    }
    r = kernel_parse_address(kd, addr, err, err_size);
    if (r < 0) {
        return r;
    }
    (void) pthread_mutex_lock(&open_lock);
    r = kernel_open_locked(kd, addr, root, err, err_size);
    (void) pthread_mutex_unlock(&open_lock);
    if (r < 0) {
        return r;
    }
    return kernel_device_finish(&kd, addr->value, ret, ret_info, err, err_size);
}

/* ---- re-adopting a device the previous daemon kept in the fd store */

/* True when @fd is an open file of the character device node @path (the fstat cross-check
 * logind makes on the fds it gets back). */
static bool
kernel_fd_is_node(int fd, const char *path)
{
    struct stat a, b;

    return fd >= 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 && S_ISCHR(a.st_mode) &&
           S_ISCHR(b.st_mode) && a.st_rdev == b.st_rdev;
}

/* A group-path device fd is an anonymous inode; its name is all that tells it from another
 * anonymous file (kernels before 6.18 show no vfio-device-syspath in fdinfo). */
static bool
kernel_fd_is_vfio_device(int fd)
{
    char link[64], target[64];
    ssize_t n;

    (void) snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) {
        return false;
    }
    target[n] = '\0';
    return strcmp(target, "anon_inode:[vfio-device]") == 0;
}

/* A data fd back from the fd store: an anonymous inode (each driver names its own: mtty
 * "mtty_mig", mlx5 "mlx5vf_mig_fd") that is not a device fd, opened O_RDONLY (saving) or
 * O_WRONLY (resuming), as the core gives them; an eventfd or a device fd is O_RDWR. */
static int
kernel_data_fd_check(BackendDevice *bd, int fd, char *err, size_t err_size)
{
    char link[64], target[128];
    int fl = fcntl(fd, F_GETFL);
    ssize_t n;

    (void) bd;
    (void) snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    target[n < 0 ? 0 : n] = '\0';
    if (n < 0 || fl < 0 || strncmp(target, "anon_inode:", strlen("anon_inode:")) != 0 ||
        kernel_fd_is_vfio_device(fd) || ((fl & O_ACCMODE) != O_RDONLY &&
                                         (fl & O_ACCMODE) != O_WRONLY)) {
        fail(err, err_size, "it is '%s'%s, not a migration data fd (an anonymous inode "
             "opened read-only or write-only)", target[0] ? target : "unreadable",
             fl >= 0 && (fl & O_ACCMODE) == O_RDWR ? " opened read-write" : "");
        return -EBADF;
    }
    return 0;
}

/* The KernelGroup of a re-adopted device: the one another re-adopted device of the group
 * brought, or a new one from the kept fds, which must be group @number in a container. Takes
 * *group_fd and *container_fd when it keeps them. Called with open_lock held. */
static int
kernel_group_adopt(unsigned number, int *group_fd, int *container_fd, KernelGroup **ret,
                   char *err, size_t err_size)
{
    struct vfio_group_status status = {.argsz = sizeof(status)};
    KernelGroup *g;
    char path[64];

    *ret = kernel_group_find(number);
    if (*ret) {
        return 0;
    }
    (void) snprintf(path, sizeof(path), "/dev/vfio/%u", number);
    if (*group_fd < 0 || *container_fd < 0) {
        fail(err, err_size, "the fds of group %u (its group and container) did not come back",
             number);
        return -ENOENT;
    }
    if (!kernel_fd_is_node(*group_fd, path) || !kernel_fd_is_node(*container_fd, CONTAINER_PATH)) {
        fail(err, err_size, "the kept fds of group %u are not %s and %s", number, path,
             CONTAINER_PATH);
        return -EBADF;
    }
    if (ioctl(*group_fd, VFIO_GROUP_GET_STATUS, &status) < 0 ||
        (status.flags & (VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET)) !=
            (VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET)) {
        fail(err, err_size, "group %u is no longer viable and in its container", number);
        return -EMEDIUMTYPE;
    }
    g = calloc(1, sizeof(*g));
    if (!g) {
        return -ENOMEM;
    }
    *g = (KernelGroup){.number = number, .group_fd = TAKE_FD(*group_fd),
                       .container_fd = TAKE_FD(*container_fd), .refs = 1};
    *ret = g;
    return 0;
}

/* Called with open_lock held; @kd owns its device fd and iommufd already. */
static int
kernel_adopt_locked(KernelDevice *kd, const KernelAddress *addr, const char *root,
                    uint32_t group, int *group_fd, int *container_fd, char *err,
                    size_t err_size)
{
    int r = kernel_check_new(kd, root, err, err_size);

    if (r < 0) {
        return r;
    }
    if (kd->access == KERNEL_ACCESS_IOMMUFD) {
        if (!kernel_fd_is_node(kd->device_fd, addr->value) ||
            !kernel_fd_is_node(kd->iommufd, IOMMUFD_PATH)) {
            fail(err, err_size, "the kept fds are not %s and %s", addr->value, IOMMUFD_PATH);
            return -EBADF;
        }
        return 0;
    }
    r = kernel_check_sysfs(kd, root, err, err_size);
    if (r < 0) {
        return r;
    }
    if (kd->group_number != group) {
        fail(err, err_size, "sysfs puts %s in IOMMU group %u, the journal in group %" PRIu32,
             kd->name, kd->group_number, group);
        return -ESTALE;
    }
    if (!kernel_fd_is_vfio_device(kd->device_fd)) {
        fail(err, err_size, "the kept device fd is not a VFIO device");
        return -EBADF;
    }
    return kernel_group_adopt(group, group_fd, container_fd, &kd->group, err, err_size);
}

void
kernel_kept_fds_close(const KernelKeptFds *fds)
{
    const int all[] = {fds->device_fd, fds->group_fd, fds->container_fd, fds->iommufd};

    for (size_t i = 0; i < ELEMENTSOF(all); i++) {
        if (all[i] >= 0) {
            (void) close(all[i]);
        }
    }
}

int
kernel_device_adopt(const KernelAddress *addr, const char *sysfs_root, uint32_t group,
                    const KernelKeptFds *fds, BackendDevice **ret, BackendInfo *ret_info,
                    char *err, size_t err_size)
{
    _cleanup_close_ int group_fd = fds->group_fd, container_fd = fds->container_fd;
    _cleanup_close_ int device_fd = fds->device_fd, iommufd = fds->iommufd;
    _cleanup_(kernel_device_abandonp) KernelDevice *kd = kernel_device_alloc();
    const char *root = sysfs_root && *sysfs_root ? sysfs_root : "/sys";
    int r;

    if (!kd) {
        return -ENOMEM;
    }
    kd->device_fd = TAKE_FD(device_fd);
    kd->iommufd = TAKE_FD(iommufd);
    r = kernel_parse_address(kd, addr, err, err_size);
    if (r < 0) {
        return r;
    }
    (void) pthread_mutex_lock(&open_lock);
    r = kernel_adopt_locked(kd, addr, root, group, &group_fd, &container_fd, err, err_size);
    (void) pthread_mutex_unlock(&open_lock);
    if (r < 0) {
        return r;
    }
    /* GET_INFO, the migration flags and GET MIG_DEVICE_STATE: where the device really is. */
    return kernel_device_finish(&kd, addr->value, ret, ret_info, err, err_size);
}

static void
kernel_free(BackendDevice *bd)
{
    KernelDevice *kd = (KernelDevice *) bd;

    (void) pthread_mutex_lock(&open_lock);
    for (KernelDevice **p = &open_devices; *p; p = &(*p)->next) {
        if (*p == kd) {
            *p = kd->next;
            break;
        }
    }
    kernel_device_destroy(kd); /* the group reference drops under the lock: groups are shared */
    (void) pthread_mutex_unlock(&open_lock);
}

/* ---- BackendOps */

static int
kernel_get_state(BackendDevice *bd, DeviceState *ret_state)
{
    KernelDevice *kd = (KernelDevice *) bd;
    struct vfio_device_feature_mig_state st = {0};
    int r;

    r = kernel_feature(kd->device_fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                       &st, sizeof(st));
    if (r < 0) {
        kd->state_known = false;
        return r;
    }
    if (!fsm_state_valid((int) st.device_state)) {
        kd->state_known = false;
        return -EPROTO; /* a state this daemon does not know: newer kernel, or a driver bug */
    }
    kd->state = (DeviceState) st.device_state;
    kd->state_known = true;
    *ret_state = kd->state;
    return 0;
}

/* Whether a data fd is expected from a SET to @target. From a known state the kernel's path
 * says (a fd comes only with the request's last arc); otherwise only the targets that some
 * arc opens a session into can bring one. */
static bool
kernel_expects_session(const KernelDevice *kd, DeviceState target)
{
    FsmPath path;

    if (kd->state_known && fsm_compute_path(kd->state, target, kd->mig_flags, &path, NULL) >= 0) {
        return path.n_arcs > 0 && path.session_arc == (int) path.n_arcs - 1;
    }
    return target == DEVICE_STATE_PRE_COPY || target == DEVICE_STATE_PRE_COPY_P2P ||
           target == DEVICE_STATE_STOP_COPY || target == DEVICE_STATE_RESUMING;
}

static int
kernel_session_new(int fd, DataSession **ret)
{
    KernelSession *s = calloc(1, sizeof(*s));

    if (!s) {
        (void) close(fd);
        return -ENOMEM;
    }
    s->base.ops = &kernel_session_ops;
    s->fd = fd;
    *ret = &s->base;
    return 0;
}

/* One SET of MIG_DEVICE_STATE: the driver walks its own path to @target. */
static int
kernel_set_state(BackendDevice *bd, DeviceState target, DataSession **ret_session)
{
    KernelDevice *kd = (KernelDevice *) bd;
    struct vfio_device_feature_mig_state st = {.device_state = (uint32_t) target, .data_fd = -1};
    bool expected = kernel_expects_session(kd, target);
    int r;

    if (ret_session) {
        *ret_session = NULL;
    }
    r = kernel_feature(kd->device_fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                       &st, sizeof(st));
    if (r < 0) {
        /* The device may be at any hop of the path, or in ERROR: the caller GETs it. */
        kd->state_known = false;
        return r;
    }
    kd->state = target;
    kd->state_known = true;
    if (st.data_fd < 0) {
        return 0;
    }
    if (!expected || !ret_session) {
        /* A fd where no arc opens a session is a kernel bug (or a caller that does not want
         * it): the file must not leak, so it is closed here, exactly once. */
        TRACE(kernel_set_state, "unexpected data fd %d on a SET to %s, closing it", st.data_fd,
              fsm_state_name(target));
        (void) close(st.data_fd);
        return 0;
    }
    return kernel_session_new(st.data_fd, ret_session);
}

/* VFIO_DEVICE_RESET, tried whether or not VFIO_DEVICE_FLAGS_RESET is advertised: mtty does
 * not advertise it, yet resets (migration state RUNNING, data fds dead). */
static int
kernel_reset(BackendDevice *bd)
{
    KernelDevice *kd = (KernelDevice *) bd;

    if (ioctl(kd->device_fd, VFIO_DEVICE_RESET) < 0) {
        kd->state_known = false;
        return -errno;
    }
    kd->state = DEVICE_STATE_RUNNING;
    kd->state_known = kd->migratable;
    return 0;
}

static int
kernel_data_size(BackendDevice *bd, uint64_t *ret_bytes)
{
    KernelDevice *kd = (KernelDevice *) bd;
    struct vfio_device_feature_mig_data_size ds = {0};
    int r;

    r = kernel_feature(kd->device_fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
                       &ds, sizeof(ds));
    if (r < 0) {
        return r;
    }
    *ret_bytes = ds.stop_copy_length;
    return 0;
}

static ssize_t
kernel_region_access(BackendDevice *bd, uint32_t index, uint64_t offset, void *buf, size_t size,
                     bool write)
{
    KernelDevice *kd = (KernelDevice *) bd;
    struct vfio_region_info ri = {.argsz = sizeof(ri), .index = index};
    ssize_t n;

    if (index >= kd->info.num_regions) {
        return -ENOENT;
    }
    if (ioctl(kd->device_fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0) {
        return errno == EINVAL ? -ENOENT : -errno;
    }
    if (ri.size == 0) {
        return -ENOENT; /* vfio-pci reports unimplemented BARs with size 0 */
    }
    if (!(ri.flags & (write ? VFIO_REGION_INFO_FLAG_WRITE : VFIO_REGION_INFO_FLAG_READ))) {
        return -EOPNOTSUPP;
    }
    if (offset > ri.size || size > ri.size - offset || ri.offset + offset > (uint64_t) INT64_MAX) {
        return -ERANGE;
    }
    n = write ? pwrite(kd->device_fd, buf, size, (off_t) (ri.offset + offset))
              : pread(kd->device_fd, buf, size, (off_t) (ri.offset + offset));
    return n < 0 ? -errno : n;
}

/* ---- interrupts: GET_IRQ_INFO and SET_IRQS as they are */

static_assert(BACKEND_IRQ_SET_DATA_NONE == VFIO_IRQ_SET_DATA_NONE &&
                  BACKEND_IRQ_SET_DATA_BOOL == VFIO_IRQ_SET_DATA_BOOL &&
                  BACKEND_IRQ_SET_DATA_EVENTFD == VFIO_IRQ_SET_DATA_EVENTFD &&
                  BACKEND_IRQ_SET_ACTION_MASK == VFIO_IRQ_SET_ACTION_MASK &&
                  BACKEND_IRQ_SET_ACTION_UNMASK == VFIO_IRQ_SET_ACTION_UNMASK &&
                  BACKEND_IRQ_SET_ACTION_TRIGGER == VFIO_IRQ_SET_ACTION_TRIGGER,
              "backend.h's SET_IRQS flags differ from the kernel's");
static_assert(BACKEND_IRQ_INDEX_INTX == VFIO_PCI_INTX_IRQ_INDEX &&
                  BACKEND_IRQ_INDEX_MSI == VFIO_PCI_MSI_IRQ_INDEX &&
                  BACKEND_IRQ_INDEX_MSIX == VFIO_PCI_MSIX_IRQ_INDEX &&
                  BACKEND_IRQ_INDEX_REQ == VFIO_PCI_REQ_IRQ_INDEX,
              "backend.h's IRQ indexes differ from vfio-pci's");

static int
kernel_irq_info(BackendDevice *bd, uint32_t index, uint32_t *ret_flags, uint32_t *ret_count)
{
    KernelDevice *kd = (KernelDevice *) bd;
    struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = index};

    if (index >= kd->info.num_irqs) {
        return -EINVAL;
    }
    if (ioctl(kd->device_fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) < 0) {
        return -errno;
    }
    *ret_flags = ii.flags;
    *ret_count = ii.count;
    return 0;
}

static int
kernel_set_irqs(BackendDevice *bd, uint32_t flags, uint32_t index, uint32_t start,
                uint32_t count, const void *data)
{
    KernelDevice *kd = (KernelDevice *) bd;
    size_t elem = flags & VFIO_IRQ_SET_DATA_EVENTFD ? sizeof(int32_t)
                  : flags & VFIO_IRQ_SET_DATA_BOOL  ? 1
                                                    : 0;
    _cleanup_free_ struct vfio_irq_set *set = NULL;

    if (count > BACKEND_IRQ_MAX_COUNT || (elem > 0 && count > 0 && !data)) {
        return -EINVAL;
    }
    set = calloc(1, sizeof(*set) + elem * count);
    if (!set) {
        return -ENOMEM;
    }
    *set = (struct vfio_irq_set){
        .argsz = (uint32_t) (sizeof(*set) + elem * count),
        .flags = flags,
        .index = index,
        .start = start,
        .count = count,
    };
    if (elem > 0 && count > 0) {
        memcpy(set->data, data, elem * count);
    }
    return ioctl(kd->device_fd, VFIO_DEVICE_SET_IRQS, set) < 0 ? -errno : 0;
}

static int
kernel_vmm_fds(BackendDevice *bd, int *ret_device, int *ret_dma)
{
    KernelDevice *kd = (KernelDevice *) bd;

    *ret_device = kd->device_fd;
    *ret_dma = kd->group ? kd->group->container_fd : kd->iommufd;
    return 0;
}

/* ---- describe: the kernel facts GetDevice shows */


/* "0x2 (pci)": the VFIO_DEVICE_FLAGS_* bits by name. */
static char *
device_flags_string(uint32_t flags, char *buf, size_t size)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {VFIO_DEVICE_FLAGS_RESET, "reset"},   {VFIO_DEVICE_FLAGS_PCI, "pci"},
        {VFIO_DEVICE_FLAGS_PLATFORM, "platform"}, {VFIO_DEVICE_FLAGS_AMBA, "amba"},
        {VFIO_DEVICE_FLAGS_CCW, "ccw"},       {VFIO_DEVICE_FLAGS_AP, "ap"},
        {VFIO_DEVICE_FLAGS_FSL_MC, "fsl_mc"}, {VFIO_DEVICE_FLAGS_CAPS, "caps"},
        {VFIO_DEVICE_FLAGS_CDX, "cdx"},
    };
    size_t used = (size_t) snprintf(buf, size, "0x%x (", flags);
    const char *sep = "";

    for (size_t i = 0; i < ELEMENTSOF(names) && used < size; i++) {
        if (flags & names[i].bit) {
            used += (size_t) snprintf(buf + used, size - used, "%s%s", sep, names[i].name);
            sep = ",";
        }
    }
    if (used < size) {
        (void) snprintf(buf + used, size - used, "%s)", *sep ? "" : "none");
    }
    return buf;
}

static int
kernel_describe(BackendDevice *bd, BackendProperty *props, size_t max)
{
    KernelDevice *kd = (KernelDevice *) bd;
    char flags[96];
    uint64_t size;
    size_t n = 0;

    backend_property_add(props, max, &n, "access", "%s", kd->access == KERNEL_ACCESS_GROUP ? "group" : "iommufd");
    if (kd->access == KERNEL_ACCESS_GROUP) {
        backend_property_add(props, max, &n, "path", "/dev/vfio/%u", kd->group_number);
    } else {
        backend_property_add(props, max, &n, "path", "/dev/vfio/devices/%s", kd->cdev);
        if (kd->ioas_id) { /* 0: re-adopted after a restart, the id was not kept */
            backend_property_add(props, max, &n, "ioas", "%" PRIu32, kd->ioas_id);
        }
    }
    if (kd->name[0]) {
        backend_property_add(props, max, &n, "device", "%s", kd->name);
        backend_property_add(props, max, &n, "bus", "%s", kernel_sysfs_bus_name(kd->bus));
    }
    if (kd->group_known) {
        backend_property_add(props, max, &n, "group", "%u", kd->group_number);
    }
    if (kd->cdev[0]) {
        backend_property_add(props, max, &n, "cdev", "%s", kd->cdev);
    }
    if (kd->driver[0]) {
        backend_property_add(props, max, &n, "driver", "%s", kd->driver);
    }
    backend_property_add(props, max, &n, "device_flags", "%s",
         device_flags_string(kd->info.flags, flags, sizeof(flags)));
    backend_property_add(props, max, &n, "regions", "%" PRIu32, kd->info.num_regions);
    backend_property_add(props, max, &n, "irqs", "%" PRIu32, kd->info.num_irqs);
    backend_property_add(props, max, &n, "dma_logging", "%s", kd->dma_logging ? "supported" : "unsupported");
    if (kd->migratable && kernel_data_size(bd, &size) >= 0) {
        backend_property_add(props, max, &n, "data_size", "%" PRIu64, size);
    }
    return (int) n;
}

/* Who the device is, from sysfs; a cdev sysfs cannot resolve is nobody a plugin can claim. */
static int
kernel_identity(BackendDevice *bd, const char *sysfs_root, BackendIdentity *ret)
{
    KernelDevice *kd = (KernelDevice *) bd;

    if (!kd->bus_known || !kd->name[0]) {
        *ret = (BackendIdentity){.vendor_id = BACKEND_ID_NONE, .device_id = BACKEND_ID_NONE};
        return 0;
    }
    return kernel_sysfs_identity(sysfs_root, kd->bus, kd->name, ret);
}

/* The device fd and what keeps it usable: the iommufd, or the group's group and container
 * fds under names of their own, shared by the group's devices (a group opens only once). */
static int
kernel_store_fds(BackendDevice *bd, BackendFd *ret, size_t max)
{
    KernelDevice *kd = (KernelDevice *) bd;

    if (max < 3) {
        return -ENOBUFS;
    }
    ret[0] = (BackendFd){.role = "device", .fd = kd->device_fd};
    if (kd->access == KERNEL_ACCESS_IOMMUFD) {
        ret[1] = (BackendFd){.role = "iommufd", .fd = kd->iommufd};
        return 2;
    }
    ret[1] = (BackendFd){.role = "group", .fd = kd->group->group_fd};
    ret[2] = (BackendFd){.role = "container", .fd = kd->group->container_fd};
    (void) snprintf(ret[1].shared, sizeof(ret[1].shared), KERNEL_GROUP_FD_NAME,
                    (uint32_t) kd->group->number);
    (void) snprintf(ret[2].shared, sizeof(ret[2].shared), KERNEL_CONTAINER_FD_NAME,
                    (uint32_t) kd->group->number);
    return 3;
}

static const BackendOps kernel_ops = {
    .name = "kernel",
    .get_state = kernel_get_state,
    .set_state = kernel_set_state,
    .reset = kernel_reset,
    .data_size = kernel_data_size,
    .describe = kernel_describe,
    .region_access = kernel_region_access,
    .irq_info = kernel_irq_info,
    .set_irqs = kernel_set_irqs,
    .req_arm = backend_req_arm,
    .vmm_fds = kernel_vmm_fds,
    .identity = kernel_identity,
    .store_fds = kernel_store_fds,
    .data_fd_check = kernel_data_fd_check,
    .free = kernel_free,
};

/* ---- SessionOps: plain read()/write() on the data fd. EINTR comes back as -EINTR: whether
 * to retry is the caller's decision. (In the daemon it does not arise: libuv installs its
 * signal handlers with SA_RESTART, so a read blocked in mlx5 restarts instead.) */

static ssize_t
kernel_session_read(DataSession *ds, void *buf, size_t size)
{
    KernelSession *s = (KernelSession *) ds;
    ssize_t n = read(s->fd, buf, size);

    /* 0 is the end of the stream in STOP_COPY but only "nothing more for now" in PRE_COPY*
     * (mtty, hisi_acc, qat), as -ENOMSG is (mlx5): passed on as they are. */
    return n < 0 ? -errno : n;
}

static ssize_t
kernel_session_write(DataSession *ds, const void *buf, size_t size)
{
    KernelSession *s = (KernelSession *) ds;
    ssize_t n = write(s->fd, buf, size);

    return n < 0 ? -errno : n;
}

/* VFIO_MIG_GET_PRECOPY_INFO: flags = 0 in and ignored out (drivers echo it back; a flag
 * means something only after an opt-in this daemon does not make). */
static int
kernel_session_precopy_info(DataSession *ds, uint64_t *ret_initial, uint64_t *ret_dirty)
{
    KernelSession *s = (KernelSession *) ds;
    struct vfio_precopy_info info = {.argsz = sizeof(info), .flags = 0};

    if (ioctl(s->fd, VFIO_MIG_GET_PRECOPY_INFO, &info) < 0) {
        return -errno;
    }
    *ret_initial = info.initial_bytes;
    *ret_dirty = info.dirty_bytes;
    return 0;
}

static void
kernel_session_free(DataSession *ds)
{
    KernelSession *s = (KernelSession *) ds;

    (void) close(s->fd);
    free(s);
}

static int
kernel_session_fd(DataSession *ds)
{
    return ((KernelSession *) ds)->fd;
}

static const SessionOps kernel_session_ops = {
    .read = kernel_session_read,
    .write = kernel_session_write,
    .precopy_info = kernel_session_precopy_info,
    .free = kernel_session_free,
    .fd = kernel_session_fd,
};
