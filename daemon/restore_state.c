/* SPDX-License-Identifier: MIT */
/*
 * restore_state — see restore_state.h.
 */
#include "log_object.h"
#include "restore_state.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/state_journal.h"
#include "device.h"
#include "group.h"
#include "irq.h"
#include "manager.h"
#include "migration.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strutil.h"

#define JOURNAL_PREFIX "state-journal."
#define DEVICE_PREFIX "dev/"
/* A kernel group's shared fds (KERNEL_GROUP_FD_NAME, KERNEL_CONTAINER_FD_NAME). */
#define GROUP_PREFIX "grp/"
#define CONTAINER_PREFIX "ctr/"
/* "irq/<id>/<vector>/vmm" and ".../latch": the eventfds the kernel signals. */
#define IRQ_PREFIX "irq/"
/* "req/<id>": the eventfd registered as the device's REQ trigger (req.h). */
#define REQ_PREFIX "req/"
/* "mig/<id>/data": the data fd of a device's open migration session. */
#define DATA_PREFIX "mig/"
#define DATA_SUFFIX "/data"
/* "dev/" + a 64-character id + "/" + a role: far below the store's 255. */
#define RESTORE_NAME_MAX 96

/* The fds of one device that are in the store, by name. */
typedef struct StoredDevice {
    Device *device;               /* identity only: compared, never dereferenced once gone */
    char id[DEVICE_ID_MAX + 1];
    char names[BACKEND_MAX_FDS + 1][RESTORE_NAME_MAX]; /* + "req/<id>" */
    size_t n_names;
    /* Per vector, the generation (irq_vector_fds) of the VMM eventfd and of the latch now in
     * the store, [2v] and [2v + 1]; 0: none. NULL until the device has one. */
    uint64_t *irq_gen;
} StoredDevice;

struct RestoreState {
    Manager *manager;
    StoredDevice *stored;
    size_t n_stored;
    uint64_t seq;                 /* of the journal written last */
};

/* What a job that was in flight when the daemon ended leaves behind, by role: a source or a
 * save still has its VM's devices, which go back to RUNNING (the migration's failure rule);
 * a destination or a restore has a partial state nobody will complete, which a reset drops. */
static const struct {
    const char *name;
    bool reset;
} job_recovery[] = {
    [MIGRATION_SOURCE] = {"source", false},
    [MIGRATION_DESTINATION] = {"destination", true},
    [MIGRATION_SAVE] = {"save", false},
    [MIGRATION_RESTORE] = {"restore", true},
};
static_assert(ELEMENTSOF(job_recovery) == _MIGRATION_ROLE_MAX, "job_recovery out of sync");

static bool
restore_enabled(void)
{
    return getenv("NOTIFY_SOCKET") != NULL;
}

/* ':' -> '%' in the @n bytes of @buf (store names may not hold ':'; ids never hold '%'). */
static void
restore_name_escape(char *buf, size_t n, size_t size)
{
    for (size_t i = 0; i < n && i < size; i++) {
        if (buf[i] == ':') {
            buf[i] = '%';
        }
    }
}

/* "dev/<id>/<role>". */
static void
restore_fd_name(const char *id, const char *role, char *buf, size_t size)
{
    restore_name_escape(buf, (size_t) snprintf(buf, size, DEVICE_PREFIX "%s/%s", id, role), size);
}

/* "req/<id>". */
static void
restore_req_name(const char *id, char *buf, size_t size)
{
    restore_name_escape(buf, (size_t) snprintf(buf, size, REQ_PREFIX "%s", id), size);
}

/* "irq/<id>/<vector>/vmm" or ".../latch". */
static void
restore_irq_name(const char *id, uint32_t v, bool latch, char *buf, size_t size)
{
    restore_name_escape(buf, (size_t) snprintf(buf, size, IRQ_PREFIX "%s/%" PRIu32 "/%s", id, v,
                                               latch ? "latch" : "vmm"), size);
}

/* ---- keeping the store current */

void
restore_state_data_fd(const char *id, bool had_old, DataSession *now)
{
    int fd = data_session_fd(now);
    char name[RESTORE_NAME_MAX];

    if (!had_old && fd < 0) {
        return;
    }
    restore_name_escape(name, (size_t) snprintf(name, sizeof(name), DATA_PREFIX "%s" DATA_SUFFIX,
                                                id), sizeof(name));
    if (had_old) {
        (void) sd_service_remove_fd(name);
    }
    if (fd >= 0 && sd_service_store_fd(name, fd) < 0) {
        log_warning("Cannot put '%s' into the fd store; a crash now would end that migration "
                    "session at once, ignoring.", name);
    }
}

/* True when a stored device other than @skip keeps an fd under @name (a group's shared fds). */
static bool
restore_name_in_use(const RestoreState *rs, const StoredDevice *skip, const char *name)
{
    for (size_t i = 0; i < rs->n_stored; i++) {
        for (size_t k = 0; &rs->stored[i] != skip && k < rs->stored[i].n_names; k++) {
            if (strcmp(rs->stored[i].names[k], name) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* One eventfd slot of a stored device: stored again when its file changed, removed when
 * it is gone (@fd -EBADF, @gen 0). */
static void
restore_irq_slot(StoredDevice *s, uint32_t v, bool latch, int fd, uint64_t gen)
{
    uint64_t *stored = &s->irq_gen[2 * v + latch];
    char name[RESTORE_NAME_MAX];

    if (*stored == gen) {
        return;
    }
    restore_irq_name(s->id, v, latch, name, sizeof(name));
    if (*stored != 0) {
        (void) sd_service_remove_fd(name);
    }
    if (fd >= 0 && sd_service_store_fd(name, fd) < 0) {
        log_warning("Cannot put '%s' into the fd store; a restart now would lose that "
                    "interrupt, ignoring.", name);
    }
    *stored = gen;
}

/* The device's interrupt eventfds in the store as they are in its Irq. */
static void
restore_irq_sync(StoredDevice *s, const Device *d)
{
    if (!s->irq_gen && irq_model(d->irq)->type == IRQ_TYPE_NONE) {
        return; /* nothing was ever stored */
    }
    if (!s->irq_gen && !(s->irq_gen = calloc(2 * IRQ_MAX_VECTORS, sizeof(*s->irq_gen)))) {
        log_warning("Out of memory: the interrupts of '%s' are not kept across a restart.",
                    s->id);
        return;
    }
    for (uint32_t v = 0; v < IRQ_MAX_VECTORS; v++) {
        IrqVectorFds f;

        irq_vector_fds(d->irq, v, &f);
        restore_irq_slot(s, v, /* latch= */ false, f.vmm_fd, f.vmm_gen);
        restore_irq_slot(s, v, /* latch= */ true, f.latch_fd, f.latch_gen);
    }
}

/* A detached device's fds leave the store; a group's shared ones with its last device. */
static void
restore_forget(RestoreState *rs, size_t i)
{
    StoredDevice *s = &rs->stored[i];

    for (size_t k = 0; k < s->n_names; k++) {
        if (!restore_name_in_use(rs, s, s->names[k])) {
            (void) sd_service_remove_fd(s->names[k]);
        }
    }
    for (uint32_t v = 0; s->irq_gen && v < IRQ_MAX_VECTORS; v++) {
        restore_irq_slot(s, v, /* latch= */ false, -EBADF, 0);
        restore_irq_slot(s, v, /* latch= */ true, -EBADF, 0);
    }
    free(s->irq_gen);
    rs->stored[i] = rs->stored[--rs->n_stored];
}

static StoredDevice *
restore_find_stored(const RestoreState *rs, const Device *d)
{
    for (size_t i = 0; i < rs->n_stored; i++) {
        if (rs->stored[i].device == d && strcmp(rs->stored[i].id, d->id) == 0) {
            return &rs->stored[i];
        }
    }
    return NULL;
}

static void
restore_store_device(RestoreState *rs, Device *d)
{
    BackendFd fds[BACKEND_MAX_FDS];
    StoredDevice *p, *s;
    int n;

    if (!d->backend->ops->store_fds) {
        return; /* the journal names it; the next daemon says it could not keep it */
    }
    n = d->backend->ops->store_fds(d->backend, fds, ELEMENTSOF(fds));
    p = realloc(rs->stored, (rs->n_stored + 1) * sizeof(*p));
    if (n <= 0 || !p) {
        log_device_warning(d, "Cannot keep device '%s' across a restart (%s), ignoring.",
                           d->id, p ? strerror(n < 0 ? -n : ENODATA) : strerror(ENOMEM));
        rs->stored = p ? p : rs->stored;
        return;
    }
    rs->stored = p;
    s = &rs->stored[rs->n_stored++];
    *s = (StoredDevice){.device = d};
    (void) snprintf(s->id, sizeof(s->id), "%s", d->id);
    for (int i = 0; i < n; i++) {
        if (fds[i].shared[0]) {
            (void) snprintf(s->names[s->n_names], RESTORE_NAME_MAX, "%s", fds[i].shared);
        } else {
            restore_fd_name(d->id, fds[i].role, s->names[s->n_names], RESTORE_NAME_MAX);
        }
        if (restore_name_in_use(rs, s, s->names[s->n_names])) {
            s->n_names++; /* another device of its group stored it */
            continue;
        }
        if (sd_service_store_fd(s->names[s->n_names], fds[i].fd) < 0) {
            log_device_warning(d, "Cannot put '%s' into the fd store, ignoring.",
                               s->names[s->n_names]);
        }
        s->n_names++;
    }
    /* The REQ trigger is registered once at attach and stays the same file: stored with the
     * device, removed with it (restore_forget). */
    if (d->req) {
        restore_req_name(d->id, s->names[s->n_names], RESTORE_NAME_MAX);
        if (sd_service_store_fd(s->names[s->n_names], req_fd(d->req)) < 0) {
            log_device_warning(d, "Cannot put '%s' into the fd store; after a restart the "
                               "daemon registers a new one, ignoring.", s->names[s->n_names]);
        }
        s->n_names++;
    }
}

/* ---- the journal */

static int
restore_journal_add_jobs(Manager *m, StateJournal *j)
{
    MigrationSnapshot *snaps = NULL;
    size_t n = 0;
    int r = migration_snapshot_all(m, &snaps, &n);

    if (r < 0) {
        return r;
    }
    j->jobs = calloc(n ? n : 1, sizeof(*j->jobs));
    if (!j->jobs) {
        migration_snapshots_free(snaps, n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        StateJournalJob *job = &j->jobs[j->n_jobs];
        /* A live migration's peer (an address); a file job's path is not needed back. */
        bool live = snaps[i].role == MIGRATION_SOURCE || snaps[i].role == MIGRATION_DESTINATION;

        if (snaps[i].over || !(job->id = strdup(snaps[i].id)) ||
            !(job->name = strdup(snaps[i].name)) || !(job->peer = strdup(live ? snaps[i].peer : ""))) {
            free(job->id);
            free(job->name);
            *job = (StateJournalJob){0};
            continue;
        }
        job->role = (uint8_t) snaps[i].role;
        job->subject = (uint8_t) snaps[i].subject;
        /* Past its commit point, a job is journaled in doubt, whatever the API shows: the
         * restart must not decide where the VM runs (restore_job). */
        job->phase = (uint8_t) (snaps[i].held ? PHASE_IN_DOUBT : snaps[i].phase);
        job->flags = snaps[i].auto_resume ? STATE_JOURNAL_JOB_AUTO_RESUME : 0;
        job->started_unix_ms = snaps[i].started_unix_ms;
        j->n_jobs++;
    }
    migration_snapshots_free(snaps, n);
    return 0;
}

/* The device's interrupts as the journal keeps them (irq_bits allocated, see _done). */
static int
restore_journal_irq(const Device *d, StateJournalDevice *jd)
{
    _cleanup_free_ IrqState *st = malloc(sizeof(*st));
    uint8_t vmm[IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS)];
    size_t map;

    if (!st) {
        return -ENOMEM;
    }
    irq_export(d->irq, st);
    irq_export_vmm(d->irq, vmm);
    if (st->type == IRQ_TYPE_NONE || st->count == 0) {
        return 0;
    }
    map = IRQ_BITMAP_SIZE(st->count);
    jd->irq_bits = malloc(STATE_JOURNAL_IRQ_MAPS * map);
    if (!jd->irq_bits) {
        return -ENOMEM;
    }
    jd->irq_type = (uint8_t) st->type;
    jd->irq_count = st->count;
    memcpy(jd->irq_bits, st->in_use, map);
    memcpy(jd->irq_bits + map, st->masked, map);
    memcpy(jd->irq_bits + 2 * map, st->pending, map);
    memcpy(jd->irq_bits + 3 * map, vmm, map);
    return 0;
}

/* The manager's state as a journal; borrowed strings except the jobs' (see _done). */
static int
restore_journal_build(RestoreState *rs, StateJournal *j)
{
    Manager *m = rs->manager;

    j->seq = rs->seq + 1;
    j->devices = calloc(m->n_devices ? m->n_devices : 1, sizeof(*j->devices));
    j->groups = calloc(m->n_groups ? m->n_groups : 1, sizeof(*j->groups));
    if (!j->devices || !j->groups) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->n_devices; i++) {
        Device *d = m->devices[i];
        StateJournalDevice *jd = &j->devices[j->n_devices++];

        *jd = (StateJournalDevice){
            .id = d->id, .kernel = d->attach_kernel, .address_kind = (uint8_t) d->attach_kind,
            .source = d->attach_source ? d->attach_source : "",
            .group = d->info.has_group ? d->info.group : STATE_JOURNAL_NO_GROUP,
            .vmm_allow = d->vmm_allow};
        if (restore_journal_irq(d, jd) < 0) {
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < m->n_groups; i++) {
        Group *g = m->groups[i];
        StateJournalGroup *jg = &j->groups[j->n_groups++];

        jg->name = g->name;
        jg->n_members = g->n_devices;
        jg->members = calloc(g->n_devices ? g->n_devices : 1, sizeof(char *));
        if (!jg->members) {
            return -ENOMEM;
        }
        for (size_t k = 0; k < g->n_devices; k++) {
            jg->members[k] = g->devices[k]->id;
        }
    }
    return restore_journal_add_jobs(m, j);
}

static void
restore_journal_done(StateJournal *j)
{
    for (size_t i = 0; i < j->n_devices; i++) {
        free(j->devices[i].irq_bits);
    }
    for (size_t i = 0; i < j->n_groups; i++) {
        free(j->groups[i].members);
    }
    for (size_t i = 0; i < j->n_jobs; i++) {
        free(j->jobs[i].id);
        free(j->jobs[i].name);
        free(j->jobs[i].peer);
    }
    free(j->devices);
    free(j->groups);
    free(j->jobs);
}

/* A new sealed memfd holding @size bytes of @buf. */
static int
restore_memfd_sealed(const uint8_t *buf, size_t size, int *ret_fd)
{
    _cleanup_close_ int fd = memfd_create("vfio-migd-state-journal",
                                          MFD_CLOEXEC | MFD_ALLOW_SEALING);
    size_t done = 0;

    if (fd < 0) {
        return -errno;
    }
    while (done < size) {
        ssize_t n = write(fd, buf + done, size - done);
        if (n < 0) {
            return -errno;
        }
        done += (size_t) n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        return -errno;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static int
restore_journal_write(RestoreState *rs)
{
    StateJournal j = {0};
    _cleanup_free_ uint8_t *buf = NULL;
    _cleanup_close_ int fd = -EBADF;
    char name[32], old[32];
    size_t size = 0;
    int r;

    r = restore_journal_build(rs, &j);
    if (r >= 0) {
        r = state_journal_encode(&j, &buf, &size);
    }
    restore_journal_done(&j);
    if (r < 0) {
        return r;
    }
    r = restore_memfd_sealed(buf, size, &fd);
    if (r < 0) {
        return r;
    }
    /* The new one first: between the two messages the store holds both, never neither. */
    (void) snprintf(name, sizeof(name), JOURNAL_PREFIX "%u", (unsigned) ((rs->seq + 1) & 1));
    (void) snprintf(old, sizeof(old), JOURNAL_PREFIX "%u", (unsigned) (rs->seq & 1));
    r = sd_service_store_fd(name, fd);
    if (r < 0) {
        return r;
    }
    (void) sd_service_remove_fd(old);
    rs->seq++;
    return 0;
}

void
restore_state_changed(RestoreState *rs)
{
    Manager *m;
    int r;

    if (!rs || !restore_enabled()) {
        return;
    }
    m = rs->manager;
    for (size_t i = rs->n_stored; i-- > 0;) {
        if (manager_find(m, rs->stored[i].id) != rs->stored[i].device) {
            restore_forget(rs, i);
        }
    }
    for (size_t i = 0; i < m->n_devices; i++) {
        StoredDevice *s = restore_find_stored(rs, m->devices[i]);

        if (!s) {
            restore_store_device(rs, m->devices[i]);
            s = restore_find_stored(rs, m->devices[i]);
        }
        if (s) {
            restore_irq_sync(s, m->devices[i]);
        }
    }
    r = restore_journal_write(rs);
    if (r < 0) {
        (void) log_warning_errno(r, "Cannot write the state journal; a restart now would "
                                 "lose what changed, ignoring: %m");
    }
}

/* ---- start: taking back what the previous daemon stored */

typedef struct RestoreCounts {
    unsigned devices, groups, in_doubt, jobs, closed, lost;
} RestoreCounts;

/* A stored journal: a sealed memfd (we sealed it; anything else is not ours) of a bounded
 * size, decoded as hostile input. */
static int
restore_journal_read(int fd, StateJournal *ret, char *err, size_t err_size)
{
    _cleanup_free_ uint8_t *buf = NULL;
    struct stat sb;
    int seals = fcntl(fd, F_GET_SEALS);
    size_t size;

    if (seals < 0 || !(seals & F_SEAL_WRITE) || fstat(fd, &sb) < 0) {
        (void) snprintf(err, err_size, "it is not a sealed memfd");
        return -EBADMSG;
    }
    if (sb.st_size < STATE_JOURNAL_HEADER_SIZE ||
        sb.st_size > (off_t) (STATE_JOURNAL_HEADER_SIZE + STATE_JOURNAL_MAX_BODY)) {
        (void) snprintf(err, err_size, "it has %lld bytes", (long long) sb.st_size);
        return -EBADMSG;
    }
    size = (size_t) sb.st_size;
    buf = malloc(size);
    if (!buf) {
        return -ENOMEM;
    }
    if (pread(fd, buf, size, 0) != (ssize_t) size) {
        (void) snprintf(err, err_size, "it cannot be read in full");
        return -EBADMSG;
    }
    return state_journal_decode(buf, size, ret, err, err_size);
}

/* The newest journal that decodes, of the two names; the other name is removed from the store
 * (an older journal, or one that does not decode), the chosen one stays until a new one
 * replaces it. -ENOENT: none stored; -EBADMSG: none decodes (@why says why). */
static int
restore_journal_pick(SdService *sd, StateJournal *ret, char *why, size_t why_size)
{
    bool present[2] = {false, false};
    int r = -ENOENT, picked = -1;
    char name[2][32];

    for (unsigned i = 0; i < 2; i++) {
        StateJournal j = {0};
        char err[256] = "";
        int fd = -EBADF, q;

        (void) snprintf(name[i], sizeof(name[i]), JOURNAL_PREFIX "%u", i);
        if (sd_service_take_fd(sd, name[i], &fd) < 0) {
            continue; /* none, or several (closed with the unclaimed) */
        }
        present[i] = true;
        q = restore_journal_read(fd, &j, err, sizeof(err));
        (void) close(fd);
        if (q < 0) {
            (void) snprintf(why, why_size, "'%s': %s", name[i], err[0] ? err : strerror(-q));
            r = picked >= 0 ? 0 : q;
        } else if (picked < 0 || j.seq > ret->seq) {
            state_journal_clear(ret);
            *ret = j;
            j = (StateJournal){0};
            picked = (int) i;
            r = 0;
        }
        state_journal_clear(&j);
    }
    for (unsigned i = 0; i < 2; i++) {
        if (present[i] && (int) i != picked) {
            (void) sd_service_remove_fd(name[i]);
        }
    }
    return r;
}

/* The IOMMU groups whose shared fds were taken from the store: the first device of a group
 * takes them, the others share what it brought. */
typedef struct TakenGroups {
    uint32_t numbers[STATE_JOURNAL_MAX_DEVICES];
    size_t n;
} TakenGroups;

static bool
restore_group_taken(TakenGroups *t, uint32_t number)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->numbers[i] == number) {
            return true;
        }
    }
    if (t->n < ELEMENTSOF(t->numbers)) {
        t->numbers[t->n++] = number;
    }
    return false;
}

/* Takes the fd stored as printf(@fmt, ...) into *@fd (left -EBADF when absent), remembering
 * the name in @name. */
_printf_(4, 5) static void
restore_take(SdService *sd, int *fd, char name[RESTORE_NAME_MAX], const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) vsnprintf(name, RESTORE_NAME_MAX, fmt, ap);
    va_end(ap);
    *fd = -EBADF;
    if (sd_service_take_fd(sd, name, fd) < 0) {
        *fd = -EBADF;
    }
}

/* A kernel device from its kept fds: the device fd ("dev/<id>/device") and the iommufd or
 * its group's group and container fds. Nothing is opened again, nothing reset. */
/* The eventfd the previous daemon registered as @id's REQ trigger, or -EBADF. */
static int
restore_take_req(SdService *sd, const char *id)
{
    char name[RESTORE_NAME_MAX];
    int fd = -EBADF;

    restore_req_name(id, name, sizeof(name));
    if (sd_service_take_fd(sd, name, &fd) < 0) {
        return -EBADF;
    }
    return fd;
}

/* The store's copy of a REQ eventfd whose device did not come back. */
static void
restore_drop_req(const char *id)
{
    char name[RESTORE_NAME_MAX];

    restore_req_name(id, name, sizeof(name));
    (void) sd_service_remove_fd(name);
}

static int
restore_kernel_device(Manager *m, SdService *sd, const StateJournalDevice *jd, TakenGroups *t,
                      Device **ret, char *err, size_t err_size)
{
    KernelAddress addr = {.kind = (KernelAddressKind) jd->address_kind, .value = jd->source};
    KernelKeptFds fds = {.device_fd = -EBADF, .group_fd = -EBADF, .container_fd = -EBADF,
                         .iommufd = -EBADF};
    char dev[RESTORE_NAME_MAX], grp[RESTORE_NAME_MAX], ctr[RESTORE_NAME_MAX];
    char iofd[RESTORE_NAME_MAX];
    bool group_path = jd->group != STATE_JOURNAL_NO_GROUP;
    int r;

    restore_fd_name(jd->id, "device", dev, sizeof(dev));
    if (sd_service_take_fd(sd, dev, &fds.device_fd) < 0) {
        (void) snprintf(err, err_size, "its device fd '%s' did not come back", dev);
        return -ENOENT;
    }
    if (group_path && !restore_group_taken(t, jd->group)) {
        restore_take(sd, &fds.group_fd, grp, KERNEL_GROUP_FD_NAME, jd->group);
        restore_take(sd, &fds.container_fd, ctr, KERNEL_CONTAINER_FD_NAME, jd->group);
    } else if (!group_path) {
        restore_fd_name(jd->id, "iommufd", iofd, sizeof(iofd));
        (void) sd_service_take_fd(sd, iofd, &fds.iommufd);
    }
    r = manager_readopt_kernel(m, jd->id, &addr, jd->group, &fds, restore_take_req(sd, jd->id),
                               ret, err, err_size);
    if (r < 0) {
        restore_drop_req(jd->id);
        (void) sd_service_remove_fd(dev);
        if (!group_path) {
            (void) sd_service_remove_fd(iofd);
        }
    }
    return r;
}

/* A group's shared fds stay in the store while one of its devices came back; else they go. */
static void
restore_drop_unused_groups(Manager *m, const TakenGroups *t)
{
    for (size_t i = 0; i < t->n; i++) {
        char name[RESTORE_NAME_MAX];
        bool used = false;

        for (size_t k = 0; k < m->n_devices && !used; k++) {
            used = m->devices[k]->info.has_group && m->devices[k]->info.group == t->numbers[i];
        }
        if (!used) {
            (void) snprintf(name, sizeof(name), KERNEL_GROUP_FD_NAME, t->numbers[i]);
            (void) sd_service_remove_fd(name);
            (void) snprintf(name, sizeof(name), KERNEL_CONTAINER_FD_NAME, t->numbers[i]);
            (void) sd_service_remove_fd(name);
            log_warning("Restart: IOMMU group %" PRIu32 " has no device left; its group and "
                        "container fds are closed.", t->numbers[i]);
        }
    }
}

/* The interrupts the kernel kept armed for a re-adopted device: the journal's model and the
 * eventfds "irq/<id>/<v>/vmm|latch" from the store, nothing disabled. */
static void
restore_irq(SdService *sd, Device *d, const StateJournalDevice *jd)
{
    _cleanup_free_ IrqState *st = calloc(1, sizeof(*st));
    _cleanup_free_ int *fds = calloc(2 * (size_t) (jd->irq_count ? jd->irq_count : 1),
                                     sizeof(*fds));
    uint8_t vmm[IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS)] = {0};
    size_t map = STATE_JOURNAL_IRQ_MAP_SIZE(jd->irq_count);
    int r;

    if (jd->irq_count == 0) {
        return;
    }
    if (!st || !fds) {
        log_device_warning(d, "Restart: out of memory; the interrupts of '%s' are not "
                           "recovered.", d->id);
        return;
    }
    *st = (IrqState){.type = (IrqType) jd->irq_type, .count = jd->irq_count};
    memcpy(st->in_use, jd->irq_bits, map);
    memcpy(st->masked, jd->irq_bits + map, map);
    memcpy(st->pending, jd->irq_bits + 2 * map, map);
    memcpy(vmm, jd->irq_bits + 3 * map, map);
    for (uint32_t v = 0; v < 2 * jd->irq_count; v++) {
        char name[RESTORE_NAME_MAX];

        restore_irq_name(d->id, v % jd->irq_count, /* latch= */ v >= jd->irq_count, name,
                         sizeof(name));
        if (sd_service_take_fd(sd, name, &fds[v]) < 0) {
            fds[v] = -EBADF;
        }
    }
    r = irq_readopt(d->irq, st, vmm, fds, fds + jd->irq_count);
    if (r < 0) {
        log_device_warning(d, "Restart: the interrupts of '%s' (%s, %u vectors) could not be "
                           "taken back (%s); they are disabled: 'vfio-migctl irq enable %s' "
                           "sets them up again.", d->id, irq_type_name(st->type), st->count,
                           strerror(-r), d->id);
        return;
    }
    log_device_info(d, "Restart: '%s' keeps %s with %u vectors armed (%u pending, %u on a "
                    "VMM's eventfd).", d->id, irq_type_name(st->type), st->count,
                    irq_model_count_pending(irq_model(d->irq)), irq_vmm_count(d->irq));
}

/* What a re-adopted device kept besides its state: its interrupts and who may take it over
 * the VMM socket (its own allow-list, or none: the global one). */
static void
restore_kept(SdService *sd, Device *d, const StateJournalDevice *jd)
{
    d->vmm_allow = jd->vmm_allow;
    restore_irq(sd, d, jd);
}

static void
restore_devices(Manager *m, SdService *sd, const StateJournal *j, RestoreCounts *c)
{
    _cleanup_free_ TakenGroups *taken = calloc(1, sizeof(*taken));

    if (!taken) {
        log_error("Restart: out of memory; no kernel device recovered.");
    }
    for (size_t i = 0; i < j->n_devices; i++) {
        const StateJournalDevice *jd = &j->devices[i];
        char name[RESTORE_NAME_MAX], err[512] = "";
        Device *d = NULL;
        int fd = -EBADF, r;

        if (jd->kernel) {
            r = taken ? restore_kernel_device(m, sd, jd, taken, &d, err, sizeof(err)) : -ENOMEM;
            if (r < 0) {
                log_warning("Restart: cannot re-adopt kernel device '%s' (%s): %s; it is gone "
                            "(its fds are closed: the kernel resets it once nothing holds it).",
                            jd->id, jd->source, err[0] ? err : strerror(-r));
                c->lost++;
                continue;
            }
            log_device_info(d, "Restart: re-adopted kernel device '%s' (%s) in %s, not reset.",
                            d->id, jd->source, fsm_state_name(d->state));
            restore_kept(sd, d, jd);
            c->devices++;
            continue;
        }
        restore_fd_name(jd->id, "sim-state", name, sizeof(name));
        r = sd_service_take_fd(sd, name, &fd);
        if (r < 0) {
            log_warning("Restart: device '%s' is in the journal but its state fd '%s' did not "
                        "come back (%s); it is gone.", jd->id, name, strerror(-r));
            c->lost++;
            continue;
        }
        /* The store keeps its copy until the device is placed: storing it again then is a
         * no-op (same file), and a crash in between loses nothing. */
        r = manager_readopt_sim(m, jd->id, jd->source, fd, restore_take_req(sd, jd->id), &d, err,
                                sizeof(err));
        if (r < 0) {
            (void) sd_service_remove_fd(name);
            restore_drop_req(jd->id);
            log_warning("Restart: cannot re-adopt device '%s': %s; it is gone.", jd->id, err);
            c->lost++;
            continue;
        }
        log_device_info(d, "Restart: re-adopted device '%s' in %s, not reset.", d->id,
                        fsm_state_name(d->state));
        restore_kept(sd, d, jd);
        c->devices++;
    }
    if (taken) {
        restore_drop_unused_groups(m, taken);
    }
}

/* The journaled job that a data fd of device @d served: its own, or its group's. */
static const StateJournalJob *
restore_job_of(const StateJournal *j, const Device *d)
{
    for (size_t i = 0; d && i < j->n_jobs; i++) {
        const StateJournalJob *job = &j->jobs[i];

        if (job->subject == MIGRATION_SUBJECT_DEVICE
                ? strcmp(job->name, d->id) == 0
                : d->group && strcmp(job->name, d->group->name) == 0) {
            return job;
        }
    }
    return NULL;
}

typedef struct DataFds {
    Manager *manager;
    SdService *sd;
    const StateJournal *journal;
    unsigned n;
} DataFds;

/* One "mig/<id>/data" back from the store: checked against its re-adopted device, logged and
 * closed, before the job's devices leave their migration states (restore_fail_job): nothing
 * can resume the stream of a reader that died. One that names no re-adopted device, or that
 * no journaled job used (a plain state change opened it), is closed too, saying so. */
static void
restore_data_fd(const char *name, void *userdata)
{
    DataFds *df = userdata;
    char id[RESTORE_NAME_MAX], err[256] = "";
    size_t len = strlen(name);
    const StateJournalJob *job;
    Device *d;
    int fd = -EBADF;

    if (strncmp(name, DATA_PREFIX, strlen(DATA_PREFIX)) != 0 ||
        len <= strlen(DATA_PREFIX DATA_SUFFIX) ||
        strcmp(name + len - strlen(DATA_SUFFIX), DATA_SUFFIX) != 0 ||
        sd_service_take_fd(df->sd, name, &fd) < 0) {
        return; /* not one, or several under one name: sd_service_close_unclaimed() */
    }
    (void) snprintf(id, sizeof(id), "%.*s", (int) (len - strlen(DATA_PREFIX DATA_SUFFIX)),
                    name + strlen(DATA_PREFIX));
    for (char *p = id; *p; p++) {
        *p = *p == '%' ? ':' : *p; /* restore_name_escape(), undone */
    }
    d = manager_find(df->manager, id);
    job = restore_job_of(df->journal, d);
    if (!d) {
        log_warning("Restart: data fd '%s' came back, but no re-adopted device has that id; "
                    "closed.", name);
    } else if (!d->backend->ops->data_fd_check ||
               d->backend->ops->data_fd_check(d->backend, fd, err, sizeof(err)) < 0) {
        log_device_warning(d, "Restart: data fd '%s' is not a data fd of '%s' (%s); closed.",
                           name, d->id, err[0] ? err : "its back-end has none");
    } else if (job) {
        log_device_info(d, "Restart: the data fd of '%s' (job '%s') came back; closed before "
                        "the job is failed.", d->id, job->id);
    } else {
        log_device_notice(d, "Restart: the data fd of '%s' came back with no journaled job "
                          "(a state change opened it); closed: its stream is lost, the device "
                          "stays in %s.", d->id, fsm_state_name(d->state));
    }
    (void) close(fd);
    (void) sd_service_remove_fd(name);
    df->n++;
}

static void
restore_groups(Manager *m, const StateJournal *j, RestoreCounts *c)
{
    for (size_t i = 0; i < j->n_groups; i++) {
        const StateJournalGroup *jg = &j->groups[i];
        char err[512] = "";
        Group *g = NULL;
        int r = group_new(m, jg->name, (const char *const *) jg->members, jg->n_members, &g,
                          err, sizeof(err));

        if (r < 0) {
            log_warning("Restart: cannot make group '%s' again: %s.", jg->name, err);
            continue;
        }
        c->groups++;
    }
}

static void
on_recovery_group_done(Group *g, const GroupRun *run, void *userdata)
{
    (void) userdata;
    if (run->r < 0) {
        log_warning("Restart: group '%s' could not go back to running: %s", g->name,
                    run->error);
        return;
    }
    log_notice("Restart: group '%s' is running again.", g->name);
}

static void
on_recovery_device_done(Device *d, const OpResult *res, void *userdata)
{
    (void) userdata;
    if (res->r < 0) {
        log_device_warning(d, "Restart: device '%s' could not be recovered: %s", d->id,
                           res->message);
        return;
    }
    log_device_notice(d, "Restart: device '%s' is %s again.", d->id,
                      fsm_state_name(d->state));
}

/* One device of a job that was in flight: a reset (what it received is dropped) or back to
 * RUNNING. */
static int
restore_recover_device(Device *d, bool reset, char *err, size_t err_size)
{
    if (reset) {
        return device_reset_start(d, on_recovery_device_done, NULL, err, err_size);
    }
    if (d->state == DEVICE_STATE_RUNNING) {
        return 0;
    }
    return device_set_state_start(d, DEVICE_STATE_RUNNING, on_recovery_device_done, NULL, err,
                                  err_size);
}

/* Lists the job as failed, under its old id, with why (printf @fmt). */
_printf_(3, 4) static void
restore_record_job(Manager *m, const StateJournalJob *job, const char *fmt, ...)
{
    char error[512];
    va_list ap;
    int r;

    va_start(ap, fmt);
    (void) vsnprintf(error, sizeof(error), fmt, ap);
    va_end(ap);
    r = migration_record_failed(m, job->id, (MigrationRole) job->role,
                                (MigrationSubject) job->subject, job->name, error);
    if (r < 0) {
        log_warning("Restart: cannot list job '%s' as failed: %s", job->id, strerror(-r));
    }
}

/* A live migration past its commit point: the restart must not decide where the VM runs. It
 * comes back in doubt under its old id, its devices held as they are, for the orchestrator's
 * resolve. If it cannot (its group did not come back whole), it is listed failed and its
 * devices are still left as they are, for the group commands to decide by hand. */
static void
restore_keep_in_doubt(Manager *m, const StateJournalJob *job, RestoreCounts *c)
{
    MigrationInDoubt w = {.id = job->id, .role = (MigrationRole) job->role, .group = job->name,
                          .peer = job->peer ? job->peer : "",
                          .auto_resume = job->flags & STATE_JOURNAL_JOB_AUTO_RESUME,
                          .started_unix_ms = job->started_unix_ms};
    char err[512] = "it names a device, not a group";
    int r = job->subject == MIGRATION_SUBJECT_GROUP
                ? migration_readopt_in_doubt(m, &w, err, sizeof(err))
                : -EINVAL;

    if (r >= 0) {
        log_warning("Restart: live migration '%s' of '%s' was past its commit point when the "
                    "previous daemon ended: it is in doubt again, its devices held as they are "
                    "(neither resumed nor reset). Ask the other side's daemon what became of its "
                    "job, then 'vfio-migctl resolve %s --resume' or '--abort'.", job->id,
                    job->name, job->id);
        c->in_doubt++;
        return;
    }
    restore_record_job(m, job, "the daemon restarted while the migration was in doubt "
                       "(past its commit point) and it cannot be held again (%s): its devices "
                       "are left as they are; ask the other side where the VM runs, then "
                       "'vfio-migctl group state %s running' or 'vfio-migctl group reset %s'",
                       err, job->name, job->name);
    log_warning("Restart: live migration '%s' of '%s' was past its commit point when the "
                "previous daemon ended, and cannot be held in doubt again (%s): its devices are "
                "left as they are, neither resumed nor reset. Ask the other side's daemon where "
                "the VM runs; 'vfio-migctl group state %s running' runs it here, 'vfio-migctl "
                "group reset %s' gives it up.", job->id, job->name, err, job->name, job->name);
    c->jobs++;
}

/* A job the previous daemon did not finish fails here by the migration rule; one in doubt
 * stays in doubt. */
static void
restore_job(Manager *m, const StateJournalJob *job, RestoreCounts *c)
{
    Group *g = job->subject == MIGRATION_SUBJECT_GROUP ? group_find(m, job->name) : NULL;
    Device *d = job->subject == MIGRATION_SUBJECT_DEVICE ? manager_find(m, job->name) : NULL;
    char err[512] = "";
    bool reset;
    int r = 0;

    if (job->role < MIGRATION_SOURCE || job->role >= _MIGRATION_ROLE_MAX || (!g && !d)) {
        log_warning("Restart: job '%s' of the journal names role %u and '%s', which is not "
                    "here; nothing to recover.", job->id, job->role, job->name);
        restore_record_job(m, job, "the daemon restarted while it was in flight, and '%s' did "
                           "not come back", job->name);
        return;
    }
    if (job->phase == PHASE_IN_DOUBT) {
        restore_keep_in_doubt(m, job, c);
        return;
    }
    reset = job_recovery[job->role].reset;
    restore_record_job(m, job, "the daemon restarted while it was in flight (in phase %s); %s",
                       migration_phase_name((MigrationPhase) job->phase),
                       reset ? "what it received was reset" : "its devices went back to running");
    log_notice("Restart: %s '%s' of '%s' was in flight when the previous daemon ended: it "
               "failed; %s.", job_recovery[job->role].name, job->id, job->name,
               reset ? "resetting what it received" : "its devices go back to running");
    c->jobs++;
    if (d) {
        r = restore_recover_device(d, reset, err, sizeof(err));
    } else if (!reset) {
        r = group_transition_start(g, DEVICE_STATE_RUNNING, /* force= */ true,
                                   on_recovery_group_done, NULL, err, sizeof(err));
    } else {
        for (size_t i = 0; i < g->n_devices && r >= 0; i++) {
            r = restore_recover_device(g->devices[i], true, err, sizeof(err));
        }
    }
    if (r < 0) {
        log_warning("Restart: cannot recover after %s '%s': %s", job_recovery[job->role].name,
                    job->id, err);
    }
}

typedef struct Leftovers {
    char **names;
    size_t n;
} Leftovers;

static void
collect_ours(const char *name, void *userdata)
{
    Leftovers *l = userdata;
    char **p;

    if (strncmp(name, DEVICE_PREFIX, strlen(DEVICE_PREFIX)) != 0 &&
        strncmp(name, JOURNAL_PREFIX, strlen(JOURNAL_PREFIX)) != 0 &&
        strncmp(name, GROUP_PREFIX, strlen(GROUP_PREFIX)) != 0 &&
        strncmp(name, CONTAINER_PREFIX, strlen(CONTAINER_PREFIX)) != 0 &&
        strncmp(name, IRQ_PREFIX, strlen(IRQ_PREFIX)) != 0 &&
        strncmp(name, REQ_PREFIX, strlen(REQ_PREFIX)) != 0 &&
        strncmp(name, DATA_PREFIX, strlen(DATA_PREFIX)) != 0) {
        return;
    }
    p = realloc(l->names, (l->n + 1) * sizeof(*p));
    if (p) {
        l->names = p;
        l->names[l->n] = strdup(name);
        l->n += l->names[l->n] ? 1 : 0;
    }
}

/* Closes every stored fd of ours nothing placed, and drops the store's copy. */
static unsigned
restore_close_leftovers(SdService *sd)
{
    Leftovers l = {0};
    unsigned closed = 0;

    sd_service_foreach_passed(sd, collect_ours, &l);
    for (size_t i = 0; i < l.n; i++) {
        int fd = -EBADF;

        /* Several under one name (-ENOTUNIQ) are left to sd_service_close_unclaimed(). */
        if (sd_service_take_fd(sd, l.names[i], &fd) == 0) {
            (void) close(fd);
            closed++;
            (void) sd_service_remove_fd(l.names[i]);
        }
        free(l.names[i]);
    }
    free(l.names);
    return closed;
}

RestoreState *
restore_state_start(Manager *m, SdService *sd)
{
    RestoreState *rs = calloc(1, sizeof(*rs));
    StateJournal j = {0};
    RestoreCounts c = {0};
    char why[512] = "";
    int r;

    r = restore_journal_pick(sd, &j, why, sizeof(why));
    if (r == -ENOENT) {
        c.closed = restore_close_leftovers(sd);
        if (c.closed > 0) {
            log_error("Restart: the fd store holds %u device fd(s) but no state journal; "
                      "closed them all, no device recovered.", c.closed);
        }
    } else if (r < 0) {
        c.closed = restore_close_leftovers(sd);
        log_error("Restart: the state journal is unusable (%s); closed the %u stored fd(s), no "
                  "device recovered.", why, c.closed);
    } else {
        restore_devices(m, sd, &j, &c);
        DataFds df = {.manager = m, .sd = sd, .journal = &j};

        restore_groups(m, &j, &c);
        sd_service_foreach_passed(sd, restore_data_fd, &df);
        for (size_t i = 0; i < j.n_jobs; i++) {
            restore_job(m, &j.jobs[i], &c);
        }
        c.closed = restore_close_leftovers(sd);
        log_notice("Restart: recovered %u device(s) without a reset and %u group(s); %u live "
                   "migration(s) still in doubt; %u in-flight job(s) failed; %u device(s) lost; "
                   "%u data fd(s) closed; %u stored fd(s) closed that nothing claimed.",
                   c.devices, c.groups, c.in_doubt, c.jobs, c.lost, df.n, c.closed);
    }
    if (rs) {
        rs->manager = m;
        rs->seq = r == 0 ? j.seq : 0;
    }
    state_journal_clear(&j);
    return rs;
}

RestoreState *
restore_state_free(RestoreState *rs)
{
    if (rs) {
        for (size_t i = 0; i < rs->n_stored; i++) {
            free(rs->stored[i].irq_gen);
        }
        free(rs->stored);
        free(rs);
    }
    return NULL;
}
