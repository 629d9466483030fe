/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * spread — one device's stream spread over several data channels: how many channels a device
 * gets, and the destination's reorder window, as pure logic (no I/O, no threads, no clock).
 *
 * The source reads the device on every channel's worker in turn (one read at a time, under
 * the device's lock), gives each record the device's next sequence number and sends it on
 * its own channel; so each channel carries increasing sequence numbers with gaps, and the
 * device's records, all channels together, are 0, 1, 2, ... with DEVICE_END last. The
 * destination's receivers read and check their channels in parallel and write to the device
 * strictly in sequence order: a receiver whose record is not the next one holds it and waits.
 * So the window is one record per channel (never more in memory), and a channel that runs
 * ahead stops reading until its record's turn; its socket buffer and TCP's flow control hold
 * the rest, on the source's side.
 *
 * No deadlock: the next record is always the first not yet delivered of some channel (each
 * channel's records are in increasing order, and everything before the next one has been
 * delivered), so that channel's receiver is never among the waiting ones: it is reading the
 * record, or delivering it. When every open channel waits nonetheless, the next record is on
 * none of them: it was never sent (a hostile or broken source), and the window says so
 * (-ESTALE) instead of waiting for ever.
 *
 * Used by:  migration_data.c (under the device's lock), migration_source.c (the count).
 * Threads:  any; a SpreadWindow is the caller's to lock. Errors: negative errno.
 */

#include <stdbool.h>
#include <stdint.h>

#define SPREAD_MAX_CHANNELS 8u
/* Automatic spreading: at least this much of the device's data per channel. Below it one
 * channel moves a device in well under a second, and more connections would only cost. */
#define SPREAD_AUTO_MIN_BYTES (128ull << 20)

/* How many data channels a device of @data_size bytes gets when nothing is forced: one per
 * CPU the job's devices leave over (@n_cpus / @n_devices), at most one per
 * SPREAD_AUTO_MIN_BYTES of data and SPREAD_MAX_CHANNELS, and never fewer than 1. A group with
 * as many devices as CPUs already keeps every CPU busy with one channel each. With the
 * destination on the same host (@same_host), each channel has its sender and its receiver on
 * these CPUs: half of them count. (On the project's 2-CPU VM, one device of 2 GiB over two
 * channels to a daemon on the same host cost 0.46-0.50 ns of CPU per byte, over one 0.29-0.31,
 * and moved at 0.65 of a 2-connection pump's rate against 0.83.) */
uint32_t spread_channels_auto(uint64_t data_size, uint32_t n_cpus, uint32_t n_devices,
                              bool same_host);

typedef enum SpreadVerdict {
    SPREAD_GO = 0,   /* the record is the next one: deliver it, then spread_delivered() */
    SPREAD_WAIT = 1, /* a later one: hold it, wait for a change, then spread_recheck() */
} SpreadVerdict;

typedef struct SpreadWindow {
    uint64_t next;                          /* the sequence the device takes next */
    uint32_t n_channels;
    uint32_t open;                          /* channels not ended */
    uint32_t waiting;                       /* open channels holding a record not next */
    bool delivering;                        /* the next record is on its way to the device */
    uint64_t seen[SPREAD_MAX_CHANNELS];     /* each channel's last sequence + 1, 0: none */
    bool ended[SPREAD_MAX_CHANNELS];
    bool is_waiting[SPREAD_MAX_CHANNELS];
    uint64_t held[SPREAD_MAX_CHANNELS];     /* a waiting channel's record */
} SpreadWindow;

/* For @n_channels (1..SPREAD_MAX_CHANNELS) channels, the device's records starting at 0.
 * -EINVAL for a count out of range. */
int spread_window_init(SpreadWindow *w, uint32_t n_channels);
/* A record of sequence @seq arrived on @channel. SPREAD_GO, SPREAD_WAIT (the caller now
 * holds it, counted as waiting), or:
 *   -ESTALE   @seq is not above the channel's previous record, or below the next sequence,
 *             or the next one while another channel delivers it (a record repeated or
 *             reordered), or every open channel would wait (the next
 *             record was never sent)
 *   -EINVAL   @channel is out of range or has ended */
int spread_arrive(SpreadWindow *w, uint32_t channel, uint64_t seq);
/* The waiting @channel looks again at its record after a change: SPREAD_GO (no longer waiting; a
 * holder of the record being delivered keeps waiting, and fails once the window is stuck),
 * SPREAD_WAIT, or -ESTALE when every open channel waits (for good: the window stays
 * stuck, and every later recheck fails as well). */
int spread_recheck(SpreadWindow *w, uint32_t channel);
/* The record given SPREAD_GO reached the device: the one after it is next. */
void spread_delivered(SpreadWindow *w);
/* @channel carries nothing more (its end marker, or the device's end, was delivered).
 * -EINVAL when out of range, already ended or waiting. Waiters must recheck: the channels left may
 * all be waiting now. */
int spread_channel_end(SpreadWindow *w, uint32_t channel);
/* True when the next record can come from nowhere any more: every open channel waits, none
 * of them on the next record, and none delivers. */
bool spread_stuck(const SpreadWindow *w);
