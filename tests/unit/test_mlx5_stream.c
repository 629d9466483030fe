/* SPDX-License-Identifier: MIT */
/*
 * test_mlx5_stream — the mlx5 record-stream parser (plugins/mlx5/mlx5_stream.c) against byte
 * layouts written out by hand from kernel-uapi.md §8.3 (16-byte little-endian headers: le64
 * record_size, le32 flags, le32 tag), whole and one byte at a time.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "mlx5_stream.h"

/* A source's stream as the driver writes it: STOP_COPY_SIZE (optional, 8 bytes: 0x12345678),
 * then FW_DATA of 5 bytes. */
static const uint8_t good[] = {
    0x08, 0, 0, 0, 0, 0, 0, 0, /* record_size 8 */
    0x01, 0, 0, 0,             /* flags TAG_OPTIONAL */
    0x01, 0, 0, 0,             /* tag STOP_COPY_SIZE */
    0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0,
    0x05, 0, 0, 0, 0, 0, 0, 0, /* record_size 5 */
    0x00, 0, 0, 0,             /* flags MANDATORY */
    0x00, 0, 0, 0,             /* tag FW_DATA */
    'i', 'm', 'a', 'g', 'e',
};

static int
feed_bytewise(struct mlx5_stream *s, const uint8_t *p, size_t n, char *why, size_t why_size)
{
    for (size_t i = 0; i < n; i++) {
        int r = mlx5_stream_feed(s, p + i, 1, why, why_size);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

Test(mlx5_stream, a_source_stream_whole_and_bytewise)
{
    struct mlx5_stream a, b;
    char why[256] = "";

    mlx5_stream_init(&a);
    cr_assert_eq(mlx5_stream_feed(&a, good, sizeof(good), why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(a.stop_copy_size, 0x12345678);
    cr_assert_eq(a.records, 2);
    cr_assert_eq(a.fw_records, 1);
    cr_assert_eq(a.fw_bytes, 5);
    cr_assert_eq(a.pos, sizeof(good));
    cr_assert(mlx5_stream_complete(&a));
    mlx5_stream_init(&b);
    cr_assert_eq(feed_bytewise(&b, good, sizeof(good), why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(b.stop_copy_size, 0x12345678);
    cr_assert(mlx5_stream_complete(&b));
}

Test(mlx5_stream, incomplete_until_the_last_byte)
{
    struct mlx5_stream s;
    char why[256] = "";

    mlx5_stream_init(&s);
    cr_assert_eq(mlx5_stream_feed(&s, good, 24, why, sizeof(why)), 0);
    cr_assert_eq(s.stop_copy_size, 0x12345678, "known as soon as its record is complete");
    cr_assert_not(mlx5_stream_complete(&s), "no FW_DATA yet");
    cr_assert_eq(mlx5_stream_feed(&s, good + 24, sizeof(good) - 25, why, sizeof(why)), 0);
    cr_assert_not(mlx5_stream_complete(&s), "one image byte missing");
    cr_assert_eq(mlx5_stream_feed(&s, good + sizeof(good) - 1, 1, why, sizeof(why)), 0);
    cr_assert(mlx5_stream_complete(&s));
}

Test(mlx5_stream, unknown_optional_tag_is_skipped)
{
    uint8_t st[16 + 3 + sizeof(good)] = {3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x42, 0, 0, 0,
                                         'x', 'y', 'z'};
    struct mlx5_stream s;
    char why[256] = "";

    memcpy(st + 19, good, sizeof(good));
    mlx5_stream_init(&s);
    cr_assert_eq(feed_bytewise(&s, st, sizeof(st), why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(s.records, 3);
    cr_assert(mlx5_stream_complete(&s));
}

Test(mlx5_stream, unknown_mandatory_tag_is_refused)
{
    uint8_t h[16] = {3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0, 0, 0};
    struct mlx5_stream s;
    char why[256] = "";

    mlx5_stream_init(&s);
    cr_assert_eq(mlx5_stream_feed(&s, h, 15, why, sizeof(why)), 0, "not before the header is whole");
    cr_assert_eq(mlx5_stream_feed(&s, h + 15, 1, why, sizeof(why)), -EPROTONOSUPPORT);
    cr_assert(strstr(why, "unknown mandatory record tag 0x42"), "%s", why);
    cr_assert(strstr(why, "EOPNOTSUPP"), "%s", why);
    cr_assert_eq(mlx5_stream_feed(&s, good, sizeof(good), why, sizeof(why)), -EBADMSG,
                 "a refusal is final");
}

Test(mlx5_stream, a_record_larger_than_one_load_is_refused)
{
    uint8_t h[16] = {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* 2^32 */
    struct mlx5_record_header rh;
    char why[256] = "";

    cr_assert_eq(mlx5_header_parse(h, &rh, why, sizeof(why)), -EBADMSG);
    cr_assert(strstr(why, "4294967296 bytes"), "%s", why);
    cr_assert(strstr(why, "ENOMEM"), "%s", why);
    memset(h, 0xff, 4);
    h[4] = 0;
    cr_assert_eq(mlx5_header_parse(h, &rh, why, sizeof(why)), 0, "2^32 - 1 bytes is one LOAD");
    cr_assert_eq(rh.record_size, UINT32_MAX);
}

Test(mlx5_stream, malformed_known_records)
{
    uint8_t scs[16] = {4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    uint8_t empty[16] = {0};
    struct mlx5_record_header rh;
    char why[256] = "";

    cr_assert_eq(mlx5_header_parse(scs, &rh, why, sizeof(why)), -EBADMSG);
    cr_assert(strstr(why, "STOP_COPY_SIZE record of 4 bytes"), "%s", why);
    cr_assert_eq(mlx5_header_parse(empty, &rh, why, sizeof(why)), -EBADMSG);
    cr_assert(strstr(why, "FW_DATA record without data"), "%s", why);
}

Test(mlx5_stream, header_write_is_the_layout)
{
    struct mlx5_record_header h = {.record_size = 8, .flags = MLX5_FLAG_TAG_OPTIONAL,
                                   .tag = MLX5_TAG_STOP_COPY_SIZE};
    struct mlx5_record_header back;
    uint8_t buf[16];
    char why[64];

    mlx5_header_write(&h, buf);
    cr_assert_arr_eq(buf, good, 16);
    cr_assert_eq(mlx5_header_parse(buf, &back, why, sizeof(why)), 0);
    cr_assert_eq(back.record_size, 8);
    cr_assert_eq(back.flags, 1);
    cr_assert_eq(back.tag, 1);
}
