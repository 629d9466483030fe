/* SPDX-License-Identifier: MIT */
/*
 * device — see device.h.
 *
 * The plan: every operation is a DeviceOp queued with uv_queue_work(). Its worker function
 * (op_*_run) owns the back-end and the data session until it returns; it walks the kernel
 * path with walk_to(), which takes one arc per SET so each arc is timed and a failure is
 * pinned to its arc. After a failed arc the device's state is read back (the kernel leaves
 * it at the last completed hop, or in ERROR); ERROR is reset at once. on_op_done() then
 * publishes the result to the cached fields on the loop and calls the caller back.
 */
#include "device.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "log_object.h"
#include "manager.h"
#include "plugin_host.h"
#include "restore_state.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strutil.h"

typedef enum DeviceOpKind {
    DEVICE_OP_SET_STATE,
    DEVICE_OP_RESET,
    DEVICE_OP_REGION, /* region access: see the last section of this file */
    _DEVICE_OP_MAX,
} DeviceOpKind;

static const char *const op_names[_DEVICE_OP_MAX] = {
    [DEVICE_OP_SET_STATE] = "set-state",
    [DEVICE_OP_RESET] = "reset",
    [DEVICE_OP_REGION] = "region",
};

struct DeviceOp {
    uv_work_t work;
    uv_timer_t wait_timer; /* wait_max_ms: drops the operation while it is queued */
    bool wait_timer_used;
    const char *dropped_why; /* why it was dropped while queued: "its client went away" */
    Device *device;
    DeviceOpKind kind;
    DeviceState target;
    bool no_auto_reset;   /* leave ERROR for the caller (group.c) */
    bool part_of_request; /* a step of a larger request: its owner counts the request */
    DeviceState cur; /* the worker's view of the device state */
    uint64_t start_ns;
    OpResult result;
    device_op_cb cb;
    void *userdata;
};

static uint64_t
op_elapsed_us(const DeviceOp *op)
{
    return (clock_now_ns() - op->start_ns) / 1000;
}

static const char *
errno_name(int r)
{
    const char *n = strerrorname_np(r < 0 ? -r : r);
    return n ? n : "E?";
}

/* Records the first failure of an operation; later ones (e.g. a failed rollback) append. */
_printf_(4, 5) static void
op_fail(DeviceOp *op, OpFailure failure, int r, const char *fmt, ...)
{
    OpResult *res = &op->result;
    va_list ap;

    if (res->r == 0) {
        res->r = r;
        res->failure = failure;
    }
    va_start(ap, fmt);
    strutil_vappend_failure(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

/* ---- worker side: arcs ---- */

static void
op_replace_session(DeviceOp *op, DataSession *s)
{
    Device *d = op->device;
    bool had = d->session != NULL;

    data_session_free(d->session);
    d->session = s;
    restore_state_data_fd(d->id, had, s);
}

/* Worker. Resets the device (the only way out of ERROR or a failed RESUMING). */
static ArcRecord *op_next_arc_record(DeviceOp *op, const FsmArc *arc);

static void
arc_record_end(const DeviceOp *op, ArcRecord *a)
{
    a->end_ns = clock_now_ns();
    a->duration_us = (a->end_ns - op->start_ns) / 1000 - a->start_us;
}

/* Worker. Resets the device (the only way out of ERROR or a failed RESUMING), recorded as a
 * pseudo-arc to RUNNING so timelines show it. */
static int
op_reset_device(DeviceOp *op)
{
    Device *d = op->device;
    DeviceState st = DEVICE_STATE_ERROR;
    FsmArc arc = {op->cur, DEVICE_STATE_RUNNING};
    ArcRecord *a = op_next_arc_record(op, &arc);
    int r;

    r = d->backend->ops->reset(d->backend);
    op_replace_session(op, NULL);
    op->result.was_reset = true;
    if (a) {
        a->reset = true;
        arc_record_end(op, a);
        a->error = r < 0 ? r : 0;
    }
    if (r < 0) {
        op_fail(op, OP_FAILED_ARC, r, "device reset failed: %s (%s)", strerror(-r), errno_name(r));
        return r;
    }
    if (!d->info.migratable) {
        /* No migration state to read back (-ENOTTY): the device simply runs. */
        op->cur = DEVICE_STATE_RUNNING;
    } else {
        r = d->backend->ops->get_state(d->backend, &st);
        op->cur = r < 0 ? DEVICE_STATE_ERROR : st;
    }
    if (a) {
        a->to = op->cur;
    }
    return 0;
}

/* Worker. After a failed arc: learn where the kernel left the device; reset ERROR. */
static void
op_read_back_state(DeviceOp *op)
{
    Device *d = op->device;
    DeviceState st;
    int r;

    r = d->backend->ops->get_state(d->backend, &st);
    if (r >= 0 && st == DEVICE_STATE_ERROR && op->no_auto_reset) {
        op->cur = st;
        return;
    }
    if (r >= 0) {
        op->cur = st; /* so the reset below is recorded from where the device really was */
    }
    if (r < 0 || st == DEVICE_STATE_ERROR) {
        op_fail(op, OP_FAILED_ARC, r < 0 ? r : -EIO,
                "device %s after the failure and was reset",
                r < 0 ? "state unreadable" : "in ERROR");
        (void) op_reset_device(op);
        return;
    }
    op->cur = st;
}

static ArcRecord *
op_next_arc_record(DeviceOp *op, const FsmArc *arc)
{
    OpResult *res = &op->result;
    ArcRecord *a;

    if (res->n_arcs >= DEVICE_MAX_ARCS) {
        return NULL;
    }
    a = &res->arcs[res->n_arcs++];
    *a = (ArcRecord){.from = arc->from, .to = arc->to, .begin_ns = clock_now_ns()};
    a->start_us = (a->begin_ns - op->start_ns) / 1000;
    return a;
}

/* Worker. Runs one arc as a single SET request and records it. */
static int
op_run_arc(DeviceOp *op, const FsmArc *arc)
{
    Device *d = op->device;
    DataSession *s = NULL;
    ArcRecord *a = op_next_arc_record(op, arc);
    int r;

    if (!a) {
        op_fail(op, OP_FAILED_ARC, -E2BIG, "BUG: too many arcs in one operation");
        return -E2BIG;
    }
    TRACE_DEVICE(d, op_run_arc, "%s %s->%s", d->id, fsm_state_name(arc->from),
                 fsm_state_name(arc->to));
    r = d->backend->ops->set_state(d->backend, arc->to, &s);
    arc_record_end(op, a);
    if (r < 0) {
        a->error = r;
        op_fail(op, OP_FAILED_ARC, r, "arc %s->%s failed: %s (%s)", fsm_state_name(arc->from),
                fsm_state_name(arc->to), strerror(-r), errno_name(r));
        op_read_back_state(op);
        return r;
    }
    if (s) {
        a->opened_session = true;
        op_replace_session(op, s);
    } else if (fsm_arc_closes_session(arc->from, arc->to)) {
        op_replace_session(op, NULL);
    }
    op->cur = arc->to;
    return 0;
}

/* Worker. Walks the kernel's path from op->cur to @target, one arc at a time. */
static int
walk_to(DeviceOp *op, DeviceState target)
{
    FsmRefusal why;
    FsmPath path;
    int r;

    r = fsm_compute_path(op->cur, target, op->device->info.mig_flags, &path, &why);
    if (r < 0) {
        op_fail(op, OP_FAILED_REFUSED, r, "cannot go from %s to %s: %s (%s)",
                fsm_state_name(op->cur) ?: "?", fsm_state_name(target) ?: "?",
                fsm_refusal_to_string(why), errno_name(r));
        return r;
    }
    for (unsigned i = 0; i < path.n_arcs; i++) {
        r = op_run_arc(op, &path.arcs[i]);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* ---- worker side: operations ---- */

static void
op_set_state_run(DeviceOp *op)
{
    (void) walk_to(op, op->target);
}

static void
op_reset_run(DeviceOp *op)
{
    (void) op_reset_device(op);
}

/* What the worker runs for each kind; region accesses have their own work function. */
static void (*const op_runs[_DEVICE_OP_MAX])(DeviceOp *op) = {
    [DEVICE_OP_SET_STATE] = op_set_state_run,
    [DEVICE_OP_RESET] = op_reset_run,
};

static void
op_work(uv_work_t *w)
{
    DeviceOp *op = w->data;

    op->start_ns = clock_now_ns();
    op->result.start_ns = op->start_ns;
    op->result.start_state = op->cur;
    assert(op_runs[op->kind]);
    op_runs[op->kind](op);
    op->result.final_state = op->cur;
    op->result.elapsed_us = op_elapsed_us(op);
}

/* ---- loop side ---- */

static void
device_refresh_props(Device *d)
{
    const BackendOps *ops = d->backend->ops;
    uint64_t size;
    int n;

    n = ops->describe ? ops->describe(d->backend, d->props, ELEMENTSOF(d->props)) : 0;
    d->n_props = n > 0 ? (unsigned) n : 0;
    if (d->info.migratable && ops->data_size(d->backend, &size) >= 0) {
        d->data_size = size;
    }
}

bool
device_arcs_moved(const ArcRecord *arcs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (!arcs[i].reset && !arcs[i].error) {
            return true;
        }
    }
    return false;
}

static void
device_publish_result(Device *d, const OpResult *res, bool count_request)
{
    d->state = res->final_state;
    if (count_request && device_arcs_moved(res->arcs, res->n_arcs)) {
        d->stats.transitions++; /* requests that moved the device (devices.proto) */
    }
    for (unsigned i = 0; i < res->n_arcs; i++) {
        if (res->arcs[i].reset) {
            continue; /* counted in resets */
        }
        if (res->arcs[i].error) {
            d->stats.failed_arcs++;
        } else {
            d->stats.arcs++;
        }
    }
    if (res->was_reset) {
        d->stats.resets++;
    }
    if (res->r < 0) {
        (void) snprintf(d->last_error, sizeof(d->last_error), "%s", res->message);
    }
    device_refresh_props(d);
}

static void
on_op_freed(uv_handle_t *h)
{
    free(h->data);
}

/* The operation's memory goes once its timer (if any) is closed (libuv's rule). */
static void
op_free(DeviceOp *op)
{
    if (!op->wait_timer_used) {
        free(op);
        return;
    }
    op->wait_timer.data = op;
    uv_close((uv_handle_t *) &op->wait_timer, on_op_freed);
}

/* uv_cancel() succeeds only while the work is still queued, not on a worker: then nothing of
 * it ran, and on_op_done() gets UV_ECANCELED. -EBUSY once it runs. */
static int
op_drop(DeviceOp *op, const char *why)
{
    if (op->dropped_why || uv_cancel((uv_req_t *) &op->work) != 0) {
        return -EBUSY;
    }
    op->dropped_why = why;
    log_device_info(op->device, "Device '%s': %s dropped before it started: %s while it waited "
                    "for a worker.", op->device->id, op_names[op->kind], why);
    return 0;
}

/* Loop: the client's deadline passed. */
static void
on_op_wait_expired(uv_timer_t *t)
{
    DeviceOp *op = t->data;

    (void) op_drop(op, "the client's deadline passed");
}

int
device_drop_queued(Device *d, const char *why)
{
    return d->op ? op_drop(d->op, why) : -ENOENT;
}

/* The answer of an operation dropped while queued: the device was not touched. */
static void
op_dropped(DeviceOp *op)
{
    op->result = (OpResult){.start_state = op->cur, .final_state = op->cur};
    op_fail(op, OP_FAILED_REFUSED, -ETIMEDOUT, "dropped before it started: %s while it "
            "waited for a worker (all --workers were busy)", op->dropped_why);
}

static void
on_op_done(uv_work_t *w, int status)
{
    DeviceOp *op = w->data;
    Device *d = op->device;

    d->op = NULL;
    if (op->wait_timer_used) {
        (void) uv_timer_stop(&op->wait_timer);
    }
    if (status == UV_ECANCELED) {
        op_dropped(op); /* nothing to publish: the device is as it was */
    } else {
        device_publish_result(d, &op->result, !op->part_of_request);
    }
    TRACE_DEVICE(d, on_op_done, "%s %s -> %s r=%d", d->id, op_names[op->kind],
                 fsm_state_name(d->state), op->result.r);
    Manager *m = d->release_requested ? d->manager : NULL; /* @cb may detach @d */
    op->cb(d, &op->result, op->userdata);
    op_free(op);
    manager_release_soon(m); /* the kernel asked for it: free now */
}

static int
device_check_idle(Device *d, const void *lock_key, char *err, size_t err_size)
{
    if (d->lock && d->lock != lock_key) {
        (void) snprintf(err, err_size, "device '%s' is busy: %s", d->id,
                        d->lock_what ? d->lock_what : "its group is in a transition");
        return -EBUSY;
    }
    if (d->op) {
        (void) snprintf(err, err_size, "device '%s' is busy with another operation (%s)", d->id,
                        op_names[d->op->kind]);
        return -EBUSY;
    }
    return 0;
}

static int
device_check_migratable(Device *d, char *err, size_t err_size)
{
    if (!d->info.migratable) {
        (void) snprintf(err, err_size, "device '%s' does not support VFIO migration", d->id);
        return -EOPNOTSUPP;
    }
    return 0;
}

/* Refuses, up front and without touching the device, a path the kernel would refuse. */
static int
device_check_path(Device *d, DeviceState target, char *err, size_t err_size)
{
    FsmRefusal why;
    FsmPath path;
    int r;

    char way_out[DEVICE_WAY_OUT_MAX];

    r = fsm_compute_path(d->state, target, d->info.mig_flags, &path, &why);
    if (r < 0) {
        (void) snprintf(err, err_size, "device '%s' cannot go from %s to %s: %s (%s)%s", d->id,
                        fsm_state_name(d->state) ?: "?", fsm_state_name(target) ?: "?",
                        fsm_refusal_to_string(why), errno_name(r),
                        device_way_out(d, d->state, way_out, sizeof(way_out)));
    }
    return r;
}

static int
device_queue_op(Device *d, DeviceOp *op, uint64_t wait_max_ms, device_op_cb cb, void *userdata)
{
    uv_loop_t *loop = d->manager->loop;
    int r;

    op->device = d;
    op->cur = d->state;
    op->cb = cb;
    op->userdata = userdata;
    op->work.data = op;
    r = uv_queue_work(loop, &op->work, op_work, on_op_done);
    if (r < 0) {
        return r;
    }
    d->op = op;
    if (wait_max_ms > 0 && uv_timer_init(loop, &op->wait_timer) == 0) {
        op->wait_timer_used = true;
        op->wait_timer.data = op;
        (void) uv_timer_start(&op->wait_timer, on_op_wait_expired, wait_max_ms, 0);
    }
    return 0;
}

static int
device_start(Device *d, DeviceOp *op_in, const DeviceOpOptions *opts, device_op_cb cb,
             void *userdata, char *err, size_t err_size)
{
    _cleanup_free_ DeviceOp *op = op_in;
    int r;

    if (!op) {
        return -ENOMEM;
    }
    op->no_auto_reset = opts && opts->no_auto_reset;
    op->part_of_request = opts && opts->part_of_request;
    r = device_check_idle(d, opts ? opts->lock_key : NULL, err, err_size);
    if (r >= 0 && op->kind != DEVICE_OP_RESET) {
        r = device_check_migratable(d, err, err_size);
    }
    if (r >= 0) {
        r = device_queue_op(d, op, opts ? opts->wait_max_ms : 0, cb, userdata);
    }
    if (r < 0) {
        return r;
    }
    TAKE_PTR(op);
    return 0;
}

static DeviceOp *
op_new(DeviceOpKind kind)
{
    DeviceOp *op = calloc(1, sizeof(*op));

    if (op) {
        op->kind = kind;
    }
    return op;
}

int
device_set_state_start(Device *d, DeviceState target, device_op_cb cb, void *userdata, char *err,
                       size_t err_size)
{
    return device_set_state_start_ex(d, target, NULL, cb, userdata, err, err_size);
}

int
device_set_state_start_ex(Device *d, DeviceState target, const DeviceOpOptions *opts,
                          device_op_cb cb, void *userdata, char *err, size_t err_size)
{
    DeviceOp *op;
    int r;

    if (d->info.migratable) {
        r = device_check_path(d, target, err, err_size);
        if (r < 0) {
            return r;
        }
    }
    op = op_new(DEVICE_OP_SET_STATE);
    if (op) {
        op->target = target;
    }
    return device_start(d, op, opts, cb, userdata, err, err_size);
}

int
device_reset_start(Device *d, device_op_cb cb, void *userdata, char *err, size_t err_size)
{
    return device_reset_start_ex(d, NULL, cb, userdata, err, err_size);
}

int
device_reset_start_ex(Device *d, const DeviceOpOptions *opts, device_op_cb cb, void *userdata,
                      char *err, size_t err_size)
{
    return device_start(d, op_new(DEVICE_OP_RESET), opts, cb, userdata, err, err_size);
}

void
device_lock(Device *d, const void *key, const char *what)
{
    assert(!d->lock);
    d->lock = key;
    d->lock_what = what;
}

void
device_unlock(Device *d)
{
    d->lock = NULL;
    d->lock_what = NULL;
}

void
device_count_request(Device *d)
{
    d->stats.transitions++;
}

void
device_count_transfer(Device *d, uint64_t saved, uint64_t restored)
{
    d->stats.bytes_saved += saved;
    d->stats.bytes_restored += restored;
}

void
device_set_last_error(Device *d, const char *message)
{
    (void) snprintf(d->last_error, sizeof(d->last_error), "%s", message);
}

/* The back-end's fields, then the plugin's: a plugin that fails refuses what asked (a
 * migration, describe, check) with its words, and the device is untouched. */
int
device_compat_descriptor(Device *d, CompatDescriptor *ret, char *why, size_t why_size)
{
    const BackendOps *ops = d->backend->ops;
    struct vfio_migd_device view;
    int r;

    ret->n_fields = 0;
    r = ops->compat_descriptor ? ops->compat_descriptor(d->backend, ret) : 0;
    if (r < 0) {
        (void) snprintf(why, why_size, "device '%s' cannot describe itself for a compatibility "
                        "check: %s", d->id, strerror(-r));
        return r;
    }
    if (!d->plugin) {
        return 0;
    }
    device_plugin_view(d, &view);
    return plugin_describe(d->plugin, &view, ret, why, why_size);
}

void
device_identify(Device *d, const PluginHost *plugins, const char *sysfs_root)
{
    const BackendOps *ops = d->backend->ops;

    d->identity = (BackendIdentity){.vendor_id = BACKEND_ID_NONE, .device_id = BACKEND_ID_NONE};
    if (ops->identity && ops->identity(d->backend, sysfs_root, &d->identity) < 0) {
        d->identity = (BackendIdentity){.vendor_id = BACKEND_ID_NONE,
                                        .device_id = BACKEND_ID_NONE};
    }
    /* a sim device running a vendor's model is that vendor's, whatever it claims to be */
    d->plugin = d->identity.sim_model ? plugin_host_find_model(plugins, d->identity.sim_model)
                                      : plugin_host_match(plugins, &d->identity, NULL);
}

int
device_check_descriptor(Device *d, uint32_t flags, const char *backend,
                        const CompatDescriptor *src, CompatReport *report, char *why,
                        size_t why_size)
{
    _cleanup_free_ CompatDescriptor *local = malloc(sizeof(*local));
    size_t pairs[1];
    int r;

    if (!local) {
        return -ENOMEM;
    }
    r = device_compat_descriptor(d, local, why, why_size);
    if (r < 0) {
        return r;
    }
    r = irq_compat_capacity(irq_model(d->irq), src, local);
    if (r < 0) {
        (void) snprintf(why, why_size, "device '%s' cannot describe its interrupts for a "
                        "compatibility check: %s", d->id, strerror(-r));
        return r;
    }
    r = compat_compare(&(CompatDevice){d->id, flags, backend, src}, 1,
                       &(CompatDevice){d->id, d->info.mig_flags, device_backend_name(d), local},
                       1, COMPAT_PAIR_SINGLE, pairs, report);
    return r == -EMEDIUMTYPE ? 0 : r;
}

bool
device_stream_is_plugins(const Device *d)
{
    return d->plugin && plugin_has_stream(d->plugin) &&
           (!d->identity.sim_options || d->identity.sim_model);
}

void
device_plugin_view(const Device *d, struct vfio_migd_device *ret)
{
    plugin_device_view(&d->identity, d->id, ret);
}

static void
device_irq_changed(void *userdata)
{
    manager_changed(userdata);
}

int
device_new(Manager *m, const char *id, BackendDevice *backend, const BackendInfo *info,
           Device **ret)
{
    Device *d = calloc(1, sizeof(*d));

    if (!d || !(d->id = strdup(id))) {
        free(d);
        backend_device_free(backend);
        return -ENOMEM;
    }
    d->manager = m;
    d->backend = backend;
    d->info = *info;
    d->state = info->initial_state;
    int r = irq_new(m ? m->loop : NULL, backend, &d->irq);
    if (r < 0) {
        (void) device_free(d);
        return r;
    }
    if (m) {
        /* The journal and the fd store keep the interrupts: they follow every change. */
        irq_set_on_change(d->irq, device_irq_changed, m);
    }
    device_refresh_props(d);
    *ret = d;
    return 0;
}

Device *
device_free(Device *d)
{
    if (!d) {
        return NULL;
    }
    /* Freeing a device with work in flight would pull the back-end from under a worker. */
    assert(!d->op);
    restore_state_data_fd(d->id, d->session != NULL, NULL);
    data_session_free(d->session);
    /* A detach unregisters REQ; a daemon that stops leaves it to the next (the fd store). */
    d->req = req_free(d->req, !(d->manager && d->manager->shutting_down));
    d->irq = irq_free(d->irq); /* the VMM's eventfds and the latches; the kernel keeps its own */
    backend_device_free(d->backend);
    free(d->attach_source);
    free(d->id);
    free(d);
    return NULL;
}

bool
device_is_busy(const Device *d)
{
    return d->op != NULL;
}

const char *
device_busy_operation(const Device *d)
{
    if (d->lock_what) {
        return d->lock_what; /* a job holds it: say which, not which of its steps runs */
    }
    if (d->op) {
        return op_names[d->op->kind];
    }
    /* A group transition holds its devices between their arcs too (at its barrier). */
    return d->lock ? "group-transition" : NULL;
}

/* The group command that does what @what does, for every device at once, and the option
 * that acts on one device anyway. */
static const struct {
    const char *doing;
    const char *group_command; /* %s: the group's name */
    const char *force_option;
} alone_table[] = {
    [DEVICE_ALONE_STATE] = {"changing its state alone", "vfio-migctl group state %s TARGET",
                            "--force"},
    [DEVICE_ALONE_RESET] = {"resetting it alone (it runs again)", "vfio-migctl group reset %s",
                            "--force"},
    [DEVICE_ALONE_SAVE] = {"saving it alone (it stops)", "vfio-migctl save %s FILE --group",
                           "--force-grouped"},
    [DEVICE_ALONE_RESTORE] = {"restoring it alone", "vfio-migctl restore %s FILE --group",
                              "--force-grouped"},
};
static_assert(ELEMENTSOF(alone_table) == _DEVICE_ALONE_MAX, "alone_table out of sync");

int
device_check_alone(const Device *d, DeviceAlone what, char *err, size_t err_size)
{
    char command[128];

    if (!d->group || d->group->n_devices < 2) {
        return 0; /* no other device to keep an order with */
    }
    (void) snprintf(command, sizeof(command), alone_table[what].group_command, d->group->name);
    (void) snprintf(err, err_size, "device '%s' belongs to group '%s': %s breaks the group's "
                    "P2P-safe order; use '%s' for the whole group, or %s to act on this device "
                    "alone", d->id, d->group->name, alone_table[what].doing, command,
                    alone_table[what].force_option);
    return -EBUSY;
}

const char *
device_way_out(const Device *d, DeviceState s, char *buf, size_t size)
{
    buf[0] = '\0';
    if (fsm_state_needs_reset(s) && d->group && d->group->n_devices > 1) {
        /* A reset of one device of a group is refused unless forced (device_check_alone). */
        (void) snprintf(buf, size, "; to recover, 'vfio-migctl reset --force %s' brings it back "
                        "to running (its migration state is discarded), or 'vfio-migctl group "
                        "reset %s' the whole group", d->id, d->group->name);
    } else if (fsm_state_needs_reset(s)) {
        (void) snprintf(buf, size, "; to recover, 'vfio-migctl reset %s' brings it back to "
                        "running (its migration state is discarded)", d->id);
    }
    return buf;
}

const char *
device_backend_name(const Device *d)
{
    return d->backend->ops->name;
}

/* ---- region access (diagnostics: ReadRegion / WriteRegion) ----
 *
 * One pread or pwrite on a device region, run on a worker like every device operation. The
 * op embeds a DeviceOp so that, while it runs, d->op marks the device busy exactly as any other
 * operation does; it has its own work and completion functions because it moves bytes, not
 * states, and publishes nothing but the bytes. */

typedef struct RegionOp {
    DeviceOp op; /* first: d->op points here; only work, device and kind are used */
    uint32_t index;
    uint64_t offset;
    size_t size;
    bool write;
    ssize_t r; /* bytes transferred or -errno, set by the worker */
    device_region_cb cb;
    void *userdata;
    uint8_t data[DEVICE_REGION_MAX]; /* write: the bytes to write; read: the bytes read */
} RegionOp;

static void
region_work(uv_work_t *w)
{
    RegionOp *rop = w->data;
    BackendDevice *bd = rop->op.device->backend;

    rop->r = bd->ops->region_access(bd, rop->index, rop->offset, rop->data, rop->size, rop->write);
}

static void
region_done(uv_work_t *w, int status)
{
    RegionOp *rop = w->data;
    Device *d = rop->op.device;

    (void) status; /* device work is never cancelled */
    d->op = NULL;
    TRACE_DEVICE(d, region_done, "%s %s region %u at %llu: %zd", d->id,
                 rop->write ? "write" : "read", rop->index, (unsigned long long) rop->offset,
                 rop->r);
    Manager *m = d->release_requested ? d->manager : NULL; /* @cb may detach @d */
    rop->cb(d, rop->r, rop->write ? NULL : rop->data, rop->userdata);
    free(rop);
    manager_release_soon(m);
}

/* The kernel forbids touching a device in the stopped, saving-while-stopped and P2P states
 * (uAPI: "the user should not touch the device in STOP_COPY", P2P "like STOP"); a region
 * access is allowed only where the device runs fully. */
static int
device_check_region_state(Device *d, char *err, size_t err_size)
{
    if (!d->backend->ops->region_access) {
        (void) snprintf(err, err_size, "device '%s' (back-end '%s') has no regions to access",
                        d->id, device_backend_name(d));
        return -ENOTTY;
    }
    if (d->info.migratable && !fsm_state_is_running(d->state)) {
        (void) snprintf(err, err_size, "device '%s' is in %s: its regions may be accessed only "
                        "in running or pre_copy, where the device runs", d->id,
                        fsm_state_name(d->state) ?: "?");
        return -ESTALE;
    }
    return 0;
}

int
device_region_start(Device *d, uint32_t index, uint64_t offset, const void *data, size_t size,
                    bool write, device_region_cb cb, void *userdata, char *err, size_t err_size)
{
    _cleanup_free_ RegionOp *rop = NULL;
    int r;

    if (size == 0 || size > DEVICE_REGION_MAX) {
        (void) snprintf(err, err_size, "a region access moves 1 to %d bytes, not %zu",
                        DEVICE_REGION_MAX, size);
        return -EINVAL;
    }
    r = device_check_idle(d, NULL, err, err_size);
    if (r >= 0) {
        r = device_check_region_state(d, err, err_size);
    }
    if (r < 0) {
        return r;
    }
    rop = calloc(1, sizeof(*rop));
    if (!rop) {
        return -ENOMEM;
    }
    *rop = (RegionOp){.index = index, .offset = offset, .size = size, .write = write, .cb = cb,
                      .userdata = userdata};
    rop->op.kind = DEVICE_OP_REGION;
    rop->op.device = d;
    rop->op.work.data = rop;
    if (write) {
        memcpy(rop->data, data, size);
    }
    r = uv_queue_work(d->manager->loop, &rop->op.work, region_work, region_done);
    if (r < 0) {
        return r;
    }
    d->op = &TAKE_PTR(rop)->op;
    return 0;
}
