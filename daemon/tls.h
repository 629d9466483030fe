/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * tls — TLS 1.3 on the sockets of a live migration (OpenSSL), keyed by the one-time token.
 *
 * Both daemons already share a secret: the token PrepareIncoming printed, which the
 * orchestrator handed to the source. Each connection's handshake uses an external PSK
 * derived from it (HMAC-SHA256 over a label), so the token itself never crosses the wire;
 * the key exchange is psk_dhe_ke (X25519 or another ECDHE group) for forward secrecy:
 * recording the traffic and learning the token later decrypts nothing. Two PSKs:
 *   control  from the token, identity "vfio-migd/1 control" (the control connection and a
 *            dry run's connection);
 *   data     from the data channels' key that ACCEPT carries inside the encrypted control
 *            connection, identity "vfio-migd/1 data".
 * The identities are fixed strings: they reveal nothing of either secret. Session tickets
 * are off (no post-handshake message); only TLS 1.3, only SHA-256 suites (the PSKs' hash).
 *
 * Mode cert (--tls cert, mTLS) uses no PSK: both sides present the daemon's certificate
 * (tls_load_certs(), from [migration] tls_cert/tls_key/tls_ca, read once at start) and each
 * verifies the other's against its CA; the token is still proved by the HELLO inside the
 * connection. A server refuses a ClientHello of the other mode (a PSK offer to a cert
 * migration, none to a psk one) at once, with an alert the client words as a --tls mismatch.
 *
 * After the handshake the session belongs to its socket: tls_attach() records it under the
 * fd, and transport.c's reads and writes go through it (tls_read(), tls_write2()) whatever
 * module calls them, so the data path is the same code, encrypted or clear. The socket is
 * non-blocking from then on: a thread waits in poll() outside the connection's lock, with
 * the socket's SO_RCVTIMEO/SO_SNDTIMEO as its deadline, so a reader waiting for the peer
 * never holds up a writer on the same connection. Reads and writes are batched: records go
 * through a 256 KiB buffer to the socket (one send per 16 records, not one per record) and
 * come from one of 256 KiB (one recv per up to 16 records; a buffer BIO, not OpenSSL's
 * read-ahead, which costs more than it saves: tls.c), unless the kernel took the record
 * layer (kTLS, SSL_OP_ENABLE_KTLS, where kernel and library have it).
 *
 * Threads: the client handshake blocks (workers); the server handshake is a non-blocking
 * step the loop repeats (migration_accept.c); reads and writes on an attached fd from any
 * thread, serialised per connection. Errors: negative errno, a sentence where a buffer is
 * given.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

/* How a migration's sockets are protected: its --tls (MigrationOptions.tls, [migration] tls). */
typedef enum TlsMode {
    TLS_MODE_PSK,  /* TLS 1.3, authenticated by PSKs from the token (the default) */
    TLS_MODE_OFF,  /* clear, the token too: a trusted link only */
    TLS_MODE_CERT, /* TLS 1.3, both sides present a certificate of the daemons' CA (mTLS);
                    * the HELLO still proves the token */
    _TLS_MODE_MAX,
} TlsMode;

typedef enum TlsPsk {
    TLS_PSK_CONTROL, /* from the token */
    TLS_PSK_DATA,    /* from the data channels' key */
    _TLS_PSK_MAX,
} TlsPsk;

/* What a destination's server handshake may accept, owned by its job: @token always, @key
 * once ACCEPT has made it (empty before: a data channel cannot authenticate yet). */
typedef struct TlsSecrets {
    TlsMode mode; /* psk or cert (cert: no PSK; the token is proved by the HELLO alone) */
    const char *token;
    const char *key;
} TlsSecrets;

typedef struct ssl_st TlsSession; /* OpenSSL's SSL */

/* The first byte of a TLS ClientHello (a handshake record): no vfio-migd message starts with
 * it (TMSG_* types are below it), so one byte tells a TLS peer from a clear one. */
#define TLS_RECORD_HANDSHAKE 0x16

/* The proof a HELLO carries instead of the token when TLS is on, 64 hex characters: a MAC of
 * a fixed label under the token. It proves nothing the PSK handshake has not proved already,
 * and reveals nothing of the token. */
void tls_hello_proof(const char *token, char out[TRANSPORT_TOKEN_HEX + 1]);

/* Client side, on a connected blocking socket @fd: the whole handshake (within the socket's
 * timeouts) in @mode, with the PSK of @kind from @secret (64 hex) or (cert) the daemon's
 * certificate, then tls_attach(); mode off does nothing and returns 0. @peer names the other
 * end in @err; mode cert logs the peer's certificate. -EACCES: the peer refused the PSK
 * (another token) or a certificate failed; -EPROTO: the peer does not speak TLS (a
 * destination with --tls=off) or was prepared with another --tls; -EOPNOTSUPP: cert, and this
 * daemon has no certificate; other: the socket's. */
int tls_client_handshake(int fd, TlsMode mode, TlsPsk kind, const char *secret, const char *peer,
                         char *err, size_t err_size);

/* Server side: a session for the accepted non-blocking socket @fd in @secrets->mode (psk:
 * the PSKs of @secrets, which must outlive it; cert: the daemon's certificate). NULL: no
 * memory, or cert and no certificate loaded. */
TlsSession *tls_server_new(int fd, const TlsSecrets *secrets);
/* One step of the server handshake: 1 done (mode cert: the peer's certificate logged), 0 wait
 * until readable, 2 wait until writable; or -EACCES (a client without the right PSK, or
 * without a certificate of the CA) / -EPROTO (no TLS, or a client in the other TLS mode),
 * with a sentence in @why. */
int tls_server_step(TlsSession *s, char *why, size_t why_size);
/* A non-blocking read of application data: bytes read, -EAGAIN (nothing yet), -ENODATA
 * (closed), or another negative errno. */
int tls_server_read(TlsSession *s, void *buf, size_t size);
void tls_session_free(TlsSession *s);

/*
 * Certificates for --tls=cert (mTLS), from the paths of [migration] tls_cert (the daemon's
 * certificate in PEM, then any intermediates), tls_key (its unencrypted PEM key) and tls_ca
 * (the CA certificates a peer's must chain to). Each file is opened once (O_NOFOLLOW) and
 * checked on that fd: a regular file of at most 1 MiB; the key file belongs to the daemon's
 * user and has no permission for group or others. Called once at start, before any
 * migration (main thread); a new certificate takes a restart. 0, or a negative errno with a
 * sentence in @err naming the file and the command that fixes it.
 */
int tls_load_certs(const char *cert, const char *key, const char *ca, char *err,
                   size_t err_size);
void tls_unload_certs(void);
/* Whether tls_load_certs() succeeded: a migration with --tls=cert needs it. */
bool tls_have_certs(void);
/* Whether this daemon can speak @mode: false for cert without tls_load_certs(), with the
 * sentence that says what to set in @err. */
bool tls_mode_usable(TlsMode mode, char *err, size_t err_size);
/* "psk", "off", "cert". */
const char *tls_mode_name(TlsMode mode);

/* Makes @s the session of @fd (which becomes non-blocking) for every transport call on it,
 * taking ownership (freed on failure too). -ENOMEM, -EBADF. */
int tls_attach(int fd, TlsSession *s);
/* Forgets and frees @fd's session, if it has one: before its fd is closed (transport_close()). */
void tls_detach(int fd);
/* Whether @fd has a session: transport.c's switch between the two paths. */
bool tls_attached(int fd);

/* As read() on @fd's session: up to @size bytes, waiting (at most the socket's SO_RCVTIMEO,
 * or for ever when it has none) until some come. @want (>= @size) is how much the caller will
 * read in all, surely sent: the wake-up threshold follows it. Bytes read (> 0), -ENODATA (closed),
 * -ETIMEDOUT, -EKEYREJECTED (a record that fails its authentication: changed on the way),
 * other errors of the socket. -EBADF: @fd has no session. */
ssize_t tls_read(int fd, void *buf, size_t size, size_t want);
/* Writes @a then @b whole, the first record filled from both (no record for a header alone),
 * and flushes. 0 or a negative errno. */
int tls_write2(int fd, const void *a, size_t a_size, const void *b, size_t b_size);
/* 1 when @fd's session holds decrypted bytes not read yet (poll() cannot see them). */
int tls_pending(int fd);
