/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * manager — owns every device of the daemon, enforces the daemon-wide limits, and looks
 * devices up by id. Devices are kept sorted by id so listings are stable.
 *
 * Used by:  main.c (lifetime), rpc/handlers/ (API).
 * Uses:     device.h, backend/backend.h.
 * Threads:  loop-thread only.
 * Errors:   negative errno plus a sentence in the caller's buffer; logs what it decides on
 *           its own (a device found in a bad state and reset), at most at warning.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "backend/backend.h"
#include "files.h"
#include "forward.h"
#include "migration.h"
#include "util/array.h"

/* A host has at most a few hundred VFs; 1024 bounds memory use by a misbehaving client. */
#define MANAGER_MAX_DEVICES 1024
/* Sim options are short key=value lists; anything longer is a mistake or an attack. */
#define MANAGER_MAX_OPTIONS 4096

/* Told, on the loop, when a migration job changed phase (and so when it ended). The listener
 * must not free jobs or listeners from the callback: schedule work instead. */
typedef struct MigrationListener {
    void (*changed)(struct MigrationListener *l, const MigrationJob *j);
    struct MigrationListener *next;
} MigrationListener;

struct Manager {
    uv_loop_t *loop;
    Device **devices;      /* sorted by id */
    size_t n_devices;
    size_t allocated;
    Group **groups;        /* sorted by name; see group.c */
    MigrationJob **jobs;   /* oldest first; see migration.c */
    size_t n_jobs;
    size_t allocated_jobs;
    unsigned next_job;
    size_t n_groups;
    size_t allocated_groups;
    unsigned next_sim_index;
    unsigned next_kernel_index;
    uint64_t started_ns;   /* CLOCK_MONOTONIC when the manager was created */
    const char *sysfs_root; /* "/sys"; tests point it at a fake tree */
    PluginHost *plugins;    /* vendor plugins (owned); NULL: none loaded */
    bool shutting_down;    /* no new operations once set */
    MigrationListener *listeners; /* WatchEvents streams */
    unsigned n_watches;    /* open WatchEvents streams (migration_watch.c) */
    /* [api] max_watchers and watch_queue_max (0: the defaults of migration_watch.h): how
     * many streams may be open at once, how many events one may have waiting. */
    unsigned max_watches;
    unsigned watch_queue_max;
    /* What a migration uses for the options its request leaves at 0: the built-in defaults
     * (migration_options_defaults()), or the configuration's [migration] keys (main.c). */
    MigrationOptions migration_defaults;
    /* [migration] handshake_timeout_ms: the total deadline of a data-port connection's first
     * message (0: MIGRATION_HANDSHAKE_MS). */
    uint32_t migration_handshake_ms;
    /* Told, on the loop, when a device or a group came or went or a job changed phase
     * (manager_changed()): the STATUS= line. NULL: nobody listens. */
    void (*on_change)(Manager *m, void *userdata);
    void *on_change_userdata;
    FilePolicy files;      /* where saves, restores and unix listen sockets may be */
    /* Runs manager_release.c's next attempt for devices the kernel asked for; NULL until
     * needed. Owned, closed by manager_free(). */
    uv_timer_t *release_timer;
};

int manager_new(uv_loop_t *loop, Manager **ret);
/* Frees every device; all must be idle. NULL-safe; returns NULL. */
Manager *manager_free(Manager *m);

Device *manager_find(Manager *m, const char *id);
/* The attached device that is PCI function @address (any spelling kernel_sysfs_parse_bdf()
 * takes), or NULL: a bind must not pull a function from under the daemon's open fds. */
Device *manager_find_pci(Manager *m, const char *address);

/* Attaches a simulated device. @id may be empty (the manager picks "simN"). @model is "",
 * "generic" or the name of a loaded plugin's sim model (attach --model); model= in @options
 * says the same (both given: they must agree). A vendor model's device is its plugin's, whatever
 * its claims say. -EEXIST: id taken; -EINVAL: bad id/model/options (an unknown model: the
 * refusal lists the known ones); -ENOSPC: too many devices. */
int manager_attach_sim(Manager *m, const char *id, const char *model, const char *options,
                       Device **ret, char *err, size_t err_size);

/* Attaches a real VFIO device (backend/kernel.c). @id may be empty (the manager picks
 * "vfioN"). Errors as manager_attach_sim, plus the kernel's (-ENOENT no such device,
 * -EACCES permissions, -EBUSY opened elsewhere). */
int manager_attach_kernel(Manager *m, const char *id, const KernelAddress *addr, Device **ret,
                          char *err, size_t err_size);

/* Both re-adoptions take @req_fd too: the eventfd the previous daemon registered as the
 * device's REQ trigger ("req/<id>" in the fd store), watched again (a REQ the kernel sent
 * while no daemon ran is in its counter); -EBADF: none came back, a new one is registered. */
/* Re-adopts a sim device that outlived the previous daemon (restore_state.c), beside
 * manager_attach_sim() but WITHOUT the attach-time recovery: the device is taken exactly as
 * its state memfd @state_fd says it is (STOP, PRE_COPY, ...), nothing is reset. @options are
 * the ones it was attached with. Always takes @state_fd (closed on failure). Errors as
 * manager_attach_sim(); -EINVAL also for a state fd that is not this device's. */
int manager_readopt_sim(Manager *m, const char *id, const char *options, int state_fd,
                        int req_fd, Device **ret, char *err, size_t err_size);

/* Re-adopts a kernel device from the fds the previous daemon kept (restore_state.c), as
 * manager_readopt_sim() does a sim device: nothing is reset or opened again, the device is in
 * the state the kernel reports. @group: the IOMMU group the journal names (group path).
 * Always takes the fds of @fds. Errors as manager_attach_kernel(), and kernel_device_adopt()'s
 * for fds that are not what the journal says. */
int manager_readopt_kernel(Manager *m, const char *id, const KernelAddress *addr, uint32_t group,
                           const KernelKeptFds *fds, int req_fd, Device **ret, char *err,
                           size_t err_size);

/* What to attach: a simulated device (model, options) or a real one (its address), and who
 * may take it over the VMM socket. */
typedef struct AttachSource {
    bool kernel;                  /* false: a sim device */
    const char *sim_model;        /* "", "generic" or a plugin's sim model (attach --model) */
    const char *sim_options;      /* "key=value,..." (docs/simulated-devices.md) */
    KernelAddress kernel_address;
    /* The device's own VMM allow-list (attach --vmm-users, --vmm-groups): user and group
     * names of this host or numeric ids, at most AUTHZ_MAX_IDS each; none at all: the device
     * follows the global [vmm] list. */
    char *const *vmm_users;
    size_t n_vmm_users;
    char *const *vmm_groups;
    size_t n_vmm_groups;
} AttachSource;

/* Runs once, on the loop, when manager_attach() has attached @d. @found is the state the
 * device was opened in. @reset is NULL when nothing more was done, else the result of the
 * reset that brought a device found in another state than RUNNING (left by a previous owner,
 * or a crash) back to RUNNING; when that reset failed (@reset->r < 0) the device stays
 * attached, so that an operator can look at it and reset it again. */
typedef void (*manager_attach_cb)(Device *d, DeviceState found, const OpResult *reset,
                                  void *userdata);

/* Attaches a device (manager_attach_sim() or manager_attach_kernel()) and makes sure it is
 * RUNNING: a migratable device found in another state is reset first. The VMM allow-list is
 * resolved (NSS) before anything is opened: a name this host lacks, or too many, is -EINVAL
 * and nothing is attached. Returns 0 and calls
 * @cb exactly once (before returning when no reset is needed), or a negative errno with @err
 * filled and never calls @cb; -EBUSY etc. from device_reset_start() when the reset cannot
 * start (the device then stays attached). */
int manager_attach(Manager *m, const char *id, const AttachSource *src, manager_attach_cb cb,
                   void *userdata, char *err, size_t err_size);

/* Detaches and frees a device. -ENOENT unknown; -EBUSY while an operation runs. */
int manager_detach(Manager *m, const char *id, char *err, size_t err_size);

uint64_t manager_uptime_ms(const Manager *m);

/* Calls Manager.on_change, if set. Device and group registration and job phase changes call
 * it; so does main.c when the daemon begins to shut down. */
void manager_changed(Manager *m);

/* The registries (m->devices by id, m->groups by name, util/array.h's SORTED_* arrays): adds
 * @item, or removes it, and calls manager_changed() when the set changed. LINK is 0 or
 * -ENOMEM; UNLINK is whether @item was there. */
#define MANAGER_LINK(m, items, n, allocated, first, member, item)                                  \
    ({                                                                                             \
        int _lr = SORTED_INSERT(items, n, allocated, first, member, item);                         \
        if (_lr >= 0) {                                                                            \
            manager_changed(m);                                                                    \
        }                                                                                          \
        _lr;                                                                                       \
    })
#define MANAGER_UNLINK(m, items, n, member, item)                                                  \
    ({                                                                                             \
        bool _lf = SORTED_REMOVE(items, n, member, item);                                          \
        if (_lf) {                                                                                 \
            manager_changed(m);                                                                    \
        }                                                                                          \
        _lf;                                                                                       \
    })

/* ---- the kernel asks for a device back (manager_release.c) */

/* REQ fired on @d: from now on @d is released (its VMM told, its job failed, its group left,
 * then detached) as soon as nothing holds it. Idempotent: the kernel repeats REQ. */
void manager_release_request(Manager *m, Device *d);
/* Something that may hold a device came free (an operation ended, a job changed phase): the
 * next loop iteration tries the devices the kernel asked for again. NULL-safe. */
void manager_release_soon(Manager *m);
/* Closes the handle manager_release_soon() made (manager_free()). */
void manager_release_done(Manager *m);

void manager_add_listener(Manager *m, MigrationListener *l);
void manager_remove_listener(Manager *m, MigrationListener *l);
void manager_migration_changed(Manager *m, const MigrationJob *j);
