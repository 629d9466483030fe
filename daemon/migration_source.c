/* SPDX-License-Identifier: MIT */
/*
 * migration_source — StartMigration, on the source daemon.
 *
 * The plan, each step finishing on the loop:
 *   connect     (worker) control connection, HELLO with token + stream header + manifest,
 *               ACCEPT or REFUSE; then the data connections (DATA_HELLO with the channel
 *               key): one per device, or several for a large device (core/spread.h).
 *               Nothing has been stopped yet, so a refusal needs no rollback.
 *   control     (worker, for the whole job) PING every second, returns with the next message
 *               from the destination (PREPARED, DONE, FAIL) or when the connection ends.
 *   pre-copy    group -> PRE_COPY (P2P-safe), one pump per device until the tick finds the
 *               group converged (core/switchover: the reported stop-copy data moves within
 *               the downtime target at the measured rate) or max_precopy_ms passed, with the
 *               reason in the job: then switchover (auto) or READY.
 *   switchover  pumps stop, group -> STOP_COPY (P2P-safe), one drain per data channel to the
 *               device's end (pre-copy uses a device's first channel only),
 *               STREAM_END on the control connection, wait for PREPARED (timeout_ms).
 *   commit      PREPARED: COMMIT, the commit point (core/handover.h): from here this source
 *               never resumes on its own; group -> STOP; wait for DONE (timeout_ms). DONE:
 *               downtime ends, COMPLETED. The destination lost after COMMIT: in doubt.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/switchover.h"
#include "handshake.h"
#include "tls.h"
#include "log_object.h"
#include "manager.h"
#include "migration_internal.h"
#include "plugin_host.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/pages.h"

static void begin_switchover(MigrationJob *j);
static void control_done(MigWork *w);

/* ---- connect (worker) ---- */

int
mig_encode_hello(const char *token, uint64_t stream_id, const StreamManifest *mf, uint8_t **ret,
                 size_t *ret_size)
{
    size_t mlen = stream_manifest_size(mf);
    size_t size = TRANSPORT_TOKEN_HEX + STREAM_HEADER_SIZE + STREAM_RECORD_HEADER_SIZE + mlen;
    _cleanup_free_ uint8_t *msg = NULL;
    StreamHeader sh = {.stream_id = stream_id};
    StreamRecordHeader rh = {.type = STREAM_RECORD_MANIFEST, .device = STREAM_DEVICE_NONE,
                             .length = (uint32_t) mlen};
    uint8_t *p;

    if (size > TRANSPORT_MAX_MESSAGE) {
        return -E2BIG;
    }
    msg = malloc(size);
    if (!msg) {
        return -ENOMEM;
    }
    memcpy(msg, token, TRANSPORT_TOKEN_HEX);
    p = msg + TRANSPORT_TOKEN_HEX;
    stream_encode_header(&sh, p);
    p += STREAM_HEADER_SIZE;
    if (stream_encode_manifest(mf, p + STREAM_RECORD_HEADER_SIZE, mlen) < 0) {
        return -E2BIG;
    }
    stream_encode_record_header(&rh, p + STREAM_RECORD_HEADER_SIZE, p);
    *ret = TAKE_PTR(msg);
    *ret_size = size;
    return 0;
}

static int
send_hello(MigrationJob *j, int fd)
{
    _cleanup_free_ uint8_t *msg = NULL;
    size_t size;
    int r;

    char proof[TRANSPORT_TOKEN_HEX + 1];

    /* With TLS the handshake has proved the token: HELLO carries a MAC of it, never the token. */
    if (j->opts.tls != TLS_MODE_OFF) {
        tls_hello_proof(j->token, proof);
    }
    r = mig_encode_hello(j->opts.tls == TLS_MODE_OFF ? j->token : proof, j->stream_id, &j->manifest, &msg,
                         &size);
    if (r < 0) {
        return r == -ENOMEM ? -E2BIG : r;
    }
    return transport_send(fd, TMSG_HELLO, msg, (uint32_t) size);
}

/* ACCEPT: the channels' key, and the destination's protocol version, which must be ours. */
static int
check_accept(MigWork *w, const uint8_t *buf, uint32_t size, const char *what)
{
    uint32_t version = 0;

    if (handshake_parse_accept(buf, size, w->job->channel_key, &version) < 0) {
        (void) snprintf(w->error, sizeof(w->error), "%s: the peer at '%s' answered a malformed "
                        "ACCEPT: run the same vfio-migd version on both hosts", what, w->job->peer);
        return -EPROTO;
    }
    if (version < TRANSPORT_PROTOCOL_OLDEST || version > TRANSPORT_PROTOCOL_VERSION) {
        /* Said to the destination as well (FAIL), so that both logs name the cause. */
        (void) snprintf(w->error, sizeof(w->error), "the peer at '%s' speaks vfio-migd "
                        "control protocol %u, this source %u: %s; run the same vfio-migd version "
                        "on both hosts", w->job->peer, version, TRANSPORT_PROTOCOL_VERSION,
                        version < TRANSPORT_PROTOCOL_OLDEST
                            ? "its hand-over is no commit (a lost message could leave the VM "
                              "running on both hosts)"
                            : "a newer protocol than this daemon knows");
        return -EPROTONOSUPPORT;
    }
    w->job->peer_protocol = version;
    return 0;
}

/* Sends @type, waits for the answer; REFUSE/FAIL text lands in @w->error. */
static int
exchange(MigWork *w, int fd, uint32_t want, const char *what)
{
    uint8_t buf[1024];
    char text[1024], why[768];
    uint32_t type, size;
    int r;

    r = transport_recv_answer(fd, w->job->peer, "data", &type, buf, sizeof(buf) - 1, &size, why,
                              sizeof(why));
    if (r < 0) {
        (void) snprintf(w->error, sizeof(w->error), "%s: %s", what, why);
        return r;
    }
    if (type == TMSG_REFUSE || type == TMSG_FAIL) {
        (void) snprintf(w->error, sizeof(w->error), "the destination refused: %s",
                        handshake_text(buf, size, 960, text, sizeof(text)));
        return -ECONNREFUSED;
    }
    if (type != want || (want == TMSG_ACCEPT && size != TRANSPORT_TOKEN_HEX &&
                         size != HANDSHAKE_ACCEPT_SIZE)) {
        /* A vfio-migd message, but not the answer this daemon's protocol gives here. */
        (void) snprintf(w->error, sizeof(w->error), "%s: the peer at '%s' answered %s (%u bytes) "
                        "where %s was due: it speaks another version of the vfio-migd protocol; "
                        "run the same vfio-migd version on both hosts", what, w->job->peer,
                        transport_message_name(type), size, transport_message_name(want));
        return -EPROTO;
    }
    if (want == TMSG_ACCEPT) {
        return check_accept(w, buf, size, what);
    }
    return 0;
}

/* Connects data channel @channel of device @index and sends its DATA_HELLO; the answer is
 * read later (await_data_accept()), so that several handshakes are in flight at once. */
static int
send_data_hello(MigWork *w, uint32_t index, uint32_t channel, uint32_t n, int *ret_fd)
{
    MigrationJob *j = w->job;
    HandshakeDataHello h = {.stream_id = j->stream_id, .index = index, .channel = channel,
                            .n_channels = n};
    uint8_t hello[HANDSHAKE_DATA_HELLO_SPREAD_SIZE];
    _cleanup_(transport_closep) int fd = -EBADF;
    size_t size;
    int r;

    r = transport_connect(j->peer, (int) j->opts.timeout_ms, &fd, w->error, sizeof(w->error));
    if (r < 0) {
        return r;
    }
    (void) transport_set_timeout(fd, (int) j->opts.timeout_ms);
    if (j->opts.tls != TLS_MODE_OFF) {
        r = tls_client_handshake(fd, j->opts.tls, TLS_PSK_DATA, j->channel_key, j->peer,
                                 w->error, sizeof(w->error));
        if (r < 0) {
            return r;
        }
    }
    memcpy(h.key, j->channel_key, sizeof(h.key));
    size = handshake_encode_data_hello(&h, j->peer_protocol, hello);
    r = transport_send(fd, TMSG_DATA_HELLO, hello, (uint32_t) size);
    if (r < 0) {
        (void) snprintf(w->error, sizeof(w->error), "opening a data channel: %s",
                        transport_strerror(r));
        return r;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static int
await_data_accept(MigWork *w, int fd)
{
    return exchange(w, fd, TMSG_DATA_ACCEPT, "opening a data channel");
}

/* The automatic channel count of device @md (core/spread.h), with the destination on this
 * host or not. */
static uint32_t
auto_channels(const MigrationJob *j, const MigDevice *md, bool same_host)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    return spread_channels_auto(md->data_size, cpus > 0 ? (uint32_t) cpus : 1,
                                (uint32_t) j->n_devs, same_host);
}

/* How many channels device @md uses with this destination: a protocol-2 one takes one; one
 * on this host, no more than the automatic count for a shared host, unless --channels said. */
static uint32_t
channels_with_peer(const MigrationJob *j, const MigDevice *md)
{
    if (j->peer_protocol < 3) {
        return 1;
    }
    if (j->peer_same_host && j->opts.channels == 0) {
        return MIN(md->n_channels, auto_channels(j, md, true));
    }
    return md->n_channels;
}

/* Device @md's data buffers: its own, and one more per further channel. */
static int
make_data_buffers(MigWork *w, MigDevice *md, uint32_t n)
{
    int r = mig_device_buffer(md);

    for (uint32_t c = 1; r >= 0 && c < n; c++) {
        md->spread->bufs[c] = pages_alloc(MIGRATION_DATA_CHUNK);
        r = md->spread->bufs[c] ? 0 : -ENOMEM;
    }
    if (r < 0) {
        (void) snprintf(w->error, sizeof(w->error), "no memory for the data buffers");
    }
    return r;
}

/* At most this many DATA_HELLOs wait for their answer at once: the destination lets one
 * address hold MIGRATION_PREAUTH_PER_PEER connections unauthenticated (migration_accept.c);
 * a round trip each, one after another, was 0.3-0.5 ms a channel on the project's VM. */
#define DATA_HELLOS_IN_FLIGHT MIGRATION_PREAUTH_PER_PEER

/* Every device's data channels (their fds in @fds, SPREAD_MAX_CHANNELS per device, taken
 * by connect_done()), and their buffers while the last answers come: not in the downtime
 * (mig_device_buffer). The answers are read in the order the hellos went. */
static int
open_data_channels(MigWork *w, int *fds)
{
    MigrationJob *j = w->job;
    int *waiting[DATA_HELLOS_IN_FLIGHT];
    size_t sent = 0, answered = 0;
    int r = 0;

    for (size_t i = 0; r >= 0 && i < j->n_devs && !atomic_load(&j->abort); i++) {
        uint32_t n = channels_with_peer(j, &j->devs[i]);

        for (uint32_t c = 0; r >= 0 && c < n; c++) {
            int *fd = &fds[i * SPREAD_MAX_CHANNELS + c];

            if (sent - answered == DATA_HELLOS_IN_FLIGHT) {
                r = await_data_accept(w, *waiting[answered++ % DATA_HELLOS_IN_FLIGHT]);
            }
            r = r < 0 ? r : send_data_hello(w, (uint32_t) i, c, n, fd);
            if (r >= 0) {
                waiting[sent++ % DATA_HELLOS_IN_FLIGHT] = fd;
            }
        }
    }
    for (size_t i = 0; r >= 0 && i < j->n_devs && !atomic_load(&j->abort); i++) {
        r = make_data_buffers(w, &j->devs[i], channels_with_peer(j, &j->devs[i]));
    }
    while (r >= 0 && answered < sent && !atomic_load(&j->abort)) {
        r = await_data_accept(w, *waiting[answered++ % DATA_HELLOS_IN_FLIGHT]);
    }
    return r;
}

static void
connect_run(MigWork *w)
{
    MigrationJob *j = w->job;
    int r;

    r = transport_connect(j->peer, (int) j->opts.timeout_ms, &w->fd, w->error, sizeof(w->error));
    if (r >= 0) {
        j->peer_same_host = transport_same_host(w->fd); /* read by connect_done() after */
        (void) transport_set_timeout(w->fd, (int) j->opts.timeout_ms);
        r = tls_client_handshake(w->fd, j->opts.tls, TLS_PSK_CONTROL, j->token, j->peer,
                                 w->error, sizeof(w->error));
    }
    if (r >= 0) {
        r = send_hello(j, w->fd);
        if (r == -E2BIG) {
            (void) snprintf(w->error, sizeof(w->error), "the manifest of '%s' is larger than "
                            "a control message may be (%u bytes)", j->group_name,
                            TRANSPORT_MAX_MESSAGE);
        } else if (r < 0) {
            (void) snprintf(w->error, sizeof(w->error), "sending the manifest to '%s' failed: %s",
                            j->peer, transport_strerror(r));
        }
    }
    if (r >= 0) {
        r = exchange(w, w->fd, TMSG_ACCEPT, "sending the manifest");
    }
    if (r >= 0) {
        r = open_data_channels(w, (int *) w->msg);
    }
    w->r = r;
}

/* ---- control (worker) ---- */

static void
control_run(MigWork *w)
{
    MigrationJob *j = w->job;
    uint8_t buf[1024];
    char text[1024];
    uint32_t type, size;
    int r;

    while (!atomic_load(&j->control_stop)) {
        r = transport_wait_readable(j->ctl_fd, 1000);
        if (r == 0) {
            pthread_mutex_lock(&j->ctl_lock);
            r = transport_send(j->ctl_fd, TMSG_PING, NULL, 0);
            pthread_mutex_unlock(&j->ctl_lock);
            if (r >= 0) {
                continue;
            }
        } else if (r > 0) {
            r = transport_recv(j->ctl_fd, &type, buf, sizeof(buf) - 1, &size);
        }
        if (r < 0) {
            (void) snprintf(w->error, sizeof(w->error), "lost the destination (control channel): "
                            "%s", transport_strerror(r));
            w->r = r;
            return;
        }
        w->msg_type = type;
        w->msg_size = size;
        if (type == TMSG_FAIL) {
            (void) snprintf(w->error, sizeof(w->error), "the destination failed: %s",
                            handshake_text(buf, size, 512, text, sizeof(text)));
        } else {
            (void) snprintf(w->error, sizeof(w->error), "the destination sent %s (%u bytes) "
                            "out of turn on the control channel",
                            transport_message_name(type) ?: "an unknown message", size);
        }
        return;
    }
    w->r = -ECANCELED;
}

static void
on_source_stopped(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        /* The destination has the VM: report, but the migration succeeded. */
        log_job_warning(j, "Migration %s: the source group could not be moved to stop after the "
                        "hand-over: %s.", j->id, run->error);
    }
    mig_complete(j);
}

void
mig_source_hand_over(MigrationJob *j)
{
    if (mig_group_transition(j, DEVICE_STATE_STOP, /* fail_what= */ NULL,
                             on_source_stopped) < 0) {
        mig_complete(j);
    }
}

/* PREPARED: the destination holds every byte, validated, and waits. The commit point: the
 * devices stay in STOP_COPY, stopped, until DONE (or a resolve) says where the VM is. */
static void
commit(MigrationJob *j)
{
    uint8_t msg[8] = {TMSG_COMMIT, 0, 0, 0, 0, 0, 0, 0};
    int n;

    j->commit_ns = clock_now_ns();
    log_job_info(j, "Migration %s: the destination is prepared; committed: this source will "
                 "not resume the VM on its own.", j->id);
    pthread_mutex_lock(&j->ctl_lock);
    n = transport_send_nowait(j->ctl_fd, msg, sizeof(msg));
    pthread_mutex_unlock(&j->ctl_lock);
    if (n < 0) {
        /* The destination may never learn it: it stays in doubt, and so does this side. */
        (void) mig_handover(j, HANDOVER_EV_PEER_LOST, n,
                            "sending COMMIT failed");
        return;
    }
    (void) mig_start_control(j, control_run, control_done);
}

/* Milliseconds from @from to @to, 0 when a step did not happen (@from or @to unset). */
static double
step_ms(uint64_t from, uint64_t to)
{
    return from && to > from ? (double) (to - from) / 1e6 : 0;
}

static void
control_done(MigWork *w)
{
    MigrationJob *j = w->job;
    HandoverEvent ev = HANDOVER_EV_PEER_LOST;
    HandoverAction a;

    if (w->r == -ECANCELED) {
        return; /* the job failed or went in doubt: nothing to say */
    }
    if (w->r >= 0 && handshake_handover_event(w->msg_type, w->msg_size, &ev) < 0) {
        ev = HANDOVER_EV_PEER_LOST; /* control_run returns no PING */
    }
    /* PREPARED comes only after STREAM_END, which the loop sends once every drain ended and
     * then moves the job to COMPLETING (send_stream_end()). */
    if (ev == HANDOVER_EV_GOT_PREPARED && j->phase != PHASE_COMPLETING) {
        ev = HANDOVER_EV_PEER_LOST;
        (void) snprintf(w->error, sizeof(w->error), "the destination said PREPARED before the "
                        "switchover ended");
    }
    a = mig_handover(j, ev, w->r < 0 ? w->r : -EPROTO, w->error);
    if (a == HANDOVER_DO_SEND_COMMIT) {
        if (mig_set_phase(j, PHASE_COMPLETING) >= 0) {
            commit(j);
        }
    } else if (a == HANDOVER_DO_GIVE_UP) {
        j->end_ns = clock_now_ns();
        log_job_info(j, "Migration %s: the destination has the VM; downtime %.1f ms: group to "
                     "stop_copy %.1f, data %.1f, end of stream to prepared %.1f, commit to "
                     "done %.1f.", j->id, step_ms(j->switchover_ns, j->end_ns),
                     step_ms(j->switchover_ns, j->stopcopy_ns),
                     step_ms(j->stopcopy_ns, j->data_end_ns),
                     step_ms(j->data_end_ns, j->commit_ns), step_ms(j->commit_ns, j->end_ns));
        mig_source_hand_over(j);
    }
}

/* ---- pre-copy ---- */

static void
pump_done(MigWork *w)
{
    MigrationJob *j = w->job;

    if (mig_data_result(w, &j->pumps) < 0) {
        return;
    }
    if (j->pumps == 0 && j->phase == PHASE_SWITCHOVER && !j->peer_gone_ns) {
        begin_switchover(j);
    }
}

static void
on_precopy_entered(MigrationJob *j, const GroupRun *run)
{
    (void) run; /* succeeded: a failure failed the job */
    if (mig_is_over(j) || j->phase == PHASE_ROLLING_BACK) {
        return;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        if (mig_queue(j, mig_work_new(j, &j->devs[i], mig_pump_precopy, pump_done)) >= 0) {
            j->pumps++;
        } else {
            mig_fail(j, -ENOMEM, "cannot start the pre-copy of device '%s'",
                     j->devs[i].device->id);
            return;
        }
    }
}

/* core/switchover decides from what the devices last reported (initial + dirty, the
 * stop-copy data if the switchover started now) and the pre-copy's measured rate: everything
 * sent since pre-copy began over the time it took. An average, idle waits included, so it
 * errs towards waiting longer, never towards a downtime over the target. The reason goes
 * into the job, for `job`, `jobs` and the log. */
static SwitchoverDecision
precopy_decide(MigrationJob *j, uint64_t now)
{
    uint64_t elapsed = now - j->precopy_start_ns, moved = 0;
    SwitchoverInput in = {.initial_sent = true, .elapsed_ms = elapsed / 1000000u,
                          .target_ms = j->opts.downtime_target_ms,
                          .max_ms = j->opts.max_precopy_ms};
    SwitchoverDecision d;

    for (size_t i = 0; i < j->n_devs; i++) {
        MigDevice *md = &j->devs[i];

        in.initial_sent = in.initial_sent && atomic_load(&md->initial_sent);
        in.remaining_bytes += atomic_load(&md->initial_bytes) + atomic_load(&md->dirty_bytes);
        moved += atomic_load(&md->precopy_bytes);
    }
    in.rate = switchover_rate(moved, elapsed);
    d = switchover_decide(&in, j->switchover_reason, sizeof(j->switchover_reason));
    if (d == SWITCHOVER_NOW) {
        j->precopy_converged = true;
        log_job_info(j, "Migration %s: %s.", j->id, j->switchover_reason);
    } else if (d == SWITCHOVER_GIVE_UP) {
        log_job_warning(j, "Migration %s: %s; the downtime will exceed the target.", j->id,
                        j->switchover_reason);
    }
    return d;
}

static void
source_tick(uv_timer_t *t)
{
    MigrationJob *j = t->data;
    uint64_t now = clock_now_ns();

    (void) mig_update_rates(j);
    mig_check_peer_gone(j);
    if (j->phase == PHASE_COMPLETING && j->handover == HANDOVER_MOVING &&
        now - j->switchover_ns > (uint64_t) j->opts.timeout_ms * 1000000ull) {
        mig_fail(j, -ETIMEDOUT, "the destination was not prepared within %u ms",
                 j->opts.timeout_ms);
        mig_maybe_finish_failure(j); /* no worker may be left to trigger it */
        return;
    }
    if (j->phase == PHASE_COMPLETING && j->handover == HANDOVER_COMMITTED &&
        now - j->commit_ns > (uint64_t) j->opts.timeout_ms * 1000000ull) {
        char text[128];
        (void) snprintf(text, sizeof(text), "no DONE from the destination within %u ms of COMMIT",
                        j->opts.timeout_ms);
        (void) mig_handover(j, HANDOVER_EV_PEER_LOST, -ETIMEDOUT, text);
        return;
    }
    if (j->phase != PHASE_PRECOPY) {
        return;
    }
    if (precopy_decide(j, now) == SWITCHOVER_CONTINUE) {
        return;
    }
    if (j->opts.manual_switchover) {
        (void) mig_set_phase(j, PHASE_READY);
    } else {
        begin_switchover(j);
    }
}

/* ---- switchover ---- */

/* STREAM_END with every device's totals, sent from the loop the moment the last drain
 * reported, as COMMIT is: a worker queued for it waited for a CPU like any other thread, up to
 * 10 ms of the downtime on a loaded machine (bench/README.md, issue 12). The control
 * connection carries nothing else but the control worker's PINGs, under the same lock, so
 * these 4 KiB at most (256 devices) go into an empty socket buffer at once; a short send is a
 * failure (transport_send_nowait(): on a TLS socket, one record). Moves the job to
 * COMPLETING. */
static int
send_stream_end(MigrationJob *j)
{
    size_t plen = stream_end_size((uint32_t) j->n_devs);
    size_t size = TRANSPORT_HEADER_SIZE + STREAM_RECORD_HEADER_SIZE + plen;
    _cleanup_free_ uint8_t *msg = malloc(size);
    _cleanup_free_ StreamDeviceTotals *t = calloc(j->n_devs, sizeof(*t));
    StreamRecordHeader rh = {.type = STREAM_RECORD_STREAM_END, .device = STREAM_DEVICE_NONE,
                             .length = (uint32_t) plen, .sequence = 1};
    uint8_t *rec = msg + TRANSPORT_HEADER_SIZE;
    int r;

    if (!msg || !t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        t[i].bytes = atomic_load(&j->devs[i].precopy_bytes) +
                     atomic_load(&j->devs[i].stopcopy_bytes);
        t[i].records = atomic_load(&j->devs[i].records);
    }
    (void) stream_encode_stream_end(t, (uint32_t) j->n_devs, rec + STREAM_RECORD_HEADER_SIZE,
                                    plen);
    stream_encode_record_header(&rh, rec + STREAM_RECORD_HEADER_SIZE, rec);
    transport_encode_header(TMSG_STREAM_END, (uint32_t) (size - TRANSPORT_HEADER_SIZE), msg);
    pthread_mutex_lock(&j->ctl_lock);
    r = transport_send_nowait(j->ctl_fd, msg, size);
    pthread_mutex_unlock(&j->ctl_lock);
    if (r < 0) {
        return r;
    }
    return mig_set_phase(j, PHASE_COMPLETING);
}

static void
drain_run(MigWork *w)
{
    w->r = w->dev->spread ? mig_drain_spread(w->dev, w->channel, w->error, sizeof(w->error))
                          : mig_drain_device(w->dev, w->dev->fd, w->error, sizeof(w->error));
}

static void
drain_done(MigWork *w)
{
    MigrationJob *j = w->job;
    MigSpread *sp = w->dev->spread;

    /* A spread device is done when every one of its channels is. */
    w->dev->done = w->r == 0 && (!sp || ++sp->finished == sp->n);
    if (mig_data_result(w, &j->drains) < 0) {
        return;
    }
    if (j->drains == 0 && j->phase == PHASE_SWITCHOVER && !j->peer_gone_ns) {
        int r;

        j->data_end_ns = clock_now_ns();
        r = send_stream_end(j);
        if (r < 0) {
            mig_fail(j, r, "sending the end of the stream failed: %s", transport_strerror(r));
        }
    }
}

static void
on_stop_copy_entered(MigrationJob *j, const GroupRun *run)
{
    (void) run; /* succeeded: a failure failed the job */
    if (j->phase != PHASE_SWITCHOVER) {
        return; /* failed meanwhile: the rollback takes over */
    }
    j->stopcopy_ns = clock_now_ns();
    mig_take_irqs(j); /* the devices are stopped: what is pending now is what moves */
    for (size_t i = 0; i < j->n_devs; i++) {
        for (uint32_t c = 0; c < j->devs[i].n_channels; c++) {
            MigWork *w = mig_work_new(j, &j->devs[i], drain_run, drain_done);
            if (w) {
                w->channel = c;
            }
            if (mig_queue(j, w) < 0) {
                mig_fail(j, -ENOMEM, "cannot start draining device '%s'", j->devs[i].device->id);
                return;
            }
            j->drains++;
        }
    }
}

/* Stops the pumps; once they have all returned, the group goes to STOP_COPY. */
static void
begin_switchover(MigrationJob *j)
{
    if (j->switchover_ns == 0) {
        j->switchover_ns = clock_now_ns();
        (void) mig_set_phase(j, PHASE_SWITCHOVER);
        atomic_store(&j->stop_pumps, true);
    }
    if (j->pumps == 0 && !j->group_busy) {
        (void) mig_group_transition(j, DEVICE_STATE_STOP_COPY, "switchover", on_stop_copy_entered);
    }
}

int
migration_switchover(MigrationJob *j, char *err, size_t err_size)
{
    if (j->role != MIGRATION_SOURCE || (j->phase != PHASE_READY && j->phase != PHASE_PRECOPY)) {
        (void) snprintf(err, err_size, "migration %s is %s; a switchover needs a source "
                        "migration in precopy or ready", j->id, mig_phase_name(j->phase));
        return -ESTALE;
    }
    log_job_info(j, "Migration %s: switchover requested.", j->id);
    if (j->phase == PHASE_PRECOPY) {
        (void) snprintf(j->switchover_reason, sizeof(j->switchover_reason),
                        "the switchover was requested after %" PRIu64 " ms of pre-copy",
                        (clock_now_ns() - j->precopy_start_ns) / 1000000u);
    }
    begin_switchover(j);
    return 0;
}

int
migration_set_rates(MigrationJob *j, const MigrationRates *rates, char *err, size_t err_size)
{
    if (j->role != MIGRATION_SOURCE) {
        (void) snprintf(err, err_size, "migration %s is not the source of a live migration: "
                        "its bandwidth is set on the daemon that sends", j->id);
        return -EINVAL;
    }
    if (j->phase < PHASE_CONNECTING || j->phase > PHASE_SWITCHOVER) {
        (void) snprintf(err, err_size, "migration %s is %s: it moves no more data, so there is "
                        "no bandwidth to set", j->id, mig_phase_name(j->phase));
        return -ESTALE;
    }
    if (rates->precopy) {
        j->opts.bandwidth_limit = *rates->precopy;
        atomic_store(&j->precopy_cap, *rates->precopy);
    }
    if (rates->stopcopy) {
        j->opts.stopcopy_bandwidth_limit = *rates->stopcopy;
        atomic_store(&j->stopcopy_cap, *rates->stopcopy);
    }
    log_job_info(j, "Migration %s: bandwidth now %" PRIu64 " B/s in pre-copy, %" PRIu64
                 " B/s in stop-copy (0: unlimited).", j->id, j->opts.bandwidth_limit,
                 j->opts.stopcopy_bandwidth_limit);
    return 0;
}

/* ---- start ---- */

static bool
all_have_precopy(const MigrationJob *j)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        if (!(j->devs[i].device->info.mig_flags & MIG_FLAG_PRE_COPY)) {
            return false;
        }
    }
    return true;
}

/* Device @md's channels as connect_run() opened them: fewer than planned with a protocol-2
 * destination (one) or one on this host (channels_with_peer()). */
static void
settle_channels(MigrationJob *j, MigDevice *md)
{
    uint32_t n = channels_with_peer(j, md);

    if (n < md->n_channels) {
        log_job_info(j, "Migration %s: device '%s' takes %u data channel(s), not %u: %s.", j->id,
                     md->device->id, n, md->n_channels,
                     j->peer_protocol < 3 ? "the destination speaks control protocol 2"
                                          : "the destination runs on this host, and the two "
                                            "daemons share its CPUs");
    }
    md->n_channels = n;
    if (n == 1) {
        mig_spread_free(TAKE_PTR(md->spread));
        return;
    }
    md->spread->n = n; /* the channels past @n were never opened: no fd, no buffer */
    log_job_info(j, "Migration %s: device '%s' goes over %u data channels.", j->id,
                 md->device->id, n);
}

static void
connect_done(MigWork *w)
{
    MigrationJob *j = w->job;
    int *fds = (int *) w->msg;

    j->ctl_fd = TAKE_FD(w->fd);
    for (size_t i = 0; i < j->n_devs; i++) {
        MigDevice *md = &j->devs[i];

        md->fd = TAKE_FD(fds[i * SPREAD_MAX_CHANNELS]);
        for (uint32_t c = 1; md->spread && c < md->spread->n; c++) {
            md->spread->fds[c] = TAKE_FD(fds[i * SPREAD_MAX_CHANNELS + c]);
        }
        if (md->spread && w->r >= 0) {
            settle_channels(j, md);
        }
    }
    if (mig_work_result(w) < 0 || mig_is_failing(j)) {
        return; /* failed, or cancelled meanwhile */
    }
    (void) transport_set_timeout(j->ctl_fd, (int) j->opts.timeout_ms);
    if (mig_start_control(j, control_run, control_done) < 0) {
        return;
    }
    if (j->opts.precopy && all_have_precopy(j)) {
        j->precopy_start_ns = clock_now_ns();
        (void) mig_set_phase(j, PHASE_PRECOPY);
        (void) mig_group_transition(j, DEVICE_STATE_PRE_COPY, "entering pre-copy failed",
                                    on_precopy_entered);
    } else {
        begin_switchover(j);
    }
}


/* ---- firmware concurrency (plugin.h max_migrating_per_parent: mlx5, 4 VFs of a PF) */

static bool
same_parent(const Device *a, const Device *b)
{
    return a && b && a->plugin == b->plugin && strcmp(a->identity.parent, b->identity.parent) == 0;
}

/* Devices like @d (same plugin, same parent) in @k. */
static unsigned
count_like(const MigrationJob *k, const Device *d)
{
    unsigned n = 0;

    for (size_t i = 0; i < k->n_devs; i++) {
        n += same_parent(k->devs[i].device, d);
    }
    return n;
}

/* Whether @j must wait for other sources to end before it starts (then @why says which
 * parent is busy), or may never start as it is (*ret_never: the group alone is over). */
static bool
parent_limit_reached(const MigrationJob *j, bool *ret_never, char *why, size_t why_size)
{
    const Manager *m = j->manager;

    for (size_t i = 0; i < j->n_devs; i++) {
        const Device *d = j->devs[i].device;
        uint32_t limit = plugin_max_migrating_per_parent(d->plugin);
        unsigned mine = count_like(j, d), others = 0;

        if (limit == 0 || !d->identity.parent[0]) {
            continue;
        }
        for (size_t k = 0; k < m->n_jobs; k++) {
            const MigrationJob *o = m->jobs[k];

            if (o != j && o->role == MIGRATION_SOURCE && !mig_is_over(o) &&
                o->phase != PHASE_NEW && o->phase != PHASE_WAITING) {
                others += count_like(o, d);
            }
        }
        if (mine + others > limit) {
            *ret_never = mine > limit;
            (void) snprintf(why, why_size, "%u devices of parent %s would migrate at once, and "
                            "plugin '%s' allows %" PRIu32 " (a firmware limit); %u of them in "
                            "other migrations", mine + others, d->identity.parent,
                            plugin_name(d->plugin), limit, others);
            return true;
        }
    }
    return false;
}

static void source_connect(MigrationJob *j);

void
mig_source_start_waiting(Manager *m)
{
    char why[256];
    bool never = false;

    for (size_t k = 0; k < m->n_jobs; k++) {
        MigrationJob *j = m->jobs[k];

        if (j->role == MIGRATION_SOURCE && j->phase == PHASE_WAITING &&
            !parent_limit_reached(j, &never, why, sizeof(why))) {
            log_job_notice(j, "Migration %s: its turn came, starting.", j->id);
            source_connect(j); /* may end other jobs: the next call starts theirs */
            return;
        }
    }
}

/* The connecting worker, with room for the data channels' fds it opens. */
static MigWork *
connect_work_new(MigrationJob *j)
{
    MigWork *w = mig_work_new(j, NULL, connect_run, connect_done);

    if (w && !(w->msg = malloc(j->n_devs * SPREAD_MAX_CHANNELS * sizeof(int)))) {
        free(w);
        return NULL;
    }
    for (size_t i = 0; w && i < j->n_devs * SPREAD_MAX_CHANNELS; i++) {
        ((int *) w->msg)[i] = -EBADF;
    }
    return w;
}

/* Each device's data channels (core/spread.h): --channels, or from its data size and the
 * CPUs; made now, so that the connecting worker only fills them in. */
static int
plan_channels(MigrationJob *j, char *err, size_t err_size)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        MigDevice *md = &j->devs[i];
        /* A plugin's stream parser (mtty, mlx5) follows one channel's bytes in order. */
        bool one = device_stream_is_plugins(md->device);
        uint32_t n = j->opts.channels ? j->opts.channels
                     : one            ? 1
                                      : auto_channels(j, md, /* same_host= */ false);

        if (n > 1 && one) {
            (void) snprintf(err, err_size, "device '%s': its plugin parses its stream, which "
                            "takes one data channel; migrate with --channels 1 (or 0: the "
                            "daemon chooses)", md->device->id);
            return -EINVAL;
        }
        if (n > 1 && mig_spread_new(md, n, j->stream_id, (uint32_t) j->n_devs) < 0) {
            (void) snprintf(err, err_size, "no memory for the data channels");
            return -ENOMEM;
        }
    }
    return 0;
}

static void
source_connect(MigrationJob *j)
{
    (void) mig_set_phase(j, PHASE_CONNECTING);
    if (mig_queue(j, connect_work_new(j)) < 0) {
        mig_fail(j, -ENOMEM, "cannot start connecting");
        mig_maybe_finish_failure(j);
    }
}

/* Connects now, or waits (phase "waiting") while a plugin's firmware limit is reached;
 * refuses a group that could never start (nothing of it ran: the caller discards it). */
static int
source_wait_or_connect(MigrationJob *j, char *err, size_t err_size)
{
    char why[256];
    bool never = false;

    if (!parent_limit_reached(j, &never, why, sizeof(why))) {
        mig_tick_start(j, source_tick);
        source_connect(j);
        return 0;
    }
    if (never) {
        (void) snprintf(err, err_size, "group '%s' cannot migrate: %s; split it, or migrate "
                        "the VM with fewer of these devices", j->group_name, why);
        return -EOPNOTSUPP;
    }
    (void) mig_set_phase(j, PHASE_WAITING);
    mig_tick_start(j, source_tick);
    log_job_notice(j, "Migration %s waits its turn: %s; it starts when one of them ends.",
                   j->id, why);
    return 0;
}

int
migration_start(Manager *m, const char *group, const char *address, const char *token,
                 const MigrationOptions *opts, MigrationJob **ret, char *err, size_t err_size)
{
    MigJobSetup setup = {.role = MIGRATION_SOURCE, .subject = MIGRATION_SUBJECT_GROUP,
                         .name = group, .peer = address, .opts = opts};
    MigrationJob *j = NULL;
    int r;

    /* Before the job exists: a bad address changes nothing, and is said as such, not as a
     * connection that failed. */
    r = transport_check_peer_address(address, err, err_size);
    if (r < 0) {
        return r;
    }
    if (strlen(token) != TRANSPORT_TOKEN_HEX || strlen(address) >= TRANSPORT_ADDRESS_MAX) {
        (void) snprintf(err, err_size, "the token must be the %d characters `vfio-migctl incoming` printed; "
                        "the address at most %d", TRANSPORT_TOKEN_HEX, TRANSPORT_ADDRESS_MAX - 1);
        return -EINVAL;
    }
    if (opts && opts->channels > SPREAD_MAX_CHANNELS) {
        (void) snprintf(err, err_size, "%u data channels per device asked, at most %u: give "
                        "--channels 1 to %u, or 0 to let the daemon choose", opts->channels,
                        SPREAD_MAX_CHANNELS, SPREAD_MAX_CHANNELS);
        return -EINVAL;
    }
    r = mig_job_new(m, &setup, &j, err, err_size);
    if (r < 0) {
        return r;
    }
    r = plan_channels(j, err, err_size);
    if (r < 0) {
        mig_job_discard(j);
        return r;
    }
    memcpy(j->token, token, TRANSPORT_TOKEN_HEX);
    r = source_wait_or_connect(j, err, err_size);
    if (r < 0) {
        mig_job_discard(j);
        return r;
    }
    *ret = j;
    return 0;
}
