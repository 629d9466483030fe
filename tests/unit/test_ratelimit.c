/* SPDX-License-Identifier: MIT */
/*
 * test_ratelimit — util/ratelimit.h: BURST events per window, the count of those held back
 * handed to the next one let through, a new window after INTERVAL. Time is passed in.
 */
#include <criterion/criterion.h>

#include "util/ratelimit.h"

#define S 1000000000ull

TestSuite(ratelimit, .timeout = 10);

Test(ratelimit, burst_per_window_then_the_count_of_those_left_out)
{
    RateLimit rl = RATELIMIT_INIT(10 * S, 3);
    unsigned suppressed = 99;

    for (int i = 0; i < 3; i++) {
        cr_expect(ratelimit_below(&rl, 5 * S + (uint64_t) i, &suppressed), "event %d", i);
        cr_expect_eq(suppressed, 0u);
    }
    for (int i = 0; i < 4; i++) {
        cr_expect_not(ratelimit_below(&rl, 6 * S, &suppressed), "event %d is held back", 3 + i);
    }
    cr_expect_not(ratelimit_below(&rl, 15 * S - 1, &suppressed), "still the first window");
    cr_expect(ratelimit_below(&rl, 15 * S, &suppressed), "a new window");
    cr_expect_eq(suppressed, 5u, "the five held back are counted once");
    cr_expect(ratelimit_below(&rl, 15 * S, &suppressed));
    cr_expect_eq(suppressed, 0u, "and the count starts again");
}

Test(ratelimit, time_zero_and_a_null_count_are_fine)
{
    RateLimit rl = RATELIMIT_INIT(S, 1);

    cr_expect(ratelimit_below(&rl, 0, NULL));
    cr_expect_not(ratelimit_below(&rl, 0, NULL));
    cr_expect(ratelimit_below(&rl, 2 * S, NULL));
}
