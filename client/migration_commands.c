/* SPDX-License-Identifier: MIT */
/*
 * migration_commands — `vfio-migctl incoming|migrate|switchover|cancel|jobs|job|watch` and
 * the group half of `save`/`restore`: one short function per command, each one call to
 * vfio_migd.v1.MigrationService (migrations.proto), printed with output.h.
 *
 * Two commands follow a migration over time: `migrate --wait` and `watch`. They follow the
 * daemon's WatchEvents stream, which brings phase changes and the end at once and progress
 * once a second, and print what changed; every number they show is the daemon's, the loop
 * only decides when to print. Nothing is asked of the daemon between events, except that
 * `migrate --wait` on a terminal refreshes its progress bar with GetMigration. An interrupt
 * (SIGINT, SIGTERM) during such a wait stops the waiting, never the migration.
 *
 * Every Migration message becomes JSON through json_migration() and text through
 * print_migration(), so the keys are the same in every command (docs/cli.md, "Migrations").
 */
#include "migration_commands.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "util/clock.h"
#include "util/macro.h"
#include "util/strutil.h"
#include "vfio_migd/v1/migrations.pb-c.h"

#define MIGRATION_METHOD(m) "/vfio_migd.v1.MigrationService/" m

/* migrate --wait on a terminal refreshes its bar ten times a second between events: the
 * stream's progress events come once a second, too seldom for a bar that looks alive. */
#define WAIT_REFRESH_MS 100
/* How often a wait between events looks whether it was interrupted. */
#define WAIT_CHECK_MS 200
/* watch prints a progress line at most once a second: it is meant for logs, where a line
 * every 100 ms would drown the phase changes. */
#define WATCH_PROGRESS_MS 1000
/* Cells of the progress bar: leaves room for the numbers on an 80-column terminal. */
#define PROGRESS_BAR_WIDTH 16

#define MIGRATION_STATE_ACTIVE "active"
#define MIGRATION_STATE_COMPLETED "completed"

typedef VfioMigd__V1__Migration Migration;
typedef VfioMigd__V1__DeviceProgress DeviceProgress;

/* ---- names */

static const char *const phase_names[] = {
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_UNSPECIFIED] = "unknown",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_WAITING] = "waiting",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_CONNECTING] = "connecting",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_PRECOPY] = "precopy",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_READY] = "ready",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_SWITCHOVER] = "switchover",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_COMPLETING] = "completing",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_COMPLETED] = "completed",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_ROLLING_BACK] = "rolling_back",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_FAILED] = "failed",
    [VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_CANCELLED] = "cancelled",
};
static_assert(ELEMENTSOF(phase_names) ==
                  VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_CANCELLED + 1,
              "phase_names out of sync with MigrationPhase");

static const char *const role_names[] = {
    [VFIO_MIGD__V1__MIGRATION_ROLE__MIGRATION_ROLE_UNSPECIFIED] = "unknown",
    [VFIO_MIGD__V1__MIGRATION_ROLE__MIGRATION_ROLE_SOURCE] = "source",
    [VFIO_MIGD__V1__MIGRATION_ROLE__MIGRATION_ROLE_DESTINATION] = "destination",
    [VFIO_MIGD__V1__MIGRATION_ROLE__MIGRATION_ROLE_SAVE] = "save",
    [VFIO_MIGD__V1__MIGRATION_ROLE__MIGRATION_ROLE_RESTORE] = "restore",
};
static_assert(ELEMENTSOF(role_names) == VFIO_MIGD__V1__MIGRATION_ROLE__MIGRATION_ROLE_RESTORE + 1,
              "role_names out of sync with MigrationRole");

static const char *const subject_names[] = {
    [VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_ANY] = "unknown",
    [VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_GROUP] = "group",
    [VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_DEVICE] = "device",
};

/* Option values as users type them; the index is the protocol's number. */
static const char *const precopy_names[] = {
    [VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_AUTO] = "auto",
    [VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_OFF] = "off",
};
static const char *const switchover_names[] = {
    [VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_AUTO] = "auto",
    [VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_MANUAL] = "manual",
};

/* names[v], or "unknown" for a number this client does not know. */
static const char *
name_of(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t) v < n && names[v] ? names[v] : "unknown";
}

#define PHASE_NAME(p) name_of(phase_names, ELEMENTSOF(phase_names), (int) (p))
#define ROLE_NAME(r) name_of(role_names, ELEMENTSOF(role_names), (int) (r))
#define SUBJECT_NAME(v) name_of(subject_names, ELEMENTSOF(subject_names), (int) (v))
#define PRECOPY_NAME(v) name_of(precopy_names, ELEMENTSOF(precopy_names), (int) (v))
#define SWITCHOVER_NAME(v) name_of(switchover_names, ELEMENTSOF(switchover_names), (int) (v))

static bool
migration_is_active(const Migration *m)
{
    return strcmp(m->state, MIGRATION_STATE_ACTIVE) == 0;
}

static bool
migration_is_completed(const Migration *m)
{
    return strcmp(m->state, MIGRATION_STATE_COMPLETED) == 0;
}

/* A rate from the daemon in whole bytes per second: nobody needs the fraction, and a value
 * that is not a sane number (NaN, negative, beyond uint64) shows as 0. */
static uint64_t
rate_bytes(double rate)
{
    return isfinite(rate) && rate > 0 && rate < 1.8e19 ? (uint64_t) (rate + 0.5) : 0;
}

/* ---- JSON */

static json_object *
json_rate(double rate)
{
    return json_object_new_uint64(rate_bytes(rate));
}

static json_object *
json_device_progress(const DeviceProgress *d)
{
    json_object *o = json_object_new_object();

    output_json_set(o, "id", json_object_new_string(d->id));
    output_json_set(o, "state", output_json_state(d->state));
    output_json_set(o, "bytes", json_object_new_uint64(d->bytes));
    output_json_set(o, "precopy_bytes", json_object_new_uint64(d->precopy_bytes));
    output_json_set(o, "stopcopy_bytes", json_object_new_uint64(d->stopcopy_bytes));
    output_json_set(o, "initial_bytes", json_object_new_uint64(d->initial_bytes));
    output_json_set(o, "dirty_bytes", json_object_new_uint64(d->dirty_bytes));
    output_json_set(o, "rate", json_rate(d->rate));
    output_json_set(o, "estimate_remaining", json_object_new_uint64(d->estimate_remaining));
    output_json_set(o, "done", json_object_new_boolean(d->done));
    output_json_set(o, "error", json_object_new_string(d->error));
    return o;
}

/* The options as the daemon reports them; 0 means "the daemon's default" (migrations.proto). */
static json_object *
json_options(const VfioMigd__V1__MigrationOptions *opt)
{
    json_object *o = json_object_new_object();

    output_json_set(o, "precopy", json_object_new_string(PRECOPY_NAME(opt->precopy)));
    output_json_set(o, "switchover", json_object_new_string(SWITCHOVER_NAME(opt->switchover)));
    output_json_set(o, "max_precopy_ms", json_object_new_uint64(opt->max_precopy_ms));
    output_json_set(o, "downtime_target_ms", json_object_new_uint64(opt->downtime_target_ms));
    output_json_set(o, "bandwidth_limit", json_object_new_uint64(opt->bandwidth_limit));
    output_json_set(o, "timeout_ms", json_object_new_uint64(opt->timeout_ms));
    return o;
}

/* The one JSON form of a migration, used by every command (docs/cli.md). */
static json_object *
json_migration(const Migration *m)
{
    json_object *o = json_object_new_object(), *devs = json_object_new_array();

    for (size_t i = 0; i < m->n_devices; i++) {
        output_json_append(devs, json_device_progress(m->devices[i]));
    }
    output_json_set(o, "id", json_object_new_string(m->id));
    output_json_set(o, "role", json_object_new_string(ROLE_NAME(m->role)));
    output_json_set(o, "subject", json_object_new_string(SUBJECT_NAME(m->subject)));
    output_json_set(o, "group", json_object_new_string(m->group));
    output_json_set(o, "phase", json_object_new_string(PHASE_NAME(m->phase)));
    output_json_set(o, "state", json_object_new_string(m->state));
    output_json_set(o, "peer", json_object_new_string(m->peer));
    output_json_set(o, "bytes", json_object_new_uint64(m->bytes));
    output_json_set(o, "estimate_remaining", json_object_new_uint64(m->estimate_remaining));
    output_json_set(o, "rate", json_rate(m->rate));
    output_json_set(o, "elapsed_ms", output_json_ms(m->elapsed_us));
    output_json_set(o, "precopy_ms", output_json_ms(m->precopy_us));
    output_json_set(o, "downtime_ms", output_json_ms(m->downtime_us));
    if (m->error[0]) {
        output_json_set(o, "error", json_object_new_string(m->error));
    }
    output_json_set(o, "auto_resume", json_object_new_boolean(m->auto_resume));
    output_json_set(o, "started_unix_ms", json_object_new_uint64(m->started_unix_ms));
    if (m->options) {
        output_json_set(o, "options", json_options(m->options));
    }
    output_json_set(o, "devices", devs);
    return o;
}

/* ---- text */

/* "120 MiB / 340 MiB": moved, and moved plus the daemon's estimate of what remains. */
static char *
format_moved(const Migration *m, char *buf, size_t size)
{
    char moved[32], total[32];

    (void) snprintf(buf, size, "%s / %s", strutil_format_bytes(m->bytes, moved, sizeof(moved)),
                    strutil_format_bytes(m->bytes + m->estimate_remaining, total, sizeof(total)));
    return buf;
}

static char *
format_rate(double rate, char *buf, size_t size)
{
    char b[32];

    (void) snprintf(buf, size, "%s/s", strutil_format_bytes(rate_bytes(rate), b, sizeof(b)));
    return buf;
}

/* Percentage of moved in moved + remaining; 0 while nothing is known. */
static unsigned
percent_moved(const Migration *m)
{
    uint64_t total = m->bytes + m->estimate_remaining;

    return total ? (unsigned) ((double) m->bytes * 100.0 / (double) total) : 0;
}

/* Every device's progress: all the columns for a migration in flight (job), the data moved
 * and the outcome for one that ended. */
static int
print_device_table(const Migration *m, bool in_flight)
{
    _cleanup_(output_table_freep) OutputTable *t = NULL;

    t = in_flight ? output_table_new(10, "DEVICE", "STATE", "BYTES", "PRE-COPY", "STOP-COPY",
                                     "INITIAL", "DIRTY", "RATE", "REMAINING", "ERROR")
                  : output_table_new(6, "DEVICE", "STATE", "BYTES", "PRE-COPY", "STOP-COPY",
                                     "ERROR");
    if (!t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->n_devices; i++) {
        const DeviceProgress *d = m->devices[i];
        char bytes[32], pre[32], stop[32], initial[32], dirty[32], rate[40], rem[32];
        const char *error = d->error[0] ? d->error : "-";
        int r;

        (void) strutil_format_bytes(d->bytes, bytes, sizeof(bytes));
        (void) strutil_format_bytes(d->precopy_bytes, pre, sizeof(pre));
        (void) strutil_format_bytes(d->stopcopy_bytes, stop, sizeof(stop));
        if (in_flight) {
            r = output_table_add(t, d->id, output_state_name(d->state), bytes, pre, stop,
                                 strutil_format_bytes(d->initial_bytes, initial, sizeof(initial)),
                                 strutil_format_bytes(d->dirty_bytes, dirty, sizeof(dirty)),
                                 format_rate(d->rate, rate, sizeof(rate)),
                                 d->done ? "done"
                                         : strutil_format_bytes(d->estimate_remaining, rem,
                                                                sizeof(rem)),
                                 error);
        } else {
            r = output_table_add(t, d->id, output_state_name(d->state), bytes, pre, stop, error);
        }
        if (r < 0) {
            return r;
        }
    }
    output_table_print(t, stdout);
    return 0;
}

/* "default" for the 0 that asks for the daemon's own value. */
static const char *
format_option_ms(uint32_t ms, char *buf, size_t size)
{
    if (ms == 0) {
        return "default";
    }
    return output_duration((uint64_t) ms * 1000, buf, size);
}

static void
print_options(const VfioMigd__V1__MigrationOptions *opt)
{
    char maxpre[32], downtime[32], timeout[32], bw[40];

    if (opt->bandwidth_limit) {
        (void) format_rate((double) opt->bandwidth_limit, bw, sizeof(bw));
    } else {
        (void) snprintf(bw, sizeof(bw), "unlimited");
    }
    output_field("options", "precopy %s, switchover %s, max pre-copy %s, downtime target %s, "
                 "bandwidth %s, peer timeout %s", PRECOPY_NAME(opt->precopy),
                 SWITCHOVER_NAME(opt->switchover),
                 format_option_ms(opt->max_precopy_ms, maxpre, sizeof(maxpre)),
                 format_option_ms(opt->downtime_target_ms, downtime, sizeof(downtime)), bw,
                 format_option_ms(opt->timeout_ms, timeout, sizeof(timeout)));
}

/* "key: value" lines and the device table (job, switchover, cancel). */
static int
print_migration(const Migration *m)
{
    char buf[64], started[64];
    time_t t = (time_t) (m->started_unix_ms / 1000);
    struct tm tm;

    output_field("id", "%s", m->id);
    output_field("role", "%s", ROLE_NAME(m->role));
    output_field("group", "%s", m->group);
    output_field("phase", "%s", PHASE_NAME(m->phase));
    output_field("state", "%s", m->state);
    output_field("peer", "%s", m->peer[0] ? m->peer : "-");
    if (m->started_unix_ms && localtime_r(&t, &tm)) {
        (void) strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S %z", &tm);
        output_field("started", "%s", started);
    }
    output_field("bytes", "%s (%llu bytes)", strutil_format_bytes(m->bytes, buf, sizeof(buf)),
                 (unsigned long long) m->bytes);
    output_field("remaining", "%s (estimate)",
                 strutil_format_bytes(m->estimate_remaining, buf, sizeof(buf)));
    output_field("rate", "%s", format_rate(m->rate, buf, sizeof(buf)));
    output_field("elapsed", "%s", output_duration(m->elapsed_us, buf, sizeof(buf)));
    output_field("pre-copy", "%s",
                 m->precopy_us ? output_duration(m->precopy_us, buf, sizeof(buf)) : "-");
    output_field("downtime", "%s",
                 m->downtime_us ? output_duration(m->downtime_us, buf, sizeof(buf)) : "-");
    if (m->role == VFIO_MIGD__V1__MIGRATION_ROLE__MIGRATION_ROLE_DESTINATION) {
        output_field("auto resume", "%s", m->auto_resume ? "yes" : "no");
    }
    if (m->options) {
        print_options(m->options);
    }
    if (m->error[0]) {
        output_field("error", "%s", m->error);
    }
    if (m->n_devices == 0) {
        return 0;
    }
    putchar('\n');
    return print_device_table(m, /* in_flight= */ migration_is_active(m));
}

/* How a finished migration ended, for a line of text: "completed: 340 MiB in 2.31 s
 * (pre-copy 1.20 s, downtime 120 ms)", "failed after 1.20 s: <error>". */
static char *
format_outcome(const Migration *m, char *buf, size_t size)
{
    char bytes[32], elapsed[32], pre[32], down[32];

    (void) output_duration(m->elapsed_us, elapsed, sizeof(elapsed));
    if (migration_is_completed(m)) {
        (void) snprintf(buf, size, "completed: %s in %s (pre-copy %s, downtime %s)",
                        strutil_format_bytes(m->bytes, bytes, sizeof(bytes)), elapsed,
                        output_duration(m->precopy_us, pre, sizeof(pre)),
                        output_duration(m->downtime_us, down, sizeof(down)));
    } else if (strcmp(PHASE_NAME(m->phase), m->state) == 0) {
        (void) snprintf(buf, size, "%s after %s%s%s", m->state, elapsed,
                        m->error[0] ? ": " : "", m->error);
    } else {
        (void) snprintf(buf, size, "%s after %s in phase %s%s%s", m->state, elapsed,
                        PHASE_NAME(m->phase), m->error[0] ? ": " : "", m->error);
    }
    return buf;
}

/* A finished migration that did not complete, on stderr; returns the errno for exit 1. */
static int
report_not_completed(Cli *cli, const Migration *m)
{
    output_error(cli->command->name, "migration %s %s: %s", m->id,
                 m->state[0] ? m->state : "ended", m->error[0] ? m->error : "no reason given");
    return -EREMOTEIO;
}

/* ---- calls */

/* A response's migration, or NULL after reporting a malformed answer. */
static const Migration *
response_migration(Cli *cli, const VfioMigd__V1__MigrationResponse *resp)
{
    if (!resp->migration) {
        output_progress_clear(stdout);
        output_error(cli->command->name, "the daemon's answer has no migration");
        return NULL;
    }
    return resp->migration;
}

/* One call of a method taking a migration id (Switchover, CancelMigration, GetMigration),
 * reporting nothing: commands_call_raw() rules. */
static int
call_by_id(Cli *cli, const char *method, const char *id,
           VfioMigd__V1__MigrationResponse **ret_resp, RpcError *err)
{
    VfioMigd__V1__MigrationIdRequest req = VFIO_MIGD__V1__MIGRATION_ID_REQUEST__INIT;

    req.id = (char *) id;
    return commands_call_raw(cli, method, &req.base,
                             &vfio_migd__v1__migration_response__descriptor,
                             (ProtobufCMessage **) ret_resp, err);
}

/* ---- waiting (migrate --wait, watch) */

static volatile sig_atomic_t wait_interrupted;

static void
on_interrupt(int sig)
{
    (void) sig;
    wait_interrupted = 1;
}

/* From here on SIGINT and SIGTERM end the wait loop (not the process), so that the loop can
 * erase its progress line and say that the migration goes on. */
static void
catch_interrupts(void)
{
    struct sigaction sa = {.sa_handler = on_interrupt};

    (void) sigemptyset(&sa.sa_mask);
    (void) sigaction(SIGINT, &sa, NULL);
    (void) sigaction(SIGTERM, &sa, NULL);
}

/* The latest form of a migration, and the message that owns it (a MigrationResponse or a
 * MigrationEvent). */
typedef struct Latest {
    ProtobufCMessage *owner;
    const Migration *m;
} Latest;

static void
latest_set(Latest *l, ProtobufCMessage *owner, const Migration *m)
{
    if (l->owner) {
        protobuf_c_message_free_unpacked(l->owner, NULL);
    }
    l->owner = owner;
    l->m = m;
}

static void
latest_done(Latest *l)
{
    latest_set(l, NULL, NULL);
}

static void
stream_closep(RpcStream **s)
{
    rpc_stream_close(*s);
}

/* WatchEvents for migration @id, or for every migration when @id is NULL. */
static int
watch_events_open(Cli *cli, const char *id, RpcStream **ret, RpcError *err)
{
    VfioMigd__V1__MigrationIdRequest req = VFIO_MIGD__V1__MIGRATION_ID_REQUEST__INIT;

    req.id = (char *) (id ? id : "");
    return commands_stream_open(cli, MIGRATION_METHOD("WatchEvents"), &req.base, ret, err);
}

/* The next event within @timeout_ms: 1 and *@ret (free it), 0 when the daemon ended the
 * stream, -ETIMEDOUT, or a failure described in @err. */
static int
next_event(RpcStream *s, int timeout_ms, VfioMigd__V1__MigrationEvent **ret, RpcError *err)
{
    int r = rpc_stream_next(s, &vfio_migd__v1__migration_event__descriptor, timeout_ms,
                            (ProtobufCMessage **) ret, err);

    if (r > 0 && !(*ret)->migration) {
        protobuf_c_message_free_unpacked(&(*ret)->base, NULL);
        err->code = GRPC_STATUS_INTERNAL;
        (void) snprintf(err->message, sizeof(err->message),
                        "the daemon sent an event without a migration");
        return -EBADMSG;
    }
    return r;
}

/* A failed call while following a migration (its events, a refresh, the list): the
 * progress line goes, then the usual report. With --json the document names the migration
 * being waited for. */
static int
report_follow_error(Cli *cli, int r, const RpcError *err, const char *id)
{
    json_object *doc = NULL;

    output_progress_clear(stdout);
    if (cli->json && id) {
        doc = json_object_new_object();
        output_json_set(doc, "id", json_object_new_string(id));
    }
    return commands_report_call_error(cli, r, err, doc);
}

/* The waiting stopped on a signal: say what goes on, print what is known; exit 1. */
static int
report_interrupted(Cli *cli, json_object *last, const char *id)
{
    output_progress_clear(stdout);
    if (cli->json) {
        (void) output_json_print(last);
    } else {
        json_object_put(last);
    }
    if (id) {
        output_error(cli->command->name, "interrupted; migration %s goes on (see 'vfio-migctl "
                     "job %s', stop it with 'vfio-migctl cancel %s')", id, id, id);
    } else {
        output_error(cli->command->name, "interrupted; the migrations go on");
    }
    return -EINTR;
}

/* "m1 precopy    [######----------]  42% 120 MiB / 285 MiB  85.3 MiB/s  1.42 s" */
static void
show_progress_line(const Migration *m)
{
    char bar[PROGRESS_BAR_WIDTH + 3], moved[80], rate[40], elapsed[32];

    output_progress_line(stdout, "%s %-10s %s %3u%% %s  %s  %s", m->id, PHASE_NAME(m->phase),
                         output_progress_bar(m->bytes, m->bytes + m->estimate_remaining,
                                             PROGRESS_BAR_WIDTH, bar, sizeof(bar)),
                         percent_moved(m), format_moved(m, moved, sizeof(moved)),
                         format_rate(m->rate, rate, sizeof(rate)),
                         output_duration(m->elapsed_us, elapsed, sizeof(elapsed)));
}

/* The end of migrate --wait: the migration's final form; exit 0 only when it completed. */
static int
print_wait_result(Cli *cli, const Migration *m)
{
    char outcome[1400];
    json_object *o;
    int r;

    if (cli->json) {
        o = json_migration(m);
        /* A failure always says why, even when the daemon gave no text. */
        if (!migration_is_completed(m) && !m->error[0]) {
            output_json_set(o, "error", json_object_new_string(m->state));
        }
        r = output_json_print(o);
        if (r < 0) {
            return r;
        }
    } else {
        printf("migration %s (%s %s, peer %s) %s\n", m->id, ROLE_NAME(m->role), m->group,
               m->peer[0] ? m->peer : "-", format_outcome(m, outcome, sizeof(outcome)));
        r = print_device_table(m, /* in_flight= */ false);
        if (r < 0) {
            return r;
        }
    }
    return migration_is_completed(m) ? 0 : report_not_completed(cli, m);
}

/* GetMigration into @cur. */
static int
refresh(Cli *cli, const char *id, Latest *cur, RpcError *err)
{
    VfioMigd__V1__MigrationResponse *next = NULL;
    int r = call_by_id(cli, MIGRATION_METHOD("GetMigration"), id, &next, err);

    if (r >= 0 && !next->migration) {
        err->code = GRPC_STATUS_INTERNAL;
        (void) snprintf(err->message, sizeof(err->message),
                        "the daemon's answer has no migration");
        r = -EBADMSG;
    }
    if (r < 0) {
        if (next) {
            protobuf_c_message_free_unpacked(&next->base, NULL);
        }
        return r;
    }
    latest_set(cur, &next->base, next->migration);
    return 0;
}

/* Follows the migration's events until it is no longer active, with a progress line on a
 * terminal. Takes *@resp (StartMigration's answer). */
static int
migrate_wait(Cli *cli, VfioMigd__V1__MigrationResponse **resp)
{
    _cleanup_(latest_done) Latest cur = {};
    _cleanup_(stream_closep) RpcStream *s = NULL;
    _cleanup_free_ char *id = strdup((*resp)->migration->id);
    bool progress = !cli->json && isatty(STDOUT_FILENO);
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    int r = 0;

    latest_set(&cur, &(*resp)->base, (*resp)->migration);
    *resp = NULL;
    if (!id) {
        return -ENOMEM;
    }
    catch_interrupts();
    if (migration_is_active(cur.m)) {
        r = watch_events_open(cli, id, &s, &err);
    }
    while (r >= 0 && migration_is_active(cur.m)) {
        VfioMigd__V1__MigrationEvent *ev = NULL;

        if (progress) {
            show_progress_line(cur.m);
        }
        r = next_event(s, progress ? WAIT_REFRESH_MS : WAIT_CHECK_MS, &ev, &err);
        if (r > 0) {
            latest_set(&cur, &ev->base, ev->migration);
        }
        if (wait_interrupted) {
            return report_interrupted(cli, json_migration(cur.m), id);
        }
        if (r == 0 || (r == -ETIMEDOUT && progress)) {
            /* The bar's refresh; or the stream ended without an end event (the job is gone):
             * GetMigration says how it ended, or that it is unknown. */
            bool ended = r == 0;

            r = refresh(cli, id, &cur, &err);
            if (r >= 0 && ended && migration_is_active(cur.m)) {
                err.code = GRPC_STATUS_INTERNAL;
                (void) snprintf(err.message, sizeof(err.message),
                                "the daemon ended the event stream of an active migration");
                r = -EPROTO;
            }
        } else if (r == -ETIMEDOUT) {
            r = 0;
        }
    }
    if (r < 0) {
        return report_follow_error(cli, r, &err, id);
    }
    output_progress_clear(stdout);
    return print_wait_result(cli, cur.m);
}

/* ---- parsing */

enum {
    OPT_LISTEN = OPT_COMMAND_FIRST + 64,
    OPT_RESUME_AFTER,
    OPT_TIMEOUT_MS,
    OPT_TO,
    OPT_TOKEN,
    OPT_PRECOPY,
    OPT_SWITCHOVER,
    OPT_MAX_PRECOPY_MS,
    OPT_DOWNTIME_MS,
    OPT_BANDWIDTH,
    OPT_PEER_TIMEOUT_MS,
    OPT_WAIT,
};

/* A number of milliseconds as the protocol carries it (uint32; 0 = the daemon's default). */
static int
parse_ms(Cli *cli, const char *option, const char *arg, uint32_t *ret)
{
    long long v;

    if (strutil_parse_int_bounded(arg, 0, UINT32_MAX, &v) < 0) {
        return commands_usage_error(cli, "%s: '%s' is not a number of milliseconds from 0 to "
                                    "%u", option, arg, UINT32_MAX);
    }
    *ret = (uint32_t) v;
    return 0;
}

/* "100M", "1G/s", "500000": bytes per second, K/M/G binary multiples (strutil_parse_rate). */
static int
parse_bandwidth(Cli *cli, const char *arg, uint64_t *ret)
{
    if (strutil_parse_rate(arg, ret) < 0) {
        return commands_usage_error(cli, "--bandwidth: '%s' is not a rate in bytes per second "
                                    "(e.g. 500000, 64K, 100M, 1G; 0: the daemon's default)", arg);
    }
    return 0;
}

/* @arg as an index of @names (the protocol's number). */
static int
parse_choice(Cli *cli, const char *option, const char *arg, const char *const *names, size_t n,
             int *ret)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(arg, names[i]) == 0) {
            *ret = (int) i;
            return 0;
        }
    }
    return commands_usage_error(cli, "%s: unknown value '%s' (%s or %s)", option, arg, names[0],
                                names[1]);
}

static int
require_value(Cli *cli, const char *option, const char *value)
{
    if (!value) {
        return commands_usage_error(cli, "%s is required; usage: vfio-migctl %s %s", option,
                                    cli->command->name, cli->command->usage);
    }
    if (!*value) {
        return commands_usage_error(cli, "%s must not be empty", option);
    }
    return 0;
}

/* ---- incoming */

static int
incoming_parse(Cli *cli, int argc, char **argv, VfioMigd__V1__PrepareIncomingRequest *req)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"resume", no_argument, NULL, OPT_RESUME_AFTER},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
        COMMANDS_GLOBAL_OPTIONS,
        {},
    };
    const char *listen = NULL;
    int c, r;

    commands_parse_begin();
    while ((c = commands_next_option(cli, argc, argv, opts)) > 0) {
        if (c == OPT_LISTEN) {
            listen = optarg;
        } else if (c == OPT_RESUME_AFTER) {
            req->auto_resume = true;
        } else {
            r = parse_ms(cli, "--timeout-ms", optarg, &req->timeout_ms);
            if (r < 0) {
                return r;
            }
        }
    }
    if (c < 0) {
        return c;
    }
    r = commands_check_positional(cli, argc, 1, 1);
    if (r < 0) {
        return r;
    }
    r = require_value(cli, "--listen", listen);
    if (r < 0) {
        return r;
    }
    req->group = argv[optind];
    req->listen = (char *) listen;
    return 0;
}

/* @s as one shell word: as is when it is plain, else in single quotes. */
static void
print_shell_word(const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "_.:/@%+=,-") == strlen(s)) {
        fputs(s, stdout);
        return;
    }
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'') {
            fputs("'\\''", stdout);
        } else {
            putchar(*s);
        }
    }
    putchar('\'');
}

int
commands_incoming(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__PrepareIncomingRequest req = VFIO_MIGD__V1__PREPARE_INCOMING_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__PrepareIncomingResponse *resp = NULL;
    const Migration *m;
    json_object *o;
    int r;

    r = incoming_parse(cli, argc, argv, &req);
    if (r < 0) {
        return r;
    }
    r = commands_call(cli, MIGRATION_METHOD("PrepareIncoming"), &req.base,
                      &vfio_migd__v1__prepare_incoming_response__descriptor, NULL,
                      (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    m = resp->migration;
    if (!m) {
        output_error(cli->command->name, "the daemon's answer has no migration");
        return -EBADMSG;
    }
    if (cli->json) {
        o = json_migration(m);
        output_json_set(o, "address", json_object_new_string(resp->address));
        output_json_set(o, "token", json_object_new_string(resp->token));
        return output_json_print(o);
    }
    output_field("id", "%s", m->id);
    output_field("address", "%s", resp->address);
    output_field("token", "%s", resp->token);
    printf("\nGroup %s waits for the source (phase %s). On the source, run:\n  vfio-migctl "
           "migrate ", m->group, PHASE_NAME(m->phase));
    print_shell_word(m->group);
    fputs(" --to ", stdout);
    print_shell_word(resp->address);
    fputs(" --token ", stdout);
    print_shell_word(resp->token);
    putchar('\n');
    return 0;
}

/* ---- migrate */

static int
migrate_option(Cli *cli, int c, VfioMigd__V1__StartMigrationRequest *req, bool *wait)
{
    VfioMigd__V1__MigrationOptions *opt = req->options;
    int v = 0, r;

    switch (c) {
    case OPT_TO:
        req->address = optarg;
        return 0;
    case OPT_TOKEN:
        req->token = optarg;
        return 0;
    case OPT_PRECOPY:
        r = parse_choice(cli, "--precopy", optarg, precopy_names, ELEMENTSOF(precopy_names), &v);
        if (r < 0) {
            return r;
        }
        opt->precopy = (VfioMigd__V1__PrecopyMode) v;
        return 0;
    case OPT_SWITCHOVER:
        r = parse_choice(cli, "--switchover", optarg, switchover_names,
                         ELEMENTSOF(switchover_names), &v);
        if (r < 0) {
            return r;
        }
        opt->switchover = (VfioMigd__V1__SwitchoverMode) v;
        return 0;
    case OPT_MAX_PRECOPY_MS:
        return parse_ms(cli, "--max-precopy-ms", optarg, &opt->max_precopy_ms);
    case OPT_DOWNTIME_MS:
        return parse_ms(cli, "--downtime-ms", optarg, &opt->downtime_target_ms);
    case OPT_PEER_TIMEOUT_MS:
        return parse_ms(cli, "--peer-timeout-ms", optarg, &opt->timeout_ms);
    case OPT_BANDWIDTH:
        return parse_bandwidth(cli, optarg, &opt->bandwidth_limit);
    case OPT_WAIT:
        *wait = true;
        return 0;
    default:
        return -EINVAL; /* not in the table below */
    }
}

/* Fills @req (whose options point to a zeroed MigrationOptions) from argv. */
static int
migrate_parse(Cli *cli, int argc, char **argv, VfioMigd__V1__StartMigrationRequest *req,
              bool *wait)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, OPT_TO},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"precopy", required_argument, NULL, OPT_PRECOPY},
        {"switchover", required_argument, NULL, OPT_SWITCHOVER},
        {"max-precopy-ms", required_argument, NULL, OPT_MAX_PRECOPY_MS},
        {"downtime-ms", required_argument, NULL, OPT_DOWNTIME_MS},
        {"bandwidth", required_argument, NULL, OPT_BANDWIDTH},
        {"peer-timeout-ms", required_argument, NULL, OPT_PEER_TIMEOUT_MS},
        {"wait", no_argument, NULL, OPT_WAIT},
        COMMANDS_GLOBAL_OPTIONS,
        {},
    };
    int c, r;

    req->address = NULL;
    req->token = NULL;
    commands_parse_begin();
    while ((c = commands_next_option(cli, argc, argv, opts)) > 0) {
        r = migrate_option(cli, c, req, wait);
        if (r < 0) {
            return r;
        }
    }
    if (c < 0) {
        return c;
    }
    r = commands_check_positional(cli, argc, 1, 1);
    if (r < 0) {
        return r;
    }
    r = require_value(cli, "--to", req->address);
    if (r < 0) {
        return r;
    }
    r = require_value(cli, "--token", req->token);
    if (r < 0) {
        return r;
    }
    req->group = argv[optind];
    return 0;
}

int
commands_migrate(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__StartMigrationRequest req = VFIO_MIGD__V1__START_MIGRATION_REQUEST__INIT;
    VfioMigd__V1__MigrationOptions options = VFIO_MIGD__V1__MIGRATION_OPTIONS__INIT;
    _cleanup_message_ VfioMigd__V1__MigrationResponse *resp = NULL;
    const Migration *m;
    bool wait = false;
    int r;

    req.options = &options;
    r = migrate_parse(cli, argc, argv, &req, &wait);
    if (r < 0) {
        return r;
    }
    r = commands_call(cli, MIGRATION_METHOD("StartMigration"), &req.base,
                      &vfio_migd__v1__migration_response__descriptor, NULL,
                      (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    m = response_migration(cli, resp);
    if (!m) {
        return -EBADMSG;
    }
    if (wait) {
        return migrate_wait(cli, &resp);
    }
    if (cli->json) {
        return output_json_print(json_migration(m));
    }
    printf("%s\n", m->id);
    return 0;
}

/* ---- switchover, cancel, job, jobs */

/* A command that is one call by id and prints the migration it gets back. */
static int
migration_by_id(Cli *cli, int argc, char **argv, const char *method)
{
    _cleanup_message_ VfioMigd__V1__MigrationResponse *resp = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    const Migration *m;
    int r;

    r = commands_parse_plain(cli, argc, argv, 1, 1);
    if (r < 0) {
        return r;
    }
    r = call_by_id(cli, method, argv[optind], &resp, &err);
    if (r < 0) {
        return commands_report_call_error(cli, r, &err, NULL);
    }
    m = response_migration(cli, resp);
    if (!m) {
        return -EBADMSG;
    }
    if (cli->json) {
        return output_json_print(json_migration(m));
    }
    return print_migration(m);
}

int
commands_switchover(Cli *cli, int argc, char **argv)
{
    return migration_by_id(cli, argc, argv, MIGRATION_METHOD("Switchover"));
}

int
commands_cancel(Cli *cli, int argc, char **argv)
{
    return migration_by_id(cli, argc, argv, MIGRATION_METHOD("CancelMigration"));
}

int
commands_job(Cli *cli, int argc, char **argv)
{
    return migration_by_id(cli, argc, argv, MIGRATION_METHOD("GetMigration"));
}

/* ListMigrations, reporting nothing: commands_call_raw() rules. */
static int
list_migrations(Cli *cli, VfioMigd__V1__ListMigrationsResponse **ret_resp, RpcError *err)
{
    VfioMigd__V1__ListMigrationsRequest req = VFIO_MIGD__V1__LIST_MIGRATIONS_REQUEST__INIT;

    return commands_call_raw(cli, MIGRATION_METHOD("ListMigrations"), &req.base,
                             &vfio_migd__v1__list_migrations_response__descriptor,
                             (ProtobufCMessage **) ret_resp, err);
}

static int
print_jobs(const VfioMigd__V1__ListMigrationsResponse *resp)
{
    _cleanup_(output_table_freep) OutputTable *t = NULL;

    t = output_table_new(8, "ID", "ROLE", "GROUP", "PHASE", "STATE", "BYTES", "ELAPSED", "PEER");
    if (!t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < resp->n_migrations; i++) {
        const Migration *m = resp->migrations[i];
        char bytes[32], elapsed[32];

        if (output_table_add(t, m->id, ROLE_NAME(m->role), m->group, PHASE_NAME(m->phase),
                             m->state, strutil_format_bytes(m->bytes, bytes, sizeof(bytes)),
                             output_duration(m->elapsed_us, elapsed, sizeof(elapsed)),
                             m->peer[0] ? m->peer : "-") < 0) {
            return -ENOMEM;
        }
    }
    output_table_print(t, stdout);
    return 0;
}

int
commands_jobs(Cli *cli, int argc, char **argv)
{
    _cleanup_message_ VfioMigd__V1__ListMigrationsResponse *resp = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    json_object *a;
    int r;

    r = commands_parse_plain(cli, argc, argv, 0, 0);
    if (r < 0) {
        return r;
    }
    r = list_migrations(cli, &resp, &err);
    if (r < 0) {
        return commands_report_call_error(cli, r, &err, NULL);
    }
    if (cli->json) {
        a = json_object_new_array();
        for (size_t i = 0; i < resp->n_migrations; i++) {
            output_json_append(a, json_migration(resp->migrations[i]));
        }
        return output_json_print(a);
    }
    return print_jobs(resp);
}

/* ---- watch */

/* What watch last printed about one migration. */
typedef struct Watched {
    char *id;
    bool ignored;              /* had finished before the watch began: never reported */
    bool printed;              /* its first line (with role, group, peer) is out */
    VfioMigd__V1__MigrationPhase phase;
    char *state;
    uint64_t last_progress_ms; /* clock_now_ns() / 1000000 at its last progress line */
    uint64_t last_bytes;
    uint64_t last_elapsed_us;  /* of the form last taken: an older one is stale */
    json_object *last;         /* its latest JSON form (--json prints these at the end) */
} Watched;

typedef struct Watch {
    Cli *cli;
    Watched *items;
    size_t n_items;
} Watch;

static void
watch_done(Watch *w)
{
    for (size_t i = 0; i < w->n_items; i++) {
        free(w->items[i].id);
        free(w->items[i].state);
        json_object_put(w->items[i].last);
    }
    free(w->items);
    w->items = NULL;
    w->n_items = 0;
}

static Watched *
watch_find(Watch *w, const char *id)
{
    for (size_t i = 0; i < w->n_items; i++) {
        if (strcmp(w->items[i].id, id) == 0) {
            return &w->items[i];
        }
    }
    return NULL;
}

/* Starts following @m. NULL when out of memory. */
static Watched *
watch_add(Watch *w, const Migration *m)
{
    Watched *items = realloc(w->items, (w->n_items + 1) * sizeof(*items));
    Watched *it;

    if (!items) {
        return NULL;
    }
    w->items = items;
    it = &items[w->n_items];
    *it = (Watched) {.id = strdup(m->id), .state = strdup("")};
    if (!it->id || !it->state) {
        free(it->id);
        free(it->state);
        return NULL;
    }
    w->n_items++;
    return it;
}

/* "12:03:04 " */
static void
print_clock(void)
{
    char buf[16];
    time_t t = time(NULL);
    struct tm tm;

    if (localtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%H:%M:%S ", &tm) > 0) {
        fputs(buf, stdout);
    }
}

/* Prints what changed in @m since @it was last updated; updates @it. */
static int
watch_update(Watch *w, Watched *it, const Migration *m)
{
    char outcome[1400], moved[80], rate[40], elapsed[32];
    uint64_t now = clock_now_ns() / 1000000;
    char *state;

    /* The list taken at the start may be newer than the stream's first events. */
    if (it->ignored || (it->last && m->elapsed_us < it->last_elapsed_us)) {
        return 0;
    }
    json_object_put(it->last);
    it->last = json_migration(m);
    it->last_elapsed_us = m->elapsed_us;
    if (!it->printed || m->phase != it->phase || strcmp(m->state, it->state) != 0) {
        state = strdup(m->state);
        if (!state) {
            return -ENOMEM;
        }
        free(it->state);
        it->state = state;
        it->phase = m->phase;
        it->last_progress_ms = now; /* the next progress line a second after this one */
        if (w->cli->json) {
            it->printed = true;
            return 0;
        }
        print_clock();
        if (!it->printed) {
            printf("%s %s %s, peer %s: ", m->id, ROLE_NAME(m->role), m->group,
                   m->peer[0] ? m->peer : "-");
            it->printed = true;
        } else {
            printf("%s ", m->id);
        }
        if (migration_is_active(m)) {
            printf("%s\n", PHASE_NAME(m->phase));
        } else {
            printf("%s\n", format_outcome(m, outcome, sizeof(outcome)));
        }
        return 0;
    }
    /* The same phase: a progress line at most once a second, and only when data moved. */
    if (w->cli->json || !migration_is_active(m) || now - it->last_progress_ms < WATCH_PROGRESS_MS ||
        m->bytes == it->last_bytes) {
        return 0;
    }
    it->last_progress_ms = now;
    it->last_bytes = m->bytes;
    print_clock();
    printf("%s   %s %s (%u%%), %s, %s\n", m->id, PHASE_NAME(m->phase),
           format_moved(m, moved, sizeof(moved)), percent_moved(m),
           format_rate(m->rate, rate, sizeof(rate)),
           output_duration(m->elapsed_us, elapsed, sizeof(elapsed)));
    return 0;
}

/* An event's migration: followed from now on unless it was ignored. */
static int
watch_take(Watch *w, const Migration *m)
{
    Watched *it = watch_find(w, m->id);

    if (!it) {
        it = watch_add(w, m);
        if (!it) {
            return -ENOMEM;
        }
    }
    return watch_update(w, it, m);
}

/* Whether a migration that watch reports is still active. */
static bool
watch_any_active(const Watch *w)
{
    for (size_t i = 0; i < w->n_items; i++) {
        if (!w->items[i].ignored && strcmp(w->items[i].state, MIGRATION_STATE_ACTIVE) == 0) {
            return true;
        }
    }
    return false;
}

/* The start of `watch` (all): every migration the daemon has; those that had ended already
 * are never reported. */
static int
watch_list_all(Watch *w)
{
    _cleanup_message_ VfioMigd__V1__ListMigrationsResponse *resp = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    int r;

    r = list_migrations(w->cli, &resp, &err);
    if (r < 0) {
        return report_follow_error(w->cli, r, &err, NULL);
    }
    /* Oldest first, so that lines about several migrations come in the order they began. */
    for (size_t i = resp->n_migrations; i-- > 0;) {
        const Migration *m = resp->migrations[i];
        Watched *it = watch_find(w, m->id);

        if (!it) {
            it = watch_add(w, m);
            if (!it) {
                return -ENOMEM;
            }
            /* Finished before the watch began: remembered only so as not to report it. */
            it->ignored = !migration_is_active(m);
        }
        r = watch_update(w, it, m);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static size_t
watch_count_reported(const Watch *w)
{
    size_t n = 0;

    for (size_t i = 0; i < w->n_items; i++) {
        n += !w->items[i].ignored;
    }
    return n;
}

/* The latest forms as the JSON document: the migration, or the array of those reported. */
static json_object *
watch_last_doc(Watch *w, bool one)
{
    json_object *a;

    if (one) {
        return w->n_items ? json_object_get(w->items[0].last) : NULL;
    }
    a = json_object_new_array();
    for (size_t i = 0; i < w->n_items; i++) {
        if (!w->items[i].ignored) {
            output_json_append(a, json_object_get(w->items[i].last));
        }
    }
    return a;
}

/* The end of a watch: --json prints the final forms; exit 0 only when all completed. */
static int
watch_finish(Watch *w, bool one)
{
    json_object *doc = NULL;
    int r = 0;

    if (w->cli->json) {
        doc = watch_last_doc(w, one);
        r = output_json_print(doc);
        if (r < 0) {
            return r;
        }
    }
    for (size_t i = 0; i < w->n_items; i++) {
        const char *state = w->items[i].state;

        json_object *error = NULL;

        if (!w->items[i].ignored && strcmp(state, MIGRATION_STATE_COMPLETED) != 0) {
            (void) json_object_object_get_ex(w->items[i].last, "error", &error);
            output_error(w->cli->command->name, "migration %s %s: %s", w->items[i].id,
                         state[0] ? state : "ended",
                         error ? json_object_get_string(error) : "no reason given");
            r = -EREMOTEIO;
        }
    }
    return r;
}

/* Follows the events until the one migration (@id) ended, or until none that watch reports
 * is active (all). */
static int
watch_follow(Watch *w, RpcStream *s, const char *id)
{
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};

    while (id || watch_any_active(w)) {
        VfioMigd__V1__MigrationEvent *ev = NULL;
        int r;

        (void) fflush(stdout);
        r = next_event(s, WAIT_CHECK_MS, &ev, &err);
        if (r > 0) {
            int k = watch_take(w, ev->migration);

            protobuf_c_message_free_unpacked(&ev->base, NULL);
            if (k < 0) {
                return k;
            }
        }
        if (wait_interrupted) {
            return report_interrupted(w->cli, watch_last_doc(w, id != NULL), id);
        }
        if (r == 0) {
            break; /* the daemon ends the stream of one migration after its end event */
        }
        if (r < 0 && r != -ETIMEDOUT) {
            return report_follow_error(w->cli, r, &err, id);
        }
    }
    return 0;
}

int
commands_watch(Cli *cli, int argc, char **argv)
{
    _cleanup_(watch_done) Watch w = {.cli = cli};
    _cleanup_(stream_closep) RpcStream *s = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    const char *id;
    int r;

    r = commands_parse_plain(cli, argc, argv, 0, 1);
    if (r < 0) {
        return r;
    }
    id = optind < argc ? argv[optind] : NULL;
    catch_interrupts();
    /* The stream first, then (all) the list: a migration that ends in between has its end
     * event in the stream, or its end in the list. */
    r = watch_events_open(cli, id, &s, &err);
    if (r < 0) {
        return report_follow_error(cli, r, &err, id);
    }
    r = id ? 0 : watch_list_all(&w);
    if (r >= 0) {
        r = watch_follow(&w, s, id);
    }
    if (r < 0) {
        return r;
    }
    if (!id && watch_count_reported(&w) == 0 && !cli->json) {
        printf("no active migrations\n");
    }
    return watch_finish(&w, id != NULL);
}

/* ---- save and restore (commands.c parses them) */

/* The group's state when every device is in the same one, else "mixed" (as `group state`
 * prints a group whose devices differ). */
static const char *
group_state_name(const Migration *m)
{
    if (m->n_devices == 0) {
        return "unknown";
    }
    for (size_t i = 1; i < m->n_devices; i++) {
        if (m->devices[i]->state != m->devices[0]->state) {
            return "mixed";
        }
    }
    return output_state_name(m->devices[0]->state);
}

static bool
is_device_transfer(const Migration *m)
{
    return m->subject == VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_DEVICE &&
           m->n_devices == 1;
}

/* The JSON of save/restore. A device: "id" is the device, "state" and "arcs" are its own.
 * A group: "group", "id" is the migration's. Both: "path", "bytes", "elapsed_ms" and the
 * whole migration under "migration". */
static json_object *
json_transfer(const Migration *m, const char *path)
{
    json_object *o = json_object_new_object();

    if (is_device_transfer(m)) {
        const DeviceProgress *d = m->devices[0];

        output_json_set(o, "id", json_object_new_string(d->id));
        output_json_set(o, "state", output_json_state(d->state));
        output_json_set(o, "arcs", output_json_arcs(d->arcs, d->n_arcs));
    } else {
        output_json_set(o, "group", json_object_new_string(m->group));
        output_json_set(o, "id", json_object_new_string(m->id));
        output_json_set(o, "state", json_object_new_string(group_state_name(m)));
    }
    output_json_set(o, "path", json_object_new_string(path));
    output_json_set(o, "bytes", json_object_new_uint64(m->bytes));
    output_json_set(o, "elapsed_ms", output_json_ms(m->elapsed_us));
    output_json_set(o, "migration", json_migration(m));
    return o;
}

static int
print_transfer(const char *verb, const Migration *m, const char *path)
{
    bool device = is_device_transfer(m);
    char size[32], time[32];

    printf("%s %s%s %s '%s': %s (%llu bytes) in %s, state %s", verb, device ? "" : "group ",
           device ? m->devices[0]->id : m->group, strcmp(verb, "saved") == 0 ? "to" : "from",
           path, strutil_format_bytes(m->bytes, size, sizeof(size)), (unsigned long long) m->bytes,
           output_duration(m->elapsed_us, time, sizeof(time)),
           device ? output_state_name(m->devices[0]->state) : group_state_name(m));
    printf(" (%s)\n", m->id);
    if (device) {
        printf("arcs: ");
        output_arc_chain(stdout, m->devices[0]->arcs, m->devices[0]->n_arcs);
        putchar('\n');
        return 0;
    }
    return print_device_table(m, /* in_flight= */ false);
}

int
commands_transfer(Cli *cli, const char *method, const ProtobufCMessage *req, const char *verb,
                  const char *path)
{
    _cleanup_message_ VfioMigd__V1__MigrationResponse *resp = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    char full[96];
    json_object *doc = NULL;
    int r;

    (void) snprintf(full, sizeof(full), MIGRATION_METHOD("%s"), method);
    r = commands_call_raw(cli, full, req, &vfio_migd__v1__migration_response__descriptor,
                          (ProtobufCMessage **) &resp, &err);
    if (r >= 0) {
        if (!response_migration(cli, resp)) {
            return -EBADMSG;
        }
        if (cli->json) {
            return output_json_print(json_transfer(resp->migration, path));
        }
        return print_transfer(verb, resp->migration, path);
    }
    /* A failed save or restore may say where every device ended: show it, then the error. */
    if (resp && resp->migration && cli->json) {
        doc = json_transfer(resp->migration, path);
    } else if (resp && resp->migration && !is_device_transfer(resp->migration)) {
        (void) print_migration(resp->migration);
    }
    return commands_report_call_error(cli, r, &err, doc);
}
