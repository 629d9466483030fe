/* SPDX-License-Identifier: MIT */
/*
 * group — see group.h.
 *
 * The plan is data: step_move() says, for one device and one step, whether it moves and
 * where; run_next_step() starts every move of a step, on_device_done() collects them and
 * run_advance() decides what comes next (the next step, a rollback, or the end). The same
 * steps serve the forward transition and the rollback; only the goals differ.
 */
#include "group.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log_object.h"
#include "manager.h"
#include "util/array.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

typedef enum GroupStep {
    STEP_RESET, /* rollback: ERROR and abandoned RESUMING devices -> reset (quiescent RUNNING) */
    STEP_QUIESCE,
    STEP_WAKE,
    STEP_STOP,
    STEP_FINAL,
    _STEP_MAX,
} GroupStep;

static const char *const step_names[_STEP_MAX] = {
    [STEP_RESET] = "reset", [STEP_QUIESCE] = "quiesce", [STEP_WAKE] = "wake",
    [STEP_STOP] = "stop",   [STEP_FINAL] = "final",
};

static bool
has_p2p(const Device *d)
{
    return d->info.mig_flags & MIG_FLAG_P2P;
}

/* Whether the group moves in the P2P-safe order without force: one device, or all with P2P. */
static bool
group_p2p_safe(const Group *g)
{
    for (size_t i = 0; i < g->n_devices && g->n_devices > 1; i++) {
        if (!has_p2p(g->devices[i])) {
            return false;
        }
    }
    return true;
}

static DeviceState
p2p_of(DeviceState s)
{
    return s == DEVICE_STATE_PRE_COPY ? DEVICE_STATE_PRE_COPY_P2P : DEVICE_STATE_RUNNING_P2P;
}

/* ---- the plan ---- */

static bool
run_any(const GroupRun *run, bool (*pred)(DeviceState s), bool use_goal)
{
    for (size_t i = 0; i < run->n_devices; i++) {
        if (pred(use_goal ? run->devices[i].goal : run->devices[i].state)) {
            return true;
        }
    }
    return false;
}

/* A device that can only be moved on by a reset: ERROR, or (rolling back) a RESUMING that
 * must be abandoned — the kernel defines no other way out of an unfinished RESUMING. */
static bool
needs_reset(const GroupRun *run, const GroupDeviceRun *dr)
{
    return dr->state == DEVICE_STATE_ERROR ||
           (run->rolling_back && dr->state == DEVICE_STATE_RESUMING &&
            dr->goal != DEVICE_STATE_RESUMING);
}


/* Whether device @dr moves in @step, and to where. */
static bool
step_move(const GroupRun *run, const GroupDeviceRun *dr, GroupStep step, DeviceState *ret)
{
    DeviceState cur = dr->state, goal = dr->goal;
    bool p2p = has_p2p(dr->device);

    if (dr->failed_in_rollback || needs_reset(run, dr) || cur == goal) {
        return false; /* those move only by STEP_RESET (run_start_step) */
    }
    switch (step) {
    case STEP_QUIESCE:
        /* Only needed when a device is or will be stopped; RUNNING <-> PRE_COPY is direct. */
        *ret = p2p_of(cur);
        return p2p && fsm_state_is_running(cur) &&
               (run_any(run, fsm_state_is_stopped, false) ||
                run_any(run, fsm_state_is_stopped, true));
    case STEP_WAKE:
        *ret = goal == DEVICE_STATE_PRE_COPY_P2P ? goal : DEVICE_STATE_RUNNING_P2P;
        return p2p && fsm_state_is_stopped(cur) && !fsm_state_is_stopped(goal);
    case STEP_STOP:
        *ret = goal;
        return fsm_state_is_stopped(goal);
    case STEP_FINAL:
        *ret = goal;
        return true;
    default:
        return false;
    }
}

/* ---- results ---- */

static void
dr_merge_result(GroupRun *run, GroupDeviceRun *dr, const OpResult *res)
{
    for (unsigned i = 0; i < res->n_arcs && dr->n_arcs < GROUP_MAX_ARCS; i++) {
        ArcRecord a = res->arcs[i];
        a.start_us = (a.begin_ns - run->start_ns) / 1000;
        a.duration_us = (a.end_ns - a.begin_ns) / 1000;
        dr->arcs[dr->n_arcs++] = a;
        dr->end_us = (a.end_ns - run->start_ns) / 1000;
        if (a.error && !dr->failed_arc[0]) {
            (void) snprintf(dr->failed_arc, sizeof(dr->failed_arc), "%s->%s",
                            fsm_state_name(a.from), fsm_state_name(a.to));
        }
    }
    dr->state = res->final_state;
    if (res->r < 0 && !dr->error) {
        dr->error = res->r;
        (void) snprintf(dr->message, sizeof(dr->message), "%s", res->message);
    }
}

static void
run_note_error(GroupRun *run, int r, const char *fmt, ...) _printf_(3, 4);

static void
run_note_error(GroupRun *run, int r, const char *fmt, ...)
{
    va_list ap;

    if (run->r == 0) {
        run->r = r;
    }
    va_start(ap, fmt);
    strutil_vappend_failure(run->error, sizeof(run->error), fmt, ap);
    va_end(ap);
}

DeviceState
group_common_state(const GroupRun *run)
{
    for (size_t i = 1; i < run->n_devices; i++) {
        if (run->devices[i].state != run->devices[0].state) {
            return _DEVICE_STATE_INVALID;
        }
    }
    return run->n_devices > 0 ? run->devices[0].state : _DEVICE_STATE_INVALID;
}

const char *
group_way_out(const Group *g, char *buf, size_t size)
{
    bool stuck = false;

    for (size_t i = 0; i < g->n_devices; i++) {
        stuck = stuck || fsm_state_needs_reset(g->devices[i]->state) ||
                g->devices[i]->state != g->devices[0]->state;
    }
    buf[0] = '\0';
    if (stuck) {
        (void) snprintf(buf, size, "; to recover, 'vfio-migctl group reset %s' brings every "
                        "device back to running (their migration state is discarded)", g->name);
    }
    return buf;
}

/* ---- the runs' memory ---- */

static GroupRun *
run_free(GroupRun *run)
{
    if (run) {
        free(run->devices);
        free(run);
    }
    return NULL;
}

/* A zeroed run with room for @capacity devices, its pages touched now (calloc() may hand
 * out mapped zero pages that fault on first use). NULL without memory. */
static GroupRun *
run_alloc_touched(size_t capacity)
{
    GroupRun *run = calloc(1, sizeof(*run));
    long page = sysconf(_SC_PAGESIZE);

    if (!run || !(run->devices = calloc(capacity, sizeof(*run->devices)))) {
        return run_free(run);
    }
    run->capacity = capacity;
    for (size_t off = 0; off < capacity * sizeof(*run->devices); off += (size_t) page) {
        ((volatile uint8_t *) run->devices)[off] = 0;
    }
    return run;
}

/* Keeps @run's memory for a later run of @g, or frees it. NULL-safe. */
static void
run_keep_spare(Group *g, GroupRun *run)
{
    if (run && g->n_spares < GROUP_SPARE_RUNS) {
        g->spares[g->n_spares++] = run;
    } else {
        run_free(run);
    }
}

/* A zeroed run for @g's devices: a spare's memory when one has room, else new. */
static GroupRun *
run_alloc(Group *g)
{
    while (g->n_spares > 0) {
        GroupRun *run = g->spares[--g->n_spares];
        GroupDeviceRun *devices = run->devices;
        size_t capacity = run->capacity;

        if (capacity < g->n_devices) {
            run_free(run);
            continue;
        }
        memset(run, 0, sizeof(*run));
        memset(devices, 0, capacity * sizeof(*devices));
        run->devices = devices;
        run->capacity = capacity;
        return run;
    }
    return run_alloc_touched(g->n_devices);
}

/* Fills the spares of a new group of @n devices, so that its first transitions find their
 * memory ready. */
static int
group_warm_spares(Group *g, size_t n)
{
    while (g->n_spares < GROUP_SPARE_RUNS) {
        GroupRun *run = run_alloc_touched(n);
        if (!run) {
            return -ENOMEM;
        }
        g->spares[g->n_spares++] = run;
    }
    return 0;
}

/* ---- running the plan ---- */

static void run_advance(GroupRun *run);

static void
on_device_done(Device *d, const OpResult *res, void *userdata)
{
    GroupDeviceRun *dr = userdata;
    GroupRun *run = dr->run;

    assert(run == run->group->active && dr->device == d);
    dr_merge_result(run, dr, res);
    if (res->r < 0) {
        run->step_failed = true;
        if (run->rolling_back) {
            dr->failed_in_rollback = true;
        }
        run_note_error(run, res->r, "device '%s': %s", d->id, res->message);
    }
    assert(run->pending > 0);
    if (--run->pending == 0) {
        run_advance(run);
    }
}

static int
run_start_move(GroupRun *run, GroupDeviceRun *dr, GroupStep step, DeviceState to)
{
    DeviceOpOptions opts = {.lock_key = run->lock_key, .no_auto_reset = true,
                            .part_of_request = true};
    char err[DEVICE_MESSAGE_MAX] = "";
    int r;

    if (step == STEP_RESET) {
        r = device_reset_start_ex(dr->device, &opts, on_device_done, dr, err, sizeof(err));
    } else {
        r = device_set_state_start_ex(dr->device, to, &opts, on_device_done, dr, err, sizeof(err));
    }
    if (r < 0) {
        /* Cannot happen after group_transition_start's checks; treat it as this device's
         * failure rather than trusting the plan any further. */
        dr->error = dr->error ? dr->error : r;
        (void) snprintf(dr->message, sizeof(dr->message), "%s", err);
        dr->failed_in_rollback = run->rolling_back;
        run->step_failed = true;
        run_note_error(run, r, "%s", err);
    }
    return r;
}

/* Starts every move of run->step; returns how many started. */
static unsigned
run_start_step(GroupRun *run)
{
    unsigned started = 0;

    for (size_t i = 0; i < run->n_devices; i++) {
        GroupDeviceRun *dr = &run->devices[i];
        DeviceState to = dr->goal;
        bool moves;

        if (run->step == STEP_RESET) {
            moves = run->reset || (needs_reset(run, dr) && !dr->failed_in_rollback);
        } else {
            moves = step_move(run, dr, run->step, &to);
        }
        if (moves && run_start_move(run, dr, run->step, to) >= 0) {
            started++;
        }
    }
    return started;
}

static void
run_finish(GroupRun *run)
{
    Group *g = run->group;

    run->elapsed_us = (clock_now_ns() - run->start_ns) / 1000;
    for (size_t i = 0; run->owns_lock && i < run->n_devices; i++) {
        GroupDeviceRun *dr = &run->devices[i];

        device_unlock(dr->device);
        /* The transition was one request; a job that owns the lock counts its own. */
        if (device_arcs_moved(dr->arcs, dr->n_arcs)) {
            device_count_request(dr->device);
        }
    }
    g->active = NULL;
    run_keep_spare(g, g->last);
    g->last = run;
    if (run->reset) {
        log_group_info(g, "Group '%s': reset of %zu device(s) %s in %llu ms.", g->name,
                       run->n_devices, run->r < 0 ? "failed" : "done",
                       (unsigned long long) run->elapsed_us / 1000);
    } else {
        log_group_info(g, "Group '%s': %s -> %s %s in %llu ms.", g->name,
                       fsm_state_name(run->devices[0].start_state), fsm_state_name(run->target),
                       run->r < 0 ? (run->rollback_failed ? "failed, rollback failed"
                                                          : "failed and was rolled back")
                                  : "done",
                       (unsigned long long) run->elapsed_us / 1000);
    }
    run->done(g, run, run->userdata);
}

static void
run_begin_rollback(GroupRun *run)
{
    run->rolling_back = true;
    run->rolled_back = true;
    for (size_t i = 0; i < run->n_devices; i++) {
        run->devices[i].goal = run->devices[i].start_state;
    }
    run->step = STEP_RESET;
}

/* After a step's barrier: start the next step that moves something, roll back, or end. */
static void
run_advance(GroupRun *run)
{
    for (;;) {
        if (run->reset) {
            /* A reset is one step and the way out itself: nothing to roll back to. */
            run_finish(run);
            return;
        }
        if (run->step_failed) {
            run->step_failed = false;
            if (run->rolling_back) {
                run->rollback_failed = true;
                run_finish(run);
                return;
            }
            run_begin_rollback(run);
        } else if (run->step + 1 >= _STEP_MAX) {
            run_finish(run);
            return;
        } else {
            run->step++;
        }
        run->pending = run_start_step(run);
        TRACE_GROUP(run->group, run_advance, "%s step %s%s: %u device(s)", run->group->name,
                    step_names[run->step], run->rolling_back ? " (rollback)" : "",
                    run->pending);
        if (run->pending > 0) {
            if (!run->rolling_back) {
                run->phases++;
            }
            return;
        }
    }
}

/* ---- checks ---- */

/* Held by someone else: an operation, or a job on the device alone while it is in @g. */
static int
check_device_free(const Group *g, const Device *d, const void *lock_key, char *err,
                  size_t err_size)
{
    if (device_is_busy(d) || (d->lock && d->lock != lock_key)) {
        (void) snprintf(err, err_size, "device '%s' of group '%s' is busy (%s)", d->id, g->name,
                        device_busy_operation(d) ?: "held by another transition");
        return -EBUSY;
    }
    return 0;
}

static int
check_devices(Group *g, DeviceState target, bool force, const void *lock_key, char *err,
              size_t err_size)
{
    for (size_t i = 0; i < g->n_devices; i++) {
        Device *d = g->devices[i];
        FsmRefusal why;
        FsmPath path;

        if (check_device_free(g, d, lock_key, err, err_size) < 0) {
            return -EBUSY;
        }
        if (!d->info.migratable) {
            (void) snprintf(err, err_size, "device '%s' of group '%s' does not support VFIO "
                                           "migration", d->id, g->name);
            return -EOPNOTSUPP;
        }
        if (!has_p2p(d) && g->n_devices > 1 && !force) {
            char flags[64];

            /* the flags say why: hisi_acc (stop_copy+pre_copy) never has P2P states */
            (void) fsm_flags_to_string(d->info.mig_flags, flags, sizeof(flags));
            (void) snprintf(err, err_size,
                            "device '%s' lacks P2P (its migration flags are %s), so group '%s' "
                            "cannot be stopped P2P-safely; force it (`--force`) to move it "
                            "anyway, in a best-effort order", d->id, flags, g->name);
            return -EOPNOTSUPP;
        }
        if (fsm_compute_path(d->state, target, d->info.mig_flags, &path, &why) < 0) {
            char way_out[DEVICE_WAY_OUT_MAX];

            (void) snprintf(err, err_size, "device '%s' cannot go from %s to %s: %s (EINVAL)%s",
                            d->id, fsm_state_name(d->state) ?: "?", fsm_state_name(target) ?: "?",
                            fsm_refusal_to_string(why), group_way_out(g, way_out, sizeof(way_out)));
            return -EINVAL;
        }
    }
    return 0;
}

static GroupRun *
run_new(Group *g, DeviceState target, bool force)
{
    GroupRun *run = run_alloc(g);
    struct timeval tv;

    if (!run) {
        return NULL;
    }
    (void) gettimeofday(&tv, NULL);
    run->group = g;
    run->target = target;
    run->force = force && !group_p2p_safe(g);
    run->started_unix_ms = (uint64_t) tv.tv_sec * 1000 + (uint64_t) tv.tv_usec / 1000;
    run->n_devices = g->n_devices;
    for (size_t i = 0; i < g->n_devices; i++) {
        GroupDeviceRun *dr = &run->devices[i];
        dr->run = run;
        dr->device = g->devices[i];
        dr->start_state = dr->state = g->devices[i]->state;
        dr->goal = target;
    }
    return run;
}

static int
check_not_migrating(const Group *g, char *err, size_t err_size)
{
    if (g->migration) {
        (void) snprintf(err, err_size, "group '%s' belongs to a migration; cancel it "
                        "(vfio-migctl cancel ID; vfio-migctl jobs lists them) or wait for it "
                        "to end", g->name);
        return -EBUSY;
    }
    return 0;
}

static int
check_not_active(const Group *g, char *err, size_t err_size)
{
    if (g->active) {
        (void) snprintf(err, err_size, "group '%s' is already in a %s; try again when it ends",
                        g->name, g->active->reset ? "reset" : "transition");
        return -EBUSY;
    }
    return 0;
}

int
group_transition_start(Group *g, DeviceState target, bool force, group_done_cb done,
                       void *userdata, char *err, size_t err_size)
{
    int r = check_not_migrating(g, err, err_size);

    if (r < 0) {
        return r;
    }
    return group_transition_start_ex(g, target, force, NULL, done, userdata, err, err_size);
}

/* Publishes @run as @g's active run, locking the devices unless @lock_key already holds them. */
static GroupRun *
run_begin(Group *g, DeviceState target, bool force, const void *lock_key, group_done_cb done,
          void *userdata)
{
    GroupRun *run = run_new(g, target, force);

    if (!run) {
        return NULL;
    }
    run->done = done;
    run->userdata = userdata;
    run->start_ns = clock_now_ns();
    run->owns_lock = lock_key == NULL;
    run->lock_key = lock_key ? lock_key : run;
    for (size_t i = 0; run->owns_lock && i < g->n_devices; i++) {
        device_lock(g->devices[i], run, /* what= */ NULL);
    }
    g->active = run;
    run->step = STEP_RESET;
    return run;
}

int
group_transition_start_ex(Group *g, DeviceState target, bool force, const void *lock_key,
                          group_done_cb done, void *userdata, char *err, size_t err_size)
{
    GroupRun *run;
    int r;

    r = check_not_active(g, err, err_size);
    if (r < 0) {
        return r;
    }
    r = check_devices(g, target, force, lock_key, err, err_size);
    if (r < 0) {
        return r;
    }
    run = run_begin(g, target, force, lock_key, done, userdata);
    if (!run) {
        return -ENOMEM;
    }
    /* Begin at STEP_RESET, which has nothing to do going forward (no device starts in ERROR,
     * and only a rollback abandons RESUMING): run_advance() moves on to STEP_QUIESCE. */
    run_advance(run);
    return 0;
}

int
group_reset_start(Group *g, group_done_cb done, void *userdata, char *err, size_t err_size)
{
    GroupRun *run;
    int r;

    r = check_not_migrating(g, err, err_size);
    if (r >= 0) {
        r = check_not_active(g, err, err_size);
    }
    for (size_t i = 0; r >= 0 && i < g->n_devices; i++) {
        r = check_device_free(g, g->devices[i], /* lock_key= */ NULL, err, err_size);
    }
    if (r < 0) {
        return r;
    }
    run = run_begin(g, DEVICE_STATE_RUNNING, /* force= */ false, /* lock_key= */ NULL, done,
                    userdata);
    if (!run) {
        return -ENOMEM;
    }
    run->reset = true;
    run->phases = 1;
    /* Every device at once: what P2P order could protect is lost by the reset anyway. */
    run->pending = run_start_step(run);
    if (run->pending == 0) {
        run_advance(run); /* none could start (cannot happen after the checks): report it */
    }
    return 0;
}

/* ---- registry ---- */

Group *
group_find(Manager *m, const char *name)
{
    return SORTED_FIND(m->groups, m->n_groups, name, name);
}

static int
check_members(Manager *m, const char *const *ids, size_t n, char *err, size_t err_size)
{
    if (n == 0 || n > GROUP_MAX_DEVICES) {
        (void) snprintf(err, err_size, "a group has 1 to %d devices, not %zu", GROUP_MAX_DEVICES, n);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        Device *d = strutil_id_is_valid(ids[i]) ? manager_find(m, ids[i]) : NULL;

        if (!d) {
            (void) snprintf(err, err_size, "no device with id '%.64s'", ids[i]);
            return -ENOENT;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ids[i], ids[j]) == 0) {
                (void) snprintf(err, err_size, "device '%s' is listed twice", ids[i]);
                return -EINVAL;
            }
        }
        if (d->group) {
            (void) snprintf(err, err_size, "device '%s' already belongs to group '%s'", ids[i],
                            d->group->name);
            return -EBUSY;
        }
    }
    return 0;
}

int
group_new(Manager *m, const char *name, const char *const *device_ids, size_t n, Group **ret,
          char *err, size_t err_size)
{
    _cleanup_(group_freep) Group *g = NULL;
    int r;

    if (!strutil_id_is_valid(name)) {
        (void) snprintf(err, err_size, "'%.64s' is not a valid group name (1-%d characters from "
                        "A-Z a-z 0-9 _ . : -, not starting with - or .)", name, DEVICE_ID_MAX);
        return -EINVAL;
    }
    if (group_find(m, name)) {
        (void) snprintf(err, err_size, "a group named '%s' already exists", name);
        return -EEXIST;
    }
    r = check_members(m, device_ids, n, err, err_size);
    if (r < 0) {
        return r;
    }
    g = calloc(1, sizeof(*g));
    if (!g || !(g->name = strdup(name)) || !(g->devices = calloc(n, sizeof(*g->devices)))) {
        return -ENOMEM;
    }
    g->manager = m;
    if (group_warm_spares(g, n) < 0) {
        return -ENOMEM;
    }
    r = MANAGER_LINK(m, m->groups, m->n_groups, m->allocated_groups, 8, name, g);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        g->devices[i] = manager_find(m, device_ids[i]);
        g->devices[i]->group = g;
    }
    g->n_devices = n;
    log_group_info(g, "Created group '%s' with %zu device(s).", name, n);
    *ret = TAKE_PTR(g);
    return 0;
}

int
group_new_transient(Manager *m, Device *d, Group **ret)
{
    _cleanup_(group_freep) Group *g = calloc(1, sizeof(*g));

    if (!g || !(g->name = strdup(d->id)) || !(g->devices = calloc(1, sizeof(*g->devices)))) {
        return -ENOMEM;
    }
    g->manager = m; /* for the loop; group_free() finds it in no registry */
    g->devices[0] = d;
    g->n_devices = 1;
    *ret = TAKE_PTR(g);
    return 0;
}

Group *
group_free(Group *g)
{
    if (!g) {
        return NULL;
    }
    /* A running transition holds device operations that point back at it. */
    assert(!g->active);
    for (size_t i = 0; i < g->n_devices; i++) {
        if (g->devices[i]->group == g) { /* a transient group never owned its device */
            g->devices[i]->group = NULL;
        }
    }
    if (g->manager) {
        (void) MANAGER_UNLINK(g->manager, g->manager->groups, g->manager->n_groups, name, g);
    }
    run_free(g->last);
    for (size_t i = 0; i < g->n_spares; i++) {
        run_free(g->spares[i]);
    }
    free(g->devices);
    free(g->name);
    free(g);
    return NULL;
}

void
group_remove_device(Group *g, Device *d)
{
    size_t k = 0;

    assert(!g->active && !g->migration);
    for (size_t i = 0; i < g->n_devices; i++) {
        if (g->devices[i] != d) {
            g->devices[k++] = g->devices[i];
        }
    }
    g->n_devices = k;
    d->group = NULL;
    run_keep_spare(g, g->last); /* its timeline points at the device */
    g->last = NULL;
    log_group_info(g, "Device '%s' left group '%s' (%zu device(s) left).", d->id, g->name, k);
    if (k == 0) {
        group_free(g);
        return;
    }
    manager_changed(g->manager); /* the journal keeps the members */
}

int
group_delete(Group *g, char *err, size_t err_size)
{
    if (g->active || g->migration) {
        (void) snprintf(err, err_size, "group '%s' is %s; delete it when that ends", g->name,
                        g->active ? "in a transition" : "migrating");
        return -EBUSY;
    }
    log_group_info(g, "Deleted group '%s'.", g->name);
    group_free(g);
    return 0;
}
