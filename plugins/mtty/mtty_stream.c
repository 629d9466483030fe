/* SPDX-License-Identifier: MIT */
/*
 * mtty_stream — see mtty_stream.h.
 */
#include "mtty_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Native-endian, as the driver dumps it: both ends of an mtty migration run the same
 * architecture (the header would not match otherwise, and the driver refuses it too). */
static uint32_t
get_u32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

int
mtty_header_parse(const uint8_t *buf, struct mtty_header *ret, char *why, size_t why_size)
{
    struct mtty_header h;

    memcpy(&h.magic, buf, sizeof(h.magic));
    h.major = get_u32(buf + 8);
    h.minor = get_u32(buf + 12);
    h.nr_ports = get_u32(buf + 16);
    h.flags = get_u32(buf + 20);
    if (h.magic != MTTY_MAGIC) {
        (void) snprintf(why, why_size, "magic 0x%016" PRIx64 " is not the mtty stream's "
                        "(0x%016" PRIx64 ")", h.magic, MTTY_MAGIC);
        return -EBADMSG;
    }
    if (h.major != MTTY_MAJOR || h.minor != MTTY_MINOR) {
        (void) snprintf(why, why_size, "stream version %" PRIu32 ".%" PRIu32 ", the driver "
                        "reads %d.%d only", h.major, h.minor, MTTY_MAJOR, MTTY_MINOR);
        return -EPROTONOSUPPORT;
    }
    if (h.flags != 0) {
        (void) snprintf(why, why_size, "header flags 0x%" PRIx32 ", the driver wants 0", h.flags);
        return -EBADMSG;
    }
    if (h.nr_ports < 1 || h.nr_ports > MTTY_MAX_PORTS) {
        (void) snprintf(why, why_size, "ports %" PRIu32 " in the header: mtty has 1 or 2",
                        h.nr_ports);
        return -EBADMSG;
    }
    *ret = h;
    return 0;
}

int
mtty_ports_of_type(const char *mdev_type)
{
    if (mdev_type && strcmp(mdev_type, "mtty-1") == 0) {
        return 1;
    }
    if (mdev_type && strcmp(mdev_type, "mtty-2") == 0) {
        return 2;
    }
    return -EINVAL;
}

void
mtty_stream_init(struct mtty_stream *s, uint32_t want_ports)
{
    memset(s, 0, sizeof(*s));
    s->want_ports = want_ports;
}

/* The header is complete: check it and, at a destination, its port count. */
static int
mtty_stream_header(struct mtty_stream *s, char *why, size_t why_size)
{
    struct mtty_header h;
    int r;

    r = mtty_header_parse(s->hdr, &h, why, why_size);
    if (r < 0) {
        return r;
    }
    if (s->want_ports && h.nr_ports != s->want_ports) {
        (void) snprintf(why, why_size, "ports: the stream has %" PRIu32 ", the destination "
                        "device %" PRIu32 " (the driver would answer EFAULT)", h.nr_ports,
                        s->want_ports);
        return -EMEDIUMTYPE;
    }
    s->nr_ports = h.nr_ports;
    s->total = MTTY_HEADER_SIZE + (uint64_t) MTTY_PORT_SIZE * h.nr_ports;
    return 0;
}

int
mtty_stream_feed(struct mtty_stream *s, const uint8_t *data, size_t size, char *why,
                 size_t why_size)
{
    int r;

    if (s->failed) {
        (void) snprintf(why, why_size, "the stream was refused already");
        return -EBADMSG;
    }
    if (s->pos < MTTY_HEADER_SIZE) {
        size_t take = MTTY_HEADER_SIZE - (size_t) s->pos;

        take = take < size ? take : size;
        memcpy(s->hdr + s->pos, data, take);
        s->pos += take;
        data += take;
        size -= take;
        if (s->pos == MTTY_HEADER_SIZE) {
            r = mtty_stream_header(s, why, why_size);
            if (r < 0) {
                s->failed = 1;
                return r;
            }
        }
    }
    if (size > 0 && s->total > 0 && size > s->total - s->pos) {
        (void) snprintf(why, why_size, "the stream runs past its %" PRIu64 " bytes (24 + 36 x "
                        "%" PRIu32 " ports)", s->total, s->nr_ports);
        s->failed = 1;
        return -EMSGSIZE;
    }
    s->pos += size;
    return 0;
}
