/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mlx5_stream — arbitrary bytes through the mlx5 plugin's record-stream parser
 * (plugins/mlx5/mlx5_stream.c). The first byte chooses the piece size (1 + byte % 64); the
 * rest is the stream, fed in those pieces. Properties, besides no crash and no out-of-bounds
 * access:
 *   - a refusal says why in a message, and every later feed is refused too;
 *   - the parser counts every byte it accepted, never more;
 *   - a record in progress never has more left than a LOAD takes (2^32 - 1 bytes);
 *   - a complete stream ends on a record boundary with at least one FW_DATA record;
 *   - feeding the same bytes in one piece gives the same verdict and the same counts.
 */
#include <errno.h>

#include "fuzz.h"
#include "mlx5_stream.h"

FUZZ_FEED_FN(feed, mlx5_stream_feed)

static void
after(void *parser, size_t accepted)
{
    const struct mlx5_stream *st = parser;

    fuzz_check(st->pos == accepted, "every accepted byte is counted once");
    fuzz_check(st->record_left <= MLX5_MAX_RECORD_SIZE, "a record fits one LOAD");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mlx5_stream a, b;
    size_t piece;
    int ra, rb;

    if (size < 1) {
        return 0;
    }
    piece = 1 + (size_t) data[0] % 64;
    mlx5_stream_init(&a);
    mlx5_stream_init(&b);
    ra = fuzz_feed_pieces(&a, feed, after, data + 1, size - 1, piece);
    rb = fuzz_feed_pieces(&b, feed, after, data + 1, size - 1, size);
    fuzz_check(ra == rb, "the verdict does not depend on how the bytes are cut");
    if (ra == 0) {
        fuzz_check(a.records == b.records && a.fw_bytes == b.fw_bytes &&
                   a.stop_copy_size == b.stop_copy_size, "the same counts in any pieces");
        fuzz_check(!mlx5_stream_complete(&a) || (a.fw_records > 0 && !a.in_record),
                   "complete means whole records with an image");
    }
    fuzz_outcome = ra == 0 ? "accepted" : "refused";
    return 0;
}

/* A source's stream (STOP_COPY_SIZE, FW_DATA), one with an optional record to skip, and one
 * with an unknown mandatory tag. */
int
fuzz_write_seeds(const char *dir)
{
    struct mlx5_record_header scs = {8, MLX5_FLAG_TAG_OPTIONAL, MLX5_TAG_STOP_COPY_SIZE};
    struct mlx5_record_header fw = {8, 0, MLX5_TAG_FW_DATA};
    struct mlx5_record_header opt = {3, MLX5_FLAG_TAG_OPTIONAL, 0x42};
    uint8_t s[1 + 16 + 8 + 16 + 8 + 16 + 3] = {7};

    mlx5_header_write(&scs, s + 1);
    s[17 + 2] = 0x10; /* stop_copy_size 1 MiB */
    mlx5_header_write(&fw, s + 25);
    memcpy(s + 41, "fw-image", 8);
    if (fuzz_write_file(dir, "source", s, 49)) {
        return 1;
    }
    mlx5_header_write(&opt, s + 49);
    memcpy(s + 65, "xyz", 3);
    if (fuzz_write_file(dir, "optional-tag", s, sizeof(s))) {
        return 1;
    }
    opt.flags = 0;
    mlx5_header_write(&opt, s + 49);
    return fuzz_write_file(dir, "mandatory-unknown", s, sizeof(s));
}
