/* SPDX-License-Identifier: MIT */
/*
 * migrations — handlers of vfio_migd.v1.MigrationService (migrations.proto). Starting calls
 * answer as soon as the job runs (GetMigration follows it); Save and Restore answer when their
 * job has ended, with its final state. Jobs are seen through migration.h's snapshots only;
 * WatchEvents' decisions are migration_watch's, this file translates its events.
 */
#include <stdio.h>
#include <string.h>

#include "convert.h"
#include "core/spread.h"
#include "handlers.h"
#include "manager.h"
#include "migration.h"
#include "migration_watch.h"
#include "util/cleanup.h"
#include "util/limits.h"
#include "util/log.h"

/* A job as an answer carries it: its snapshot and the message made from it. */
typedef struct JobView {
    MigrationSnapshot snap;
    MigrationMsg msg;
} JobView;

/* Describes @j into @v; on failure answers the call itself and returns -ENOMEM. On success
 * job_view_done() frees @v after the answer. */
static int
job_view_begin(RpcCall *call, const MigrationJob *j, JobView *v)
{
    if (migration_snapshot(j, &v->snap) < 0 || convert_migration(&v->snap, &v->msg) < 0) {
        rpc_call_fail(call, -ENOMEM, "out of memory describing migration %s", migration_id(j));
        migration_snapshot_done(&v->snap);
        return -ENOMEM;
    }
    return 0;
}

static void
job_view_done(JobView *v)
{
    convert_migration_done(&v->msg);
    migration_snapshot_done(&v->snap);
}

static void
reply_migration(RpcCall *call, const MigrationJob *j)
{
    VfioMigd__V1__MigrationResponse resp = VFIO_MIGD__V1__MIGRATION_RESPONSE__INIT;
    JobView v;

    if (job_view_begin(call, j, &v) < 0) {
        return;
    }
    resp.migration = &v.msg.msg;
    rpc_call_reply(call, &resp.base);
    job_view_done(&v);
}

/* Answers a call that acted on @j: the job when @ret is 0, else the error @err explains. */
static void
reply_migration_or_fail(RpcCall *call, int ret, const char *err, const MigrationJob *j)
{
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    reply_migration(call, j);
}

/* Answers a job that has ended: OK when it completed, else the job's error with the whole
 * migration attached (RPC_RESULT_TRAILER). A job that failed before any device moved (a
 * refused file, a refused manifest), or that was cancelled, answers as a refusal; one that
 * failed part-way as a job (ABORTED, unless its input was at fault: status.h). */
static void
reply_final(RpcCall *call, const MigrationJob *j)
{
    VfioMigd__V1__MigrationResponse resp = VFIO_MIGD__V1__MIGRATION_RESPONSE__INIT;
    const MigrationSnapshot *snap;
    JobView v;

    if (job_view_begin(call, j, &v) < 0) {
        return;
    }
    snap = &v.snap;
    resp.migration = &v.msg.msg;
    if (snap->phase == PHASE_COMPLETED) {
        rpc_call_reply(call, &resp.base);
    } else {
        rpc_call_fail_ex(call,
                         !snap->touched || snap->r == -ECANCELED ? RPC_FAILURE_REFUSED
                                                                 : RPC_FAILURE_JOB,
                         snap->r, &resp.base, "%s %s of %s '%s' failed: %s", snap->id,
                         snap->role == MIGRATION_SAVE ? "save" : "restore",
                         snap->subject == MIGRATION_SUBJECT_DEVICE ? "device" : "group",
                         snap->name, snap->error);
    }
    job_view_done(&v);
}

/* A number of milliseconds from a request: 0 (the default) or 1 to LIMIT_MAX_MS. */
static int
check_ms(const char *field, uint32_t v, char *err, size_t err_size)
{
    if (v > LIMIT_MAX_MS) {
        (void) snprintf(err, err_size, "%s: %u ms is out of range: 0 (the default) or 1 to %u "
                        "(a day)", field, v, LIMIT_MAX_MS);
        return -EINVAL;
    }
    return 0;
}

/* A rate from a request: 0 (the default, or no cap) or 1 to LIMIT_MAX_RATE bytes per second. */
static int
check_rate(const char *field, uint64_t v, char *err, size_t err_size)
{
    if (v > LIMIT_MAX_RATE) {
        (void) snprintf(err, err_size, "%s: %llu bytes per second is out of range: 0 or 1 to "
                        "%llu (1 TiB/s)", field, (unsigned long long) v,
                        (unsigned long long) LIMIT_MAX_RATE);
        return -EINVAL;
    }
    return 0;
}

/* A request's MigrationTls over the daemon's [migration] tls (@dflt): into *@ret, a mode this
 * daemon can speak (cert needs its certificate: tls_mode_usable()). */
static int
tls_from_request(VfioMigd__V1__MigrationTls in, TlsMode dflt, TlsMode *ret, char *err,
                 size_t err_size)
{
    static const TlsMode of_request[] = {
        [VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_PSK] = TLS_MODE_PSK,
        [VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_OFF] = TLS_MODE_OFF,
        [VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_CERT] = TLS_MODE_CERT,
    };
    TlsMode mode;

    if ((int) in < 0 || (size_t) in >= ELEMENTSOF(of_request)) {
        (void) snprintf(err, err_size, "tls: unknown value %d (DEFAULT, PSK, OFF or CERT)",
                        (int) in);
        return -EINVAL;
    }
    mode = in == VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_DEFAULT ? dflt : of_request[in];
    if (!tls_mode_usable(mode, err, err_size)) {
        return -EOPNOTSUPP;
    }
    *ret = mode;
    return 0;
}

static int
check_options(const VfioMigd__V1__MigrationOptions *in, char *err, size_t err_size)
{
    const struct {
        const char *field;
        uint32_t v;
    } ms[] = {
        {"max_precopy_ms", in->max_precopy_ms},
        {"downtime_target_ms", in->downtime_target_ms},
        {"timeout_ms", in->timeout_ms},
    };

    for (size_t i = 0; i < ELEMENTSOF(ms); i++) {
        if (check_ms(ms[i].field, ms[i].v, err, err_size) < 0) {
            return -EINVAL;
        }
    }
    if (in->channels > SPREAD_MAX_CHANNELS) {
        (void) snprintf(err, err_size, "channels is %u, over %u data channels per device (0: "
                        "automatic)", in->channels, SPREAD_MAX_CHANNELS);
        return -EINVAL;
    }
    if (check_rate("bandwidth_limit", in->bandwidth_limit, err, err_size) < 0 ||
        check_rate("stopcopy_bandwidth_limit", in->stopcopy_bandwidth_limit, err, err_size) < 0) {
        return -EINVAL;
    }
    return 0;
}

static void
handle_prepare_incoming(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__PrepareIncomingRequest *req = REQ(PrepareIncomingRequest, r);
    VfioMigd__V1__PrepareIncomingResponse resp = VFIO_MIGD__V1__PREPARE_INCOMING_RESPONSE__INIT;
    char bound[MIGRATION_ADDRESS_MAX] = "", token[MIGRATION_TOKEN_MAX] = "", err[512] = "";
    char reachable[MIGRATION_REACHABLE_MAX][MIGRATION_ADDRESS_MAX], *ptrs[MIGRATION_REACHABLE_MAX];
    char route[MIGRATION_ADDRESS_MAX] = "";
    RpcContext *ctx = userdata;
    MigrationJob *j = NULL;
    JobView v;
    int ret;

    TlsMode tls = TLS_MODE_PSK;

    ret = check_ms("timeout_ms", req->timeout_ms, err, sizeof(err));
    if (ret >= 0) {
        ret = tls_from_request(req->tls, ctx->manager->migration_defaults.tls, &tls, err,
                               sizeof(err));
    }
    if (ret >= 0 && *req->peer) {
        ret = migration_route_source(req->peer, route, sizeof(route), err, sizeof(err));
    }
    if (ret >= 0) {
        ret = migration_prepare_incoming(ctx->manager, req->group, req->listen, req->auto_resume,
                                         req->timeout_ms, tls, &j, bound, sizeof(bound), token,
                                         sizeof(token), err, sizeof(err));
    }
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    if (job_view_begin(call, j, &v) < 0) {
        return;
    }
    resp.migration = &v.msg.msg;
    resp.address = bound;
    resp.token = token;
    migration_incoming_addresses(j, route, reachable, MIGRATION_REACHABLE_MAX,
                                 &resp.n_peer_addresses);
    for (size_t i = 0; i < resp.n_peer_addresses; i++) {
        ptrs[i] = reachable[i];
    }
    resp.peer_addresses = ptrs;
    rpc_call_reply(call, &resp.base);
    job_view_done(&v);
}

/* The request's options over the daemon's defaults (Manager.migration_defaults, which the
 * configuration's [migration] keys set): a number left at 0 takes the default. PRECOPY_AUTO is
 * the proto's 0, so it cannot turn pre-copy on where the configuration turned it off:
 * "precopy = no" is the host's policy; PRECOPY_OFF turns it off for one migration. */
static int
options_from_request(const MigrationOptions *defaults, const VfioMigd__V1__MigrationOptions *in,
                     MigrationOptions *o, char *err, size_t err_size)
{
    *o = *defaults;
    if (!in) {
        return 0;
    }
    if (check_options(in, err, err_size) < 0) {
        return -EINVAL;
    }
    if ((int) in->precopy < 0 || in->precopy > VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_OFF ||
        (int) in->switchover < 0 ||
        in->switchover > VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_MANUAL) {
        (void) snprintf(err, err_size, "unknown precopy or switchover mode");
        return -EINVAL;
    }
    o->precopy = o->precopy && in->precopy == VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_AUTO;
    o->manual_switchover = in->switchover == VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_MANUAL;
    o->max_precopy_ms = in->max_precopy_ms ? in->max_precopy_ms : o->max_precopy_ms;
    o->downtime_target_ms = in->downtime_target_ms ? in->downtime_target_ms
                                                   : o->downtime_target_ms;
    o->bandwidth_limit = in->bandwidth_limit ? in->bandwidth_limit : o->bandwidth_limit;
    o->stopcopy_bandwidth_limit = in->stopcopy_bandwidth_limit ? in->stopcopy_bandwidth_limit
                                                               : o->stopcopy_bandwidth_limit;
    o->timeout_ms = in->timeout_ms ? in->timeout_ms : o->timeout_ms;
    o->channels = in->channels ? in->channels : o->channels;
    return tls_from_request(in->tls, defaults->tls, &o->tls, err, err_size);
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

    ret = options_from_request(&ctx->manager->migration_defaults, req->options, &opts, err,
                               sizeof(err));
    if (ret >= 0) {
        ret = migration_start(ctx->manager, req->group, req->address, req->token, &opts, &j, err,
                              sizeof(err));
    }
    reply_migration_or_fail(call, ret, err, j);
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
    reply_migration_or_fail(call, ret, err, j);
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
handle_resolve_migration(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__ResolveMigrationRequest *req = REQ(ResolveMigrationRequest, r);
    bool resume = req->outcome == VFIO_MIGD__V1__RESOLVE_OUTCOME__RESOLVE_OUTCOME_RESUME;
    MigrationJob *j;
    char err[768] = "";
    int ret;

    if (!resume && req->outcome != VFIO_MIGD__V1__RESOLVE_OUTCOME__RESOLVE_OUTCOME_ABORT) {
        rpc_call_fail(call, -EINVAL, "say which outcome: RESUME (this side runs the VM) or ABORT "
                      "(it gives the VM up)");
        return;
    }
    j = handlers_find_job_or_fail(call, userdata, req->id);
    if (!j) {
        return;
    }
    ret = migration_resolve(j, resume, err, sizeof(err));
    reply_migration_or_fail(call, ret, err, j);
}

static void
handle_update_migration(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__UpdateMigrationRequest *req = REQ(UpdateMigrationRequest, r);
    MigrationJob *j = handlers_find_job_or_fail(call, userdata, req->id);
    MigrationRates rates = {
        .precopy = req->bandwidth_limit ? &req->bandwidth_limit->bytes_per_second : NULL,
        .stopcopy = req->stopcopy_bandwidth_limit ? &req->stopcopy_bandwidth_limit->bytes_per_second
                                                  : NULL,
    };
    char err[512] = "";
    int ret;

    if (!j) {
        return;
    }
    if (!rates.precopy && !rates.stopcopy) {
        rpc_call_fail(call, -EINVAL, "nothing to update: give bandwidth_limit, "
                      "stopcopy_bandwidth_limit or both");
        return;
    }
    ret = check_rate("bandwidth_limit", rates.precopy ? *rates.precopy : 0, err, sizeof(err));
    if (ret >= 0) {
        ret = check_rate("stopcopy_bandwidth_limit", rates.stopcopy ? *rates.stopcopy : 0, err,
                         sizeof(err));
    }
    if (ret >= 0) {
        ret = migration_set_rates(j, &rates, err, sizeof(err));
    }
    reply_migration_or_fail(call, ret, err, j);
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

static int
list_migration(const void *items, size_t i, void *msg)
{
    return convert_migration(&((const MigrationSnapshot *) items)[i], msg);
}

static void
list_migration_done(void *msg)
{
    convert_migration_done(msg);
}

static void
handle_list_migrations(RpcCall *call, const ProtobufCMessage *r _unused_, void *userdata)
{
    static const HandlersList list = {"migrations", sizeof(MigrationMsg),
                                      offsetof(MigrationMsg, msg), list_migration,
                                      list_migration_done};
    VfioMigd__V1__ListMigrationsResponse resp = VFIO_MIGD__V1__LIST_MIGRATIONS_RESPONSE__INIT;
    Manager *m = ((RpcContext *) userdata)->manager;
    MigrationSnapshot *snaps = NULL;
    size_t n = 0;

    if (migration_snapshot_all(m, &snaps, &n) < 0) { /* newest first */
        rpc_call_fail(call, -ENOMEM, "out of memory listing migrations");
        return;
    }
    handlers_reply_list(call, &resp.base, &list, snaps, n);
    migration_snapshots_free(snaps, n);
}

static void
on_file_job_done(MigrationJob *j, void *userdata)
{
    reply_final(userdata, j);
}

/* What Save and Restore share: the checks of the request, then the job, which answers
 * when it ended (on_file_job_done). A subject the API lacks is INVALID_ARGUMENT. */
typedef int (*file_job_start)(Manager *m, const MigrationFileRequest *req, migration_done_cb done,
                              void *userdata, MigrationJob **ret, char *err, size_t err_size);

static void
start_file_job(RpcCall *call, RpcContext *ctx, int subject, const MigrationFileRequest *file,
               file_job_start start)
{
    MigrationJob *j = NULL;
    char err[512] = "";
    int ret;

    if (!handlers_path_ok_or_fail(call, file->path)) {
        return;
    }
    if (subject < 0 || subject >= _MIGRATION_SUBJECT_MAX) {
        rpc_call_fail(call, -EINVAL, "subject %d is not a MigrationSubject (0 any, 1 group, "
                      "2 device)", subject);
        return;
    }
    ret = start(ctx->manager, file, on_file_job_done, call, &j, err, sizeof(err));
    handlers_fail_unless_started(call, ret, err);
}

static void
handle_save(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__SaveRequest *req = REQ(SaveRequest, r);
    MigrationFileRequest file = {.name = req->name, .subject = (MigrationSubject) req->subject,
                                 .path = req->path, .overwrite = req->overwrite,
                                 .resume = req->resume, .force_grouped = req->force_grouped};

    start_file_job(call, userdata, (int) req->subject, &file, migration_save);
}

static void
handle_restore(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__RestoreRequest *req = REQ(RestoreRequest, r);
    MigrationFileRequest file = {.name = req->name, .subject = (MigrationSubject) req->subject,
                                 .path = req->path, .stop = req->stop,
                                 .force_grouped = req->force_grouped};

    start_file_job(call, userdata, (int) req->subject, &file, migration_restore);
}

/* ---- WatchEvents: migration_watch decides what goes out and when; this translates */

/* One WatchEvents stream: the call and the manager whose limits it keeps. */
typedef struct WatchStream {
    RpcCall *call;
    Manager *manager;
    MigrationWatch *watch;
} WatchStream;

/* A progress event replaces the same job's progress still queued (only the newest counts);
 * phase and end events are all kept. A reader that lets more than watch_queue_max events
 * wait is disconnected, with the reason: its queue would otherwise grow for ever. */
static int
on_watch_event(MigrationEventKind kind, const MigrationSnapshot *s, uint64_t unix_ms,
               void *userdata)
{
    WatchStream *ws = userdata;
    VfioMigd__V1__MigrationEvent ev = VFIO_MIGD__V1__MIGRATION_EVENT__INIT;
    unsigned max = ws->manager->watch_queue_max ? ws->manager->watch_queue_max
                                                : MIGRATION_WATCH_DEFAULT_QUEUE;
    MigrationMsg msg;
    size_t n;

    if (convert_migration(s, &msg) < 0) {
        return 0; /* out of memory: the next event tells the news */
    }
    ev.kind = (char *) migration_event_kind_name(kind);
    ev.migration = &msg.msg;
    ev.unix_ms = unix_ms;
    n = rpc_call_stream_send(ws->call, &ev.base, kind == MIGRATION_EVENT_PROGRESS ? s->id : NULL);
    convert_migration_done(&msg);
    if (n <= max) {
        return 0;
    }
    log_warning("A WatchEvents reader fell %zu events behind, over [api] watch_queue_max=%u: "
                "disconnected.", n, max);
    rpc_call_stream_abort(ws->call, -ENOSPC, "watch reader too slow: %zu events queued, the "
                          "limit is %u; read faster, or watch one job (vfio-migctl watch ID), "
                          "or raise [api] watch_queue_max", n, max);
    free(ws);
    return -ENOSPC;
}

static void
on_watch_end(int r, const char *message, void *userdata)
{
    WatchStream *ws = userdata;

    rpc_call_stream_end(ws->call, r, message);
    free(ws);
}

static const MigrationWatchOps watch_ops = {
    .event = on_watch_event,
    .end = on_watch_end,
};

static void
on_watch_cancelled(RpcCall *call, void *userdata)
{
    WatchStream *ws = userdata;

    migration_watch_stop(ws->watch);
    rpc_call_stream_end(call, -ECANCELED, "the client went away");
    free(ws);
}

static void
handle_watch_events(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__MigrationIdRequest *req = REQ(MigrationIdRequest, r);
    RpcContext *ctx = userdata;
    _cleanup_free_ WatchStream *ws = calloc(1, sizeof(*ws));
    char err[256] = "";
    int ret;

    if (!ws) {
        rpc_call_fail(call, -ENOMEM, "out of memory");
        return;
    }
    *ws = (WatchStream){.call = call, .manager = ctx->manager};
    ret = migration_watch_start(ctx->manager, req->id, &watch_ops, ws, &ws->watch, err,
                                sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err[0] ? err : "out of memory");
        return;
    }
    if (rpc_call_stream_begin(call, on_watch_cancelled, ws) < 0) {
        migration_watch_stop(ws->watch);
        rpc_call_stream_end(call, -ESHUTDOWN, "vfio-migd is shutting down");
        return;
    }
    TAKE_PTR(ws); /* freed by whichever of the three callbacks ends the stream */
}

/* ---- compatibility questions: CheckMigration (a dry run), CheckDescriptor */

/* A CompatReport message over @rep, with storage for its mismatches. */
typedef struct ReportMsg {
    VfioMigd__V1__CompatReport msg;
    VfioMigd__V1__CompatMismatch items[COMPAT_MAX_MISMATCHES];
    VfioMigd__V1__CompatMismatch *ptrs[COMPAT_MAX_MISMATCHES];
} ReportMsg;

static void
report_msg(const CompatReport *rep, ReportMsg *out)
{
    vfio_migd__v1__compat_report__init(&out->msg);
    for (unsigned i = 0; i < rep->n; i++) {
        vfio_migd__v1__compat_mismatch__init(&out->items[i]);
        out->items[i].device = (char *) rep->items[i].device;
        out->items[i].field = (char *) rep->items[i].field;
        out->items[i].source = (char *) rep->items[i].source;
        out->items[i].destination = (char *) rep->items[i].destination;
        out->ptrs[i] = &out->items[i];
    }
    out->msg.compatible = rep->total == 0;
    out->msg.total = rep->total;
    out->msg.n_mismatches = rep->n;
    out->msg.mismatches = out->ptrs;
}

static void
on_check_done(int r, const CompatReport *report, const char *error, void *userdata)
{
    RpcCall *call = userdata;
    ReportMsg out;

    if (r < 0) {
        rpc_call_fail(call, r, "%s", error);
        return;
    }
    report_msg(report, &out);
    rpc_call_reply(call, &out.msg.base);
}

static void
handle_check_migration(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__CheckMigrationRequest *req = REQ(CheckMigrationRequest, r);
    RpcContext *ctx = userdata;
    char err[512] = "";
    TlsMode tls = TLS_MODE_PSK;
    int ret;

    if (req->timeout_ms > LIMIT_MAX_MS) {
        rpc_call_fail(call, -EINVAL, "timeout_ms %u is over %u", req->timeout_ms, LIMIT_MAX_MS);
        return;
    }
    ret = tls_from_request(req->tls, ctx->manager->migration_defaults.tls, &tls, err,
                           sizeof(err));
    if (ret >= 0) {
        ret = migration_check(ctx->manager, req->group, req->address, req->token,
                              req->timeout_ms, tls, on_check_done, call, err, sizeof(err));
    }
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
    }
}

/* The request's descriptor as core/compat holds it; -EINVAL with @err for a bad field. */
static int
descriptor_from_request(const VfioMigd__V1__CheckDescriptorRequest *req, CompatDescriptor *ret,
                        char *err, size_t err_size)
{
    ret->n_fields = 0;
    for (size_t i = 0; i < req->n_fields; i++) {
        const VfioMigd__V1__CompatField *f = req->fields[i];
        CompatRule rule = _COMPAT_RULE_INVALID;
        int r;

        for (int k = 0; k < _COMPAT_RULE_MAX; k++) {
            if (strcmp(f->rule, compat_rule_name((CompatRule) k)) == 0) {
                rule = (CompatRule) k;
            }
        }
        r = rule < 0 ? -EINVAL : compat_descriptor_add(ret, f->name, rule, f->value);
        if (r < 0) {
            (void) snprintf(err, err_size, "descriptor field %zu ('%.32s'): %s", i, f->name,
                            rule < 0 ? "the rule is not equal, at_least or info"
                            : r == -EEXIST ? "given twice"
                            : r == -E2BIG ? "too many fields, or a name or value too long"
                                          : "a malformed name or a control character in the value");
            return r == -E2BIG ? -E2BIG : -EINVAL;
        }
    }
    return 0;
}

static void
handle_check_descriptor(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__CheckDescriptorRequest *req = REQ(CheckDescriptorRequest, r);
    Device *d = handlers_find_device_or_fail(call, userdata, req->device);
    _cleanup_free_ CompatDescriptor *src = malloc(sizeof(*src));
    _cleanup_free_ CompatReport *rep = malloc(sizeof(*rep));
    _cleanup_free_ ReportMsg *out = malloc(sizeof(*out));
    char err[512] = "";
    int ret;

    if (!d) {
        return;
    }
    if (!src || !rep || !out) {
        rpc_call_fail(call, -ENOMEM, "out of memory");
        return;
    }
    ret = descriptor_from_request(req, src, err, sizeof(err));
    if (ret >= 0) {
        ret = device_check_descriptor(d, req->migration_flags, req->backend, src, rep, err,
                                      sizeof(err));
    }
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    report_msg(rep, out);
    rpc_call_reply(call, &out->msg.base);
}

#define MIGRATIONS "vfio_migd.v1.MigrationService"

const RpcMethod migration_methods[] = {
    METHOD_V1(MIGRATIONS, PrepareIncoming, prepare_incoming, RPC_MUTATING),
    METHOD_V1_RESP(MIGRATIONS, StartMigration, start_migration, migration_response, RPC_MUTATING),
    METHOD_V1_RESP(MIGRATIONS, CheckMigration, check_migration, compat_report, RPC_MUTATING),
    METHOD_V1_RESP(MIGRATIONS, CheckDescriptor, check_descriptor, compat_report, RPC_READ_ONLY),
    METHOD(MIGRATIONS, Switchover, V1(migration_id_request), V1(migration_response),
           handle_switchover, RPC_MUTATING),
    METHOD(MIGRATIONS, CancelMigration, V1(migration_id_request), V1(migration_response),
           handle_cancel_migration, RPC_MUTATING),
    METHOD_V1_RESP(MIGRATIONS, ResolveMigration, resolve_migration, migration_response,
                   RPC_MUTATING),
    METHOD_V1_RESP(MIGRATIONS, UpdateMigration, update_migration, migration_response, RPC_MUTATING),
    METHOD(MIGRATIONS, GetMigration, V1(migration_id_request), V1(migration_response),
           handle_get_migration, RPC_READ_ONLY),
    METHOD_V1(MIGRATIONS, ListMigrations, list_migrations, RPC_READ_ONLY),
    METHOD_V1_RESP(MIGRATIONS, Save, save, migration_response, RPC_MUTATING),
    METHOD_V1_RESP(MIGRATIONS, Restore, restore, migration_response, RPC_MUTATING),
    METHOD(MIGRATIONS, WatchEvents, V1(migration_id_request), V1(migration_event),
           handle_watch_events, RPC_READ_ONLY | RPC_STREAMING),
};
const size_t migration_methods_count = ELEMENTSOF(migration_methods);
