/* SPDX-License-Identifier: MIT */
/*
 * test_stream — unit tests for daemon/core/stream.c and crc32c.c: the migration stream
 * format (docs/stream-format.md).
 *
 * The oracles are independent of the code under test: CRC32C is computed bit by bit below
 * (reflected polynomial 0x82F63B78), itself checked against the published iSCSI vectors; byte
 * layouts are built by hand from the tables in docs/stream-format.md, offset by offset.
 * Tampered headers and payloads are re-sealed with that oracle, so each test reaches the
 * check it means to reach instead of stopping at a CRC.
 *
 * Whole streams are built from a script of records (sample_stream()), then reordered,
 * duplicated, cut or patched, and fed to a StreamReader by feed(), the same loop a save
 * file restore runs: header, then records while bytes remain, then stream_reader_finish().
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/stream.h"
#include "util/clock.h"

TestSuite(crc32c, .timeout = 120);
TestSuite(stream, .timeout = 120);
TestSuite(reader, .timeout = 60);

/* ---- oracle */

static uint32_t
ref_crc32c(uint32_t crc, const void *buf, size_t size)
{
    const uint8_t *p = buf;

    crc = ~crc;
    for (size_t i = 0; i < size; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static void
put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void
fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t) (seed >> 16);
    }
}

/* Both headers keep their own CRC over bytes 0..27 at offset 28. */
static void
reseal(uint8_t *hdr)
{
    put_le32(hdr + 28, ref_crc32c(0, hdr, 28));
}

/* ---- CRC32C */

Test(crc32c, known_vectors)
{
    /* RFC 3720 B.4 (iSCSI) and the usual check value. */
    uint8_t zeros[32] = {0}, ones[32], inc[32], dec[32];
    const struct {
        const char *name;
        const void *p;
        size_t n;
        uint32_t crc;
    } cases[] = {
        {"'123456789'", "123456789", 9, 0xE3069283},
        {"empty", "", 0, 0x00000000},
        {"32 zero bytes", zeros, 32, 0x8A9136AA},
        {"32 0xFF bytes", ones, 32, 0x62A8AB43},
        {"32 incrementing bytes", inc, 32, 0x46DD794E},
        {"32 decrementing bytes", dec, 32, 0x113FDB5C},
    };

    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++) {
        inc[i] = (uint8_t) i;
        dec[i] = (uint8_t) (31 - i);
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(ref_crc32c(0, cases[i].p, cases[i].n), cases[i].crc, "oracle, %s",
                     cases[i].name);
        cr_expect_eq(crc32c(0, cases[i].p, cases[i].n), cases[i].crc, "crc32c, %s: %#010x",
                     cases[i].name, crc32c(0, cases[i].p, cases[i].n));
        cr_expect_eq(crc32c_sw(0, cases[i].p, cases[i].n), cases[i].crc, "crc32c_sw, %s: %#010x",
                     cases[i].name, crc32c_sw(0, cases[i].p, cases[i].n));
    }
}

/* Every implementation this CPU has, each against the oracle: every length 0..1024 at every
 * alignment crosses each loop of each path and their tails. crc32c() itself is one of them;
 * the table path always runs, whatever the CPU. */
Test(crc32c, paths_agree_on_every_length_and_offset)
{
    static uint8_t buf[1024 + 8];

    cr_log_info("crc32c() uses %s", crc32c_impl_name(crc32c_impl()));
    fill_pattern(buf, sizeof(buf), 1);
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 0; n <= 1024; n++) {
            uint32_t want = ref_crc32c(0, buf + off, n);

            cr_assert_eq(crc32c(0, buf + off, n), want, "crc32c, length %zu offset %zu", n, off);
            for (int i = 0; i <= (int) crc32c_impl(); i++) {
                cr_assert_eq(crc32c_with((Crc32cImpl) i, 0, buf + off, n), want,
                             "%s, length %zu offset %zu", crc32c_impl_name((Crc32cImpl) i), n,
                             off);
            }
        }
    }
}

/* The long loops: the three-way interleave starts at 3 * 256 and 3 * 8 KiB, the vector path
 * at 1 KiB and steps 256 bytes after aligning to 64, its stripes (vector and crc32 streams
 * together) need 256 + 7168 bytes after that, one more each 7168. Lengths around each edge
 * at several alignments, random lengths and offsets up to 256 KiB, and a running CRC that is
 * not 0. */
Test(crc32c, paths_agree_on_large_buffers)
{
    static uint8_t buf[(256 << 10) + 64];
    const size_t edges[] = {768,  1024, 1024 + 256, 1024 + 512, 4096,
                            7424, 7488, 14592,      24576,      49152};
    uint32_t seed = 7;

    fill_pattern(buf, sizeof(buf), 3);
    for (int i = 0; i <= (int) crc32c_impl(); i++) {
        Crc32cImpl impl = (Crc32cImpl) i;

        for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++) {
            for (size_t n = edges[e] - 9; n <= edges[e] + 9; n++) {
                for (size_t off = 0; off < 64; off += 5) {
                    cr_assert_eq(crc32c_with(impl, 0x12345678, buf + off, n),
                                 ref_crc32c(0x12345678, buf + off, n), "%s, length %zu off %zu",
                                 crc32c_impl_name(impl), n, off);
                }
            }
        }
        cr_assert_eq(crc32c_with(impl, 0, buf, sizeof(buf)), ref_crc32c(0, buf, sizeof(buf)),
                     "%s, whole buffer", crc32c_impl_name(impl));
    }
    for (int i = 0; i < 200; i++) {
        size_t off, n;
        uint32_t want;

        seed = seed * 1103515245u + 12345u;
        off = (seed >> 8) % 64;
        seed = seed * 1103515245u + 12345u;
        n = (seed >> 4) % (sizeof(buf) - 64);
        want = crc32c_sw(0, buf + off, n);
        for (int k = 1; k <= (int) crc32c_impl(); k++) {
            cr_assert_eq(crc32c_with((Crc32cImpl) k, 0, buf + off, n), want,
                         "%s length %zu off %zu", crc32c_impl_name((Crc32cImpl) k), n, off);
        }
    }
}

/* An implementation the CPU lacks is the table one: never a crash, never a wrong value. */
Test(crc32c, every_implementation_is_callable)
{
    for (int i = 0; i < _CRC32C_IMPL_MAX; i++) {
        cr_assert_eq(crc32c_with((Crc32cImpl) i, 0, "123456789", 9), 0xE3069283u, "%d", i);
        cr_assert_str_neq(crc32c_impl_name((Crc32cImpl) i), "unknown");
    }
    cr_assert_str_eq(crc32c_impl_name(_CRC32C_IMPL_MAX), "unknown");
}

Test(crc32c, chaining)
{
    static uint8_t buf[30000];
    uint32_t whole;

    fill_pattern(buf, sizeof(buf), 11);
    whole = ref_crc32c(0, buf, sizeof(buf));
    for (int i = 0; i <= (int) crc32c_impl(); i++) {
        Crc32cImpl impl = (Crc32cImpl) i;

        cr_assert_eq(crc32c_with(impl, 0, buf, sizeof(buf)), whole);
        for (size_t a = 0; a <= sizeof(buf); a += (a < 1100 ? 1 : 997)) {
            uint32_t c = crc32c_with(impl, 0, buf, a);

            cr_assert_eq(crc32c_with(impl, c, buf + a, sizeof(buf) - a), whole, "%s split %zu",
                         crc32c_impl_name(impl), a);
        }
        cr_expect_eq(crc32c_with(impl, 0xDEADBEEF, NULL, 0), 0xDEADBEEFu);
    }
    cr_expect_eq(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

/* ---- throughput: printed, never asserted (the machine may be busy) */

/* Seconds on the project's monotonic clock (util/clock.h). */
static double
now_s(void)
{
    return (double) clock_now_ns() / 1e9;
}

/* Chains @total / @size passes over @p, so *ret depends on the pass count too. */
static double
crc_rate(Crc32cImpl impl, const uint8_t *p, size_t size, size_t total, uint32_t *ret)
{
    double t0 = now_s();
    uint32_t c = 0;

    for (size_t done = 0; done < total; done += size) {
        c = crc32c_with(impl, c, p, size);
    }
    *ret = c;
    return (double) total / (now_s() - t0) / 1e9;
}

#define PUMP_CHUNK (1u << 20)
#define PUMP_TOTAL ((size_t) 512 << 20)

typedef struct Pump {
    int fd;
    bool crc;
    uint32_t sum;   /* XOR of the chunk CRCs, so both ends can be compared */
} Pump;

static void *
pump_send(void *arg)
{
    Pump *p = arg;
    uint8_t *buf = malloc(PUMP_CHUNK);

    fill_pattern(buf, PUMP_CHUNK, 5);
    for (size_t left = PUMP_TOTAL; buf && left > 0; left -= PUMP_CHUNK) {
        if (p->crc) {
            p->sum ^= crc32c(0, buf, PUMP_CHUNK);
        }
        for (size_t off = 0; off < PUMP_CHUNK;) {
            ssize_t w = write(p->fd, buf + off, PUMP_CHUNK - off);
            if (w <= 0) {
                goto out;
            }
            off += (size_t) w;
        }
    }
out:
    free(buf);
    (void) close(p->fd);
    return NULL;
}

/* A loopback TCP pump of PUMP_TOTAL bytes in 1 MiB chunks, optionally with a CRC32C of
 * every chunk on both ends, as a live migration data channel does. Returns GB/s. */
static double
pump_rate(bool crc)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    Pump send = {.fd = -1, .crc = crc};
    uint8_t *buf = malloc(PUMP_CHUNK);
    size_t got = 0, fill = 0;
    uint32_t sum = 0;
    pthread_t th;
    double t0;
    int fd;

    cr_assert(l >= 0 && buf);
    cr_assert_eq(bind(l, (struct sockaddr *) &a, sizeof(a)), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *) &a, &alen), 0);
    send.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(send.fd, (struct sockaddr *) &a, sizeof(a)), 0);
    fd = accept(l, NULL, NULL);
    cr_assert(fd >= 0);
    (void) close(l);

    t0 = now_s();
    cr_assert_eq(pthread_create(&th, NULL, pump_send, &send), 0);
    for (;;) {
        ssize_t n = read(fd, buf + fill, PUMP_CHUNK - fill);
        if (n <= 0) {
            break;
        }
        fill += (size_t) n;
        got += (size_t) n;
        if (fill == PUMP_CHUNK) {
            if (crc) {
                sum ^= crc32c(0, buf, PUMP_CHUNK);
            }
            fill = 0;
        }
    }
    (void) pthread_join(th, NULL);
    t0 = now_s() - t0;
    (void) close(fd);
    free(buf);
    cr_assert_eq(got, PUMP_TOTAL);
    cr_assert_eq(sum, send.sum, "the two ends' CRCs differ");
    return (double) got / t0 / 1e9;
}

Test(crc32c, throughput, .timeout = 120)
{
    const size_t size = 16u << 20;
    uint8_t *buf = malloc(size);
    uint32_t sums[_CRC32C_IMPL_MAX];
    double plain = 0, with_crc = 0;

    cr_assert(buf);
    fill_pattern(buf, size, 9);
    /* 1 MiB is a data pump's chunk, still in cache when it is checksummed; 16 MiB is
     * beyond most L2 caches, so it also measures memory. */
    for (size_t n = 1u << 20; n <= size; n *= 16) {
        for (int i = 0; i <= (int) crc32c_impl(); i++) {
            size_t total = i == CRC32C_IMPL_TABLE ? (size_t) 512 << 20 : (size_t) 4 << 30;
            double rate = crc_rate((Crc32cImpl) i, buf, n, total, &sums[i]);

            cr_log_info("crc32c over %zu MiB buffers, %s: %.2f GB/s", n >> 20,
                        crc32c_impl_name((Crc32cImpl) i), rate);
            cr_assert_eq(crc32c_with((Crc32cImpl) i, sums[i], buf, n),
                         crc32c_sw(sums[i], buf, n), "%s", crc32c_impl_name((Crc32cImpl) i));
        }
    }
    free(buf);

    /* Best of five each, alternating, to keep scheduler noise out of the ratio. */
    for (int i = 0; i < 5; i++) {
        double p = pump_rate(false), c = pump_rate(true);
        plain = p > plain ? p : plain;
        with_crc = c > with_crc ? c : with_crc;
    }
    cr_log_info("loopback TCP pump, 1 MiB chunks: plain %.2f GB/s, CRC32C on both ends "
                "%.2f GB/s (%.2fx)", plain, with_crc, with_crc / plain);
}

/* ---- stream header */

static void
oracle_stream_header(uint8_t out[32], uint16_t major, uint16_t minor, uint64_t id)
{
    memset(out, 0, 32);
    memcpy(out, "VFMIGSTR", 8);
    put_le16(out + 8, major);
    put_le16(out + 10, minor);
    put_le32(out + 12, 32);
    put_le64(out + 16, id);
    put_le32(out + 24, 0);
    reseal(out);
}

Test(stream, header_layout_and_round_trip)
{
    StreamHeader h = {.stream_id = UINT64_C(0x0123456789ABCDEF)}, back = {0};
    uint8_t out[STREAM_HEADER_SIZE], want[32];

    stream_encode_header(&h, out);
    oracle_stream_header(want, 1, STREAM_VERSION_MINOR, h.stream_id);
    cr_assert_arr_eq(out, want, 32);
    cr_assert_eq(stream_decode_header(out, &back), 0);
    cr_assert_eq(back.stream_id, h.stream_id);
    cr_assert_eq(back.flags, 0);
}

Test(stream, header_rejections)
{
    uint8_t in[32];
    StreamHeader h;

    oracle_stream_header(in, 1, 7, 42); /* a newer minor is readable */
    cr_assert_eq(stream_decode_header(in, &h), 0);
    cr_assert_eq(h.stream_id, 42);

    oracle_stream_header(in, 2, 0, 42);
    cr_assert_eq(stream_decode_header(in, &h), -EPROTONOSUPPORT);
    oracle_stream_header(in, 0, 0, 42);
    cr_assert_eq(stream_decode_header(in, &h), -EPROTONOSUPPORT);

    oracle_stream_header(in, 1, 0, 42);
    memcpy(in, "VFMIGDSV", 8); /* a retired single-device save file, say */
    reseal(in);
    cr_assert_eq(stream_decode_header(in, &h), -ENOEXEC);

    oracle_stream_header(in, 1, 0, 42);
    put_le32(in + 24, 1u << 31);
    reseal(in);
    cr_assert_eq(stream_decode_header(in, &h), -EBADMSG, "reserved flag");

    oracle_stream_header(in, 1, 0, 42);
    put_le32(in + 12, 40);
    reseal(in);
    cr_assert_eq(stream_decode_header(in, &h), -EBADMSG, "header size");
}

/* A file of the retired single-device format is told apart (to be refused with its own
 * sentence), and nothing else is taken for one. */
Test(stream, retired_save_file_is_recognised)
{
    uint8_t in[STREAM_HEADER_SIZE];

    cr_expect(stream_is_retired_save((const uint8_t *) "VFMIGDSV\x01\0\0\0", 12));
    cr_expect(stream_is_retired_save((const uint8_t *) "VFMIGDSV", 8), "the magic alone");
    cr_expect_not(stream_is_retired_save((const uint8_t *) "VFMIGDS", 7), "shorter than it");
    cr_expect_not(stream_is_retired_save((const uint8_t *) "VFMIGDSX", 8));
    cr_expect_not(stream_is_retired_save((const uint8_t *) "", 0));
    oracle_stream_header(in, 1, 0, 42);
    cr_expect_not(stream_is_retired_save(in, sizeof(in)), "a stream is not one");
}

/* Every bit of the header is covered: by the magic, the version or the CRC. */
Test(stream, header_every_bit_flip_fails)
{
    StreamHeader h = {.stream_id = 99};
    uint8_t good[32];

    stream_encode_header(&h, good);
    for (int bit = 0; bit < 256; bit++) {
        uint8_t in[32];
        StreamReader r;
        int want = bit < 64 ? -ENOEXEC : bit < 80 ? -EPROTONOSUPPORT : -EBADMSG;

        memcpy(in, good, 32);
        in[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        stream_reader_init(&r);
        cr_assert_eq(stream_reader_header(&r, in), want, "bit %d", bit);
        cr_assert_not(r.have_header);
        cr_assert_neq(r.error[0], '\0');
    }
}

/* ---- record header */

Test(stream, record_header_layout_and_round_trip)
{
    static const StreamRecordHeader cases[] = {
        {STREAM_RECORD_MANIFEST, 0, STREAM_DEVICE_NONE, 26, 0, 0},
        {STREAM_RECORD_DEVICE_DATA, STREAM_FLAG_PRECOPY, 3, 5, UINT64_C(0x1122334455667788), 0},
        {STREAM_RECORD_DEVICE_DATA, 0, 255, 5, 1, 0},
        {STREAM_RECORD_DEVICE_END, 0, 0, 16, 7, 0},
        {STREAM_RECORD_STREAM_END, 0, STREAM_DEVICE_NONE, 20, 1, 0},
        {1000, STREAM_FLAG_OPTIONAL, 4, 5, 0, 0},
        {1001, STREAM_FLAG_OPTIONAL | STREAM_FLAG_PRECOPY, STREAM_DEVICE_NONE, 5, 3, 0},
    };
    uint8_t payload[4096];

    fill_pattern(payload, sizeof(payload), 2);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const StreamRecordHeader *c = &cases[i];
        StreamRecordHeader with_crc = *c, back;
        uint8_t out[32], out2[32], want[32];

        stream_encode_record_header(c, payload, out);
        put_le32(want + 0, c->type);
        put_le32(want + 4, c->flags);
        put_le32(want + 8, c->device);
        put_le32(want + 12, c->length);
        put_le64(want + 16, c->sequence);
        put_le32(want + 24, ref_crc32c(0, payload, c->length));
        reseal(want);
        cr_assert_arr_eq(out, want, 32, "case %zu", i);

        with_crc.payload_crc = ref_crc32c(0, payload, c->length);
        stream_encode_record_header_crc(&with_crc, out2);
        cr_assert_arr_eq(out2, want, 32, "case %zu (crc given)", i);

        cr_assert_eq(stream_decode_record_header(out, &back), 0, "case %zu", i);
        cr_assert_eq(back.type, c->type);
        cr_assert_eq(back.flags, c->flags);
        cr_assert_eq(back.device, c->device);
        cr_assert_eq(back.length, c->length);
        cr_assert_eq(back.sequence, c->sequence);
        cr_assert_eq(back.payload_crc, with_crc.payload_crc);
    }
}

static int
decode_sealed(uint32_t type, uint32_t flags, uint32_t device, uint32_t length)
{
    uint8_t in[32] = {0};
    StreamRecordHeader h;

    put_le32(in + 0, type);
    put_le32(in + 4, flags);
    put_le32(in + 8, device);
    put_le32(in + 12, length);
    reseal(in);
    return stream_decode_record_header(in, &h);
}

Test(stream, record_header_rejections)
{
    const uint32_t NONE = STREAM_DEVICE_NONE;

    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_DATA, 0, 0, STREAM_MAX_RECORD), 0);
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_DATA, 0, 0, STREAM_MAX_RECORD + 1), -E2BIG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_DATA, 0, 0, UINT32_MAX), -E2BIG);
    cr_expect_eq(decode_sealed(77, STREAM_FLAG_OPTIONAL, 0, STREAM_MAX_RECORD + 1), -E2BIG);
    /* flags: reserved bits, and flags a type may not carry */
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_DATA, 1u << 2, 0, 1), -EBADMSG);
    cr_expect_eq(decode_sealed(77, STREAM_FLAG_OPTIONAL | (1u << 31), 0, 1), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_DATA, STREAM_FLAG_OPTIONAL, 0, 1), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_END, STREAM_FLAG_PRECOPY, 0, 16), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_MANIFEST, STREAM_FLAG_PRECOPY, NONE, 30), -EBADMSG);
    /* types: 0 is reserved; unknown ones need OPTIONAL */
    cr_expect_eq(decode_sealed(0, 0, NONE, 0), -EBADMSG);
    cr_expect_eq(decode_sealed(0, STREAM_FLAG_OPTIONAL, NONE, 0), -EBADMSG);
    cr_expect_eq(decode_sealed(5, 0, 0, 0), -EBADMSG);
    cr_expect_eq(decode_sealed(5, STREAM_FLAG_OPTIONAL, 0, 0), 0);
    cr_expect_eq(decode_sealed(5, STREAM_FLAG_OPTIONAL, NONE, 0), 0);
    cr_expect_eq(decode_sealed(5, STREAM_FLAG_OPTIONAL, STREAM_MAX_DEVICES, 0), -EBADMSG);
    /* device field against the type */
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_DATA, 0, NONE, 1), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_DATA, 0, STREAM_MAX_DEVICES, 1), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_END, 0, NONE, 16), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_MANIFEST, 0, 0, 30), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_STREAM_END, 0, 1, 20), -EBADMSG);
    /* fixed and bounded payload lengths */
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_END, 0, 0, 15), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_DEVICE_END, 0, 0, 17), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_STREAM_END, 0, NONE, 4), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_STREAM_END, 0, NONE, 4 + 16 * 257), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_STREAM_END, 0, NONE, 4 + 16 * 256), 0);
    cr_expect_eq(decode_sealed(STREAM_RECORD_MANIFEST, 0, NONE, 25), -EBADMSG);
    cr_expect_eq(decode_sealed(STREAM_RECORD_MANIFEST, 0, NONE, 26), 0);
}

/* ---- payloads */

/* A hand-written MANIFEST payload, field by field as docs/stream-format.md lists them. */
typedef struct Bytes {
    uint8_t p[1 << 16];
    size_t n;
} Bytes;

static void
w_u16(Bytes *b, uint16_t v)
{
    put_le16(b->p + b->n, v);
    b->n += 2;
}

static void
w_u32(Bytes *b, uint32_t v)
{
    put_le32(b->p + b->n, v);
    b->n += 4;
}

static void
w_u64(Bytes *b, uint64_t v)
{
    put_le64(b->p + b->n, v);
    b->n += 8;
}

static void
w_str(Bytes *b, const char *s, size_t n)
{
    w_u16(b, (uint16_t) n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void
w_device(Bytes *b, const char *name, uint32_t flags, uint64_t size, const char *backend,
         uint16_t compat_size)
{
    w_str(b, name, strlen(name));
    w_u32(b, flags);
    w_u64(b, size);
    w_str(b, backend, strlen(backend));
    w_u16(b, compat_size);
    for (uint16_t i = 0; i < compat_size; i++) {
        b->p[b->n++] = (uint8_t) (i * 7 + 1);
    }
}

static StreamManifestDevice devs[STREAM_MAX_DEVICES];
static StreamManifestDevice devs2[STREAM_MAX_DEVICES];

static void
sample_manifest(StreamManifest *m)
{
    memset(devs, 0, sizeof(devs));
    *m = (StreamManifest) {.group = "vm1", .n_devices = 3, .devices = devs};
    strcpy(devs[0].name, "nic0");
    devs[0].mig_flags = 0x5;
    devs[0].data_size = 4096;
    strcpy(devs[0].backend, "sim");
    strcpy(devs[1].name, "gpu1");
    devs[1].mig_flags = 0x1;
    devs[1].data_size = UINT64_C(1) << 33;
    strcpy(devs[1].backend, "kernel");
    devs[1].compat_size = 5;
    for (int i = 0; i < 5; i++) {
        devs[1].compat[i] = (uint8_t) (i * 7 + 1);
    }
    strcpy(devs[2].name, "disk2");
    devs[2].mig_flags = 0xd;
    strcpy(devs[2].backend, "");
}

static void
sample_manifest_bytes(Bytes *b)
{
    b->n = 0;
    w_str(b, "vm1", 3);
    w_u32(b, 3);
    w_device(b, "nic0", 0x5, 4096, "sim", 0);
    w_device(b, "gpu1", 0x1, UINT64_C(1) << 33, "kernel", 5);
    w_device(b, "disk2", 0xd, 0, "", 0);
}

static void
assert_manifests_equal(const StreamManifest *a, const StreamManifest *b)
{
    cr_assert_str_eq(a->group, b->group);
    cr_assert_eq(a->n_devices, b->n_devices);
    for (uint32_t i = 0; i < a->n_devices; i++) {
        const StreamManifestDevice *x = &a->devices[i], *y = &b->devices[i];

        cr_assert_str_eq(x->name, y->name, "device %u", i);
        cr_assert_eq(x->mig_flags, y->mig_flags, "device %u", i);
        cr_assert_eq(x->data_size, y->data_size, "device %u", i);
        cr_assert_str_eq(x->backend, y->backend, "device %u", i);
        cr_assert_eq(x->compat_size, y->compat_size, "device %u", i);
        cr_assert_arr_eq(x->compat, y->compat, x->compat_size, "device %u", i);
    }
}

Test(stream, manifest_layout_and_round_trip)
{
    static Bytes want, out;
    StreamManifest m, back = {.devices = devs2};

    sample_manifest(&m);
    sample_manifest_bytes(&want);
    cr_assert_eq(stream_manifest_size(&m), want.n);
    cr_assert_eq(stream_encode_manifest(&m, out.p, sizeof(out.p)), (int) want.n);
    cr_assert_arr_eq(out.p, want.p, want.n);
    cr_assert_eq(stream_encode_manifest(&m, out.p, want.n), (int) want.n, "exact size is enough");
    cr_assert_eq(stream_encode_manifest(&m, out.p, want.n - 1), -E2BIG);

    cr_assert_eq(stream_decode_manifest(want.p, want.n, &back), 0);
    assert_manifests_equal(&m, &back);
}

/* The largest manifest the bounds allow: 256 devices, every string and descriptor full. */
Test(stream, manifest_at_every_bound)
{
    static StreamManifestDevice big[STREAM_MAX_DEVICES];
    static uint8_t out[2 << 20];
    StreamManifest m = {.n_devices = STREAM_MAX_DEVICES, .devices = big};
    StreamManifest back = {.devices = devs2};
    size_t size;
    int n;

    memset(m.group, 'g', STREAM_MAX_NAME);
    for (int i = 0; i < STREAM_MAX_DEVICES; i++) {
        memset(big[i].name, 'd', STREAM_MAX_NAME); /* unique: the first 3 are the index */
        big[i].name[0] = (char) ('0' + i / 100);
        big[i].name[1] = (char) ('0' + i / 10 % 10);
        big[i].name[2] = (char) ('0' + i % 10);
        memset(big[i].backend, 'b', 15);
        big[i].compat_size = STREAM_MAX_COMPAT;
        fill_pattern(big[i].compat, STREAM_MAX_COMPAT, (uint32_t) i);
        big[i].data_size = UINT64_MAX - (uint64_t) i;
        big[i].mig_flags = UINT32_MAX;
    }
    size = stream_manifest_size(&m);
    cr_assert_eq(size, 2 + 64 + 4 + 256 * (2 + 64 + 4 + 8 + 2 + 15 + 2 + 4096));
    cr_assert_leq(size, STREAM_MAX_RECORD);
    n = stream_encode_manifest(&m, out, sizeof(out));
    cr_assert_eq(n, (int) size);
    cr_assert_eq(stream_decode_manifest(out, size, &back), 0);
    assert_manifests_equal(&m, &back);
}

Test(stream, manifest_encoder_refuses_what_the_decoder_would)
{
    static uint8_t out[1 << 16];
    StreamManifest m;

    sample_manifest(&m);
    m.n_devices = 0;
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -EINVAL, "no devices");
    m.n_devices = STREAM_MAX_DEVICES + 1;
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -E2BIG, "257 devices");

    sample_manifest(&m);
    strcpy(devs[2].name, "nic0");
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -EINVAL, "duplicate name");

    sample_manifest(&m);
    devs[1].name[0] = '\0';
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -EINVAL, "empty name");

    sample_manifest(&m);
    strcpy(devs[1].name, "a\tb");
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -EINVAL, "control character");

    sample_manifest(&m);
    m.group[0] = '\0';
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -EINVAL, "empty group");

    sample_manifest(&m);
    memset(m.group, 'x', sizeof(m.group)); /* no terminating NUL: 65 bytes */
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -E2BIG, "long group");

    sample_manifest(&m);
    memset(devs[0].backend, 'k', sizeof(devs[0].backend));
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -E2BIG, "long backend");

    sample_manifest(&m);
    devs[0].compat_size = STREAM_MAX_COMPAT + 1;
    cr_expect_eq(stream_encode_manifest(&m, out, sizeof(out)), -E2BIG, "long compat");
}

static int
decode_manifest_bytes(const Bytes *b)
{
    StreamManifest back = {.devices = devs2};

    return stream_decode_manifest(b->p, b->n, &back);
}

Test(stream, manifest_rejections)
{
    static Bytes b;
    char name65[66];

    memset(name65, 'n', 65);
    name65[65] = '\0';

#define CASE(want, what, ...)                                                                      \
    do {                                                                                           \
        b.n = 0;                                                                                   \
        __VA_ARGS__;                                                                               \
        cr_expect_eq(decode_manifest_bytes(&b), (want), "%s", (what));                             \
    } while (0)

    /* A group named "g" that counts one device: what most cases start with. */
#define G1 w_str(&b, "g", 1), w_u32(&b, 1)
    CASE(0, "valid", G1, w_device(&b, "a", 0, 0, "", 0));
    CASE(-EBADMSG, "duplicate names", w_str(&b, "g", 1), w_u32(&b, 2),
         w_device(&b, "a", 0, 0, "", 0), w_device(&b, "a", 1, 0, "sim", 0));
    CASE(0, "names differing in length only", w_str(&b, "g", 1), w_u32(&b, 2),
         w_device(&b, "a", 0, 0, "", 0), w_device(&b, "aa", 1, 0, "sim", 0));
    CASE(-EBADMSG, "0 devices", w_str(&b, "g", 1), w_u32(&b, 0));
    CASE(-E2BIG, "257 devices", w_str(&b, "g", 1), w_u32(&b, 257), w_device(&b, "a", 0, 0, "", 0));
    CASE(-EBADMSG, "fewer devices than counted", w_str(&b, "g", 1), w_u32(&b, 2),
         w_device(&b, "a", 0, 0, "", 0));
    CASE(-EBADMSG, "trailing byte", G1, w_device(&b, "a", 0, 0, "", 0), b.p[b.n++] = 0);
    CASE(-EBADMSG, "empty group", w_str(&b, "", 0), w_u32(&b, 1), w_device(&b, "a", 0, 0, "", 0));
    CASE(-E2BIG, "65-byte group", w_str(&b, name65, 65), w_u32(&b, 1),
         w_device(&b, "a", 0, 0, "", 0));
    CASE(0, "64-byte group", w_str(&b, name65, 64), w_u32(&b, 1), w_device(&b, "a", 0, 0, "", 0));
    CASE(-EBADMSG, "empty device name", G1, w_device(&b, "", 0, 0, "", 0));
    CASE(-E2BIG, "65-byte device name", G1, w_device(&b, name65, 0, 0, "", 0));
    CASE(-EBADMSG, "NUL in a name", G1, w_str(&b, "a\0b", 3), w_u32(&b, 0), w_u64(&b, 0),
         w_str(&b, "", 0), w_u16(&b, 0));
    CASE(-EBADMSG, "newline in a name", G1, w_device(&b, "a\nb", 0, 0, "", 0));
    CASE(-EBADMSG, "DEL in the group", w_str(&b, "g\x7f", 2), w_u32(&b, 1),
         w_device(&b, "a", 0, 0, "", 0));
    CASE(0, "UTF-8 in a name", G1, w_device(&b, "n\xc3\xa9", 0, 0, "", 0));
    CASE(0, "15-byte backend", G1, w_device(&b, "a", 0, 0, "123456789012345", 0));
    CASE(-E2BIG, "16-byte backend", G1, w_device(&b, "a", 0, 0, "1234567890123456", 0));
    CASE(-EBADMSG, "control character in the backend", G1, w_device(&b, "a", 0, 0, "si\rm", 0));
    CASE(0, "4096-byte compat", G1, w_device(&b, "a", 0, 0, "", 4096));
    CASE(-E2BIG, "4097-byte compat", G1, w_device(&b, "a", 0, 0, "", 4097));
    CASE(-EBADMSG, "name length past the end", G1, w_u16(&b, 5), w_u16(&b, 0));
    CASE(-EBADMSG, "compat past the end", G1, w_device(&b, "a", 0, 0, "", 10), b.n -= 1);
#undef G1
#undef CASE
}

/* Every proper prefix of a good manifest is refused, and @m is left alone. */
Test(stream, manifest_every_truncation_fails)
{
    static Bytes b;
    StreamManifest back = {.devices = devs2};

    sample_manifest_bytes(&b);
    for (size_t n = 0; n < b.n; n++) {
        strcpy(back.group, "untouched");
        back.n_devices = 77;
        cr_assert_lt(stream_decode_manifest(b.p, n, &back), 0, "prefix %zu", n);
        cr_assert_str_eq(back.group, "untouched");
        cr_assert_eq(back.n_devices, 77);
    }
}

/* ---- DEVICE_IRQS */

static IrqState
irqs_msix8(void)
{
    IrqState s = {.type = IRQ_TYPE_MSIX, .count = 8};

    s.in_use[0] = 0xff;
    irq_bit_set(s.masked, 3, true);
    irq_bit_set(s.pending, 3, true);
    return s;
}

static int
irqs_decode(const uint8_t *p, size_t n, char *why)
{
    IrqState s;

    return stream_decode_device_irqs(p, n, &s, why, 160);
}

Test(stream, device_irqs_layout_and_round_trip)
{
    IrqState s = irqs_msix8(), back;
    const uint8_t want[] = {3, 0, 8, 0, 0xff, 0x08, 0x08};
    uint8_t out[STREAM_IRQS_MAX_SIZE];

    cr_assert_eq(stream_device_irqs_size(&s), sizeof(want));
    cr_assert_eq(stream_encode_device_irqs(&s, out, sizeof(out)), (int) sizeof(want));
    cr_assert_arr_eq(out, want, sizeof(want));
    cr_assert_eq(stream_decode_device_irqs(out, sizeof(want), &back, NULL, 0), 0);
    cr_assert_eq(memcmp(&back, &s, sizeof(s)), 0);

    /* the encoder refuses what the decoder would, and a buffer one byte short */
    cr_assert_eq(stream_encode_device_irqs(&s, out, sizeof(want) - 1), -E2BIG);
    cr_assert_eq(stream_encode_device_irqs(&(IrqState){0}, out, sizeof(out)), -EINVAL);
    s.count = 2; /* vectors 2..7 still in use */
    cr_assert_eq(stream_encode_device_irqs(&s, out, sizeof(out)), -EINVAL);
}

Test(stream, device_irqs_at_every_bound)
{
    static const struct {
        IrqType type;
        uint32_t max;
    } types[] = {{IRQ_TYPE_INTX, 1}, {IRQ_TYPE_MSI, 32}, {IRQ_TYPE_MSIX, 2048}};
    uint8_t p[STREAM_IRQS_MAX_SIZE + 8];
    char why[160];

    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        IrqState s = {.type = types[t].type, .count = types[t].max}, back;
        size_t n = IRQ_BITMAP_SIZE(types[t].max);
        int size;

        /* every vector in use, masked and pending: the largest of its type */
        memset(s.in_use, 0, sizeof(s.in_use));
        for (uint32_t v = 0; v < s.count; v++) {
            irq_bit_set(s.in_use, v, true);
            irq_bit_set(s.masked, v, true);
            irq_bit_set(s.pending, v, true);
        }
        size = stream_encode_device_irqs(&s, p, sizeof(p));
        cr_assert_eq(size, (int) (4 + 3 * n));
        cr_assert_eq(stream_decode_device_irqs(p, (size_t) size, &back, NULL, 0), 0);
        cr_assert_eq(memcmp(&back, &s, sizeof(s)), 0);
        /* one vector more than the type allows (its bitmaps grown to fit when they must) */
        put_le16(p + 2, (uint16_t) (types[t].max + 1));
        cr_assert_eq(irqs_decode(p, 4 + 3 * IRQ_BITMAP_SIZE(types[t].max + 1), why), -EBADMSG);
        cr_assert(strstr(why, "outside 1.."), "%s", why);
    }
    /* MSI-X: 2048 vectors take 772 bytes, which is the record type's bound */
    cr_assert_eq(STREAM_IRQS_MAX_SIZE, 772);

    /* the fields one at a time, from a valid msix 9 (two-byte bitmaps) */
    const uint8_t good[] = {3, 0, 9, 0, 0xff, 0x01, 0x08, 0x00, 0x08, 0x01};
    cr_assert_eq(irqs_decode(good, sizeof(good), why), 0, "%s", why);
    for (unsigned type = 0; type < 256; type++) {
        memcpy(p, good, sizeof(good));
        p[0] = (uint8_t) type;
        /* 9 vectors: MSI and MSI-X hold them, INTx (one line) does not, nothing else is an index */
        cr_assert_eq(irqs_decode(p, sizeof(good), why), type == 2 || type == 3 ? 0 : -EBADMSG,
                     "index %u", type);
    }
    memcpy(p, good, sizeof(good));
    p[1] = 1;
    cr_assert_eq(irqs_decode(p, sizeof(good), why), -EBADMSG);
    cr_assert(strstr(why, "reserved"), "%s", why);
    memcpy(p, good, sizeof(good));
    put_le16(p + 2, 0);
    cr_assert_eq(irqs_decode(p, 4, why), -EBADMSG);
    /* lengths one short and one long */
    cr_assert_eq(irqs_decode(good, sizeof(good) - 1, why), -EBADMSG);
    memcpy(p, good, sizeof(good));
    p[sizeof(good)] = 0;
    cr_assert_eq(irqs_decode(p, sizeof(good) + 1, why), -EBADMSG);
    cr_assert(strstr(why, "but 9 vectors take 10"), "%s", why);
    /* a bit at vector 9 (beyond the count) in each bitmap */
    for (size_t map = 0; map < 3; map++) {
        memcpy(p, good, sizeof(good));
        p[4 + 2 * map + 1] |= 0x02;
        cr_assert_eq(irqs_decode(p, sizeof(good), why), -EBADMSG, "bitmap %zu", map);
    }
    /* masked, then pending, on vector 1 (not in use) */
    for (size_t map = 1; map < 3; map++) {
        memcpy(p, good, sizeof(good));
        p[4] = 0xfd;
        p[4 + 2 * map] |= 0x02;
        cr_assert_eq(irqs_decode(p, sizeof(good), why), -EBADMSG, "bitmap %zu", map);
        p[4 + 2 * map] &= (uint8_t) ~0x02;
        cr_assert_eq(irqs_decode(p, sizeof(good), why), 0, "%s", why);
    }
}

Test(stream, device_irqs_every_truncation_fails)
{
    IrqState s = irqs_msix8();
    uint8_t p[STREAM_IRQS_MAX_SIZE];
    char why[160];
    int n;

    s.type = IRQ_TYPE_MSIX;
    s.count = 2048;
    memset(s.in_use, 0xff, sizeof(s.in_use));
    n = stream_encode_device_irqs(&s, p, sizeof(p));
    cr_assert_eq(n, 772);
    for (int len = 0; len < n; len++) {
        cr_assert_eq(irqs_decode(p, (size_t) len, why), -EBADMSG, "length %d", len);
    }
}

Test(stream, device_end_and_stream_end_layout)
{
    StreamDeviceTotals t = {.bytes = UINT64_C(0x0102030405060708), .records = 9};
    StreamDeviceTotals all[3] = {{1, 2}, {3, 4}, {UINT64_MAX, 0}};
    StreamDeviceTotals back[3];
    uint8_t out[64], want[64];

    cr_assert_eq(stream_encode_device_end(&t, out, 16), 16);
    put_le64(want, t.bytes);
    put_le64(want + 8, t.records);
    cr_assert_arr_eq(out, want, 16);
    cr_assert_eq(stream_encode_device_end(&t, out, 15), -E2BIG);
    cr_assert_eq(stream_decode_device_end(out, 16, &back[0]), 0);
    cr_assert_eq(back[0].bytes, t.bytes);
    cr_assert_eq(back[0].records, t.records);
    cr_assert_eq(stream_decode_device_end(out, 15, &back[0]), -EBADMSG);
    cr_assert_eq(stream_decode_device_end(out, 17, &back[0]), -EBADMSG);

    cr_assert_eq(stream_end_size(3), 52);
    cr_assert_eq(stream_encode_stream_end(all, 3, out, sizeof(out)), 52);
    put_le32(want, 3);
    for (int i = 0; i < 3; i++) {
        put_le64(want + 4 + 16 * i, all[i].bytes);
        put_le64(want + 12 + 16 * i, all[i].records);
    }
    cr_assert_arr_eq(out, want, 52);
    cr_assert_eq(stream_encode_stream_end(all, 3, out, 51), -E2BIG);
    cr_assert_eq(stream_encode_stream_end(all, 0, out, sizeof(out)), -EINVAL);
    cr_assert_eq(stream_encode_stream_end(all, 257, out, sizeof(out)), -E2BIG);
    cr_assert_eq(stream_decode_stream_end(out, 52, back, 3), 0);
    cr_assert_arr_eq(back, all, sizeof(all));
    cr_assert_eq(stream_decode_stream_end(out, 52, back, 2), -EBADMSG, "count differs");
    cr_assert_eq(stream_decode_stream_end(out, 51, back, 3), -EBADMSG, "short");
    cr_assert_eq(stream_decode_stream_end(out, 53, back, 3), -EBADMSG, "long");
    cr_assert_eq(stream_decode_stream_end(out, 3, back, 3), -EBADMSG, "no count");
    put_le32(out, 0);
    cr_assert_eq(stream_decode_stream_end(out, 4, back, 0), -EBADMSG, "no devices");
    cr_assert_eq(stream_decode_stream_end(out, 4, back, 257), -E2BIG);
}

/* ---- whole streams */

#define MAX_RECORDS 64

typedef struct Builder {
    uint8_t p[1 << 16];
    size_t n;
    size_t rec[MAX_RECORDS];      /* offset of each record */
    size_t rec_size[MAX_RECORDS]; /* its header and payload */
    size_t n_rec;
} Builder;

static void
b_header(Builder *b, uint64_t id)
{
    StreamHeader h = {.stream_id = id};

    b->n = 0;
    b->n_rec = 0;
    stream_encode_header(&h, b->p);
    b->n = 32;
}

static void
b_record(Builder *b, uint32_t type, uint32_t flags, uint32_t device, uint64_t seq,
         const void *payload, uint32_t length)
{
    StreamRecordHeader h = {type, flags, device, length, seq, 0};

    cr_assert_lt(b->n_rec, MAX_RECORDS);
    cr_assert_leq(b->n + 32 + length, sizeof(b->p));
    stream_encode_record_header(&h, payload, b->p + b->n);
    if (length > 0) {
        memcpy(b->p + b->n + 32, payload, length);
    }
    b->rec[b->n_rec] = b->n;
    b->rec_size[b->n_rec] = 32 + length;
    b->n_rec++;
    b->n += 32 + length;
}

static void
b_copy(Builder *dst, const Builder *src, size_t i)
{
    cr_assert_lt(i, src->n_rec);
    memcpy(dst->p + dst->n, src->p + src->rec[i], src->rec_size[i]);
    dst->rec[dst->n_rec] = dst->n;
    dst->rec_size[dst->n_rec] = src->rec_size[i];
    dst->n_rec++;
    dst->n += src->rec_size[i];
}

/* @dst: @src's header, then @src's records in the order @order gives (-1 ends it). */
static void
b_reorder(Builder *dst, const Builder *src, const int *order)
{
    memcpy(dst->p, src->p, 32);
    dst->n = 32;
    dst->n_rec = 0;
    for (; *order >= 0; order++) {
        b_copy(dst, src, (size_t) *order);
    }
}

/* Rewrites 8 bytes of record @i's payload and seals both CRCs again with the oracle. */
static void
b_patch64(Builder *b, size_t i, size_t off, uint64_t v)
{
    uint8_t *h = b->p + b->rec[i];
    uint32_t length = get_le32(h + 12);

    put_le64(h + 32 + off, v);
    put_le32(h + 24, ref_crc32c(0, h + 32, length));
    reseal(h);
}

/* Rewrites a 32-bit field of record @i's header and seals it again. */
static void
b_patch_header32(Builder *b, size_t i, size_t off, uint32_t v)
{
    uint8_t *h = b->p + b->rec[i];

    put_le32(h + off, v);
    reseal(h);
}

/* The sample stream: three devices interleaved, pre-copy then stop-copy data, ends in a
 * different order than they started. Record indexes, for the tests that rearrange it:
 *   0 MANIFEST s0   1 D0 s0 P   2 D1 s0 P   3 D0 s1 P   4 D2 s0   5 D1 s1
 *   6 D0 s2         7 D1 END s2 8 D2 s1     9 D0 END s3 10 D2 END s2 11 STREAM_END s1 */
enum { DATA_PRE, DATA, END };
static const struct {
    int kind;
    uint32_t device;
    uint32_t length;
} sample_script[] = {
    {DATA_PRE, 0, 40}, {DATA_PRE, 1, 64}, {DATA_PRE, 0, 33}, {DATA, 2, 50},
    {DATA, 1, 64},     {DATA, 0, 10},     {END, 1, 0},       {DATA, 2, 7},
    {END, 0, 0},       {END, 2, 0},
};
#define SAMPLE_ID UINT64_C(0x5EED5EED00C0FFEE)

static uint8_t device_bytes[3][256]; /* what each device sent, concatenated */

static void
sample_stream(Builder *b)
{
    static Bytes manifest;
    StreamDeviceTotals t[3] = {{0}};
    uint64_t seq[3] = {0};
    uint8_t payload[256];

    sample_manifest_bytes(&manifest);
    b_header(b, SAMPLE_ID);
    b_record(b, STREAM_RECORD_MANIFEST, 0, STREAM_DEVICE_NONE, 0, manifest.p,
             (uint32_t) manifest.n);
    for (size_t i = 0; i < sizeof(sample_script) / sizeof(sample_script[0]); i++) {
        uint32_t d = sample_script[i].device, len = sample_script[i].length;

        if (sample_script[i].kind == END) {
            put_le64(payload, t[d].bytes);
            put_le64(payload + 8, t[d].records);
            b_record(b, STREAM_RECORD_DEVICE_END, 0, d, seq[d]++, payload, 16);
            continue;
        }
        fill_pattern(payload, len, (uint32_t) (i + 100));
        memcpy(device_bytes[d] + t[d].bytes, payload, len);
        b_record(b, STREAM_RECORD_DEVICE_DATA,
                 sample_script[i].kind == DATA_PRE ? STREAM_FLAG_PRECOPY : 0, d, seq[d]++,
                 payload, len);
        t[d].bytes += len;
        t[d].records++;
    }
    put_le32(payload, 3);
    for (int d = 0; d < 3; d++) {
        put_le64(payload + 4 + 16 * d, t[d].bytes);
        put_le64(payload + 12 + 16 * d, t[d].records);
    }
    b_record(b, STREAM_RECORD_STREAM_END, 0, STREAM_DEVICE_NONE, 1, payload, 52);
}

/* What a received DEVICE_DATA payload is checked against, per device. */
typedef struct Sink {
    uint8_t bytes[3][256];
    size_t n[3];
    size_t optional;
} Sink;

/*
 * Reads a whole stream from memory the way a save file restore does: the header, then
 * records while bytes remain (a record header or payload cut short is -ENODATA), then
 * stream_reader_finish(). A header the stateless decoder refuses is still given to the
 * reader, without a payload, for its words.
 */
static int
feed(const uint8_t *p, size_t size, StreamReader *r, StreamManifest *m, Sink *sink)
{
    size_t off = 32;
    int rc;

    stream_reader_init(r);
    if (size < 32) {
        return stream_reader_finish(r);
    }
    rc = stream_reader_header(r, p);
    if (rc < 0) {
        return rc;
    }
    while (off < size) {
        StreamRecordHeader h;
        bool ok;

        if (size - off < 32) {
            return -ENODATA;
        }
        ok = stream_decode_record_header(p + off, &h) == 0;
        if (ok && h.length > size - off - 32) {
            return -ENODATA;
        }
        rc = stream_reader_record(r, p + off, ok ? p + off + 32 : NULL, m, &h);
        if (rc < 0) {
            return rc;
        }
        if (sink && h.type == STREAM_RECORD_DEVICE_DATA && h.device < 3 &&
            sink->n[h.device] + h.length <= sizeof(sink->bytes[0])) {
            memcpy(sink->bytes[h.device] + sink->n[h.device], p + off + 32, h.length);
            sink->n[h.device] += h.length;
        } else if (sink && !(h.type >= 1 && h.type <= 4)) {
            sink->optional++;
        }
        off += 32 + h.length;
    }
    return stream_reader_finish(r);
}

static StreamReader reader;
static Builder sample, edited;

/* Gives @r the sample's record @i: its 32-byte header, then its payload. */
static int
sample_record(StreamReader *r, size_t i, StreamManifest *m, StreamRecordHeader *h)
{
    return stream_reader_record(r, sample.p + sample.rec[i], sample.p + sample.rec[i] + 32, m, h);
}

/* Builds the sample stream and takes @reader past its header and its manifest. */
static void
reader_past_manifest(StreamManifest *m, StreamRecordHeader *h)
{
    sample_stream(&sample);
    stream_reader_init(&reader);
    cr_assert_eq(stream_reader_header(&reader, sample.p), 0);
    cr_assert_eq(sample_record(&reader, 0, m, h), 0);
}

Test(reader, full_stream_round_trip)
{
    StreamManifest m, back = {.devices = devs2};
    static Sink sink;
    int rc;

    sample_stream(&sample);
    cr_assert_eq(sample.n_rec, 12);
    rc = feed(sample.p, sample.n, &reader, &back, &sink);
    cr_assert_eq(rc, 0, "%s", reader.error);
    cr_assert(stream_reader_complete(&reader));
    cr_assert_eq(reader.stream_id, SAMPLE_ID);
    sample_manifest(&m);
    assert_manifests_equal(&m, &back);
    cr_assert_eq(reader.devices[0].totals.records, 3);
    cr_assert_eq(reader.devices[0].totals.bytes, 83);
    cr_assert_eq(reader.devices[1].totals.records, 2);
    cr_assert_eq(reader.devices[1].totals.bytes, 128);
    cr_assert_eq(reader.devices[2].totals.records, 2);
    cr_assert_eq(reader.devices[2].totals.bytes, 57);
    for (int d = 0; d < 3; d++) {
        cr_assert_eq(sink.n[d], reader.devices[d].totals.bytes);
        cr_assert_arr_eq(sink.bytes[d], device_bytes[d], sink.n[d], "device %d", d);
    }
    cr_assert_eq(sink.optional, 0);
}

Test(reader, record_reports_what_it_read)
{
    StreamRecordHeader h;
    StreamManifest back = {.devices = devs2};

    reader_past_manifest(&back, &h);
    cr_assert_eq(h.type, STREAM_RECORD_MANIFEST);
    cr_assert_eq(h.device, STREAM_DEVICE_NONE);
    cr_assert_str_eq(reader.devices[1].name, "gpu1");
    /* No manifest buffer: checked all the same, just not returned. */
    stream_reader_init(&reader);
    cr_assert_eq(stream_reader_header(&reader, sample.p), 0);
    cr_assert_eq(sample_record(&reader, 0, NULL, &h), 0);
    cr_assert_eq(reader.n_devices, 3);
    cr_assert_eq(sample_record(&reader, 1, NULL, &h), 0);
    cr_assert_eq(h.type, STREAM_RECORD_DEVICE_DATA);
    cr_assert_eq(h.flags, STREAM_FLAG_PRECOPY);
    cr_assert_eq(h.device, 0);
    cr_assert_eq(h.sequence, 0);
    cr_assert_eq(h.length, 40);
    cr_assert(!stream_reader_complete(&reader));
}

/* Devices may interleave in any order, as long as each device's own order holds. */
Test(reader, other_interleavings_are_accepted)
{
    static const int orders[][16] = {
        {0, 1, 3, 6, 9, 2, 5, 7, 4, 8, 10, 11, -1},  /* one device after another */
        {0, 4, 8, 10, 2, 5, 7, 1, 3, 6, 9, 11, -1},  /* reverse device order */
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 9, 11, -1},  /* ends swapped */
    };

    sample_stream(&sample);
    for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
        int rc;

        b_reorder(&edited, &sample, orders[i]);
        rc = feed(edited.p, edited.n, &reader, NULL, NULL);
        cr_assert_eq(rc, 0, "order %zu: %s", i, reader.error);
    }
}

Test(reader, record_header_every_bit_flip_fails)
{
    const size_t which[] = {0, 1, 4, 7, 11}; /* MANIFEST, data, data, DEVICE_END, STREAM_END */

    sample_stream(&sample);
    for (size_t w = 0; w < sizeof(which) / sizeof(which[0]); w++) {
        for (int bit = 0; bit < 256; bit++) {
            uint8_t *h = sample.p + sample.rec[which[w]];

            h[bit / 8] ^= (uint8_t) (1u << (bit % 8));
            cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG,
                         "record %zu bit %d", which[w], bit);
            cr_assert(!stream_reader_complete(&reader));
            h[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        }
    }
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), 0, "restored: %s", reader.error);
}

Test(reader, payload_every_bit_flip_fails)
{
    const size_t which[] = {0, 3, 9, 11};

    sample_stream(&sample);
    for (size_t w = 0; w < sizeof(which) / sizeof(which[0]); w++) {
        uint8_t *payload = sample.p + sample.rec[which[w]] + 32;
        size_t bits = 8 * (sample.rec_size[which[w]] - 32);

        for (size_t bit = 0; bit < bits; bit++) {
            payload[bit / 8] ^= (uint8_t) (1u << (bit % 8));
            cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG,
                         "record %zu bit %zu", which[w], bit);
            cr_assert(strstr(reader.error, "payload CRC mismatch"), "%s", reader.error);
            payload[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        }
    }
    /* The words name the record: type, sequence, device and its name. */
    sample.p[sample.rec[3] + 32 + 5] ^= 0x10;
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert_str_eq(reader.error, "DEVICE_DATA record 1 of device 0 ('nic0'): payload CRC "
                                   "mismatch");
}

Test(reader, every_truncation_fails)
{
    sample_stream(&sample);
    for (size_t n = 0; n < sample.n; n++) {
        cr_assert_eq(feed(sample.p, n, &reader, NULL, NULL), -ENODATA, "prefix %zu: %s", n,
                     reader.error);
        cr_assert(!stream_reader_complete(&reader), "prefix %zu", n);
    }
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), 0);
}

Test(reader, truncation_messages)
{
    sample_stream(&sample);
    cr_assert_eq(feed(sample.p, 10, &reader, NULL, NULL), -ENODATA);
    cr_assert_str_eq(reader.error, "the stream ended before its header");
    cr_assert_eq(feed(sample.p, 32, &reader, NULL, NULL), -ENODATA);
    cr_assert_str_eq(reader.error, "the stream ended before the MANIFEST");
    cr_assert_eq(feed(sample.p, sample.rec[7], &reader, NULL, NULL), -ENODATA);
    cr_assert_str_eq(reader.error, "the stream ended before the DEVICE_END of device 0 ('nic0')");
    cr_assert_eq(feed(sample.p, sample.rec[11], &reader, NULL, NULL), -ENODATA);
    cr_assert_str_eq(reader.error, "the stream ended before STREAM_END");
}

static int
feed_order(const int *order)
{
    b_reorder(&edited, &sample, order);
    return feed(edited.p, edited.n, &reader, NULL, NULL);
}

Test(reader, order_violations)
{
    sample_stream(&sample);

    /* reordered within one device */
    cr_assert_eq(feed_order((int[]) {0, 3, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, -1}), -ESTALE);
    cr_assert_str_eq(reader.error,
                     "device 0 ('nic0'): expected sequence 0, got 1 (records lost or reordered)");
    /* duplicated */
    cr_assert_eq(feed_order((int[]) {0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, -1}), -ESTALE);
    cr_assert_str_eq(reader.error, "device 0 ('nic0'): expected sequence 2, got 1 "
                                   "(a record repeated or reordered)");
    /* lost */
    cr_assert_eq(feed_order((int[]) {0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, -1}), -ESTALE);
    cr_assert(strstr(reader.error, "device 1 ('gpu1'): expected sequence 1, got 2"), "%s",
              reader.error);
    /* D2 s1 moved after D2's DEVICE_END (s2): the sequence catches it first */
    cr_assert_eq(feed_order((int[]) {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 8, 11, -1}), -ESTALE);
    /* data after the device's DEVICE_END, in sequence */
    b_reorder(&edited, &sample, (int[]) {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1});
    b_record(&edited, STREAM_RECORD_DEVICE_DATA, 0, 2, 3, "after", 5);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert_str_eq(reader.error,
                     "DEVICE_DATA record 3 of device 2 ('disk2') after the device's DEVICE_END");
    /* STREAM_END before every device ended */
    cr_assert_eq(feed_order((int[]) {0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, -1}), -EBADMSG);
    cr_assert_str_eq(reader.error,
                     "STREAM_END record 1 of the stream before the DEVICE_END of device 1 "
                     "('gpu1')");
    /* anything after STREAM_END: a record, or a whole second copy of one */
    cr_assert_eq(feed_order((int[]) {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11, -1}), -EBADMSG);
    cr_assert_str_eq(reader.error, "data after STREAM_END, which ends the stream");
    cr_assert_eq(feed_order((int[]) {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1, -1}), -EBADMSG);
    /* MANIFEST: first, once */
    cr_assert_eq(feed_order((int[]) {1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -1}), -EBADMSG);
    cr_assert(strstr(reader.error, "before the MANIFEST"), "%s", reader.error);
    cr_assert_eq(feed_order((int[]) {0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -1}), -EBADMSG);
    cr_assert(strstr(reader.error, "a second MANIFEST"), "%s", reader.error);
    cr_assert_eq(feed_order((int[]) {11, -1}), -EBADMSG, "STREAM_END alone");
    /* a stream with a header and nothing else is cut short, not complete */
    cr_assert_eq(feed_order((int[]) {-1}), -ENODATA);
}

Test(reader, records_before_and_headers_after)
{
    StreamRecordHeader h;

    sample_stream(&sample);
    stream_reader_init(&reader);
    cr_assert_eq(sample_record(&reader, 0, NULL, &h), -EBADMSG);
    cr_assert_str_eq(reader.error, "a record before the stream header");
    cr_assert_eq(stream_reader_header(&reader, sample.p), 0);
    cr_assert_eq(stream_reader_header(&reader, sample.p), -EBADMSG);
    cr_assert_str_eq(reader.error, "a second stream header");
}

Test(reader, device_index_beyond_the_manifest)
{
    sample_stream(&sample);
    b_patch_header32(&sample, 4, 8, 3); /* D2 s0 -> device 3 of 3 */
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert_str_eq(reader.error,
                     "DEVICE_DATA record 0 of device 3, but the manifest lists 3 devices");
    b_patch_header32(&sample, 4, 8, 255);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);
    b_patch_header32(&sample, 4, 8, 256);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);
    b_patch_header32(&sample, 4, 8, STREAM_DEVICE_NONE);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);
}

Test(reader, wrong_totals)
{
    /* DEVICE_END of device 1 (record 7): bytes, then records */
    sample_stream(&sample);
    b_patch64(&sample, 7, 0, 129);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert_str_eq(reader.error, "DEVICE_END says device 1 ('gpu1') sent 2 records / 129 "
                                   "bytes, but 2 records / 128 bytes arrived");
    sample_stream(&sample);
    b_patch64(&sample, 7, 8, 3);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);

    /* STREAM_END: each device's bytes and records */
    for (int d = 0; d < 3; d++) {
        for (int field = 0; field < 2; field++) {
            sample_stream(&sample);
            b_patch64(&sample, 11, 4 + 16 * (size_t) d + 8 * (size_t) field, 1000);
            cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG,
                         "device %d field %d", d, field);
            cr_assert(strstr(reader.error, "STREAM_END"), "%s", reader.error);
        }
    }
    /* STREAM_END counting other than 3 devices */
    sample_stream(&sample);
    {
        uint8_t *h = sample.p + sample.rec[11];

        put_le32(h + 32, 2);
        put_le32(h + 24, ref_crc32c(0, h + 32, 52));
        reseal(h);
    }
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);
}

Test(reader, stream_level_sequence)
{
    sample_stream(&sample);
    b_patch_header32(&sample, 11, 16, 2); /* STREAM_END says sequence 2 */
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -ESTALE);
    cr_assert_str_eq(reader.error, "stream-level records: expected sequence 1, got 2 (records "
                                   "lost or reordered)");
    sample_stream(&sample);
    b_patch_header32(&sample, 0, 16, 1); /* MANIFEST says sequence 1 */
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -ESTALE);
}

Test(reader, oversized_length)
{
    sample_stream(&sample);
    b_patch_header32(&sample, 3, 12, STREAM_MAX_RECORD + 1);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -E2BIG);
    cr_assert(strstr(reader.error, "over the limit"), "%s", reader.error);
}

Test(reader, precopy_after_stop_copy)
{
    sample_stream(&sample);
    b_patch_header32(&sample, 6, 4, STREAM_FLAG_PRECOPY); /* D0 s2 after... */
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), 0, "pre-copy still: %s",
                 reader.error);
    sample_stream(&sample);
    b_patch_header32(&sample, 8, 4, STREAM_FLAG_PRECOPY); /* D2 s1 after D2's stop-copy s0 */
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert(strstr(reader.error, "pre-copy data after stop-copy data"), "%s", reader.error);
}

Test(reader, foreign_stream_and_other_versions)
{
    uint8_t h[32];

    sample_stream(&sample);
    memcpy(sample.p, "VFMIGDSV", 8);
    reseal(sample.p);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -ENOEXEC);
    cr_assert(strstr(reader.error, "not a vfio-migd migration stream"), "%s", reader.error);

    sample_stream(&sample);
    oracle_stream_header(h, 2, 0, SAMPLE_ID);
    memcpy(sample.p, h, 32);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), -EPROTONOSUPPORT);
    cr_assert_str_eq(reader.error,
                     "stream format version 2.0 is not supported (this reader reads 1.x)");

    oracle_stream_header(h, 1, 3, SAMPLE_ID);
    memcpy(sample.p, h, 32);
    cr_assert_eq(feed(sample.p, sample.n, &reader, NULL, NULL), 0, "1.3: %s", reader.error);
}

/* A newer writer's OPTIONAL records are skipped; mandatory ones are refused. */
Test(reader, unknown_record_types)
{
    static Sink sink;
    uint8_t extra[24];
    size_t i;

    fill_pattern(extra, sizeof(extra), 77);
    sample_stream(&sample);

    /* optional, of a device and of the stream, between data records */
    b_reorder(&edited, &sample, (int[]) {0, 1, 2, -1});
    b_record(&edited, 40, STREAM_FLAG_OPTIONAL, 1, 12345, extra, sizeof(extra));
    b_record(&edited, 41, STREAM_FLAG_OPTIONAL, STREAM_DEVICE_NONE, 0, extra, sizeof(extra));
    b_record(&edited, 42, STREAM_FLAG_OPTIONAL | STREAM_FLAG_PRECOPY, 2, 0, NULL, 0);
    for (i = 3; i < sample.n_rec; i++) {
        b_copy(&edited, &sample, i);
    }
    memset(&sink, 0, sizeof(sink));
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, &sink), 0, "%s", reader.error);
    cr_assert_eq(sink.optional, 3);
    cr_assert_eq(reader.devices[1].totals.records, 2, "optional records count nothing");

    /* the same without OPTIONAL */
    b_reorder(&edited, &sample, (int[]) {0, 1, 2, -1});
    b_record(&edited, 40, 0, 1, 2, extra, sizeof(extra));
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert_str_eq(reader.error,
                     "type 40 record 2 of device 1 ('gpu1'): unknown record type, and not "
                     "OPTIONAL");

    /* optional but still bound by order: before the MANIFEST, after a device's end, after
     * STREAM_END, beyond the manifest's devices, with a bad payload */
    b_header(&edited, SAMPLE_ID);
    b_record(&edited, 40, STREAM_FLAG_OPTIONAL, STREAM_DEVICE_NONE, 0, extra, sizeof(extra));
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    b_reorder(&edited, &sample, (int[]) {0, 1, 2, 3, 4, 5, 6, 7, -1});
    b_record(&edited, 40, STREAM_FLAG_OPTIONAL, 1, 0, extra, sizeof(extra));
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    b_reorder(&edited, &sample, (int[]) {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -1});
    b_record(&edited, 40, STREAM_FLAG_OPTIONAL, STREAM_DEVICE_NONE, 0, extra, sizeof(extra));
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    b_reorder(&edited, &sample, (int[]) {0, -1});
    b_record(&edited, 40, STREAM_FLAG_OPTIONAL, 3, 0, extra, sizeof(extra));
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    b_reorder(&edited, &sample, (int[]) {0, -1});
    b_record(&edited, 40, STREAM_FLAG_OPTIONAL, 0, 0, extra, sizeof(extra));
    edited.p[edited.n - 1] ^= 1;
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert(strstr(reader.error, "payload CRC mismatch"), "%s", reader.error);
}

/* Sample records 0..8 (up to D2 s1), then @extra, then D0 END, D2 END, STREAM_END. */
static void
irqs_before_end_of_device0(Builder *b, void (*extra)(Builder *b))
{
    b_reorder(b, &sample, (int[]) {0, 1, 2, 3, 4, 5, 6, 7, 8, -1});
    extra(b);
    for (size_t i = 9; i < sample.n_rec; i++) {
        b_copy(b, &sample, i);
    }
}

static uint8_t irqs_payload[STREAM_IRQS_MAX_SIZE];
static uint32_t irqs_len;

static void
irqs_good(Builder *b)
{
    b_record(b, STREAM_RECORD_DEVICE_IRQS, STREAM_FLAG_OPTIONAL, 0, 0, irqs_payload, irqs_len);
}

static void
irqs_not_optional(Builder *b)
{
    b_record(b, STREAM_RECORD_DEVICE_IRQS, 0, 0, 0, irqs_payload, irqs_len);
}

static void
irqs_sequenced(Builder *b)
{
    b_record(b, STREAM_RECORD_DEVICE_IRQS, STREAM_FLAG_OPTIONAL, 0, 3, irqs_payload, irqs_len);
}

static void
irqs_twice(Builder *b)
{
    irqs_good(b);
    irqs_good(b);
}

static void
irqs_then_data(Builder *b)
{
    uint8_t one = 1;

    irqs_good(b);
    b_record(b, STREAM_RECORD_DEVICE_DATA, 0, 0, 3, &one, 1);
}

static void
irqs_of_the_stream(Builder *b)
{
    b_record(b, STREAM_RECORD_DEVICE_IRQS, STREAM_FLAG_OPTIONAL, STREAM_DEVICE_NONE, 0,
             irqs_payload, irqs_len);
}

static void
irqs_malformed(Builder *b)
{
    uint8_t bad[STREAM_IRQS_MAX_SIZE];

    memcpy(bad, irqs_payload, irqs_len);
    bad[4] = 0xf7; /* vector 3 masked and pending, but not in use */
    b_record(b, STREAM_RECORD_DEVICE_IRQS, STREAM_FLAG_OPTIONAL, 0, 0, bad, irqs_len);
}

Test(reader, device_irqs_records)
{
    static Sink sink;
    IrqState s = irqs_msix8();

    irqs_len = (uint32_t) stream_encode_device_irqs(&s, irqs_payload, sizeof(irqs_payload));
    sample_stream(&sample);

    /* after the device's data, before its end: accepted, no sequence, counts nothing */
    irqs_before_end_of_device0(&edited, irqs_good);
    memset(&sink, 0, sizeof(sink));
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, &sink), 0, "%s", reader.error);
    cr_assert_eq(sink.optional, 1);
    cr_assert_eq(reader.devices[0].totals.records, 3);
    cr_assert(reader.devices[0].irqs);
    cr_assert_not(reader.devices[1].irqs);

    /* what a writer never makes */
    irqs_before_end_of_device0(&edited, irqs_not_optional);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    irqs_before_end_of_device0(&edited, irqs_sequenced);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert(strstr(reader.error, "must be OPTIONAL, with sequence 0"), "%s", reader.error);
    irqs_before_end_of_device0(&edited, irqs_twice);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert(strstr(reader.error, "only its DEVICE_END may follow"), "%s", reader.error);
    irqs_before_end_of_device0(&edited, irqs_then_data);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert(strstr(reader.error, "DEVICE_DATA record 3 of device 0 ('nic0') after the "
                     "device's DEVICE_IRQS"), "%s", reader.error);
    irqs_before_end_of_device0(&edited, irqs_of_the_stream);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    irqs_before_end_of_device0(&edited, irqs_malformed);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert(strstr(reader.error, "DEVICE_IRQS record 0 of device 0 ('nic0'): a bit at or "
                     "beyond vector 8, or masked or pending on a vector not in use"),
              "%s", reader.error);

    /* after the device's end */
    b_reorder(&edited, &sample, (int[]) {0, 1, 2, 3, 4, 5, 6, 7, -1});
    b_record(&edited, STREAM_RECORD_DEVICE_IRQS, STREAM_FLAG_OPTIONAL, 1, 0, irqs_payload,
             irqs_len);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert(strstr(reader.error, "after the device's DEVICE_END"), "%s", reader.error);
}

Test(reader, device_irqs_on_a_data_channel_are_adopted)
{
    StreamReader *ch = calloc(1, sizeof(*ch));
    StreamRecordHeader h;
    uint8_t hdr[32], end[16];
    StreamDeviceTotals t = {0};
    IrqState s = irqs_msix8();
    int n = stream_encode_device_irqs(&s, irqs_payload, sizeof(irqs_payload));

    stream_reader_expect_devices(ch, 7, 2);
    stream_encode_record_header(&(StreamRecordHeader){STREAM_RECORD_DEVICE_IRQS,
                                                      STREAM_FLAG_OPTIONAL, 1, (uint32_t) n, 0,
                                                      0}, irqs_payload, hdr);
    cr_assert_eq(stream_reader_record(ch, hdr, irqs_payload, NULL, &h), 0, "%s", ch->error);
    cr_assert_eq(h.type, STREAM_RECORD_DEVICE_IRQS);
    (void) stream_encode_device_end(&t, end, sizeof(end));
    stream_encode_record_header(&(StreamRecordHeader){STREAM_RECORD_DEVICE_END, 0, 1, 16, 0, 0},
                                end, hdr);
    cr_assert_eq(stream_reader_record(ch, hdr, end, NULL, &h), 0, "%s", ch->error);
    cr_assert(ch->devices[1].irqs && ch->devices[1].ended);
    free(ch);
}

Test(reader, bad_manifest_in_a_stream)
{
    static Bytes b;

    b.n = 0;
    w_str(&b, "g", 1);
    w_u32(&b, 2);
    w_device(&b, "twin", 0, 0, "", 0);
    w_device(&b, "twin", 0, 0, "", 0);
    b_header(&edited, 1);
    b_record(&edited, STREAM_RECORD_MANIFEST, 0, STREAM_DEVICE_NONE, 0, b.p, (uint32_t) b.n);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -EBADMSG);
    cr_assert_str_eq(reader.error, "manifest: devices 0 and 1 are both named 'twin'");
    cr_assert(!reader.have_manifest);

    b.n = 0;
    w_str(&b, "g", 1);
    w_u32(&b, 257);
    for (int i = 0; i < 257; i++) {
        char name[16];

        snprintf(name, sizeof(name), "d%d", i);
        w_device(&b, name, 0, 0, "", 0);
    }
    b_header(&edited, 1);
    b_record(&edited, STREAM_RECORD_MANIFEST, 0, STREAM_DEVICE_NONE, 0, b.p, (uint32_t) b.n);
    cr_assert_eq(feed(edited.p, edited.n, &reader, NULL, NULL), -E2BIG);
    cr_assert_str_eq(reader.error, "manifest: 257 devices, over the limit of 256");
}

/* A refused record changes nothing: the right record is still accepted after it. */
Test(reader, refusal_leaves_the_reader_unchanged)
{
    StreamRecordHeader h;
    uint8_t bad[32];

    sample_stream(&sample);
    stream_reader_init(&reader);
    cr_assert_eq(stream_reader_header(&reader, sample.p), 0);
    for (size_t i = 0; i < sample.n_rec; i++) {
        const uint8_t *rec = sample.p + sample.rec[i];

        /* the next record's header with a wrong sequence, correctly sealed */
        memcpy(bad, rec, 32);
        put_le64(bad + 16, get_le32(rec + 16) + 1);
        reseal(bad);
        cr_assert_lt(stream_reader_record(&reader, bad, rec + 32, NULL, &h), 0, "record %zu",
                     i);
        cr_assert_eq(stream_reader_record(&reader, rec, rec + 32, NULL, &h), 0, "record %zu: %s",
                     i, reader.error);
    }
    cr_assert(stream_reader_complete(&reader));
    cr_assert_eq(stream_reader_finish(&reader), 0);
}

/* ---- live migration: a control channel and one data channel per device */

static StreamReader channel[3];

/* Splits the sample stream: stream-level records to the control reader, each device's to
 * its own channel reader. */
static int
feed_channels(StreamReader *control, uint64_t channel_id)
{
    StreamRecordHeader h;
    int rc;

    stream_reader_init(control);
    rc = stream_reader_header(control, sample.p);
    for (int d = 0; d < 3; d++) {
        stream_reader_expect_devices(&channel[d], channel_id, 3);
    }
    for (size_t i = 0; rc == 0 && i < sample.n_rec; i++) {
        const uint8_t *rec = sample.p + sample.rec[i];
        uint32_t device = get_le32(rec + 8);

        if (device == STREAM_DEVICE_NONE) {
            if (get_le32(rec) == STREAM_RECORD_STREAM_END) {
                for (uint32_t d = 0; rc == 0 && d < 3; d++) {
                    rc = stream_reader_adopt_device(control, &channel[d], d);
                }
                if (rc < 0) {
                    break;
                }
            }
            rc = stream_reader_record(control, rec, rec + 32, NULL, &h);
        } else {
            rc = stream_reader_record(&channel[device], rec, rec + 32, NULL, &h);
            cr_assert(rc < 0 || h.device == device);
        }
    }
    return rc;
}

Test(reader, data_channels)
{
    StreamRecordHeader h;
    int rc;

    sample_stream(&sample);
    rc = feed_channels(&reader, SAMPLE_ID);
    cr_assert_eq(rc, 0, "%s / %s %s %s", reader.error, channel[0].error, channel[1].error,
                 channel[2].error);
    cr_assert(stream_reader_complete(&reader));
    cr_assert_eq(reader.devices[1].totals.bytes, 128);

    /* a channel from another stream */
    rc = feed_channels(&reader, SAMPLE_ID + 1);
    cr_assert_eq(rc, -ESTALE);
    cr_assert_str_eq(reader.error, "device 0 ('nic0'): its data channel belongs to another "
                                   "stream");

    /* stream-level records and headers do not belong on a data channel */
    stream_reader_expect_devices(&channel[0], SAMPLE_ID, 3);
    cr_assert_eq(sample_record(&channel[0], 0, NULL, &h), -EBADMSG);
    cr_assert_eq(stream_reader_header(&channel[0], sample.p), -EBADMSG);
    cr_assert_eq(stream_reader_finish(&channel[0]), -EINVAL);
    cr_assert(!stream_reader_complete(&channel[0]));
    /* device index checked against the count the control channel gave */
    stream_reader_expect_devices(&channel[0], SAMPLE_ID, 2);
    cr_assert_eq(sample_record(&channel[0], 4, NULL, &h), -EBADMSG);
}

Test(reader, data_channel_ended_early)
{
    StreamRecordHeader h;
    StreamManifest m = {.devices = devs2};

    reader_past_manifest(&m, &h);
    stream_reader_expect_devices(&channel[1], SAMPLE_ID, 3);
    for (size_t i = 2; i <= 5; i += 3) { /* D1 s0, D1 s1, but not D1's END */
        cr_assert_eq(sample_record(&channel[1], i, NULL, &h), 0);
    }
    cr_assert_eq(stream_reader_adopt_device(&reader, &channel[1], 1), -ENODATA);
    cr_assert_str_eq(reader.error,
                     "device 1 ('gpu1'): its data channel ended before its DEVICE_END");
    cr_assert_eq(sample_record(&channel[1], 7, NULL, &h), 0);
    cr_assert_eq(stream_reader_adopt_device(&reader, &channel[1], 1), 0);
    cr_assert_eq(stream_reader_adopt_device(&reader, &channel[1], 1), -EBADMSG, "twice");
    cr_assert_eq(stream_reader_adopt_device(&reader, &channel[1], 3), -EINVAL);
    cr_assert_eq(stream_reader_adopt_device(&reader, &reader, 0), -EINVAL);
    /* STREAM_END still needs devices 0 and 2 */
    cr_assert_eq(sample_record(&reader, 11, NULL, &h), -EBADMSG);
    cr_assert_eq(stream_reader_finish(&reader), -ENODATA);
}
