/* SPDX-License-Identifier: MIT */
/*
 * test_group — P2P-safe group transitions, driven through group.c with real sim devices on
 * real worker threads and a real libuv loop.
 *
 * The invariant is checked on the timeline the daemon records (absolute CLOCK_MONOTONIC
 * stamps of every arc): at no instant may one device be in STOP, STOP_COPY or RESUMING while
 * another is in RUNNING or PRE_COPY. During an arc a device counts as being in both its
 * "from" and its "to" state, so the check is conservative; it runs on every transition here,
 * whatever its outcome.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "device.h"
#include "group.h"
#include "manager_fixture.h"
#include "util/strutil.h"

#define S(x) DEVICE_STATE_##x

static unsigned name_seq;

static void
setup(void)
{
    (void) setenv("UV_THREADPOOL_SIZE", "16", 1);
    manager_fixture_setup();
}

TestSuite(group, .init = setup, .fini = manager_fixture_teardown, .timeout = 120);

/* ---- helpers ---- */

static Device *
attach(const char *opts, char *id_out)
{
    char id[32], err[256] = "";
    Device *d = NULL;
    int r;

    (void) snprintf(id, sizeof(id), "d%u", name_seq++);
    r = manager_attach_sim(mgr, id, "", opts, &d, err, sizeof(err));
    cr_assert_eq(r, 0, "attach '%s': %s", opts, err);
    if (id_out) {
        strcpy(id_out, id);
    }
    return d;
}

/* A group of @n devices; device i gets opts[i % n_opts], plus @extra on device @extra_at. */
static Group *
make_group(size_t n, const char *const *opts, size_t n_opts, int extra_at, const char *extra)
{
    char ids[GROUP_MAX_DEVICES][32], name[32], err[256] = "", o[256];
    const char *ptrs[GROUP_MAX_DEVICES];
    Group *g = NULL;

    for (size_t i = 0; i < n; i++) {
        (void) snprintf(o, sizeof(o), "size=64K,%s%s%s", opts[i % n_opts],
                        (int) i == extra_at ? "," : "", (int) i == extra_at ? extra : "");
        attach(o, ids[i]);
        ptrs[i] = ids[i];
    }
    (void) snprintf(name, sizeof(name), "g%u", name_seq++);
    cr_assert_eq(group_new(mgr, name, ptrs, n, &g, err, sizeof(err)), 0, "group_new: %s", err);
    return g;
}

/* Deletes @g and detaches its devices: tests create thousands, the daemon allows 1024. */
static void
discard(Group *g)
{
    char ids[GROUP_MAX_DEVICES][DEVICE_ID_MAX + 1], err[256];
    size_t n = g->n_devices;

    for (size_t i = 0; i < n; i++) {
        strcpy(ids[i], g->devices[i]->id);
    }
    cr_assert_eq(group_delete(g, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(manager_detach(mgr, ids[i], err, sizeof(err)), 0, "%s", err);
    }
}

typedef struct Wait {
    bool done;
    const GroupRun *run;
} Wait;

static void
on_done(Group *g, const GroupRun *run, void *userdata)
{
    Wait *w = userdata;
    (void) g;
    w->done = true;
    w->run = run;
}

/* Runs a transition to its end. Returns its GroupRun, or NULL when refused (r in *ret_r). */
static const GroupRun *
transition(Group *g, DeviceState target, bool force, int *ret_r)
{
    Wait w = {0};
    char err[1024] = "";
    int r;

    r = group_transition_start(g, target, force, on_done, &w, err, sizeof(err));
    if (ret_r) {
        *ret_r = r;
    }
    if (r < 0) {
        return NULL;
    }
    while (!w.done) {
        (void) uv_run(&loop, UV_RUN_ONCE);
    }
    if (ret_r) {
        *ret_r = w.run->r;
    }
    return w.run;
}

/* ---- the invariant ---- */

typedef struct Span {
    uint64_t from_ns, to_ns; /* to_ns == UINT64_MAX: until the end of time */
    bool running, stopped;
} Span;

static void
span_add(Span *spans, size_t *n, uint64_t a, uint64_t b, DeviceState s1, DeviceState s2)
{
    spans[*n] = (Span){a, b, fsm_state_is_running(s1) || fsm_state_is_running(s2),
                       fsm_state_is_stopped(s1) || fsm_state_is_stopped(s2)};
    (*n)++;
}

/* Stands for "just reset": RUNNING per the kernel, but the function reset (FLR) cleared Bus
 * Master Enable, so the device initiates no DMA until it is configured again. group.h
 * documents that the daemon relies on this; the checker encodes exactly that rule, nothing
 * looser: the device counts as quiescent only until its next arc begins. */
#define RESET_QUIESCENT DEVICE_STATE_ERROR

/* Spans of one device: its state between arcs, and both ends of every arc during it. */
static size_t
device_spans(const GroupRun *run, const GroupDeviceRun *dr, Span *spans)
{
    DeviceState cur = dr->start_state;
    uint64_t t = run->start_ns;
    size_t n = 0;

    for (unsigned i = 0; i < dr->n_arcs; i++) {
        const ArcRecord *a = &dr->arcs[i];
        DeviceState to = a->reset ? RESET_QUIESCENT : a->to;
        /* The arc after a reset starts from the quiescent RUNNING the reset left. */
        DeviceState from = cur == RESET_QUIESCENT && a->from == S(RUNNING) ? cur : a->from;
        DeviceState after = a->error ? (i + 1 < dr->n_arcs ? dr->arcs[i + 1].from : dr->state)
                                     : to;
        span_add(spans, &n, t, a->begin_ns, cur, cur);
        span_add(spans, &n, a->begin_ns, a->end_ns, from, to);
        /* A failed arc may leave the device in ERROR or anywhere the kernel stopped. */
        span_add(spans, &n, a->begin_ns, a->end_ns, after, after);
        cur = after;
        t = a->end_ns;
    }
    /* A transition that ends with a reset device in RUNNING hands it over quiescent. */
    span_add(spans, &n, t, UINT64_MAX, cur, cur);
    return n;
}

static void
assert_p2p_invariant(const GroupRun *run, const char *what)
{
    static Span spans[GROUP_MAX_DEVICES][GROUP_MAX_ARCS * 3 + 2];
    size_t n[GROUP_MAX_DEVICES];

    for (size_t i = 0; i < run->n_devices; i++) {
        n[i] = device_spans(run, &run->devices[i], spans[i]);
    }
    for (size_t i = 0; i < run->n_devices; i++) {
        for (size_t j = 0; j < run->n_devices; j++) {
            for (size_t a = 0; i != j && a < n[i]; a++) {
                for (size_t b = 0; spans[i][a].stopped && b < n[j]; b++) {
                    const Span *x = &spans[i][a], *y = &spans[j][b];
                    bool overlap = x->from_ns < y->to_ns && y->from_ns < x->to_ns;
                    cr_assert(!(overlap && y->running),
                              "%s: P2P invariant broken: device %zu stopped during "
                              "[%llu, %llu] while device %zu running during [%llu, %llu] ns",
                              what, i, (unsigned long long) (x->from_ns - run->start_ns),
                              (unsigned long long) (x->to_ns - run->start_ns), j,
                              (unsigned long long) (y->from_ns - run->start_ns),
                              (unsigned long long) (y->to_ns - run->start_ns));
                }
            }
        }
    }
}

static void
assert_all_in(const Group *g, DeviceState s, const char *what)
{
    for (size_t i = 0; i < g->n_devices; i++) {
        cr_assert_eq(g->devices[i]->state, s, "%s: device %zu in %s, expected %s", what, i,
                     fsm_state_name(g->devices[i]->state), fsm_state_name(s));
    }
}

/* Every state a group of these flags can be moved to and away from again. RESUMING is a
 * target only: leaving it needs a valid stream (the sim validates like a driver). */
static const DeviceState all_states[] = {S(RUNNING),     S(STOP),     S(STOP_COPY),
                                         S(RUNNING_P2P), S(PRE_COPY), S(PRE_COPY_P2P),
                                         S(RESUMING)};

static bool
states_ok(DeviceState s, const char *const *opts, size_t n_opts)
{
    for (size_t i = 0; i < n_opts; i++) {
        bool pc = strstr(opts[i], "pre_copy") != NULL;
        bool p2p = strstr(opts[i], "p2p") != NULL;
        if (!fsm_state_supported(s, MIG_FLAG_STOP_COPY | (pc ? MIG_FLAG_PRE_COPY : 0) |
                                        (p2p ? MIG_FLAG_P2P : 0))) {
            return false;
        }
    }
    return true;
}

/* Every (start, target) pair for groups of size 1..8 with @opts mixed round robin. */
static void
all_pairs(const char *const *opts, size_t n_opts, const size_t *sizes, size_t n_sizes)
{
    for (size_t si = 0; si < n_sizes; si++) {
        for (size_t a = 0; a + 1 < ELEMENTSOF(all_states); a++) {
            for (size_t b = 0; b < ELEMENTSOF(all_states); b++) {
                DeviceState from = all_states[a], to = all_states[b];
                char what[128];
                const GroupRun *run;
                Group *g;
                int r;

                if (!states_ok(from, opts, n_opts) || !states_ok(to, opts, n_opts)) {
                    continue;
                }
                (void) snprintf(what, sizeof(what), "n=%zu %s->%s", sizes[si],
                                fsm_state_name(from), fsm_state_name(to));
                g = make_group(sizes[si], opts, n_opts, -1, NULL);
                run = transition(g, from, false, &r);
                cr_assert_eq(r, 0, "%s: reaching the start state: %s", what, run ? run->error : "");
                if (from == S(STOP_COPY) && (to == S(PRE_COPY) || to == S(PRE_COPY_P2P))) {
                    cr_assert_null(transition(g, to, false, &r), "%s must be refused", what);
                    cr_assert_eq(r, -EINVAL, "%s", what);
                    assert_all_in(g, from, what); /* refused: nothing moved */
                    discard(g);
                    continue;
                }
                run = transition(g, to, false, &r);
                cr_assert_not_null(run, "%s refused (%d)", what, r);
                cr_assert_eq(r, 0, "%s: %s", what, run->error);
                assert_all_in(g, to, what);
                assert_p2p_invariant(run, what);
                discard(g);
            }
        }
    }
}

/* ---- tests ---- */

Test(group, all_pairs_all_flags)
{
    static const char *const opts[] = {"flags=stop_copy+p2p+pre_copy"};
    static const size_t sizes[] = {1, 2, 3, 5, 8};
    all_pairs(opts, 1, sizes, ELEMENTSOF(sizes));
}

Test(group, all_pairs_mixed_p2p_flags)
{
    static const char *const opts[] = {"flags=stop_copy+p2p+pre_copy", "flags=stop_copy+p2p"};
    static const size_t sizes[] = {2, 4, 7};
    all_pairs(opts, 2, sizes, ELEMENTSOF(sizes));
}

Test(group, single_device_without_p2p)
{
    static const char *const opts[] = {"flags=stop_copy"};
    static const size_t sizes[] = {1};
    all_pairs(opts, 1, sizes, 1);
}

Test(group, without_p2p_refused_unless_forced)
{
    static const char *const opts[] = {"flags=stop_copy+p2p+pre_copy", "flags=stop_copy"};
    Group *g = make_group(3, opts, 2, -1, NULL);
    const GroupRun *run;
    int r;

    cr_assert_null(transition(g, S(STOP), false, &r));
    cr_assert_eq(r, -EOPNOTSUPP);
    assert_all_in(g, S(RUNNING), "refused");
    run = transition(g, S(STOP), true, &r);
    cr_assert_eq(r, 0, "%s", run->error);
    cr_assert(run->force);
    assert_all_in(g, S(STOP), "forced stop");
    /* Best effort: the non-P2P device stops only after every P2P device is quiesced. */
    for (size_t i = 0; i < run->n_devices; i++) {
        for (size_t j = 0; j < run->n_devices; j++) {
            const GroupDeviceRun *p2p = &run->devices[i], *plain = &run->devices[j];
            if (!(p2p->device->info.mig_flags & MIG_FLAG_P2P) ||
                (plain->device->info.mig_flags & MIG_FLAG_P2P)) {
                continue;
            }
            cr_assert_geq(plain->arcs[0].begin_ns, p2p->arcs[0].end_ns,
                          "non-P2P device %zu stopped before device %zu was quiesced", j, i);
        }
    }
    run = transition(g, S(RUNNING), true, &r);
    cr_assert_eq(r, 0);
    assert_all_in(g, S(RUNNING), "forced resume");
}

/* The arcs device @pos takes in a clean run of (from -> to): the candidates for faults. */
static unsigned
clean_arcs(size_t n, const char *opts, DeviceState from, DeviceState to, size_t pos,
           FsmArc *arcs)
{
    const char *o[] = {opts};
    Group *g = make_group(n, o, 1, -1, NULL);
    const GroupRun *run;
    unsigned k = 0;
    int r;

    run = transition(g, from, false, &r);
    cr_assert_eq(r, 0);
    run = transition(g, to, false, &r);
    cr_assert_eq(r, 0);
    for (unsigned i = 0; i < run->devices[pos].n_arcs; i++) {
        arcs[k++] = (FsmArc){run->devices[pos].arcs[i].from, run->devices[pos].arcs[i].to};
    }
    discard(g);
    return k;
}

/* Injects a fault on every arc of every device position; checks rollback and the invariant. */
static void
faults_everywhere(const size_t *sizes, size_t n_sizes, const char *fault_extra)
{
    static const char *const opts[] = {"flags=stop_copy+p2p+pre_copy"};

    for (size_t si = 0; si < n_sizes; si++) {
        size_t n = sizes[si];
        for (size_t a = 0; a + 1 < ELEMENTSOF(all_states); a++) {
            for (size_t b = 0; b < ELEMENTSOF(all_states); b++) {
                DeviceState from = all_states[a], to = all_states[b];
                if (from == to || (from == S(STOP_COPY) && (to == S(PRE_COPY) || to == S(PRE_COPY_P2P)))) {
                    continue;
                }
                for (size_t pos = 0; pos < n; pos++) {
                    FsmArc arcs[GROUP_MAX_ARCS];
                    unsigned k = clean_arcs(n, opts[0], from, to, pos, arcs);
                    for (unsigned i = 0; i < k; i++) {
                        char extra[128], what[200];
                        const GroupRun *run;
                        Group *g;
                        int r;

                        (void) snprintf(extra, sizeof(extra), "fail_arc=%s->%s%s",
                                        fsm_state_name(arcs[i].from), fsm_state_name(arcs[i].to),
                                        fault_extra);
                        (void) snprintf(what, sizeof(what), "n=%zu %s->%s, device %zu %s", n,
                                        fsm_state_name(from), fsm_state_name(to), pos, extra);
                        g = make_group(n, opts, 1, (int) pos, extra);
                        run = transition(g, from, false, &r);
                        if (r < 0) {
                            /* The fault is on the way to the start state: fine, but the
                             * rollback must still be P2P-safe. */
                            assert_p2p_invariant(run, what);
                            discard(g);
                            continue;
                        }
                        run = transition(g, to, false, &r);
                        cr_assert_not_null(run, "%s refused", what);
                        cr_assert_lt(r, 0, "%s: the fault did not fire", what);
                        cr_assert(run->rolled_back, "%s: not rolled back", what);
                        cr_assert(run->devices[pos].error < 0, "%s: failure not pinned", what);
                        cr_assert_neq(run->devices[pos].failed_arc[0], '\0', "%s", what);
                        if (!run->rollback_failed) {
                            for (size_t d = 0; d < n; d++) {
                                cr_assert_eq(run->devices[d].state, run->devices[d].start_state,
                                             "%s: device %zu ended in %s, started in %s", what, d,
                                             fsm_state_name(run->devices[d].state),
                                             fsm_state_name(run->devices[d].start_state));
                            }
                        }
                        for (size_t d = 0; d < n; d++) {
                            cr_assert_eq(g->devices[d]->state, run->devices[d].state, "%s", what);
                            cr_assert(run->rollback_failed || g->devices[d]->state != S(ERROR),
                                      "%s: device %zu left in ERROR", what, d);
                        }
                        assert_p2p_invariant(run, what);
                        discard(g);
                    }
                }
            }
        }
    }
}

Test(group, fault_on_every_arc_of_every_position_small)
{
    static const size_t sizes[] = {1, 2, 3};
    faults_everywhere(sizes, ELEMENTSOF(sizes), "");
}

Test(group, fault_on_every_arc_of_every_position_eight, .timeout = 300)
{
    static const size_t sizes[] = {8};
    faults_everywhere(sizes, ELEMENTSOF(sizes), "");
}

Test(group, fault_into_error_is_reset_p2p_safely)
{
    static const size_t sizes[] = {2, 4};
    faults_everywhere(sizes, ELEMENTSOF(sizes), ",fail_to_error=1");
}

/* Every device's first arc is held until all four are held at once: were the step not
 * parallel, the first device would wait alone until its hold_max_ms and the transition fail.
 * No latency is assumed to be long enough for the others to start. */
Test(group, phases_run_in_parallel)
{
    char dir[256], go[300], o[400], err[512] = "";
    const char *opts[] = {o};
    const char *tmp = getenv("TMPDIR");
    Group *g;
    const GroupRun *run;
    Wait w = {0};
    const struct timespec ms = {.tv_nsec = 1000000L};
    size_t held = 0;
    int r;

    (void) snprintf(dir, sizeof(dir), "%s/test_group.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(dir), "mkdtemp: %m");
    (void) snprintf(go, sizeof(go), "%s/go", dir);
    (void) snprintf(o, sizeof(o), "flags=stop_copy+p2p+pre_copy,hold_arc=running->running_p2p,"
                    "hold_until=%s", go);
    g = make_group(4, opts, 1, -1, NULL);
    cr_assert_eq(group_transition_start(g, S(STOP), false, on_done, &w, err, sizeof(err)), 0,
                 "%s", err);
    while (!w.done && held < g->n_devices) {
        held = 0;
        for (size_t i = 0; i < g->n_devices; i++) {
            held += sim_device_holding(g->devices[i]->backend);
        }
        (void) uv_run(&loop, UV_RUN_NOWAIT);
        (void) nanosleep(&ms, NULL);
    }
    cr_assert_eq(held, g->n_devices, "only %zu of the devices were in their first arc at once",
                 held);
    cr_assert_eq(mknod(go, S_IFREG | 0600, 0), 0, "%s: %m", go);
    while (!w.done) {
        (void) uv_run(&loop, UV_RUN_ONCE);
    }
    (void) unlink(go);
    (void) rmdir(dir);
    run = w.run;
    r = run->r;
    cr_assert_eq(r, 0);
    cr_assert_eq(run->phases, 2, "stopping takes quiesce + stop, got %u phases", run->phases);
    assert_p2p_invariant(run, "latency stop");
    /* Each device's first arc overlaps every other device's first arc: the step is parallel. */
    for (size_t i = 1; i < run->n_devices; i++) {
        const ArcRecord *x = &run->devices[0].arcs[0], *y = &run->devices[i].arcs[0];
        cr_assert(x->begin_ns < y->end_ns && y->begin_ns < x->end_ns,
                  "device 0 and %zu quiesced one after the other", i);
    }
    run = transition(g, S(RUNNING), false, &r);
    cr_assert_eq(r, 0);
    cr_assert_eq(run->phases, 2);
    assert_p2p_invariant(run, "latency resume");
}

/* A run's memory is reused by the runs after it (group.h, spares): each finished run must read
 * as its own transition alone, with nothing left of a failed one before it. */
static void
assert_clean_run(const GroupRun *run, DeviceState from, DeviceState to, const char *what)
{
    cr_assert_eq(run->r, 0, "%s: %s", what, run->error);
    cr_assert_str_empty(run->error, "%s", what);
    cr_assert(!run->rolled_back && !run->rollback_failed, "%s", what);
    cr_assert_eq(run->target, to, "%s", what);
    for (size_t d = 0; d < run->n_devices; d++) {
        const GroupDeviceRun *dr = &run->devices[d];

        cr_assert_eq(dr->start_state, from, "%s: device %zu", what, d);
        cr_assert_eq(dr->state, to, "%s: device %zu", what, d);
        cr_assert_eq(dr->error, 0, "%s: device %zu", what, d);
        cr_assert_str_empty(dr->failed_arc, "%s: device %zu", what, d);
        cr_assert_str_empty(dr->message, "%s: device %zu", what, d);
        cr_assert_eq(dr->n_arcs, 1, "%s: device %zu has %u arcs", what, d, dr->n_arcs);
        cr_assert(dr->arcs[0].from == from && dr->arcs[0].to == to && !dr->arcs[0].error,
                  "%s: device %zu", what, d);
    }
}

Test(group, reused_runs_keep_nothing_of_earlier_ones)
{
    static const char *const opts[] = {"flags=stop_copy+p2p"};
    Group *g = make_group(3, opts, 1, 1, "fail_arc=stop->running_p2p");
    const GroupRun *run;
    int r;

    run = transition(g, S(STOP), false, &r);
    cr_assert_eq(r, 0);
    run = transition(g, S(RUNNING), false, &r); /* fails on device 1 and is rolled back */
    cr_assert_lt(r, 0);
    cr_assert(run->rolled_back && run->devices[1].error < 0 && run->devices[1].failed_arc[0]);
    assert_all_in(g, S(STOP), "after the rollback");
    /* Enough runs that every spare, the failed run's memory among them, is taken again. */
    for (int i = 0; i < 2 * (GROUP_SPARE_RUNS + 1); i++) {
        DeviceState from = i % 2 ? S(STOP_COPY) : S(STOP), to = i % 2 ? S(STOP) : S(STOP_COPY);

        run = transition(g, to, false, &r);
        cr_assert_not_null(run);
        assert_clean_run(run, from, to, i % 2 ? "STOP_COPY -> STOP" : "STOP -> STOP_COPY");
        cr_assert_eq(g->last, run);
    }
    discard(g);
}

Test(group, bad_requests_change_nothing)
{
    static const char *const opts[] = {"flags=stop_copy+p2p+pre_copy"};
    Group *g = make_group(2, opts, 1, -1, NULL), *other = NULL;
    const char *ids[] = {g->devices[0]->id, g->devices[0]->id};
    const char *unknown[] = {"nope"};
    char err[512];
    Wait w = {0};
    int r;

    cr_assert_eq(group_new(mgr, g->name, ids, 1, &other, err, sizeof(err)), -EEXIST);
    cr_assert_eq(group_new(mgr, "x", ids, 2, &other, err, sizeof(err)), -EBUSY, "%s", err);
    cr_assert_eq(group_new(mgr, "x", unknown, 1, &other, err, sizeof(err)), -ENOENT);
    cr_assert_eq(group_new(mgr, "x", ids, 0, &other, err, sizeof(err)), -EINVAL);
    cr_assert_eq(group_new(mgr, "bad name", unknown, 1, &other, err, sizeof(err)), -EINVAL);
    cr_assert_null(group_find(mgr, "x"));
    cr_assert_eq(manager_detach(mgr, g->devices[0]->id, err, sizeof(err)), -EBUSY);

    cr_assert_eq(group_transition_start(g, S(ERROR), false, on_done, &w, err, sizeof(err)),
                 -EINVAL);
    cr_assert_null(transition(g, S(STOP_COPY), false, &r) ? NULL : NULL);
    cr_assert_eq(r, 0);
    cr_assert_null(transition(g, S(PRE_COPY), false, &r));
    cr_assert_eq(r, -EINVAL);
    assert_all_in(g, S(STOP_COPY), "after a refused request");

    /* Busy: a second transition and a delete while one runs. */
    cr_assert_eq(group_transition_start(g, S(RUNNING), false, on_done, &w, err, sizeof(err)), 0);
    cr_assert_eq(group_transition_start(g, S(STOP), false, on_done, &w, err, sizeof(err)), -EBUSY);
    cr_assert_eq(group_delete(g, err, sizeof(err)), -EBUSY);
    {
        char e2[256];
        cr_assert_eq(device_set_state_start(g->devices[1], S(STOP), NULL, NULL, e2, sizeof(e2)),
                     -EBUSY, "a device of a transitioning group must refuse other operations");
    }
    while (!w.done) {
        (void) uv_run(&loop, UV_RUN_ONCE);
    }
    assert_all_in(g, S(RUNNING), "after the busy checks");
    cr_assert_eq(group_delete(g, err, sizeof(err)), 0);
}
