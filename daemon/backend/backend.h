/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * backend — the one vtable every device operation goes through, so the simulated device
 * and the real kernel device run exactly the same daemon code (Open vSwitch
 * netdev-provider style).
 *
 * A backend device models one VFIO device fd; a data session models one migration data fd.
 * The calls map 1:1 onto the kernel uAPI, and every backend must give the kernel's answers:
 *
 *   get_state         VFIO_DEVICE_FEATURE GET MIG_DEVICE_STATE
 *   set_state         one SET MIG_DEVICE_STATE: the device walks the fsm path itself;
 *                     on failure it stays at the last completed arc (or ERROR), so the
 *                     caller must get_state() to learn where it is
 *   reset             VFIO_DEVICE_RESET: state RUNNING, every open data session dead
 *   data_size         MIG_DATA_SIZE
 *   session_read      read(data_fd): >0 bytes, 0 = end (permanent in STOP_COPY, temporary in
 *                     PRE_COPY*), -ENOMSG (mlx5-style temporary end), -ENODEV after the
 *                     session ended, -EBADF on a resuming session
 *   session_write     write(data_fd) on a resuming session: may be chunked arbitrarily;
 *                     returns bytes accepted or -errno (-ENOMEM beyond the device's size,
 *                     a driver-specific errno when validation fails; -ENODEV when ended)
 *   session_precopy_info  VFIO_MIG_GET_PRECOPY_INFO: valid only in PRE_COPY/PRE_COPY_P2P,
 *                     -EINVAL in any other state, -ENODEV after the session ended
 *   session_free      close(data_fd); the device itself is unaffected
 *   session_fd        the data fd itself, for the fd store (restart without reset)
 *   irq_info          VFIO_DEVICE_GET_IRQ_INFO
 *   set_irqs          VFIO_DEVICE_SET_IRQS, validated as vfio-pci-core does
 *
 * Threads: set_state, reset and every session call may block for a long time and run on
 * worker threads, never on the loop. The device layer guarantees one operation per device
 * at a time. get_state/data_size/describe/compat_descriptor may be called from the loop only
 * while no operation runs on that device. Backends never log above debug.
 * Errors: negative errno, as the kernel would return it.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/compat.h"
#include "../core/fsm.h"
#include "identity.h"

struct vfio_migd_sim_model; /* <vfio-migd/plugin.h>: a vendor's sim model */
struct vfio_migd_host;

typedef struct BackendDevice BackendDevice;
typedef struct DataSession DataSession;
typedef struct BackendOps BackendOps;
typedef struct SessionOps SessionOps;

/* The first member of every backend's device struct. */
struct BackendDevice {
    const BackendOps *ops;
};

/* The first member of every backend's session struct. */
struct DataSession {
    const SessionOps *ops;
};

/* A property the daemon shows in GetDevice (sim: digest, size; kernel: path, group). */
typedef struct BackendProperty {
    char key[32];
    char value[128];
} BackendProperty;

#define BACKEND_MAX_PROPERTIES 16

/* Appends key = printf(@fmt, ...) to @props when fewer than @max are filled; for describe(). */
void backend_property_add(BackendProperty *props, size_t max, size_t *n, const char *key,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* BackendOps.req_arm through the device's own irq_info and set_irqs, as the kernel's
 * vfio-pci does it (any back-end whose irq_info/set_irqs answer as vfio-pci-core's). */
int backend_req_arm(BackendDevice *bd, int fd);

/* One fd a device keeps alive (BackendOps.store_fds). */
typedef struct BackendFd {
    const char *role; /* static string: [a-z-]+, unique within the device */
    int fd;
    /* "" for an fd of this device alone (stored as "dev/<id>/<role>"); else the store name
     * of an fd several devices share, kept while one of them is: a VFIO group's group and
     * container fds, "grp/<n>/group" and "ctr/<n>/container". */
    char shared[32];
} BackendFd;

#define BACKEND_MAX_FDS 4

/* Facts read once at attach time. */
typedef struct BackendInfo {
    bool migratable;     /* false: the device has no migration support (FEATURE -> ENOTTY) */
    uint32_t mig_flags;  /* MIG_FLAG_*, one of the four legal sets when migratable */
    DeviceState initial_state; /* the state found at attach, before any recovery */
    bool has_group;      /* kernel, group path: the device shares its group's fds */
    uint32_t group;      /* that IOMMU group's number */
} BackendInfo;

/* VFIO_IRQ_SET_* flags and vfio-pci's interrupt indexes (kernel-uapi.md §3), under our names
 * so that this header needs no kernel header; kernel.c checks they equal the kernel's. */
#define BACKEND_IRQ_SET_DATA_NONE (1u << 0)
#define BACKEND_IRQ_SET_DATA_BOOL (1u << 1)
#define BACKEND_IRQ_SET_DATA_EVENTFD (1u << 2)
#define BACKEND_IRQ_SET_ACTION_MASK (1u << 3)
#define BACKEND_IRQ_SET_ACTION_UNMASK (1u << 4)
#define BACKEND_IRQ_SET_ACTION_TRIGGER (1u << 5)
#define BACKEND_IRQ_INDEX_INTX 0u
#define BACKEND_IRQ_INDEX_MSI 1u
#define BACKEND_IRQ_INDEX_MSIX 2u
#define BACKEND_IRQ_INDEX_REQ 4u   /* the kernel asks for the device back (req_arm) */
#define BACKEND_IRQ_NUM_INDEXES 5u /* INTx, MSI, MSI-X, ERR, REQ */
#define BACKEND_IRQ_MAX_COUNT 2048u /* the largest count one SET_IRQS call may carry (MSI-X) */

struct BackendOps {
    const char *name; /* "sim", "kernel" */

    int (*get_state)(BackendDevice *bd, DeviceState *ret_state);
    /* *ret_session is set to a new session when the request's last arc opens one, else NULL. */
    int (*set_state)(BackendDevice *bd, DeviceState target, DataSession **ret_session);
    int (*reset)(BackendDevice *bd);
    int (*data_size)(BackendDevice *bd, uint64_t *ret_bytes);
    /* Fills up to BACKEND_MAX_PROPERTIES entries; returns how many. May be NULL. */
    int (*describe)(BackendDevice *bd, BackendProperty *props, size_t max);
    /* Diagnostic access to a device region: VFIO_DEVICE_GET_REGION_INFO for @index, then ONE
     * pread (or pwrite when @write) of @size bytes at @offset inside the region; how a device
     * splits a wide access is its own business (mtty's UART registers want 1-byte accesses).
     * Returns the bytes transferred or -errno: -ENOENT no such region (or a region of size
     * 0), -ERANGE the bytes lie outside the region, -EOPNOTSUPP the region is not readable
     * (writable), else the kernel's errno. Runs on a worker. May be NULL: the device has no
     * regions (sim); callers then answer -ENOTTY. */
    ssize_t (*region_access)(BackendDevice *bd, uint32_t index, uint64_t offset, void *buf,
                             size_t size, bool write);
    /* Adds the fields a destination device must match to take this device's state
     * (core/compat.h: names, values, rules) to @ret, which starts empty. Called from the loop
     * while no operation runs. May be NULL: nothing beyond the flags and the back-end name is
     * known (the kernel back-end until vendor plugins describe their devices). */
    int (*compat_descriptor)(BackendDevice *bd, CompatDescriptor *ret);
    /* Who the device is (identity.h: bus, address, driver, PCI IDs, mdev type), for a plugin
     * to claim it; the kernel back-end reads it under @sysfs_root. Called from the loop at
     * attach. May be NULL: nothing is known and no plugin claims the device. */
    int (*identity)(BackendDevice *bd, const char *sysfs_root, BackendIdentity *ret);
    /* The fds that keep the device's state alive across the daemon's restart, for the fd
     * store (restore_state.c): up to @max entries, each with a short role name ("sim-state";
     * "device", "group", "container", "iommufd"). The fds stay the back-end's. Returns how
     * many, or a negative errno. May be NULL: the device cannot be kept across a restart. */
    int (*store_fds)(BackendDevice *bd, BackendFd *ret, size_t max);
    /* After a restart: is @fd, which the fd store gave back as this device's data fd
     * ("mig/<id>/data", SessionOps.fd), one this back-end's sessions are? The kernel: an
     * anonymous inode other than a device fd, opened read-only (saving) or write-only
     * (resuming); the kernel cannot tell which device's it is (no fdinfo before 6.18). The
     * sim: its session token naming this very device. Never takes @fd. 0, or -EBADF with
     * @err saying what @fd is instead. May be NULL: the back-end has no data fds. Thread:
     * loop. */
    int (*data_fd_check)(BackendDevice *bd, int fd, char *err, size_t err_size);
    /* VFIO_DEVICE_GET_IRQ_INFO for @index (BACKEND_IRQ_INDEX_*): VFIO_IRQ_INFO_* flags and
     * the vector count (0: the device has no such interrupt). -EINVAL: @index beyond the
     * device's num_irqs. May be NULL: the device has no interrupts. Thread: any, fast. */
    int (*irq_info)(BackendDevice *bd, uint32_t index, uint32_t *ret_flags, uint32_t *ret_count);
    /* VFIO_DEVICE_SET_IRQS with @flags (one DATA_* and one ACTION_*), @index, @start and
     * @count; @data holds @count int32 fds (DATA_EVENTFD, -1 de-assigns a vector), @count
     * bytes (DATA_BOOL), or is NULL (DATA_NONE). Answers as vfio-pci-core does: -EINVAL for a
     * malformed call, another index enabled (INTx, MSI and MSI-X are exclusive), a vector
     * beyond the enabled count of a NORESIZE index, or an fd that is not an eventfd (-EBADF:
     * not an fd); -ENOTTY for MASK/UNMASK on MSI/MSI-X. DATA_NONE|ACTION_TRIGGER with count >
     * 0 is the loopback: the kernel signals the vectors' eventfds itself; count 0 disables the
     * index. The back-end keeps its own reference to every eventfd given (the caller may close
     * its copy). May be NULL: the device has no interrupts (-ENOTTY). Thread: any, fast; calls
     * on one device are serialised by the caller. */
    int (*set_irqs)(BackendDevice *bd, uint32_t flags, uint32_t index, uint32_t start,
                    uint32_t count, const void *data);
    /* After a re-adoption (the daemon restarted): the eventfds the device's enabled @index
     * signals for vectors [start, start + count), as the fd store gave them back (@fds: int32,
     * -1 where none). NULL for the kernel back-end, whose kernel kept its own references and
     * needs nothing (no SET_IRQS: that would be a change, not a re-adoption). The sim, whose
     * "kernel" half died with the daemon, takes them where its state memfd says a trigger was
     * set; -ESTALE when it says otherwise. Thread: loop. */
    int (*irq_readopt)(BackendDevice *bd, uint32_t index, uint32_t start, uint32_t count,
                       const int32_t *fds);
    /* Registers @fd (an eventfd; -1 unregisters) as the device's REQ trigger, vfio-pci's
     * interrupt index 4: the kernel signals it when it wants the device back (its driver is
     * being unbound, the device or mdev removed) and, until every fd of the device is
     * closed, again every 10 s (vfio_unregister_group_dev()). GET_IRQ_INFO for index 4, then
     * SET_IRQS DATA_EVENTFD|ACTION_TRIGGER start 0 count 1. 0: armed; -ENOENT: the device
     * has no REQ (GET_IRQ_INFO answers -EINVAL, as mtty does, or a count of 0), which is no
     * error; else the kernel's SET_IRQS errno. Registering again replaces the trigger (the
     * same eventfd again changes nothing). The back-end keeps its own reference to @fd.
     * Both back-ends use backend_req_arm(). May be NULL: no REQ. Thread: loop. */
    int (*req_arm)(BackendDevice *bd, int fd);
    /* The fds a VMM runs the device with (fdpass.c sends it copies): *@ret_device, the VFIO
     * device fd, and *@ret_dma, the fd it maps guest memory through (the group's container,
     * or the iommufd), or -1 when there is none. Both stay the back-end's. The sim: a
     * read-only view of its state memfd stands for the device fd, and it has no DMA fd.
     * May be NULL: the device cannot be handed to a VMM (-EOPNOTSUPP). Thread: loop. */
    int (*vmm_fds)(BackendDevice *bd, int *ret_device, int *ret_dma);
    /* Releases the device (closes its fds). Sessions still open stay valid objects but
     * answer -ENODEV. */
    void (*free)(BackendDevice *bd);
};

struct SessionOps {
    ssize_t (*read)(DataSession *s, void *buf, size_t size);
    ssize_t (*write)(DataSession *s, const void *buf, size_t size);
    int (*precopy_info)(DataSession *s, uint64_t *ret_initial, uint64_t *ret_dirty);
    void (*free)(DataSession *s);
    /* The fd that is this session for the fd store, owned by the session (closed with it):
     * the kernel's data fd itself; the sim's, whose stream lives in the daemon, a sealed memfd
     * token that names its device and lives exactly as long as the session handle (it does
     * not carry the stream). -EBADF: none. May be NULL: none. Thread: any. */
    int (*fd)(DataSession *s);
};

/* SessionOps.fd, or -EBADF. */
static inline int
data_session_fd(DataSession *s)
{
    return s && s->ops->fd ? s->ops->fd(s) : -EBADF;
}

static inline void
data_session_free(DataSession *s)
{
    if (s) {
        s->ops->free(s);
    }
}

static inline void
backend_device_free(BackendDevice *bd)
{
    if (bd) {
        bd->ops->free(bd);
    }
}

/* ---- the sim backend (sim.c) ---- */

/* Creates a simulated device named @name from @options ("key=value,key=value"; see
 * docs/api.md "Simulated devices"). On -EINVAL, @err (when given) says which option and why.
 * Thread: loop. */
int sim_device_new(const char *name, const char *options, BackendDevice **ret, BackendInfo *ret_info,
                   char *err, size_t err_size);

/* A vendor's sim model (plugin.h) a sim device runs: the model's hooks and the host services
 * of its plugin, both valid as long as the device (plugins are never unloaded). */
typedef struct SimModel {
    const struct vfio_migd_sim_model *ops; /* NULL: the generic device */
    const struct vfio_migd_host *host;
} SimModel;

/* sim_device_new() for a device that behaves like a vendor's driver: @model's hooks supply
 * its flags, data size, arc errors and (with stream hooks) its streams, while the state
 * machine, the fd rules, reset, holds and faults stay the sim's (docs/simulated-devices.md
 * "Vendor models"). @options must say model=<its name>; the keys the sim does not know go to
 * the model's create hook, which refuses what it does not know. -EINVAL with @err naming the
 * key: an option of either; the model's create failing otherwise returns its errno. Thread:
 * loop. */
int sim_device_new_model(const char *name, const char *options, const SimModel *model,
                         BackendDevice **ret, BackendInfo *ret_info, char *err,
                         size_t err_size);

/* Re-creates a simulated device from the state memfd it kept in the fd store (store_fds
 * "sim-state") and the same @options it was made with: the device is exactly where it was
 * (state, content, fault counter), nothing is reset; ret_info->initial_state is that state.
 * Takes @state_fd on success only. -EINVAL: bad options or a state fd that is not a sim
 * state of this size (@err says which). Thread: loop. */
int sim_device_adopt(const char *name, const char *options, int state_fd, BackendDevice **ret,
                     BackendInfo *ret_info, char *err, size_t err_size);
/* sim_device_adopt() of a device that runs @model. The model's own device state is not in
 * the memfd: it starts again from the options (its create hook), only the sim's part (state,
 * fault counter) is adopted. */
int sim_device_adopt_model(const char *name, const char *options, const SimModel *model,
                           int state_fd, BackendDevice **ret, BackendInfo *ret_info, char *err,
                           size_t err_size);

/* True while a run of the sim device's hold_arc waits for its hold_until file (false for any
 * other device). Read without the device's lock, which the waiting arc holds: tests use it to
 * release a hold only once every device they hold has reached it. Thread: any. */
bool sim_device_holding(BackendDevice *bd);

/* The clock a sim device's dirty_rate runs on, in nanoseconds: clock_now_ns() unless a unit
 * test sets its own to step time instead of sleeping; NULL restores clock_now_ns(). Every
 * device reads it under its own lock. Thread: set while no sim device is in PRE_COPY. */
typedef uint64_t (*sim_clock_fn)(void);
void sim_set_clock(sim_clock_fn now);

/* ---- the kernel backend (kernel.c) ---- */

typedef enum KernelAddressKind {
    KERNEL_ADDRESS_PCI,  /* "0000:3b:00.2": group/container path */
    KERNEL_ADDRESS_MDEV, /* mdev UUID: group/container path */
    KERNEL_ADDRESS_CDEV, /* "/dev/vfio/devices/vfioN": iommufd cdev path */
} KernelAddressKind;

typedef struct KernelAddress {
    KernelAddressKind kind;
    const char *value;
} KernelAddress;

/* Opens a real VFIO device: finds its IOMMU group under @sysfs_root (normally "/sys"; tests
 * pass a fake tree), opens it through the group/container (type1v2) or the iommufd cdev
 * path, runs VFIO_DEVICE_GET_INFO first, and reads its migration flags and state. A device
 * without migration support opens with info->migratable = false. On failure @err says what
 * to do (bind the device to vfio-pci, permissions on /dev/vfio, ...). Thread: loop. */
int kernel_device_open(const KernelAddress *addr, const char *sysfs_root, BackendDevice **ret,
                       BackendInfo *ret_info, char *err, size_t err_size);

/* The fd store names of a group path's shared fds (BackendFd.shared): one entry per group. */
#define KERNEL_GROUP_FD_NAME "grp/%" PRIu32 "/group"
#define KERNEL_CONTAINER_FD_NAME "ctr/%" PRIu32 "/container"

/* The fds a kernel device kept in the fd store across the daemon's restart (store_fds). */
typedef struct KernelKeptFds {
    int device_fd;
    /* Group path: the group's fds; -EBADF both when another device of the group was re-adopted
     * already (it brought them). Cdev path: -EBADF. */
    int group_fd, container_fd;
    int iommufd; /* cdev path; -EBADF on the group path */
} KernelKeptFds;

/* Closes every fd of @fds (those >= 0). */
void kernel_kept_fds_close(const KernelKeptFds *fds);

/* Re-adopts a kernel device from the fds the previous daemon kept, WITHOUT a reset and
 * without opening anything again (closing the last fd of a device would make the kernel
 * reset it): checks the address as kernel_device_open() does, that sysfs still puts the
 * device in IOMMU group @group (group path), that each fd is what it should be (fstat of the
 * group, container, iommufd and cdev nodes; the group path's device fd is an anonymous
 * "[vfio-device]" inode, which no more can identify), then reads the device's facts and its
 * migration state from the kernel (GET MIG_DEVICE_STATE); ret_info->initial_state is that
 * state. Always takes the fds in @fds (closed on failure: the caller drops the store's
 * copies). On failure @err says which fd or fact did not match. Thread: loop. */
int kernel_device_adopt(const KernelAddress *addr, const char *sysfs_root, uint32_t group,
                        const KernelKeptFds *fds, BackendDevice **ret, BackendInfo *ret_info,
                        char *err, size_t err_size);
