/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * fuzz_handshake — property checks of handshake.c's decoders that more than one fuzz target
 * makes (fuzz_control: any frame of a conversation; fuzz_preauth: a stranger's first message).
 */

#include "fuzz.h"
#include "handshake.h"

/* DATA_HELLO: a refusal changes nothing, an acceptance re-encodes to the same bytes. Sets
 * fuzz_outcome. */
static inline void
fuzz_check_data_hello(const uint8_t *p, uint32_t size)
{
    uint8_t out[HANDSHAKE_DATA_HELLO_SPREAD_SIZE];
    HandshakeDataHello h = {.key = "untouched", .stream_id = 7, .index = 9};
    size_t n;

    if (handshake_parse_data_hello(p, size, &h) < 0) {
        fuzz_check(strcmp(h.key, "untouched") == 0 && h.stream_id == 7 && h.index == 9,
                   "a refused DATA_HELLO changes nothing");
        fuzz_outcome = "DATA_HELLO refused";
        return;
    }
    fuzz_check(h.channel < h.n_channels && h.n_channels <= SPREAD_MAX_CHANNELS,
               "an accepted DATA_HELLO names a channel within its count");
    n = handshake_encode_data_hello(&h, size == HANDSHAKE_DATA_HELLO_SIZE ? 2 : 3, out);
    fuzz_check(n == size && memcmp(out, p, n) == 0, "DATA_HELLO re-encodes to the same bytes");
    fuzz_outcome = "DATA_HELLO accepted";
}
