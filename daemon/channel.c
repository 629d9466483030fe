/* SPDX-License-Identifier: MIT */
/*
 * channel — see channel.h.
 */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/pages.h"

int
channel_in_init(ChannelIn *in, int fd, uint64_t stream_id, uint32_t n_devices, uint32_t index,
                size_t cap)
{
    *in = (ChannelIn){.fd = fd, .index = index, .lowat = TRANSPORT_LOWAT_INIT, .cap = cap};
    in->reader = malloc(sizeof(*in->reader));
    /* Its pages now, as the channel opens: without pre-copy the first records arrive in the
     * downtime, and a page fault per 4 KiB of a fresh buffer would be paid there (pages.h). */
    in->buf = pages_alloc(cap);
    if (!in->reader || !in->buf) {
        channel_in_done(in);
        return -ENOMEM;
    }
    stream_reader_expect_devices(in->reader, stream_id, n_devices);
    return 0;
}

int
channel_in_init_spread(ChannelIn *in, int fd, uint32_t index, size_t cap)
{
    *in = (ChannelIn){.fd = fd, .index = index, .lowat = TRANSPORT_LOWAT_INIT, .cap = cap};
    in->buf = pages_alloc(cap); /* its pages now, as above */
    return in->buf ? 0 : -ENOMEM;
}

void
channel_in_done(ChannelIn *in)
{
    free(in->reader);
    pages_free(in->buf);
    in->reader = NULL;
    in->buf = NULL;
}

static int
io_error(int r, char *err, size_t err_size)
{
    if (r == -ENODATA) { /* "No data available" would only blur "closed early" */
        (void) snprintf(err, err_size, "the source closed the data channel early");
    } else {
        (void) snprintf(err, err_size, "receiving migration data failed: %s",
                        transport_strerror(r));
    }
    return r;
}

/* Reads the payload of @h, and when another record follows at once, the next header with it:
 * one wake-up per record instead of two. That is in stop-copy: its data flows without a
 * pause until DEVICE_END, which closes the channel. Pre-copy data may pause for a long time
 * (a converged device, a manual switchover), and its last record must not wait for the
 * next one to be counted and loaded. */
static int
read_payload(ChannelIn *in, const StreamRecordHeader *h, char *err, size_t err_size)
{
    bool ahead = h->type == STREAM_RECORD_DEVICE_DATA && !(h->flags & STREAM_FLAG_PRECOPY);
    size_t want = (size_t) h->length + (ahead ? sizeof(in->next) : 0);
    int r;

    if (want > in->cap) { /* a new buffer: the payload is read into it from its start */
        uint8_t *p = pages_alloc(want);
        if (!p) {
            (void) snprintf(err, err_size, "no memory for a record");
            return -ENOMEM;
        }
        pages_free(in->buf);
        in->buf = p;
        in->cap = want;
    }
    r = transport_read_bulk(in->fd, in->buf, want, &in->lowat);
    if (r < 0) {
        return io_error(r, err, err_size);
    }
    if (ahead) {
        memcpy(in->next, in->buf + h->length, sizeof(in->next));
        in->have_next = true;
    }
    return 0;
}

/* What a spread channel checks of a record by itself: the payload CRC (the header's was
 * checked by its decode). Order and totals are the device's reader's, in sequence order. */
static int
spread_record(const ChannelIn *in, const StreamRecordHeader *h, StreamRecordHeader *ret)
{
    if (crc32c(0, in->buf, h->length) != h->payload_crc) {
        return -EBADMSG;
    }
    *ret = *h;
    return 0;
}

int
channel_in_next(ChannelIn *in, StreamRecordHeader *ret, char *err, size_t err_size)
{
    uint8_t hdr[STREAM_RECORD_HEADER_SIZE];
    StreamRecordHeader peek = {0}, rh;
    int r = 0;

    if (in->have_next) {
        memcpy(hdr, in->next, sizeof(hdr));
        in->have_next = false;
    } else {
        r = transport_read_bulk(in->fd, hdr, sizeof(hdr), &in->lowat);
    }
    if (r < 0) {
        return io_error(r, err, err_size);
    }
    /* The reader checks the header again, with the stream's context; this decode only
     * bounds what is read. */
    r = stream_decode_record_header(hdr, &peek);
    if (r >= 0) {
        r = read_payload(in, &peek, err, err_size);
        if (r < 0) {
            return r;
        }
        r = in->reader ? stream_reader_record(in->reader, hdr, in->buf, NULL, &rh)
                       : spread_record(in, &peek, &rh);
    }
    if (r < 0) {
        (void) snprintf(err, err_size, "bad record from the source: %.300s",
                        in->reader && in->reader->error[0] ? in->reader->error
                        : r == -EBADMSG && peek.type ? "a payload CRC mismatch"
                                                     : "a malformed record header");
        return r;
    }
    memcpy(in->hdr, hdr, sizeof(hdr));
    if (rh.device != in->index) {
        (void) snprintf(err, err_size, "its channel carried a record of device %u", rh.device);
        return -EBADMSG;
    }
    *ret = rh;
    return 0;
}
