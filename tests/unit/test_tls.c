/* SPDX-License-Identifier: MIT */
/*
 * test_tls — the TLS layer of the migration sockets (daemon/tls.c) on a real socketpair: a
 * client handshake on a thread, the server stepped without blocking as the destination's loop
 * does; the right secret connects and carries bytes both ways through transport.c, a wrong one
 * fails on both sides, a data channel cannot authenticate before its key exists, and the
 * HELLO's proof is not the token.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tls.h"
#include "transport.h"

TestSuite(tls, .timeout = 60);

static const char TOKEN[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char OTHER[] = "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

typedef struct Client {
    int fd;
    TlsPsk kind;
    const char *secret;
    int r;
    char err[512];
} Client;

static void *
client_run(void *p)
{
    Client *c = p;

    c->r = tls_client_handshake(c->fd, TLS_MODE_PSK, c->kind, c->secret, "test", c->err,
                                 sizeof(c->err));
    if (c->r < 0) {
        (void) shutdown(c->fd, SHUT_RDWR); /* the server's step then ends too */
    }
    return NULL;
}

typedef struct Writer {
    int fd;
    const uint8_t *data;
    size_t size;
    int r;
} Writer;

/* A record header and its payload, as the data path writes them. */
static void *
writer_run(void *p)
{
    Writer *w = p;

    w->r = transport_writev_full(w->fd, w->data, 24, w->data + 24, w->size - 24);
    return NULL;
}

/* Steps the server until it is done or fails; returns its result and leaves @ret_s set. */
static int
server_handshake(int fd, const TlsSecrets *sec, TlsSession **ret_s, char *why, size_t size)
{
    TlsSession *s = tls_server_new(fd, sec);
    int r;

    cr_assert_not_null(s);
    while ((r = tls_server_step(s, why, size)) == 0 || r == 2) {
        struct pollfd p = {.fd = fd, .events = r == 2 ? POLLOUT : POLLIN};
        cr_assert_geq(poll(&p, 1, 10000), 1, "the handshake waits for ever");
    }
    *ret_s = s;
    return r;
}

static void
pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0); /* the server's side, as accept4() */
    cr_assert_eq(transport_set_timeout(sv[0], 10000), 0);
}

/* A socket pair in @sv, @c's handshake from sv[0] on a thread and the server's on sv[1] with
 * @sec; returns the server's result once both sides are done (@c->r holds the client's). */
static int
handshake(int sv[2], const TlsSecrets *sec, Client *c, TlsSession **ret_s, char *why,
          size_t size)
{
    pthread_t t;
    int r;

    pair(sv);
    c->fd = sv[0];
    cr_assert_eq(pthread_create(&t, NULL, client_run, c), 0);
    r = server_handshake(sv[1], sec, ret_s, why, size);
    pthread_join(t, NULL);
    return r;
}

Test(tls, right_token_carries_bytes_both_ways)
{
    TlsSecrets sec = {.token = TOKEN, .key = ""};
    Client c = {.kind = TLS_PSK_CONTROL, .secret = TOKEN};
    size_t n = 3u << 20;
    uint8_t *out = malloc(n), *in = malloc(n), reply[64];
    TlsSession *s = NULL;
    pthread_t t;
    char why[512];
    int sv[2];

    cr_assert_eq(handshake(sv, &sec, &c, &s, why, sizeof(why)), 1, "%s", why);
    cr_assert_eq(c.r, 0, "%s", c.err);
    cr_assert_eq(tls_attach(sv[1], s), 0);
    cr_assert(tls_attached(sv[0]) && tls_attached(sv[1]));

    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t) (i * 7 + (i >> 13));
    }
    /* 3 MiB: more than the socket buffer, so the writer waits for the reader, on a thread. */
    cr_assert_eq(transport_send(sv[0], TMSG_PING, "ping", 4), 0);
    uint32_t type, size;
    cr_assert_eq(transport_recv(sv[1], &type, reply, sizeof(reply), &size), 0);
    cr_assert(type == TMSG_PING && size == 4 && memcmp(reply, "ping", 4) == 0);
    Writer w = {.fd = sv[1], .data = out, .size = n};
    cr_assert_eq(pthread_create(&t, NULL, writer_run, &w), 0);
    TransportLowat lw = TRANSPORT_LOWAT_INIT;
    cr_assert_eq(transport_read_bulk(sv[0], in, n, &lw), 0);
    pthread_join(t, NULL);
    cr_assert_eq(w.r, 0);
    cr_assert_eq(memcmp(in, out, n), 0, "the bytes arrive unchanged");
    tls_detach(sv[0]);
    tls_detach(sv[1]);
    cr_assert(!tls_attached(sv[0]));
    close(sv[0]);
    close(sv[1]);
    free(out);
    free(in);
}

/* Records are read 16 at a time into the session's read buffer: a second message that came in
 * the same recv() as the first waits there, where poll() on the socket cannot see it, and a
 * reader told "nothing to read" would wait for bytes that already came. */
Test(tls, a_message_held_in_the_read_buffer_is_readable)
{
    TlsSecrets sec = {.token = TOKEN, .key = ""};
    Client c = {.kind = TLS_PSK_CONTROL, .secret = TOKEN};
    TlsSession *s = NULL;
    uint8_t reply[64];
    uint32_t type, size;
    char why[512];
    int sv[2];

    cr_assert_eq(handshake(sv, &sec, &c, &s, why, sizeof(why)), 1, "%s", why);
    cr_assert_eq(c.r, 0, "%s", c.err);
    cr_assert_eq(tls_attach(sv[1], s), 0);
    cr_assert_eq(transport_send(sv[0], TMSG_PING, "one", 3), 0);
    cr_assert_eq(transport_send(sv[0], TMSG_PING, "two", 3), 0); /* both in the socket now */
    cr_assert_eq(transport_recv(sv[1], &type, reply, sizeof(reply), &size), 0);
    cr_assert(size == 3 && memcmp(reply, "one", 3) == 0);
    cr_assert_eq(transport_wait_readable(sv[1], 0), 1, "the second message is there to read");
    cr_assert_eq(transport_recv(sv[1], &type, reply, sizeof(reply), &size), 0);
    cr_assert(size == 3 && memcmp(reply, "two", 3) == 0);
    cr_assert_eq(transport_wait_readable(sv[1], 0), 0, "and nothing more");
    tls_detach(sv[0]);
    tls_detach(sv[1]);
    close(sv[0]);
    close(sv[1]);
}

Test(tls, wrong_token_fails_on_both_sides)
{
    TlsSecrets sec = {.token = TOKEN, .key = ""};
    Client c = {.kind = TLS_PSK_CONTROL, .secret = OTHER};
    TlsSession *s = NULL;
    char why[512];
    int sv[2];

    cr_assert_lt(handshake(sv, &sec, &c, &s, why, sizeof(why)), 0);
    cr_assert_lt(c.r, 0);
    cr_assert(strstr(c.err, "does not hold this token"), "%s", c.err);
    cr_assert(!tls_attached(sv[0]));
    tls_session_free(s);
    close(sv[0]);
    close(sv[1]);
}

Test(tls, data_channel_needs_the_key)
{
    TlsSecrets sec = {.token = TOKEN, .key = ""}; /* no ACCEPT yet: no data channel */
    Client c = {.kind = TLS_PSK_DATA, .secret = TOKEN};
    TlsSession *s = NULL;
    char why[512];
    int sv[2];

    cr_assert_lt(handshake(sv, &sec, &c, &s, why, sizeof(why)), 0,
                 "the token does not open a data channel");
    cr_assert_lt(c.r, 0);
    tls_session_free(s);
    close(sv[0]);
    close(sv[1]);
}

Test(tls, hello_proof_is_not_the_token)
{
    char a[TRANSPORT_TOKEN_HEX + 1], b[TRANSPORT_TOKEN_HEX + 1], a2[TRANSPORT_TOKEN_HEX + 1];

    tls_hello_proof(TOKEN, a);
    tls_hello_proof(OTHER, b);
    tls_hello_proof(TOKEN, a2);
    cr_assert_eq(strlen(a), TRANSPORT_TOKEN_HEX);
    cr_assert_str_eq(a, a2, "the same token, the same proof");
    cr_assert_str_neq(a, b);
    cr_assert(!strstr(a, TOKEN) && strcmp(a, TOKEN) != 0);
}

/* ---- certificates: what tls_load_certs() refuses before it parses a byte */

/* A file @name in the temporary directory @dir with @text and @mode. */
static void
put_file(const char *dir, const char *name, const char *text, mode_t mode, char *path,
         size_t size)
{
    FILE *f;

    (void) snprintf(path, size, "%s/%s", dir, name);
    f = fopen(path, "we");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

/* A fresh P-256 key in PEM at @path (mode 0600, as the daemon wants it). */
static void
write_ec_key(const char *path)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    FILE *f = fopen(path, "we");

    cr_assert(k && f);
    cr_assert_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    cr_assert_eq(fclose(f), 0);
    EVP_PKEY_free(k);
}

Test(tls, cert_mode_needs_loaded_certificates)
{
    char err[512] = "";

    cr_assert(tls_mode_usable(TLS_MODE_PSK, err, sizeof(err)));
    cr_assert(tls_mode_usable(TLS_MODE_OFF, err, sizeof(err)));
    cr_assert(!tls_have_certs());
    cr_assert(!tls_mode_usable(TLS_MODE_CERT, err, sizeof(err)));
    cr_assert(strstr(err, "tls_cert, tls_key and tls_ca"), "%s", err);
    cr_assert_str_eq(tls_mode_name(TLS_MODE_CERT), "cert");
}

Test(tls, certificate_files_are_checked_on_their_one_fd)
{
    char dir[] = "/tmp/test_tls.XXXXXX", pem[256], key[256], open_key[256], link_key[256];
    char empty[256], err[512];
    int r;

    cr_assert_not_null(mkdtemp(dir));
    put_file(dir, "c.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
             0644, pem, sizeof(pem));
    put_file(dir, "k.pem", "no key here\n", 0600, key, sizeof(key));
    put_file(dir, "open.pem", "no key here\n", 0644, open_key, sizeof(open_key));
    put_file(dir, "empty.pem", "", 0644, empty, sizeof(empty));
    (void) snprintf(link_key, sizeof(link_key), "%s/link.pem", dir);
    cr_assert_eq(symlink(key, link_key), 0);

    /* The key file: missing, a symlink, open to others, then not a key. */
    r = tls_load_certs(pem, "/nonexistent/k.pem", pem, err, sizeof(err));
    cr_assert_eq(r, -ENOENT);
    cr_assert(strstr(err, "cannot open the key file '/nonexistent/k.pem'"), "%s", err);
    r = tls_load_certs(pem, link_key, pem, err, sizeof(err));
    cr_assert_eq(r, -ELOOP, "a symlink is not followed: %d %s", r, err);
    r = tls_load_certs(pem, open_key, pem, err, sizeof(err));
    cr_assert_eq(r, -EPERM);
    cr_assert(strstr(err, "(mode 0644)") && strstr(err, "'chmod 600 "), "%s", err);
    r = tls_load_certs(pem, key, pem, err, sizeof(err));
    cr_assert_eq(r, -EINVAL);
    cr_assert(strstr(err, "holds no unencrypted PEM private key"), "%s", err);
    /* With a real key, the certificate file: missing, a directory, empty, garbage. */
    write_ec_key(key);
    r = tls_load_certs("/nonexistent/c.pem", key, pem, err, sizeof(err));
    cr_assert_eq(r, -ENOENT);
    cr_assert(strstr(err, "cannot open the certificate file '/nonexistent/c.pem'"), "%s", err);
    r = tls_load_certs(dir, key, pem, err, sizeof(err));
    cr_assert_eq(r, -EINVAL);
    cr_assert(strstr(err, "is not a regular file"), "%s", err);
    r = tls_load_certs(empty, key, pem, err, sizeof(err));
    cr_assert_eq(r, -EINVAL);
    cr_assert(strstr(err, "holds no PEM certificate"), "%s", err);
    r = tls_load_certs(pem, key, pem, err, sizeof(err)); /* garbage between the markers */
    cr_assert_eq(r, -EINVAL);
    cr_assert(strstr(err, "holds no PEM certificate"), "%s", err);
    cr_assert(!tls_have_certs(), "nothing is loaded after a refusal");
    (void) unlink(link_key);
    (void) unlink(pem);
    (void) unlink(key);
    (void) unlink(open_key);
    (void) unlink(empty);
    (void) rmdir(dir);
}
