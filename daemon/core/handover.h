/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * handover — the commit protocol that ends a live migration, so that at most one copy of the
 * VM ever runs. Pure logic, no I/O: one table says, for each side, each hand-over state and
 * each event, what the side must do; the state that follows is the action's.
 *
 *   destination: every device's data in, totals agree, group -> STOP (drivers validate)
 *                -> PREPARED                           from here it may neither resume nor reset
 *   source:      PREPARED -> COMMIT                    the commit point: never resumes on its own
 *   destination: COMMIT -> DONE, group -> RUNNING      it holds the VM
 *   source:      DONE -> completed
 *
 * Before its commit point the source may give up (FAIL, the abort): it resumes, and the
 * destination resets. A side that loses its peer between its commit point (source: COMMIT
 * sent; destination: PREPARED sent) and the outcome cannot know what the other did: it holds
 * (IN_DOUBT: devices kept, neither resumed nor reset) until the orchestrator, having asked the
 * other side, resolves it (handover_advice() is that rule).
 *
 * Used by:  migration_source.c, migration_dest.c, migration.c (cancel, resolve, failures).
 * Threads:  any; no globals.
 */

#include <stdbool.h>

typedef enum HandoverSide {
    HANDOVER_SOURCE,
    HANDOVER_DESTINATION,
    _HANDOVER_SIDE_MAX,
} HandoverSide;

typedef enum HandoverState {
    HANDOVER_MOVING,    /* nothing decided yet: this side may give up alone */
    HANDOVER_PREPARED,  /* destination: PREPARED sent, waiting for COMMIT or FAIL */
    HANDOVER_COMMITTED, /* source: COMMIT sent, waiting for DONE */
    HANDOVER_IN_DOUBT,  /* lost the peer after the commit point, before the outcome */
    HANDOVER_RUNS_HERE, /* final: this side holds the VM */
    HANDOVER_GAVE_UP,   /* final: this side does not */
    _HANDOVER_STATE_MAX,
} HandoverState;

typedef enum HandoverEvent {
    HANDOVER_EV_LOADED,         /* destination: all data in, validated (group in STOP) */
    HANDOVER_EV_GOT_PREPARED,   /* the peer sent PREPARED */
    HANDOVER_EV_GOT_COMMIT,     /* the peer sent COMMIT */
    HANDOVER_EV_GOT_DONE,       /* the peer sent DONE */
    HANDOVER_EV_GOT_FAIL,       /* the peer sent FAIL: it gave up */
    HANDOVER_EV_PEER_LOST,      /* the control connection ended, went silent past its
                                 * timeout, or carried a message out of turn */
    HANDOVER_EV_FAILURE,        /* a failure here: a device, a worker, the daemon stopping */
    HANDOVER_EV_CANCEL,         /* the API's cancel */
    HANDOVER_EV_RESOLVE_RESUME, /* the API's resolve: this side runs the VM */
    HANDOVER_EV_RESOLVE_ABORT,  /* the API's resolve: this side gives it up */
    _HANDOVER_EV_MAX,
} HandoverEvent;

typedef enum HandoverAction {
    HANDOVER_DO_NOTHING,       /* a late echo: ignore it */
    HANDOVER_DO_REFUSE,        /* an API call that is not possible now (said to the caller) */
    HANDOVER_DO_SEND_PREPARED, /* destination: tell the source it may commit */
    HANDOVER_DO_SEND_COMMIT,   /* source: commit (never resume on its own from here), say so */
    HANDOVER_DO_RUN,           /* keep or take the VM: the source goes back to RUNNING, the
                                * destination answers DONE (when connected) and resumes */
    HANDOVER_DO_GIVE_UP,       /* the source completes (stopped); the destination resets */
    HANDOVER_DO_HOLD,          /* in doubt: keep the devices as they are */
    _HANDOVER_DO_MAX,
} HandoverAction;

/* What @side in @state does on @ev. Out-of-range arguments: HANDOVER_DO_NOTHING. */
HandoverAction handover_action(HandoverSide side, HandoverState state, HandoverEvent ev);
/* The state after @action (the same state for NOTHING and REFUSE). */
HandoverState handover_next(HandoverState state, HandoverAction action);
/* Whether @side in @state may still give up without asking anyone: before its commit point. */
bool handover_may_give_up(HandoverSide side, HandoverState state);

/* The orchestrator's rule for a side in doubt, given what the other side says it is in:
 * HANDOVER_EV_RESOLVE_RESUME or HANDOVER_EV_RESOLVE_ABORT. The source commits before the
 * destination may resume, so the VM belongs to the destination exactly when the source
 * committed (its job is in doubt or completed); a destination in doubt or that took the VM
 * means the source committed too. */
HandoverEvent handover_advice(HandoverSide side, HandoverState other);

const char *handover_state_name(HandoverState s);
const char *handover_event_name(HandoverEvent e);
const char *handover_action_name(HandoverAction a);
