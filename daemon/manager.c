/* SPDX-License-Identifier: MIT */
/*
 * manager — see manager.h.
 */
#include "log_object.h"
#include "manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/kernel_sysfs.h" /* kernel_sysfs_parse_bdf() */
#include "conf.h"                 /* conf_lookup_id() */
#include "device.h"
#include "group.h"
#include "migration.h"
#include "plugin_host.h"
#include "util/cleanup.h"
#include "util/array.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

int
manager_new(uv_loop_t *loop, Manager **ret)
{
    Manager *m = calloc(1, sizeof(*m));

    if (!m) {
        return -ENOMEM;
    }
    m->loop = loop;
    m->sysfs_root = "/sys";
    migration_options_defaults(&m->migration_defaults);
    m->started_ns = clock_now_ns();
    *ret = m;
    return 0;
}

Manager *
manager_free(Manager *m)
{
    if (!m) {
        return NULL;
    }
    migration_free_all(m);
    while (m->n_groups > 0) {
        group_free(m->groups[m->n_groups - 1]);
    }
    free(m->groups);
    for (size_t i = 0; i < m->n_devices; i++) {
        device_free(m->devices[i]);
    }
    free(m->devices);
    plugin_host_free(m->plugins); /* after the devices: they point into their plugins */
    manager_release_done(m);
    files_policy_clear(&m->files);
    free(m);
    return NULL;
}

Device *
manager_find(Manager *m, const char *id)
{
    return SORTED_FIND(m->devices, m->n_devices, id, id);
}

Device *
manager_find_pci(Manager *m, const char *address)
{
    char bdf[KERNEL_SYSFS_NAME_MAX];

    if (kernel_sysfs_parse_bdf(address, bdf, sizeof(bdf)) < 0) {
        return NULL;
    }
    for (size_t i = 0; i < m->n_devices; i++) {
        const BackendIdentity *id = &m->devices[i]->identity;

        if (strcmp(id->bus, "pci") == 0 && strcmp(id->address, bdf) == 0) {
            return m->devices[i];
        }
    }
    return NULL;
}

/* Every device the manager frees is in its array: unlinking one always changes the set. */
static void
manager_unlink(Manager *m, Device *d)
{
    bool removed = MANAGER_UNLINK(m, m->devices, m->n_devices, id, d);

    assert(removed);
    (void) removed;
}

/* Checks the id (or picks one) and the device limit. Writes the id into @buf. */
static int
manager_claim_id(Manager *m, const char *id, const char *prefix, unsigned next, char *buf,
                 size_t size, char *err, size_t err_size)
{
    if (m->n_devices >= MANAGER_MAX_DEVICES) {
        (void) snprintf(err, err_size, "the daemon already has %d devices, its limit",
                        MANAGER_MAX_DEVICES);
        return -ENOSPC;
    }
    if (id && *id) {
        if (!strutil_id_is_valid(id)) {
            (void) snprintf(err, err_size,
                            "'%.64s' is not a valid device id (1-%d characters from "
                            "A-Z a-z 0-9 _ . : -, not starting with - or .)",
                            id, DEVICE_ID_MAX);
            return -EINVAL;
        }
        if (manager_find(m, id)) {
            (void) snprintf(err, err_size, "a device with id '%s' is already attached", id);
            return -EEXIST;
        }
        (void) snprintf(buf, size, "%s", id);
        return 0;
    }
    /* The index advances only when an attach succeeds (manager_attach_sim), so refused
     * attaches do not burn names. */
    for (unsigned i = next;; i++) {
        (void) snprintf(buf, size, "%s%u", prefix, i);
        if (!manager_find(m, buf)) {
            return 0;
        }
    }
}

/* After a successful attach: a name manager_claim_id() generated (no @id asked for) moves
 * @next past its index. */
static void
manager_name_taken(const char *id, const char *name, const char *prefix, unsigned *next)
{
    if (!(id && *id)) {
        (void) sscanf(name + strlen(prefix), "%u", next);
        (*next)++;
    }
}

/* Remembers how @d was attached, for the restart journal. Best effort: without it the
 * device is not kept across a restart (restore_state.c says so), nothing else changes. */
static void
manager_note_source(Device *d, bool kernel, KernelAddressKind kind, const char *source)
{
    d->attach_kernel = kernel;
    d->attach_kind = kind;
    d->attach_source = strdup(source ? source : "");
}

static void
manager_on_req(void *userdata)
{
    Device *d = userdata;

    manager_release_request(d->manager, d);
}

/* Registers the daemon's eventfd (@req_fd, taken: the one the fd store kept, or -EBADF for a
 * new one) as @d's REQ trigger, so that an unbind of its driver is not blocked by the daemon
 * but makes it release the device. A device without REQ (mtty) is said so once; a device that
 * refuses is kept all the same: an unbind then waits for its detach. */
static void
manager_arm_req(Manager *m, Device *d, int req_fd)
{
    int r;

    if (!m->loop) {
        if (req_fd >= 0) {
            (void) close(req_fd);
        }
        return; /* unit tests without a loop */
    }
    r = req_arm(m->loop, d->backend, req_fd, manager_on_req, d, &d->req);
    if (r < 0) {
        (void) log_device_warning_errno(d, r, "Cannot register for the kernel's requests to "
                                        "release device '%s' (REQ), ignoring: unbinding its "
                                        "driver will wait until it is detached: %m", d->id);
    } else if (!d->req) {
        log_device_info(d, "Device '%s' has no REQ interrupt (the kernel cannot ask for it "
                        "back): unbinding its driver waits until 'vfio-migctl detach %s'.",
                        d->id, d->id);
    }
}

/* Wraps a freshly opened back-end device into a Device and links it. Takes @bd and @req_fd
 * (manager_arm_req()). How it was attached (@kernel, @kind, @source) is noted before the link,
 * which tells Manager.on_change (the restart journal, the fd store) of it. */
static int
manager_adopt(Manager *m, const char *name, BackendDevice *bd, const BackendInfo *info,
              bool kernel, KernelAddressKind kind, const char *source, int req_fd, Device **ret)
{
    Device *d = NULL;
    int r;

    r = device_new(m, name, bd, info, &d);
    if (r < 0) {
        if (req_fd >= 0) {
            (void) close(req_fd);
        }
        return r;
    }
    manager_note_source(d, kernel, kind, source);
    device_identify(d, m->plugins, m->sysfs_root);
    manager_arm_req(m, d, req_fd);
    r = MANAGER_LINK(m, m->devices, m->n_devices, m->allocated, 16, id, d);
    if (r < 0) {
        device_free(d);
        return r;
    }
    *ret = d;
    return 0;
}

/* The model= value of @options ("" when none or where the options stop parsing: the sim then
 * refuses them, naming the part). */
static void
manager_options_model(const char *options, char *model, size_t size)
{
    const char *cursor = options;
    char key[32], value[128];

    model[0] = '\0';
    while (strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)) > 0) {
        if (strcmp(key, "model") == 0) {
            (void) snprintf(model, size, "%s", value);
            return;
        }
    }
}

/* The options a sim device is made with and the vendor model they select: --model @model and
 * model= in @options name the same one (or one of them is empty); a vendor model's name is
 * put in front of the options when only --model said it, so the device's options (what a
 * restart re-adopts it from, what its plugin reads) always name it. *ret_options is
 * malloc()ed. */
static int
manager_sim_model(Manager *m, const char *model, const char *options, SimModel *ret_model,
                  char **ret_options, char *err, size_t err_size)
{
    char in_options[128], known[256];
    const char *name;
    const Plugin *p;

    options = options ? options : "";
    model = model ? model : "";
    if (strlen(options) > MANAGER_MAX_OPTIONS) {
        (void) snprintf(err, err_size, "sim options are longer than %d characters",
                        MANAGER_MAX_OPTIONS);
        return -EINVAL;
    }
    manager_options_model(options, in_options, sizeof(in_options));
    if (*model && *in_options && strcmp(model, in_options) != 0) {
        (void) snprintf(err, err_size, "--model '%.64s' and model='%.64s' in the sim options "
                        "differ; give the model once", model, in_options);
        return -EINVAL;
    }
    name = *in_options ? in_options : model;
    *ret_model = (SimModel){0};
    if (!*name || strcmp(name, "generic") == 0) {
        *ret_options = strdup(options);
        return *ret_options ? 0 : -ENOMEM;
    }
    p = plugin_host_find_model(m->plugins, name);
    if (!p) {
        plugin_host_model_names(m->plugins, known, sizeof(known));
        (void) snprintf(err, err_size, "unknown sim model '%.64s' (known: %s); a vendor's model "
                        "comes with its plugin: `vfio-migctl plugins` lists the loaded plugins "
                        "and their sim models", name, known);
        return -EINVAL;
    }
    *ret_model = (SimModel){plugin_sim_model(p), plugin_host_services(p)};
    if (*in_options) {
        *ret_options = strdup(options);
    } else if (asprintf(ret_options, "model=%s%s%s", name, *options ? "," : "", options) < 0) {
        *ret_options = NULL;
    }
    return *ret_options ? 0 : -ENOMEM;
}

/* What a sim device is made from, by attach and by re-adoption alike. */
typedef struct SimSetup {
    char name[DEVICE_ID_MAX + 1]; /* claimed by manager_claim_id(), not yet taken */
    char *options;                /* malloc()ed: the options, naming the vendor model */
    SimModel model;
} SimSetup;

static void
sim_setup_done(SimSetup *s)
{
    free(s->options);
}

/* Claims sim device @id's name (or the next "sim<N>" from @next) and resolves its vendor
 * model: the two steps a sim device's attach and its re-adoption share. */
static int
manager_sim_setup(Manager *m, const char *id, unsigned next, const char *model,
                  const char *options, SimSetup *ret, char *err, size_t err_size)
{
    int r;

    r = manager_claim_id(m, id, "sim", next, ret->name, sizeof(ret->name), err, err_size);
    if (r < 0) {
        return r;
    }
    return manager_sim_model(m, model, options, &ret->model, &ret->options, err, err_size);
}

int
manager_attach_sim(Manager *m, const char *id, const char *model, const char *options,
                   Device **ret, char *err, size_t err_size)
{
    _cleanup_(sim_setup_done) SimSetup s = {0};
    char why[256] = "";
    BackendDevice *bd = NULL;
    BackendInfo info = {0};
    int r;

    r = manager_sim_setup(m, id, m->next_sim_index, model, options, &s, err, err_size);
    if (r < 0) {
        return r;
    }
    r = sim_device_new_model(s.name, s.options, &s.model, &bd, &info, why, sizeof(why));
    if (r < 0) {
        (void) snprintf(err, err_size, "invalid sim options: %s", why[0] ? why : strerror(-r));
        return r;
    }
    r = manager_adopt(m, s.name, bd, &info, false, KERNEL_ADDRESS_PCI, s.options, -EBADF, ret);
    if (r < 0) {
        return r;
    }
    manager_name_taken(id, s.name, "sim", &m->next_sim_index);
    log_device_info(*ret, "Attached sim device '%s' (%s).", s.name,
                    s.options && *s.options ? s.options : "defaults");
    return 0;
}

int
manager_attach_kernel(Manager *m, const char *id, const KernelAddress *addr, Device **ret,
                      char *err, size_t err_size)
{
    char name[DEVICE_ID_MAX + 1];
    BackendDevice *bd = NULL;
    BackendInfo info = {0};
    int r;

    r = manager_claim_id(m, id, "vfio", m->next_kernel_index, name, sizeof(name), err, err_size);
    if (r < 0) {
        return r;
    }
    r = kernel_device_open(addr, m->sysfs_root, &bd, &info, err, err_size);
    if (r < 0) {
        return r;
    }
    r = manager_adopt(m, name, bd, &info, true, addr->kind, addr->value, -EBADF, ret);
    if (r < 0) {
        return r;
    }
    manager_name_taken(id, name, "vfio", &m->next_kernel_index);
    log_device_info(*ret, "Attached kernel device '%s' (%s).", name, addr->value);
    return 0;
}

int
manager_readopt_sim(Manager *m, const char *id, const char *options, int state_fd, int req_fd,
                    Device **ret, char *err, size_t err_size)
{
    _cleanup_close_ int fd = state_fd;
    _cleanup_close_ int req = req_fd;
    _cleanup_(sim_setup_done) SimSetup s = {0};
    char why[256] = "";
    BackendDevice *bd = NULL;
    BackendInfo info = {0};
    int r;

    if (!id || !*id) {
        (void) snprintf(err, err_size, "a re-adopted device needs its id");
        return -EINVAL;
    }
    r = manager_sim_setup(m, id, /* next= */ 0, "", options, &s, err, err_size);
    if (r < 0) {
        return r;
    }
    r = sim_device_adopt_model(s.name, s.options, &s.model, fd, &bd, &info, why, sizeof(why));
    if (r < 0) {
        (void) snprintf(err, err_size, "%s", why[0] ? why : strerror(-r));
        return r;
    }
    fd = -EBADF; /* the device's now */
    r = manager_adopt(m, s.name, bd, &info, false, KERNEL_ADDRESS_PCI, options, TAKE_FD(req), ret);
    if (r < 0) {
        (void) snprintf(err, err_size, "%s", strerror(-r));
        return r;
    }
    return 0;
}

int
manager_readopt_kernel(Manager *m, const char *id, const KernelAddress *addr, uint32_t group,
                       const KernelKeptFds *fds, int req_fd, Device **ret, char *err,
                       size_t err_size)
{
    _cleanup_close_ int req = req_fd;
    char name[DEVICE_ID_MAX + 1];
    BackendDevice *bd = NULL;
    BackendInfo info = {0};
    int r;

    r = id && *id ? manager_claim_id(m, id, "vfio", 0, name, sizeof(name), err, err_size)
                  : -EINVAL;
    if (r < 0) {
        if (r == -EINVAL && !(id && *id)) {
            (void) snprintf(err, err_size, "a re-adopted device needs its id");
        }
        kernel_kept_fds_close(fds);
        return r;
    }
    r = kernel_device_adopt(addr, m->sysfs_root, group, fds, &bd, &info, err, err_size);
    if (r < 0) {
        return r;
    }
    r = manager_adopt(m, name, bd, &info, true, addr->kind, addr->value, TAKE_FD(req), ret);
    if (r < 0) {
        (void) snprintf(err, err_size, "%s", strerror(-r));
        return r;
    }
    return 0;
}

/* ---- attach with recovery */

/* A reset started by manager_attach(): who to tell when it ends. */
typedef struct AttachRecovery {
    manager_attach_cb cb;
    void *userdata;
} AttachRecovery;

static void
on_attach_reset_done(Device *d, const OpResult *res, void *userdata)
{
    AttachRecovery rec = *(AttachRecovery *) userdata;

    free(userdata);
    if (res->r >= 0) {
        log_device_notice(d, "Device '%s' was found in %s and has been reset to %s.", d->id,
                          fsm_state_name(d->info.initial_state), fsm_state_name(d->state));
    }
    rec.cb(d, d->info.initial_state, res, rec.userdata);
}

/* A migratable device that is not RUNNING when we open it was left mid-migration by a
 * previous owner (or a crash): whatever it holds is nobody's now, and RUNNING is the only
 * state from which every operation starts, so it is reset before anyone uses it. */
static int
manager_recover(Device *d, manager_attach_cb cb, void *userdata, char *err, size_t err_size)
{
    char why[256] = "";
    AttachRecovery *rec;
    int r;

    log_device_warning(d, "Device '%s' was found in %s (left by a previous owner?); resetting it.",
                       d->id, fsm_state_name(d->state));
    rec = malloc(sizeof(*rec));
    if (!rec) {
        (void) snprintf(err, err_size, "device '%s' needs a reset but it could not start: %s",
                        d->id, strerror(ENOMEM));
        return -ENOMEM;
    }
    *rec = (AttachRecovery){cb, userdata};
    r = device_reset_start(d, on_attach_reset_done, rec, why, sizeof(why));
    if (r < 0) {
        free(rec);
        (void) snprintf(err, err_size, "device '%s' needs a reset but it could not start: %s",
                        d->id, why);
        return r;
    }
    return 0;
}

/* One of attach's VMM allow-lists (@users: --vmm-users, else --vmm-groups) as ids: names of
 * this host or numbers, at most AUTHZ_MAX_IDS. */
static int
manager_vmm_ids(char *const *names, size_t n, bool users, AuthzIds *ret, char *err,
                size_t err_size)
{
    const char *what = users ? "user" : "group";

    *ret = (AuthzIds){0};
    if (n > AUTHZ_MAX_IDS) {
        (void) snprintf(err, err_size, "the VMM allow-list names %zu %ss, at most %d (name a "
                        "group with --vmm-groups instead of many users)", n, what, AUTHZ_MAX_IDS);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned id = 0;
        int r = conf_lookup_id(names[i], users, &id);

        if (r == -EINVAL) {
            (void) snprintf(err, err_size, "the VMM allow-list's %s '%.64s' is neither a name "
                            "nor a numeric id (attach --vmm-%ss takes either)", what, names[i],
                            what);
        } else if (r == 0) {
            (void) snprintf(err, err_size, "the VMM allow-list names no %s of this host: '%s' "
                            "(create it with '%s --system %s', or name another)", what,
                            names[i], users ? "useradd" : "groupadd", names[i]);
        } else if (r < 0) {
            (void) snprintf(err, err_size, "cannot look %s '%s' of the VMM allow-list up: %s",
                            what, names[i], strerror(-r));
        }
        if (r <= 0) {
            return r == 0 ? -EINVAL : r;
        }
        (void) authz_ids_add(ret, id); /* at most AUTHZ_MAX_IDS, checked above */
    }
    return 0;
}

int
manager_attach(Manager *m, const char *id, const AttachSource *src, manager_attach_cb cb,
               void *userdata, char *err, size_t err_size)
{
    AuthzVmmList allow = {0};
    Device *d = NULL;
    int r;

    r = manager_vmm_ids(src->vmm_users, src->n_vmm_users, /* users= */ true, &allow.users, err,
                        err_size);
    if (r >= 0) {
        r = manager_vmm_ids(src->vmm_groups, src->n_vmm_groups, /* users= */ false,
                            &allow.groups, err, err_size);
    }
    if (r < 0) {
        return r;
    }
    r = src->kernel ? manager_attach_kernel(m, id, &src->kernel_address, &d, err, err_size)
                    : manager_attach_sim(m, id, src->sim_model, src->sim_options, &d, err,
                                         err_size);
    if (r < 0) {
        return r;
    }
    if (authz_vmm_list_is_set(&allow)) {
        d->vmm_allow = allow;
        log_device_info(d, "Device '%s' admits VMMs by its own allow-list (%zu users, %zu "
                        "groups), not by [vmm] allowed_users/allowed_groups.", d->id,
                        allow.users.n, allow.groups.n);
        manager_changed(m); /* the state journal keeps the list */
    }
    if (d->info.migratable && d->state != DEVICE_STATE_RUNNING) {
        return manager_recover(d, cb, userdata, err, err_size);
    }
    cb(d, d->state, NULL, userdata);
    return 0;
}

int
manager_detach(Manager *m, const char *id, char *err, size_t err_size)
{
    Device *d = manager_find(m, id);

    if (!d) {
        (void) snprintf(err, err_size, "no device with id '%.64s'", id);
        return -ENOENT;
    }
    if (d->group) {
        (void) snprintf(err, err_size, "device '%s' belongs to group '%s'; delete the group "
                        "first", id, d->group->name);
        return -EBUSY;
    }
    if (device_is_busy(d) || d->lock) {
        (void) snprintf(err, err_size, "device '%s' is busy (%s); detach it when it is idle", id,
                        device_busy_operation(d) ?: "a transition");
        return -EBUSY;
    }
    manager_unlink(m, d);
    log_device_info(d, "Detached device '%s'.", id);
    device_free(d);
    return 0;
}

uint64_t
manager_uptime_ms(const Manager *m)
{
    return (clock_now_ns() - m->started_ns) / 1000000;
}

/* ---- migration listeners */

void
manager_add_listener(Manager *m, MigrationListener *l)
{
    l->next = m->listeners;
    m->listeners = l;
}

void
manager_remove_listener(Manager *m, MigrationListener *l)
{
    for (MigrationListener **p = &m->listeners; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            return;
        }
    }
}

void
manager_migration_changed(Manager *m, const MigrationJob *j)
{
    for (MigrationListener *l = m->listeners; l; l = l->next) {
        l->changed(l, j);
    }
    manager_changed(m);
    manager_release_soon(m); /* a job that ends lets its devices go */
}

void
manager_changed(Manager *m)
{
    if (m->on_change) {
        m->on_change(m, m->on_change_userdata);
    }
}
