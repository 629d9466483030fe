/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * channel — the receiving end of a live migration's data channel: the framing of the
 * records as the destination reads them from the socket (header, payload, and in stop-copy
 * the next header with the payload, one wake-up per record), each checked by a stream
 * reader for this device's records only. migration_data.c feeds what it returns to the
 * device; tests/fuzz/fuzz_channel.c feeds it arbitrary bytes.
 *
 * Threads: a ChannelIn is used by one worker. Errors: negative errno with a sentence.
 */

#include <stdbool.h>
#include <stdint.h>

#include "core/stream.h"
#include "transport.h"

typedef struct ChannelIn {
    int fd;                                     /* not owned */
    uint32_t index;                             /* the device this channel is bound to */
    TransportLowat lowat;
    StreamReader *reader;                       /* NULL on a spread device's channel */
    uint8_t *buf;                               /* the payload, grown up to STREAM_MAX_RECORD */
    size_t cap;
    uint8_t next[STREAM_RECORD_HEADER_SIZE];    /* the next record's header, read ahead */
    bool have_next;
    uint8_t hdr[STREAM_RECORD_HEADER_SIZE];     /* the header of the record returned last */
} ChannelIn;

/* For the channel of device @index of a stream (@stream_id, @n_devices) on socket @fd, with
 * a first buffer of @cap bytes. -ENOMEM. */
int channel_in_init(ChannelIn *in, int fd, uint64_t stream_id, uint32_t n_devices,
                    uint32_t index, size_t cap);
/* For one of the channels of device @index when its stream is spread over several
 * (core/spread.h): each record's header, payload CRC and device are checked here, in
 * parallel with the other channels; its sequence and the device's totals are the caller's
 * to check, in sequence order (stream_reader_record_crc_checked() on in->hdr). -ENOMEM. */
int channel_in_init_spread(ChannelIn *in, int fd, uint32_t index, size_t cap);
/* Frees the reader and the buffer; usable as a cleanup function. */
void channel_in_done(ChannelIn *in);
/*
 * Reads the next record and checks it (the reader's rules: sequence, CRC, totals at
 * DEVICE_END; and that it is this channel's device). 0: *ret says what it is and in->buf
 * holds its payload: DEVICE_DATA for the device, DEVICE_END (the channel is done), or an
 * optional record type the caller ignores. Errors, with "what went wrong" in @err:
 *   -ENODATA   the source closed the channel before DEVICE_END
 *   -EBADMSG   a record the reader refuses (or -E2BIG, -ESTALE: core/stream.h), or another
 *              device's record
 *   -ENOMEM, or the socket's error
 */
int channel_in_next(ChannelIn *in, StreamRecordHeader *ret, char *err, size_t err_size);
