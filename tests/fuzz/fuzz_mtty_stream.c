/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mtty_stream — arbitrary bytes through the mtty plugin's stream parser
 * (plugins/mtty/mtty_stream.c). The first byte chooses the destination's port count
 * (byte % 3: 0 means a source) and the piece size (1 + byte / 3 % 64); the rest is the stream, fed in those pieces.
 * Properties, besides no crash and no out-of-bounds access:
 *   - a refusal says why in a message, and every later feed is refused too;
 *   - the parser never counts more bytes than the stream's size once the header is known;
 *   - an accepted header (pos >= 24) has 1 or 2 ports, the destination's when it has one,
 *     and the total is 24 + 36 x ports;
 *   - feeding the same bytes in one piece gives the same verdict as in many.
 */
#include <errno.h>

#include "fuzz.h"
#include "mtty_stream.h"

FUZZ_FEED_FN(feed, mtty_stream_feed)

static void
after(void *parser, size_t accepted)
{
    const struct mtty_stream *st = parser;

    (void) accepted;
    if (st->total) {
        fuzz_check(st->pos <= st->total, "never past the stream's size");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mtty_stream a, b;
    uint32_t want;
    size_t piece;
    int ra, rb;

    if (size < 1) {
        return 0;
    }
    want = data[0] % 3;
    piece = 1 + (size_t) (data[0] / 3) % 64;
    mtty_stream_init(&a, want);
    mtty_stream_init(&b, want);
    ra = fuzz_feed_pieces(&a, feed, after, data + 1, size - 1, piece);
    rb = fuzz_feed_pieces(&b, feed, after, data + 1, size - 1, size);
    fuzz_check(ra == rb, "the verdict does not depend on how the bytes are cut");
    if (ra == 0 && a.pos >= MTTY_HEADER_SIZE) {
        fuzz_check(a.nr_ports == 1 || a.nr_ports == 2, "an accepted stream has 1 or 2 ports");
        fuzz_check(!want || a.nr_ports == want, "the destination's port count is enforced");
        fuzz_check(a.total == MTTY_HEADER_SIZE + MTTY_PORT_SIZE * (uint64_t) a.nr_ports,
                   "the total is 24 + 36 x ports");
    }
    fuzz_outcome = ra == 0 ? "accepted" : "refused";
    return 0;
}

/* A valid two-port stream for a two-port destination, and a one-port header for it. */
int
fuzz_write_seeds(const char *dir)
{
    uint8_t s[1 + 96] = {0};
    uint64_t magic = MTTY_MAGIC;
    uint32_t one = 1, two = 2;

    s[0] = 2 + 3 * 7; /* want 2 ports, pieces of 8 */
    memcpy(s + 1, &magic, 8);
    memcpy(s + 9, &one, 4);
    memcpy(s + 17, &two, 4);
    if (fuzz_write_file(dir, "two-ports", s, sizeof(s))) {
        return 1;
    }
    memcpy(s + 17, &one, 4);
    return fuzz_write_file(dir, "one-port-into-two", s, 1 + 60);
}
