/* SPDX-License-Identifier: MIT */
/*
 * migration_watch — see migration_watch.h.
 *
 * The plan: a watch is a manager listener plus a loop timer. A phase change that does not end
 * a job is sent from the listener at once; the timer, started at 0 by every change and
 * otherwise ticking every WATCH_TICK_MS, sends the "end" events (on the next turn, when the
 * job has its final error and totals) and paces the "progress" events.
 */
#include "migration_watch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "manager.h"
#include "util/array.h"
#include "util/clock.h"
#include "util/macro.h"

#define WATCH_TICK_MS 200 /* how often progress is looked at; phases never wait for it */

static const char *const event_kind_names[_MIGRATION_EVENT_MAX] = {
    [MIGRATION_EVENT_PHASE] = "phase",
    [MIGRATION_EVENT_PROGRESS] = "progress",
    [MIGRATION_EVENT_END] = "end",
};

/* What one watched migration has been sent. */
typedef struct WatchSeen {
    char id[MIGRATION_ID_MAX];
    MigrationPhase phase; /* PHASE_NEW: nothing sent yet */
    uint64_t last_ns;     /* when the last event went */
    bool ended;
} WatchSeen;

struct MigrationWatch {
    MigrationListener listener; /* first: the callback gets it back as the watch */
    Manager *manager;
    const MigrationWatchOps *ops;
    void *userdata;
    char id[MIGRATION_ID_MAX];  /* "" = every migration */
    uv_timer_t timer;
    /* The watched jobs not yet ended: at most the manager's active jobs, so no bound of its
     * own (a fixed one would drop the jobs beyond it without a word). */
    WatchSeen *seen;
    size_t n_seen, allocated_seen;
    bool stopped;
};

DEFINE_NAME_LOOKUP(migration_event_kind_name, MigrationEventKind, event_kind_names, NULL);

static void on_watch_tick(uv_timer_t *t);

static void
on_watch_closed(uv_handle_t *h)
{
    MigrationWatch *w = h->data;

    free(w->seen);
    free(w);
}

void
migration_watch_stop(MigrationWatch *w)
{
    if (w->stopped) {
        return;
    }
    w->stopped = true;
    w->manager->n_watches--;
    manager_remove_listener(w->manager, &w->listener);
    uv_close((uv_handle_t *) &w->timer, on_watch_closed);
}

static void
watch_end(MigrationWatch *w, int r, const char *message)
{
    if (w->stopped) {
        return;
    }
    migration_watch_stop(w);
    w->ops->end(r, message, w->userdata);
}

static void
watch_send(MigrationWatch *w, const MigrationSnapshot *s, MigrationEventKind kind)
{
    struct timespec ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts); /* the event's time, for people: wall clock */
    if (w->ops->event(kind, s, (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000,
                      w->userdata) < 0) {
        migration_watch_stop(w); /* the handler ended the stream */
    }
}

/* The index of the record of what @j was sent; -ENOENT when @j is not news for this watch
 * (or no memory for a new record: the next change or tick tries again). */
static ssize_t
watch_seen(MigrationWatch *w, const MigrationJob *j, bool over)
{
    const char *id = migration_id(j);
    size_t k;

    for (k = 0; k < w->n_seen && strcmp(w->seen[k].id, id) != 0; k++) {
    }
    if (k < w->n_seen) {
        return (ssize_t) k;
    }
    if (!w->id[0] && over) {
        return -ENOENT; /* a job that finished before the watch began, or whose end went */
    }
    if (ARRAY_RESERVE_ONE(w->seen, w->n_seen, w->allocated_seen, 8) < 0) {
        return -ENOENT;
    }
    w->seen[k] = (WatchSeen){.phase = PHASE_NEW};
    (void) snprintf(w->seen[k].id, sizeof(w->seen[k].id), "%s", id);
    w->n_seen++;
    return (ssize_t) k;
}

/* Sends what changed for the job of @s; returns false once its "end" event has been sent. A
 * watch of every job then forgets it: the job is over, so it is no news again. */
static bool
watch_snapshot(MigrationWatch *w, const MigrationJob *j, const MigrationSnapshot *s,
               uint64_t now)
{
    ssize_t k = watch_seen(w, j, s->over);
    WatchSeen *seen;

    if (k < 0) {
        return true;
    }
    seen = &w->seen[k];
    if (seen->ended) {
        return false;
    }
    if (s->over) {
        seen->ended = true;
        if (!w->id[0]) {
            ARRAY_REMOVE_AT(w->seen, w->n_seen, (size_t) k);
        }
        watch_send(w, s, MIGRATION_EVENT_END);
        return false;
    }
    if (s->phase != seen->phase) {
        watch_send(w, s, MIGRATION_EVENT_PHASE);
    } else if (now - seen->last_ns >= MIGRATION_WATCH_PROGRESS_MS * 1000000ull) {
        watch_send(w, s, MIGRATION_EVENT_PROGRESS);
    } else {
        return true;
    }
    seen->phase = s->phase;
    seen->last_ns = now;
    return true;
}

/* Forgets the jobs the manager no longer has (forgotten before their end was sent): what a
 * watch of every job keeps stays within the manager's jobs. */
static void
watch_prune(MigrationWatch *w)
{
    for (size_t k = 0; k < w->n_seen;) {
        if (migration_find(w->manager, w->seen[k].id)) {
            k++;
        } else {
            ARRAY_REMOVE_AT(w->seen, w->n_seen, k);
        }
    }
}

/* The same from the job; an out-of-memory snapshot waits for the next change or tick. */
static bool
watch_job(MigrationWatch *w, const MigrationJob *j, uint64_t now)
{
    MigrationSnapshot s;
    bool more;

    if (migration_snapshot(j, &s) < 0) {
        return true;
    }
    more = watch_snapshot(w, j, &s, now);
    migration_snapshot_done(&s);
    return more;
}

/* A job changed phase. A phase that does not end it is sent now: several may follow each
 * other within one loop turn (switchover, completing, ...) and each must be seen. The end is
 * sent by the timer, fired at once, on the next loop turn: by then the job has its final
 * error, totals and downtime. */
static void
on_migration_changed(MigrationListener *l, const MigrationJob *j)
{
    MigrationWatch *w = (MigrationWatch *) l;
    MigrationSnapshot s;

    if (w->stopped || (w->id[0] && strcmp(w->id, migration_id(j)) != 0)) {
        return;
    }
    if (migration_snapshot(j, &s) >= 0) {
        if (!s.over) {
            (void) watch_snapshot(w, j, &s, clock_now_ns());
        }
        migration_snapshot_done(&s);
    }
    (void) uv_timer_start(&w->timer, on_watch_tick, 0, WATCH_TICK_MS);
}

static void
on_watch_tick(uv_timer_t *t)
{
    MigrationWatch *w = t->data;
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
    watch_prune(w);
    for (size_t i = 0; i < m->n_jobs && !w->stopped; i++) {
        (void) watch_job(w, m->jobs[i], now);
    }
}

int
migration_watch_start(Manager *m, const char *id, const MigrationWatchOps *ops, void *userdata,
                      MigrationWatch **ret, char *err, size_t err_size)
{
    unsigned max = m->max_watches ? m->max_watches : MIGRATION_WATCH_DEFAULT_MAX;
    MigrationWatch *w;

    if (id[0] && !migration_find(m, id)) {
        (void) snprintf(err, err_size, "no migration with id '%.64s'", id);
        return -ENOENT;
    }
    if (m->n_watches >= max) {
        (void) snprintf(err, err_size, "%u watchers already follow migrations, the limit is %u: "
                        "end one (a `vfio-migctl watch`), or raise [api] max_watchers "
                        "(--max-watchers N; SIGHUP applies it)", m->n_watches, max);
        return -ENOSPC;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        return -ENOMEM;
    }
    w->manager = m;
    w->ops = ops;
    w->userdata = userdata;
    w->listener.changed = on_migration_changed;
    (void) snprintf(w->id, sizeof(w->id), "%s", id);
    (void) uv_timer_init(m->loop, &w->timer);
    w->timer.data = w;
    manager_add_listener(m, &w->listener);
    m->n_watches++;
    (void) uv_timer_start(&w->timer, on_watch_tick, 0, WATCH_TICK_MS);
    *ret = w;
    return 0;
}
