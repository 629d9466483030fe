/* SPDX-License-Identifier: MIT */
/*
 * fuzz_preauth — arbitrary bytes as the first a stranger sends to a destination's data port,
 * before anyone has shown the token (daemon/migration_accept.c): the 8-byte header checked by
 * handshake_check_first_header() as each connection's is, then, once the declared payload is
 * all there, the payload through the parser its type has (handshake.c): HELLO and a dry run's
 * CHECK (token first, then stream header and manifest) or DATA_HELLO. Bytes after the declared
 * payload are never looked at, as the daemon reads no further. The token is FUZZ_TOKEN (the
 * seeds in tests/fuzz/corpus/fuzz_preauth/ carry it).
 * Properties, besides no crash and no out-of-bounds access:
 *   - a header is taken only as a HELLO or CHECK of at most TRANSPORT_MAX_MESSAGE bytes or a
 *     DATA_HELLO of exactly its size, so a stranger never makes the daemon expect more;
 *   - a refused header leaves the size untouched and says why in one printable sentence;
 *   - a HELLO or CHECK passes the token check (anything but -EPERM) only when its first 64
 *     bytes are the token: nobody else can change the migration;
 *   - a refused HELLO changes nothing the caller keeps (stream id) and says why;
 *   - an accepted DATA_HELLO re-encodes to its bytes.
 */
#include <errno.h>

#include "fuzz.h"
#include "fuzz_handshake.h"
#include "handshake.h"
#include "util/le.h"

#define FUZZ_TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static StreamManifestDevice devices[STREAM_MAX_DEVICES];

static void
check_hello(const uint8_t *p, uint32_t size)
{
    StreamManifest m = {.devices = devices};
    uint64_t id = 0x5a5a5a5a;
    char why[256] = "";
    int r = handshake_parse_hello(p, size, FUZZ_TOKEN, &m, &id, why, sizeof(why));

    fuzz_check(r == -EPERM ||
                   (size >= TRANSPORT_TOKEN_HEX && memcmp(p, FUZZ_TOKEN, TRANSPORT_TOKEN_HEX) == 0),
               "only the token passes the token check");
    if (r < 0) {
        fuzz_check(id == 0x5a5a5a5a, "a refused HELLO changes nothing");
        fuzz_check_message(why, sizeof(why));
        fuzz_outcome = r == -EPERM ? "HELLO without the token" : "HELLO refused";
        return;
    }
    fuzz_outcome = "HELLO accepted";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t want = 0xdeadbeef, type;
    uint8_t *payload;
    char why[512] = "";

    if (size < HANDSHAKE_HEADER_SIZE) {
        fuzz_outcome = "header incomplete: the daemon waits, until the deadline";
        return 0;
    }
    type = get_le32(data);
    if (handshake_check_first_header(data, &want, why, sizeof(why)) < 0) {
        fuzz_check(want == 0xdeadbeef, "a refused header sets no size");
        fuzz_check_message(why, sizeof(why));
        fuzz_outcome = "header refused";
        return 0;
    }
    fuzz_check(type == TMSG_HELLO || type == TMSG_CHECK || type == TMSG_DATA_HELLO,
               "only a HELLO, a CHECK or a DATA_HELLO comes first");
    fuzz_check(want == get_le32(data + 4) && want <= TRANSPORT_MAX_MESSAGE,
               "the size taken is the declared one, within the limit");
    fuzz_check(type != TMSG_DATA_HELLO || want == HANDSHAKE_DATA_HELLO_SIZE ||
                   want == HANDSHAKE_DATA_HELLO_SPREAD_SIZE,
               "a DATA_HELLO has exactly one of its two sizes");
    if (size - HANDSHAKE_HEADER_SIZE < want) {
        fuzz_outcome = "payload incomplete: the daemon waits, until the deadline";
        return 0;
    }
    /* Exactly the declared bytes, on the heap: a read past them is an ASan error. */
    payload = malloc(want ? want : 1);
    fuzz_check(payload != NULL, "memory");
    memcpy(payload, data + HANDSHAKE_HEADER_SIZE, want);
    if (type == TMSG_DATA_HELLO) {
        fuzz_check_data_hello(payload, want);
    } else {
        check_hello(payload, want);
    }
    free(payload);
    return 0;
}
