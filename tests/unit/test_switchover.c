/* SPDX-License-Identifier: MIT */
/*
 * test_switchover — core/switchover: the measured rate, the estimate and every branch of the
 * decision (continue, now, give up) at and around each boundary (target, max_precopy_ms, a
 * zero rate, nothing left, initial data unsent), the extremes of every input, and the words
 * of the reason.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "core/switchover.h"

TestSuite(switchover, .timeout = 60);

#define MIB (UINT64_C(1) << 20)

static SwitchoverInput
input(uint64_t remaining, uint64_t rate, uint64_t elapsed_ms)
{
    return (SwitchoverInput){.remaining_bytes = remaining, .initial_sent = true, .rate = rate,
                             .elapsed_ms = elapsed_ms, .target_ms = 50, .max_ms = 30000};
}

static SwitchoverDecision
decide(const SwitchoverInput *in, char *reason, size_t size)
{
    memset(reason, 'x', size);
    reason[size - 1] = '\0';
    return switchover_decide(in, reason, size);
}

Test(switchover, rate)
{
    cr_expect_eq(switchover_rate(0, 0), 0u);
    cr_expect_eq(switchover_rate(100, 0), 0u, "no time: no rate, never a division by zero");
    cr_expect_eq(switchover_rate(100 * MIB, 1000000000u), 100 * MIB);
    cr_expect_eq(switchover_rate(3, 2000000000u), 1u, "rounded down");
    cr_expect_eq(switchover_rate(UINT64_MAX, 1000000000u), UINT64_MAX);
    cr_expect_eq(switchover_rate(UINT64_MAX, 1), UINT64_MAX, "saturates");
    cr_expect_eq(switchover_rate(1, UINT64_MAX), 0u);
}

Test(switchover, estimate)
{
    cr_expect_eq(switchover_estimate_ms(0, 0), 0u, "nothing left needs no time, even at 0 B/s");
    cr_expect_eq(switchover_estimate_ms(1, 0), UINT64_MAX);
    cr_expect_eq(switchover_estimate_ms(100 * MIB, 100 * MIB), 1000u);
    cr_expect_eq(switchover_estimate_ms(100 * MIB + 1, 100 * MIB), 1001u, "rounded up");
    cr_expect_eq(switchover_estimate_ms(1, UINT64_MAX), 1u, "any byte takes a millisecond");
    cr_expect_eq(switchover_estimate_ms(UINT64_MAX, 1), UINT64_MAX, "saturates");
    cr_expect_eq(switchover_estimate_ms(180 * MIB, 95 * MIB), 1895u, "the issue's example");
}

Test(switchover, converges_exactly_at_the_target)
{
    SwitchoverInput in = input(5 * MIB, 100 * MIB, 10); /* 5 MiB at 100 MiB/s: 50 ms */
    char reason[256];

    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_NOW);
    cr_expect_str_eq(reason, "pre-copy converged in 10 ms: 5.0 MiB left at 100.0 MiB/s needs 50 ms "
                             "<= target 50 ms");
    in.remaining_bytes++;
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_CONTINUE, "one byte more: 51 ms");
    cr_expect_eq(reason[0], 'x', "nothing written while it continues");
    in.target_ms = 51;
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_NOW);
}

Test(switchover, nothing_left)
{
    SwitchoverInput in = input(0, 0, 0);
    char reason[256];

    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_NOW,
                 "a clean device switches at once, with no rate measured");
    cr_expect_str_eq(reason, "pre-copy converged in 0 ms: 0.0 MiB left at 0.0 MiB/s needs 0 ms <= "
                             "target 50 ms");
}

Test(switchover, initial_data_must_be_sent_first)
{
    SwitchoverInput in = input(0, 100 * MIB, 100);
    char reason[256];

    in.initial_sent = false; /* a device that has not reported yet shows 0 bytes */
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_CONTINUE);
    in.remaining_bytes = MIB;
    in.elapsed_ms = 30000;
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_GIVE_UP);
    cr_expect_str_eq(reason, "pre-copy did not converge in 30000 ms: 1.0 MiB left (initial data "
                             "still unsent) at 100.0 MiB/s needs 10 ms <= target 50 ms");
}

Test(switchover, gives_up_at_max_precopy_ms)
{
    SwitchoverInput in = input(180 * MIB, 95 * MIB, 29999);
    char reason[256];

    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_CONTINUE, "1 ms before max");
    in.elapsed_ms = 30000;
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_GIVE_UP);
    cr_expect_str_eq(reason, "pre-copy did not converge in 30000 ms: 180.0 MiB left at 95.0 "
                             "MiB/s needs 1895 ms > target 50 ms");
    in.elapsed_ms = UINT64_MAX;
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_GIVE_UP);
}

Test(switchover, converging_wins_over_the_deadline)
{
    SwitchoverInput in = input(MIB, 100 * MIB, 60000);
    char reason[256];

    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_NOW,
                 "past max, but converged: it says so");
    cr_expect(strstr(reason, "converged in 60000 ms") != NULL, "%s", reason);
}

Test(switchover, no_rate_measured)
{
    SwitchoverInput in = input(MIB, 0, 0);
    char reason[256];

    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_CONTINUE);
    in.elapsed_ms = in.max_ms;
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_GIVE_UP);
    cr_expect_str_eq(reason, "pre-copy did not converge in 30000 ms: 1.0 MiB left at 0.0 MiB/s "
                             "cannot be estimated (nothing moved yet) > target 50 ms");
}

Test(switchover, max_zero_decides_at_once)
{
    SwitchoverInput in = input(UINT64_MAX, 1, 0);
    char reason[256];

    in.max_ms = 0;
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_GIVE_UP);
    in.target_ms = UINT32_MAX;
    cr_expect_eq(decide(&in, reason, sizeof(reason)), SWITCHOVER_GIVE_UP,
                 "2^64 bytes at 1 B/s do not fit even a 49-day target");
}

Test(switchover, reason_is_optional_and_truncated)
{
    SwitchoverInput in = input(180 * MIB, 95 * MIB, 30000);
    char small[16];

    cr_expect_eq(switchover_decide(&in, NULL, 0), SWITCHOVER_GIVE_UP);
    cr_expect_eq(switchover_decide(&in, small, 0), SWITCHOVER_GIVE_UP);
    cr_expect_eq(decide(&in, small, sizeof(small)), SWITCHOVER_GIVE_UP);
    cr_expect_str_eq(small, "pre-copy did no");
}

Test(switchover, names)
{
    cr_expect_str_eq(switchover_decision_name(SWITCHOVER_CONTINUE), "continue");
    cr_expect_str_eq(switchover_decision_name(SWITCHOVER_NOW), "now");
    cr_expect_str_eq(switchover_decision_name(SWITCHOVER_GIVE_UP), "give-up");
    cr_expect_null(switchover_decision_name(_SWITCHOVER_DECISION_MAX));
    cr_expect_null(switchover_decision_name((SwitchoverDecision) -1));
}
