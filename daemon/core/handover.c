/* SPDX-License-Identifier: MIT */
/*
 * handover — see handover.h; docs/migration.md has the same table in words.
 */
#include "handover.h"

#include "../util/macro.h"

#define NOTHING HANDOVER_DO_NOTHING
#define REFUSE HANDOVER_DO_REFUSE
#define PREPARE HANDOVER_DO_SEND_PREPARED
#define COMMIT HANDOVER_DO_SEND_COMMIT
#define RUN HANDOVER_DO_RUN
#define GIVE_UP HANDOVER_DO_GIVE_UP
#define HOLD HANDOVER_DO_HOLD
/* A state with nothing left to decide (or the other side's): messages are late echoes, API
 * calls are refused. */
#define SETTLED                                                                                    \
    { NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, REFUSE, REFUSE, REFUSE }
/* In doubt, on either side: the peer is gone, only the orchestrator decides. */
#define DECIDED_BY_RESOLVE                                                                         \
    { NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, REFUSE, RUN, GIVE_UP }

/* Columns: LOADED, GOT_PREPARED, GOT_COMMIT, GOT_DONE, GOT_FAIL, PEER_LOST, FAILURE, CANCEL,
 * RESOLVE_RESUME, RESOLVE_ABORT. A message out of turn is a peer that does not follow the
 * protocol: before the commit point the side gives up as on a lost peer; after it, it holds. */
static const unsigned char source_table[_HANDOVER_STATE_MAX][_HANDOVER_EV_MAX] = {
    /* Not committed: anything but PREPARED takes the VM back; PREPARED commits. */
    [HANDOVER_MOVING] = {RUN, COMMIT, RUN, RUN, RUN, RUN, RUN, RUN, REFUSE, REFUSE},
    [HANDOVER_PREPARED] = SETTLED, /* a destination's state only */
    /* Committed: only DONE says the destination has the VM; nothing else may resume it (a
     * FAIL now comes from a peer out of protocol: it may have resumed all the same). */
    [HANDOVER_COMMITTED] = {HOLD, HOLD, HOLD, GIVE_UP, HOLD, HOLD, HOLD, REFUSE, REFUSE, REFUSE},
    [HANDOVER_IN_DOUBT] = DECIDED_BY_RESOLVE,
    [HANDOVER_RUNS_HERE] = SETTLED,
    [HANDOVER_GAVE_UP] = SETTLED,
};

static const unsigned char destination_table[_HANDOVER_STATE_MAX][_HANDOVER_EV_MAX] = {
    /* Loading: nothing may run here yet, the source still may; any trouble resets. A COMMIT
     * before PREPARED is a source out of protocol: never a reason to resume. */
    [HANDOVER_MOVING] = {PREPARE, GIVE_UP, GIVE_UP, GIVE_UP, GIVE_UP, GIVE_UP, GIVE_UP, GIVE_UP,
                         REFUSE, REFUSE},
    /* PREPARED sent: the source may have committed. Only its COMMIT resumes, only its FAIL
     * (sent before its commit point) resets; a local failure, a cancel or a lost source
     * cannot decide either. */
    [HANDOVER_PREPARED] = {NOTHING, HOLD, RUN, HOLD, GIVE_UP, HOLD, HOLD, REFUSE, REFUSE,
                           REFUSE},
    [HANDOVER_COMMITTED] = SETTLED, /* a source's state only */
    [HANDOVER_IN_DOUBT] = DECIDED_BY_RESOLVE,
    [HANDOVER_RUNS_HERE] = SETTLED,
    [HANDOVER_GAVE_UP] = SETTLED,
};

static const unsigned char (*const side_tables[])[_HANDOVER_EV_MAX] = {
    [HANDOVER_SOURCE] = source_table,
    [HANDOVER_DESTINATION] = destination_table,
};
static_assert(ELEMENTSOF(side_tables) == _HANDOVER_SIDE_MAX, "side_tables out of sync");

HandoverAction
handover_action(HandoverSide side, HandoverState state, HandoverEvent ev)
{
    if ((unsigned) state >= _HANDOVER_STATE_MAX || (unsigned) ev >= _HANDOVER_EV_MAX) {
        return HANDOVER_DO_NOTHING;
    }
    if ((unsigned) side >= _HANDOVER_SIDE_MAX) {
        return HANDOVER_DO_NOTHING;
    }
    return (HandoverAction) side_tables[side][state][ev];
}

static const HandoverState after_action[] = {
    [HANDOVER_DO_NOTHING] = _HANDOVER_STATE_MAX, /* stays */
    [HANDOVER_DO_REFUSE] = _HANDOVER_STATE_MAX,
    [HANDOVER_DO_SEND_PREPARED] = HANDOVER_PREPARED,
    [HANDOVER_DO_SEND_COMMIT] = HANDOVER_COMMITTED,
    [HANDOVER_DO_RUN] = HANDOVER_RUNS_HERE,
    [HANDOVER_DO_GIVE_UP] = HANDOVER_GAVE_UP,
    [HANDOVER_DO_HOLD] = HANDOVER_IN_DOUBT,
};
static_assert(ELEMENTSOF(after_action) == _HANDOVER_DO_MAX, "after_action out of sync");

HandoverState
handover_next(HandoverState state, HandoverAction action)
{
    if ((unsigned) action >= _HANDOVER_DO_MAX || after_action[action] == _HANDOVER_STATE_MAX) {
        return state;
    }
    return after_action[action];
}

bool
handover_may_give_up(HandoverSide side, HandoverState state)
{
    return handover_action(side, state, HANDOVER_EV_FAILURE) ==
           (side == HANDOVER_SOURCE ? HANDOVER_DO_RUN : HANDOVER_DO_GIVE_UP);
}

HandoverEvent
handover_advice(HandoverSide side, HandoverState other)
{
    /* Did the source commit? Then the VM is the destination's. */
    bool committed = side == HANDOVER_DESTINATION
                         ? other == HANDOVER_COMMITTED || other == HANDOVER_IN_DOUBT ||
                               other == HANDOVER_GAVE_UP
                         : other == HANDOVER_PREPARED || other == HANDOVER_IN_DOUBT ||
                               other == HANDOVER_RUNS_HERE;

    if (side == HANDOVER_DESTINATION) {
        return committed ? HANDOVER_EV_RESOLVE_RESUME : HANDOVER_EV_RESOLVE_ABORT;
    }
    return committed ? HANDOVER_EV_RESOLVE_ABORT : HANDOVER_EV_RESOLVE_RESUME;
}

static const char *const state_names[] = {
    [HANDOVER_MOVING] = "moving",       [HANDOVER_PREPARED] = "prepared",
    [HANDOVER_COMMITTED] = "committed", [HANDOVER_IN_DOUBT] = "in_doubt",
    [HANDOVER_RUNS_HERE] = "runs_here", [HANDOVER_GAVE_UP] = "gave_up",
};
static_assert(ELEMENTSOF(state_names) == _HANDOVER_STATE_MAX, "state_names out of sync");

static const char *const event_names[] = {
    [HANDOVER_EV_LOADED] = "loaded",
    [HANDOVER_EV_GOT_PREPARED] = "PREPARED",
    [HANDOVER_EV_GOT_COMMIT] = "COMMIT",
    [HANDOVER_EV_GOT_DONE] = "DONE",
    [HANDOVER_EV_GOT_FAIL] = "FAIL",
    [HANDOVER_EV_PEER_LOST] = "peer lost",
    [HANDOVER_EV_FAILURE] = "failure",
    [HANDOVER_EV_CANCEL] = "cancel",
    [HANDOVER_EV_RESOLVE_RESUME] = "resolve resume",
    [HANDOVER_EV_RESOLVE_ABORT] = "resolve abort",
};
static_assert(ELEMENTSOF(event_names) == _HANDOVER_EV_MAX, "event_names out of sync");

static const char *const action_names[] = {
    [HANDOVER_DO_NOTHING] = "nothing",     [HANDOVER_DO_REFUSE] = "refuse",
    [HANDOVER_DO_SEND_PREPARED] = "send PREPARED", [HANDOVER_DO_SEND_COMMIT] = "send COMMIT",
    [HANDOVER_DO_RUN] = "run",             [HANDOVER_DO_GIVE_UP] = "give up",
    [HANDOVER_DO_HOLD] = "hold",
};
static_assert(ELEMENTSOF(action_names) == _HANDOVER_DO_MAX, "action_names out of sync");

const char *
handover_state_name(HandoverState s)
{
    return (unsigned) s < _HANDOVER_STATE_MAX ? state_names[s] : "unknown";
}

const char *
handover_event_name(HandoverEvent e)
{
    return (unsigned) e < _HANDOVER_EV_MAX ? event_names[e] : "unknown";
}

const char *
handover_action_name(HandoverAction a)
{
    return (unsigned) a < _HANDOVER_DO_MAX ? action_names[a] : "unknown";
}
