/* SPDX-License-Identifier: MIT */
/*
 * switchover — the pre-copy convergence decision (switchover.h). Integer arithmetic only, in
 * 128 bits where a product of two 64-bit inputs is formed: the inputs come from devices and
 * requests, and no value of them may overflow into a wrong decision.
 */
#include "switchover.h"

#include <stdio.h>

#include "../util/macro.h"

/* Bytes in the reason: always MiB with one decimal, one unit a script can parse and a person
 * can compare at a glance (core/ keeps to util's header-only helpers). */
#define MIB_F(b) ((double) (b) / (1024.0 * 1024.0))

static const char *const switchover_decision_names[] = {
    [SWITCHOVER_CONTINUE] = "continue",
    [SWITCHOVER_NOW] = "now",
    [SWITCHOVER_GIVE_UP] = "give-up",
};
static_assert(ELEMENTSOF(switchover_decision_names) == _SWITCHOVER_DECISION_MAX,
              "switchover_decision_names out of sync with SwitchoverDecision");

uint64_t
switchover_rate(uint64_t bytes, uint64_t elapsed_ns)
{
    unsigned __int128 r;

    if (elapsed_ns == 0) {
        return 0;
    }
    r = (unsigned __int128) bytes * 1000000000u / elapsed_ns;
    return r > UINT64_MAX ? UINT64_MAX : (uint64_t) r;
}

uint64_t
switchover_estimate_ms(uint64_t remaining_bytes, uint64_t rate)
{
    unsigned __int128 ms;

    if (remaining_bytes == 0) {
        return 0;
    }
    if (rate == 0) {
        return UINT64_MAX;
    }
    ms = ((unsigned __int128) remaining_bytes * 1000u + rate - 1) / rate;
    return ms > UINT64_MAX ? UINT64_MAX : (uint64_t) ms;
}

/* Converged: every device's initial data is out, and the rest fits the target. Exact: the
 * rounded-up estimate is compared, so "needs N ms <= target" in the reason is true as printed. */
static bool
switchover_fits(const SwitchoverInput *in, uint64_t estimate_ms)
{
    return in->initial_sent && estimate_ms <= in->target_ms;
}

static void
switchover_explain(const SwitchoverInput *in, bool converged, uint64_t estimate_ms,
                   char *reason, size_t reason_size)
{
    char needs[48];

    if (!reason || reason_size == 0) {
        return;
    }
    if (estimate_ms == UINT64_MAX) {
        (void) snprintf(needs, sizeof(needs), "cannot be estimated (nothing moved yet)");
    } else {
        (void) snprintf(needs, sizeof(needs), "needs %llu ms", (unsigned long long) estimate_ms);
    }
    if (converged) {
        (void) snprintf(reason, reason_size,
                        "pre-copy converged in %llu ms: %.1f MiB left at %.1f MiB/s needs %llu ms "
                        "<= target %u ms", (unsigned long long) in->elapsed_ms,
                        MIB_F(in->remaining_bytes), MIB_F(in->rate),
                        (unsigned long long) estimate_ms, in->target_ms);
    } else {
        (void) snprintf(reason, reason_size,
                        "pre-copy did not converge in %llu ms: %.1f MiB left%s at %.1f MiB/s %s "
                        "%s target %u ms", (unsigned long long) in->elapsed_ms,
                        MIB_F(in->remaining_bytes),
                        in->initial_sent ? "" : " (initial data still unsent)",
                        MIB_F(in->rate), needs,
                        estimate_ms <= in->target_ms ? "<=" : ">", in->target_ms);
    }
}

SwitchoverDecision
switchover_decide(const SwitchoverInput *in, char *reason, size_t reason_size)
{
    uint64_t estimate_ms = switchover_estimate_ms(in->remaining_bytes, in->rate);

    if (switchover_fits(in, estimate_ms)) {
        switchover_explain(in, /* converged= */ true, estimate_ms, reason, reason_size);
        return SWITCHOVER_NOW;
    }
    if (in->elapsed_ms < in->max_ms) {
        return SWITCHOVER_CONTINUE;
    }
    switchover_explain(in, /* converged= */ false, estimate_ms, reason, reason_size);
    return SWITCHOVER_GIVE_UP;
}

const char *
switchover_decision_name(SwitchoverDecision d)
{
    return d >= 0 && d < _SWITCHOVER_DECISION_MAX ? switchover_decision_names[d] : NULL;
}
