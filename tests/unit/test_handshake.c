/* SPDX-License-Identifier: MIT */
/*
 * test_handshake — handshake_parse_hello() checks the token first and alone: whatever else
 * is wrong with a HELLO, a missing or wrong token is -EPERM (a stranger: the destination
 * changes nothing), and only a HELLO with the right token can give another error (then the
 * token is used up). Issue 11 item 3: an 8-byte HELLO without a token killed a migration.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "handshake.h"

TestSuite(handshake, .timeout = 10);

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int
parse(const uint8_t *msg, size_t size, char *why, size_t why_size)
{
    static StreamManifestDevice devs[STREAM_MAX_DEVICES];
    StreamManifest src = {.devices = devs};
    uint64_t id = 0;

    return handshake_parse_hello(msg, size, TOKEN, &src, &id, why, why_size);
}

Test(handshake, no_or_a_wrong_token_is_eperm_whatever_follows)
{
    uint8_t msg[512];
    char why[256];

    memset(msg, 0, sizeof(msg));
    cr_expect_eq(parse(msg, 0, why, sizeof(why)), -EPERM, "an empty HELLO");
    cr_expect(strstr(why, "too short to hold a token"), "%s", why);
    memcpy(msg, TOKEN, 40);
    cr_expect_eq(parse(msg, 40, why, sizeof(why)), -EPERM, "a HELLO cut inside its token");
    memcpy(msg, TOKEN, 64);
    msg[63] = 'x';
    cr_expect_eq(parse(msg, 64, why, sizeof(why)), -EPERM, "a wrong token and nothing more");
    cr_expect(strstr(why, "wrong token"), "%s", why);
    cr_expect_eq(parse(msg, sizeof(msg), why, sizeof(why)), -EPERM,
                 "a wrong token and garbage after it");
}

Test(handshake, the_right_token_then_garbage_is_another_error)
{
    uint8_t msg[512];
    char why[256];
    int r;

    memset(msg, 0xff, sizeof(msg));
    memcpy(msg, TOKEN, 64);
    cr_expect_eq(parse(msg, 64, why, sizeof(why)), -EBADMSG, "the token alone");
    cr_expect(strstr(why, "too short"), "%s", why);
    r = parse(msg, sizeof(msg), why, sizeof(why));
    cr_expect(r < 0 && r != -EPERM, "the token and garbage: %d (%s)", r, why);
}

/* DATA_HELLO: protocol 2's form is channel 0 of 1; protocol 3's names the channel and the
 * count, each bounded; a refused one leaves the caller's struct as it was. */
Test(handshake, data_hello_forms_and_bounds)
{
    static const char key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    HandshakeDataHello in = {.stream_id = 42, .index = 3, .channel = 2, .n_channels = 3}, out;
    uint8_t msg[HANDSHAKE_DATA_HELLO_SPREAD_SIZE];
    size_t n;

    memcpy(in.key, key, sizeof(in.key));
    n = handshake_encode_data_hello(&in, 2, msg);
    cr_assert_eq(n, HANDSHAKE_DATA_HELLO_SIZE, "to a protocol-2 peer: the short form");
    cr_assert_eq(handshake_parse_data_hello(msg, n, &out), 0);
    cr_expect_eq(out.channel, 0);
    cr_expect_eq(out.n_channels, 1, "the short form is channel 0 of 1");
    cr_expect_eq(out.index, 3);
    cr_expect_eq(out.stream_id, 42);
    cr_expect_str_eq(out.key, key);

    n = handshake_encode_data_hello(&in, 3, msg);
    cr_assert_eq(n, HANDSHAKE_DATA_HELLO_SPREAD_SIZE);
    cr_assert_eq(handshake_parse_data_hello(msg, n, &out), 0);
    cr_expect_eq(out.channel, 2);
    cr_expect_eq(out.n_channels, 3);

    for (uint32_t count = 0; count <= SPREAD_MAX_CHANNELS + 1; count++) {
        for (uint32_t ch = 0; ch <= count; ch++) {
            HandshakeDataHello bad = in, kept = {.index = 77};
            bool good = count >= 1 && count <= SPREAD_MAX_CHANNELS && ch < count;

            bad.channel = ch;
            bad.n_channels = count;
            n = handshake_encode_data_hello(&bad, 3, msg);
            cr_expect_eq(handshake_parse_data_hello(msg, n, &kept), good ? 0 : -EBADMSG,
                         "channel %u of %u", ch, count);
            if (!good) {
                cr_expect_eq(kept.index, 77, "a refused DATA_HELLO writes nothing");
            }
        }
    }
    cr_expect_eq(handshake_parse_data_hello(msg, HANDSHAKE_DATA_HELLO_SIZE + 1, &out), -EBADMSG);
}
