/* SPDX-License-Identifier: MIT */
/*
 * migration — jobs: the phase table and its choke point, the one constructor, workers,
 * failure and rollback, the registry and snapshots. The flows are in migration_source.c,
 * migration_dest.c and migration_file.c.
 *
 * Failure, in order (mig_fail): the first error is kept; every worker is told to stop (flags)
 * and unblocked (shutdown() of the sockets); the peer is told (best effort); the phase
 * becomes ROLLING_BACK. Only when no worker and no group transition of the job is left does
 * the role's rollback start (mig_maybe_finish_failure): the source (and a failed save) takes
 * its group back to where it started with a P2P-safe group transition, the destination (and
 * a failed restore) resets its devices. Then FAILED (or CANCELLED), and the error says where
 * the devices were left.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log_object.h"
#include "manager.h"
#include "migration_internal.h"
#include "util/array.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

static_assert(MIGRATION_ADDRESS_MAX == TRANSPORT_ADDRESS_MAX, "migration.h mirrors transport.h");
static_assert(MIGRATION_TOKEN_MAX == TRANSPORT_TOKEN_HEX + 1, "migration.h mirrors transport.h");

/* ---- the phase table ---- */

#define NEXT(x) (1u << PHASE_##x)

static const struct {
    const char *name;  /* stable: the API's name (MigrationPhase), logs and tests */
    const char *state; /* the API's Migration.state */
    bool over;         /* the job has ended: nothing more happens to it */
    unsigned next;     /* phases reachable from here */
} phase_table[] = {
    /* The flow sets its first phase once the job is fully set up; a live migration the
     * previous daemon left in doubt comes back in doubt (migration_readopt_in_doubt). */
    [PHASE_NEW] = {"new", "active", false, NEXT(WAITING) | NEXT(CONNECTING) | NEXT(IN_DOUBT)},
    /* Destination: a source's HELLO; or nobody came in time, or a cancel. */
    [PHASE_WAITING] = {"waiting", "active", false, NEXT(CONNECTING) | NEXT(ROLLING_BACK)},
    /* Pre-copy when every device has it, else the switchover (a source without pre-copy, a
     * save, a restore, a destination that saw stop-copy data first). A destination whose
     * source sent everything between two ticks goes on to completing at once. */
    [PHASE_CONNECTING] = {"connecting", "active", false,
                          NEXT(PRECOPY) | NEXT(SWITCHOVER) | NEXT(COMPLETING) |
                              NEXT(ROLLING_BACK)},
    /* Nothing is stopped yet. */
    [PHASE_PRECOPY] = {"precopy", "active", false,
                       NEXT(READY) | NEXT(SWITCHOVER) | NEXT(COMPLETING) | NEXT(ROLLING_BACK)},
    [PHASE_READY] = {"ready", "active", false, NEXT(SWITCHOVER) | NEXT(ROLLING_BACK)},
    /* Devices are stopping or stopped: a failure takes them back through the P2P states. */
    [PHASE_SWITCHOVER] = {"switchover", "active", false, NEXT(COMPLETING) | NEXT(ROLLING_BACK)},
    /* Until the commit (core/handover.h: the source sends COMMIT, the destination hears it),
     * the validation (restore) or the file under its name (save), a failure still rolls back;
     * a live migration that loses its peer after its commit point is in doubt. */
    [PHASE_COMPLETING] = {"completing", "active", false,
                          NEXT(COMPLETED) | NEXT(ROLLING_BACK) | NEXT(IN_DOUBT)},
    [PHASE_COMPLETED] = {"completed", "completed", true, 0},
    /* A rollback only ends; a late completion must not make it look like progress. */
    [PHASE_ROLLING_BACK] = {"rolling_back", "active", false, NEXT(FAILED) | NEXT(CANCELLED)},
    [PHASE_FAILED] = {"failed", "failed", true, 0},
    [PHASE_CANCELLED] = {"cancelled", "cancelled", true, 0},
    /* Devices held as they are until the orchestrator resolves: the side runs the VM
     * (destination: completed; source: rolls back) or gives it up (the other way round). */
    [PHASE_IN_DOUBT] = {"in_doubt", "in_doubt", false, NEXT(COMPLETED) | NEXT(ROLLING_BACK)},
};
static_assert(ELEMENTSOF(phase_table) == _PHASE_MAX, "phase_table out of sync with MigrationPhase");

static const struct {
    const char *name; /* logs */
    const char *hold; /* what its devices say they are busy with (busy_operation) */
} role_table[] = {
    [MIGRATION_SOURCE] = {"source", "migration"},
    [MIGRATION_DESTINATION] = {"destination", "migration"},
    [MIGRATION_SAVE] = {"save", "save"},
    [MIGRATION_RESTORE] = {"restore", "restore"},
};
static_assert(ELEMENTSOF(role_table) == _MIGRATION_ROLE_MAX, "role_table out of sync with MigrationRole");

const char *
mig_phase_name(MigrationPhase p)
{
    return p >= 0 && p < _PHASE_MAX ? phase_table[p].name : "unknown";
}

const char *
migration_phase_name(MigrationPhase p)
{
    return mig_phase_name(p);
}

void
migration_options_defaults(MigrationOptions *o)
{
    *o = (MigrationOptions){.precopy = true,
                            .max_precopy_ms = MIGRATION_DEFAULT_MAX_PRECOPY_MS,
                            .downtime_target_ms = MIGRATION_DEFAULT_DOWNTIME_TARGET_MS,
                            .timeout_ms = MIGRATION_DEFAULT_TIMEOUT_MS};
}

bool
mig_is_over(const MigrationJob *j)
{
    return phase_table[j->phase].over;
}

bool
mig_is_failing(const MigrationJob *j)
{
    return mig_is_over(j) || j->phase == PHASE_ROLLING_BACK;
}

int
mig_set_phase(MigrationJob *j, MigrationPhase p)
{
    if (j->phase == p) {
        return 0;
    }
    if (p <= PHASE_NEW || p >= _PHASE_MAX || !(phase_table[j->phase].next & (1u << p))) {
        log_job_error(j, "Migration %s: BUG: refusing phase %s -> %s.", j->id,
                      mig_phase_name(j->phase), mig_phase_name(p));
        if (p != PHASE_ROLLING_BACK) {
            mig_fail(j, -ESTALE, "internal error: phase %s -> %s refused", mig_phase_name(j->phase),
                     mig_phase_name(p));
        }
        return -ESTALE;
    }
    log_job_info(j, "Migration %s (%s, %s '%s'): %s -> %s.", j->id, role_table[j->role].name,
                 j->subject == MIGRATION_SUBJECT_DEVICE ? "device" : "group", j->group_name,
                 mig_phase_name(j->phase), mig_phase_name(p));
    j->phase = p;
    manager_migration_changed(j->manager, j);
    if (phase_table[p].over && j->role == MIGRATION_SOURCE) {
        mig_source_start_waiting(j->manager); /* a firmware slot may be free now */
    }
    return 0;
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

int
mig_start_control(MigrationJob *j, void (*run)(MigWork *), void (*done)(MigWork *))
{
    if (mig_queue(j, mig_work_new(j, NULL, run, done)) < 0) {
        mig_fail(j, -ENOMEM, "cannot start the control channel");
        return -ENOMEM;
    }
    return 0;
}

/* ---- group transitions owned by the job ---- */

typedef struct GroupWait {
    MigrationJob *job;
    void (*done)(MigrationJob *j, const GroupRun *run);
    bool rollback; /* the rollback's own transition: runs @done even while failing */
    const char *fail_what; /* set: a failed run fails the job with "<fail_what>: <error>" */
} GroupWait;

/* The rollback's own transition: @done runs even while failing, and takes a failed run. */
#define ROLLBACK_WAIT(job_, done_) ((GroupWait){.job = (job_), .done = (done_), .rollback = true})

/* Keeps the arcs of @res (or of a group run) on the job's device: its whole path. */
static void
mig_note_arcs(MigrationJob *j, const Device *d, const ArcRecord *arcs, unsigned n)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        MigDevice *md = &j->devs[i];

        if (md->device != d) {
            continue;
        }
        for (unsigned k = 0; k < n && md->n_arcs < MIGRATION_MAX_ARCS; k++) {
            ArcRecord a = arcs[k];
            a.start_us = (a.begin_ns - j->start_ns) / 1000;
            md->arcs[md->n_arcs++] = a;
        }
    }
}

static void
on_group_done(Group *g, const GroupRun *run, void *userdata)
{
    GroupWait *gw = userdata;
    GroupWait w = *gw;
    MigrationJob *j = w.job;

    (void) g;
    free(gw);
    j->group_busy = false;
    for (size_t i = 0; i < run->n_devices; i++) {
        mig_note_arcs(j, run->devices[i].device, run->devices[i].arcs, run->devices[i].n_arcs);
    }
    if (w.rollback || !mig_is_failing(j)) {
        if (run->r < 0 && w.fail_what) {
            mig_fail(j, run->r, "%s: %s", w.fail_what, run->error);
        } else {
            w.done(j, run);
        }
    }
    mig_maybe_finish_failure(j);
}

static int
mig_group_start(MigrationJob *j, DeviceState target, const GroupWait *wait, char *err,
                size_t err_size)
{
    GroupWait *gw = calloc(1, sizeof(*gw));
    int r;

    if (!gw) {
        (void) snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    *gw = *wait;
    r = group_transition_start_ex(j->group, target, /* force= */ true, j, on_group_done, gw, err,
                                  err_size);
    if (r < 0) {
        free(gw); /* refused up front: no device moved */
        return r;
    }
    j->touched = true;
    j->group_busy = true;
    return 0;
}

int
mig_group_transition(MigrationJob *j, DeviceState target, const char *fail_what,
                     void (*done)(MigrationJob *j, const GroupRun *run))
{
    GroupWait wait = {.job = j, .done = done, .fail_what = fail_what};
    char err[512] = "";
    int r;

    if (mig_is_failing(j)) {
        return -ECANCELED; /* the failure's rollback decides where the devices go */
    }
    r = mig_group_start(j, target, &wait, err, sizeof(err));
    if (r < 0) {
        mig_fail(j, r, "%s '%s' cannot go to %s: %s",
                 j->subject == MIGRATION_SUBJECT_DEVICE ? "device" : "group", j->group_name,
                 fsm_state_name(target), err);
        mig_maybe_finish_failure(j); /* no worker or transition of ours may be left to */
    }
    return r;
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
    (void) transport_send_nowait(j->ctl_fd, buf, 8 + len);
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
        const MigSpread *sp = j->devs[i].spread;
        if (j->devs[i].fd >= 0) {
            (void) shutdown(j->devs[i].fd, SHUT_RDWR);
        }
        for (uint32_t c = 1; sp && c < sp->n; c++) {
            if (sp->fds[c] >= 0) {
                (void) shutdown(sp->fds[c], SHUT_RDWR);
            }
        }
    }
    mig_spread_wake(j); /* receivers waiting for their turn */
}

static void
on_handle_closed(uv_handle_t *h)
{
    MigrationJob *j = h->data;
    j->handles_open--;
}

/* A destination's listening socket and its poll: no worker uses them. */
static void
mig_stop_listening(MigrationJob *j)
{
    mig_accept_stop(j);
    if (j->listen_fd >= 0) {
        (void) close(TAKE_FD(j->listen_fd));
    }
    files_socket_remove(&j->listen_socket);
}

void
mig_close_sockets(MigrationJob *j)
{
    if (j->ctl_fd >= 0) {
        (void) transport_close(TAKE_FD(j->ctl_fd));
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        MigSpread *sp = j->devs[i].spread;
        if (j->devs[i].fd >= 0) {
            (void) transport_close(TAKE_FD(j->devs[i].fd));
        }
        for (uint32_t c = 1; sp && c < sp->n; c++) {
            if (sp->fds[c] >= 0) {
                (void) transport_close(TAKE_FD(sp->fds[c]));
            }
        }
    }
    mig_stop_listening(j);
    if (j->file_fd >= 0) {
        (void) close(TAKE_FD(j->file_fd));
    }
    files_discard(&j->save_file);
}

/* ---- ending ---- */

/* Lets go of the devices: what the job did is counted on each (one request; a file job's
 * bytes; a failed device job's error) and where it left them is kept for the record. */
static void
mig_release_devices(MigrationJob *j)
{
    bool file_job = j->role == MIGRATION_SAVE || j->role == MIGRATION_RESTORE;
    /* A request on the device alone is the device's own, as a state change is: its failure
     * is the device's last error. A group's request leaves that to its devices' operations. */
    bool own_request = j->subject == MIGRATION_SUBJECT_DEVICE;

    for (size_t i = 0; i < j->n_devs; i++) {
        MigDevice *md = &j->devs[i];
        Device *d = md->device;

        if (!d) {
            continue;
        }
        md->end_state = d->state;
        if (device_arcs_moved(md->arcs, md->n_arcs)) {
            device_count_request(d);
        }
        if (file_job && j->phase == PHASE_COMPLETED) {
            uint64_t bytes = atomic_load(&md->stopcopy_bytes);
            device_count_transfer(d, j->role == MIGRATION_SAVE ? bytes : 0,
                                  j->role == MIGRATION_RESTORE ? bytes : 0);
        } else if (own_request) {
            device_set_last_error(d, j->error);
        }
        if (d->lock == j) {
            device_unlock(d);
        }
        md->device = NULL;
    }
}

static void
mig_stop_tick(MigrationJob *j)
{
    j->tick_active = false;
    if (j->tick_initialized) {
        j->tick_initialized = false;
        uv_close((uv_handle_t *) &j->tick, on_handle_closed);
    }
}

static void
mig_release(MigrationJob *j)
{
    j->end_ns = clock_now_ns();
    mig_stop_tick(j);
    mig_close_sockets(j);
    mig_release_devices(j);
    if (j->group && j->group->migration == j) {
        j->group->migration = NULL;
    }
    if (j->owns_group) {
        group_free(j->group);
    }
    j->group = NULL;
    if (j->done) {
        migration_done_cb done = j->done;
        j->done = NULL;
        done(j, j->done_userdata);
    }
}

void
mig_complete(MigrationJob *j)
{
    if (mig_is_failing(j)) {
        return; /* a failure came first: its rollback ends the job */
    }
    if (mig_set_phase(j, PHASE_COMPLETED) >= 0) {
        mig_release(j);
    }
}

static bool
mig_is_live(const MigrationJob *j)
{
    return j->role == MIGRATION_SOURCE || j->role == MIGRATION_DESTINATION;
}

static HandoverSide
mig_side(const MigrationJob *j)
{
    return j->role == MIGRATION_SOURCE ? HANDOVER_SOURCE : HANDOVER_DESTINATION;
}

/* Fails the job: the first error is kept, workers stop, the peer hears FAIL, and the rollback
 * follows once they have returned. */
static void
mig_give_up(MigrationJob *j, int r, const char *text)
{
    (void) snprintf(j->error, sizeof(j->error), "%s", text);
    j->r = r < 0 ? r : -EIO;
    log_job_warning(j, "Migration %s failed: %s.", j->id, j->error);
    atomic_store(&j->abort, true);
    atomic_store(&j->stop_pumps, true);
    atomic_store(&j->control_stop, true);
    mig_send_nonblocking(j, TMSG_FAIL, j->error);
    mig_shutdown_sockets(j);
    (void) mig_set_phase(j, PHASE_ROLLING_BACK);
}

/* What the orchestrator must find out, and the two commands, for a job in doubt. */
static void
mig_note_doubt(MigrationJob *j, const char *text)
{
    if (j->role == MIGRATION_SOURCE) {
        (void) snprintf(j->error, sizeof(j->error), "in doubt: %s; this source committed (sent "
                        "COMMIT) but never heard that the destination took the VM: ask the "
                        "destination's daemon; if its job is completed or in_doubt, run "
                        "'vfio-migctl resolve %s --abort' here (and resolve it --resume there); "
                        "if it failed or lost the devices, 'vfio-migctl resolve %s --resume'",
                        text, j->id, j->id);
    } else {
        (void) snprintf(j->error, sizeof(j->error), "in doubt: %s; this destination told the "
                        "source it was prepared but never heard whether the source committed: "
                        "ask the source's daemon; if its job is in_doubt or completed, run "
                        "'vfio-migctl resolve %s --resume' here; if it failed or was cancelled, "
                        "'vfio-migctl resolve %s --abort'", text, j->id, j->id);
    }
}

/* What the job's devices say they are busy with (show: busy_operation). */
static void
mig_say_busy(MigrationJob *j, const char *what)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        if (j->devs[i].device && j->devs[i].device->lock == j) {
            j->devs[i].device->lock_what = what;
        }
    }
}

/* Lost the peer after the commit point: stop every worker, keep the devices exactly as they
 * are (locked, neither resumed nor reset) until migration_resolve(). */
static void
mig_hold(MigrationJob *j, int r, const char *text)
{
    j->r = r < 0 ? r : -EIO;
    mig_note_doubt(j, text);
    log_job_warning(j, "Migration %s is %s.", j->id, j->error);
    atomic_store(&j->abort, true);
    atomic_store(&j->stop_pumps, true);
    atomic_store(&j->control_stop, true);
    mig_shutdown_sockets(j);
    /* Nothing happens by itself any more, and a daemon that stops is not held up. */
    mig_stop_tick(j);
    mig_stop_listening(j);
    mig_say_busy(j, "in_doubt");
    (void) mig_set_phase(j, PHASE_IN_DOUBT);
}

HandoverAction
mig_handover(MigrationJob *j, HandoverEvent ev, int r, const char *text)
{
    HandoverSide side = mig_side(j);
    HandoverState before = j->handover;
    HandoverAction a;

    if (mig_is_failing(j) || j->phase == PHASE_IN_DOUBT) {
        return HANDOVER_DO_NOTHING; /* decided already: later events are echoes */
    }
    a = handover_action(side, before, ev);
    j->handover = handover_next(before, a);
    if (j->handover == HANDOVER_PREPARED || j->handover == HANDOVER_COMMITTED) {
        /* Journaled (restore_state.c) before PREPARED or COMMIT goes out: a daemon restarted
         * from here on must leave the devices as they are. */
        manager_changed(j->manager);
    }
    log_job_debug(j, "Migration %s: hand-over %s, %s: %s.", j->id, handover_state_name(before),
                  handover_event_name(ev), handover_action_name(a));
    if (a == HANDOVER_DO_HOLD) {
        mig_hold(j, r, text);
    } else if (a == (side == HANDOVER_SOURCE ? HANDOVER_DO_RUN : HANDOVER_DO_GIVE_UP)) {
        mig_give_up(j, r, text); /* before the commit point: the old way out */
    }
    return a;
}

void
mig_fail(MigrationJob *j, int r, const char *fmt, ...)
{
    char text[sizeof(j->error)];
    va_list ap;

    if (mig_is_failing(j) || j->phase == PHASE_IN_DOUBT) {
        return; /* the first failure is the one to report; later ones are its echoes */
    }
    if (j->confirmed) {
        /* The save's file is being given its name: nothing may roll back any more. */
        log_job_warning(j, "Migration %s: a failure after the confirmation is ignored.", j->id);
        return;
    }
    va_start(ap, fmt);
    (void) vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (mig_is_live(j)) {
        (void) mig_handover(j, HANDOVER_EV_FAILURE, r, text);
        return;
    }
    mig_give_up(j, r, text);
}

int
mig_work_result(MigWork *w)
{
    if (w->r < 0) {
        mig_fail(w->job, w->r, "%s", w->error[0] ? w->error : transport_strerror(w->r));
    }
    return w->r;
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

int
mig_data_result(MigWork *w, unsigned *in_flight)
{
    (*in_flight)--;
    if (w->r < 0) {
        mig_fail_io(w->job, w->r, w->error);
    }
    return w->r;
}

void
mig_check_peer_gone(MigrationJob *j)
{
    if (j->peer_gone_ns && !mig_is_failing(j) &&
        clock_now_ns() - j->peer_gone_ns > MIGRATION_PEER_REASON_NS) {
        mig_fail(j, j->peer_gone_r, "%s", j->peer_gone_error);
        mig_maybe_finish_failure(j);
    }
}

/* Appends to the error the command that gets the devices out of where they were left, when
 * they need one (a reset: ERROR, an abandoned RESUMING, or a group left in mixed states). */
static void
mig_note_way_out(MigrationJob *j)
{
    size_t used = strlen(j->error);
    char way_out[DEVICE_WAY_OUT_MAX];

    if (j->subject == MIGRATION_SUBJECT_GROUP && j->group) {
        (void) group_way_out(j->group, way_out, sizeof(way_out));
    } else {
        (void) device_way_out(j->devs[0].device, j->devs[0].device->state, way_out,
                              sizeof(way_out));
    }
    (void) snprintf(j->error + used, sizeof(j->error) - used, "%s", way_out);
}

/* Appends to the error where the devices were left: "; device reset, now in running". */
static void
mig_note_where(MigrationJob *j)
{
    size_t used = strlen(j->error);
    const char *how = j->reset_devices ? "reset, now in"
                      : j->touched && (j->role == MIGRATION_SOURCE || j->role == MIGRATION_SAVE)
                          ? "rolled back, now in"
                          : "now in";
    bool same = true;

    if (!j->touched || j->n_devs == 0) {
        return; /* refused before anything moved */
    }
    for (size_t i = 1; i < j->n_devs; i++) {
        same = same && j->devs[i].device->state == j->devs[0].device->state;
    }
    if (same) {
        (void) snprintf(j->error + used, sizeof(j->error) - used, "; device%s %s %s",
                        j->n_devs > 1 ? "s" : "", how, fsm_state_name(j->devs[0].device->state));
    } else {
        (void) snprintf(j->error + used, sizeof(j->error) - used, "; devices %s:", how);
        for (size_t i = 0; i < j->n_devs; i++) {
            used = strlen(j->error);
            (void) snprintf(j->error + used, sizeof(j->error) - used, "%s '%s' %s", i ? "," : "",
                            j->devs[i].id, fsm_state_name(j->devs[i].device->state));
        }
    }
    mig_note_way_out(j);
}

static void
mig_finish_failure(MigrationJob *j)
{
    mig_note_where(j);
    (void) mig_set_phase(j, j->cancel_requested ? PHASE_CANCELLED : PHASE_FAILED);
    mig_release(j);
}

/* ---- rollback ---- */

/* Where a device that started in a state goes back to from STOP_COPY (or RESUMING): the
 * state itself, except that a device cannot be asked back into pre-copy from STOP_COPY (its
 * P2P-quiescent or running twin instead) and the data states are left for STOP. */
static const DeviceState rollback_table[] = {
    [DEVICE_STATE_ERROR] = DEVICE_STATE_RUNNING, /* a reset takes it there anyway */
    [DEVICE_STATE_STOP] = DEVICE_STATE_STOP,
    [DEVICE_STATE_RUNNING] = DEVICE_STATE_RUNNING,
    [DEVICE_STATE_STOP_COPY] = DEVICE_STATE_STOP,
    [DEVICE_STATE_RESUMING] = DEVICE_STATE_STOP,
    [DEVICE_STATE_RUNNING_P2P] = DEVICE_STATE_RUNNING_P2P,
    [DEVICE_STATE_PRE_COPY] = DEVICE_STATE_RUNNING,
    [DEVICE_STATE_PRE_COPY_P2P] = DEVICE_STATE_RUNNING_P2P,
};
static_assert(ELEMENTSOF(rollback_table) == _DEVICE_STATE_MAX, "rollback_table out of sync");

/* Where a group goes back to after a failed or cancelled save or restore: where its devices
 * were, when they were all in one state (rollback_table), else RUNNING (a migration starts
 * there; a group transition takes every device to one state). */
static DeviceState
mig_rollback_target(const MigrationJob *j)
{
    DeviceState s = j->n_devs ? j->devs[0].start_state : DEVICE_STATE_RUNNING;

    for (size_t i = 1; i < j->n_devs; i++) {
        if (j->devs[i].start_state != s) {
            return DEVICE_STATE_RUNNING;
        }
    }
    return s >= 0 && (size_t) s < ELEMENTSOF(rollback_table) ? rollback_table[s]
                                                              : DEVICE_STATE_RUNNING;
}


static void
on_returned(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        size_t used = strlen(j->error);
        (void) snprintf(j->error + used, sizeof(j->error) - used,
                        "; taking the devices back to %s failed: %s", fsm_state_name(run->target),
                        run->error);
    }
    mig_finish_failure(j);
}

/* A restore's devices, once reset: back where they were when that was not RUNNING (STOP,
 * say, for a VM that was not running yet). What they hold is the reset state either way:
 * the file's never arrived whole. */
static void
mig_after_reset(MigrationJob *j)
{
    DeviceState target = mig_rollback_target(j);
    char err[512] = "";

    if (j->role != MIGRATION_RESTORE || target == DEVICE_STATE_RUNNING ||
        mig_group_start(j, target, &ROLLBACK_WAIT(j, on_returned), err, sizeof(err)) < 0) {
        mig_finish_failure(j);
    }
}

static void
on_rollback_reset(Device *d, const OpResult *res, void *userdata)
{
    MigrationJob *j = userdata;

    mig_note_arcs(j, d, res->arcs, res->n_arcs);
    if (res->r < 0) {
        size_t used = strlen(j->error);
        (void) snprintf(j->error + used, sizeof(j->error) - used,
                        "; resetting device '%s' failed: %s", d->id, res->message);
    }
    if (--j->resets_pending == 0) {
        mig_after_reset(j);
    }
}

/* A device the job's last group transition already reset back to RUNNING (it was in ERROR)
 * needs no second reset. */
static bool
mig_just_reset(const MigDevice *md)
{
    return md->n_arcs > 0 && md->arcs[md->n_arcs - 1].reset &&
           md->device->state == DEVICE_STATE_RUNNING;
}

/* Resets every device of the job (destination, failed restore, or a source whose group
 * transition back cannot even start), in parallel. */
static void
mig_reset_devices(MigrationJob *j)
{
    DeviceOpOptions opts = {.lock_key = j};
    char err[256];

    for (size_t i = 0; i < j->n_devs; i++) {
        j->reset_devices = j->reset_devices || mig_just_reset(&j->devs[i]);
        if (!mig_just_reset(&j->devs[i]) &&
            device_reset_start_ex(j->devs[i].device, &opts, on_rollback_reset, j, err,
                                  sizeof(err)) >= 0) {
            j->resets_pending++;
        }
    }
    j->reset_devices = j->reset_devices || j->resets_pending > 0;
    if (j->resets_pending == 0) {
        mig_after_reset(j);
    }
}

static void
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
                        "; taking the devices back failed: %s", run->error);
        mig_reset_devices(j);
        return;
    }
    mig_finish_failure(j);
}

static void
mig_source_rollback(MigrationJob *j)
{
    DeviceState target = mig_rollback_target(j);
    bool all_there = true;
    char err[512] = "";

    for (size_t i = 0; i < j->n_devs; i++) {
        all_there = all_there && j->devs[i].device->state == target;
    }
    if (all_there) {
        mig_finish_failure(j);
        return;
    }
    if (mig_group_start(j, target, &ROLLBACK_WAIT(j, on_source_rollback_done), err,
                        sizeof(err)) < 0) {
        mig_reset_devices(j); /* e.g. a device in ERROR: a reset is the only way back */
    }
}

void
mig_maybe_finish_failure(MigrationJob *j)
{
    if (j->phase != PHASE_ROLLING_BACK || j->rollback_started || j->workers > 0 ||
        j->group_busy) {
        return;
    }
    j->rollback_started = true;
    mig_close_sockets(j); /* a save's partial file goes with it */
    if (j->role == MIGRATION_SOURCE || j->role == MIGRATION_SAVE) {
        mig_source_rollback(j);
    } else {
        mig_dest_rollback(j);
    }
}

/* ---- the registry ---- */

static MigrationJob *
mig_job_free(MigrationJob *j)
{
    if (!j) {
        return NULL;
    }
    mig_close_sockets(j);
    for (size_t i = 0; i < j->n_devs; i++) {
        if (j->devs[i].device && j->devs[i].device->lock == j) {
            device_unlock(j->devs[i].device);
        }
    }
    if (j->owns_group) {
        group_free(j->group);
    }
    pthread_mutex_destroy(&j->ctl_lock);
    for (size_t i = 0; j->devs && i < j->n_devs; i++) {
        mig_device_buffer_free(&j->devs[i]);
        mig_spread_free(j->devs[i].spread);
    }
    free(j->devs);
    free(j->manifest.devices);
    free(j->end_totals);
    free(j->checked_manifest);
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
            ARRAY_REMOVE_AT(m->jobs, m->n_jobs, i);
            finished--;
        } else {
            i++;
        }
    }
    if (ARRAY_RESERVE_ONE(m->jobs, m->n_jobs, m->allocated_jobs, 16) < 0) {
        return -ENOMEM;
    }
    m->jobs[m->n_jobs++] = j;
    return 0;
}

/* Whether @id may name a job the previous daemon gave out: well formed and not taken. */
static bool
mig_old_id_is_free(Manager *m, const char *id)
{
    return id && *id && strlen(id) < MIGRATION_ID_MAX && !migration_find(m, id);
}

/* New jobs must not take the id of one the previous daemon gave out. */
static void
mig_keep_id(Manager *m, const char *id)
{
    unsigned n;

    if (sscanf(id, "m%u", &n) == 1 && n > m->next_job) {
        m->next_job = n;
    }
}

int
migration_record_failed(Manager *m, const char *id, MigrationRole role,
                        MigrationSubject subject, const char *name, const char *error)
{
    MigrationJob *j;
    int r;

    if (!mig_old_id_is_free(m, id) || role < 0 || role >= _MIGRATION_ROLE_MAX) {
        return -EINVAL;
    }
    j = calloc(1, sizeof(*j));
    if (!j) {
        return -ENOMEM;
    }
    j->manager = m;
    (void) snprintf(j->id, sizeof(j->id), "%s", id);
    j->role = role;
    j->subject = subject;
    (void) snprintf(j->group_name, sizeof(j->group_name), "%s", name ? name : "");
    j->ctl_fd = j->listen_fd = j->file_fd = -EBADF;
    j->save_file = (FileNew) FILE_NEW_INIT;
    j->listen_socket = (FileSocket) FILE_SOCKET_INIT;
    (void) pthread_mutex_init(&j->ctl_lock, NULL);
    j->opts = m->migration_defaults;
    j->start_ns = j->end_ns = clock_now_ns();
    j->phase = PHASE_FAILED;
    j->r = -ECONNABORTED;
    j->touched = true; /* its devices may have moved before the daemon ended */
    (void) snprintf(j->error, sizeof(j->error), "%s", error ? error : "");
    r = registry_add(m, j);
    if (r < 0) {
        mig_job_free(j);
        return r;
    }
    mig_keep_id(m, id);
    return 0;
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

const char *
migration_id(const MigrationJob *j)
{
    return j->id;
}

void
migration_abort_all(Manager *m)
{
    for (size_t i = 0; i < m->n_jobs; i++) {
        MigrationJob *j = m->jobs[i];
        if (!mig_is_failing(j)) {
            j->cancel_requested = true;
            mig_fail(j, -ESHUTDOWN, "the daemon is shutting down");
            mig_maybe_finish_failure(j);
        }
    }
}

int
migration_release_device(Manager *m, const Device *d, const char *why)
{
    for (size_t i = 0; i < m->n_jobs; i++) {
        MigrationJob *j = m->jobs[i];

        for (size_t k = 0; k < j->n_devs && !mig_is_over(j); k++) {
            if (j->devs[k].device != d) {
                continue;
            }
            if (mig_is_failing(j)) {
                return 0; /* its rollback runs: the device comes free when it ends */
            }
            if (j->phase == PHASE_IN_DOUBT || j->confirmed) {
                return -EBUSY; /* held by the hand-over's rule, or completing */
            }
            mig_fail(j, -ENODEV, "%s", why);
            mig_maybe_finish_failure(j);
            return 0;
        }
    }
    return -ENOENT;
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

/* Why a live migration past its commit point cannot be @what (cancelled, resolved). */
static void
mig_refuse_handover(const MigrationJob *j, const char *what, char *err, size_t err_size)
{
    if (j->phase == PHASE_IN_DOUBT) {
        (void) snprintf(err, err_size, "migration %s is in doubt, it cannot be %s: ask the other "
                        "side's daemon what became of its job, then 'vfio-migctl resolve %s "
                        "--resume' or '--abort' (see 'vfio-migctl job %s')", j->id, what, j->id,
                        j->id);
    } else if (j->handover == HANDOVER_COMMITTED) {
        (void) snprintf(err, err_size, "migration %s has committed: the destination takes the "
                        "VM, so this source cannot be %s; it completes when the destination "
                        "answers, or goes in doubt", j->id, what);
    } else if (j->handover == HANDOVER_PREPARED) {
        (void) snprintf(err, err_size, "migration %s told its source it is prepared: only the "
                        "source may still abort it (cancel the job on the source's daemon), so "
                        "it cannot be %s here", j->id, what);
    } else {
        (void) snprintf(err, err_size, "migration %s is %s, not in doubt: only a migration in "
                        "doubt can be %s", j->id, mig_phase_name(j->phase), what);
    }
}

int
migration_resolve(MigrationJob *j, bool resume, char *err, size_t err_size)
{
    HandoverEvent ev = resume ? HANDOVER_EV_RESOLVE_RESUME : HANDOVER_EV_RESOLVE_ABORT;
    HandoverAction a;

    if (!mig_is_live(j) || mig_is_over(j) || j->phase != PHASE_IN_DOUBT) {
        if (!mig_is_live(j) || mig_is_failing(j)) {
            (void) snprintf(err, err_size, "migration %s is %s, not in doubt: only a live "
                            "migration in doubt can be resolved", j->id, mig_phase_name(j->phase));
        } else {
            mig_refuse_handover(j, "resolved", err, err_size);
        }
        return -ESTALE;
    }
    if (j->workers > 0 || j->group_busy) {
        (void) snprintf(err, err_size, "migration %s is still stopping its workers; try again in "
                        "a moment", j->id);
        return -EBUSY;
    }
    a = handover_action(mig_side(j), j->handover, ev);
    j->handover = handover_next(j->handover, a);
    mig_say_busy(j, role_table[j->role].hold); /* decided: no longer in doubt */
    log_job_notice(j, "Migration %s: resolved by request: this %s %s the VM.", j->id,
                   role_table[j->role].name, a == HANDOVER_DO_RUN ? "runs" : "gives up");
    if ((a == HANDOVER_DO_RUN) == (j->role == MIGRATION_SOURCE)) {
        /* A source that resumes, a destination that resets: a failure's rollback. */
        (void) snprintf(j->error, sizeof(j->error), "resolved by request after the hand-over "
                        "was in doubt: the %s %s", role_table[j->role].name,
                        resume ? "runs the VM" : "gave the VM up");
        (void) mig_set_phase(j, PHASE_ROLLING_BACK);
        mig_maybe_finish_failure(j);
        return 0;
    }
    j->r = 0;
    j->error[0] = '\0';
    if (j->role == MIGRATION_DESTINATION) {
        mig_dest_take_over(j);
    } else {
        mig_source_hand_over(j);
    }
    return 0;
}

int
migration_cancel(MigrationJob *j, char *err, size_t err_size)
{
    if (mig_is_failing(j)) {
        (void) snprintf(err, err_size, "migration %s has already %s", j->id,
                        j->phase == PHASE_ROLLING_BACK ? "failed and is rolling back"
                                                       : "ended");
        return -ESTALE;
    }
    if (mig_is_live(j) &&
        handover_action(mig_side(j), j->handover, HANDOVER_EV_CANCEL) == HANDOVER_DO_REFUSE) {
        mig_refuse_handover(j, "cancelled", err, err_size);
        return -ESTALE;
    }
    if (j->confirmed) {
        (void) snprintf(err, err_size, "%s %s is completing: its file is complete and being "
                        "named", role_table[j->role].name, j->id);
        return -ESTALE;
    }
    j->cancel_requested = true;
    mig_fail(j, -ECANCELED, "cancelled by request");
    mig_maybe_finish_failure(j);
    return 0;
}

/* ---- the one constructor ---- */

/* The group a job acts on: a group by name, or a device in a transient group of its own. */
static int
mig_resolve(Manager *m, const MigJobSetup *s, Group **ret, bool *ret_transient, char *err,
            size_t err_size)
{
    Group *g = s->subject != MIGRATION_SUBJECT_DEVICE ? group_find(m, s->name) : NULL;
    Device *d = s->subject != MIGRATION_SUBJECT_GROUP && strutil_id_is_valid(s->name)
                    ? manager_find(m, s->name)
                    : NULL;

    if (g && d) {
        (void) snprintf(err, err_size, "'%s' is both a group and a device: say which one to %s "
                        "(vfio-migctl %s --group or --device; the request's subject)", s->name,
                        role_table[s->role].name, role_table[s->role].name);
        return -EINVAL;
    }
    *ret_transient = d != NULL;
    if (d && !s->force_grouped) {
        int r = device_check_alone(d, s->role == MIGRATION_SAVE ? DEVICE_ALONE_SAVE
                                                                : DEVICE_ALONE_RESTORE,
                                   err, err_size);
        if (r < 0) {
            return r;
        }
    }
    if (d) {
        return group_new_transient(m, d, ret);
    }
    if (g) {
        *ret = g;
        return 0;
    }
    (void) snprintf(err, err_size, "no %s named '%.64s'",
                    s->subject == MIGRATION_SUBJECT_GROUP    ? "group"
                    : s->subject == MIGRATION_SUBJECT_DEVICE ? "device"
                                                             : "group or device",
                    s->name);
    return -ENOENT;
}

/* A group may start a job: idle, not in a migration, devices migratable (and running when
 * @must_run: a source's). */
static int
mig_check_group(const Group *g, bool must_run, char *err, size_t err_size)
{
    if (g->active || g->migration) {
        (void) snprintf(err, err_size, "group '%s' is %s", g->name,
                        g->active ? "in a transition" : "already in a migration");
        return -EBUSY;
    }
    for (size_t i = 0; i < g->n_devices; i++) {
        const Device *d = g->devices[i];
        if (device_is_busy(d) || d->lock) {
            (void) snprintf(err, err_size, "device '%s' is busy (%s)", d->id,
                            device_busy_operation(d) ?: "a group transition");
            return -EBUSY;
        }
        if (!d->info.migratable) {
            (void) snprintf(err, err_size, "device '%s' does not support VFIO migration", d->id);
            return -EOPNOTSUPP;
        }
        if (must_run && d->state != DEVICE_STATE_RUNNING) {
            (void) snprintf(err, err_size, "device '%s' is in %s; a migration starts from a "
                            "running group", d->id, fsm_state_name(d->state));
            return -ESTALE;
        }
    }
    return 0;
}

int
mig_manifest_of_group(const Group *g, StreamManifest *mf, char *err, size_t err_size)
{
    _cleanup_free_ CompatDescriptor *desc = malloc(sizeof(*desc));

    if (!desc) {
        return -ENOMEM;
    }
    (void) snprintf(mf->group, sizeof(mf->group), "%s", g->name);
    mf->n_devices = (uint32_t) g->n_devices;
    for (size_t i = 0; i < g->n_devices; i++) {
        Device *d = g->devices[i];
        StreamManifestDevice *md = &mf->devices[i];
        int r = device_compat_descriptor(d, desc, err, err_size);

        if (r < 0) {
            return r;
        }
        /* the vectors it uses: a destination with fewer is refused before this side stops */
        r = irq_compat_describe(irq_model(d->irq), desc);
        if (r >= 0) {
            r = compat_descriptor_encode(desc, md->compat, sizeof(md->compat));
        }
        if (r < 0) {
            (void) snprintf(err, err_size, "device '%s' cannot describe itself for a "
                            "compatibility check: %s", d->id, strerror(-r));
            return r;
        }
        md->compat_size = (uint16_t) r;
        (void) snprintf(md->name, sizeof(md->name), "%s", d->id);
        md->mig_flags = d->info.mig_flags;
        md->data_size = d->data_size;
        (void) snprintf(md->backend, sizeof(md->backend), "%s", device_backend_name(d));
    }
    return 0;
}

void
mig_take_irqs(MigrationJob *j)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        MigDevice *md = &j->devs[i];

        irq_export(md->device->irq, &md->irqs);
        md->irqs_present = md->irqs.type != IRQ_TYPE_NONE;
    }
}

int
mig_restore_irqs(MigrationJob *j, char *why, size_t why_size)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        MigDevice *md = &j->devs[i];
        const IrqModel *m;
        int r;

        if (!md->irqs_present) {
            continue;
        }
        r = irq_import(md->device->irq, &md->irqs);
        if (r < 0) {
            m = irq_model(md->device->irq);
            (void) snprintf(why, why_size, "device '%s' cannot take the source's interrupts "
                            "(%s with %" PRIu32 " vectors; it has %" PRIu32 ", and %s enabled "
                            "with %" PRIu32 "): %s", md->id, irq_type_name(md->irqs.type),
                            md->irqs.count, m->info[md->irqs.type].count,
                            irq_type_name(m->type), m->count, strerror(-r));
            return r;
        }
    }
    return 0;
}

/* The manifest a source or a save sends: names, flags, sizes and compatibility descriptors. */
static int
mig_build_manifest(MigrationJob *j, char *err, size_t err_size)
{
    return mig_manifest_of_group(j->group, &j->manifest, err, err_size);
}

static MigrationJob *
mig_job_alloc(Manager *m, const MigJobSetup *s, Group *g, MigrationSubject subject)
{
    _cleanup_free_ MigrationJob *j = calloc(1, sizeof(*j));
    struct timeval tv;

    if (!j || !(j->devs = calloc(g->n_devices, sizeof(*j->devs))) ||
        !(j->manifest.devices = calloc(STREAM_MAX_DEVICES, sizeof(*j->manifest.devices)))) {
        if (j) {
            free(j->devs);
        }
        return NULL;
    }
    (void) gettimeofday(&tv, NULL);
    j->manager = m;
    j->role = s->role;
    j->subject = subject;
    j->group = g;
    (void) snprintf(j->group_name, sizeof(j->group_name), "%s", g->name);
    (void) snprintf(j->id, sizeof(j->id), "m%u", ++m->next_job);
    (void) snprintf(j->peer, sizeof(j->peer), "%s", s->peer ? s->peer : "");
    j->ctl_fd = j->listen_fd = j->file_fd = -EBADF;
    j->save_file = (FileNew) FILE_NEW_INIT;
    j->listen_socket = (FileSocket) FILE_SOCKET_INIT;
    (void) pthread_mutex_init(&j->ctl_lock, NULL);
    j->start_ns = clock_now_ns();
    j->started_unix_ms = (uint64_t) tv.tv_sec * 1000 + (uint64_t) tv.tv_usec / 1000;
    if (s->opts) {
        j->opts = *s->opts;
    } else {
        j->opts = m->migration_defaults;
    }
    /* The caps are a link's: only a live migration's source sends over one. A save writes
     * to a local file and must not be slowed by [migration] bandwidth keys. */
    if (s->role == MIGRATION_SOURCE) {
        atomic_store(&j->precopy_cap, j->opts.bandwidth_limit);
        atomic_store(&j->stopcopy_cap, j->opts.stopcopy_bandwidth_limit);
    }
    j->n_devs = g->n_devices;
    for (size_t i = 0; i < g->n_devices; i++) {
        Device *d = g->devices[i];
        j->devs[i] = (MigDevice){.job = j, .device = d, .index = (uint32_t) i, .fd = -EBADF,
                                 .n_channels = 1,
                                 .data_size = d->data_size, .start_state = d->state};
        (void) snprintf(j->devs[i].id, sizeof(j->devs[i].id), "%s", d->id);
    }
    return TAKE_PTR(j);
}

int
mig_job_new(Manager *m, const MigJobSetup *s, MigrationJob **ret, char *err, size_t err_size)
{
    _cleanup_(group_freep) Group *transient = NULL;
    MigrationJob *j;
    bool is_transient;
    Group *g;
    int r;

    r = mig_resolve(m, s, &g, &is_transient, err, err_size);
    if (r < 0) {
        return r;
    }
    transient = is_transient ? g : NULL;
    r = mig_check_group(g, /* must_run= */ s->role == MIGRATION_SOURCE, err, err_size);
    if (r < 0) {
        return r;
    }
    j = mig_job_alloc(m, s, g, is_transient ? MIGRATION_SUBJECT_DEVICE : MIGRATION_SUBJECT_GROUP);
    if (!j) {
        return -ENOMEM;
    }
    if (s->role == MIGRATION_SOURCE || s->role == MIGRATION_SAVE) {
        /* 8 bytes of getrandom() cannot fail once the pool is ready; should it, the clock still
         * tells streams apart (an id, not a secret; _FORTIFY_SOURCE wants the result looked at). */
        if (getrandom(&j->stream_id, sizeof(j->stream_id), 0) != (ssize_t) sizeof(j->stream_id)) {
            j->stream_id = clock_now_ns();
        }
        r = mig_build_manifest(j, err, err_size);
    }
    r = r < 0 ? r : registry_add(m, j);
    if (r < 0) {
        mig_job_free(j);
        return r;
    }
    j->owns_group = TAKE_PTR(transient) != NULL;
    for (size_t i = 0; i < g->n_devices; i++) {
        device_lock(g->devices[i], j, role_table[s->role].hold);
    }
    g->migration = j;
    *ret = j;
    return 0;
}

void
mig_job_discard(MigrationJob *j)
{
    Manager *m = j->manager;

    assert(j->phase == PHASE_NEW && m->n_jobs > 0 && m->jobs[m->n_jobs - 1] == j);
    m->n_jobs--;
    m->next_job--; /* the id was never shown */
    if (j->group->migration == j) {
        j->group->migration = NULL;
    }
    mig_job_free(j);
}

int
migration_readopt_in_doubt(Manager *m, const MigrationInDoubt *w, char *err, size_t err_size)
{
    MigJobSetup s = {.role = w->role, .subject = MIGRATION_SUBJECT_GROUP, .name = w->group,
                     .peer = w->peer};
    Group *g = w->group ? group_find(m, w->group) : NULL;
    MigrationJob *j;
    int r;

    if ((w->role != MIGRATION_SOURCE && w->role != MIGRATION_DESTINATION) ||
        !mig_old_id_is_free(m, w->id)) {
        (void) snprintf(err, err_size, "it is no live migration (role %d) or its id is taken",
                        (int) w->role);
        return -EINVAL;
    }
    if (!g) {
        (void) snprintf(err, err_size, "its group '%s' did not come back", w->group);
        return -ENOENT;
    }
    /* Not must_run: a source in doubt holds its devices stopped, in STOP_COPY. */
    r = mig_check_group(g, /* must_run= */ false, err, err_size);
    j = r < 0 ? NULL : mig_job_alloc(m, &s, g, MIGRATION_SUBJECT_GROUP);
    if (!j) {
        return r < 0 ? r : -ENOMEM;
    }
    m->next_job--; /* the new id mig_job_alloc gave is not used: the job keeps its old one */
    (void) snprintf(j->id, sizeof(j->id), "%s", w->id);
    r = registry_add(m, j);
    if (r < 0) {
        mig_job_free(j);
        return r;
    }
    mig_keep_id(m, w->id);
    j->auto_resume = w->auto_resume;
    j->started_unix_ms = w->started_unix_ms ? w->started_unix_ms : j->started_unix_ms;
    j->touched = true;
    j->handover = HANDOVER_IN_DOUBT;
    j->r = -ECONNABORTED;
    for (size_t i = 0; i < j->n_devs && w->role == MIGRATION_SOURCE; i++) {
        /* Where every source started (mig_check_group): a --resume takes it back there. */
        j->devs[i].start_state = DEVICE_STATE_RUNNING;
    }
    mig_note_doubt(j, "the daemon restarted while the migration was in doubt");
    for (size_t i = 0; i < g->n_devices; i++) {
        device_lock(g->devices[i], j, "in_doubt");
    }
    g->migration = j;
    return mig_set_phase(j, PHASE_IN_DOUBT);
}

/* ---- manifests ---- */

/* The devices of @mf (with their descriptors decoded into @descs), as compat sees them. */
static int
mig_compat_source(const StreamManifest *mf, CompatDevice *devs, CompatDescriptor *descs,
                  char *why, size_t why_size)
{
    for (uint32_t i = 0; i < mf->n_devices; i++) {
        const StreamManifestDevice *sd = &mf->devices[i];
        char what[256] = "";
        int r;

        r = compat_descriptor_decode(sd->compat, sd->compat_size, &descs[i], what, sizeof(what));
        if (r < 0) {
            (void) snprintf(why, why_size, "the source's device '%s' has a malformed "
                            "compatibility descriptor: %s", sd->name, what);
            return -EBADMSG;
        }
        devs[i] = (CompatDevice){sd->name, sd->mig_flags, sd->backend, &descs[i]};
    }
    return 0;
}

static int
mig_compat_local(MigrationJob *j, CompatDevice *devs, CompatDescriptor *descs, char *why,
                 size_t why_size)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        Device *d = j->devs[i].device;
        int r = device_compat_descriptor(d, &descs[i], why, why_size);

        if (r < 0) {
            return r;
        }
        devs[i] = (CompatDevice){d->id, d->info.mig_flags, device_backend_name(d), &descs[i]};
    }
    return 0;
}

/* Each local device's interrupt capacity for what its partner (by name, or the single one of
 * a DEVICE job) says it uses (core/irq.h: irq_compat_capacity). A device without a partner
 * gets nothing: compat reports it missing anyway. */
static int
mig_compat_irqs(MigrationJob *j, const StreamManifest *src, const CompatDescriptor *src_descs,
                CompatDescriptor *local, char *why, size_t why_size)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        Device *d = j->devs[i].device;
        int r;

        for (uint32_t k = 0; k < src->n_devices; k++) {
            bool single = j->subject == MIGRATION_SUBJECT_DEVICE && src->n_devices == 1;

            if (!single && strcmp(src->devices[k].name, d->id) != 0) {
                continue;
            }
            r = irq_compat_capacity(irq_model(d->irq), &src_descs[k], &local[i]);
            if (r < 0) {
                (void) snprintf(why, why_size, "device '%s' cannot describe its interrupts for "
                                "a compatibility check: %s", d->id, strerror(-r));
                return r;
            }
            break;
        }
    }
    return 0;
}

/* Puts the job's devices in the source's order: j->devs[i] becomes the partner of the
 * source's device i. */
static int
mig_reorder_devices(MigrationJob *j, const size_t *pairs)
{
    MigDevice *ordered = calloc(j->n_devs, sizeof(*ordered));

    if (!ordered) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        ordered[i] = j->devs[pairs[i]];
        ordered[i].index = (uint32_t) i;
    }
    memcpy(j->devs, ordered, j->n_devs * sizeof(*ordered));
    free(ordered);
    return 0;
}

/* compat_compare() of the source's manifest with the job's devices: 0 with @pairs, or
 * -EMEDIUMTYPE with @report, or another errno with @why. */
static int
mig_compare_manifest(MigrationJob *j, const StreamManifest *src, size_t *pairs,
                     CompatReport *report, char *why, size_t why_size)
{
    size_t n = MAX((size_t) src->n_devices, j->n_devs);
    _cleanup_free_ CompatDescriptor *descs = calloc(2 * n, sizeof(*descs));
    _cleanup_free_ CompatDevice *devs = calloc(2 * n, sizeof(*devs));
    int r;

    if (!descs || !devs) {
        return -ENOMEM;
    }
    r = mig_compat_source(src, devs, descs, why, why_size);
    if (r >= 0) {
        r = mig_compat_local(j, devs + n, descs + n, why, why_size);
    }
    if (r >= 0) {
        r = mig_compat_irqs(j, src, descs, descs + n, why, why_size);
    }
    if (r < 0) {
        return r;
    }
    return compat_compare(devs, src->n_devices, devs + n, j->n_devs,
                          j->subject == MIGRATION_SUBJECT_DEVICE ? COMPAT_PAIR_SINGLE
                                                                 : COMPAT_PAIR_BY_NAME,
                          pairs, report);
}

int
mig_check_manifest(MigrationJob *j, const StreamManifest *src, CompatReport *report,
                   char *why, size_t why_size)
{
    size_t pairs[STREAM_MAX_DEVICES];
    int r = mig_compare_manifest(j, src, pairs, report, why, why_size);

    return r == -EMEDIUMTYPE ? 0 : r;
}

int
mig_match_manifest(MigrationJob *j, const StreamManifest *src, char *why, size_t why_size)
{
    size_t pairs[STREAM_MAX_DEVICES];
    _cleanup_free_ CompatReport *report = malloc(sizeof(*report));
    char where[STREAM_MAX_NAME + 16];
    int r;

    if (!report) {
        return -ENOMEM;
    }
    r = mig_compare_manifest(j, src, pairs, report, why, why_size);
    if (r == -EMEDIUMTYPE) {
        (void) snprintf(where, sizeof(where), "%s '%s'",
                        j->subject == MIGRATION_SUBJECT_DEVICE ? "device" : "group",
                        j->group_name);
        compat_report_format(report, where, why, why_size);
    }
    return r < 0 ? r : mig_reorder_devices(j, pairs);
}

/* ---- progress ---- */

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

/* ---- snapshots ---- */

static void
mig_snapshot_device(const MigDevice *md, MigrationDeviceSnapshot *s)
{
    uint64_t pre = atomic_load(&md->precopy_bytes), stop = atomic_load(&md->stopcopy_bytes);

    *s = (MigrationDeviceSnapshot){
        .id = md->id,
        .state = md->device ? md->device->state : md->end_state,
        .bytes = pre + stop,
        .precopy_bytes = pre,
        .stopcopy_bytes = stop,
        .initial_bytes = atomic_load(&md->initial_bytes),
        .dirty_bytes = atomic_load(&md->dirty_bytes),
        .rate = md->rate,
        .estimate_remaining = md->done || md->data_size < pre + stop ? 0
                                                                     : md->data_size - pre - stop,
        .done = md->done,
        .error = md->message,
        .arcs = md->arcs,
        .n_arcs = md->n_arcs,
    };
}

int
migration_snapshot(const MigrationJob *j, MigrationSnapshot *ret)
{
    uint64_t end = j->end_ns ? j->end_ns : clock_now_ns();
    MigrationSnapshot s = {
        .id = j->id, .role = j->role, .subject = j->subject, .name = j->group_name,
        .phase = j->phase, .phase_name = mig_phase_name(j->phase),
        .state = phase_table[j->phase].state, .over = mig_is_over(j),
        .peer = j->role == MIGRATION_SAVE || j->role == MIGRATION_RESTORE ? j->path : j->peer,
        .options = j->opts, .auto_resume = j->auto_resume,
        .elapsed_us = (end - j->start_ns) / 1000, .started_unix_ms = j->started_unix_ms,
        .r = j->r, .error = j->error, .touched = j->touched, .n_devices = j->n_devs,
        .switchover_reason = j->switchover_reason, .precopy_converged = j->precopy_converged,
        .held = mig_is_live(j) && !mig_is_over(j) &&
                (j->handover == HANDOVER_PREPARED || j->handover == HANDOVER_COMMITTED ||
                 j->phase == PHASE_IN_DOUBT),
    };

    s.devices = calloc(j->n_devs ? j->n_devs : 1, sizeof(*s.devices));
    if (!s.devices) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        mig_snapshot_device(&j->devs[i], &s.devices[i]);
        s.bytes += s.devices[i].bytes;
        s.estimate_remaining += s.devices[i].estimate_remaining;
        s.rate += s.devices[i].rate;
    }
    if (j->precopy_start_ns) {
        s.precopy_us = ((j->switchover_ns ? j->switchover_ns : end) - j->precopy_start_ns) / 1000;
    }
    if (j->switchover_ns) {
        s.downtime_us = (end - j->switchover_ns) / 1000;
    }
    *ret = s;
    return 0;
}

void
migration_snapshot_done(MigrationSnapshot *s)
{
    free(s->devices);
    s->devices = NULL;
}

int
migration_snapshot_all(Manager *m, MigrationSnapshot **ret, size_t *ret_n)
{
    MigrationSnapshot *all = calloc(m->n_jobs ? m->n_jobs : 1, sizeof(*all));

    if (!all) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->n_jobs; i++) {
        if (migration_snapshot(m->jobs[m->n_jobs - 1 - i], &all[i]) < 0) { /* newest first */
            migration_snapshots_free(all, i);
            return -ENOMEM;
        }
    }
    *ret = all;
    *ret_n = m->n_jobs;
    return 0;
}

void
migration_snapshots_free(MigrationSnapshot *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        migration_snapshot_done(&s[i]);
    }
    free(s);
}
