/* SPDX-License-Identifier: MIT */
/*
 * test_spread — core/spread: the automatic channel count at and around its bounds, and the
 * reorder window run exhaustively: for 1 to 3 channels and small devices, every way of
 * spreading the records over the channels (and of breaking that: a record dropped,
 * repeated on another channel, or out of order on its channel), under every interleaving of
 * the receivers' steps. A good spread must reach the device exactly in order with no
 * receiver left waiting; a broken one must be refused, never hang or deliver out of order.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/spread.h"

TestSuite(spread, .timeout = 120);

#define MIB (UINT64_C(1) << 20)
#define MAXC 3
#define MAXQ 8

Test(spread, channels_auto)
{
    cr_expect_eq(spread_channels_auto(0, 2, 1, false), 1u, "nothing to move: one channel");
    cr_expect_eq(spread_channels_auto(255 * MIB, 2, 1, false), 1u, "below 2 x 128 MiB: one");
    cr_expect_eq(spread_channels_auto(256 * MIB, 2, 1, false), 2u);
    cr_expect_eq(spread_channels_auto(2048 * MIB, 2, 1, false), 2u, "one per CPU");
    cr_expect_eq(spread_channels_auto(2048 * MIB, 2, 2, false), 1u, "two devices fill two CPUs");
    cr_expect_eq(spread_channels_auto(2048 * MIB, 64, 1, false), SPREAD_MAX_CHANNELS, "capped");
    cr_expect_eq(spread_channels_auto(384 * MIB, 64, 1, false), 3u, "128 MiB per channel");
    cr_expect_eq(spread_channels_auto(UINT64_MAX, 0, 0, false), 1u, "no CPU count: one");
    cr_expect_eq(spread_channels_auto(UINT64_MAX, 8, 3, false), 2u);
}

/* A destination on the same host: every channel's sender and receiver share its CPUs. */
Test(spread, channels_auto_same_host)
{
    cr_expect_eq(spread_channels_auto(2048 * MIB, 2, 1, true), 1u, "2 CPUs shared: one channel");
    cr_expect_eq(spread_channels_auto(2048 * MIB, 3, 1, true), 1u, "3 CPUs: one and a half");
    cr_expect_eq(spread_channels_auto(2048 * MIB, 4, 1, true), 2u);
    cr_expect_eq(spread_channels_auto(2048 * MIB, 8, 2, true), 2u, "8 CPUs, 2 devices: 2 each");
    cr_expect_eq(spread_channels_auto(2048 * MIB, 64, 1, true), SPREAD_MAX_CHANNELS, "capped");
    cr_expect_eq(spread_channels_auto(256 * MIB, 64, 1, true), 2u, "the size still bounds it");
    cr_expect_eq(spread_channels_auto(2048 * MIB, 1, 1, true), 1u, "one CPU: one channel");
    cr_expect_eq(spread_channels_auto(2048 * MIB, 0, 0, true), 1u, "no CPU count: one");
}

Test(spread, init_bounds)
{
    SpreadWindow w;

    cr_expect_eq(spread_window_init(&w, 0), -EINVAL);
    cr_expect_eq(spread_window_init(&w, SPREAD_MAX_CHANNELS + 1), -EINVAL);
    cr_assert_eq(spread_window_init(&w, 2), 0);
    cr_expect_eq(spread_arrive(&w, 2, 0), -EINVAL, "no channel 2");
    cr_expect_eq(spread_channel_end(&w, 1), 0);
    cr_expect_eq(spread_channel_end(&w, 1), -EINVAL, "ended twice");
    cr_expect_eq(spread_arrive(&w, 1, 0), -EINVAL, "a record after the channel's end");
    cr_expect_eq(spread_arrive(&w, 0, UINT64_MAX), -ESTALE);
}

/* ---- the model: one receiver per channel, as migration_data.c runs them ---- */

typedef enum { IDLE, WAITING, DELIVERING, FINISHED } RecvState;

typedef struct Sim {
    SpreadWindow w;
    uint32_t n;
    uint64_t q[MAXC][MAXQ];
    unsigned qn[MAXC], qi[MAXC];
    RecvState st[MAXC];
    uint64_t held[MAXC];
    unsigned seen_version[MAXC];
    unsigned version;              /* bumped at every change a waiter could care about */
    uint64_t out[MAXC * MAXQ];
    unsigned out_n;
    bool failed;
} Sim;

typedef struct Result {
    unsigned leaves, successes, failures;
    bool out_of_order, deadlock;
} Result;

static void
deliver(Sim *s, unsigned c)
{
    s->out[s->out_n++] = s->held[c];
    spread_delivered(&s->w);
    s->st[c] = IDLE;
    s->version++;
}

/* One step of receiver @c; false when it cannot step now. */
static bool
step(Sim *s, unsigned c)
{
    int r;

    if (s->st[c] == FINISHED || (s->st[c] == WAITING && s->seen_version[c] == s->version)) {
        return false;
    }
    if (s->st[c] == DELIVERING) { /* the write to the device, outside the lock */
        deliver(s, c);
        return true;
    }
    if (s->st[c] == IDLE && s->qi[c] == s->qn[c]) {
        cr_assert_eq(spread_channel_end(&s->w, c), 0);
        s->st[c] = FINISHED;
        s->version++;
        return true;
    }
    if (s->st[c] == IDLE) {
        s->held[c] = s->q[c][s->qi[c]++];
        r = spread_arrive(&s->w, c, s->held[c]);
    } else {
        r = spread_recheck(&s->w, c);
    }
    if (r < 0) {
        cr_assert_eq(r, -ESTALE);
        s->failed = true; /* the job fails: every receiver stops */
    } else if (r == SPREAD_GO) {
        s->st[c] = DELIVERING;
    } else {
        s->st[c] = WAITING;
        s->seen_version[c] = s->version;
    }
    cr_assert_leq(s->w.waiting, s->w.n_channels, "never more held than one per channel");
    return true;
}

static void
explore(const Sim *s, Result *res)
{
    bool any = false;

    for (unsigned c = 0; c < s->n && !s->failed; c++) {
        Sim next = *s;
        if (step(&next, c)) {
            any = true;
            explore(&next, res);
        }
    }
    if (any) {
        return;
    }
    res->leaves++;
    if (s->failed) {
        res->failures++;
        return;
    }
    for (unsigned c = 0; c < s->n; c++) {
        if (s->st[c] != FINISHED) {
            res->deadlock = true; /* nobody can step, and somebody has not finished */
        }
    }
    for (unsigned i = 0; i < s->out_n; i++) {
        if (s->out[i] != i) {
            res->out_of_order = true;
        }
    }
    res->successes++;
}

/* Whether the channels' queues are a good spread: every channel increasing, and together
 * 0..m-1 exactly once. */
static bool
good_spread(const Sim *s)
{
    bool have[MAXC * MAXQ] = {false};
    unsigned total = 0;

    for (unsigned c = 0; c < s->n; c++) {
        for (unsigned i = 0; i < s->qn[c]; i++) {
            if (i > 0 && s->q[c][i] <= s->q[c][i - 1]) {
                return false;
            }
            total++;
        }
    }
    for (unsigned c = 0; c < s->n; c++) {
        for (unsigned i = 0; i < s->qn[c]; i++) {
            if (s->q[c][i] >= total || have[s->q[c][i]]) {
                return false;
            }
            have[s->q[c][i]] = true;
        }
    }
    return true;
}

static void
check(const Sim *s0, unsigned *n_good, unsigned *n_bad)
{
    Result res = {0};
    bool good = good_spread(s0);

    explore(s0, &res);
    cr_assert(!res.deadlock, "a receiver was left waiting for ever");
    cr_assert(!res.out_of_order, "the device got a record out of order");
    if (good) {
        cr_assert_eq(res.failures, 0, "a good spread was refused");
        (*n_good)++;
    } else {
        /* A missing last record is for DEVICE_END's totals to see (and counts as a good spread
         * of fewer records here); any other fault is refused on every path. */
        cr_assert_eq(res.successes, 0, "a broken spread reached the device whole");
        (*n_bad)++;
    }
}

/* Every spread of records 0..k-1 over @n channels, each record on a channel or dropped (@n),
 * with optionally one record repeated on another channel and the first two records of
 * channel 0 swapped. */
static void
all_spreads(uint32_t n, unsigned k, unsigned *n_good, unsigned *n_bad)
{
    unsigned combos = 1;

    for (unsigned i = 0; i < k; i++) {
        combos *= n + 1;
    }
    for (unsigned code = 0; code < combos; code++) {
        for (unsigned dup = 0; dup <= k * n; dup++) {
            for (unsigned swap = 0; swap < 2; swap++) {
                Sim s = {.n = n};
                unsigned x = code;

                cr_assert_eq(spread_window_init(&s.w, n), 0);
                for (unsigned seq = 0; seq < k; seq++, x /= n + 1) {
                    unsigned c = x % (n + 1);
                    if (c < n) {
                        s.q[c][s.qn[c]++] = seq;
                    }
                    if (dup > 0 && (dup - 1) / n == seq && (dup - 1) % n != c) {
                        unsigned c2 = (dup - 1) % n;
                        s.q[c2][s.qn[c2]++] = seq;
                    }
                }
                if (swap && s.qn[0] >= 2) {
                    uint64_t t = s.q[0][0];
                    s.q[0][0] = s.q[0][1];
                    s.q[0][1] = t;
                } else if (swap) {
                    continue;
                }
                check(&s, n_good, n_bad);
            }
        }
    }
}

Test(spread, window_exhaustive)
{
    static const unsigned max_k[MAXC + 1] = {0, 6, 5, 4};

    for (uint32_t n = 1; n <= MAXC; n++) {
        for (unsigned k = 0; k <= max_k[n]; k++) {
            unsigned good = 0, bad = 0;

            all_spreads(n, k, &good, &bad);
            cr_assert_gt(good, 0);
            cr_assert(k < 2 || bad > 0);
        }
    }
}

/* A gap that is not at the end: the record after it waits, and once every other channel has
 * ended, the window says the next one can never come. */
Test(spread, gap_is_refused)
{
    SpreadWindow w;

    cr_assert_eq(spread_window_init(&w, 2), 0);
    cr_expect_eq(spread_arrive(&w, 0, 0), SPREAD_GO);
    spread_delivered(&w);
    cr_expect_eq(spread_arrive(&w, 0, 2), SPREAD_WAIT, "1 may still come on channel 1");
    cr_expect_eq(spread_channel_end(&w, 1), 0);
    cr_expect(spread_stuck(&w));
    cr_expect_eq(spread_recheck(&w, 0), -ESTALE, "record 1 was never sent");
    cr_expect_eq(spread_recheck(&w, 0), -ESTALE, "and stays refused");
}

Test(spread, repeat_is_refused)
{
    SpreadWindow w;

    cr_assert_eq(spread_window_init(&w, 2), 0);
    cr_expect_eq(spread_arrive(&w, 0, 0), SPREAD_GO);
    spread_delivered(&w);
    cr_expect_eq(spread_arrive(&w, 1, 0), -ESTALE, "the device has record 0 already");
    cr_expect_eq(spread_arrive(&w, 0, 0), -ESTALE, "not above the channel's last");
}
