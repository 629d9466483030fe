/* SPDX-License-Identifier: MIT */
/*
 * fuzz_channel — arbitrary bytes as a live migration data channel, read by the destination's
 * framing (daemon/channel.c: header, payload, the next header read ahead in stop-copy) from
 * a real socket, each record through the stream reader of a channel bound to one device.
 *
 * Input: [n_devices][index][channel bytes]; the channel bytes go into one end of a
 * socketpair, closed after them; channel_in_next() reads the other end until DEVICE_END or
 * a refusal. The stream id is FUZZ_STREAM_ID (the seeds carry it). With the first byte's
 * high bit set, every record header is resealed (CRCs recomputed) first, so that the
 * fuzzer gets past the CRC checks to the order and totals rules. With bit 0x40 set, the
 * channel is one of a device spread over several (channel_in_init_spread(): CRCs and the
 * device index here, order and totals left to the device's reader), and n_devices is the
 * low six bits.
 * Properties, besides no crash and no out-of-bounds access:
 *   - every record returned is the bound device's, is the next record of the bytes (header
 *     and payload as sent), and is DEVICE_DATA, DEVICE_END or an optional type;
 *   - a refusal is -ENODATA (the bytes ended early) or the stream reader's -EBADMSG, -E2BIG
 *     or -ESTALE, with one printable sentence;
 *   - a DEVICE_END returned has totals equal to the records returned before it (a spread
 *     channel: its payload CRC is the one its header says, and CHANNEL_END ends it too).
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "fuzz.h"
#include "reseal.h"
#include "util/cleanup.h"
#include "util/le.h"

#define FUZZ_STREAM_ID 42
#define MAX_INPUT (256u << 10)
#define RESEAL 0x80u
#define SPREAD 0x40u

static void
read_channel(ChannelIn *in, const uint8_t *p, size_t size)
{
    StreamDeviceTotals seen = {0}, end;
    size_t off = 0;
    char why[512];

    for (;;) {
        StreamRecordHeader rh;
        int r = channel_in_next(in, &rh, why, sizeof(why));

        if (r < 0) {
            fuzz_check(r == -ENODATA || r == -EBADMSG || r == -E2BIG || r == -ESTALE,
                       "a refusal is -ENODATA or one of the stream reader's (stream.h)");
            fuzz_check_message(why, sizeof(why));
            fuzz_outcome = r == -ENODATA ? "ended early" : "refused";
            return;
        }
        fuzz_check(rh.device == in->index, "a record returned is the bound device's");
        fuzz_check(size - off >= STREAM_RECORD_HEADER_SIZE + (size_t) rh.length &&
                   get_le32(p + off + 12) == rh.length &&
                   memcmp(in->buf, p + off + STREAM_RECORD_HEADER_SIZE, rh.length) == 0,
                   "a record returned is the next record sent");
        fuzz_check(rh.type == STREAM_RECORD_DEVICE_DATA || rh.type == STREAM_RECORD_DEVICE_END ||
                   (rh.flags & STREAM_FLAG_OPTIONAL), "a record returned is data, end or optional");
        off += STREAM_RECORD_HEADER_SIZE + rh.length;
        if (!in->reader) {
            fuzz_check(crc32c(0, in->buf, rh.length) == rh.payload_crc,
                       "a spread channel returns only records whose payload CRC is right");
            if (rh.type == STREAM_RECORD_DEVICE_END || rh.type == STREAM_RECORD_CHANNEL_END) {
                fuzz_outcome = "spread channel end";
                return;
            }
            continue;
        }
        if (rh.type == STREAM_RECORD_DEVICE_END) {
            fuzz_check(stream_decode_device_end(in->buf, rh.length, &end) == 0 &&
                       end.bytes == seen.bytes && end.records == seen.records,
                       "DEVICE_END's totals are the records returned");
            fuzz_outcome = "DEVICE_END";
            return;
        }
        if (rh.type == STREAM_RECORD_DEVICE_DATA) {
            seen.bytes += rh.length;
            seen.records++;
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    _cleanup_(channel_in_done) ChannelIn in = {0};
    int sv[2], big = (int) MAX_INPUT * 2;
    uint8_t *p;

    if (size < 2 || size > MAX_INPUT) {
        return 0;
    }
    p = malloc(size - 2 ? size - 2 : 1);
    fuzz_check(p != NULL, "malloc");
    memcpy(p, data + 2, size - 2);
    if (data[0] & RESEAL) {
        fuzz_reseal(p, size - 2, 0);
    }
    fuzz_check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    (void) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    (void) setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    fuzz_check(size == 2 || transport_write_full(sv[0], p, size - 2) == 0,
               "the input fits in the socket buffers");
    (void) shutdown(sv[0], SHUT_WR);
    if (data[0] & SPREAD) {
        fuzz_check(channel_in_init_spread(&in, sv[1], data[1], 4096) == 0,
                   "channel_in_init_spread");
    } else {
        fuzz_check(channel_in_init(&in, sv[1], FUZZ_STREAM_ID, data[0] & ~RESEAL, data[1],
                                   4096) == 0, "channel_in_init");
    }
    read_channel(&in, p, size - 2);
    (void) close(sv[0]);
    (void) close(sv[1]);
    free(p);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
/* ---- seeds: device 1 of 2, pre-copy, stop-copy, an optional record, its end */

static size_t
add_record(uint8_t *p, size_t n, uint32_t type, uint32_t flags, uint64_t seq,
           const uint8_t *payload, uint32_t length)
{
    StreamRecordHeader h = {type, flags, 1, length, seq, 0};

    stream_encode_record_header(&h, payload, p + n);
    memcpy(p + n + STREAM_RECORD_HEADER_SIZE, payload, length);
    return n + STREAM_RECORD_HEADER_SIZE + length;
}

int
fuzz_write_seeds(const char *dir)
{
    static uint8_t s[1 << 16], payload[8192], irqs[STREAM_IRQS_MAX_SIZE];
    StreamDeviceTotals t = {.bytes = 5000 + 3000, .records = 2};
    const IrqState st = {.type = IRQ_TYPE_MSIX, .count = 8, .in_use = {0xff}, .masked = {0x08},
                         .pending = {0x08}};
    size_t n = 2;

    s[0] = 2;
    s[1] = 1;
    memset(payload, 0x3c, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, STREAM_FLAG_PRECOPY, 0, payload, 5000);
    n = add_record(s, n, 9, STREAM_FLAG_OPTIONAL, 0, payload, 7);
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, 0, 1, payload, 3000);
    (void) stream_encode_device_end(&t, payload, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_DEVICE_END, 0, 2, payload, 16);
    if (fuzz_write_file(dir, "channel", s, n)) {
        return 1;
    }
    s[0] = 2 | RESEAL;
    if (fuzz_write_file(dir, "channel-reseal", s, n)) {
        return 1;
    }
    s[0] = 2;
    s[1] = 0; /* bound to device 0: the first record is another device's */
    if (fuzz_write_file(dir, "channel-other-device", s, n)) {
        return 1;
    }
    /* The device's interrupt state (MSI-X 8, vector 3 masked and pending) before its end. */
    n = 2;
    s[1] = 1;
    memset(payload, 0x3c, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, STREAM_FLAG_PRECOPY, 0, payload, 5000);
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, 0, 1, payload, 3000);
    n = add_record(s, n, STREAM_RECORD_DEVICE_IRQS, STREAM_FLAG_OPTIONAL, 0, irqs,
                   (uint32_t) stream_encode_device_irqs(&st, irqs, sizeof(irqs)));
    (void) stream_encode_device_end(&t, payload, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_DEVICE_END, 0, 2, payload, 16);
    if (fuzz_write_file(dir, "channel-irqs", s, n)) {
        return 1;
    }
    /* One channel of a spread device: records 1 and 4 of it, then its CHANNEL_END. */
    t = (StreamDeviceTotals){.bytes = 5000 + 3000, .records = 2};
    n = 2;
    s[0] = 2 | SPREAD;
    s[1] = 1;
    memset(payload, 0x5a, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, 0, 1, payload, 5000);
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, 0, 4, payload, 3000);
    (void) stream_encode_device_end(&t, payload, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_CHANNEL_END, STREAM_FLAG_OPTIONAL, 0, payload, 16);
    return fuzz_write_file(dir, "channel-spread", s, n);
}
#endif
