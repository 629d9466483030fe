/* SPDX-License-Identifier: MIT */
/*
 * follow — the follow/wait engine of vfio-migctl: `migrate --wait` and `watch` follow
 * migrations over time, as the daemon's WatchEvents stream reports them (phase changes and
 * the end at once, progress once a second), and print what changed. Every number they show
 * is the daemon's; this file only decides when to print. Nothing is asked of the daemon
 * between events, except that `migrate --wait` on a terminal refreshes its progress bar with
 * GetMigration. An interrupt (SIGINT, SIGTERM) during a wait stops the waiting, never the
 * migration.
 *
 * The plan of a wait: open the stream, then loop on next_event() (which cli.c's SIGINT and
 * SIGTERM handler ends, see cli_interrupted); each event's migration is
 * the latest form, printed as it changes; the end is the migration's final form.
 */
#include "follow.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "output_migration.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/macro.h"

#define MIGRATION_METHOD(m) "/vfio_migd.v1.MigrationService/" m

/* migrate --wait on a terminal refreshes its bar ten times a second between events: the
 * stream's progress events come once a second, too seldom for a bar that looks alive. */
#define WAIT_REFRESH_MS 100
/* How long a wait between events lasts before the loop looks again (an interrupt ends it
 * sooner, cli_interrupted). */
#define WAIT_CHECK_MS 200
/* watch prints a progress line at most once a second: it is meant for logs, where a line
 * every 100 ms would drown the phase changes. */
#define WATCH_PROGRESS_MS 1000
/* Cells of the progress bar: leaves room for the numbers on an 80-column terminal. */
#define PROGRESS_BAR_WIDTH 16

#define MIGRATION_STATE_ACTIVE "active"
#define MIGRATION_STATE_COMPLETED "completed"

typedef VfioMigd__V1__Migration Migration;

/* ---- waiting (migrate --wait, watch) */

/* One call of a method taking a migration id, reporting nothing: cli_call_raw() rules. */
static int
call_by_id(Cli *cli, const char *method, const char *id,
           VfioMigd__V1__MigrationResponse **ret_resp, RpcError *err)
{
    VfioMigd__V1__MigrationIdRequest req = VFIO_MIGD__V1__MIGRATION_ID_REQUEST__INIT;

    req.id = (char *) id;
    return cli_call_raw(cli, method, &req.base, &vfio_migd__v1__migration_response__descriptor,
                        (ProtobufCMessage **) ret_resp, err);
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
    return cli_stream_open(cli, MIGRATION_METHOD("WatchEvents"), &req.base, ret, err);
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
static CliExit
report_follow_error(Cli *cli, const RpcError *err, const char *id)
{
    json_object *doc = NULL;

    output_progress_clear(stdout);
    if (cli->json && id) {
        doc = json_object_new_object();
        output_json_set(doc, "id", json_object_new_string(id));
    }
    return cli_report_call_error(cli, err, doc);
}

/* The waiting stopped on a signal: say what goes on, print what is known (@last, under
 * --json, unless NULL); exit 1. */
static CliExit
report_interrupted(Cli *cli, json_object *last, const char *id)
{
    output_progress_clear(stdout);
    if (cli->json && last) {
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
    return CLI_EXIT_FAILED;
}

/* "m1 precopy    [######----------]  42% 120 MiB / 285 MiB  85.3 MiB/s  1.42 s" */
static void
show_progress_line(const Migration *m)
{
    char bar[PROGRESS_BAR_WIDTH + 3], moved[80], rate[40], elapsed[32];

    output_progress_line(stdout, "%s %-10s %s %3u%% %s  %s  %s", m->id,
                         output_migration_phase(m->phase),
                         output_progress_bar(m->bytes, m->bytes + m->estimate_remaining,
                                             PROGRESS_BAR_WIDTH, bar, sizeof(bar)),
                         output_migration_percent(m),
                         output_migration_moved(m, moved, sizeof(moved)),
                         output_rate(m->rate, rate, sizeof(rate)),
                         output_duration(m->elapsed_us, elapsed, sizeof(elapsed)));
}

/* The end of migrate --wait: the migration's final form; exit 0 only when it completed. */
static CliExit
print_wait_result(Cli *cli, const Migration *m)
{
    char outcome[1400];
    json_object *o;
    int r;

    if (cli->json) {
        o = output_migration_json(m);
        /* A failure always says why, even when the daemon gave no text. */
        if (!output_migration_is_completed(m) && !m->error[0]) {
            output_json_set(o, "error", json_object_new_string(m->state));
        }
        r = output_json_print(o);
    } else {
        printf("migration %s (%s %s, peer %s) %s\n", m->id, output_migration_role(m->role),
               m->group, m->peer[0] ? m->peer : "-",
               output_migration_outcome(m, outcome, sizeof(outcome)));
        r = output_migration_devices(m, /* in_flight= */ false);
    }
    if (r < 0) {
        return CLI_EXIT_FAILED;
    }
    if (output_migration_is_completed(m)) {
        return CLI_EXIT_OK;
    }
    return cli_fail(cli, "migration %s %s: %s", m->id, m->state[0] ? m->state : "ended",
                    m->error[0] ? m->error : "no reason given");
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

/* After next_event() returned @r: on a terminal a timeout refreshes the bar; a stream that
 * ended without an end event (the job is gone) asks GetMigration how it ended, or learns that
 * it is unknown. 0 or 1 to go on, or a failure described in @err. */
static int
wait_refresh(Cli *cli, const char *id, int r, bool progress, Latest *cur, RpcError *err)
{
    bool ended = r == 0;

    if (r > 0 || (r == -ETIMEDOUT && !progress)) {
        return 0;
    }
    if (r < 0 && r != -ETIMEDOUT) {
        return r;
    }
    r = refresh(cli, id, cur, err);
    if (r >= 0 && ended && output_migration_is_active(cur->m)) {
        err->code = GRPC_STATUS_INTERNAL;
        (void) snprintf(err->message, sizeof(err->message),
                        "the daemon ended the event stream of an active migration");
        return -EPROTO;
    }
    return r;
}

CliExit
follow_migration(Cli *cli, VfioMigd__V1__MigrationResponse **resp)
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
        return CLI_EXIT_FAILED;
    }
    if (output_migration_is_active(cur.m)) {
        r = watch_events_open(cli, id, &s, &err);
    }
    while (r >= 0 && output_migration_is_active(cur.m)) {
        VfioMigd__V1__MigrationEvent *ev = NULL;

        if (progress) {
            show_progress_line(cur.m);
        }
        r = next_event(s, progress ? WAIT_REFRESH_MS : WAIT_CHECK_MS, &ev, &err);
        if (r > 0) {
            latest_set(&cur, &ev->base, ev->migration);
        }
        if (cli_interrupted) {
            return report_interrupted(cli, output_migration_json(cur.m), id);
        }
        r = wait_refresh(cli, id, r, progress, &cur, &err);
    }
    if (r < 0) {
        return report_follow_error(cli, &err, id);
    }
    output_progress_clear(stdout);
    return print_wait_result(cli, cur.m);
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
    json_object *last;         /* its latest JSON form (--json prints it with each event) */
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

/* A line for a migration whose phase or state changed: its first one names its role, group
 * and peer. */
static void
watch_print_change(const Watched *it, const Migration *m)
{
    char outcome[1400];

    print_clock();
    if (!it->printed) {
        printf("%s %s %s, peer %s: ", m->id, output_migration_role(m->role), m->group,
               m->peer[0] ? m->peer : "-");
    } else {
        printf("%s ", m->id);
    }
    if (output_migration_is_active(m)) {
        printf("%s\n", output_migration_phase(m->phase));
    } else {
        printf("%s\n", output_migration_outcome(m, outcome, sizeof(outcome)));
    }
}

/* In the same phase: whether a progress line is due (at most once a second, and only when
 * data moved); marks it as printed. */
static bool
watch_progress_due(Watched *it, const Migration *m, uint64_t now)
{
    if (!output_migration_is_active(m) || now - it->last_progress_ms < WATCH_PROGRESS_MS ||
        m->bytes == it->last_bytes) {
        return false;
    }
    it->last_progress_ms = now;
    it->last_bytes = m->bytes;
    return true;
}

static void
watch_print_progress(const Migration *m)
{
    char moved[80], rate[40], elapsed[32];

    print_clock();
    printf("%s   %s %s (%u%%), %s, %s\n", m->id, output_migration_phase(m->phase),
           output_migration_moved(m, moved, sizeof(moved)), output_migration_percent(m),
           output_rate(m->rate, rate, sizeof(rate)),
           output_duration(m->elapsed_us, elapsed, sizeof(elapsed)));
}

/* --json: the same moments as the text lines, each one JSON object on its own line as it
 * happens (like `kubectl get -w -o json`): {"kind", "unix_ms", "migration"}, kind being the
 * API's "phase", "progress" or "end". */
static int
watch_print_json(const char *kind, const Watched *it)
{
    json_object *o = json_object_new_object();
    struct timespec ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts); /* for people: the wall clock */
    output_json_set(o, "kind", json_object_new_string(kind));
    output_json_set(o, "unix_ms", json_object_new_uint64((uint64_t) ts.tv_sec * 1000 +
                                                         (uint64_t) ts.tv_nsec / 1000000));
    output_json_set(o, "migration", json_object_get(it->last));
    return output_json_print_line(o);
}

/* Prints what changed in @m since @it was last updated; updates @it. */
static int
watch_update(Watch *w, Watched *it, const Migration *m)
{
    uint64_t now = clock_now_ns() / 1000000;
    char *state;

    /* The list taken at the start may be newer than the stream's first events. */
    if (it->ignored || (it->last && m->elapsed_us < it->last_elapsed_us)) {
        return 0;
    }
    json_object_put(it->last);
    it->last = output_migration_json(m);
    it->last_elapsed_us = m->elapsed_us;
    if (it->printed && m->phase == it->phase && strcmp(m->state, it->state) == 0) {
        if (!watch_progress_due(it, m, now)) {
            return 0;
        }
        if (w->cli->json) {
            return watch_print_json("progress", it);
        }
        watch_print_progress(m);
        return 0;
    }
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
        return watch_print_json(output_migration_is_active(m) ? "phase" : "end", it);
    }
    watch_print_change(it, m);
    it->printed = true;
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

/* ListMigrations, reporting nothing: cli_call_raw() rules. */
static int
list_migrations(Cli *cli, VfioMigd__V1__ListMigrationsResponse **ret_resp, RpcError *err)
{
    VfioMigd__V1__ListMigrationsRequest req = VFIO_MIGD__V1__LIST_MIGRATIONS_REQUEST__INIT;

    return cli_call_raw(cli, MIGRATION_METHOD("ListMigrations"), &req.base,
                        &vfio_migd__v1__list_migrations_response__descriptor,
                        (ProtobufCMessage **) ret_resp, err);
}

/* The start of `watch` (all): every migration the daemon has; those that had ended already
 * are never reported. */
static CliExit
watch_list_all(Watch *w)
{
    _cleanup_message_ VfioMigd__V1__ListMigrationsResponse *resp = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};

    if (list_migrations(w->cli, &resp, &err) < 0) {
        return report_follow_error(w->cli, &err, NULL);
    }
    /* Oldest first, so that lines about several migrations come in the order they began. */
    for (size_t i = resp->n_migrations; i-- > 0;) {
        const Migration *m = resp->migrations[i];
        Watched *it = watch_find(w, m->id);

        if (!it) {
            it = watch_add(w, m);
            if (!it) {
                return CLI_EXIT_FAILED;
            }
            /* Finished before the watch began: remembered only so as not to report it. */
            it->ignored = !output_migration_is_active(m);
        }
        if (watch_update(w, it, m) < 0) {
            return CLI_EXIT_FAILED;
        }
    }
    return CLI_GO_ON;
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

/* The end of a watch (--json printed its events already): exit 0 only when all completed. */
static CliExit
watch_finish(Watch *w)
{
    CliExit r = CLI_EXIT_OK;

    for (size_t i = 0; i < w->n_items; i++) {
        const char *state = w->items[i].state;
        json_object *error = NULL;

        if (!w->items[i].ignored && strcmp(state, MIGRATION_STATE_COMPLETED) != 0) {
            (void) json_object_object_get_ex(w->items[i].last, "error", &error);
            r = cli_fail(w->cli, "migration %s %s: %s", w->items[i].id,
                         state[0] ? state : "ended",
                         error ? json_object_get_string(error) : "no reason given");
        }
    }
    return r;
}

/* Follows the events until the one migration (@id) ended, or until none that watch reports
 * is active (all). */
static CliExit
watch_follow(Watch *w, RpcStream *s, const char *id)
{
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};

    while (id || watch_any_active(w)) {
        VfioMigd__V1__MigrationEvent *ev = NULL;
        int r, k = 0;

        (void) fflush(stdout);
        r = next_event(s, WAIT_CHECK_MS, &ev, &err);
        if (r > 0) {
            k = watch_take(w, ev->migration);
            protobuf_c_message_free_unpacked(&ev->base, NULL);
        }
        if (k < 0) {
            return CLI_EXIT_FAILED;
        }
        if (cli_interrupted) {
            return report_interrupted(w->cli, NULL, id); /* --json: the events said it all */
        }
        if (r == 0) {
            break; /* the daemon ends the stream of one migration after its end event */
        }
        if (r < 0 && r != -ETIMEDOUT) {
            return report_follow_error(w->cli, &err, id);
        }
    }
    return CLI_GO_ON;
}

CliExit
follow_watch(Cli *cli, const char *id)
{
    _cleanup_(watch_done) Watch w = {.cli = cli};
    _cleanup_(stream_closep) RpcStream *s = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    CliExit r;

    /* The stream first, then (all) the list: a migration that ends in between has its end
     * event in the stream, or its end in the list. */
    if (watch_events_open(cli, id, &s, &err) < 0) {
        return report_follow_error(cli, &err, id);
    }
    r = id ? CLI_GO_ON : watch_list_all(&w);
    if (r == CLI_GO_ON) {
        r = watch_follow(&w, s, id);
    }
    if (r != CLI_GO_ON) {
        return r;
    }
    if (!id && watch_count_reported(&w) == 0 && !cli->json) {
        printf("no active migrations\n");
    }
    return watch_finish(&w);
}
