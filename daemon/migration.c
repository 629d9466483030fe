/* SPDX-License-Identifier: MIT */
/*
 * migration — jobs: creation, the phase choke point, workers, failure and rollback, and the
 * registry. The flows are in migration_source.c, migration_dest.c and migration_file.c.
 *
 * Failure, in order (mig_fail): the first error is kept; every worker is told to stop (flags)
 * and unblocked (shutdown() of the sockets); the peer is told (best effort); the phase
 * becomes ROLLING_BACK. Only when no worker and no group transition of the job is left does
 * the role's rollback start (mig_maybe_finish_failure): the source takes its group back to
 * RUNNING with a P2P-safe group transition, the destination (and a failed restore) resets
 * its devices, a failed save brings its group back. Then FAILED (or CANCELLED).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "manager.h"
#include "migration_internal.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"

static const char *const phase_names[_PHASE_MAX] = {
    [PHASE_WAITING] = "waiting",         [PHASE_CONNECTING] = "connecting",
    [PHASE_PRECOPY] = "precopy",         [PHASE_READY] = "ready",
    [PHASE_SWITCHOVER] = "switchover",   [PHASE_COMPLETING] = "completing",
    [PHASE_COMPLETED] = "completed",     [PHASE_ROLLING_BACK] = "rolling_back",
    [PHASE_FAILED] = "failed",           [PHASE_CANCELLED] = "cancelled",
};

const char *
mig_phase_name(MigrationPhase p)
{
    return p > 0 && p < _PHASE_MAX && phase_names[p] ? phase_names[p] : "unknown";
}

void
migration_options_defaults(MigrationOptions *o)
{
    *o = (MigrationOptions){.precopy = true, .max_precopy_ms = 30000,
                            .downtime_target_ms = 300, .timeout_ms = 30000};
}

bool
mig_is_over(const MigrationJob *j)
{
    return j->phase == PHASE_COMPLETED || j->phase == PHASE_FAILED ||
           j->phase == PHASE_CANCELLED;
}

/* The only writer of j->phase. */
void
mig_set_phase(MigrationJob *j, MigrationPhase p)
{
    if (j->phase == p) {
        return;
    }
    /* Terminal phases are final, and a rollback only ends: a late completion (a worker that
     * reports after the failure) must not make a failing job look like it progressed. */
    if (mig_is_over(j) ||
        (j->phase == PHASE_ROLLING_BACK && p != PHASE_FAILED && p != PHASE_CANCELLED)) {
        log_debug("Migration %s: ignoring phase %s while %s.", j->id, mig_phase_name(p),
                  mig_phase_name(j->phase));
        return;
    }
    log_info("Migration %s (%s, group '%s'): %s -> %s.", j->id,
             j->role == MIGRATION_SOURCE        ? "source"
             : j->role == MIGRATION_DESTINATION ? "destination"
             : j->role == MIGRATION_SAVE        ? "save"
                                                : "restore",
             j->group_name, j->phase ? mig_phase_name(j->phase) : "new", mig_phase_name(p));
    j->phase = p;
    manager_migration_changed(j->manager, j);
}

/* ---- workers ---- */

MigWork *
mig_work_new(MigrationJob *j, MigDevice *dev, void (*run)(MigWork *), void (*done)(MigWork *))
{
    MigWork *w = calloc(1, sizeof(*w));

    if (w) {
        w->job = j;
        w->dev = dev;
        w->fd = -EBADF;
        w->run = run;
        w->done = done;
    }
    return w;
}

static void
on_work(uv_work_t *req)
{
    MigWork *w = req->data;
    w->run(w);
}

static void
on_work_done(uv_work_t *req, int status)
{
    MigWork *w = req->data;
    MigrationJob *j = w->job;

    (void) status; /* never cancelled */
    j->workers--;
    w->done(w);
    free(w->msg);
    free(w);
    mig_maybe_finish_failure(j);
}

int
mig_queue(MigrationJob *j, MigWork *w)
{
    int r;

    if (!w) {
        return -ENOMEM;
    }
    w->req.data = w;
    r = uv_queue_work(j->manager->loop, &w->req, on_work, on_work_done);
    if (r < 0) {
        free(w->msg);
        free(w);
        return r;
    }
    j->workers++;
    return 0;
}

/* ---- group transitions owned by the job ---- */

static void
on_group_done(Group *g, const GroupRun *run, void *userdata)
{
    GroupWait *gw = userdata;
    MigrationJob *j = gw->job;
    void (*done)(MigrationJob *, const GroupRun *) = gw->done;

    (void) g;
    free(gw);
    j->group_busy = false;
    done(j, run);
    mig_maybe_finish_failure(j);
}

int
mig_group_transition(MigrationJob *j, DeviceState target,
                     void (*done)(MigrationJob *j, const GroupRun *run))
{
    GroupWait *gw = calloc(1, sizeof(*gw));
    char err[512] = "";
    int r;

    if (!gw) {
        return -ENOMEM;
    }
    *gw = (GroupWait){j, done};
    j->touched = true;
    r = group_transition_start_ex(j->group, target, /* force= */ true, j, on_group_done, gw,
                                  err, sizeof(err));
    if (r < 0) {
        free(gw);
        mig_fail(j, r, "group '%s' cannot go to %s: %s", j->group_name, fsm_state_name(target),
                 err);
        return r;
    }
    j->group_busy = true;
    return 0;
}

/* ---- sockets ---- */

void
mig_send_nonblocking(MigrationJob *j, uint32_t type, const char *text)
{
    uint8_t buf[8 + 512];
    size_t len = strnlen(text, 512);

    if (j->ctl_fd < 0 || pthread_mutex_trylock(&j->ctl_lock) != 0) {
        return; /* a worker is writing: the peer learns from the closed connection instead */
    }
    for (int i = 0; i < 4; i++) {
        buf[i] = (uint8_t) (type >> (8 * i));
        buf[4 + i] = (uint8_t) (len >> (8 * i));
    }
    memcpy(buf + 8, text, len);
    (void) send(j->ctl_fd, buf, 8 + len, MSG_DONTWAIT | MSG_NOSIGNAL);
    pthread_mutex_unlock(&j->ctl_lock);
}

/* Unblocks every worker blocked on a socket; the fds stay open until they have returned. */
static void
mig_shutdown_sockets(MigrationJob *j)
{
    if (j->ctl_fd >= 0) {
        (void) shutdown(j->ctl_fd, SHUT_RDWR);
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        if (j->devs[i].fd >= 0) {
            (void) shutdown(j->devs[i].fd, SHUT_RDWR);
        }
    }
}

static void
on_listen_closed(uv_handle_t *h)
{
    MigrationJob *j = h->data;
    j->handles_open--;
}

void
mig_close_sockets(MigrationJob *j)
{
    if (j->ctl_fd >= 0) {
        (void) close(TAKE_FD(j->ctl_fd));
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        if (j->devs[i].fd >= 0) {
            (void) close(TAKE_FD(j->devs[i].fd));
        }
    }
    if (j->listen_active) {
        j->listen_active = false;
        uv_close((uv_handle_t *) &j->listen_poll, on_listen_closed);
    }
    if (j->listen_fd >= 0) {
        (void) close(TAKE_FD(j->listen_fd));
        if (strncmp(j->peer, "unix:", 5) == 0) {
            (void) unlink(j->peer + 5); /* the listening socket's file is ours */
        }
    }
}

/* ---- ending ---- */

static void mig_unlock_devices(MigrationJob *j);
static void on_tick_closed(uv_handle_t *h);

static void
mig_release(MigrationJob *j)
{
    j->end_ns = clock_now_ns();
    j->tick_active = false;
    if (j->tick_initialized) {
        j->tick_initialized = false;
        uv_close((uv_handle_t *) &j->tick, on_tick_closed);
    }
    mig_close_sockets(j);
    mig_unlock_devices(j);
    if (j->group && j->group->migration == j) {
        j->group->migration = NULL;
    }
    if (j->done) {
        migration_done_cb done = j->done;
        j->done = NULL;
        done(j, j->done_userdata);
    }
}

void
mig_complete(MigrationJob *j)
{
    if (j->phase == PHASE_ROLLING_BACK || mig_is_over(j)) {
        return; /* a failure came first: its rollback ends the job */
    }
    mig_set_phase(j, PHASE_COMPLETED);
    mig_release(j);
}

void
mig_fail(MigrationJob *j, int r, const char *fmt, ...)
{
    va_list ap;

    if (mig_is_over(j) || j->phase == PHASE_ROLLING_BACK) {
        return; /* the first failure is the one to report; later ones are its echoes */
    }
    if (j->confirmed) {
        /* The destination has the devices: nothing may roll back any more. */
        log_warning("Migration %s: a failure after the confirmation is ignored.", j->id);
        return;
    }
    va_start(ap, fmt);
    (void) vsnprintf(j->error, sizeof(j->error), fmt, ap);
    va_end(ap);
    j->r = r < 0 ? r : -EIO;
    log_warning("Migration %s failed: %s.", j->id, j->error);
    atomic_store(&j->abort, true);
    atomic_store(&j->stop_pumps, true);
    atomic_store(&j->control_stop, true);
    mig_send_nonblocking(j, TMSG_FAIL, j->error);
    mig_shutdown_sockets(j);
    mig_set_phase(j, PHASE_ROLLING_BACK);
}

static bool
is_peer_gone(int r)
{
    return r == -ENODATA || r == -ECONNRESET || r == -EPIPE;
}

void
mig_fail_io(MigrationJob *j, int r, const char *text)
{
    if (!is_peer_gone(r)) {
        mig_fail(j, r, "%s", text);
        return;
    }
    /* The peer closed a data channel: it usually says why on the control channel a moment
     * later (FAIL); give that reason the chance to be the one reported. */
    if (j->peer_gone_ns == 0) {
        j->peer_gone_ns = clock_now_ns();
        j->peer_gone_r = r;
        (void) snprintf(j->peer_gone_error, sizeof(j->peer_gone_error), "%s", text);
    }
}

void
mig_check_peer_gone(MigrationJob *j)
{
    if (j->peer_gone_ns && !mig_is_over(j) && j->phase != PHASE_ROLLING_BACK &&
        clock_now_ns() - j->peer_gone_ns > MIGRATION_PEER_REASON_NS) {
        mig_fail(j, j->peer_gone_r, "%s", j->peer_gone_error);
        mig_maybe_finish_failure(j);
    }
}

static void
mig_finish_failure(MigrationJob *j)
{
    mig_set_phase(j, j->cancel_requested ? PHASE_CANCELLED : PHASE_FAILED);
    mig_release(j);
}

void
mig_maybe_finish_failure(MigrationJob *j)
{
    if (j->phase != PHASE_ROLLING_BACK || j->rollback_started || j->workers > 0 ||
        j->group_busy) {
        return;
    }
    j->rollback_started = true;
    mig_close_sockets(j);
    if (j->role == MIGRATION_SOURCE || j->role == MIGRATION_SAVE) {
        mig_source_rollback(j);
    } else {
        mig_dest_rollback(j);
    }
}

/* ---- rollback ---- */

static void
on_rollback_reset(Device *d, const OpResult *res, void *userdata)
{
    MigrationJob *j = userdata;

    if (res->r < 0) {
        size_t used = strlen(j->error);
        (void) snprintf(j->error + used, sizeof(j->error) - used,
                        "; resetting device '%s' failed: %s", d->id, res->message);
    }
    if (--j->resets_pending == 0) {
        mig_finish_failure(j);
    }
}

/* Resets every device of the job (destination, failed restore, or a source whose group
 * transition back cannot even start), in parallel. */
static void
mig_reset_devices(MigrationJob *j)
{
    DeviceOpOptions opts = {.lock_key = j};
    char err[256];

    for (size_t i = 0; i < j->n_devs; i++) {
        if (device_reset_start_ex(j->devs[i].device, &opts, on_rollback_reset, j, err,
                                  sizeof(err)) >= 0) {
            j->resets_pending++;
        }
    }
    if (j->resets_pending == 0) {
        mig_finish_failure(j);
    }
}

void
mig_dest_rollback(MigrationJob *j)
{
    if (!j->touched) {
        mig_finish_failure(j); /* refused before any device was touched: nothing to undo */
        return;
    }
    mig_reset_devices(j);
}

static void
on_source_rollback_done(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        size_t used = strlen(j->error);
        (void) snprintf(j->error + used, sizeof(j->error) - used,
                        "; taking the group back to running failed: %s", run->error);
        mig_reset_devices(j);
        return;
    }
    mig_finish_failure(j);
}

void
mig_source_rollback(MigrationJob *j)
{
    bool all_running = true;
    char err[512] = "";
    GroupWait *gw;

    for (size_t i = 0; i < j->n_devs; i++) {
        all_running = all_running && j->devs[i].device->state == DEVICE_STATE_RUNNING;
    }
    if (all_running) {
        mig_finish_failure(j);
        return;
    }
    gw = calloc(1, sizeof(*gw));
    if (gw) {
        *gw = (GroupWait){j, on_source_rollback_done};
    }
    if (!gw || group_transition_start_ex(j->group, DEVICE_STATE_RUNNING, true, j, on_group_done,
                                         gw, err, sizeof(err)) < 0) {
        free(gw);
        mig_reset_devices(j); /* e.g. a device in ERROR: a reset is the only way back */
        return;
    }
    j->group_busy = true;
}

/* ---- jobs ---- */

static void
mig_unlock_devices(MigrationJob *j)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        if (j->devs[i].device->lock == j) {
            device_unlock(j->devs[i].device);
        }
    }
}

static void
on_tick_closed(uv_handle_t *h)
{
    MigrationJob *j = h->data;
    j->handles_open--;
}

static MigrationJob *
mig_job_free(MigrationJob *j)
{
    if (!j) {
        return NULL;
    }
    mig_close_sockets(j);
    mig_unlock_devices(j);
    pthread_mutex_destroy(&j->ctl_lock);
    free(j->devs);
    free(j->manifest.devices);
    free(j->end_totals);
    free(j);
    return NULL;
}

static int
registry_add(Manager *m, MigrationJob *j)
{
    size_t finished = 0;

    /* Forget the oldest finished jobs beyond MIGRATION_KEEP_FINISHED. */
    for (size_t i = 0; i < m->n_jobs; i++) {
        finished += mig_is_over(m->jobs[i]);
    }
    for (size_t i = 0; i < m->n_jobs && finished >= MIGRATION_KEEP_FINISHED;) {
        if (mig_is_over(m->jobs[i]) && m->jobs[i]->handles_open == 0) {
            mig_job_free(m->jobs[i]);
            memmove(m->jobs + i, m->jobs + i + 1, (m->n_jobs - i - 1) * sizeof(*m->jobs));
            m->n_jobs--;
            finished--;
        } else {
            i++;
        }
    }
    if (m->n_jobs == m->allocated_jobs) {
        size_t n = m->allocated_jobs ? m->allocated_jobs * 2 : 16;
        MigrationJob **p = realloc(m->jobs, n * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        m->jobs = p;
        m->allocated_jobs = n;
    }
    m->jobs[m->n_jobs++] = j;
    return 0;
}

int
mig_job_new(Manager *m, MigrationRole role, Group *g, MigrationJob **ret)
{
    _cleanup_free_ MigrationJob *j = calloc(1, sizeof(*j));
    struct timeval tv;

    if (!j || !(j->devs = calloc(g->n_devices, sizeof(*j->devs))) ||
        !(j->manifest.devices = calloc(STREAM_MAX_DEVICES, sizeof(*j->manifest.devices)))) {
        if (j) {
            free(j->devs);
        }
        return -ENOMEM;
    }
    (void) gettimeofday(&tv, NULL);
    j->manager = m;
    j->role = role;
    j->group = g;
    (void) snprintf(j->group_name, sizeof(j->group_name), "%s", g->name);
    (void) snprintf(j->id, sizeof(j->id), "m%u", ++m->next_job);
    j->ctl_fd = j->listen_fd = -EBADF;
    (void) pthread_mutex_init(&j->ctl_lock, NULL);
    j->start_ns = clock_now_ns();
    j->started_unix_ms = (uint64_t) tv.tv_sec * 1000 + (uint64_t) tv.tv_usec / 1000;
    migration_options_defaults(&j->opts);
    j->n_devs = g->n_devices;
    for (size_t i = 0; i < g->n_devices; i++) {
        j->devs[i] = (MigDevice){.job = j, .device = g->devices[i], .index = (uint32_t) i,
                                 .fd = -EBADF, .data_size = g->devices[i]->data_size};
    }
    if (registry_add(m, j) < 0) {
        free(j->devs);
        free(j->manifest.devices);
        return -ENOMEM;
    }
    for (size_t i = 0; i < g->n_devices; i++) {
        device_lock(g->devices[i], j);
    }
    g->migration = j;
    *ret = TAKE_PTR(j);
    return 0;
}

static MigDevice *
find_local(MigrationJob *j, const char *name)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        if (strcmp(j->devs[i].device->id, name) == 0) {
            return &j->devs[i];
        }
    }
    return NULL;
}

/* Pairs the source's devices with ours by name, and puts ours in the source's order. */
int
mig_match_manifest(MigrationJob *j, const StreamManifest *src, char *why, size_t why_size)
{
    MigDevice *ordered;

    if (src->n_devices != j->n_devs) {
        (void) snprintf(why, why_size, "the source has %u devices, group '%s' here has %zu",
                        src->n_devices, j->group_name, j->n_devs);
        return -EMEDIUMTYPE;
    }
    for (uint32_t i = 0; i < src->n_devices; i++) {
        const StreamManifestDevice *sd = &src->devices[i];
        MigDevice *md = find_local(j, sd->name);

        if (!md) {
            (void) snprintf(why, why_size, "the source's device '%s' has no device of that name "
                            "in group '%s' here", sd->name, j->group_name);
            return -EMEDIUMTYPE;
        }
        if (sd->mig_flags != md->device->info.mig_flags ||
            strcmp(sd->backend, device_backend_name(md->device)) != 0 ||
            (strcmp(sd->backend, "sim") == 0 && sd->data_size != md->device->data_size)) {
            (void) snprintf(why, why_size, "device '%s' differs: source %s flags %#x size %llu, "
                            "here %s flags %#x size %llu", sd->name, sd->backend, sd->mig_flags,
                            (unsigned long long) sd->data_size, device_backend_name(md->device),
                            md->device->info.mig_flags,
                            (unsigned long long) md->device->data_size);
            return -EMEDIUMTYPE;
        }
    }
    ordered = calloc(j->n_devs, sizeof(*ordered));
    if (!ordered) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < src->n_devices; i++) {
        ordered[i] = *find_local(j, src->devices[i].name);
        ordered[i].index = i;
    }
    memcpy(j->devs, ordered, j->n_devs * sizeof(*ordered));
    free(ordered);
    return 0;
}

int
mig_check_group_idle(Group *g, char *err, size_t err_size)
{
    if (g->active || g->migration) {
        (void) snprintf(err, err_size, "group '%s' is %s", g->name,
                        g->active ? "in a transition" : "already in a migration");
        return -EBUSY;
    }
    for (size_t i = 0; i < g->n_devices; i++) {
        const Device *d = g->devices[i];
        if (device_is_busy(d) || d->lock) {
            (void) snprintf(err, err_size, "device '%s' is busy", d->id);
            return -EBUSY;
        }
        if (!d->info.migratable) {
            (void) snprintf(err, err_size, "device '%s' does not support VFIO migration", d->id);
            return -EOPNOTSUPP;
        }
    }
    return 0;
}

void
mig_build_manifest(MigrationJob *j)
{
    StreamManifest *mf = &j->manifest;

    (void) snprintf(mf->group, sizeof(mf->group), "%s", j->group_name);
    mf->n_devices = (uint32_t) j->n_devs;
    for (size_t i = 0; i < j->n_devs; i++) {
        const Device *d = j->devs[i].device;
        StreamManifestDevice *md = &mf->devices[i];

        (void) snprintf(md->name, sizeof(md->name), "%s", d->id);
        md->mig_flags = d->info.mig_flags;
        md->data_size = d->data_size;
        (void) snprintf(md->backend, sizeof(md->backend), "%s", device_backend_name(d));
        md->compat_size = 0; /* plugin compatibility descriptors: an empty slot for now */
    }
}

void
mig_tick_start(MigrationJob *j, void (*cb)(uv_timer_t *))
{
    if (!j->tick_initialized) {
        (void) uv_timer_init(j->manager->loop, &j->tick);
        j->tick.data = j;
        j->tick_initialized = true;
        j->handles_open++;
    }
    j->tick_active = true;
    j->rate_prev_ns = clock_now_ns();
    (void) uv_timer_start(&j->tick, cb, MIGRATION_TICK_MS, MIGRATION_TICK_MS);
}

double
mig_update_rates(MigrationJob *j)
{
    uint64_t now = clock_now_ns();
    double dt = (double) (now - j->rate_prev_ns) / 1e9, total = 0;

    for (size_t i = 0; i < j->n_devs && dt > 0; i++) {
        MigDevice *md = &j->devs[i];
        uint64_t b = atomic_load(&md->precopy_bytes) + atomic_load(&md->stopcopy_bytes);
        double inst = (double) (b - md->rate_prev_bytes) / dt;
        md->rate = md->rate > 0 ? 0.7 * md->rate + 0.3 * inst : inst; /* smooth the ticks */
        md->rate_prev_bytes = b;
        total += md->rate;
    }
    j->rate_prev_ns = now;
    return total;
}

MigrationJob *
migration_find(Manager *m, const char *id)
{
    for (size_t i = 0; i < m->n_jobs; i++) {
        if (strcmp(m->jobs[i]->id, id) == 0) {
            return m->jobs[i];
        }
    }
    return NULL;
}

void
migration_abort_all(Manager *m)
{
    for (size_t i = 0; i < m->n_jobs; i++) {
        MigrationJob *j = m->jobs[i];
        if (!mig_is_over(j)) {
            j->cancel_requested = true;
            mig_fail(j, -ESHUTDOWN, "the daemon is shutting down");
            mig_maybe_finish_failure(j);
        }
    }
}

void
migration_free_all(Manager *m)
{
    /* Called after the loop ended: every job has ended and closed its handles. */
    for (size_t i = 0; i < m->n_jobs; i++) {
        mig_job_free(m->jobs[i]);
    }
    free(m->jobs);
    m->jobs = NULL;
    m->n_jobs = 0;
}

int
migration_cancel(MigrationJob *j, char *err, size_t err_size)
{
    if (mig_is_over(j) || j->phase == PHASE_ROLLING_BACK) {
        (void) snprintf(err, err_size, "migration %s has already %s", j->id,
                        j->phase == PHASE_ROLLING_BACK ? "failed and is rolling back"
                                                       : "ended");
        return -ESTALE;
    }
    if (j->phase == PHASE_COMPLETING && j->role == MIGRATION_SOURCE) {
        (void) snprintf(err, err_size, "migration %s is completing: the destination already has "
                        "the whole state", j->id);
        return -ESTALE;
    }
    j->cancel_requested = true;
    mig_fail(j, -ECANCELED, "cancelled by request");
    mig_maybe_finish_failure(j);
    return 0;
}
