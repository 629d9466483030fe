/* SPDX-License-Identifier: MIT */
/*
 * The mtty plugin's stream parser (plugins/mtty/mtty_stream.c) against the byte layout of
 * kernel-uapi.md §7.2: the 24-byte native-endian header (magic, major 1, minor 0, nr_ports,
 * flags 0), then 36 bytes per port; 60 bytes for mtty-1, 96 for mtty-2.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "mtty_stream.h"

/* A header as the driver writes it: memcpy of its native-endian fields. */
static void
header(uint8_t *b, uint64_t magic, uint32_t major, uint32_t minor, uint32_t ports, uint32_t flags)
{
    memcpy(b, &magic, 8);
    memcpy(b + 8, &major, 4);
    memcpy(b + 12, &minor, 4);
    memcpy(b + 16, &ports, 4);
    memcpy(b + 20, &flags, 4);
}

/* A version 1.0 stream header of @ports ports into @s, and a stream @st for a destination that
 * wants @want ports, ready to be fed @s. */
static void
stream_of(struct mtty_stream *st, uint8_t *s, uint32_t ports, uint32_t want)
{
    header(s, MTTY_MAGIC, 1, 0, ports, 0);
    mtty_stream_init(st, want);
}

Test(mtty_stream, layout_of_the_reference)
{
    uint8_t b[24];
    struct mtty_header h;
    char why[256] = "";

    /* On a little-endian host the magic's first byte is 0x4e (kernel-uapi.md §7.2). */
    header(b, UINT64_C(0x7e9d09898c3e2c4e), 1, 0, 2, 0);
    cr_assert_eq(mtty_header_parse(b, &h, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(h.nr_ports, 2);
    cr_assert_eq(h.major, 1);
    cr_assert_eq(MTTY_HEADER_SIZE + 2 * MTTY_PORT_SIZE, 96);
    cr_assert_eq(MTTY_HEADER_SIZE + 1 * MTTY_PORT_SIZE, 60);
}

Test(mtty_stream, each_bad_field_is_named)
{
    static const struct {
        uint64_t magic;
        uint32_t major, minor, ports, flags;
        int err;
        const char *word;
    } cases[] = {
        {UINT64_C(0x7e9d09898c3e2c4d), 1, 0, 1, 0, -EBADMSG, "magic"},
        {MTTY_MAGIC, 2, 0, 1, 0, -EPROTONOSUPPORT, "version 2.0"},
        {MTTY_MAGIC, 1, 1, 1, 0, -EPROTONOSUPPORT, "version 1.1"},
        {MTTY_MAGIC, 1, 0, 0, 0, -EBADMSG, "ports 0"},
        {MTTY_MAGIC, 1, 0, 3, 0, -EBADMSG, "ports 3"},
        {MTTY_MAGIC, 1, 0, 1, 1, -EBADMSG, "flags 0x1"},
    };
    struct mtty_header h = {.nr_ports = 77};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[24];
        char why[256] = "";

        header(b, cases[i].magic, cases[i].major, cases[i].minor, cases[i].ports, cases[i].flags);
        cr_assert_eq(mtty_header_parse(b, &h, why, sizeof(why)), cases[i].err, "case %zu", i);
        cr_assert(strstr(why, cases[i].word), "case %zu: '%s' lacks '%s'", i, why, cases[i].word);
        cr_assert_eq(h.nr_ports, 77, "a refused header writes nothing");
    }
}

Test(mtty_stream, ports_of_type)
{
    cr_assert_eq(mtty_ports_of_type("mtty-1"), 1);
    cr_assert_eq(mtty_ports_of_type("mtty-2"), 2);
    cr_assert_eq(mtty_ports_of_type("mtty-3"), -EINVAL);
    cr_assert_eq(mtty_ports_of_type(""), -EINVAL);
    cr_assert_eq(mtty_ports_of_type(NULL), -EINVAL);
}

/* A whole 96-byte stream, one byte at a time: accepted, total known after 24 bytes. */
Test(mtty_stream, byte_by_byte)
{
    uint8_t s[96] = {0};
    struct mtty_stream st;
    char why[256] = "";

    stream_of(&st, s, 2, 2);
    for (size_t i = 0; i < sizeof(s); i++) {
        cr_assert_eq(mtty_stream_feed(&st, s + i, 1, why, sizeof(why)), 0, "byte %zu: %s", i, why);
        cr_assert_eq(st.total, i >= 23 ? 96u : 0u, "byte %zu", i);
    }
    cr_assert_eq(st.pos, 96);
    cr_assert_eq(mtty_stream_feed(&st, s, 1, why, sizeof(why)), -EMSGSIZE);
    cr_assert(strstr(why, "96 bytes"), "%s", why);
}

/* The destination's port count is checked when the header completes, before any port byte. */
Test(mtty_stream, destination_port_count)
{
    uint8_t s[60] = {0};
    struct mtty_stream st;
    char why[256] = "";

    stream_of(&st, s, 1, 2);
    cr_assert_eq(mtty_stream_feed(&st, s, 23, why, sizeof(why)), 0);
    cr_assert_eq(mtty_stream_feed(&st, s + 23, 37, why, sizeof(why)), -EMEDIUMTYPE);
    cr_assert(strstr(why, "ports: the stream has 1, the destination device 2"), "%s", why);
    cr_assert_eq(mtty_stream_feed(&st, s, 1, why, sizeof(why)), -EBADMSG, "refusal is final");

    /* A source (want 0) parses without comparing. */
    mtty_stream_init(&st, 0);
    cr_assert_eq(mtty_stream_feed(&st, s, sizeof(s), why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(st.total, 60);
}
