/* SPDX-License-Identifier: MIT */
/*
 * migration_accept — a destination's data port, before anyone has shown the token.
 *
 * Whoever can reach the port can connect, so nothing a stranger does there may change the
 * migration, hold a worker that moves devices, or spin the loop (issue 11 item 3):
 *   - accept() runs on the loop, at most ACCEPT_BATCH per wake-up; when it fails for lack of
 *     fds (EMFILE, ENFILE, ENOBUFS, ENOMEM, or worse) the listening socket is not polled for
 *     a while (util/accept.h, as the API socket's) instead of at once again: it stays
 *     readable while connections wait, and a level-triggered poll would spin;
 *   - at most MIGRATION_PREAUTH_MAX connections per migration and MIGRATION_PREAUTH_PER_PEER
 *     per peer address wait to authenticate (the source's host gets one more per device once
 *     its HELLO was taken); one more is closed at once;
 *   - each is read on the loop without blocking, and must have sent its whole first message
 *     within j->handshake_ms of accept(): one deadline, swept by the job's tick, that no
 *     byte restarts (a per-read timeout let one byte a second hold a connection for ever);
 *   - with TLS (the default), the handshake runs here too, non-blocking, within the same
 *     deadline: a client that cannot prove the token's PSK (tls.h) is refused like any
 *     stranger, and the first message is read through the session. The first byte tells a
 *     TLS client from a clear one; a side that speaks the other way is refused with a
 *     sentence naming --tls on both sides (to a clear source, as a REFUSE it can show);
 *   - the first message must be a HELLO or a DATA_HELLO of a size it can have, else the
 *     connection is closed before the rest is read;
 *   - each refusal is logged with the peer's address and what was wrong, at most once per
 *     peer address and interval, the next line counting those left out.
 * What a whole message means is migration_dest.c's (mig_dest_first_message()).
 *
 * Threads: loop only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handshake.h"
#include "log_object.h"
#include "manager.h"
#include "migration_internal.h"
#include "util/accept.h"
#include "util/cleanup.h"
#include "util/le.h"
#include "util/log.h"
#include "util/macro.h"

/* One refusal line per peer address per interval; pauses: 5 lines per interval. */
#define LOG_INTERVAL_NS (10ull * 1000000000ull)
#define PAUSE_LOG_BURST 5
/* A message's first buffer; it grows as bytes arrive, so a peer that only announces 2 MiB
 * costs this much. */
#define PREAUTH_FIRST_CAP 4096u

/* ---- the refusal log */

/* "host" of "host:port" ("[v6]" stays bracketed; "unix" has no port). */
static void
host_of(const char *peer, char *out, size_t size)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon && peer[0] != 'u' ? (size_t) (colon - peer) : strlen(peer);

    (void) snprintf(out, size, "%.*s", (int) MIN(n, size - 1), peer);
}

/* The limiter of @host: its own, else a free slot, else the one whose window began first. */
static MigRefusalPeer *
refusal_peer(MigrationJob *j, const char *host)
{
    MigRefusalPeer *slot = NULL;

    for (size_t i = 0; i < ELEMENTSOF(j->refusal_peers); i++) {
        MigRefusalPeer *p = &j->refusal_peers[i];
        if (p->host[0] && strcmp(p->host, host) == 0) {
            return p;
        }
        if (!slot || (slot->host[0] && (!p->host[0] || p->rl.begin_ns < slot->rl.begin_ns))) {
            slot = p;
        }
    }
    (void) snprintf(slot->host, sizeof(slot->host), "%s", host);
    slot->rl = RATELIMIT_INIT(LOG_INTERVAL_NS, 1);
    return slot;
}

void
mig_log_refusal(MigrationJob *j, const char *peer, const char *fmt, ...)
{
    char host[TRANSPORT_ADDRESS_MAX], what[768];
    unsigned suppressed = 0;
    va_list ap;

    j->accept_stats.refused++;
    host_of(peer, host, sizeof(host));
    if (!ratelimit_below(&refusal_peer(j, host)->rl, clock_now_ns(), &suppressed)) {
        return;
    }
    va_start(ap, fmt);
    (void) vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    log_job_warning(j, "Migration %s: refused a connection from %s on its data port: %s "
                    "(refusals from %s not logged before this one: %u).", j->id, peer, what, host,
                    suppressed);
}

/* ---- connections not yet authenticated */

static void
on_handle_closed(uv_handle_t *h)
{
    MigrationJob *j = h->data;

    j->handles_open--;
}

static void
preauth_on_closed(uv_handle_t *h)
{
    MigPreauth *c = h->data;

    c->job->handles_open--;
    tls_session_free(c->tls);
    free(c->msg);
    free(c);
}

static void
preauth_unlink(MigPreauth *c)
{
    MigrationJob *j = c->job;

    for (MigPreauth **pp = &j->preauth; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            j->n_preauth--;
            return;
        }
    }
}

/* Closes the handle first: libuv lets an fd close once its poll is closing, not before. */
static void
preauth_close(MigPreauth *c)
{
    preauth_unlink(c);
    uv_close((uv_handle_t *) &c->poll, preauth_on_closed);
    if (c->fd >= 0) {
        (void) close(TAKE_FD(c->fd));
    }
}

static void on_preauth_readable(uv_poll_t *h, int status, int events);

static void
preauth_refuse(MigPreauth *c, const char *why)
{
    mig_log_refusal(c->job, c->peer, "%s", why);
    preauth_close(c);
}

/* A clear vfio-migd source at a TLS destination: told in clear, as REFUSE, which it shows. */
static int
preauth_refuse_clear(MigPreauth *c, char *why, size_t why_size)
{
    static const char text[] = "this destination takes only TLS connections (prepared with "
                               "--tls=psk, the default) and the source connected in clear "
                               "(vfio-migctl migrate --tls=off, or [migration] tls = off): use "
                               "the same --tls on both sides";
    uint8_t msg[8 + sizeof(text) - 1];

    put_le32(msg, TMSG_REFUSE);
    put_le32(msg + 4, (uint32_t) (sizeof(text) - 1));
    memcpy(msg + 8, text, sizeof(text) - 1);
    (void) transport_send_nowait(c->fd, msg, sizeof(msg));
    (void) snprintf(why, why_size, "it connected in clear (--tls=off) to a migration prepared "
                    "with TLS (--tls=psk): use the same --tls on both sides");
    return -EPROTO;
}

/* The first header (handshake.c's check); a clear vfio-migd message where TLS was due is
 * refused in words that name --tls. */
static int
preauth_check_header(MigPreauth *c, char *why, size_t why_size)
{
    if (c->job->opts.tls != TLS_MODE_OFF && !c->tls && transport_message_name(get_le32(c->hdr))) {
        return preauth_refuse_clear(c, why, why_size);
    }
    return handshake_check_first_header(c->hdr, &c->size, why, why_size);
}

/* Room for the next bytes of the payload: doubling, never past the declared size. */
static int
preauth_grow(MigPreauth *c)
{
    uint32_t cap;
    uint8_t *p;

    if (c->got < c->cap) {
        return 0;
    }
    cap = MIN(c->size, MAX(PREAUTH_FIRST_CAP, c->cap * 2));
    p = realloc(c->msg, cap);
    if (!p) {
        return -ENOMEM;
    }
    c->msg = p;
    c->cap = cap;
    return 0;
}

/* recv() without waiting, through the TLS session when there is one. */
static ssize_t
preauth_recv(MigPreauth *c, uint8_t *dst, size_t want)
{
    int n;

    if (!c->tls) {
        return recv(c->fd, dst, want, MSG_DONTWAIT);
    }
    n = tls_server_read(c->tls, dst, want);
    if (n >= 0 || n == -ENODATA) {
        return n == -ENODATA ? 0 : n;
    }
    errno = -n;
    return -1;
}

/* Before the first message: what the first byte says (TLS or clear) and, for TLS, the
 * handshake. 1 go on reading the message, 0 wait for more bytes, negative: refused (@why). */
static int
preauth_tls(MigPreauth *c, char *why, size_t why_size)
{
    MigrationJob *j = c->job;
    uint8_t first;
    ssize_t n;
    int r;

    if (!c->probed) {
        n = recv(c->fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return 0;
        }
        if (n <= 0) {
            r = n == 0 ? -ENODATA : -errno;
            (void) snprintf(why, why_size, "%s before its first message", transport_strerror(r));
            return r;
        }
        c->probed = true;
        if (first == TLS_RECORD_HANDSHAKE && j->opts.tls == TLS_MODE_OFF) {
            /* Its ClientHello read, not left unread: a close with unread bytes is a reset,
             * which the source could not tell from a daemon that died; an orderly close it
             * reports as a destination that does not speak TLS. */
            uint8_t scratch[2048];
            while (recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0) {
            }
            (void) snprintf(why, why_size, "it speaks TLS (a source with --tls=psk, the default) "
                            "to a migration prepared with --tls=off: use the same --tls on both "
                            "sides");
            return -EPROTO;
        }
        if (first == TLS_RECORD_HANDSHAKE) {
            c->tls = tls_server_new(c->fd, &j->tls_secrets);
            if (!c->tls) {
                (void) snprintf(why, why_size, "no memory for a TLS session");
                return -ENOMEM;
            }
        }
    }
    if (!c->tls || c->tls_ready) {
        return 1;
    }
    r = tls_server_step(c->tls, why, why_size);
    if (r == 2) {
        (void) uv_poll_start(&c->poll, UV_READABLE | UV_WRITABLE, on_preauth_readable);
        return 0;
    }
    if (r == 0) {
        (void) uv_poll_start(&c->poll, UV_READABLE, on_preauth_readable);
    }
    c->tls_ready = r == 1;
    return r;
}

/* Reads what has come: 1 the message is whole, 0 more is to come, or a negative errno with
 * what was wrong in @why. */
static int
preauth_read(MigPreauth *c, char *why, size_t why_size)
{
    for (;;) {
        bool in_hdr = c->hdr_got < sizeof(c->hdr);
        uint8_t *dst = in_hdr ? c->hdr + c->hdr_got : NULL;
        size_t want = in_hdr ? sizeof(c->hdr) - c->hdr_got : 0;
        ssize_t n;

        if (!in_hdr) {
            if (c->got == c->size) {
                return 1;
            }
            if (preauth_grow(c) < 0) {
                (void) snprintf(why, why_size, "no memory for its message");
                return -ENOMEM;
            }
            dst = c->msg + c->got;
            want = c->cap - c->got;
        }
        n = preauth_recv(c, dst, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        if (n <= 0) {
            int r = n == 0 ? -ENODATA : -errno;
            (void) snprintf(why, why_size, "%s after %u bytes, before its first message was "
                            "whole", transport_strerror(r), c->hdr_got + c->got);
            return r;
        }
        if (!in_hdr) {
            c->got += (uint32_t) n;
        } else if ((c->hdr_got += (uint32_t) n) == sizeof(c->hdr)) {
            int r = preauth_check_header(c, why, why_size);
            if (r < 0) {
                return r;
            }
        }
    }
}

/* The message is whole: the connection leaves the list, becomes a blocking socket (workers
 * read it with timeouts) and goes to migration_dest.c with its message. */
static void
preauth_hand_on(MigPreauth *c)
{
    MigrationJob *j = c->job;
    _cleanup_(transport_closep) int fd = TAKE_FD(c->fd);
    int flags = fcntl(fd, F_GETFL);

    /* Out of the list first: the message may fail the job, which closes every connection
     * still in it. A TLS session goes with its socket (which stays non-blocking: tls.h). */
    preauth_unlink(c);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
        transport_set_timeout(fd, MIGRATION_HANDSHAKE_MS) < 0 ||
        (c->tls && tls_attach(fd, TAKE_PTR(c->tls)) < 0)) {
        mig_log_refusal(j, c->peer, "its socket cannot be set up: %s", strerror(errno));
    } else {
        mig_dest_first_message(j, &fd, c->peer, get_le32(c->hdr), c->msg, c->size);
        /* A message that failed the job: no worker's end will start its rollback. */
        mig_maybe_finish_failure(j);
    }
    uv_close((uv_handle_t *) &c->poll, preauth_on_closed);
}

static void
on_preauth_readable(uv_poll_t *h, int status, int events)
{
    MigPreauth *c = h->data;
    char why[512];
    int r;

    (void) events;
    if (status < 0) {
        (void) snprintf(why, sizeof(why), "its socket failed: %s", uv_strerror(status));
        preauth_refuse(c, why);
        return;
    }
    r = preauth_tls(c, why, sizeof(why));
    if (r > 0) {
        r = preauth_read(c, why, sizeof(why));
    }
    if (r < 0) {
        preauth_refuse(c, why);
    } else if (r > 0) {
        preauth_hand_on(c);
    }
}

void
mig_accept_sweep(MigrationJob *j, uint64_t now_ns)
{
    MigPreauth *next;
    char why[256];

    for (MigPreauth *c = j->preauth; c; c = next) {
        next = c->next;
        if (now_ns >= c->deadline_ns) {
            (void) snprintf(why, sizeof(why), "it did not send a whole HELLO or DATA_HELLO "
                            "within %u ms of connecting (%u bytes came)", j->handshake_ms,
                            c->hdr_got + c->got);
            preauth_refuse(c, why);
        }
    }
}

/* ---- accepting */

/* How many connections from @host wait to authenticate. */
static unsigned
preauth_from(const MigrationJob *j, const char *host)
{
    unsigned n = 0;

    for (const MigPreauth *c = j->preauth; c; c = c->next) {
        n += strcmp(c->host, host) == 0;
    }
    return n;
}

/* Takes @fd as a connection to authenticate, or refuses it when a cap is reached. */
static void
preauth_admit(MigrationJob *j, int fd)
{
    char peer[TRANSPORT_ADDRESS_MAX], host[TRANSPORT_ADDRESS_MAX], source[TRANSPORT_ADDRESS_MAX];
    bool known = j->ctl_fd >= 0; /* j->peer is the source's address from its HELLO on */
    unsigned max_total = MIGRATION_PREAUTH_MAX + (known ? (unsigned) j->n_devs : 0);
    unsigned max_peer = MIGRATION_PREAUTH_PER_PEER;
    MigPreauth *c;

    transport_peer_name(fd, peer, sizeof(peer));
    host_of(peer, host, sizeof(host));
    host_of(j->peer, source, sizeof(source));
    if (known && strcmp(host, source) == 0) {
        max_peer += (unsigned) j->n_devs;
    }
    if (j->n_preauth >= max_total || preauth_from(j, host) >= max_peer) {
        bool all = j->n_preauth >= max_total;
        mig_log_refusal(j, peer, "%u connections %s wait to authenticate, the most %s",
                        all ? max_total : max_peer, all ? "of this migration" : "from that address",
                        all ? "it lets wait" : "one address may open");
        (void) close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c || uv_poll_init(j->manager->loop, &c->poll, fd) < 0) {
        mig_log_refusal(j, peer, "no memory for another connection");
        free(c);
        (void) close(fd);
        return;
    }
    *c = (MigPreauth){.poll = c->poll, .job = j, .next = j->preauth, .fd = fd,
                      .deadline_ns = clock_now_ns() + (uint64_t) j->handshake_ms * 1000000ull};
    memcpy(c->peer, peer, sizeof(peer));
    memcpy(c->host, host, sizeof(host));
    c->poll.data = c;
    j->preauth = c;
    j->n_preauth++;
    j->handles_open++;
    transport_tune(fd);
    (void) uv_poll_start(&c->poll, UV_READABLE, on_preauth_readable);
}

static void on_acceptable(uv_poll_t *h, int status, int events);

static void
on_pause_done(uv_timer_t *t)
{
    MigrationJob *j = t->data;

    if (j->listen_active) {
        (void) uv_poll_start(&j->listen_poll, UV_READABLE, on_acceptable);
    }
}

/* Stops polling for a while (util/accept.h): polling a socket that stays readable at once
 * again would spin the loop without freeing anything. */
static void
accept_pause(void *userdata, int r)
{
    MigrationJob *j = userdata;
    unsigned suppressed = 0, ms = accept_pause_next(&j->accept_pause_len);

    j->accept_stats.pauses++;
    /* Every failure, at debug level: failures and pauses counted side by side show
     * (integration_data_port) that each failure paused, that the loop does not spin. */
    (void) log_job_full_errno(j, LOG_DEBUG, r, "Migration %s: accept() on the data port failed: %m "
                               "(failure %lu, pause %lu of %u ms).", j->id,
                               j->accept_stats.accept_failures, j->accept_stats.pauses, ms);
    if (ratelimit_below(&j->accept_fail_rl, clock_now_ns(), &suppressed)) {
        (void) log_job_warning_errno(j, r, "Migration %s: cannot accept connections on its data "
                                     "port: %m; pausing accepts for %u ms (pauses not logged "
                                     "before this one: %u). Raise LimitNOFILE= (ulimit -n).",
                                     j->id, ms, suppressed);
    }
    (void) uv_poll_stop(&j->listen_poll);
    (void) uv_timer_start(&j->accept_pause, on_pause_done, ms, 0);
}

/* A new connection waits to authenticate; false once the job stopped listening. */
static bool
accept_admit(void *userdata, int fd)
{
    MigrationJob *j = userdata;

    accept_pause_reset(&j->accept_pause_len);
    preauth_admit(j, fd);
    return j->listen_active;
}

static void
on_acceptable(uv_poll_t *h, int status, int events)
{
    MigrationJob *j = h->data;

    (void) events;
    accept_wakeup(j->listen_fd, status, accept_admit, accept_pause, j,
                  &j->accept_stats.accept_calls, &j->accept_stats.accept_failures);
}

int
mig_accept_start(MigrationJob *j)
{
    int r = uv_poll_init(j->manager->loop, &j->listen_poll, j->listen_fd);

    if (r < 0) {
        return r;
    }
    (void) uv_timer_init(j->manager->loop, &j->accept_pause);
    j->listen_poll.data = j->accept_pause.data = j;
    j->accept_fail_rl = RATELIMIT_INIT(LOG_INTERVAL_NS, PAUSE_LOG_BURST);
    j->listen_active = true;
    j->handles_open += 2;
    (void) uv_poll_start(&j->listen_poll, UV_READABLE, on_acceptable);
    return 0;
}

void
mig_accept_stop(MigrationJob *j)
{
    if (j->listen_active) {
        j->listen_active = false;
        uv_close((uv_handle_t *) &j->listen_poll, on_handle_closed);
        uv_close((uv_handle_t *) &j->accept_pause, on_handle_closed);
    }
    while (j->preauth) {
        preauth_close(j->preauth);
    }
}
