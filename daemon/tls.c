/* SPDX-License-Identifier: MIT */
/*
 * tls — see tls.h. OpenSSL 3.0 (bookworm): external PSKs are TLS 1.3 "sessions" made from
 * the derived key (SSL_psk_use_session / SSL_psk_find_session callbacks).
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "util/cleanup.h"
#include "util/log.h"
#include "util/macro.h"

/* Records are at most 16 KiB (RFC 8446 5.1): 16 of them per send. */
#define WRITE_BATCH (256u << 10)
/* Read-ahead: one recv() takes up to this much ciphertext, several records, into the read
 * side's buffer BIO (batch_io()), not into OpenSSL's own read-ahead: see there. */
#define READ_AHEAD (256u << 10)
#define RECORD_MAX 16384u
/* A PEM certificate chain, key or CA bundle larger than this is no such file. */
#define PEM_FILE_MAX (1u << 20)

static const char *const psk_identity[_TLS_PSK_MAX] = {
    [TLS_PSK_CONTROL] = "vfio-migd/1 control",
    [TLS_PSK_DATA] = "vfio-migd/1 data",
};
static const char *const psk_label[_TLS_PSK_MAX] = {
    [TLS_PSK_CONTROL] = "vfio-migd/1 tls psk control",
    [TLS_PSK_DATA] = "vfio-migd/1 tls psk data",
};
/* TLS_AES_128_GCM_SHA256: the cipher a PSK session names; the hash must be the PSK's. */
static const unsigned char psk_cipher_id[2] = {0x13, 0x01};

/* ---- keys */

static void
mac(const char *secret, const char *label, uint8_t out[32])
{
    unsigned len = 32;

    (void) HMAC(EVP_sha256(), secret, (int) strlen(secret), (const uint8_t *) label,
                strlen(label), out, &len);
}

void
tls_hello_proof(const char *token, char out[TRANSPORT_TOKEN_HEX + 1])
{
    uint8_t m[32];

    mac(token, "vfio-migd/1 hello proof", m);
    for (size_t i = 0; i < sizeof(m); i++) {
        (void) snprintf(out + 2 * i, 3, "%02x", m[i]);
    }
}

/* A TLS 1.3 session holding the PSK of @kind from @secret; NULL on failure. */
static SSL_SESSION *
psk_session(SSL *ssl, TlsPsk kind, const char *secret)
{
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_cipher_id);
    SSL_SESSION *s = SSL_SESSION_new();
    uint8_t key[32];

    mac(secret, psk_label[kind], key);
    if (!s || !cipher || !SSL_SESSION_set1_master_key(s, key, sizeof(key)) ||
        !SSL_SESSION_set_cipher(s, cipher) ||
        !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        s = NULL;
    }
    OPENSSL_cleanse(key, sizeof(key));
    return s;
}

/* ---- contexts */

typedef struct ClientPsk {
    TlsPsk kind;
    const char *secret;
} ClientPsk;

static int
client_psk_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
              SSL_SESSION **sess)
{
    const ClientPsk *p = SSL_get_app_data(ssl);
    SSL_SESSION *s;

    s = psk_session(ssl, p->kind, p->secret);
    if (!s) {
        return 0;
    }
    if (md && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
        SSL_SESSION_free(s); /* a retry for a suite of another hash: no PSK for it */
        *sess = NULL;
        return 1;
    }
    *id = (const unsigned char *) psk_identity[p->kind];
    *idlen = strlen(psk_identity[p->kind]);
    *sess = s;
    return 1;
}

static int
server_psk_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
    const TlsSecrets *sec = SSL_get_app_data(ssl);

    *sess = NULL;
    for (int k = 0; k < _TLS_PSK_MAX; k++) {
        const char *secret = k == TLS_PSK_CONTROL ? sec->token : sec->key;
        if (idlen == strlen(psk_identity[k]) && memcmp(id, psk_identity[k], idlen) == 0 &&
            secret && secret[0]) {
            *sess = psk_session(ssl, (TlsPsk) k, secret);
            return *sess ? 1 : 0;
        }
    }
    return 1; /* an unknown identity: no PSK, and without a certificate the handshake fails */
}

static const char *const mode_name[_TLS_MODE_MAX] = {
    [TLS_MODE_PSK] = "psk", [TLS_MODE_OFF] = "off", [TLS_MODE_CERT] = "cert",
};

/* A server's first look at a ClientHello: a PSK offer (a source with --tls psk) to a
 * migration prepared with --tls cert, or none (a source with --tls cert) to one prepared with
 * --tls psk, is refused here with an alert the source turns into words (client_failure()),
 * before either side spends any work on keys or certificates. */
static int
client_hello_cb(SSL *ssl, int *alert, void *arg)
{
    TlsMode mode = (TlsMode) (intptr_t) arg;
    const unsigned char *ext;
    size_t len;
    bool psk = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &ext, &len) == 1;

    if (psk != (mode == TLS_MODE_PSK)) {
        *alert = SSL_AD_INSUFFICIENT_SECURITY;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static SSL_CTX *ctx[2]; /* PSK: [0] client, [1] server */
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
/* Certificates: [0] client, [1] server; made once by tls_load_certs() before any migration,
 * never changed after (a new certificate takes a restart). */
static SSL_CTX *cert_ctx[2];

static SSL_CTX *
ctx_new(bool server, TlsMode mode)
{
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    if (!c) {
        return NULL;
    }
    (void) SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    /* SHA-256 suites only: the PSK is bound to its hash. AES-128-GCM first (AES-NI, VAES). */
    (void) SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256");
    /* No tickets: nothing is sent after the handshake, nothing is resumed. psk_dhe_ke only
     * (OpenSSL's default without SSL_OP_ALLOW_NO_DHE_KEX): forward secrecy. */
    (void) SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_ENABLE_KTLS);
    SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* In the handshake, read what the peer sent in one go (up to a record's worth, OpenSSL's
     * default buffer): a side that refuses the other's certificate in the middle of its flight
     * then closes with nothing of it unread. An unread byte turns close() into a reset, and
     * the reset can reach the peer before the alert that says why (its "socket failed"
     * instead of "certificate refused"). The data path turns it off: batch_io(). */
    SSL_CTX_set_read_ahead(c, 1);
    if (server) {
        SSL_CTX_set_client_hello_cb(c, client_hello_cb, (void *) (intptr_t) mode);
    }
    if (mode == TLS_MODE_CERT) {
        /* Both sides present a certificate and both check the other's against the CA. */
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else if (server) {
        SSL_CTX_set_psk_find_session_callback(c, server_psk_cb);
    } else {
        SSL_CTX_set_psk_use_session_callback(c, client_psk_cb);
    }
    return c;
}

static void
ctx_init(void)
{
    ctx[0] = ctx_new(false, TLS_MODE_PSK);
    ctx[1] = ctx_new(true, TLS_MODE_PSK);
}

static SSL *
ssl_new(int fd, bool server, TlsMode mode, void *app)
{
    SSL_CTX *c;
    SSL *ssl;

    (void) pthread_once(&ctx_once, ctx_init);
    c = mode == TLS_MODE_CERT ? cert_ctx[server] : ctx[server];
    if (!c) {
        return NULL;
    }
    ssl = SSL_new(c);
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_app_data(ssl, app);
    return ssl;
}

/* ---- errors */

/* Whether OpenSSL's queue says the peer sent no TLS at all (a clear vfio-migd peer). */
static bool
error_not_tls(unsigned long e)
{
    int reason = ERR_GET_REASON(e);

    return reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
           reason == SSL_R_RECORD_LENGTH_MISMATCH;
}

/* Maps a failed SSL call to an errno and a reason text, and empties the error queue. */
static int
ssl_failure(SSL *ssl, int ret, char *text, size_t size)
{
    int e = SSL_get_error(ssl, ret), saved = errno, r;
    unsigned long code = ERR_peek_last_error();

    if (e == SSL_ERROR_ZERO_RETURN) {
        r = -ENODATA;
    } else if (e == SSL_ERROR_SYSCALL && code == 0) {
        r = saved ? -saved : -ENODATA;
    } else if (ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        r = -ENODATA; /* the peer went away (closed without close_notify): a closed socket */
    } else if (ERR_GET_REASON(code) == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC) {
        r = -EKEYREJECTED;
    } else if (error_not_tls(code)) {
        r = -EPROTO;
    } else {
        r = -EACCES;
    }
    if (text) {
        (void) snprintf(text, size, "%s", code ? ERR_reason_error_string(code) ?: "?"
                                               : strerror(-r));
    }
    ERR_clear_error();
    return r;
}

/* ---- client */

static int
wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;

    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return -errno;
    }
    return r == 0 ? -ETIMEDOUT : 0;
}

/* The socket's SO_RCVTIMEO (@opt) in ms, -1 for none. */
static int
timeout_of(int fd, int opt)
{
    struct timeval tv = {0};
    socklen_t len = sizeof(tv);

    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0)) {
        return -1;
    }
    return (int) (tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
}

/* Logs the certificate a peer presented (mode cert), once its handshake has verified it. */
static void
log_peer_certificate(SSL *ssl, const char *peer)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    char subject[256] = "?", issuer[256] = "?";

    if (!x) {
        return;
    }
    (void) X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    (void) X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
    log_info("TLS peer %s: certificate '%s', issued by '%s'", peer, subject, issuer);
}

/* The sentence of a failed client handshake in @mode. */
static int
client_failure(SSL *ssl, int ret, TlsMode mode, const char *peer, char *err, size_t err_size)
{
    char reason[160];
    long verify = SSL_get_verify_result(ssl);
    int r = ssl_failure(ssl, ret, reason, sizeof(reason));

    if (r == -EPROTO || r == -ENODATA) {
        (void) snprintf(err, err_size, "the peer at '%s' did not answer in TLS (%s): it "
                        "listens in clear (prepared with 'vfio-migctl incoming --tls=off' or "
                        "[migration] tls = off) while this source uses --tls=%s; use the "
                        "same --tls on both sides", peer, reason, tls_mode_name(mode));
        return -EPROTO;
    }
    if (strstr(reason, "insufficient security")) { /* client_hello_cb()'s alert */
        (void) snprintf(err, err_size, "the destination at '%s' was prepared with another "
                        "--tls than this source's --tls=%s: use the same --tls on both sides "
                        "('vfio-migctl incoming --tls MODE', or [migration] tls)", peer,
                        tls_mode_name(mode));
        return -EPROTO;
    }
    if (mode == TLS_MODE_CERT) {
        (void) snprintf(err, err_size, "the TLS handshake with '%s' failed (%s%s%s): with "
                        "--tls=cert both daemons need a certificate signed by the CA of the "
                        "other's [migration] tls_ca", peer, reason,
                        verify != X509_V_OK ? ": " : "",
                        verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "");
        return -EACCES;
    }
    (void) snprintf(err, err_size, "the TLS handshake with '%s' failed (%s): the "
                    "destination does not hold this token (a token of another migration, "
                    "mistyped, or already spent)", peer, reason);
    return r == -EACCES ? -EACCES : r;
}

int
tls_client_handshake(int fd, TlsMode mode, TlsPsk kind, const char *secret, const char *peer,
                     char *err, size_t err_size)
{
    ClientPsk psk = {.kind = kind, .secret = secret};
    SSL *ssl;
    int r, ret;

    if (mode == TLS_MODE_OFF) {
        return 0;
    }
    if (!tls_mode_usable(mode, err, err_size)) {
        return -EOPNOTSUPP;
    }
    ssl = ssl_new(fd, /* server= */ false, mode, &psk);
    if (!ssl) {
        (void) snprintf(err, err_size, "no memory for a TLS session");
        return -ENOMEM;
    }
    ret = SSL_connect(ssl); /* blocking: the socket's timeouts bound it */
    if (ret != 1) {
        r = client_failure(ssl, ret, mode, peer, err, err_size);
        SSL_free(ssl);
        return r;
    }
    if (kind == TLS_PSK_CONTROL) {
        log_peer_certificate(ssl, peer);
    }
    SSL_set_app_data(ssl, NULL); /* @psk goes out of scope; the callback never runs again */
    r = tls_attach(fd, ssl);
    if (r < 0) {
        (void) snprintf(err, err_size, "no memory for a TLS session");
    }
    return r;
}

/* ---- server */

TlsSession *
tls_server_new(int fd, const TlsSecrets *secrets)
{
    SSL *ssl = ssl_new(fd, /* server= */ true, secrets->mode, (void *) secrets);

    if (ssl) {
        SSL_set_accept_state(ssl); /* SSL_do_handshake() steps it as a server */
    }
    return ssl;
}

int
tls_server_step(TlsSession *s, char *why, size_t why_size)
{
    const TlsSecrets *sec = SSL_get_app_data(s);
    char reason[160], peer[TRANSPORT_ADDRESS_MAX];
    int ret = SSL_do_handshake(s), e, r;
    long verify;

    if (ret == 1) {
        transport_peer_name(SSL_get_fd(s), peer, sizeof(peer));
        log_peer_certificate(s, peer);
        return 1;
    }
    e = SSL_get_error(s, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return e == SSL_ERROR_WANT_READ ? 0 : 2;
    }
    verify = SSL_get_verify_result(s);
    r = ssl_failure(s, ret, reason, sizeof(reason));
    if (strstr(reason, "callback failed")) { /* client_hello_cb() refused its mode */
        (void) snprintf(why, why_size, "it speaks TLS with --tls=%s to a migration prepared "
                        "with --tls=%s: use the same --tls on both sides",
                        sec->mode == TLS_MODE_PSK ? "cert" : "psk", tls_mode_name(sec->mode));
        return -EPROTO;
    }
    if (sec->mode == TLS_MODE_CERT) {
        (void) snprintf(why, why_size, "its TLS handshake failed (%s%s%s): its certificate is "
                        "not one signed by this daemon's [migration] tls_ca", reason,
                        verify != X509_V_OK ? ": " : "",
                        verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "");
        return r == -EPROTO ? r : -EACCES;
    }
    (void) snprintf(why, why_size, "its TLS handshake failed (%s): it does not hold this "
                    "migration's token, or is no vfio-migd source", reason);
    return r == -EPROTO ? r : -EACCES;
}

int
tls_server_read(TlsSession *s, void *buf, size_t size)
{
    size_t n = 0;
    int ret = SSL_read_ex(s, buf, size, &n);

    if (ret == 1) {
        return (int) n;
    }
    if (SSL_get_error(s, ret) == SSL_ERROR_WANT_READ) {
        return -EAGAIN;
    }
    return ssl_failure(s, ret, NULL, 0);
}

void
tls_session_free(TlsSession *s)
{
    SSL_free(s);
}

/* ---- sessions of sockets */

typedef struct TlsConn {
    SSL *ssl;
    pthread_mutex_t lock; /* one SSL call at a time; never held across a wait */
    int lowat;            /* the socket's SO_RCVLOWAT now; 0: refused, never asked again */
} TlsConn;

/* A bulk reader's wake-up threshold, as transport_read_bulk()'s on a clear socket: a reader
 * woken at every segment costs a scheduling round each time. It must never exceed what will
 * surely come: @want plaintext bytes need at least as many bytes of ciphertext, less what the
 * session may hold already (a reader waits only when the read buffer is empty: then at most
 * one partial record, less than READ_AHEAD). Small reads keep 1. */
static void
set_lowat(TlsConn *c, int fd, size_t want)
{
    int v = want > READ_AHEAD + 1 ? (int) MIN(want - READ_AHEAD, (size_t) (512u << 10)) : 1;

    if (c->lowat == 0 || c->lowat == v) {
        return;
    }
    c->lowat = setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) < 0 ? 0 : v;
}

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static TlsConn **table; /* by fd */
static size_t table_size;
static atomic_uint n_attached; /* 0: no lookup needed, every socket is clear */

static TlsConn *
lookup(int fd)
{
    TlsConn *c = NULL;

    if (fd < 0 || atomic_load(&n_attached) == 0) {
        return NULL;
    }
    pthread_mutex_lock(&table_lock);
    if ((size_t) fd < table_size) {
        c = table[fd];
    }
    pthread_mutex_unlock(&table_lock);
    return c;
}

/* Where the kernel does not do the record layer, the socket is read and written through
 * buffer BIOs of READ_AHEAD and WRITE_BATCH bytes: one send() per 16 records instead of one
 * per record (each record is copied once into the batch, cheaper than a syscall), and one
 * recv() of up to 16 records, from which OpenSSL takes each record's header and body (one
 * copy). OpenSSL's own read-ahead (SSL_CTX_set_read_ahead with a large read buffer) would
 * save that copy but costs far more: OpenSSL 3.0 moves whatever the buffer holds beyond the
 * record it starts to the front of the buffer at every record (ssl3_read_n's "clearold"),
 * about 8 times every byte with 256 KiB (bench/README.md, 2026-12-06, engineer 12t). */
static BIO *
buffered_socket(int fd, bool write)
{
    BIO *buf = BIO_new(BIO_f_buffer()), *sock = BIO_new_socket(fd, BIO_NOCLOSE);
    long ok = 0;

    if (buf && sock) {
        ok = write ? BIO_set_write_buffer_size(buf, WRITE_BATCH)
                   : BIO_set_read_buffer_size(buf, READ_AHEAD);
    }
    if (ok <= 0) {
        BIO_free(buf);
        BIO_free(sock);
        return NULL;
    }
    return BIO_push(buf, sock);
}

static int
batch_io(SSL *ssl, int fd)
{
    bool ktls_send = BIO_get_ktls_send(SSL_get_wbio(ssl));
    bool ktls_recv = BIO_get_ktls_recv(SSL_get_rbio(ssl));
    BIO *w = ktls_send ? NULL : buffered_socket(fd, /* write= */ true);
    BIO *r = ktls_recv ? NULL : buffered_socket(fd, /* write= */ false);

    if ((!ktls_send && !w) || (!ktls_recv && !r)) {
        BIO_free_all(w);
        BIO_free_all(r);
        return -ENOMEM;
    }
    /* Whatever the handshake's read-ahead took past its last record stays in OpenSSL's
     * buffer and is read first; from here records come from @r, with no read-ahead. */
    SSL_set_read_ahead(ssl, 0);
    if (w) {
        SSL_set0_wbio(ssl, w);
    }
    if (r) {
        SSL_set0_rbio(ssl, r);
    }
    return 0;
}

int
tls_attach(int fd, TlsSession *s)
{
    int flags = fd < 0 ? -1 : fcntl(fd, F_GETFL);
    TlsConn *c;

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        SSL_free(s);
        return -EBADF;
    }
    c = batch_io(s, fd) < 0 ? NULL : calloc(1, sizeof(*c));
    if (!c) {
        SSL_free(s);
        return -ENOMEM;
    }
    c->ssl = s;
    c->lowat = 1; /* a new socket's */
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_lock(&table_lock);
    if ((size_t) fd >= table_size) {
        size_t n = MAX((size_t) fd + 1, table_size * 2);
        TlsConn **t = realloc(table, n * sizeof(*t));
        if (!t) {
            pthread_mutex_unlock(&table_lock);
            SSL_free(s);
            free(c);
            return -ENOMEM;
        }
        memset(t + table_size, 0, (n - table_size) * sizeof(*t));
        table = t;
        table_size = n;
    }
    if (table[fd]) { /* a session left on a closed fd: a bug, never a session to reuse */
        SSL_free(table[fd]->ssl);
        free(table[fd]);
        atomic_fetch_sub(&n_attached, 1);
    }
    table[fd] = c;
    atomic_fetch_add(&n_attached, 1);
    pthread_mutex_unlock(&table_lock);
    return 0;
}

void
tls_detach(int fd)
{
    TlsConn *c = NULL;

    if (fd < 0 || atomic_load(&n_attached) == 0) {
        return;
    }
    pthread_mutex_lock(&table_lock);
    if ((size_t) fd < table_size && table[fd]) {
        c = TAKE_PTR(table[fd]);
        atomic_fetch_sub(&n_attached, 1);
    }
    pthread_mutex_unlock(&table_lock);
    if (c) {
        SSL_free(c->ssl);
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
}

bool
tls_attached(int fd)
{
    return lookup(fd) != NULL;
}

ssize_t
tls_read(int fd, void *buf, size_t size, size_t want)
{
    TlsConn *c = lookup(fd);

    if (!c) {
        return -EBADF;
    }
    for (;;) {
        size_t n = 0;
        int ret, e, r;

        pthread_mutex_lock(&c->lock);
        ret = SSL_read_ex(c->ssl, buf, size, &n);
        e = ret == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, ret);
        r = ret == 1 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
                ? 0
                : ssl_failure(c->ssl, ret, NULL, 0);
        pthread_mutex_unlock(&c->lock);
        if (ret == 1) {
            return (ssize_t) n;
        }
        if (r < 0) {
            return r;
        }
        set_lowat(c, fd, want);
        r = wait_fd(fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, timeout_of(fd, SO_RCVTIMEO));
        if (r < 0) {
            return r;
        }
    }
}

/* One step of a write: SSL_write_ex of @p, or the flush when @p is NULL. 1 done, 0 wait
 * (POLLOUT), or a negative errno. */
static int
write_step(TlsConn *c, const void *p, size_t size)
{
    size_t n = 0;
    int ret, r;

    pthread_mutex_lock(&c->lock);
    if (p) {
        ret = SSL_write_ex(c->ssl, p, size, &n);
        r = ret == 1 ? 1
            : SSL_get_error(c->ssl, ret) == SSL_ERROR_WANT_WRITE ? 0
                                                                  : ssl_failure(c->ssl, ret, NULL, 0);
    } else {
        ret = BIO_flush(SSL_get_wbio(c->ssl));
        r = ret > 0 ? 1 : BIO_should_retry(SSL_get_wbio(c->ssl)) ? 0 : -EPIPE;
        ERR_clear_error();
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

static int
write_whole(TlsConn *c, int fd, const void *p, size_t size)
{
    int r;

    if (p && size == 0) {
        return 0;
    }
    while ((r = write_step(c, p, size)) == 0) {
        r = wait_fd(fd, POLLOUT, timeout_of(fd, SO_SNDTIMEO));
        if (r < 0) {
            return r;
        }
    }
    return r < 0 ? r : 0;
}

int
tls_write2(int fd, const void *a, size_t a_size, const void *b, size_t b_size)
{
    TlsConn *c = lookup(fd);
    uint8_t first[RECORD_MAX];
    size_t take;
    int r;

    if (!c) {
        return -EBADF;
    }
    /* A short header alone would be a record of its own, sealed and sent for a few bytes:
     * the first record carries it with the start of the payload. */
    if (a_size < RECORD_MAX && b_size > 0) {
        take = MIN(b_size, RECORD_MAX - a_size);
        memcpy(first, a, a_size);
        memcpy(first + a_size, b, take);
        a = first;
        a_size += take;
        b = (const uint8_t *) b + take;
        b_size -= take;
    }
    r = write_whole(c, fd, a, a_size);
    if (r >= 0) {
        r = write_whole(c, fd, b, b_size);
    }
    if (r >= 0) {
        r = write_whole(c, fd, NULL, 0);
    }
    return r;
}

int
tls_pending(int fd)
{
    TlsConn *c = lookup(fd);
    int n;

    if (!c) {
        return 0;
    }
    /* The read buffer's bytes too: SSL_has_pending() sees only what OpenSSL took from it. */
    pthread_mutex_lock(&c->lock);
    n = SSL_has_pending(c->ssl) || BIO_pending(SSL_get_rbio(c->ssl)) > 0;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* ---- certificates */

static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void) buf, (void) size, (void) rwflag, (void) u;
    return -1; /* an encrypted key cannot be read unattended: refused, never prompted for */
}

/* The checks of a file named by the configuration, on the one fd it is read through: a
 * regular file (not a symlink: O_NOFOLLOW), at most PEM_FILE_MAX; a key (@secret) belongs to
 * the daemon's user and nobody else may read or write it. */
static int
pem_file_check(int fd, const char *path, const char *what, bool secret, struct stat *st,
               char *err, size_t err_size)
{
    if (fstat(fd, st) < 0) {
        int r = -errno;
        (void) snprintf(err, err_size, "%s '%s': %s", what, path, strerror(-r));
        return r;
    }
    if (!S_ISREG(st->st_mode) || st->st_size > PEM_FILE_MAX) {
        (void) snprintf(err, err_size, "%s '%s' is not a regular file of at most 1 MiB", what,
                        path);
        return -EINVAL;
    }
    if (secret && st->st_uid != geteuid()) {
        (void) snprintf(err, err_size, "%s '%s' belongs to uid %u, not to the daemon's user "
                        "(uid %u): 'chown %u %s'", what, path, (unsigned) st->st_uid,
                        (unsigned) geteuid(), (unsigned) geteuid(), path);
        return -EPERM;
    }
    if (secret && (st->st_mode & 077)) {
        (void) snprintf(err, err_size, "%s '%s' may be read or written by others (mode %04o): "
                        "'chmod 600 %s'", what, path, (unsigned) (st->st_mode & 07777), path);
        return -EPERM;
    }
    return 0;
}

/* The whole of @path, opened once (O_NOFOLLOW) and checked on that fd, in a memory BIO. */
static int
pem_file_read(const char *path, const char *what, bool secret, BIO **ret, char *err,
              size_t err_size)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    _cleanup_free_ char *buf = NULL;
    struct stat st;
    size_t n = 0;
    int r;

    if (fd < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot open %s '%s': %s", what, path, strerror(-r));
        return r;
    }
    r = pem_file_check(fd, path, what, secret, &st, err, err_size);
    if (r < 0) {
        return r;
    }
    buf = malloc((size_t) st.st_size + 1);
    if (!buf) {
        return -ENOMEM;
    }
    while (n <= (size_t) st.st_size) { /* one byte more than fstat said: a file that grew */
        ssize_t k = read(fd, buf + n, (size_t) st.st_size + 1 - n);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            break;
        }
        n += (size_t) k;
    }
    if (n != (size_t) st.st_size) {
        (void) snprintf(err, err_size, "%s '%s' changed while it was read", what, path);
        return -EIO;
    }
    *ret = BIO_new(BIO_s_mem());
    r = *ret && BIO_write(*ret, buf, (int) n) == (int) n ? 0 : -ENOMEM;
    if (r < 0) {
        BIO_free(*ret);
        *ret = NULL;
    }
    OPENSSL_cleanse(buf, n); /* a key's bytes do not linger in freed memory */
    return r;
}

/* What tls_load_certs() read, handed to both contexts. */
typedef struct CertSet {
    STACK_OF(X509) *chain; /* the daemon's certificate first, then its intermediates */
    EVP_PKEY *key;
    STACK_OF(X509) *cas;   /* the CA certificates a peer's must chain to */
} CertSet;

static void
cert_set_done(CertSet *s)
{
    sk_X509_pop_free(s->chain, X509_free);
    sk_X509_pop_free(s->cas, X509_free);
    EVP_PKEY_free(s->key);
}

/* Every certificate of a PEM file, at least one. */
static int
pem_certs(const char *path, const char *what, STACK_OF(X509) **ret, char *err, size_t err_size)
{
    BIO *bio = NULL;
    STACK_OF(X509) *certs;
    X509 *x;
    int r = pem_file_read(path, what, /* secret= */ false, &bio, err, err_size);

    if (r < 0) {
        return r;
    }
    certs = sk_X509_new_null();
    while (certs && (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL))) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            break;
        }
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(bio);
    if (!certs || sk_X509_num(certs) == 0) {
        sk_X509_pop_free(certs, X509_free);
        (void) snprintf(err, err_size, "%s '%s' holds no PEM certificate", what, path);
        return -EINVAL;
    }
    *ret = certs;
    return 0;
}

static int
pem_key(const char *path, EVP_PKEY **ret, char *err, size_t err_size)
{
    BIO *bio = NULL;
    int r = pem_file_read(path, "the key file", /* secret= */ true, &bio, err, err_size);

    if (r < 0) {
        return r;
    }
    *ret = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    ERR_clear_error();
    BIO_free(bio);
    if (!*ret) {
        (void) snprintf(err, err_size, "the key file '%s' holds no unencrypted PEM private key",
                        path);
        return -EINVAL;
    }
    return 0;
}

/* A context of mode cert with @s: its certificate, key and chain, and the CAs it trusts. */
static SSL_CTX *
cert_ctx_new(bool server, const CertSet *s)
{
    SSL_CTX *c = ctx_new(server, TLS_MODE_CERT);
    X509_STORE *store = c ? SSL_CTX_get_cert_store(c) : NULL;
    bool ok = store && SSL_CTX_use_certificate(c, sk_X509_value(s->chain, 0)) == 1 &&
              SSL_CTX_use_PrivateKey(c, s->key) == 1;

    for (int i = 1; ok && i < sk_X509_num(s->chain); i++) {
        ok = SSL_CTX_add1_chain_cert(c, sk_X509_value(s->chain, i)) == 1;
    }
    for (int i = 0; ok && i < sk_X509_num(s->cas); i++) {
        ok = X509_STORE_add_cert(store, sk_X509_value(s->cas, i)) == 1;
    }
    if (!ok) {
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

int
tls_load_certs(const char *cert, const char *key, const char *ca, char *err, size_t err_size)
{
    CertSet s = {};
    int r = pem_key(key, &s.key, err, err_size); /* the secret's checks first */

    if (r >= 0) {
        r = pem_certs(cert, "the certificate file", &s.chain, err, err_size);
    }
    if (r >= 0) {
        r = pem_certs(ca, "the CA file", &s.cas, err, err_size);
    }
    if (r >= 0 && X509_check_private_key(sk_X509_value(s.chain, 0), s.key) != 1) {
        ERR_clear_error();
        (void) snprintf(err, err_size, "the key in '%s' is not the key of the certificate in "
                        "'%s'", key, cert);
        r = -EINVAL;
    }
    if (r >= 0) {
        cert_ctx[0] = cert_ctx_new(/* server= */ false, &s);
        cert_ctx[1] = cert_ctx_new(/* server= */ true, &s);
        if (!cert_ctx[0] || !cert_ctx[1]) {
            (void) snprintf(err, err_size, "cannot use the certificate '%s' with its key: %s",
                            cert, ERR_reason_error_string(ERR_peek_last_error()) ?: "?");
            ERR_clear_error();
            tls_unload_certs();
            r = -EINVAL;
        }
    }
    cert_set_done(&s);
    return r;
}

void
tls_unload_certs(void)
{
    for (size_t i = 0; i < ELEMENTSOF(cert_ctx); i++) {
        SSL_CTX_free(TAKE_PTR(cert_ctx[i]));
    }
}

bool
tls_have_certs(void)
{
    return cert_ctx[0] && cert_ctx[1];
}

bool
tls_mode_usable(TlsMode mode, char *err, size_t err_size)
{
    if (mode != TLS_MODE_CERT || tls_have_certs()) {
        return true;
    }
    (void) snprintf(err, err_size, "--tls=cert needs this daemon's certificate, and it has "
                    "none: set tls_cert, tls_key and tls_ca in its [migration] configuration "
                    "(or vfio-migd --tls-cert FILE --tls-key FILE --tls-ca FILE) and restart "
                    "it, or use --tls=psk");
    return false;
}

const char *
tls_mode_name(TlsMode mode)
{
    return mode >= 0 && mode < _TLS_MODE_MAX ? mode_name[mode] : "?";
}
