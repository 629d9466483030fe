/* SPDX-License-Identifier: MIT */
/*
 * migrations — handlers of vfio_migd.v1.MigrationService (migrations.proto). Starting calls
 * answer as soon as the job runs (GetMigration follows it); SaveGroup and RestoreGroup answer
 * when their job has ended, with its final state.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "convert.h"
#include "handlers.h"
#include "manager.h"
#include "migration.h"
#include "migration_internal.h"
#include "util/clock.h"
#include "util/log.h"

static void
reply_migration(RpcCall *call, const MigrationJob *j)
{
    VfioMigd__V1__MigrationResponse resp = VFIO_MIGD__V1__MIGRATION_RESPONSE__INIT;
    MigrationMsg msg;

    if (convert_migration(j, &msg) < 0) {
        rpc_call_fail(call, -ENOMEM, "out of memory describing migration %s", j->id);
        return;
    }
    resp.migration = &msg.msg;
    rpc_call_reply(call, &resp.base);
    convert_migration_done(&msg);
}

/* Answers a job that has ended: OK when it completed, else the job's error (ABORTED unless
 * the file was at fault, status.h) with the whole migration attached (RPC_RESULT_TRAILER). */
static void
reply_final(RpcCall *call, const MigrationJob *j)
{
    VfioMigd__V1__MigrationResponse resp = VFIO_MIGD__V1__MIGRATION_RESPONSE__INIT;
    MigrationMsg msg;

    if (j->phase == PHASE_COMPLETED) {
        reply_migration(call, j);
        return;
    }
    if (convert_migration(j, &msg) < 0) {
        rpc_call_fail(call, -ENOMEM, "out of memory describing migration %s", j->id);
        return;
    }
    resp.migration = &msg.msg;
    rpc_call_fail_ex(call, RPC_FAILURE_JOB, j->r, &resp.base, "%s %s of group '%s' failed: %s",
                     j->id, j->role == MIGRATION_SAVE ? "save" : "restore", j->group_name,
                     j->error);
    convert_migration_done(&msg);
}

static void
handle_prepare_incoming(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__PrepareIncomingRequest *req = REQ(PrepareIncomingRequest, r);
    VfioMigd__V1__PrepareIncomingResponse resp = VFIO_MIGD__V1__PREPARE_INCOMING_RESPONSE__INIT;
    char bound[TRANSPORT_ADDRESS_MAX] = "", token[TRANSPORT_TOKEN_HEX + 1] = "", err[512] = "";
    RpcContext *ctx = userdata;
    MigrationJob *j = NULL;
    MigrationMsg msg;
    int ret;

    ret = migration_prepare_incoming(ctx->manager, req->group, req->listen, req->auto_resume,
                                     req->timeout_ms, &j, bound, sizeof(bound), token,
                                     sizeof(token), err, sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    if (convert_migration(j, &msg) < 0) {
        rpc_call_fail(call, -ENOMEM, "out of memory");
        return;
    }
    resp.migration = &msg.msg;
    resp.address = bound;
    resp.token = token;
    rpc_call_reply(call, &resp.base);
    convert_migration_done(&msg);
}

static int
options_from_request(const VfioMigd__V1__MigrationOptions *in, MigrationOptions *o, char *err,
                     size_t err_size)
{
    migration_options_defaults(o);
    if (!in) {
        return 0;
    }
    if ((int) in->precopy < 0 || in->precopy > VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_OFF ||
        (int) in->switchover < 0 ||
        in->switchover > VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_MANUAL) {
        (void) snprintf(err, err_size, "unknown precopy or switchover mode");
        return -EINVAL;
    }
    o->precopy = in->precopy == VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_AUTO;
    o->manual_switchover = in->switchover == VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_MANUAL;
    o->max_precopy_ms = in->max_precopy_ms ? in->max_precopy_ms : o->max_precopy_ms;
    o->downtime_target_ms = in->downtime_target_ms ? in->downtime_target_ms
                                                   : o->downtime_target_ms;
    o->bandwidth_limit = in->bandwidth_limit;
    o->timeout_ms = in->timeout_ms ? in->timeout_ms : o->timeout_ms;
    return 0;
}

static void
handle_start_migration(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__StartMigrationRequest *req = REQ(StartMigrationRequest, r);
    RpcContext *ctx = userdata;
    MigrationOptions opts;
    MigrationJob *j = NULL;
    char err[512] = "";
    int ret;

    ret = options_from_request(req->options, &opts, err, sizeof(err));
    if (ret >= 0) {
        ret = migration_start(ctx->manager, req->group, req->address, req->token, &opts, &j, err,
                              sizeof(err));
    }
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    reply_migration(call, j);
}

/* Switchover and CancelMigration: an action on a job, answered with the job. */
static void
act_on_job(RpcCall *call, const ProtobufCMessage *r, void *userdata,
           int (*action)(MigrationJob *j, char *err, size_t err_size))
{
    const VfioMigd__V1__MigrationIdRequest *req = REQ(MigrationIdRequest, r);
    MigrationJob *j = handlers_find_job_or_fail(call, userdata, req->id);
    char err[512] = "";
    int ret;

    if (!j) {
        return;
    }
    ret = action(j, err, sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    reply_migration(call, j);
}

static void
handle_switchover(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    act_on_job(call, r, userdata, migration_switchover);
}

static void
handle_cancel_migration(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    act_on_job(call, r, userdata, migration_cancel);
}

static void
handle_get_migration(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__MigrationIdRequest *req = REQ(MigrationIdRequest, r);
    MigrationJob *j = handlers_find_job_or_fail(call, userdata, req->id);

    if (j) {
        reply_migration(call, j);
    }
}

static void
handle_list_migrations(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    VfioMigd__V1__ListMigrationsResponse resp = VFIO_MIGD__V1__LIST_MIGRATIONS_RESPONSE__INIT;
    Manager *m = ((RpcContext *) userdata)->manager;
    MigrationMsg *msgs = calloc(m->n_jobs ? m->n_jobs : 1, sizeof(*msgs));
    VfioMigd__V1__Migration **ptrs = calloc(m->n_jobs ? m->n_jobs : 1, sizeof(*ptrs));
    size_t done = 0;

    (void) r;
    for (; msgs && ptrs && done < m->n_jobs; done++) {
        /* newest first */
        if (convert_migration(m->jobs[m->n_jobs - 1 - done], &msgs[done]) < 0) {
            break;
        }
        ptrs[done] = &msgs[done].msg;
    }
    if (!msgs || !ptrs || done < m->n_jobs) {
        rpc_call_fail(call, -ENOMEM, "out of memory listing migrations");
    } else {
        resp.n_migrations = done;
        resp.migrations = ptrs;
        rpc_call_reply(call, &resp.base);
    }
    for (size_t i = 0; msgs && i < done; i++) {
        convert_migration_done(&msgs[i]);
    }
    free(msgs);
    free(ptrs);
}

static void
on_file_job_done(MigrationJob *j, void *userdata)
{
    reply_final(userdata, j);
}

/* A group save or a group restore, as its request says it. */
typedef struct FileJobArgs {
    const char *group;
    const char *path;
    bool save;
    bool overwrite, resume; /* save */
    bool stop;              /* restore */
} FileJobArgs;

static void
start_file_job(RpcCall *call, RpcContext *ctx, const FileJobArgs *a)
{
    MigrationJob *j = NULL;
    char err[512] = "";
    int ret;

    if (!handlers_path_ok_or_fail(call, a->path)) {
        return;
    }
    if (a->save) {
        ret = migration_save_group(ctx->manager, a->group, a->path, a->overwrite, a->resume,
                                   on_file_job_done, call, &j, err, sizeof(err));
    } else {
        ret = migration_restore_group(ctx->manager, a->group, a->path, a->stop,
                                      on_file_job_done, call, &j, err, sizeof(err));
    }
    handlers_fail_unless_started(call, ret, err);
}

static void
handle_save_group(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__SaveGroupRequest *req = REQ(SaveGroupRequest, r);

    start_file_job(call, userdata, &(FileJobArgs){.group = req->group, .path = req->path,
                                                  .save = true, .overwrite = req->overwrite,
                                                  .resume = req->resume});
}

static void
handle_restore_group(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__RestoreGroupRequest *req = REQ(RestoreGroupRequest, r);

    start_file_job(call, userdata,
                   &(FileJobArgs){.group = req->group, .path = req->path, .stop = req->stop});
}

/* ---- WatchEvents: a loop timer compares each watched job with what was last sent ----
 *
 * The manager tells the watcher of every phase change (a listener): "phase" events go out at
 * once, "end" events on the next loop turn; the timer's own period only paces "progress". */

#define WATCH_TICK_MS 200
#define WATCH_PROGRESS_MS 1000
#define WATCH_MAX_JOBS 64

typedef struct Watcher {
    MigrationListener listener;       /* first: the callback gets it back as the Watcher */
    RpcCall *call;
    Manager *manager;
    char id[16];                      /* "" = every job */
    uv_timer_t timer;
    struct {
        char id[16];
        MigrationPhase phase;
        uint64_t last_ns;
        bool ended;
    } seen[WATCH_MAX_JOBS];
    size_t n_seen;
    bool done;
} Watcher;

static void
on_watch_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_watch_tick(uv_timer_t *t);

static bool watch_job(Watcher *w, const MigrationJob *j, uint64_t now);

/* A job changed phase. A phase that does not end it is sent now: several may follow each
 * other within one loop turn (switchover, completing, ...) and each must be seen. The end is
 * sent by the timer, fired at once, on the next loop turn: by then the job has its final
 * error, totals and downtime. */
static void
on_migration_changed(MigrationListener *l, const MigrationJob *j)
{
    Watcher *w = (Watcher *) l;

    if (w->done || (w->id[0] && strcmp(w->id, j->id) != 0)) {
        return;
    }
    if (!mig_is_over(j)) {
        (void) watch_job(w, j, clock_now_ns());
    }
    (void) uv_timer_start(&w->timer, on_watch_tick, 0, WATCH_TICK_MS);
}

/* Ends the stream with @r (0, or a negative errno for its status) and @message. */
static void
watch_end(Watcher *w, int r, const char *message)
{
    if (w->done) {
        return;
    }
    w->done = true;
    manager_remove_listener(w->manager, &w->listener);
    rpc_call_stream_end(w->call, r, message);
    uv_close((uv_handle_t *) &w->timer, on_watch_closed);
}

static void
watch_send(Watcher *w, const MigrationJob *j, const char *kind)
{
    VfioMigd__V1__MigrationEvent ev = VFIO_MIGD__V1__MIGRATION_EVENT__INIT;
    struct timespec ts;
    MigrationMsg msg;

    if (convert_migration(j, &msg) < 0) {
        return;
    }
    (void) clock_gettime(CLOCK_REALTIME, &ts);
    ev.kind = (char *) kind;
    ev.migration = &msg.msg;
    ev.unix_ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    rpc_call_stream_send(w->call, &ev.base);
    convert_migration_done(&msg);
}

/* Sends what changed for @j; returns false once its "end" event has been sent. */
static bool
watch_job(Watcher *w, const MigrationJob *j, uint64_t now)
{
    size_t k;

    for (k = 0; k < w->n_seen && strcmp(w->seen[k].id, j->id) != 0; k++) {
    }
    if (k == w->n_seen) {
        if (w->n_seen == WATCH_MAX_JOBS || (!w->id[0] && mig_is_over(j))) {
            return true; /* a finished job from before the watch: not news */
        }
        (void) snprintf(w->seen[k].id, sizeof(w->seen[k].id), "%s", j->id);
        w->n_seen++;
        w->seen[k].phase = 0;
    }
    if (w->seen[k].ended) {
        return false;
    }
    if (mig_is_over(j)) {
        watch_send(w, j, "end");
        w->seen[k].ended = true;
        return false;
    }
    if (j->phase != w->seen[k].phase) {
        watch_send(w, j, "phase");
    } else if (now - w->seen[k].last_ns >= WATCH_PROGRESS_MS * 1000000ull) {
        watch_send(w, j, "progress");
    } else {
        return true;
    }
    w->seen[k].phase = j->phase;
    w->seen[k].last_ns = now;
    return true;
}

static void
on_watch_tick(uv_timer_t *t)
{
    Watcher *w = t->data;
    Manager *m = w->manager;
    uint64_t now = clock_now_ns();

    if (m->shutting_down) {
        watch_end(w, -ESHUTDOWN, "vfio-migd is shutting down");
        return;
    }
    if (w->id[0]) {
        MigrationJob *j = migration_find(m, w->id);
        if (!j || !watch_job(w, j, now)) {
            watch_end(w, 0, "");
        }
        return;
    }
    for (size_t i = 0; i < m->n_jobs; i++) {
        (void) watch_job(w, m->jobs[i], now);
    }
}

static void
on_watch_cancelled(RpcCall *call, void *userdata)
{
    (void) call;
    watch_end(userdata, -ECANCELED, "the client went away");
}

static void
handle_watch_events(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__MigrationIdRequest *req = REQ(MigrationIdRequest, r);
    RpcContext *ctx = userdata;
    Watcher *w;

    if (req->id[0] && !handlers_find_job_or_fail(call, ctx, req->id)) {
        return;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        rpc_call_fail(call, -ENOMEM, "out of memory");
        return;
    }
    w->call = call;
    w->manager = ctx->manager;
    w->listener.changed = on_migration_changed;
    (void) snprintf(w->id, sizeof(w->id), "%s", req->id);
    (void) uv_timer_init(ctx->manager->loop, &w->timer);
    w->timer.data = w;
    manager_add_listener(ctx->manager, &w->listener);
    if (rpc_call_stream_begin(call, on_watch_cancelled, w) < 0) {
        watch_end(w, -ESHUTDOWN, "vfio-migd is shutting down");
        return;
    }
    (void) uv_timer_start(&w->timer, on_watch_tick, 0, WATCH_TICK_MS);
}

#define MIGRATIONS "vfio_migd.v1.MigrationService"

const RpcMethod migration_methods[] = {
    METHOD(MIGRATIONS, PrepareIncoming, V1(prepare_incoming_request),
           V1(prepare_incoming_response), handle_prepare_incoming, RPC_MUTATING),
    METHOD(MIGRATIONS, StartMigration, V1(start_migration_request), V1(migration_response),
           handle_start_migration, RPC_MUTATING),
    METHOD(MIGRATIONS, Switchover, V1(migration_id_request), V1(migration_response),
           handle_switchover, RPC_MUTATING),
    METHOD(MIGRATIONS, CancelMigration, V1(migration_id_request), V1(migration_response),
           handle_cancel_migration, RPC_MUTATING),
    METHOD(MIGRATIONS, GetMigration, V1(migration_id_request), V1(migration_response),
           handle_get_migration, RPC_READ_ONLY),
    METHOD(MIGRATIONS, ListMigrations, V1(list_migrations_request), V1(list_migrations_response),
           handle_list_migrations, RPC_READ_ONLY),
    METHOD(MIGRATIONS, SaveGroup, V1(save_group_request), V1(migration_response),
           handle_save_group, RPC_MUTATING),
    METHOD(MIGRATIONS, RestoreGroup, V1(restore_group_request), V1(migration_response),
           handle_restore_group, RPC_MUTATING),
    METHOD(MIGRATIONS, WatchEvents, V1(migration_id_request), V1(migration_event),
           handle_watch_events, RPC_READ_ONLY | RPC_STREAMING),
};
const size_t migration_methods_count = ELEMENTSOF(migration_methods);
