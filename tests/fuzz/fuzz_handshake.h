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
    uint8_t out[HANDSHAKE_DATA_HELLO_SIZE];
    char key[TRANSPORT_TOKEN_HEX + 1] = "untouched";
    uint64_t id = 7;
    uint32_t index = 9;

    if (handshake_parse_data_hello(p, size, key, &id, &index) < 0) {
        fuzz_check(strcmp(key, "untouched") == 0 && id == 7 && index == 9,
                   "a refused DATA_HELLO changes nothing");
        fuzz_outcome = "DATA_HELLO refused";
        return;
    }
    handshake_encode_data_hello(key, id, index, out);
    fuzz_check(memcmp(out, p, sizeof(out)) == 0, "DATA_HELLO re-encodes to the same bytes");
    fuzz_outcome = "DATA_HELLO accepted";
}
