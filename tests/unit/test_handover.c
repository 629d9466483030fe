/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/handover: every entry of the table keeps the rules of the commit
 * protocol, and every run of the two sides over a link that may drop, cut or fail at any
 * point (explored exhaustively) leaves at most one side running, and exactly one once the
 * sides in doubt are resolved with the orchestrator's rule.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "core/handover.h"
#include "util/macro.h"

#define S HANDOVER_SOURCE
#define D HANDOVER_DESTINATION

static bool
is_final(HandoverState s)
{
    return s == HANDOVER_RUNS_HERE || s == HANDOVER_GAVE_UP;
}

static bool
is_resolve(HandoverEvent e)
{
    return e == HANDOVER_EV_RESOLVE_RESUME || e == HANDOVER_EV_RESOLVE_ABORT;
}

static bool
is_api(HandoverEvent e)
{
    return e == HANDOVER_EV_CANCEL || is_resolve(e);
}

Test(handover, every_entry_has_a_valid_action_and_state)
{
    for (int side = 0; side < _HANDOVER_SIDE_MAX; side++) {
        for (int st = 0; st < _HANDOVER_STATE_MAX; st++) {
            for (int ev = 0; ev < _HANDOVER_EV_MAX; ev++) {
                HandoverAction a = handover_action(side, st, ev);
                cr_assert(a >= 0 && a < _HANDOVER_DO_MAX);
                cr_assert(handover_next(st, a) < _HANDOVER_STATE_MAX);
                cr_assert_str_neq(handover_action_name(a), "unknown");
                cr_assert_str_neq(handover_event_name(ev), "unknown");
                cr_assert_str_neq(handover_state_name(st), "unknown");
                /* An API call is either done or refused, never silently dropped; a message
                 * or a failure is never "refused" (nobody to tell). */
                cr_assert(is_api(ev) ? a != HANDOVER_DO_NOTHING : a != HANDOVER_DO_REFUSE,
                          "%d %s %s -> %s", side, handover_state_name(st),
                          handover_event_name(ev), handover_action_name(a));
            }
        }
    }
    cr_assert_eq(handover_action(2, 0, 0), HANDOVER_DO_NOTHING);
    cr_assert_eq(handover_action(S, _HANDOVER_STATE_MAX, 0), HANDOVER_DO_NOTHING);
    cr_assert_eq(handover_action(S, 0, _HANDOVER_EV_MAX), HANDOVER_DO_NOTHING);
    cr_assert_str_eq(handover_state_name(_HANDOVER_STATE_MAX), "unknown");
}

/* Where each side may take or keep the VM, and where it may let it go. */
Test(handover, run_and_give_up_only_where_the_protocol_allows)
{
    for (int st = 0; st < _HANDOVER_STATE_MAX; st++) {
        for (int ev = 0; ev < _HANDOVER_EV_MAX; ev++) {
            HandoverAction src = handover_action(S, st, ev);
            HandoverAction dst = handover_action(D, st, ev);

            /* The source runs the VM only before its commit point, or when resolved. */
            if (src == HANDOVER_DO_RUN) {
                cr_assert(st == HANDOVER_MOVING ||
                          (st == HANDOVER_IN_DOUBT && ev == HANDOVER_EV_RESOLVE_RESUME),
                          "source runs in %s on %s", handover_state_name(st),
                          handover_event_name(ev));
            }
            /* The source lets it go only on DONE, or when resolved. */
            if (src == HANDOVER_DO_GIVE_UP) {
                cr_assert((st == HANDOVER_COMMITTED && ev == HANDOVER_EV_GOT_DONE) ||
                          (st == HANDOVER_IN_DOUBT && ev == HANDOVER_EV_RESOLVE_ABORT));
            }
            /* The source commits only on PREPARED. */
            if (src == HANDOVER_DO_SEND_COMMIT) {
                cr_assert(st == HANDOVER_MOVING && ev == HANDOVER_EV_GOT_PREPARED);
            }
            /* The destination resumes only on COMMIT after PREPARED, or when resolved. */
            if (dst == HANDOVER_DO_RUN) {
                cr_assert((st == HANDOVER_PREPARED && ev == HANDOVER_EV_GOT_COMMIT) ||
                          (st == HANDOVER_IN_DOUBT && ev == HANDOVER_EV_RESOLVE_RESUME),
                          "destination runs in %s on %s", handover_state_name(st),
                          handover_event_name(ev));
            }
            /* Once PREPARED is out, only the source's FAIL or a resolve resets. */
            if (dst == HANDOVER_DO_GIVE_UP && st != HANDOVER_MOVING) {
                cr_assert((st == HANDOVER_PREPARED && ev == HANDOVER_EV_GOT_FAIL) ||
                          (st == HANDOVER_IN_DOUBT && ev == HANDOVER_EV_RESOLVE_ABORT));
            }
            if (dst == HANDOVER_DO_SEND_PREPARED) {
                cr_assert(st == HANDOVER_MOVING && ev == HANDOVER_EV_LOADED);
            }
            /* Only a state past the commit point holds. */
            if (src == HANDOVER_DO_HOLD) {
                cr_assert_eq(st, HANDOVER_COMMITTED);
            }
            if (dst == HANDOVER_DO_HOLD) {
                cr_assert_eq(st, HANDOVER_PREPARED);
            }
            /* A final state is final; a resolve is for a side in doubt only. */
            if (is_final(st)) {
                cr_assert(src == HANDOVER_DO_NOTHING || src == HANDOVER_DO_REFUSE);
                cr_assert(dst == HANDOVER_DO_NOTHING || dst == HANDOVER_DO_REFUSE);
            }
            if (is_resolve(ev) && st != HANDOVER_IN_DOUBT) {
                cr_assert(src == HANDOVER_DO_REFUSE && dst == HANDOVER_DO_REFUSE);
            }
        }
    }
}

Test(handover, a_cancel_works_only_before_the_commit_point)
{
    for (int st = 0; st < _HANDOVER_STATE_MAX; st++) {
        bool before = st == HANDOVER_MOVING;

        cr_assert_eq(handover_action(S, st, HANDOVER_EV_CANCEL) != HANDOVER_DO_REFUSE, before);
        cr_assert_eq(handover_action(D, st, HANDOVER_EV_CANCEL) != HANDOVER_DO_REFUSE, before);
        cr_assert_eq(handover_may_give_up(S, st), before);
        cr_assert_eq(handover_may_give_up(D, st), before);
    }
}

Test(handover, the_happy_path)
{
    /* Each step: the side that gets the event and the action it must answer. */
    static const struct {
        HandoverSide side;
        HandoverEvent event;
        HandoverAction action;
    } steps[] = {
        {D, HANDOVER_EV_LOADED, HANDOVER_DO_SEND_PREPARED},
        {S, HANDOVER_EV_GOT_PREPARED, HANDOVER_DO_SEND_COMMIT},
        {D, HANDOVER_EV_GOT_COMMIT, HANDOVER_DO_RUN},
        {S, HANDOVER_EV_GOT_DONE, HANDOVER_DO_GIVE_UP},
    };
    HandoverState st[2] = {[S] = HANDOVER_MOVING, [D] = HANDOVER_MOVING};

    for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
        HandoverState *x = &st[steps[i].side];
        HandoverAction a = handover_action(steps[i].side, *x, steps[i].event);

        cr_assert_eq(a, steps[i].action, "step %zu", i);
        *x = handover_next(*x, a);
    }
    cr_assert_eq(st[S], HANDOVER_GAVE_UP);
    cr_assert_eq(st[D], HANDOVER_RUNS_HERE);
}

/* ---- the two sides over a link, every interleaving ---- */

typedef enum Msg { M_PREPARED, M_COMMIT, M_DONE, M_FAIL, M_CLOSE } Msg;

static const HandoverEvent msg_event[] = {
    [M_PREPARED] = HANDOVER_EV_GOT_PREPARED, [M_COMMIT] = HANDOVER_EV_GOT_COMMIT,
    [M_DONE] = HANDOVER_EV_GOT_DONE,         [M_FAIL] = HANDOVER_EV_GOT_FAIL,
    [M_CLOSE] = HANDOVER_EV_PEER_LOST,
};

#define QMAX 8

typedef struct World {
    HandoverState st[2];
    bool open[2];        /* the side's end of the control connection */
    Msg q[2][QMAX];      /* q[x]: messages on their way to side x */
    int n[2];
    bool loaded, cut, failed[2], cancelled[2];
    int steps;
} World;

static unsigned long runs, in_doubt_runs;

static void
send_to(World *w, int to, Msg m)
{
    if (w->open[!to] && w->open[to] && w->n[to] < QMAX) {
        w->q[to][w->n[to]++] = m;
    }
}

static void
close_side(World *w, int side)
{
    if (w->open[side]) {
        send_to(w, !side, M_CLOSE);
        w->open[side] = false;
    }
}

/* What a side does on an event: the table's action, and the messages it implies. */
static void
apply(World *w, int side, HandoverEvent ev)
{
    HandoverAction a = handover_action(side, w->st[side], ev);
    HandoverState before = w->st[side];

    w->st[side] = handover_next(before, a);
    switch (a) {
    case HANDOVER_DO_SEND_PREPARED:
        send_to(w, !side, M_PREPARED);
        break;
    case HANDOVER_DO_SEND_COMMIT:
        send_to(w, !side, M_COMMIT);
        break;
    case HANDOVER_DO_RUN:
        send_to(w, !side, side == S ? M_FAIL : M_DONE);
        close_side(w, side);
        break;
    case HANDOVER_DO_GIVE_UP:
        if (side == D) {
            send_to(w, !side, M_FAIL);
        }
        close_side(w, side);
        break;
    case HANDOVER_DO_HOLD:
        close_side(w, side);
        break;
    default:
        break;
    }
    cr_assert(!(w->st[S] == HANDOVER_RUNS_HERE && w->st[D] == HANDOVER_RUNS_HERE),
              "both run after %s on side %d in %s", handover_event_name(ev), side,
              handover_state_name(before));
}

/* The orchestrator: resolves the sides in doubt, asking the other side each time. */
static void
resolve(World w, int first)
{
    for (int k = 0; k < 2; k++) {
        int side = k ? !first : first;
        if (w.st[side] == HANDOVER_IN_DOUBT) {
            apply(&w, side, handover_advice(side, w.st[!side]));
        }
    }
    cr_assert(is_final(w.st[S]) && is_final(w.st[D]), "%s / %s",
              handover_state_name(w.st[S]), handover_state_name(w.st[D]));
    cr_assert((w.st[S] == HANDOVER_RUNS_HERE) + (w.st[D] == HANDOVER_RUNS_HERE) == 1,
              "exactly one copy runs: source %s, destination %s",
              handover_state_name(w.st[S]), handover_state_name(w.st[D]));
}

static void
explore(World w)
{
    bool moved = false;

    cr_assert(w.steps++ < 64, "the protocol ends");
    for (int side = 0; side < 2; side++) {
        World x;

        if (w.n[side] > 0) { /* deliver the next message to @side */
            x = w;
            Msg m = x.q[side][0];
            memmove(x.q[side], x.q[side] + 1, (size_t) --x.n[side] * sizeof(Msg));
            if (m == M_CLOSE) {
                x.open[side] = false;
            }
            apply(&x, side, msg_event[m]);
            explore(x);
            moved = true;
        }
        if (!w.failed[side] && !is_final(w.st[side]) && w.st[side] != HANDOVER_IN_DOUBT) {
            x = w;
            x.failed[side] = true;
            apply(&x, side, HANDOVER_EV_FAILURE);
            explore(x);
        }
        if (!w.cancelled[side] && !is_final(w.st[side])) {
            x = w;
            x.cancelled[side] = true;
            apply(&x, side, HANDOVER_EV_CANCEL); /* refused or not: either is a run */
            explore(x);
        }
    }
    if (!w.loaded && w.st[D] == HANDOVER_MOVING) {
        World x = w;
        x.loaded = true;
        apply(&x, D, HANDOVER_EV_LOADED);
        explore(x);
        moved = true;
    }
    if (!w.cut && w.open[S] && w.open[D]) { /* the link goes: both ends see it end */
        World x = w;
        x.cut = true;
        x.n[S] = x.n[D] = 0;
        x.open[S] = x.open[D] = false;
        apply(&x, S, HANDOVER_EV_PEER_LOST);
        apply(&x, D, HANDOVER_EV_PEER_LOST);
        explore(x);
        moved = true;
    }
    if (!moved) { /* nothing more will happen by itself: the run is over */
        runs++;
        in_doubt_runs += w.st[S] == HANDOVER_IN_DOUBT || w.st[D] == HANDOVER_IN_DOUBT;
        resolve(w, S);
        resolve(w, D);
    }
}

Test(handover, every_run_over_a_failing_link_leaves_one_copy)
{
    World w = {.st = {HANDOVER_MOVING, HANDOVER_MOVING}, .open = {true, true}};

    runs = in_doubt_runs = 0;
    explore(w);
    cr_assert_gt(runs, 100, "the exploration covered %lu runs", runs);
    cr_assert_gt(in_doubt_runs, 0, "some runs end in doubt");
}

/* Cut the link just before each message of the happy path: who is in doubt. */
Test(handover, a_cut_before_each_message)
{
    static const struct {
        HandoverState src, dst;
    } expect[] = {
        {HANDOVER_RUNS_HERE, HANDOVER_GAVE_UP},   /* before PREPARED: nothing decided */
        {HANDOVER_RUNS_HERE, HANDOVER_IN_DOUBT},  /* PREPARED lost: the source resumes */
        {HANDOVER_IN_DOUBT, HANDOVER_IN_DOUBT},   /* COMMIT lost: both wait */
        {HANDOVER_IN_DOUBT, HANDOVER_RUNS_HERE},  /* DONE lost: the destination has it */
    };

    for (int cut = 0; cut < 4; cut++) {
        World w = {.st = {HANDOVER_MOVING, HANDOVER_MOVING}, .open = {true, true}};
        static const int order[] = {D, S, D, S};
        static const HandoverEvent evs[] = {HANDOVER_EV_LOADED, HANDOVER_EV_GOT_PREPARED,
                                            HANDOVER_EV_GOT_COMMIT, HANDOVER_EV_GOT_DONE};

        for (int i = 0; i < cut; i++) {
            apply(&w, order[i], evs[i]);
        }
        apply(&w, S, HANDOVER_EV_PEER_LOST);
        apply(&w, D, HANDOVER_EV_PEER_LOST);
        cr_assert_eq(w.st[S], expect[cut].src, "cut %d: source %s", cut,
                     handover_state_name(w.st[S]));
        cr_assert_eq(w.st[D], expect[cut].dst, "cut %d: destination %s", cut,
                     handover_state_name(w.st[D]));
        resolve(w, S);
        resolve(w, D);
    }
}

Test(handover, advice)
{
    /* A destination in doubt resumes exactly when the source committed. */
    cr_assert_eq(handover_advice(D, HANDOVER_COMMITTED), HANDOVER_EV_RESOLVE_RESUME);
    cr_assert_eq(handover_advice(D, HANDOVER_IN_DOUBT), HANDOVER_EV_RESOLVE_RESUME);
    cr_assert_eq(handover_advice(D, HANDOVER_GAVE_UP), HANDOVER_EV_RESOLVE_RESUME);
    cr_assert_eq(handover_advice(D, HANDOVER_RUNS_HERE), HANDOVER_EV_RESOLVE_ABORT);
    cr_assert_eq(handover_advice(D, HANDOVER_MOVING), HANDOVER_EV_RESOLVE_ABORT);
    /* A source in doubt gives the VM up unless the destination never took it. */
    cr_assert_eq(handover_advice(S, HANDOVER_RUNS_HERE), HANDOVER_EV_RESOLVE_ABORT);
    cr_assert_eq(handover_advice(S, HANDOVER_IN_DOUBT), HANDOVER_EV_RESOLVE_ABORT);
    cr_assert_eq(handover_advice(S, HANDOVER_GAVE_UP), HANDOVER_EV_RESOLVE_RESUME);
}
