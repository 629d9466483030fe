/* SPDX-License-Identifier: MIT */
/*
 * test_handshake — handshake_parse_hello() checks the token first and alone: whatever else
 * is wrong with a HELLO, a missing or wrong token is -EPERM (a stranger: the destination
 * changes nothing), and only a HELLO with the right token can give another error (then the
 * token is used up). Issue 11 item 3: an 8-byte HELLO without a token killed a migration.
 */
#include <criterion/criterion.h>
#include <errno.h>
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
