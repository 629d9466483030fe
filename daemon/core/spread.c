/* SPDX-License-Identifier: MIT */
/*
 * spread — see spread.h.
 */
#include "spread.h"

#include <errno.h>

#include "util/macro.h"

uint32_t
spread_channels_auto(uint64_t data_size, uint32_t n_cpus, uint32_t n_devices, bool same_host)
{
    uint64_t by_size = data_size / SPREAD_AUTO_MIN_BYTES;
    n_cpus = same_host ? n_cpus / 2 : n_cpus;
    uint32_t by_cpu = n_devices > 0 ? n_cpus / n_devices : n_cpus;
    uint64_t cap = MIN(by_size, (uint64_t) SPREAD_MAX_CHANNELS);
    uint64_t n = MIN((uint64_t) by_cpu, cap);

    return n > 1 ? (uint32_t) n : 1u;
}

int
spread_window_init(SpreadWindow *w, uint32_t n_channels)
{
    if (n_channels == 0 || n_channels > SPREAD_MAX_CHANNELS) {
        return -EINVAL;
    }
    *w = (SpreadWindow){.n_channels = n_channels, .open = n_channels};
    return 0;
}

bool
spread_stuck(const SpreadWindow *w)
{
    if (w->waiting == 0 || w->waiting < w->open || w->delivering) {
        return false;
    }
    /* Every open channel waits: unless one of them holds the next record and has not looked
     * again yet, it can come from nowhere. */
    for (uint32_t c = 0; c < w->n_channels; c++) {
        if (w->is_waiting[c] && w->held[c] == w->next) {
            return false;
        }
    }
    return true;
}

int
spread_arrive(SpreadWindow *w, uint32_t channel, uint64_t seq)
{
    if (channel >= w->n_channels || w->ended[channel]) {
        return -EINVAL;
    }
    /* In order on its own channel, and not one the device already has. */
    if (seq < w->seen[channel] || seq < w->next || seq == UINT64_MAX) {
        return -ESTALE;
    }
    if (seq == w->next && w->delivering) {
        return -ESTALE; /* another channel is delivering this very record */
    }
    w->seen[channel] = seq + 1;
    if (seq == w->next) {
        w->delivering = true;
        return SPREAD_GO;
    }
    w->waiting++;
    w->is_waiting[channel] = true;
    w->held[channel] = seq;
    /* Stays stuck: every later recheck fails too. */
    return spread_stuck(w) ? -ESTALE : SPREAD_WAIT;
}

int
spread_recheck(SpreadWindow *w, uint32_t channel)
{
    uint64_t seq;

    if (channel >= w->n_channels || !w->is_waiting[channel]) {
        return -EINVAL;
    }
    seq = w->held[channel];
    if (seq < w->next) {
        return -ESTALE; /* another channel delivered the same record meanwhile */
    }
    if (seq == w->next && !w->delivering) {
        w->waiting--;
        w->is_waiting[channel] = false;
        w->delivering = true;
        return SPREAD_GO;
    }
    return spread_stuck(w) ? -ESTALE : SPREAD_WAIT;
}

void
spread_delivered(SpreadWindow *w)
{
    w->next++;
    w->delivering = false;
}

int
spread_channel_end(SpreadWindow *w, uint32_t channel)
{
    if (channel >= w->n_channels || w->ended[channel] || w->is_waiting[channel]) {
        return -EINVAL;
    }
    w->ended[channel] = true;
    w->open--;
    return 0;
}
