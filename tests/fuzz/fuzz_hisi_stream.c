/* SPDX-License-Identifier: MIT */
/*
 * fuzz_hisi_stream — arbitrary bytes through the hisi plugin's stream parser
 * (plugins/hisi/hisi_stream.c). The first byte chooses what the destination knows (bit 0:
 * dev_id a251, bit 1: qp_num 64 and isolation 0; neither: a source, which only parses) and
 * the piece size (1 + byte / 4 % 64); the rest is the stream, fed in those pieces.
 * Properties, besides no crash and no out-of-bounds access:
 *   - a refusal says why in a message, and every later feed is refused too;
 *   - the parser never counts more than 176 bytes;
 *   - an accepted stream of 40 bytes or more has a magic the driver takes (V2 with major 1,
 *     or V1) and the destination's known fields;
 *   - feeding the same bytes in one piece gives the same verdict as in many.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "hisi_stream.h"

FUZZ_FEED_FN(feed, hisi_parser_feed)

static void
after(void *parser, size_t accepted)
{
    const struct hisi_parser *hp = parser;

    (void) accepted;
    fuzz_check(hp->pos <= HISI_STATE_SIZE, "never past 176 bytes");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hisi_expect e = {0xa251, 64, 0, 0, 0, 0};
    struct hisi_parser a, b;
    struct hisi_match m;
    size_t piece;
    int ra, rb;

    if (size < 1) {
        return 0;
    }
    e.dev_id_known = data[0] & 1;
    e.qp_num_known = e.iso_known = (data[0] >> 1) & 1;
    piece = 1 + (size_t) (data[0] / 4) % 64;
    hisi_parser_init(&a, &e);
    hisi_parser_init(&b, &e);
    ra = fuzz_feed_pieces(&a, feed, after, data + 1, size - 1, piece);
    rb = fuzz_feed_pieces(&b, feed, after, data + 1, size - 1, size);
    fuzz_check(ra == rb, "the verdict does not depend on how the bytes are cut");
    if (ra == 0 && a.pos >= HISI_MATCH_SIZE) {
        hisi_match_decode(a.match, &m);
        fuzz_check(m.magic == HISI_MAGIC_V1 || (m.magic == HISI_MAGIC_V2 && m.major_ver == 1),
                   "an accepted stream has a magic the driver takes");
        fuzz_check(!e.dev_id_known || m.dev_id == e.dev_id, "the destination's dev_id holds");
        fuzz_check(!e.qp_num_known || (m.qp_num == e.qp_num && m.que_iso_cfg == 0),
                   "the destination's queues and isolation hold");
    }
    fuzz_outcome = ra == 0 ? "accepted" : "refused";
    return 0;
}

/* A whole V2 stream for a destination that knows everything, and the same with 32 queues. */
int
fuzz_write_seeds(const char *dir)
{
    uint8_t s[1 + HISI_STATE_SIZE] = {0};
    struct hisi_match m = {.magic = HISI_MAGIC_V2, .qp_num = 64, .dev_id = 0xa251,
                           .major_ver = 1};

    s[0] = 3 + 4 * 7; /* everything known, pieces of 8 */
    hisi_match_encode(&m, s + 1);
    if (fuzz_write_file(dir, "v2-whole", s, sizeof(s))) {
        return 1;
    }
    m.qp_num = 32;
    hisi_match_encode(&m, s + 1);
    return fuzz_write_file(dir, "qp-num-mismatch", s, 1 + HISI_MATCH_SIZE);
}
