/* SPDX-License-Identifier: MIT */
/*
 * fsm — see fsm.h. The two tables below are the kernel's (drivers/vfio/vfio_main.c,
 * vfio_mig_get_next_state(), Linux 6.12.117), re-typed from the uAPI reference; the code only
 * reads them. Test: tests/unit/test_fsm.c checks every (current, target, flags) triple against
 * the resolved paths the reference lists per flag set.
 */
#include "fsm.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/macro.h"

#define S(x) DEVICE_STATE_##x

/* vfio_from_fsm_table[cur][new]: the next single arc before skipping unsupported states. */
static const DeviceState next_hop_table[_DEVICE_STATE_MAX][_DEVICE_STATE_MAX] = {
    [S(STOP)] = {
        [S(STOP)] = S(STOP), [S(RUNNING)] = S(RUNNING_P2P), [S(STOP_COPY)] = S(STOP_COPY),
        [S(RESUMING)] = S(RESUMING), [S(RUNNING_P2P)] = S(RUNNING_P2P),
        [S(PRE_COPY)] = S(RUNNING_P2P), [S(PRE_COPY_P2P)] = S(RUNNING_P2P), [S(ERROR)] = S(ERROR),
    },
    [S(RUNNING)] = {
        [S(STOP)] = S(RUNNING_P2P), [S(RUNNING)] = S(RUNNING), [S(STOP_COPY)] = S(RUNNING_P2P),
        [S(RESUMING)] = S(RUNNING_P2P), [S(RUNNING_P2P)] = S(RUNNING_P2P),
        [S(PRE_COPY)] = S(PRE_COPY), [S(PRE_COPY_P2P)] = S(RUNNING_P2P), [S(ERROR)] = S(ERROR),
    },
    [S(STOP_COPY)] = {
        [S(STOP)] = S(STOP), [S(RUNNING)] = S(STOP), [S(STOP_COPY)] = S(STOP_COPY),
        [S(RESUMING)] = S(STOP), [S(RUNNING_P2P)] = S(STOP),
        [S(PRE_COPY)] = S(ERROR), [S(PRE_COPY_P2P)] = S(ERROR), [S(ERROR)] = S(ERROR),
    },
    [S(RESUMING)] = {
        [S(STOP)] = S(STOP), [S(RUNNING)] = S(STOP), [S(STOP_COPY)] = S(STOP),
        [S(RESUMING)] = S(RESUMING), [S(RUNNING_P2P)] = S(STOP),
        [S(PRE_COPY)] = S(STOP), [S(PRE_COPY_P2P)] = S(STOP), [S(ERROR)] = S(ERROR),
    },
    [S(RUNNING_P2P)] = {
        [S(STOP)] = S(STOP), [S(RUNNING)] = S(RUNNING), [S(STOP_COPY)] = S(STOP),
        [S(RESUMING)] = S(STOP), [S(RUNNING_P2P)] = S(RUNNING_P2P),
        [S(PRE_COPY)] = S(RUNNING), [S(PRE_COPY_P2P)] = S(PRE_COPY_P2P), [S(ERROR)] = S(ERROR),
    },
    [S(PRE_COPY)] = {
        [S(STOP)] = S(RUNNING), [S(RUNNING)] = S(RUNNING), [S(STOP_COPY)] = S(PRE_COPY_P2P),
        [S(RESUMING)] = S(RUNNING), [S(RUNNING_P2P)] = S(RUNNING),
        [S(PRE_COPY)] = S(PRE_COPY), [S(PRE_COPY_P2P)] = S(PRE_COPY_P2P), [S(ERROR)] = S(ERROR),
    },
    [S(PRE_COPY_P2P)] = {
        [S(STOP)] = S(RUNNING_P2P), [S(RUNNING)] = S(RUNNING_P2P), [S(STOP_COPY)] = S(STOP_COPY),
        [S(RESUMING)] = S(RUNNING_P2P), [S(RUNNING_P2P)] = S(RUNNING_P2P),
        [S(PRE_COPY)] = S(PRE_COPY), [S(PRE_COPY_P2P)] = S(PRE_COPY_P2P), [S(ERROR)] = S(ERROR),
    },
    [S(ERROR)] = {
        [S(STOP)] = S(ERROR), [S(RUNNING)] = S(ERROR), [S(STOP_COPY)] = S(ERROR),
        [S(RESUMING)] = S(ERROR), [S(RUNNING_P2P)] = S(ERROR),
        [S(PRE_COPY)] = S(ERROR), [S(PRE_COPY_P2P)] = S(ERROR), [S(ERROR)] = S(ERROR),
    },
};

/* state_flags_table: the flags a device needs for a state to exist. ERROR is given every bit
 * (~0U in the kernel), so it is never "supported": it cannot be requested or walked from. */
static const uint32_t state_needs_flags[_DEVICE_STATE_MAX] = {
    [S(STOP)] = MIG_FLAG_STOP_COPY,
    [S(RUNNING)] = MIG_FLAG_STOP_COPY,
    [S(STOP_COPY)] = MIG_FLAG_STOP_COPY,
    [S(RESUMING)] = MIG_FLAG_STOP_COPY,
    [S(RUNNING_P2P)] = MIG_FLAG_STOP_COPY | MIG_FLAG_P2P,
    [S(PRE_COPY)] = MIG_FLAG_STOP_COPY | MIG_FLAG_PRE_COPY,
    [S(PRE_COPY_P2P)] = MIG_FLAG_STOP_COPY | MIG_FLAG_P2P | MIG_FLAG_PRE_COPY,
    [S(ERROR)] = UINT32_MAX,
};

typedef struct StateInfo {
    const char *name;        /* lower case, the CLI's and JSON's spelling */
    const char *kernel_name; /* VFIO_DEVICE_STATE_<kernel_name> */
    const char *short_name;  /* the reference's abbreviation */
} StateInfo;

static const StateInfo state_info[_DEVICE_STATE_MAX] = {
    [S(ERROR)] = {"error", "ERROR", "err"},
    [S(STOP)] = {"stop", "STOP", "stop"},
    [S(RUNNING)] = {"running", "RUNNING", "run"},
    [S(STOP_COPY)] = {"stop_copy", "STOP_COPY", "sc"},
    [S(RESUMING)] = {"resuming", "RESUMING", "res"},
    [S(RUNNING_P2P)] = {"running_p2p", "RUNNING_P2P", "rp2p"},
    [S(PRE_COPY)] = {"pre_copy", "PRE_COPY", "pc"},
    [S(PRE_COPY_P2P)] = {"pre_copy_p2p", "PRE_COPY_P2P", "pcp2p"},
};
static_assert(ELEMENTSOF(state_info) == _DEVICE_STATE_MAX, "state_info out of sync");

static const char *const refusal_text[_FSM_REFUSAL_MAX] = {
    [FSM_OK] = "accepted",
    /* In parentheses: clang's -Wstring-concatenation takes two literals in an array for a
     * missing comma. */
    [FSM_REFUSE_BAD_FLAGS] =
        ("the migration flags are not one of the four legal sets (stop_copy, stop_copy+p2p, "
         "stop_copy+pre_copy, stop_copy+p2p+pre_copy)"),
    [FSM_REFUSE_BAD_STATE] = "the state number is not a VFIO migration state (0-7)",
    [FSM_REFUSE_FROM_ERROR] = "the device is in ERROR, which only a device reset leaves",
    [FSM_REFUSE_TO_ERROR] = "ERROR can never be requested",
    [FSM_REFUSE_FROM_UNSUPPORTED] = "the current state does not exist with these migration flags",
    [FSM_REFUSE_TO_UNSUPPORTED] = "the target state needs a migration flag the device lacks",
    [FSM_REFUSE_BLOCKED] =
        "the kernel forbids STOP_COPY -> PRE_COPY/PRE_COPY_P2P (leave through STOP first)",
};
static_assert(ELEMENTSOF(refusal_text) == _FSM_REFUSAL_MAX, "refusal_text out of sync");

bool
fsm_state_valid(int state)
{
    return state >= 0 && state < _DEVICE_STATE_MAX;
}

bool
fsm_flags_valid(uint32_t flags)
{
    return flags == MIG_FLAG_STOP_COPY || flags == (MIG_FLAG_STOP_COPY | MIG_FLAG_P2P) ||
           flags == (MIG_FLAG_STOP_COPY | MIG_FLAG_PRE_COPY) || flags == MIG_FLAGS_ALL;
}

bool
fsm_state_supported(DeviceState s, uint32_t flags)
{
    /* ERROR needs ~0U in the kernel; test it explicitly so that no flags word, not even one
     * with every bit set, can make it requestable. */
    if (!fsm_state_valid(s) || s == S(ERROR)) {
        return false;
    }
    return (state_needs_flags[s] & flags) == state_needs_flags[s];
}

bool
fsm_state_is_saving(DeviceState s)
{
    return s == S(PRE_COPY) || s == S(PRE_COPY_P2P) || s == S(STOP_COPY);
}

bool
fsm_state_is_running(DeviceState s)
{
    return s == S(RUNNING) || s == S(PRE_COPY);
}

bool
fsm_state_is_p2p(DeviceState s)
{
    return s == S(RUNNING_P2P) || s == S(PRE_COPY_P2P);
}

bool
fsm_state_is_stopped(DeviceState s)
{
    return s == S(STOP) || s == S(STOP_COPY) || s == S(RESUMING);
}

bool
fsm_state_needs_reset(DeviceState s)
{
    return s == S(ERROR) || s == S(RESUMING);
}

bool
fsm_arc_opens_session(DeviceState from, DeviceState to)
{
    return (from == S(RUNNING) && to == S(PRE_COPY)) ||
           (from == S(RUNNING_P2P) && to == S(PRE_COPY_P2P)) ||
           (from == S(STOP) && to == S(STOP_COPY)) || (from == S(STOP) && to == S(RESUMING));
}

bool
fsm_arc_closes_session(DeviceState from, DeviceState to)
{
    if (from == S(RESUMING)) {
        return to != S(RESUMING);
    }
    return fsm_state_is_saving(from) && !fsm_state_is_saving(to);
}

int
fsm_next_hop(DeviceState cur, DeviceState target, uint32_t flags, DeviceState *ret_next,
             FsmRefusal *ret_refusal)
{
    FsmRefusal why = FSM_OK;
    DeviceState next;

    if (!fsm_flags_valid(flags)) {
        why = FSM_REFUSE_BAD_FLAGS;
    } else if (!fsm_state_valid(cur) || !fsm_state_valid(target)) {
        why = FSM_REFUSE_BAD_STATE;
    } else if (cur == S(ERROR)) {
        why = FSM_REFUSE_FROM_ERROR; /* the kernel also WARNs here */
    } else if (!fsm_state_supported(cur, flags)) {
        why = FSM_REFUSE_FROM_UNSUPPORTED;
    } else if (target == S(ERROR)) {
        why = FSM_REFUSE_TO_ERROR;
    } else if (!fsm_state_supported(target, flags)) {
        why = FSM_REFUSE_TO_UNSUPPORTED;
    }
    if (why != FSM_OK) {
        if (ret_refusal) {
            *ret_refusal = why;
        }
        return -EINVAL;
    }

    /* Hop over optional states the device lacks. The "!= ERROR" guard is the 2026 kernel fix
     * that stops STOP_COPY -> PRE_COPY* from spinning forever; with it the request fails. */
    next = next_hop_table[cur][target];
    while (next != S(ERROR) && !fsm_state_supported(next, flags)) {
        next = next_hop_table[next][target];
    }
    if (next == S(ERROR)) {
        if (ret_refusal) {
            *ret_refusal = FSM_REFUSE_BLOCKED;
        }
        return -EINVAL;
    }

    if (ret_refusal) {
        *ret_refusal = FSM_OK;
    }
    *ret_next = next;
    return 0;
}

int
fsm_compute_path(DeviceState cur, DeviceState target, uint32_t flags, FsmPath *ret,
                 FsmRefusal *ret_refusal)
{
    FsmPath path = {.n_arcs = 0, .session_arc = -1};
    int r;

    /* The kernel validates the request even when nothing needs to move. */
    if (cur == target) {
        DeviceState unused;
        r = fsm_next_hop(cur, target, flags, &unused, ret_refusal);
        if (r < 0) {
            return r;
        }
    }

    while (cur != target) {
        DeviceState next;

        r = fsm_next_hop(cur, target, flags, &next, ret_refusal);
        if (r < 0) {
            return r;
        }
        /* The table is a shortest-path table over 7 states; more arcs means a corrupt table. */
        assert(path.n_arcs < FSM_MAX_ARCS);
        if (fsm_arc_opens_session(cur, next)) {
            path.session_arc = (int) path.n_arcs;
        }
        path.arcs[path.n_arcs++] = (FsmArc){cur, next};
        cur = next;
    }

    /* Kernel drivers treat a data fd from an interior arc as a bug (WARN, -EINVAL); the table
     * never produces one, and this keeps it that way. */
    assert(path.session_arc < 0 || (unsigned) path.session_arc == path.n_arcs - 1);
    *ret = path;
    return 0;
}

const char *
fsm_state_name(DeviceState s)
{
    return fsm_state_valid(s) ? state_info[s].name : NULL;
}

const char *
fsm_state_kernel_name(DeviceState s)
{
    return fsm_state_valid(s) ? state_info[s].kernel_name : NULL;
}

DeviceState
fsm_state_from_name(const char *name)
{
    if (!name) {
        return _DEVICE_STATE_INVALID;
    }
    for (int s = 0; s < _DEVICE_STATE_MAX; s++) {
        if (strcasecmp(name, state_info[s].name) == 0 ||
            strcasecmp(name, state_info[s].short_name) == 0) {
            return (DeviceState) s;
        }
    }
    return _DEVICE_STATE_INVALID;
}

const char *
fsm_refusal_to_string(FsmRefusal r)
{
    if (r < 0 || r >= _FSM_REFUSAL_MAX) {
        return "unknown refusal";
    }
    return refusal_text[r];
}

static const struct {
    const char *name;
    uint32_t bit;
} flag_names[] = {
    {"stop_copy", MIG_FLAG_STOP_COPY},
    {"p2p", MIG_FLAG_P2P},
    {"pre_copy", MIG_FLAG_PRE_COPY},
};

char *
fsm_flags_to_string(uint32_t flags, char *buf, unsigned size)
{
    size_t used = 0;

    assert(buf && size > 0);
    buf[0] = '\0';
    for (size_t i = 0; i < ELEMENTSOF(flag_names); i++) {
        if (flags & flag_names[i].bit) {
            int n = snprintf(buf + used, size - used, "%s%s", used ? "+" : "", flag_names[i].name);
            if (n < 0 || (size_t) n >= size - used) {
                break;
            }
            used += (size_t) n;
        }
    }
    if (flags & ~MIG_FLAGS_ALL) {
        (void) snprintf(buf + used, size - used, "%s0x%x", used ? "+" : "", flags & ~MIG_FLAGS_ALL);
    }
    return buf;
}

static int
flag_from_word(const char *word, size_t len, uint32_t *ret_bit)
{
    for (size_t i = 0; i < ELEMENTSOF(flag_names); i++) {
        if (strlen(flag_names[i].name) == len && strncasecmp(word, flag_names[i].name, len) == 0) {
            *ret_bit = flag_names[i].bit;
            return 0;
        }
    }
    return -EINVAL;
}

int
fsm_flags_from_string(const char *s, uint32_t *ret_flags)
{
    uint32_t flags = 0;

    if (!s || !*s) {
        return -EINVAL;
    }
    if (isdigit((unsigned char) s[0])) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 0);
        if (errno || *end || v > UINT32_MAX) {
            return -EINVAL;
        }
        *ret_flags = (uint32_t) v;
        return 0;
    }
    while (*s) {
        size_t len = strcspn(s, "+,|");
        uint32_t bit;

        if (len == 0 || flag_from_word(s, len, &bit) < 0) {
            return -EINVAL;
        }
        flags |= bit;
        s += len;
        if (*s) {
            s++;
            if (!*s) {
                return -EINVAL; /* trailing separator */
            }
        }
    }
    *ret_flags = flags;
    return 0;
}
