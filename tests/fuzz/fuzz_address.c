/* SPDX-License-Identifier: MIT */
/*
 * fuzz_address — arbitrary bytes as the addresses the daemon and the CLI parse:
 *   - a migration address, as PrepareIncoming's listen address and StartMigration's
 *     destination reach transport_parse_address() (daemon/transport.c): "host:port",
 *     "[v6]:port", "unix:/path";
 *   - the CLI's --socket path as the gRPC target it becomes, rpc_client_target().
 * Properties, besides no crash and no out-of-bounds access:
 *   - a refused address changes nothing (the result is untouched) and is refused with one
 *     printable sentence;
 *   - an accepted TCP port is the number written (not a wrapped one);
 *   - an accepted address formats (transport_format_address(), what PrepareIncoming prints)
 *     to a string that parses back to the same socket address;
 *   - the gRPC target holds only URI-safe bytes and percent-decodes back to the path.
 * The input is used up to its first NUL, as a C string from gRPC or argv would be.
 */
#include <netinet/in.h>
#include <sys/un.h>

#include "client.h"
#include "fuzz.h"
#include "transport.h"

static int
hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void
check_target(const char *path)
{
    char *t = rpc_client_target(path), *out, *o;

    fuzz_check(t != NULL && strncmp(t, "unix:", 5) == 0, "a target is unix:");
    o = out = malloc(strlen(t) + 1);
    fuzz_check(out != NULL, "malloc");
    for (const char *p = t + 5; *p; p++) {
        if (*p == '%') {
            int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);

            fuzz_check(hi >= 0 && lo >= 0, "a '%' in a target is followed by two hex digits");
            *o++ = (char) (hi << 4 | lo);
            p += 2;
        } else {
            fuzz_check(isalnum((unsigned char) *p) || strchr("/-._~", *p),
                       "a target holds only unreserved bytes");
            *o++ = *p;
        }
    }
    *o = '\0';
    fuzz_check(strcmp(out, path) == 0, "a target decodes back to its path");
    free(out);
    free(t);
}

/* The parts of a socket address that say where it goes. */
static bool
same_address(const TransportAddress *a, const TransportAddress *b)
{
    const struct sockaddr_in *a4 = (const void *) &a->sa, *b4 = (const void *) &b->sa;
    const struct sockaddr_in6 *a6 = (const void *) &a->sa, *b6 = (const void *) &b->sa;
    const struct sockaddr_un *au = (const void *) &a->sa, *bu = (const void *) &b->sa;

    if (a->sa.ss_family != b->sa.ss_family || a->len != b->len) {
        return false;
    }
    switch (a->sa.ss_family) {
    case AF_INET:
        return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
    case AF_INET6:
        return a6->sin6_port == b6->sin6_port && a6->sin6_scope_id == b6->sin6_scope_id &&
               memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
    case AF_UNIX:
        return strcmp(au->sun_path, bu->sun_path) == 0;
    default:
        return false;
    }
}

static void
check_address(const char *s)
{
    TransportAddress a, before, back;
    char err[512] = "", text[TRANSPORT_ADDRESS_MAX];

    memset(&a, 0xa5, sizeof(a));
    before = a;
    if (transport_parse_address(s, 0, &a, err, sizeof(err)) < 0) {
        fuzz_check(memcmp(&a, &before, sizeof(a)) == 0, "a refused address changes nothing");
        fuzz_check_message(err, sizeof(err));
        fuzz_outcome = "address refused";
        return;
    }
    fuzz_check(a.sa.ss_family == AF_INET || a.sa.ss_family == AF_INET6 ||
               a.sa.ss_family == AF_UNIX, "an address is TCP/IPv4, TCP/IPv6 or unix");
    fuzz_check(transport_format_address(&a, text, sizeof(text)) == 0,
               "an address formats within TRANSPORT_ADDRESS_MAX");
    fuzz_check(transport_parse_address(text, 0, &back, err, sizeof(err)) == 0,
               "a formatted address parses");
    fuzz_check(same_address(&a, &back), "a formatted address parses to the same address");
    if (a.sa.ss_family != AF_UNIX) {
        const char *port = strrchr(s, ':') + 1;
        unsigned long want = strtoul(port, NULL, 10);

        fuzz_check(strspn(port, "0123456789") == strlen(port) &&
                   want == ntohs(((const struct sockaddr_in *) &a.sa)->sin_port),
                   "an accepted port is digits, and the port bound is the port given");
    }
    fuzz_outcome = "address accepted";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[512];

    fuzz_string(data, size, s, sizeof(s));
    check_address(s);
    check_target(s);
    return 0;
}
