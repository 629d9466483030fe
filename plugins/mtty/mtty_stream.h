/* SPDX-License-Identifier: MIT */
#ifndef VFIO_MIGD_MTTY_STREAM_H
#define VFIO_MIGD_MTTY_STREAM_H

/*
 * mtty_stream — the mtty sample driver's migration stream (samples/vfio-mdev/mtty.c, Linux
 * >= 6.7; reference: kernel-uapi.md §7.2), parsed incrementally. Pure: no I/O, no daemon
 * types, so the unit test and the fuzz target link it alone.
 *
 * The stream is a raw native-endian dump of struct mtty_data: a 24-byte header
 *     offset 0  u64 magic      0x7e9d09898c3e2c4e
 *     offset 8  u32 major_ver  1
 *     offset 12 u32 minor_ver  0
 *     offset 16 u32 nr_ports   1 (type mtty-1) or 2 (type mtty-2)
 *     offset 20 u32 flags      0
 * then 36 bytes of struct serial_port per port: 60 bytes in all for one port, 96 for two.
 * The driver checks the same header when the destination's write() crosses 24 bytes and
 * answers -EFAULT on a mismatch; this parser refuses the same streams first, with the field
 * named, before the bytes reach the device.
 */

#include <stddef.h>
#include <stdint.h>

#define MTTY_MAGIC UINT64_C(0x7e9d09898c3e2c4e)
#define MTTY_MAJOR 1
#define MTTY_MINOR 0
#define MTTY_HEADER_SIZE 24
#define MTTY_PORT_SIZE 36 /* struct serial_port, alignment 2 */
#define MTTY_MAX_PORTS 2  /* the driver's types: mtty-1, mtty-2 */

struct mtty_header {
    uint64_t magic;
    uint32_t major;
    uint32_t minor;
    uint32_t nr_ports;
    uint32_t flags;
};

/* Checks a complete header (@buf holds MTTY_HEADER_SIZE bytes). 0, or -EBADMSG (magic, flags
 * or port count wrong) / -EPROTONOSUPPORT (another version) with a sentence in @why. */
int mtty_header_parse(const uint8_t *buf, struct mtty_header *ret, char *why, size_t why_size);

/* The port count of an mdev type: "mtty-1" -> 1, "mtty-2" -> 2; -EINVAL for anything else. */
int mtty_ports_of_type(const char *mdev_type);

/* One stream being parsed. */
struct mtty_stream {
    uint8_t hdr[MTTY_HEADER_SIZE];
    uint64_t pos;          /* bytes seen */
    uint32_t want_ports;   /* the destination's port count; 0: not checked (a source) */
    uint32_t nr_ports;     /* from the header, once pos >= 24 */
    uint64_t total;        /* 24 + 36 x nr_ports, once known; 0 before */
    int failed;            /* a refusal is final */
};

void mtty_stream_init(struct mtty_stream *s, uint32_t want_ports);
/* Feeds the next @size bytes. 0, or a negative errno with @why: the header's own errors,
 * -EMEDIUMTYPE when its port count is not the destination's, -EMSGSIZE past the stream's end. */
int mtty_stream_feed(struct mtty_stream *s, const uint8_t *data, size_t size, char *why,
                     size_t why_size);

#endif
