/* SPDX-License-Identifier: MIT */
/*
 * The hisi plugin's stream code (plugins/hisi/hisi_stream.c) against the byte layout of
 * kernel-uapi.md §9.3-9.4: struct acc_vf_data, 176 native-endian bytes, its first 40 the match
 * data (acc_magic @0, qp_num @8, dev_id @12, que_iso_cfg @16, qp_base @20, vf_qm_state @24,
 * major_ver @28, minor_ver @30, qm_rsv_state @32); the driver's match order (magic and
 * version, dev_id, qp_num, que_iso_cfg); nothing past 176 bytes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "hisi_stream.h"

/* Match data written field by field as the driver's struct lays it out. */
static void
raw_match(uint8_t *b, uint64_t magic, uint32_t qp_num, uint32_t dev_id, uint32_t iso,
          uint16_t major)
{
    uint32_t qp_base = 7, state = 0;
    uint16_t minor = 0;

    memset(b, 0, HISI_STATE_SIZE);
    memcpy(b + 0, &magic, 8);
    memcpy(b + 8, &qp_num, 4);
    memcpy(b + 12, &dev_id, 4);
    memcpy(b + 16, &iso, 4);
    memcpy(b + 20, &qp_base, 4);
    memcpy(b + 24, &state, 4);
    memcpy(b + 28, &major, 2);
    memcpy(b + 30, &minor, 2);
}

static const struct hisi_expect zip64 = {0xa251, 64, 0, 1, 1, 1};

/* A V2 stream's match block for a zip VF (dev_id 0xa251) and the zip64 destination's parser
 * fed from it. */
typedef struct Feed {
    uint8_t b[HISI_STATE_SIZE];
    struct hisi_parser p;
    char why[256];
} Feed;

/* The match block with @qp_num queues and @iso, and a fresh parser. */
static void
feed_init(Feed *f, uint32_t qp_num, uint32_t iso)
{
    raw_match(f->b, HISI_MAGIC_V2, qp_num, 0xa251, iso, 1);
    hisi_parser_init(&f->p, &zip64);
    f->why[0] = '\0';
}

/* Feeds @n bytes of the block from @off: the parser's answer. */
static int
feed(Feed *f, size_t off, size_t n)
{
    return hisi_parser_feed(&f->p, f->b + off, n, f->why, sizeof(f->why));
}

Test(hisi_stream, layout_of_the_reference)
{
    uint8_t b[HISI_STATE_SIZE], again[HISI_MATCH_SIZE];
    struct hisi_match m;

    cr_assert_eq(HISI_MATCH_SIZE, 40);
    cr_assert_eq(HISI_STATE_SIZE, 176);
    raw_match(b, UINT64_C(0xAACCFEEDDECADEDE), 64, 0xa251, 1, 1);
    hisi_match_decode(b, &m);
    cr_assert_eq(m.magic, HISI_MAGIC_V2);
    cr_assert_eq(m.qp_num, 64);
    cr_assert_eq(m.dev_id, 0xa251);
    cr_assert_eq(m.que_iso_cfg, 1);
    cr_assert_eq(m.qp_base, 7);
    cr_assert_eq(m.major_ver, 1);
    /* little-endian host: the V2 magic's first byte is 0xde */
    cr_assert_eq(b[0], 0xde);
    hisi_match_encode(&m, again);
    cr_assert_eq(memcmp(again, b, HISI_MATCH_SIZE), 0, "encode is decode's inverse");
}

Test(hisi_stream, the_drivers_match_in_its_order)
{
    static const struct {
        uint64_t magic;
        uint32_t qp_num, dev_id, iso;
        uint16_t major;
        int err;
        const char *word;
    } cases[] = {
        {UINT64_C(0xAACCFEEDDECADEDE), 64, 0xa251, 0, 1, 0, NULL},
        {UINT64_C(0xCDCDCDCDFEEDAACC), 64, 0xa251, 0, 9, 0, NULL}, /* V1: no version check */
        {UINT64_C(0xAACCFEEDDECADEDE), 64, 0xa251, 0, 2, -EBADMSG, "major_ver"},
        {UINT64_C(0x1111111111111111), 64, 0xa251, 0, 1, -EBADMSG, "acc_magic"},
        {UINT64_C(0xAACCFEEDDECADEDE), 64, 0xa256, 1, 1, -EMEDIUMTYPE, "dev_id"},
        {UINT64_C(0xAACCFEEDDECADEDE), 32, 0xa251, 1, 1, -EMEDIUMTYPE, "qp_num"},
        {UINT64_C(0xAACCFEEDDECADEDE), 64, 0xa251, 1, 1, -EMEDIUMTYPE, "que_iso_cfg"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[HISI_STATE_SIZE];
        struct hisi_match m;
        char why[256] = "";
        int r;

        raw_match(b, cases[i].magic, cases[i].qp_num, cases[i].dev_id, cases[i].iso,
                  cases[i].major);
        hisi_match_decode(b, &m);
        r = hisi_match_check(&m, &zip64, why, sizeof(why));
        cr_expect_eq(r, cases[i].err, "case %zu: %d (%s)", i, r, why);
        if (cases[i].word) {
            cr_expect(strncmp(why, cases[i].word, strlen(cases[i].word)) == 0,
                      "case %zu names %s first: %s", i, cases[i].word, why);
        }
    }
}

/* A field the destination does not know (a real VF's queue count) is not compared. */
Test(hisi_stream, unknown_fields_are_not_compared)
{
    struct hisi_expect only_id = {0xa251, 1, 1, 1, 0, 0};
    uint8_t b[HISI_STATE_SIZE];
    struct hisi_match m;
    char why[256];

    raw_match(b, HISI_MAGIC_V2, 64, 0xa251, 1, 1);
    hisi_match_decode(b, &m);
    cr_expect_eq(hisi_match_check(&m, &only_id, why, sizeof(why)), 0);
    only_id.dev_id = 0xa259;
    cr_expect_eq(hisi_match_check(&m, &only_id, why, sizeof(why)), -EMEDIUMTYPE);
}

/* Fed one byte at a time and in one piece, the parser says the same. */
Test(hisi_stream, fed_in_any_pieces)
{
    Feed f;

    feed_init(&f, 64, 0);
    for (size_t i = 0; i < HISI_STATE_SIZE; i++) {
        cr_assert_eq(feed(&f, i, 1), 0, "byte %zu: %s", i, f.why);
        cr_expect_eq(hisi_parser_complete(&f.p), i + 1 == 40 || i + 1 == 176, "after %zu", i + 1);
    }
    cr_expect_eq(feed(&f, 0, 1), -EBADMSG, "past 176 bytes");
    cr_expect(strstr(f.why, "176"), "%s", f.why);
    hisi_parser_init(&f.p, &zip64);
    cr_expect_eq(feed(&f, 0, 177), -EBADMSG);
    cr_expect_eq(f.p.pos, 0, "a refused feed consumed nothing");
    hisi_parser_init(&f.p, &zip64);
    cr_expect_eq(feed(&f, 0, 176), 0);
    cr_expect(hisi_parser_complete(&f.p));
}

/* The mismatch is found with the 40th byte, not later; after it every feed is refused. */
Test(hisi_stream, the_mismatch_is_found_at_byte_40)
{
    Feed f;

    feed_init(&f, 32, 0);
    cr_assert_eq(feed(&f, 0, 39), 0);
    cr_assert_eq(feed(&f, 39, 1), -EMEDIUMTYPE);
    cr_expect(strstr(f.why, "qp_num: the stream has 32"), "%s", f.why);
    cr_expect(strstr(f.why, "destination device 64"), "%s", f.why);
    cr_expect_eq(feed(&f, 40, 1), -EBADMSG);
    cr_expect(!hisi_parser_complete(&f.p));
}
