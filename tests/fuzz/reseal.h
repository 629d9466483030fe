/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * reseal — for the targets that read stream records (fuzz_stream, fuzz_savefile,
 * fuzz_channel): random bytes almost never carry valid CRCs, so the fuzzer would spend its
 * time on the first check; resealing every record header from @off on, as an honest writer
 * would have (the payload CRC over whatever payload bytes are there), lets it reach the
 * order, manifest and totals rules.
 */

#include "core/stream.h"
#include "util/le.h"

static inline void
fuzz_reseal(uint8_t *p, size_t size, size_t off)
{
    while (size >= off && size - off >= STREAM_RECORD_HEADER_SIZE) {
        uint8_t *h = p + off;
        size_t avail = size - off - STREAM_RECORD_HEADER_SIZE;
        size_t length = get_le32(h + 12);

        length = length > avail ? avail : length;
        put_le32(h + 24, crc32c(0, h + STREAM_RECORD_HEADER_SIZE, length));
        put_le32(h + 28, crc32c(0, h, 28));
        off += STREAM_RECORD_HEADER_SIZE + length;
    }
}
