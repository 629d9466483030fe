/* SPDX-License-Identifier: MIT */
/*
 * migration_dest — PrepareIncoming, on the destination daemon.
 *
 * The plan: listen (only for this migration) and wait for the source (timeout). Every new
 * connection has a total deadline to send its first message whole, read on the loop and
 * capped per migration and per peer (migration_accept.c); then:
 *   HELLO       token (constant-time compare, single use), stream header and manifest. A
 *               missing or wrong token changes nothing: the job waits on for the right one,
 *               and the refusal is logged (rate-limited). With the token right, the
 *               manifest must match the local group (core/compat: device names, flags,
 *               back-ends, compatibility descriptors): else REFUSE with every mismatch,
 *               before the source has stopped anything. Then the group -> RESUMING
 *               (P2P-safe) and ACCEPT with the data channels' key.
 *   DATA_HELLO  key, stream id, device index (and which of the device's channels): the
 *               channel is bound to that device and a worker writes its records into the
 *               device's resuming session; a device spread over several channels gets one
 *               worker per channel, delivering in sequence order (core/spread.h).
 * The control worker waits for PINGs (silence longer than the timeout fails the job) and for
 * STREAM_END. When every channel ended and STREAM_END's totals agree: group -> STOP (where
 * drivers validate), PREPARED, and the control worker waits for the source's decision
 * (core/handover.h): COMMIT -> DONE, and with auto_resume group -> RUNNING; FAIL -> reset.
 * Before PREPARED any failure resets the devices; after it, a lost source leaves the job in
 * doubt (devices kept in STOP) until the orchestrator resolves it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handshake.h"
#include "log_object.h"
#include "manager.h"
#include "migration_internal.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/le.h"
#include "util/log.h"

#define PREPARE_TIMEOUT_DEFAULT_MS 300000

/* The longest REFUSE text: room for several mismatches, within what the source reads. */
#define REFUSE_MAX 900

static void
refuse(int fd, const char *why)
{
    size_t len = strnlen(why, REFUSE_MAX);
    uint8_t msg[8 + REFUSE_MAX];

    put_le32(msg, TMSG_REFUSE);
    put_le32(msg + 4, (uint32_t) len);
    memcpy(msg + 8, why, len);
    (void) transport_send_nowait(fd, msg, 8 + len);
}

/* What a HELLO must hold: the token in clear, its proof over TLS (tls_hello_proof()). */
static const char *
dest_hello_secret(const MigrationJob *j)
{
    return j->opts.tls == TLS_MODE_OFF ? j->token : j->hello_proof;
}

/* ---- manifest check ---- */

/* ---- completion ---- */

static void
on_resumed(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        log_job_warning(j, "Migration %s: resuming the group failed: %s.", j->id, run->error);
    }
    mig_complete(j);
}

static int
send_empty(MigrationJob *j, uint32_t type)
{
    uint8_t msg[8] = {(uint8_t) type, 0, 0, 0, 0, 0, 0, 0};
    int r;

    pthread_mutex_lock(&j->ctl_lock);
    r = j->ctl_fd < 0 ? -EPIPE : transport_send_nowait(j->ctl_fd, msg, sizeof(msg));
    pthread_mutex_unlock(&j->ctl_lock);
    return r < 0 ? -EPIPE : 0;
}

void
mig_dest_take_over(MigrationJob *j)
{
    (void) send_empty(j, TMSG_DONE); /* a source in doubt hears nothing: resolved there */
    j->end_ns = clock_now_ns();
    log_job_info(j, "Migration %s: the source committed; this destination holds the VM.", j->id);
    if (!j->auto_resume ||
        mig_group_transition(j, DEVICE_STATE_RUNNING, /* fail_what= */ NULL, on_resumed) < 0) {
        mig_complete(j);
    }
}

static void
on_stop_entered(MigrationJob *j, const GroupRun *run)
{
    (void) run; /* succeeded: a failure failed the job */
    if (mig_handover(j, HANDOVER_EV_LOADED, 0, "") != HANDOVER_DO_SEND_PREPARED) {
        return;
    }
    /* From here this side may neither resume nor reset on its own: the source decides. */
    if (send_empty(j, TMSG_PREPARED) < 0) {
        (void) mig_handover(j, HANDOVER_EV_PEER_LOST, -EPIPE, "sending PREPARED failed");
    }
}

static void
maybe_complete(MigrationJob *j)
{
    char why[512];
    int r;

    if (!j->stream_end_received || j->peer_gone_ns || j->phase == PHASE_COMPLETING ||
        mig_is_failing(j)) {
        return;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        MigDevice *md = &j->devs[i];
        uint64_t got = atomic_load(&md->precopy_bytes) + atomic_load(&md->stopcopy_bytes);
        if (!md->done) {
            return;
        }
        if (got != j->end_totals[i].bytes || atomic_load(&md->records) != j->end_totals[i].records) {
            mig_fail(j, -EBADMSG, "device '%s': received %llu bytes in %llu records, the "
                     "source's end says %llu in %llu", md->device->id, (unsigned long long) got,
                     (unsigned long long) atomic_load(&md->records),
                     (unsigned long long) j->end_totals[i].bytes,
                     (unsigned long long) j->end_totals[i].records);
            return;
        }
    }
    r = mig_restore_irqs(j, why, sizeof(why));
    if (r < 0) {
        mig_fail(j, r, "%s", why);
        return;
    }
    if (mig_set_phase(j, PHASE_COMPLETING) >= 0) {
        (void) mig_group_transition(j, DEVICE_STATE_STOP, "the devices refused the migrated state",
                                    on_stop_entered);
    }
}

/* ---- control (worker) ---- */

static void
control_run(MigWork *w)
{
    MigrationJob *j = w->job;
    uint32_t max = TRANSPORT_MAX_MESSAGE;
    char text[516];
    int r;

    w->msg = malloc(max);
    while (w->msg && !atomic_load(&j->control_stop)) {
        r = transport_wait_readable(j->ctl_fd, MIGRATION_PEER_SILENCE_MS);
        if (r == 0) {
            (void) snprintf(w->error, sizeof(w->error), "no word from the source for %u ms",
                            MIGRATION_PEER_SILENCE_MS);
            w->r = -ETIMEDOUT;
            return;
        }
        r = r < 0 ? r : transport_recv(j->ctl_fd, &w->msg_type, w->msg, max - 1, &w->msg_size);
        if (r < 0) {
            (void) snprintf(w->error, sizeof(w->error), "lost the source (control channel): %s",
                            transport_strerror(r));
            w->r = r;
            return;
        }
        if (w->msg_type == TMSG_PING) {
            continue;
        }
        if (w->msg_type == TMSG_FAIL) {
            (void) snprintf(w->error, sizeof(w->error), "the source failed: %s",
                            handshake_text(w->msg, w->msg_size, 512, text, sizeof(text)));
        } else {
            (void) snprintf(w->error, sizeof(w->error), "the source sent %s (%u bytes) out of "
                            "turn on the control channel",
                            transport_message_name(w->msg_type) ?: "an unknown message",
                            w->msg_size);
        }
        return;
    }
    w->r = w->msg ? -ECANCELED : -ENOMEM;
}

static int
take_stream_end(MigrationJob *j, const MigWork *w)
{
    j->end_totals = calloc(j->n_devs, sizeof(*j->end_totals));
    if (!j->end_totals) {
        return -ENOMEM;
    }
    return handshake_parse_stream_end(w->msg, w->msg_size, (uint32_t) j->n_devs, j->end_totals);
}

static void
control_done(MigWork *w)
{
    MigrationJob *j = w->job;
    HandoverEvent ev = HANDOVER_EV_PEER_LOST;

    if (w->r == -ECANCELED) {
        return; /* the job failed or went in doubt: nothing to say */
    }
    if (w->r >= 0 && w->msg_type == TMSG_STREAM_END && !j->stream_end_received) {
        if (take_stream_end(j, w) < 0) {
            mig_fail(j, -EBADMSG, "the source's end of stream is malformed");
            return;
        }
        j->stream_end_received = true;
        if (mig_start_control(j, control_run, control_done) >= 0) { /* then the source's decision */
            maybe_complete(j);
        }
        return;
    }
    if (w->r >= 0 && handshake_handover_event(w->msg_type, w->msg_size, &ev) < 0) {
        ev = HANDOVER_EV_PEER_LOST; /* control_run returns no PING */
    }
    if (mig_handover(j, ev, w->r < 0 ? w->r : -ECONNABORTED, w->error) == HANDOVER_DO_RUN) {
        mig_dest_take_over(j);
    }
}

/* ---- data channels ---- */

static void
channel_done(MigWork *w)
{
    MigSpread *sp = w->dev->spread;

    if (mig_data_result(w, &w->job->drains) < 0) {
        return;
    }
    /* A spread device is done when every one of its channels is. */
    if (sp && ++sp->finished < sp->n) {
        return;
    }
    w->dev->done = true;
    maybe_complete(w->job);
}

/* Whether @h may open channel h->channel of its device: the device's first channel fixes
 * the count, which every other one must repeat; each channel opens once. */
static const char *
channel_problem(MigrationJob *j, const HandshakeDataHello *h)
{
    MigDevice *md = &j->devs[h->index];

    if (!md->channel_bound) {
        if (h->n_channels > 1 && device_stream_is_plugins(md->device)) {
            return "a DATA_HELLO spreading over several channels a device whose plugin parses "
                   "its stream (one channel only)";
        }
        return NULL;
    }
    if (h->n_channels != md->n_channels) {
        return "a DATA_HELLO with another channel count than the device's first";
    }
    if (h->n_channels == 1 || md->spread->bound[h->channel]) {
        return "a DATA_HELLO for a device channel that is already open";
    }
    return NULL;
}

/* Why a DATA_HELLO does not open a channel of this job, or NULL when it does. */
static const char *
data_hello_problem(MigrationJob *j, const uint8_t *msg, uint32_t size, HandshakeDataHello *h)
{
    if (handshake_parse_data_hello(msg, size, h) < 0) {
        return "a malformed DATA_HELLO";
    }
    if (!j->channel_key[0]) {
        return "a DATA_HELLO before any source was accepted";
    }
    if (!transport_token_equal(h->key, j->channel_key)) {
        return "a DATA_HELLO with a wrong key";
    }
    if (h->stream_id != j->stream_id || h->index >= j->n_devs) {
        return "a DATA_HELLO for another stream or device";
    }
    return channel_problem(j, h);
}

/* Binds the connection to its device's channel; 0 or -ENOMEM. */
static int
bind_channel(MigrationJob *j, MigDevice *md, const HandshakeDataHello *h, int *fd)
{
    if (!md->channel_bound && h->n_channels > 1 &&
        mig_spread_new(md, h->n_channels, j->stream_id, (uint32_t) j->n_devs) < 0) {
        return -ENOMEM;
    }
    md->channel_bound = true;
    if (h->channel == 0) {
        md->fd = TAKE_FD(*fd);
    } else {
        md->spread->fds[h->channel] = TAKE_FD(*fd);
    }
    if (md->spread) {
        md->spread->bound[h->channel] = true;
    }
    return 0;
}

static void
on_data_hello(MigrationJob *j, int *fd, const char *peer, const uint8_t *msg, uint32_t size)
{
    uint8_t ok[8] = {TMSG_DATA_ACCEPT, 0, 0, 0, 0, 0, 0, 0};
    HandshakeDataHello h;
    const char *problem = data_hello_problem(j, msg, size, &h);
    MigDevice *md;
    MigWork *w;
    int cfd;

    if (problem) {
        mig_log_refusal(j, peer, "%s", problem); /* the connection is just closed */
        return;
    }
    md = &j->devs[h.index];
    if (bind_channel(j, md, &h, fd) < 0) {
        mig_fail(j, -ENOMEM, "cannot receive device '%s'", md->device->id);
        return;
    }
    cfd = h.channel == 0 ? md->fd : md->spread->fds[h.channel];
    (void) transport_set_timeout(cfd, 0); /* liveness comes from the control channel */
    (void) transport_send_nowait(cfd, ok, sizeof(ok));
    w = mig_work_new(j, md, md->spread ? mig_channel_receive_spread : mig_channel_receive,
                     channel_done);
    if (w) {
        w->channel = h.channel;
    }
    if (mig_queue(j, w) < 0) {
        mig_fail(j, -ENOMEM, "cannot start receiving device '%s'", md->device->id);
        return;
    }
    j->drains++;
}

/* ---- HELLO ---- */

static void
on_resuming_entered(MigrationJob *j, const GroupRun *run)
{
    uint8_t msg[8 + HANDSHAKE_ACCEPT_SIZE] = {TMSG_ACCEPT, 0, 0, 0, HANDSHAKE_ACCEPT_SIZE, 0, 0, 0};

    if (run->r < 0) {
        refuse(j->ctl_fd, "the destination's devices could not enter resuming");
        mig_fail(j, run->r, "entering resuming failed: %s", run->error);
        return;
    }
    if (j->phase != PHASE_CONNECTING) {
        return;
    }
    handshake_encode_accept(j->channel_key, msg + 8);
    (void) transport_send_nowait(j->ctl_fd, msg, sizeof(msg));
    (void) mig_start_control(j, control_run, control_done);
}

static void
on_hello(MigrationJob *j, int *fd, const char *peer, const uint8_t *msg, uint32_t size)
{
    _cleanup_free_ StreamManifestDevice *devs = calloc(STREAM_MAX_DEVICES, sizeof(*devs));
    StreamManifest src = {.devices = devs};
    char why[REFUSE_MAX + 1] = "";
    uint64_t stream_id = 0;
    int r;

    if (!devs) {
        mig_log_refusal(j, peer, "no memory to read its HELLO");
        return;
    }
    r = handshake_parse_hello(msg, size, dest_hello_secret(j), &src, &stream_id, why, sizeof(why));
    if (r == -EPERM || r == -ENOMEM) {
        /* Not the token (or not read): a stranger, or a source given the wrong token. Nothing
         * changes: the job waits on for the right one (issue 11 item 3). */
        mig_log_refusal(j, peer, "%s", r == -ENOMEM ? "no memory to read its HELLO" : why);
        refuse(*fd, why);
        return;
    }
    j->token_used = true; /* single use from here on, whatever the manifest says */
    j->stream_id = stream_id;
    if (r >= 0) {
        r = mig_match_manifest(j, &src, why, sizeof(why));
    }
    if (r < 0) {
        refuse(*fd, why);
        mig_fail(j, r, "refused the source's manifest: %s", why);
        return;
    }
    /* The peer is the source from now on, no longer the address we listen on. */
    (void) snprintf(j->peer, sizeof(j->peer), "%s", peer);
    j->ctl_fd = TAKE_FD(*fd);
    (void) transport_new_token(j->channel_key);
    (void) mig_set_phase(j, PHASE_CONNECTING);
    (void) mig_group_transition(j, DEVICE_STATE_RESUMING, /* fail_what= */ NULL,
                                on_resuming_entered);
}

/* A dry run (migrate --dry-run): the same question as HELLO, answered with every mismatch,
 * and nothing else: no device moves, the token stays unspent, the job keeps waiting. The
 * answer is sent from the loop without blocking: it is small (HANDSHAKE_REPORT_MAX) and the
 * socket's buffer is empty. */
static void
on_check(MigrationJob *j, int fd, const char *peer, const uint8_t *msg, uint32_t msg_size)
{
    _cleanup_free_ StreamManifestDevice *devs = calloc(STREAM_MAX_DEVICES, sizeof(*devs));
    _cleanup_free_ CompatReport *report = calloc(1, sizeof(*report));
    _cleanup_free_ uint8_t *out = malloc(HANDSHAKE_REPORT_MAX + 8);
    StreamManifest src = {.devices = devs};
    char why[REFUSE_MAX + 1] = "";
    uint64_t stream_id;
    size_t size;
    int r;

    if (!devs || !report || !out) {
        mig_log_refusal(j, peer, "no memory to read its dry run");
        return;
    }
    r = handshake_parse_hello(msg, msg_size, dest_hello_secret(j), &src, &stream_id, why, sizeof(why));
    if (r == -EPERM || r == -ENOMEM) {
        mig_log_refusal(j, peer, "a dry run: %s", r == -ENOMEM ? "no memory to read it" : why);
    }
    if (r >= 0) {
        r = mig_check_manifest(j, &src, report, why, sizeof(why));
    }
    if (r < 0) {
        refuse(fd, why);
        return;
    }
    log_job_info(j, "Migration %s: a dry run from %s: %u mismatch(es); nothing moved, the token "
                 "stays valid.", j->id, peer, report->total);
    size = handshake_encode_report(report, out + 8);
    put_le32(out, TMSG_CHECK_REPORT);
    put_le32(out + 4, (uint32_t) size);
    (void) transport_send_nowait(fd, out, size + 8);
}

void
mig_dest_first_message(MigrationJob *j, int *fd, const char *peer, uint32_t type,
                       const uint8_t *msg, uint32_t size)
{
    if (mig_is_failing(j)) {
        mig_log_refusal(j, peer, "the migration is over");
    } else if (type == TMSG_HELLO && j->phase == PHASE_WAITING && !j->token_used) {
        on_hello(j, fd, peer, msg, size);
    } else if (type == TMSG_HELLO) {
        /* A second source while one is connected: the token is single use. */
        mig_log_refusal(j, peer, "a HELLO while a source is connected");
        refuse(*fd, "this migration's token was already used (another source is connected)");
    } else if (type == TMSG_CHECK && j->phase == PHASE_WAITING && !j->token_used) {
        on_check(j, *fd, peer, msg, size);
    } else if (type == TMSG_CHECK) {
        mig_log_refusal(j, peer, "a dry run after the migration started");
        refuse(*fd, "this migration's token was already used: a dry run asks before the "
               "migration starts");
    } else {
        on_data_hello(j, fd, peer, msg, size);
    }
}

/* The destination learns the source's phase from the data: pre-copy records flowing, then
 * stop-copy records (the switchover). */
static void
dest_follow_phase(MigrationJob *j)
{
    bool precopy = false, stopcopy = false;

    if (j->phase != PHASE_CONNECTING && j->phase != PHASE_PRECOPY) {
        return;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        precopy = precopy || atomic_load(&j->devs[i].precopy_bytes) > 0;
        stopcopy = stopcopy || atomic_load(&j->devs[i].stopcopy_bytes) > 0;
    }
    if (stopcopy) {
        (void) mig_set_phase(j, PHASE_SWITCHOVER);
    } else if (precopy && j->phase == PHASE_CONNECTING) {
        (void) mig_set_phase(j, PHASE_PRECOPY);
    }
}

static void
dest_tick(uv_timer_t *t)
{
    MigrationJob *j = t->data;

    (void) mig_update_rates(j);
    mig_check_peer_gone(j);
    mig_accept_sweep(j, clock_now_ns());
    dest_follow_phase(j);
    if (j->phase == PHASE_WAITING &&
        clock_now_ns() - j->start_ns > (uint64_t) j->opts.timeout_ms * 1000000ull) {
        mig_fail(j, -ETIMEDOUT, "no source connected within %u ms", j->opts.timeout_ms);
        mig_maybe_finish_failure(j);
    }
}

/* Listens for this one migration: the listening socket and its poll belong to the job. */
static int
dest_listen(MigrationJob *j, const char *listen, char *bound, size_t bound_size, char *err,
            size_t err_size)
{
    _cleanup_close_ int fd = -EBADF;
    char at[TRANSPORT_ADDRESS_MAX];
    int r;

    /* A unix socket's file is confined like every file: in an allowed directory, never an
     * existing file, bound through its opened directory, unlinked only while it is ours. */
    if (strncmp(listen, "unix:", 5) == 0) {
        memcpy(at, "unix:", 5);
        r = files_socket_prepare(&j->manager->files, listen + 5, &j->listen_socket, at + 5,
                                 sizeof(at) - 5, err, err_size);
        if (r < 0) {
            return r;
        }
        listen = at;
    }
    r = transport_listen(listen, &fd, bound, bound_size, err, err_size);
    if (r < 0) {
        return r == -EINVAL ? r : -EADDRNOTAVAIL;
    }
    if (j->listen_socket.spot.dirfd >= 0) {
        files_socket_bound(&j->listen_socket);
        (void) snprintf(bound, bound_size, "unix:%s", j->listen_socket.spot.path);
    }
    (void) snprintf(j->peer, sizeof(j->peer), "%s", bound);
    j->listen_fd = TAKE_FD(fd);
    return mig_accept_start(j);
}

static_assert(MIGRATION_ADDRESS_MAX == TRANSPORT_ADDRESS_MAX, "one address size");
static_assert(MIGRATION_REACHABLE_MAX <= TRANSPORT_REACHABLE_MAX, "one address count");

int
migration_route_source(const char *peer, char *ret_host, size_t size, char *err,
                       size_t err_size)
{
    int r = transport_route_source(peer, ret_host, size, err, err_size);

    return r < 0 ? -EINVAL : 0; /* a peer this host cannot reach is a wrong argument */
}

void
migration_incoming_addresses(const MigrationJob *j, const char *route_host,
                             char (*ret)[MIGRATION_ADDRESS_MAX], size_t max, size_t *ret_n)
{
    if (transport_reachable_addresses(j->listen_fd, j->peer, route_host, ret, max, ret_n) < 0 ||
        *ret_n == 0) {
        /* getifaddrs() failed, or no interface is up: the bound address is still true. */
        (void) snprintf(ret[0], MIGRATION_ADDRESS_MAX, "%s", j->peer);
        *ret_n = max > 0;
    }
}

int
migration_prepare_incoming(Manager *m, const char *group, const char *listen, bool auto_resume,
                           uint32_t timeout_ms, TlsMode tls, MigrationJob **ret, char *bound,
                           size_t bound_size, char *token, size_t token_size, char *err,
                           size_t err_size)
{
    MigJobSetup setup = {.role = MIGRATION_DESTINATION, .subject = MIGRATION_SUBJECT_GROUP,
                         .name = group};
    MigrationJob *j = NULL;
    int r;

    r = mig_job_new(m, &setup, &j, err, err_size);
    if (r < 0) {
        return r;
    }
    j->handshake_ms = m->migration_handshake_ms ? m->migration_handshake_ms
                                                : MIGRATION_HANDSHAKE_MS;
    r = dest_listen(j, listen, bound, bound_size, err, err_size);
    if (r < 0) {
        mig_job_discard(j);
        return r;
    }
    j->auto_resume = auto_resume;
    j->opts.timeout_ms = timeout_ms ? timeout_ms : PREPARE_TIMEOUT_DEFAULT_MS;
    j->opts.tls = tls;
    (void) transport_new_token(j->token);
    tls_hello_proof(j->token, j->hello_proof);
    j->tls_secrets = (TlsSecrets){.mode = tls, .token = j->token, .key = j->channel_key};
    (void) mig_set_phase(j, PHASE_WAITING);
    mig_tick_start(j, dest_tick);
    (void) snprintf(token, token_size, "%s", j->token);
    *ret = j;
    return 0;
}
