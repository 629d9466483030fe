/* SPDX-License-Identifier: MIT */
/*
 * test_fsm — unit tests for daemon/core/fsm.c, the kernel's VFIO migration v2 state machine.
 *
 * The oracle is independent of the code under test. The golden data below is the shared
 * reference kernel-uapi.md §6.3 ("Resolved paths per flag combination"), typed in again here
 * cell by cell, for all 8x8 (current, target) pairs of all four legal flag sets; cells the
 * reference leaves out (states a flag set lacks, and ERROR) are "EINVAL". A second oracle,
 * the §6.1 raw next-hop table and the §6.2 skipping rule re-implemented in this file, checks
 * the transcription before fsm.c is compared with it; fsm.c itself is never used to compute
 * an expected value. Names of states in messages come from this file's own table too.
 *
 * Cell syntax: "RP2P>STOP>SC" is the arcs cur->RP2P, RP2P->STOP, STOP->SC; "-" is a no-op;
 * "EINVAL" is a refused request. Loops use cr_expect so one run lists every failing triple.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/fsm.h"

#define N_REF 8
#define EINV "EINVAL"

/* Every test runs in its own process (criterion default) with a timeout, so a path loop
 * that never ends fails instead of hanging the suite. */
TestSuite(fsm, .timeout = 60);

/* ---- the reference's state abbreviations, in the reference's row/column order */

typedef struct RefState {
    const char *abbr;  /* kernel-uapi.md §0 abbreviation */
    DeviceState state; /* enum value; test_fsm/enum_values_are_the_kernels pins these */
    uint32_t needs;    /* §6.2 state_flags_table */
} RefState;

/* clang-format off */
static const RefState ref_states[N_REF] = {
    {"STOP", DEVICE_STATE_STOP, 0x1},
    {"RUN", DEVICE_STATE_RUNNING, 0x1},
    {"SC", DEVICE_STATE_STOP_COPY, 0x1},
    {"RES", DEVICE_STATE_RESUMING, 0x1},
    {"RP2P", DEVICE_STATE_RUNNING_P2P, 0x3},
    {"PC", DEVICE_STATE_PRE_COPY, 0x5},
    {"PCP2P", DEVICE_STATE_PRE_COPY_P2P, 0x7},
    {"ERR", DEVICE_STATE_ERROR, UINT32_MAX},
};
/* clang-format on */

static const uint32_t legal_flags[] = {0x1, 0x3, 0x5, 0x7};

static int
ref_index(const char *abbr, size_t len)
{
    for (int i = 0; i < N_REF; i++) {
        if (strlen(ref_states[i].abbr) == len && strncmp(ref_states[i].abbr, abbr, len) == 0) {
            return i;
        }
    }
    return -1;
}

static int
ref_index_of_state(int s)
{
    for (int i = 0; i < N_REF; i++) {
        if ((int)ref_states[i].state == s) {
            return i;
        }
    }
    return -1;
}

/* Abbreviation for messages; copes with out-of-range numbers. */
static const char *
abbr(int s)
{
    int i = ref_index_of_state(s);
    return i < 0 ? "<invalid>" : ref_states[i].abbr;
}

static bool
ref_supported(int i, uint32_t flags)
{
    return (ref_states[i].needs & flags) == ref_states[i].needs;
}

/* ---- golden data: kernel-uapi.md §6.3, typed in again. Rows = current, columns = target. */

typedef struct Golden {
    uint32_t flags;
    const char *arc_list; /* the arcs the §6.3 heading says a driver must implement */
    unsigned n_arc_list;  /* how many the heading counts */
    const char *cells[N_REF][N_REF];
} Golden;

/* clang-format off */
static const Golden golden[] = {
    {
        .flags = 0x1,
        .arc_list = "RUN>STOP STOP>RUN STOP>SC SC>STOP STOP>RES RES>STOP",
        .n_arc_list = 6,
        .cells = {
            /*          STOP         RUN              SC               RES */
            /*          RP2P         PC               PCP2P            ERR */
            /* STOP */ {"-",         "RUN",           "SC",            "RES",
                        EINV,        EINV,            EINV,            EINV},
            /* RUN  */ {"STOP",      "-",             "STOP>SC",       "STOP>RES",
                        EINV,        EINV,            EINV,            EINV},
            /* SC   */ {"STOP",      "STOP>RUN",      "-",             "STOP>RES",
                        EINV,        EINV,            EINV,            EINV},
            /* RES  */ {"STOP",      "STOP>RUN",      "STOP>SC",       "-",
                        EINV,        EINV,            EINV,            EINV},
            /* RP2P */ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
            /* PC   */ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
            /* PCP2P*/ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
            /* ERR  */ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
        },
    },
    {
        .flags = 0x3,
        .arc_list = "RUN>RP2P RP2P>RUN RP2P>STOP STOP>RP2P STOP>SC SC>STOP STOP>RES RES>STOP",
        .n_arc_list = 8,
        .cells = {
            /*          STOP         RUN              SC               RES */
            /*          RP2P         PC               PCP2P            ERR */
            /* STOP */ {"-",         "RP2P>RUN",      "SC",            "RES",
                        "RP2P",      EINV,            EINV,            EINV},
            /* RUN  */ {"RP2P>STOP", "-",             "RP2P>STOP>SC",  "RP2P>STOP>RES",
                        "RP2P",      EINV,            EINV,            EINV},
            /* SC   */ {"STOP",      "STOP>RP2P>RUN", "-",             "STOP>RES",
                        "STOP>RP2P", EINV,            EINV,            EINV},
            /* RES  */ {"STOP",      "STOP>RP2P>RUN", "STOP>SC",       "-",
                        "STOP>RP2P", EINV,            EINV,            EINV},
            /* RP2P */ {"STOP",      "RUN",           "STOP>SC",       "STOP>RES",
                        "-",         EINV,            EINV,            EINV},
            /* PC   */ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
            /* PCP2P*/ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
            /* ERR  */ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
        },
    },
    {
        .flags = 0x5,
        .arc_list = "RUN>STOP STOP>RUN STOP>SC SC>STOP STOP>RES RES>STOP RUN>PC PC>RUN PC>SC",
        .n_arc_list = 9,
        .cells = {
            /*          STOP         RUN              SC               RES */
            /*          RP2P         PC               PCP2P            ERR */
            /* STOP */ {"-",         "RUN",           "SC",            "RES",
                        EINV,        "RUN>PC",        EINV,            EINV},
            /* RUN  */ {"STOP",      "-",             "STOP>SC",       "STOP>RES",
                        EINV,        "PC",            EINV,            EINV},
            /* SC   */ {"STOP",      "STOP>RUN",      "-",             "STOP>RES",
                        EINV,        EINV,            EINV,            EINV},
            /* RES  */ {"STOP",      "STOP>RUN",      "STOP>SC",       "-",
                        EINV,        "STOP>RUN>PC",   EINV,            EINV},
            /* RP2P */ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
            /* PC   */ {"RUN>STOP",  "RUN",           "SC",            "RUN>STOP>RES",
                        EINV,        "-",             EINV,            EINV},
            /* PCP2P*/ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
            /* ERR  */ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
        },
    },
    {
        .flags = 0x7,
        .arc_list = "RUN>RP2P RP2P>RUN RP2P>STOP STOP>RP2P STOP>SC SC>STOP STOP>RES RES>STOP "
                    "RUN>PC PC>RUN PC>PCP2P PCP2P>PC PCP2P>RP2P PCP2P>SC RP2P>PCP2P",
        .n_arc_list = 15,
        .cells = {
            /*          STOP             RUN              SC               RES */
            /*          RP2P             PC               PCP2P            ERR */
            /* STOP */ {"-",             "RP2P>RUN",      "SC",            "RES",
                        "RP2P",          "RP2P>RUN>PC",   "RP2P>PCP2P",    EINV},
            /* RUN  */ {"RP2P>STOP",     "-",             "RP2P>STOP>SC",  "RP2P>STOP>RES",
                        "RP2P",          "PC",            "RP2P>PCP2P",    EINV},
            /* SC   */ {"STOP",          "STOP>RP2P>RUN", "-",             "STOP>RES",
                        "STOP>RP2P",     EINV,            EINV,            EINV},
            /* RES  */ {"STOP",          "STOP>RP2P>RUN", "STOP>SC",       "-",
                        "STOP>RP2P",     "STOP>RP2P>RUN>PC", "STOP>RP2P>PCP2P", EINV},
            /* RP2P */ {"STOP",          "RUN",           "STOP>SC",       "STOP>RES",
                        "-",             "RUN>PC",        "PCP2P",         EINV},
            /* PC   */ {"RUN>RP2P>STOP", "RUN",           "PCP2P>SC",      "RUN>RP2P>STOP>RES",
                        "RUN>RP2P",      "-",             "PCP2P",         EINV},
            /* PCP2P*/ {"RP2P>STOP",     "RP2P>RUN",      "SC",            "RP2P>STOP>RES",
                        "RP2P",          "PC",            "-",             EINV},
            /* ERR  */ {EINV, EINV, EINV, EINV, EINV, EINV, EINV, EINV},
        },
    },
};
/* clang-format on */

static const Golden *
golden_for(uint32_t flags)
{
    for (size_t i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
        if (golden[i].flags == flags) {
            return &golden[i];
        }
    }
    return NULL;
}

/* ---- helpers: a path as a list of reference indexes, parsed from a cell */

typedef struct RefPath {
    bool refused;
    unsigned n; /* number of arcs */
    int hop[8]; /* hop[i] = reference index of arc i's destination */
} RefPath;

static RefPath
parse_cell(const char *cell)
{
    RefPath p = {0};

    if (strcmp(cell, EINV) == 0) {
        p.refused = true;
        return p;
    }
    if (strcmp(cell, "-") == 0) {
        return p;
    }
    for (const char *s = cell; *s;) {
        size_t len = strcspn(s, ">");
        int i = ref_index(s, len);

        cr_assert_geq(i, 0, "golden cell '%s' names an unknown state", cell);
        cr_assert_lt(p.n, 8u, "golden cell '%s' is too long", cell);
        p.hop[p.n++] = i;
        s += len;
        if (*s == '>') {
            s++;
        }
    }
    return p;
}

/* Formats an FsmPath the way the golden cells are written, for readable diffs. */
static void
format_fsm_path(const FsmPath *p, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    if (p->n_arcs == 0) {
        (void)snprintf(buf, size, "-");
        return;
    }
    for (unsigned i = 0; i < p->n_arcs && i < FSM_MAX_ARCS; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ">" : "", abbr(p->arcs[i].to));
        if (n < 0 || (size_t)n >= size - used) {
            return;
        }
        used += (size_t)n;
    }
}

/* The four arcs that return a new data fd (§5.2), as reference index pairs. */
static bool
ref_arc_opens_session(int from, int to)
{
    static const char *const opening[] = {"RUN>PC", "RP2P>PCP2P", "STOP>SC", "STOP>RES"};
    char arc[16];

    (void)snprintf(arc, sizeof(arc), "%s>%s", ref_states[from].abbr, ref_states[to].abbr);
    for (size_t i = 0; i < sizeof(opening) / sizeof(opening[0]); i++) {
        if (strcmp(arc, opening[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* session_arc the reference implies: the last arc's index when it opens a session, else -1. */
static int
ref_session_arc(int cur, const RefPath *p)
{
    int from;

    if (p->n == 0) {
        return -1;
    }
    from = p->n >= 2 ? p->hop[p->n - 2] : cur;
    return ref_arc_opens_session(from, p->hop[p->n - 1]) ? (int)p->n - 1 : -1;
}

static bool
ref_is_saving(int i)
{
    return strcmp(ref_states[i].abbr, "PC") == 0 || strcmp(ref_states[i].abbr, "PCP2P") == 0 ||
           strcmp(ref_states[i].abbr, "SC") == 0;
}

/* ---- second oracle: kernel-uapi.md §6.1 raw table + §6.2 skipping rule, re-implemented */

/* clang-format off */
static const char *const raw_table[N_REF][N_REF] = {
    /*            STOP    RUN     SC      RES     RP2P    PC      PCP2P    ERR */
    /* STOP  */ {"STOP", "RP2P", "SC",   "RES",  "RP2P", "RP2P", "RP2P",  "ERR"},
    /* RUN   */ {"RP2P", "RUN",  "RP2P", "RP2P", "RP2P", "PC",   "RP2P",  "ERR"},
    /* SC    */ {"STOP", "STOP", "SC",   "STOP", "STOP", "ERR",  "ERR",   "ERR"},
    /* RES   */ {"STOP", "STOP", "STOP", "RES",  "STOP", "STOP", "STOP",  "ERR"},
    /* RP2P  */ {"STOP", "RUN",  "STOP", "STOP", "RP2P", "RUN",  "PCP2P", "ERR"},
    /* PC    */ {"RUN",  "RUN",  "PCP2P", "RUN", "RUN",  "PC",   "PCP2P", "ERR"},
    /* PCP2P */ {"RP2P", "RP2P", "SC",   "RP2P", "RP2P", "PC",   "PCP2P", "ERR"},
    /* ERR   */ {"ERR",  "ERR",  "ERR",  "ERR",  "ERR",  "ERR",  "ERR",   "ERR"},
};
/* clang-format on */

#define REF_ERR 7

static int
raw_next(int cur, int target)
{
    const char *s = raw_table[cur][target];
    return ref_index(s, strlen(s));
}

/*
 * vfio_mig_get_next_state() per §6.2. @guarded selects the 2026 fix ("next != ERR" in the
 * skip loop). Returns the next reference index, -1 when refused, or -2 when the unguarded
 * loop has not finished after @max_spins iterations (the kernel's soft lockup).
 */
static int
ref_next_hop(int cur, int target, uint32_t flags, bool guarded, unsigned max_spins)
{
    int next;

    if (!ref_supported(cur, flags) || !ref_supported(target, flags)) {
        return -1;
    }
    next = raw_next(cur, target);
    for (unsigned spins = 0; (!guarded || next != REF_ERR) && !ref_supported(next, flags);
         spins++) {
        if (spins >= max_spins) {
            return -2;
        }
        next = raw_next(next, target);
    }
    return next == REF_ERR ? -1 : next;
}

/* The driver loop of §6.4 over ref_next_hop(), producing a cell string. */
static void
ref_resolve(int cur, int target, uint32_t flags, char *buf, size_t size)
{
    size_t used = 0;
    int r = ref_next_hop(cur, target, flags, true, 16);

    if (r < 0) {
        (void)snprintf(buf, size, EINV);
        return;
    }
    if (cur == target) {
        (void)snprintf(buf, size, "-");
        return;
    }
    buf[0] = '\0';
    for (unsigned hops = 0; cur != target; hops++) {
        int next = ref_next_hop(cur, target, flags, true, 16);

        if (next < 0 || hops > 8) {
            (void)snprintf(buf, size, "<oracle failed>");
            return;
        }
        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ">" : "",
                                 ref_states[next].abbr);
        cur = next;
    }
}

/* ---- enum values and the oracles themselves */

Test(fsm, enum_values_are_the_kernels)
{
    /* kernel-uapi.md §5.2 enum vfio_device_mig_state and §5.1 VFIO_MIGRATION_* */
    cr_assert_eq(DEVICE_STATE_ERROR, 0);
    cr_assert_eq(DEVICE_STATE_STOP, 1);
    cr_assert_eq(DEVICE_STATE_RUNNING, 2);
    cr_assert_eq(DEVICE_STATE_STOP_COPY, 3);
    cr_assert_eq(DEVICE_STATE_RESUMING, 4);
    cr_assert_eq(DEVICE_STATE_RUNNING_P2P, 5);
    cr_assert_eq(DEVICE_STATE_PRE_COPY, 6);
    cr_assert_eq(DEVICE_STATE_PRE_COPY_P2P, 7);
    cr_assert_eq(_DEVICE_STATE_MAX, 8);
    cr_assert_eq(_DEVICE_STATE_INVALID, -EINVAL);
    cr_assert_eq(MIG_FLAG_STOP_COPY, 0x1u);
    cr_assert_eq(MIG_FLAG_P2P, 0x2u);
    cr_assert_eq(MIG_FLAG_PRE_COPY, 0x4u);
    cr_assert_eq(MIG_FLAGS_ALL, 0x7u);
    cr_assert_geq(FSM_MAX_ARCS, 4, "the reference's longest path has 4 arcs");
}

Test(fsm, golden_tables_agree_with_reference_algorithm)
{
    /* Guards the transcription: §6.3 typed in must equal §6.1 + §6.2 run here. */
    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        for (int c = 0; c < N_REF; c++) {
            for (int t = 0; t < N_REF; t++) {
                char buf[64];

                ref_resolve(c, t, golden[g].flags, buf, sizeof(buf));
                cr_expect_str_eq(golden[g].cells[c][t], buf, "flags=%#x %s->%s", golden[g].flags,
                                 ref_states[c].abbr, ref_states[t].abbr);
            }
        }
    }
}

Test(fsm, unguarded_kernel_spins_exactly_on_stop_copy_to_pre_copy)
{
    /* §6.2 kernel bug: without the "next != ERR" guard the skip loop never ends for
     * SC -> PC / PCP2P on PRE_COPY devices; every other request terminates. */
    for (size_t g = 0; g < sizeof(legal_flags) / sizeof(legal_flags[0]); g++) {
        uint32_t flags = legal_flags[g];

        for (int c = 0; c < N_REF; c++) {
            for (int t = 0; t < N_REF; t++) {
                bool blocked = strcmp(ref_states[c].abbr, "SC") == 0 &&
                               (strcmp(ref_states[t].abbr, "PC") == 0 ||
                                strcmp(ref_states[t].abbr, "PCP2P") == 0) &&
                               ref_supported(t, flags);
                int r = ref_next_hop(c, t, flags, false, 64);

                cr_expect_eq(r == -2, blocked, "flags=%#x %s->%s unguarded result %d", flags,
                             ref_states[c].abbr, ref_states[t].abbr, r);
            }
        }
    }
}

/* ---- fsm_compute_path against the golden tables */

static void
check_golden_table(uint32_t flags)
{
    const Golden *g = golden_for(flags);

    cr_assert_not_null(g);
    for (int c = 0; c < N_REF; c++) {
        for (int t = 0; t < N_REF; t++) {
            DeviceState cur = ref_states[c].state, target = ref_states[t].state;
            const char *cell = g->cells[c][t];
            RefPath want = parse_cell(cell);
            FsmPath got, sentinel;
            FsmRefusal why = (FsmRefusal)0x5a5a;
            char got_str[64];
            int r;

            memset(&got, 0xa5, sizeof(got));
            sentinel = got;
            r = fsm_compute_path(cur, target, flags, &got, &why);

            if (want.refused) {
                cr_expect_eq(r, -EINVAL, "flags=%#x %s->%s: expected refusal, got r=%d", flags,
                             ref_states[c].abbr, ref_states[t].abbr, r);
                cr_expect(why != FSM_OK && why < _FSM_REFUSAL_MAX,
                          "flags=%#x %s->%s: refusal reason %d", flags, ref_states[c].abbr,
                          ref_states[t].abbr, (int)why);
                cr_expect(memcmp(&got, &sentinel, sizeof(got)) == 0,
                          "flags=%#x %s->%s: *ret written on failure", flags, ref_states[c].abbr,
                          ref_states[t].abbr);
                continue;
            }

            cr_expect_eq(r, 0, "flags=%#x %s->%s: expected '%s', got r=%d", flags,
                         ref_states[c].abbr, ref_states[t].abbr, cell, r);
            if (r != 0) {
                continue;
            }
            cr_expect_eq(why, FSM_OK, "flags=%#x %s->%s: refusal %d on success", flags,
                         ref_states[c].abbr, ref_states[t].abbr, (int)why);
            cr_expect_eq(got.n_arcs, want.n, "flags=%#x %s->%s: n_arcs %u, want %u ('%s')", flags,
                         ref_states[c].abbr, ref_states[t].abbr, got.n_arcs, want.n, cell);
            if (got.n_arcs > FSM_MAX_ARCS) {
                continue;
            }
            format_fsm_path(&got, got_str, sizeof(got_str));
            cr_expect_str_eq(got_str, cell, "flags=%#x %s->%s", flags, ref_states[c].abbr,
                             ref_states[t].abbr);
            for (unsigned i = 0; i < got.n_arcs && i < want.n; i++) {
                DeviceState from = i == 0 ? cur : ref_states[want.hop[i - 1]].state;

                cr_expect_eq(got.arcs[i].from, from, "flags=%#x %s->%s arc %u from %s, want %s",
                             flags, ref_states[c].abbr, ref_states[t].abbr, i,
                             abbr(got.arcs[i].from), abbr(from));
                cr_expect_eq(got.arcs[i].to, ref_states[want.hop[i]].state,
                             "flags=%#x %s->%s arc %u to %s, want %s", flags, ref_states[c].abbr,
                             ref_states[t].abbr, i, abbr(got.arcs[i].to),
                             ref_states[want.hop[i]].abbr);
            }
            cr_expect_eq(got.session_arc, ref_session_arc(c, &want),
                         "flags=%#x %s->%s ('%s'): session_arc %d, want %d", flags,
                         ref_states[c].abbr, ref_states[t].abbr, cell, got.session_arc,
                         ref_session_arc(c, &want));
        }
    }
}

Test(fsm, golden_stop_copy)
{
    check_golden_table(0x1);
}

Test(fsm, golden_stop_copy_p2p)
{
    check_golden_table(0x3);
}

Test(fsm, golden_stop_copy_pre_copy)
{
    check_golden_table(0x5);
}

Test(fsm, golden_all_flags)
{
    check_golden_table(0x7);
}

Test(fsm, session_arc_spot_checks)
{
    static const struct {
        uint32_t flags;
        DeviceState cur, target;
        int session_arc;
        unsigned n_arcs;
    } cases[] = {
        {0x7, DEVICE_STATE_RUNNING, DEVICE_STATE_PRE_COPY, 0, 1},         /* RUN->PC */
        {0x7, DEVICE_STATE_RUNNING_P2P, DEVICE_STATE_PRE_COPY_P2P, 0, 1}, /* RP2P->PCP2P */
        {0x7, DEVICE_STATE_STOP, DEVICE_STATE_STOP_COPY, 0, 1},           /* STOP->SC */
        {0x7, DEVICE_STATE_STOP, DEVICE_STATE_RESUMING, 0, 1},            /* STOP->RES */
        {0x7, DEVICE_STATE_RUNNING, DEVICE_STATE_STOP_COPY, 2, 3},        /* fd on last arc */
        {0x7, DEVICE_STATE_RUNNING, DEVICE_STATE_RESUMING, 2, 3},
        {0x7, DEVICE_STATE_RESUMING, DEVICE_STATE_PRE_COPY, 3, 4},
        {0x7, DEVICE_STATE_PRE_COPY, DEVICE_STATE_STOP_COPY, -1, 2}, /* PCP2P->SC: no fd */
        {0x7, DEVICE_STATE_PRE_COPY_P2P, DEVICE_STATE_STOP_COPY, -1, 1},
        {0x5, DEVICE_STATE_PRE_COPY, DEVICE_STATE_STOP_COPY, -1, 1}, /* PC->SC: no fd */
        {0x7, DEVICE_STATE_PRE_COPY, DEVICE_STATE_PRE_COPY_P2P, -1, 1},
        {0x7, DEVICE_STATE_STOP_COPY, DEVICE_STATE_STOP, -1, 1},
        {0x7, DEVICE_STATE_RESUMING, DEVICE_STATE_RUNNING, -1, 3},
        {0x1, DEVICE_STATE_RUNNING, DEVICE_STATE_STOP_COPY, 1, 2},
        {0x1, DEVICE_STATE_RUNNING, DEVICE_STATE_RUNNING, -1, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FsmPath p;
        int r = fsm_compute_path(cases[i].cur, cases[i].target, cases[i].flags, &p, NULL);

        cr_expect_eq(r, 0, "flags=%#x %s->%s", cases[i].flags, abbr(cases[i].cur),
                     abbr(cases[i].target));
        if (r == 0) {
            cr_expect_eq(p.n_arcs, cases[i].n_arcs, "flags=%#x %s->%s", cases[i].flags,
                         abbr(cases[i].cur), abbr(cases[i].target));
            cr_expect_eq(p.session_arc, cases[i].session_arc, "flags=%#x %s->%s", cases[i].flags,
                         abbr(cases[i].cur), abbr(cases[i].target));
        }
    }
}

Test(fsm, null_refusal_pointer_is_accepted)
{
    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        for (int c = 0; c < N_REF; c++) {
            for (int t = 0; t < N_REF; t++) {
                FsmPath p;
                DeviceState next;
                bool refused = strcmp(golden[g].cells[c][t], EINV) == 0;
                int r = fsm_compute_path(ref_states[c].state, ref_states[t].state, golden[g].flags,
                                         &p, NULL);
                int rh = fsm_next_hop(ref_states[c].state, ref_states[t].state, golden[g].flags,
                                      &next, NULL);

                cr_expect_eq(r, refused ? -EINVAL : 0, "flags=%#x %s->%s", golden[g].flags,
                             ref_states[c].abbr, ref_states[t].abbr);
                cr_expect_eq(rh, refused ? -EINVAL : 0, "flags=%#x %s->%s", golden[g].flags,
                             ref_states[c].abbr, ref_states[t].abbr);
            }
        }
    }
}

/* ---- refusals */

/* The reason fsm.h documents, derived from the kernel's check order (§6.2 steps 1, 2, 4). */
static FsmRefusal
expected_refusal(int c, int t, uint32_t flags)
{
    if (c == REF_ERR) {
        return FSM_REFUSE_FROM_ERROR;
    }
    if (!ref_supported(c, flags)) {
        return FSM_REFUSE_FROM_UNSUPPORTED;
    }
    if (t == REF_ERR) {
        return FSM_REFUSE_TO_ERROR;
    }
    if (!ref_supported(t, flags)) {
        return FSM_REFUSE_TO_UNSUPPORTED;
    }
    return FSM_REFUSE_BLOCKED;
}

Test(fsm, refusal_reason_of_every_refused_pair)
{
    unsigned blocked = 0;

    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        uint32_t flags = golden[g].flags;

        for (int c = 0; c < N_REF; c++) {
            for (int t = 0; t < N_REF; t++) {
                FsmPath p;
                FsmRefusal why = FSM_OK;
                FsmRefusal want;

                if (strcmp(golden[g].cells[c][t], EINV) != 0) {
                    continue;
                }
                want = expected_refusal(c, t, flags);
                if (want == FSM_REFUSE_BLOCKED) {
                    blocked++;
                    cr_expect_str_eq(ref_states[c].abbr, "SC", "flags=%#x %s->%s blocked", flags,
                                     ref_states[c].abbr, ref_states[t].abbr);
                }
                (void)fsm_compute_path(ref_states[c].state, ref_states[t].state, flags, &p, &why);
                cr_expect_eq(why, want, "flags=%#x %s->%s: refusal %d (%s), want %d", flags,
                             ref_states[c].abbr, ref_states[t].abbr, (int)why,
                             fsm_refusal_to_string(why), (int)want);
            }
        }
    }
    /* SC->PC with 0x5; SC->PC and SC->PCP2P with 0x7. */
    cr_expect_eq(blocked, 3u);
}

Test(fsm, refusal_reasons_representative)
{
    static const struct {
        uint32_t flags;
        int cur, target;
        FsmRefusal why;
    } cases[] = {
        {0x7, DEVICE_STATE_ERROR, DEVICE_STATE_RUNNING, FSM_REFUSE_FROM_ERROR},
        {0x7, DEVICE_STATE_ERROR, DEVICE_STATE_ERROR, FSM_REFUSE_FROM_ERROR},
        {0x1, DEVICE_STATE_ERROR, DEVICE_STATE_PRE_COPY, FSM_REFUSE_FROM_ERROR},
        {0x7, DEVICE_STATE_RUNNING, DEVICE_STATE_ERROR, FSM_REFUSE_TO_ERROR},
        {0x1, DEVICE_STATE_STOP, DEVICE_STATE_ERROR, FSM_REFUSE_TO_ERROR},
        {0x1, DEVICE_STATE_RUNNING, DEVICE_STATE_RUNNING_P2P, FSM_REFUSE_TO_UNSUPPORTED},
        {0x3, DEVICE_STATE_RUNNING, DEVICE_STATE_PRE_COPY, FSM_REFUSE_TO_UNSUPPORTED},
        {0x5, DEVICE_STATE_RUNNING, DEVICE_STATE_PRE_COPY_P2P, FSM_REFUSE_TO_UNSUPPORTED},
        {0x5, DEVICE_STATE_RUNNING, DEVICE_STATE_RUNNING_P2P, FSM_REFUSE_TO_UNSUPPORTED},
        {0x1, DEVICE_STATE_RUNNING_P2P, DEVICE_STATE_RUNNING, FSM_REFUSE_FROM_UNSUPPORTED},
        {0x3, DEVICE_STATE_PRE_COPY_P2P, DEVICE_STATE_STOP, FSM_REFUSE_FROM_UNSUPPORTED},
        {0x5, DEVICE_STATE_PRE_COPY_P2P, DEVICE_STATE_PRE_COPY_P2P, FSM_REFUSE_FROM_UNSUPPORTED},
        /* the kernel checks the current state first (§6.2 step 1 before step 2) */
        {0x1, DEVICE_STATE_PRE_COPY, DEVICE_STATE_ERROR, FSM_REFUSE_FROM_UNSUPPORTED},
        {0x7, DEVICE_STATE_STOP_COPY, DEVICE_STATE_PRE_COPY, FSM_REFUSE_BLOCKED},
        {0x7, DEVICE_STATE_STOP_COPY, DEVICE_STATE_PRE_COPY_P2P, FSM_REFUSE_BLOCKED},
        {0x5, DEVICE_STATE_STOP_COPY, DEVICE_STATE_PRE_COPY, FSM_REFUSE_BLOCKED},
        {0x3, DEVICE_STATE_STOP_COPY, DEVICE_STATE_PRE_COPY, FSM_REFUSE_TO_UNSUPPORTED},
        {0x0, DEVICE_STATE_RUNNING, DEVICE_STATE_STOP, FSM_REFUSE_BAD_FLAGS},
        {0x8, 99, -1, FSM_REFUSE_BAD_FLAGS}, /* flags are checked before states */
        {0x7, 8, DEVICE_STATE_STOP, FSM_REFUSE_BAD_STATE},
        {0x7, DEVICE_STATE_STOP, 8, FSM_REFUSE_BAD_STATE},
        {0x7, -1, DEVICE_STATE_ERROR, FSM_REFUSE_BAD_STATE},
        {0x7, DEVICE_STATE_ERROR, 99, FSM_REFUSE_BAD_STATE},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FsmPath p;
        DeviceState next = (DeviceState)0x77;
        FsmRefusal why = FSM_OK, why_hop = FSM_OK;
        int r = fsm_compute_path((DeviceState)cases[i].cur, (DeviceState)cases[i].target,
                                 cases[i].flags, &p, &why);
        int rh = fsm_next_hop((DeviceState)cases[i].cur, (DeviceState)cases[i].target,
                              cases[i].flags, &next, &why_hop);

        cr_expect_eq(r, -EINVAL, "case %zu flags=%#x %d->%d", i, cases[i].flags, cases[i].cur,
                     cases[i].target);
        cr_expect_eq(why, cases[i].why, "case %zu flags=%#x %d->%d: %d (%s), want %d", i,
                     cases[i].flags, cases[i].cur, cases[i].target, (int)why,
                     fsm_refusal_to_string(why), (int)cases[i].why);
        cr_expect_eq(rh, -EINVAL, "case %zu next_hop", i);
        cr_expect_eq(why_hop, cases[i].why, "case %zu next_hop reason %d", i, (int)why_hop);
        cr_expect_eq((int)next, 0x77, "case %zu: *ret_next written on failure", i);
    }
}

Test(fsm, illegal_flag_sets_refused_for_every_pair)
{
    static const uint32_t extra[] = {0x8,        0xf,        0x10,      0x11,       0xff,
                                     0x100,      0x101,      0x107,     0x80000001, 0x80000007,
                                     0xfffffff9, 0xfffffffe, 0xffffffff};
    static const int states[] = {-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 99};
    uint32_t flag_sets[64 + sizeof(extra) / sizeof(extra[0])];
    size_t n = 0;

    for (uint32_t f = 0; f < 64; f++) {
        if (f != 0x1 && f != 0x3 && f != 0x5 && f != 0x7) {
            flag_sets[n++] = f;
        }
    }
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        flag_sets[n++] = extra[i];
    }

    for (size_t i = 0; i < n; i++) {
        cr_expect_not(fsm_flags_valid(flag_sets[i]), "flags=%#x", flag_sets[i]);
        for (size_t c = 0; c < sizeof(states) / sizeof(states[0]); c++) {
            for (size_t t = 0; t < sizeof(states) / sizeof(states[0]); t++) {
                FsmPath p;
                DeviceState next;
                FsmRefusal why = FSM_OK, why_hop = FSM_OK;
                int r = fsm_compute_path((DeviceState)states[c], (DeviceState)states[t],
                                         flag_sets[i], &p, &why);
                int rh = fsm_next_hop((DeviceState)states[c], (DeviceState)states[t], flag_sets[i],
                                      &next, &why_hop);

                cr_expect_eq(r, -EINVAL, "flags=%#x %d->%d", flag_sets[i], states[c], states[t]);
                cr_expect_eq(why, FSM_REFUSE_BAD_FLAGS, "flags=%#x %d->%d: %d", flag_sets[i],
                             states[c], states[t], (int)why);
                cr_expect_eq(rh, -EINVAL, "next_hop flags=%#x %d->%d", flag_sets[i], states[c],
                             states[t]);
                cr_expect_eq(why_hop, FSM_REFUSE_BAD_FLAGS, "next_hop flags=%#x %d->%d",
                             flag_sets[i], states[c], states[t]);
            }
        }
    }
}

Test(fsm, out_of_range_states_refused)
{
    static const int bad[] = {-1, 8, 99, -EINVAL, INT_MIN, INT_MAX};
    /* every valid state, then the bad ones again */
    static const int other[] = {0, 1, 2, 3, 4, 5, 6, 7, -1, 8, 99, -EINVAL, INT_MIN, INT_MAX};

    for (size_t g = 0; g < sizeof(legal_flags) / sizeof(legal_flags[0]); g++) {
        for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
            for (size_t o = 0; o < sizeof(other) / sizeof(other[0]); o++) {
                const int pairs[2][2] = {{bad[b], other[o]}, {other[o], bad[b]}};

                for (int k = 0; k < 2; k++) {
                    FsmPath p;
                    DeviceState next;
                    FsmRefusal why = FSM_OK, why_hop = FSM_OK;
                    int r = fsm_compute_path((DeviceState)pairs[k][0], (DeviceState)pairs[k][1],
                                             legal_flags[g], &p, &why);
                    int rh = fsm_next_hop((DeviceState)pairs[k][0], (DeviceState)pairs[k][1],
                                          legal_flags[g], &next, &why_hop);

                    cr_expect_eq(r, -EINVAL, "flags=%#x %d->%d", legal_flags[g], pairs[k][0],
                                 pairs[k][1]);
                    cr_expect_eq(why, FSM_REFUSE_BAD_STATE, "flags=%#x %d->%d: %d", legal_flags[g],
                                 pairs[k][0], pairs[k][1], (int)why);
                    cr_expect_eq(rh, -EINVAL, "next_hop flags=%#x %d->%d", legal_flags[g],
                                 pairs[k][0], pairs[k][1]);
                    cr_expect_eq(why_hop, FSM_REFUSE_BAD_STATE, "next_hop flags=%#x %d->%d",
                                 legal_flags[g], pairs[k][0], pairs[k][1]);
                }
            }
        }
    }
}

/* ---- fsm_next_hop */

Test(fsm, next_hop_is_first_arc_of_every_path)
{
    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        uint32_t flags = golden[g].flags;

        for (int c = 0; c < N_REF; c++) {
            for (int t = 0; t < N_REF; t++) {
                RefPath want = parse_cell(golden[g].cells[c][t]);
                DeviceState next = (DeviceState)0x77;
                FsmRefusal why = (FsmRefusal)0x5a5a;
                int r = fsm_next_hop(ref_states[c].state, ref_states[t].state, flags, &next, &why);

                if (want.refused) {
                    cr_expect_eq(r, -EINVAL, "flags=%#x %s->%s", flags, ref_states[c].abbr,
                                 ref_states[t].abbr);
                    cr_expect_eq((int)next, 0x77, "flags=%#x %s->%s: *ret_next written", flags,
                                 ref_states[c].abbr, ref_states[t].abbr);
                    continue;
                }
                cr_expect_eq(r, 0, "flags=%#x %s->%s", flags, ref_states[c].abbr,
                             ref_states[t].abbr);
                cr_expect_eq(why, FSM_OK, "flags=%#x %s->%s", flags, ref_states[c].abbr,
                             ref_states[t].abbr);
                /* a no-op request "moves" to where it already is, as the kernel's table does */
                cr_expect_eq(next, want.n ? ref_states[want.hop[0]].state : ref_states[c].state,
                             "flags=%#x %s->%s: next %s, path '%s'", flags, ref_states[c].abbr,
                             ref_states[t].abbr, abbr(next), golden[g].cells[c][t]);
            }
        }
    }
}

Test(fsm, next_hop_with_all_flags_is_the_raw_table)
{
    /* With 0x7 nothing is skipped, so every accepted cell is §6.1 verbatim. */
    for (int c = 0; c < N_REF - 1; c++) {
        for (int t = 0; t < N_REF - 1; t++) {
            DeviceState next;
            int r = fsm_next_hop(ref_states[c].state, ref_states[t].state, 0x7, &next, NULL);

            if (raw_next(c, t) == REF_ERR) {
                cr_expect_eq(r, -EINVAL, "%s->%s", ref_states[c].abbr, ref_states[t].abbr);
                continue;
            }
            cr_expect_eq(r, 0, "%s->%s", ref_states[c].abbr, ref_states[t].abbr);
            cr_expect_str_eq(abbr(next), raw_table[c][t], "%s->%s", ref_states[c].abbr,
                             ref_states[t].abbr);
        }
    }
}

Test(fsm, path_suffixes_are_paths)
{
    /* A driver that fails mid-path stays at the last completed hop (§6.4); asking again from
     * there must continue along the same route. */
    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        uint32_t flags = golden[g].flags;

        for (int c = 0; c < N_REF; c++) {
            for (int t = 0; t < N_REF; t++) {
                FsmPath whole;

                if (fsm_compute_path(ref_states[c].state, ref_states[t].state, flags, &whole,
                                     NULL) < 0) {
                    continue;
                }
                for (unsigned i = 1; i < whole.n_arcs; i++) {
                    FsmPath rest;
                    int r = fsm_compute_path(whole.arcs[i].from, ref_states[t].state, flags, &rest,
                                             NULL);

                    cr_expect_eq(r, 0, "flags=%#x %s->%s from hop %u", flags, ref_states[c].abbr,
                                 ref_states[t].abbr, i);
                    if (r < 0) {
                        continue;
                    }
                    cr_expect_eq(rest.n_arcs, whole.n_arcs - i, "flags=%#x %s->%s from hop %u",
                                 flags, ref_states[c].abbr, ref_states[t].abbr, i);
                    for (unsigned k = 0; k < rest.n_arcs && i + k < whole.n_arcs; k++) {
                        cr_expect(rest.arcs[k].from == whole.arcs[i + k].from &&
                                      rest.arcs[k].to == whole.arcs[i + k].to,
                                  "flags=%#x %s->%s from hop %u arc %u", flags, ref_states[c].abbr,
                                  ref_states[t].abbr, i, k);
                    }
                }
            }
        }
    }
}

/* ---- properties over every path */

Test(fsm, path_properties)
{
    unsigned longest = 0, n_saving_interior = 0;

    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        uint32_t flags = golden[g].flags;

        for (int c = 0; c < N_REF; c++) {
            for (int t = 0; t < N_REF; t++) {
                DeviceState cur = ref_states[c].state, target = ref_states[t].state;
                bool seen[_DEVICE_STATE_MAX] = {false};
                FsmPath p;

                if (fsm_compute_path(cur, target, flags, &p, NULL) < 0) {
                    continue;
                }
                cr_expect_leq(p.n_arcs, 4u, "flags=%#x %s->%s: %u arcs", flags, ref_states[c].abbr,
                              ref_states[t].abbr, p.n_arcs);
                if (p.n_arcs > FSM_MAX_ARCS) {
                    continue;
                }
                longest = p.n_arcs > longest ? p.n_arcs : longest;
                cr_expect_eq(p.n_arcs == 0, cur == target, "flags=%#x %s->%s", flags,
                             ref_states[c].abbr, ref_states[t].abbr);
                seen[cur] = true;
                for (unsigned i = 0; i < p.n_arcs; i++) {
                    int from = ref_index_of_state(p.arcs[i].from);
                    int to = ref_index_of_state(p.arcs[i].to);

                    cr_assert(from >= 0 && to >= 0, "flags=%#x %s->%s arc %u out of range", flags,
                              ref_states[c].abbr, ref_states[t].abbr, i);
                    /* contiguous, from cur to target */
                    cr_expect_eq(p.arcs[i].from, i ? p.arcs[i - 1].to : cur,
                                 "flags=%#x %s->%s arc %u", flags, ref_states[c].abbr,
                                 ref_states[t].abbr, i);
                    /* every hop exists on the device and is never ERROR */
                    cr_expect(ref_supported(to, flags), "flags=%#x %s->%s hop %s unsupported",
                              flags, ref_states[c].abbr, ref_states[t].abbr, abbr(p.arcs[i].to));
                    /* simple path: no state twice */
                    cr_expect_not(seen[p.arcs[i].to], "flags=%#x %s->%s revisits %s", flags,
                                  ref_states[c].abbr, ref_states[t].abbr, abbr(p.arcs[i].to));
                    seen[p.arcs[i].to] = true;
                    /* uAPI rule: "The path cannot have saving group states as interior
                     * arcs, only starting/end states" — an arc that is neither first nor
                     * last touches no saving state (PC, PCP2P, SC). */
                    if (i > 0 && i + 1 < p.n_arcs) {
                        cr_expect(!ref_is_saving(from) && !ref_is_saving(to),
                                  "flags=%#x %s->%s: interior arc %u %s->%s touches the saving "
                                  "group",
                                  flags, ref_states[c].abbr, ref_states[t].abbr, i,
                                  abbr(p.arcs[i].from), abbr(p.arcs[i].to));
                    }
                    /* entering the saving group only on the last arc, leaving only on the
                     * first: no session is opened and then lost inside one request */
                    if (!ref_is_saving(from) && ref_is_saving(to)) {
                        cr_expect_eq(i, p.n_arcs - 1, "flags=%#x %s->%s enters %s on arc %u", flags,
                                     ref_states[c].abbr, ref_states[t].abbr, abbr(p.arcs[i].to), i);
                    }
                    if (ref_is_saving(from) && !ref_is_saving(to)) {
                        cr_expect_eq(i, 0u, "flags=%#x %s->%s leaves %s on arc %u", flags,
                                     ref_states[c].abbr, ref_states[t].abbr, abbr(p.arcs[i].from),
                                     i);
                    }
                    /* no interior data fd (§5.2: drivers WARN and fail the SET) */
                    if (i + 1 < p.n_arcs) {
                        cr_expect_not(ref_arc_opens_session(from, to),
                                      "flags=%#x %s->%s: interior fd arc %u", flags,
                                      ref_states[c].abbr, ref_states[t].abbr, i);
                        /* a saving state as an interior hop happens once: PC>PCP2P>SC, where
                         * the whole path stays inside the saving group */
                        if (ref_is_saving(to)) {
                            n_saving_interior++;
                            cr_expect(flags == 0x7 && cur == DEVICE_STATE_PRE_COPY &&
                                          target == DEVICE_STATE_STOP_COPY,
                                      "flags=%#x %s->%s: saving interior hop %s", flags,
                                      ref_states[c].abbr, ref_states[t].abbr, abbr(p.arcs[i].to));
                        }
                    }
                }
                if (p.n_arcs > 0) {
                    cr_expect_eq(p.arcs[p.n_arcs - 1].to, target, "flags=%#x %s->%s", flags,
                                 ref_states[c].abbr, ref_states[t].abbr);
                }
                cr_expect(p.session_arc == -1 || p.session_arc == (int)p.n_arcs - 1,
                          "flags=%#x %s->%s session_arc %d", flags, ref_states[c].abbr,
                          ref_states[t].abbr, p.session_arc);
            }
        }
    }
    cr_expect_eq(longest, 4u, "RES->PC and PC->RES with 0x7 take 4 arcs");
    cr_expect_eq(n_saving_interior, 1u, "only PC>PCP2P>SC (0x7) passes through a saving state");
}

/* Parses "A>B C>D ..." into a 8x8 matrix of reference indexes. */
static unsigned
parse_arc_list(const char *list, bool out[N_REF][N_REF])
{
    unsigned n = 0;

    memset(out, 0, sizeof(bool) * N_REF * N_REF);
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, " ");
        const char *gt = memchr(s, '>', len);
        int from, to;

        cr_assert_not_null(gt, "bad arc list '%s'", list);
        from = ref_index(s, (size_t)(gt - s));
        to = ref_index(gt + 1, len - (size_t)(gt - s) - 1);
        cr_assert(from >= 0 && to >= 0, "bad arc list '%s'", list);
        cr_assert_not(out[from][to], "duplicate arc in '%s'", list);
        out[from][to] = true;
        n++;
        s += len;
        while (*s == ' ') {
            s++;
        }
    }
    return n;
}

Test(fsm, arcs_used_equal_reference_arc_lists)
{
    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        uint32_t flags = golden[g].flags;
        bool listed[N_REF][N_REF], used[N_REF][N_REF] = {{false}};
        unsigned n_listed = parse_arc_list(golden[g].arc_list, listed), n_used = 0;

        cr_expect_eq(n_listed, golden[g].n_arc_list, "flags=%#x", flags);
        for (int c = 0; c < N_REF; c++) {
            for (int t = 0; t < N_REF; t++) {
                FsmPath p;

                if (fsm_compute_path(ref_states[c].state, ref_states[t].state, flags, &p, NULL) <
                        0 ||
                    p.n_arcs > FSM_MAX_ARCS) {
                    continue;
                }
                for (unsigned i = 0; i < p.n_arcs; i++) {
                    int from = ref_index_of_state(p.arcs[i].from);
                    int to = ref_index_of_state(p.arcs[i].to);

                    cr_assert(from >= 0 && to >= 0);
                    cr_expect(listed[from][to], "flags=%#x %s->%s uses unlisted arc %s->%s", flags,
                              ref_states[c].abbr, ref_states[t].abbr, ref_states[from].abbr,
                              ref_states[to].abbr);
                    if (!used[from][to]) {
                        used[from][to] = true;
                        n_used++;
                    }
                }
            }
        }
        for (int a = 0; a < N_REF; a++) {
            for (int b = 0; b < N_REF; b++) {
                cr_expect(!listed[a][b] || used[a][b], "flags=%#x: listed arc %s->%s never used",
                          flags, ref_states[a].abbr, ref_states[b].abbr);
            }
        }
        cr_expect_eq(n_used, golden[g].n_arc_list, "flags=%#x: %u distinct arcs used", flags,
                     n_used);
    }
}

Test(fsm, p2p_devices_have_no_direct_run_stop_arc)
{
    for (size_t g = 0; g < sizeof(legal_flags) / sizeof(legal_flags[0]); g++) {
        uint32_t flags = legal_flags[g];
        bool p2p = flags & MIG_FLAG_P2P;
        FsmPath p;

        cr_assert_eq(fsm_compute_path(DEVICE_STATE_RUNNING, DEVICE_STATE_STOP, flags, &p, NULL), 0);
        cr_expect_eq(p.n_arcs, p2p ? 2u : 1u, "flags=%#x RUN->STOP", flags);
        cr_assert_eq(fsm_compute_path(DEVICE_STATE_STOP, DEVICE_STATE_RUNNING, flags, &p, NULL), 0);
        cr_expect_eq(p.n_arcs, p2p ? 2u : 1u, "flags=%#x STOP->RUN", flags);
        if (p2p) {
            cr_expect_eq(p.arcs[0].to, DEVICE_STATE_RUNNING_P2P, "flags=%#x", flags);
        }
    }
}

Test(fsm, pre_copy_to_stop_aborts_the_session)
{
    /* §6.3: finishing pre-copy with STOP goes through RUN (closing the fd); STOP_COPY keeps it. */
    static const uint32_t pc_flags[] = {0x5, 0x7};

    for (size_t g = 0; g < 2; g++) {
        FsmPath p;
        bool closes = false;

        cr_assert_eq(
            fsm_compute_path(DEVICE_STATE_PRE_COPY, DEVICE_STATE_STOP, pc_flags[g], &p, NULL), 0);
        for (unsigned i = 0; i < p.n_arcs; i++) {
            closes |= fsm_arc_closes_session(p.arcs[i].from, p.arcs[i].to);
        }
        cr_expect(closes, "flags=%#x PC->STOP should end the saving session", pc_flags[g]);
        cr_expect_eq(p.arcs[0].to, DEVICE_STATE_RUNNING, "flags=%#x", pc_flags[g]);

        cr_assert_eq(
            fsm_compute_path(DEVICE_STATE_PRE_COPY, DEVICE_STATE_STOP_COPY, pc_flags[g], &p, NULL),
            0);
        for (unsigned i = 0; i < p.n_arcs; i++) {
            cr_expect_not(fsm_arc_closes_session(p.arcs[i].from, p.arcs[i].to),
                          "flags=%#x PC->SC arc %u closes the session", pc_flags[g], i);
            cr_expect_not(fsm_arc_opens_session(p.arcs[i].from, p.arcs[i].to),
                          "flags=%#x PC->SC arc %u opens a session", pc_flags[g], i);
        }
    }
}

/* ---- session arcs */

Test(fsm, arc_session_open_close)
{
    /* §5.2/§5.3: every arc any flag set uses, with whether it returns a new data fd and
     * whether the current fd is dead afterwards. */
    static const struct {
        const char *arc;
        bool opens, closes;
    } cases[] = {
        {"RUN>RP2P", false, false},
        {"RP2P>RUN", false, false},
        {"RP2P>STOP", false, false},
        {"STOP>RP2P", false, false},
        {"RUN>STOP", false, false},
        {"STOP>RUN", false, false},
        {"STOP>SC", true, false},
        {"SC>STOP", false, true},
        {"STOP>RES", true, false},
        {"RES>STOP", false, true},
        {"RUN>PC", true, false},
        {"PC>RUN", false, true},
        {"PC>PCP2P", false, false},
        {"PCP2P>PC", false, false},
        {"PCP2P>RP2P", false, true},
        {"PCP2P>SC", false, false},
        {"RP2P>PCP2P", true, false},
        {"PC>SC", false, false},
        /* a device falling into ERROR leaves the saving group / the resume session */
        {"PC>ERR", false, true},
        {"SC>ERR", false, true},
        {"RES>ERR", false, true},
        {"RUN>ERR", false, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *gt = strchr(cases[i].arc, '>');
        int from = ref_index(cases[i].arc, (size_t)(gt - cases[i].arc));
        int to = ref_index(gt + 1, strlen(gt + 1));

        cr_assert(from >= 0 && to >= 0);
        cr_expect_eq(fsm_arc_opens_session(ref_states[from].state, ref_states[to].state),
                     cases[i].opens, "opens %s", cases[i].arc);
        cr_expect_eq(fsm_arc_closes_session(ref_states[from].state, ref_states[to].state),
                     cases[i].closes, "closes %s", cases[i].arc);
    }
}

Test(fsm, exactly_four_arcs_open_a_session)
{
    unsigned n = 0;

    for (int a = 0; a < N_REF; a++) {
        for (int b = 0; b < N_REF; b++) {
            bool opens = fsm_arc_opens_session(ref_states[a].state, ref_states[b].state);

            cr_expect_eq(opens, ref_arc_opens_session(a, b), "%s->%s", ref_states[a].abbr,
                         ref_states[b].abbr);
            n += opens;
        }
    }
    cr_expect_eq(n, 4u);
}

Test(fsm, staying_put_closes_nothing)
{
    for (int a = 0; a < N_REF; a++) {
        cr_expect_not(fsm_arc_closes_session(ref_states[a].state, ref_states[a].state), "%s",
                      ref_states[a].abbr);
        cr_expect_not(fsm_arc_opens_session(ref_states[a].state, ref_states[a].state), "%s",
                      ref_states[a].abbr);
    }
}

/* ---- state predicates */

Test(fsm, state_support_per_flag_set)
{
    /* §5.1 table of states available per flag set; ERROR never "supported" (§6.2). */
    static const struct {
        uint32_t flags;
        const char *states;
    } cases[] = {
        {0x1, " STOP RUN SC RES "},
        {0x3, " STOP RUN SC RES RP2P "},
        {0x5, " STOP RUN SC RES PC "},
        {0x7, " STOP RUN SC RES RP2P PC PCP2P "},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int s = 0; s < N_REF; s++) {
            char word[16];

            (void)snprintf(word, sizeof(word), " %s ", ref_states[s].abbr);
            cr_expect_eq(fsm_state_supported(ref_states[s].state, cases[i].flags),
                         strstr(cases[i].states, word) != NULL, "flags=%#x %s", cases[i].flags,
                         ref_states[s].abbr);
        }
        cr_expect_not(fsm_state_supported((DeviceState)-1, cases[i].flags));
        cr_expect_not(fsm_state_supported((DeviceState)8, cases[i].flags));
    }
}

Test(fsm, error_is_never_supported)
{
    /* fsm.h: "ERROR never is" — for any flags word a device might report, including ones
     * fsm_flags_valid() rejects (a future kernel may add bits). */
    static const uint32_t flags[] = {0x0, 0x1, 0x7, 0xf, 0x7fffffff, 0xfffffffe, 0xffffffff};

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        cr_expect_not(fsm_state_supported(DEVICE_STATE_ERROR, flags[i]), "flags=%#x", flags[i]);
    }
}

Test(fsm, state_validity_and_flag_validity)
{
    for (int s = -3; s < 12; s++) {
        cr_expect_eq(fsm_state_valid(s), s >= 0 && s <= 7, "state %d", s);
    }
    cr_expect_not(fsm_state_valid(INT_MIN));
    cr_expect_not(fsm_state_valid(INT_MAX));
    for (uint32_t f = 0; f < 0x400; f++) {
        cr_expect_eq(fsm_flags_valid(f), f == 1 || f == 3 || f == 5 || f == 7, "flags %#x", f);
    }
    cr_expect_not(fsm_flags_valid(0x80000001));
    cr_expect_not(fsm_flags_valid(UINT32_MAX));
}

Test(fsm, state_classes_partition_the_states)
{
    /* §5.3: running = RUN, PC; P2P-quiesced = RP2P, PCP2P; stopped = STOP, SC, RES;
     * saving group = PC, PCP2P, SC. ERROR is none of them. */
    static const struct {
        DeviceState s;
        bool saving, running, p2p, stopped, needs_reset;
    } cases[] = {
        {DEVICE_STATE_ERROR, false, false, false, false, true},
        {DEVICE_STATE_STOP, false, false, false, true, false},
        {DEVICE_STATE_RUNNING, false, true, false, false, false},
        {DEVICE_STATE_STOP_COPY, true, false, false, true, false},
        {DEVICE_STATE_RESUMING, false, false, false, true, true},
        {DEVICE_STATE_RUNNING_P2P, false, false, true, false, false},
        {DEVICE_STATE_PRE_COPY, true, true, false, false, false},
        {DEVICE_STATE_PRE_COPY_P2P, true, false, true, false, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(fsm_state_is_saving(cases[i].s), cases[i].saving, "%s", abbr(cases[i].s));
        cr_expect_eq(fsm_state_is_running(cases[i].s), cases[i].running, "%s", abbr(cases[i].s));
        cr_expect_eq(fsm_state_is_p2p(cases[i].s), cases[i].p2p, "%s", abbr(cases[i].s));
        cr_expect_eq(fsm_state_is_stopped(cases[i].s), cases[i].stopped, "%s", abbr(cases[i].s));
        cr_expect_eq(fsm_state_needs_reset(cases[i].s), cases[i].needs_reset, "%s",
                     abbr(cases[i].s));
    }
    cr_expect_not(fsm_state_is_saving((DeviceState)99));
    cr_expect_not(fsm_state_is_running((DeviceState)-1));
}

/* ---- names */

Test(fsm, state_names)
{
    static const struct {
        DeviceState s;
        const char *name, *kernel, *short_form;
    } cases[] = {
        {DEVICE_STATE_ERROR, "error", "ERROR", "err"},
        {DEVICE_STATE_STOP, "stop", "STOP", "stop"},
        {DEVICE_STATE_RUNNING, "running", "RUNNING", "run"},
        {DEVICE_STATE_STOP_COPY, "stop_copy", "STOP_COPY", "sc"},
        {DEVICE_STATE_RESUMING, "resuming", "RESUMING", "res"},
        {DEVICE_STATE_RUNNING_P2P, "running_p2p", "RUNNING_P2P", "rp2p"},
        {DEVICE_STATE_PRE_COPY, "pre_copy", "PRE_COPY", "pc"},
        {DEVICE_STATE_PRE_COPY_P2P, "pre_copy_p2p", "PRE_COPY_P2P", "pcp2p"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        DeviceState s = cases[i].s;

        cr_expect_str_eq(fsm_state_name(s), cases[i].name);
        cr_expect_str_eq(fsm_state_kernel_name(s), cases[i].kernel);
        /* round trips */
        cr_expect_eq(fsm_state_from_name(fsm_state_name(s)), s, "'%s'", cases[i].name);
        cr_expect_eq(fsm_state_from_name(fsm_state_kernel_name(s)), s, "'%s'", cases[i].kernel);
        cr_expect_eq(fsm_state_from_name(cases[i].short_form), s, "'%s'", cases[i].short_form);
        /* the reference's own upper-case abbreviation */
        cr_expect_eq(fsm_state_from_name(abbr(s)), s, "'%s'", abbr(s));
    }
}

Test(fsm, state_from_name_case_insensitive)
{
    static const struct {
        const char *name;
        DeviceState s;
    } cases[] = {
        {"Stop_Copy", DEVICE_STATE_STOP_COPY},
        {"sTOP_cOPY", DEVICE_STATE_STOP_COPY},
        {"SC", DEVICE_STATE_STOP_COPY},
        {"Sc", DEVICE_STATE_STOP_COPY},
        {"PCP2P", DEVICE_STATE_PRE_COPY_P2P},
        {"PcP2p", DEVICE_STATE_PRE_COPY_P2P},
        {"Running_P2P", DEVICE_STATE_RUNNING_P2P},
        {"RP2P", DEVICE_STATE_RUNNING_P2P},
        {"RUN", DEVICE_STATE_RUNNING},
        {"Resuming", DEVICE_STATE_RESUMING},
        {"RES", DEVICE_STATE_RESUMING},
        {"ERR", DEVICE_STATE_ERROR},
        {"Error", DEVICE_STATE_ERROR},
        {"PC", DEVICE_STATE_PRE_COPY},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(fsm_state_from_name(cases[i].name), cases[i].s, "'%s'", cases[i].name);
    }
}

Test(fsm, state_from_name_rejects_junk)
{
    static const char *const junk[] = {
        "",
        " ",
        "stop ",
        " stop",
        "stopp",
        "sto",
        "stop_",
        "stopcopy",
        "stop copy",
        "running_",
        "p2p",
        "pre",
        "pcp2",
        "rp2",
        "bogus",
        "ERRORS",
        "VFIO_DEVICE_STATE_STOP",
        "stop\n",
        "s",
        "pre_copy_p2p_",
    };

    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        cr_expect_eq(fsm_state_from_name(junk[i]), _DEVICE_STATE_INVALID, "'%s'", junk[i]);
    }
    cr_expect_eq(fsm_state_from_name(NULL), _DEVICE_STATE_INVALID);
}

Test(fsm, state_name_of_invalid_state_is_null)
{
    static const int bad[] = {-1, 8, 99, -EINVAL, INT_MIN, INT_MAX};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_null(fsm_state_name((DeviceState)bad[i]), "%d", bad[i]);
        cr_expect_null(fsm_state_kernel_name((DeviceState)bad[i]), "%d", bad[i]);
    }
}

Test(fsm, refusal_strings)
{
    for (int r = 0; r < _FSM_REFUSAL_MAX; r++) {
        const char *s = fsm_refusal_to_string((FsmRefusal)r);

        cr_expect_not_null(s, "refusal %d", r);
        if (!s) {
            continue;
        }
        cr_expect_gt(strlen(s), 0u, "refusal %d", r);
        cr_expect_neq(s[strlen(s) - 1], '.', "refusal %d: no trailing period", r);
        for (int o = 0; o < r; o++) {
            cr_expect_str_neq(s, fsm_refusal_to_string((FsmRefusal)o), "%d vs %d", r, o);
        }
    }
    cr_expect_str_eq(fsm_refusal_to_string(_FSM_REFUSAL_MAX), "unknown refusal");
    cr_expect_str_eq(fsm_refusal_to_string((FsmRefusal)-1), "unknown refusal");
}

/* ---- flags strings */

Test(fsm, flags_to_string)
{
    static const struct {
        uint32_t flags;
        const char *s;
    } cases[] = {
        {0x1, "stop_copy"},
        {0x3, "stop_copy+p2p"},
        {0x5, "stop_copy+pre_copy"},
        {0x7, "stop_copy+p2p+pre_copy"},
        {0x2, "p2p"},
        {0x6, "p2p+pre_copy"},
        {0x0, ""},
        {0x8, "0x8"},
        {0xf, "stop_copy+p2p+pre_copy+0x8"},
        {0x80000001, "stop_copy+0x80000000"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[64];

        memset(buf, 'X', sizeof(buf));
        cr_expect_eq(fsm_flags_to_string(cases[i].flags, buf, sizeof(buf)), buf);
        cr_expect_str_eq(buf, cases[i].s, "flags=%#x", cases[i].flags);
    }
}

Test(fsm, flags_to_string_small_buffer_terminates)
{
    for (unsigned size = 1; size <= 24; size++) {
        char buf[32];

        memset(buf, 'X', sizeof(buf));
        (void)fsm_flags_to_string(0xffffffff, buf, size);
        cr_expect_lt(strnlen(buf, sizeof(buf)), size, "size %u: '%.*s'", size, (int)size, buf);
        cr_expect_eq(buf[size], 'X', "size %u: wrote past the buffer", size);
    }
}

Test(fsm, flags_round_trip)
{
    for (uint32_t f = 1; f <= 7; f++) {
        char buf[64];
        uint32_t back = 0xdead;

        cr_expect_eq(fsm_flags_from_string(fsm_flags_to_string(f, buf, sizeof(buf)), &back), 0,
                     "'%s'", buf);
        cr_expect_eq(back, f, "'%s'", buf);
    }
}

Test(fsm, flags_from_string_accepts)
{
    static const struct {
        const char *s;
        uint32_t flags;
    } cases[] = {
        {"stop_copy", 0x1},
        {"stop_copy+p2p", 0x3},
        {"stop_copy,p2p", 0x3},
        {"stop_copy|p2p", 0x3},
        {"STOP_COPY+P2P", 0x3},
        {"p2p+stop_copy", 0x3},
        {"stop_copy+pre_copy", 0x5},
        {"stop_copy+p2p+pre_copy", 0x7},
        {"pre_copy|p2p,stop_copy", 0x7},
        {"7", 0x7},
        {"0x5", 0x5},
        {"3", 0x3},
        {"1", 0x1},
        /* a parser, not a validator: fsm_flags_valid() decides legality */
        {"p2p", 0x2},
        {"0", 0x0},
        {"0xffffffff", 0xffffffff},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t got = 0xdead;

        cr_expect_eq(fsm_flags_from_string(cases[i].s, &got), 0, "'%s'", cases[i].s);
        cr_expect_eq(got, cases[i].flags, "'%s': %#x", cases[i].s, got);
    }
}

Test(fsm, flags_from_string_rejects)
{
    static const char *const bad[] = {
        "",
        "p2p+",
        "+p2p",
        "bogus",
        "stop_copy++p2p",
        "stop_copy,",
        "stop_copy|",
        "stop_copy p2p",
        " stop_copy",
        "stop_copy ",
        "stop",
        "stop_copyx",
        "p2p+bogus",
        "7x",
        "0x",
        "-1",
        "4294967296",
        "99999999999999999999999",
        "+",
        "stop_copy+0x8",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t got = 0xdead;

        cr_expect_eq(fsm_flags_from_string(bad[i], &got), -EINVAL, "'%s'", bad[i]);
        cr_expect_eq(got, 0xdeadu, "'%s': output written on failure", bad[i]);
    }
    cr_expect_eq(fsm_flags_from_string(NULL, &(uint32_t){0}), -EINVAL);
}
