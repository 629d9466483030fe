/* SPDX-License-Identifier: MIT */
/*
 * migration_data — the data pumps, on workers: a device's data session to stream records on
 * a socket or a file (source, save), and stream records from a socket into a device's
 * resuming session (destination). Each pump touches only its own MigDevice, the session of
 * its device (the device is locked by the job and no operation runs on it meanwhile) and
 * its descriptor; progress goes out through the MigDevice atomics.
 *
 * Pre-copy follows the kernel's rules (reference §5.4-5.5, §11): PRECOPY_INFO between reads
 * (mlx5 produces new dirty data only when asked), and read() == 0 or -ENOMSG in PRE_COPY
 * means "nothing more for now", not the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "migration_internal.h"
#include "plugin_host.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/pages.h"

/* How long a pump waits at the temporary end of the pre-copy data before asking again:
 * short enough to follow a device that dirties quickly, long enough not to spin. */
#define PRECOPY_IDLE_NS (10 * 1000000ull)

int
mig_write_record(int fd, uint32_t type, uint32_t flags, uint32_t device, uint64_t seq,
                 const void *payload, uint32_t size)
{
    StreamRecordHeader h = {.type = type, .flags = flags, .device = device, .length = size,
                            .sequence = seq};
    uint8_t hdr[STREAM_RECORD_HEADER_SIZE];

    stream_encode_record_header(&h, payload, hdr);
    return transport_writev_full(fd, hdr, sizeof(hdr), payload, size);
}

static void
sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t) (ns / 1000000000ull),
                          .tv_nsec = (long) (ns % 1000000000ull)};
    (void) nanosleep(&ts, NULL);
}

/* Sleeps in slices this long at most, so that a cancel, a failure or the end of pre-copy is
 * seen within one slice, however low the cap. */
#define PACE_SLICE_NS (50ull * 1000000ull)

/* Keeps this device's channel within its share of the job's cap (*@cap, bytes/s over all
 * devices, split evenly between them and then between a device's @n_channels; 0: none) once
 * @bytes more went out: its next record may go at *@pace_ns, the record's time at the share
 * after the previous one (or after now, if it fell behind: an idle channel earns no burst).
 * The cap is read again after every slice, so a change made while the job runs
 * (migration_set_rates()) holds at once, even for a record already waiting. Returns early
 * when @stop (or the job's abort) is set. */
static void
pace(MigrationJob *j, uint64_t *pace_ns, uint32_t n_channels, _Atomic uint64_t *cap,
     uint64_t bytes, atomic_bool *stop)
{
    uint64_t now = clock_now_ns(), from = MAX(*pace_ns, now), total;
    uint64_t shares = j->n_devs * n_channels;

    for (;;) {
        total = atomic_load(cap);
        if (total == 0) {
            *pace_ns = 0;
            return;
        }
        *pace_ns = from + bytes * 1000000000ull / MAX(total / shares, 1ull);
        if (now >= *pace_ns || atomic_load(&j->abort) || (stop && atomic_load(stop))) {
            return;
        }
        sleep_ns(MIN(*pace_ns - now, PACE_SLICE_NS));
        now = clock_now_ns();
    }
}

static int
fail_work(MigWork *w, int r, const char *what)
{
    if (r == -ENODATA) { /* "No data available" would only blur "closed early" */
        (void) snprintf(w->error, sizeof(w->error), "device '%s': %s", w->dev->device->id, what);
        w->r = r;
        return r;
    }
    (void) snprintf(w->error, sizeof(w->error), "device '%s': %s: %s (%s)", w->dev->device->id,
                    what, strerror(-r), strerrorname_np(-r) ?: "?");
    w->r = r;
    return r;
}

/* The same for the connection to the peer: what its errno says about the peer, in words. */
static int
fail_net(MigWork *w, int r, const char *what)
{
    (void) snprintf(w->error, sizeof(w->error), "device '%s': %s: %s", w->dev->device->id, what,
                    transport_strerror(r));
    w->r = r;
    return r;
}

int
mig_device_buffer(MigDevice *md)
{
    if (md->buf) {
        return 0;
    }
    md->buf = pages_alloc(MIGRATION_DATA_CHUNK);
    return md->buf ? 0 : -ENOMEM;
}

void
mig_device_buffer_free(MigDevice *md)
{
    pages_free(TAKE_PTR(md->buf));
}

static int32_t
refill_info(void *ctx, uint64_t *ret_initial, uint64_t *ret_dirty)
{
    DataSession *s = ctx;

    return s->ops->precopy_info(s, ret_initial, ret_dirty);
}

/* At the temporary end of the pre-copy data: a plugin that drives its driver's pre-copy
 * (mlx5: PRECOPY_INFO queues the next incremental SAVE) may make more readable. 1 = read
 * again now, 0 = nothing for now, -errno. */
static int
precopy_refill(MigWork *w, uint64_t initial)
{
    MigDevice *md = w->dev;
    const Plugin *p = md->device->plugin;
    const struct vfio_migd_plugin *d = p ? plugin_descriptor_of(p) : NULL;
    struct vfio_migd_precopy_io io = {.struct_size = sizeof(io), .data_fd = -1,
                                      .ctx = md->device->session, .precopy_info = refill_info};
    struct vfio_migd_device view;
    uint64_t dirty = 0;
    int32_t r;

    /* A generic sim device's pre-copy is the sim's own; one running a vendor's model is
     * driven as that vendor's driver is (the model answers PRECOPY_INFO). */
    if (!d || !d->precopy_refill ||
        (md->device->identity.sim_options && !md->device->identity.sim_model)) {
        return 0;
    }
    device_plugin_view(md->device, &view);
    r = d->precopy_refill(plugin_host_services(p), &view, &io, &initial, &dirty);
    if (r < 0) {
        return fail_work(w, r < -4095 ? -EIO : r, "the plugin's pre-copy driving failed");
    }
    atomic_store(&md->initial_bytes, initial);
    atomic_store(&md->dirty_bytes, dirty);
    return r > 0 ? 2 : 0;
}

/* One round: PRECOPY_INFO, then one read. 1 = data sent, 2 = more is readable now, 0 =
 * temporary end, -errno. */
static int
precopy_round(MigWork *w, uint8_t *buf)
{
    MigDevice *md = w->dev;
    DataSession *s = md->device->session;
    uint64_t initial = 0, dirty = 0;
    ssize_t n;
    int r;

    r = s->ops->precopy_info(s, &initial, &dirty);
    if (r < 0) {
        return fail_work(w, r, "VFIO_MIG_GET_PRECOPY_INFO failed");
    }
    atomic_store(&md->initial_bytes, initial);
    atomic_store(&md->dirty_bytes, dirty);
    n = s->ops->read(s, buf, MIGRATION_DATA_CHUNK);
    if (n == 0 || n == -ENOMSG) {
        /* mtty/hisi return 0 here, mlx5 -ENOMSG: both mean "nothing more for now". */
        atomic_store(&md->initial_sent, initial == 0);
        return precopy_refill(w, initial);
    }
    if (n < 0) {
        return fail_work(w, (int) n, "reading pre-copy data failed");
    }
    /* Initial data all read: from here the loop weighs the dirty bytes against the rate. */
    atomic_store(&md->initial_sent, initial == 0);
    r = mig_write_record(md->fd, STREAM_RECORD_DEVICE_DATA, STREAM_FLAG_PRECOPY, md->index,
                         md->sequence, buf, (uint32_t) n);
    if (r < 0) {
        return fail_net(w, r, "sending pre-copy data failed");
    }
    md->sequence++;
    atomic_fetch_add(&md->precopy_bytes, (uint64_t) n);
    atomic_fetch_add(&md->records, 1);
    pace(md->job, &md->pace_ns, 1, &md->job->precopy_cap, (uint64_t) n,
         &md->job->stop_pumps);
    return 1;
}

void
mig_pump_precopy(MigWork *w)
{
    MigrationJob *j = w->job;

    if (mig_device_buffer(w->dev) < 0) {
        (void) fail_work(w, -ENOMEM, "no memory for the pre-copy buffer");
        return;
    }
    while (!atomic_load(&j->stop_pumps)) {
        int r = precopy_round(w, w->dev->buf);
        if (r < 0) {
            return;
        }
        if (r == 0) {
            sleep_ns(PRECOPY_IDLE_NS);
        }
    }
}

int
mig_write_irqs(const MigDevice *md, int fd, char *err, size_t err_size)
{
    uint8_t p[STREAM_IRQS_MAX_SIZE];
    int n, r;

    if (!md->irqs_present) {
        return 0;
    }
    n = stream_encode_device_irqs(&md->irqs, p, sizeof(p));
    r = n < 0 ? n : mig_write_record(fd, STREAM_RECORD_DEVICE_IRQS, STREAM_FLAG_OPTIONAL,
                                     md->index, 0, p, (uint32_t) n);
    if (r < 0) {
        (void) snprintf(err, err_size, "device '%s': sending its interrupt state failed: %s",
                        md->id, n < 0 ? strerror(-n) : transport_strerror(r));
    }
    return r;
}

int
mig_drain_device(MigDevice *md, int fd, char *err, size_t err_size)
{
    bool have_buf = mig_device_buffer(md) >= 0;
    DataSession *s = md->device->session;
    uint8_t *buf = md->buf, end[16];
    StreamDeviceTotals t;
    int r;

    if (!have_buf || !s) {
        (void) snprintf(err, err_size, "device '%s': %s", md->device->id,
                        have_buf ? "no data session in stop_copy" : "out of memory");
        return have_buf ? -ENODATA : -ENOMEM;
    }
    for (;;) {
        ssize_t n;

        /* A failing, cancelled or shut-down job stops here, one record at most after it
         * was told: a large device must not keep the daemon writing for minutes. */
        if (atomic_load(&md->job->abort)) {
            (void) snprintf(err, err_size, "device '%s': stopped", md->device->id);
            return -ECANCELED;
        }
        n = s->ops->read(s, buf, MIGRATION_DATA_CHUNK);
        if (n == 0) {
            break; /* in STOP_COPY, 0 is the end of the device's state */
        }
        if (n < 0) {
            r = (int) n;
            (void) snprintf(err, err_size, "device '%s': reading stop-copy data failed: %s (%s)",
                            md->device->id, strerror(-r), strerrorname_np(-r) ?: "?");
            return r;
        }
        r = mig_write_record(fd, STREAM_RECORD_DEVICE_DATA, 0, md->index, md->sequence, buf,
                             (uint32_t) n);
        if (r < 0) {
            (void) snprintf(err, err_size, "device '%s': sending stop-copy data failed: %s",
                            md->device->id, transport_strerror(r));
            return r;
        }
        md->sequence++;
        atomic_fetch_add(&md->stopcopy_bytes, (uint64_t) n);
        atomic_fetch_add(&md->records, 1);
        pace(md->job, &md->pace_ns, 1, &md->job->stopcopy_cap, (uint64_t) n, NULL);
    }
    r = mig_write_irqs(md, fd, err, err_size);
    if (r < 0) {
        return r;
    }
    t.bytes = atomic_load(&md->precopy_bytes) + atomic_load(&md->stopcopy_bytes);
    t.records = atomic_load(&md->records);
    (void) stream_encode_device_end(&t, end, sizeof(end));
    r = mig_write_record(fd, STREAM_RECORD_DEVICE_END, 0, md->index, md->sequence, end,
                         sizeof(end));
    if (r < 0) {
        (void) snprintf(err, err_size, "device '%s': sending its end failed: %s", md->device->id,
                        transport_strerror(r));
        return r;
    }
    md->sequence++;
    return 0;
}

/* Writes a payload into the resuming session; any write error is fatal for the session.
 * The device's plugin, when it knows the stream (@ps), sees the bytes first and may refuse
 * them before the device does (mtty: a header for another port count). */
static int
feed_session(MigWork *w, PluginStream *ps, const uint8_t *p, uint32_t size)
{
    DataSession *s = w->dev->device->session;
    char why[256] = "";
    int r;

    if (!s) {
        return fail_work(w, -ENODATA, "no resuming data session");
    }
    if (ps) {
        r = plugin_stream_feed(ps, p, size, why, sizeof(why));
        if (r < 0) {
            (void) snprintf(w->error, sizeof(w->error), "device '%s': the stream is not one "
                            "this device takes, refused before it reached the device: %s",
                            w->dev->device->id, why);
            w->r = r;
            return r;
        }
    }
    for (uint32_t off = 0; off < size;) {
        ssize_t n = s->ops->write(s, p + off, size - off);
        if (n <= 0) {
            return fail_work(w, n < 0 ? (int) n : -EIO, "the device refused the migration data");
        }
        off += (uint32_t) n;
    }
    return 0;
}

void
mig_channel_receive(MigWork *w)
{
    MigDevice *md = w->dev;
    MigrationJob *j = w->job;
    _cleanup_(channel_in_done) ChannelIn in = {0};
    _cleanup_(plugin_stream_closep) PluginStream *ps = NULL;
    StreamRecordHeader rh;
    char why[512];

    if (channel_in_init(&in, md->fd, j->stream_id, (uint32_t) j->n_devs, md->index,
                        MIGRATION_DATA_CHUNK + STREAM_RECORD_HEADER_SIZE) < 0) {
        (void) fail_work(w, -ENOMEM, "no memory for the data channel");
        return;
    }
    if (device_stream_is_plugins(md->device)) {
        struct vfio_migd_device view;

        device_plugin_view(md->device, &view);
        if (plugin_stream_open(md->device->plugin, &view, VFIO_MIGD_STREAM_RESUME, &ps) < 0) {
            (void) fail_work(w, -ENOMEM, "the plugin cannot parse the stream");
            return;
        }
    }
    while (!atomic_load(&j->abort)) {
        int r = channel_in_next(&in, &rh, why, sizeof(why));

        if (r < 0) {
            (void) snprintf(w->error, sizeof(w->error), "device '%s': %s", md->device->id, why);
            w->r = r;
            return;
        }
        if (rh.type == STREAM_RECORD_DEVICE_END) {
            return; /* the reader checked the totals */
        }
        if (rh.type == STREAM_RECORD_DEVICE_IRQS) {
            /* the reader decoded it once already: it is valid */
            md->irqs_present = stream_decode_device_irqs(in.buf, rh.length, &md->irqs,
                                                         NULL, 0) == 0;
            continue;
        }
        if (rh.type != STREAM_RECORD_DEVICE_DATA || feed_session(w, ps, in.buf, rh.length) < 0) {
            if (w->r == 0) {
                continue; /* an optional record type we do not know */
            }
            return;
        }
        atomic_fetch_add((rh.flags & STREAM_FLAG_PRECOPY) ? &md->precopy_bytes
                                                          : &md->stopcopy_bytes,
                         rh.length);
        atomic_fetch_add(&md->records, 1);
    }
    w->r = w->r ? w->r : -ECANCELED;
}

/* ---- one device over several channels (core/spread.h) ---- */

int
mig_spread_new(MigDevice *md, uint32_t n, uint64_t stream_id, uint32_t n_devices)
{
    MigSpread *sp;

    if (n < 2 || n > SPREAD_MAX_CHANNELS) {
        return -EINVAL;
    }
    sp = calloc(1, sizeof(*sp));
    if (!sp) {
        return -ENOMEM;
    }
    sp->n = n;
    for (uint32_t c = 0; c < SPREAD_MAX_CHANNELS; c++) {
        sp->fds[c] = -EBADF;
    }
    (void) pthread_mutex_init(&sp->lock, NULL);
    (void) pthread_cond_init(&sp->cond, NULL);
    (void) spread_window_init(&sp->window, n);
    stream_reader_expect_devices(&sp->reader, stream_id, n_devices);
    md->spread = sp;
    md->n_channels = n;
    return 0;
}

void
mig_spread_free(MigSpread *sp)
{
    if (!sp) {
        return;
    }
    for (uint32_t c = 0; c < SPREAD_MAX_CHANNELS; c++) {
        if (sp->fds[c] >= 0) {
            (void) transport_close(sp->fds[c]);
        }
        pages_free(sp->bufs[c]);
    }
    (void) pthread_mutex_destroy(&sp->lock);
    (void) pthread_cond_destroy(&sp->cond);
    free(sp);
}

void
mig_spread_wake(MigrationJob *j)
{
    for (size_t i = 0; i < j->n_devs; i++) {
        MigSpread *sp = j->devs[i].spread;
        if (sp) {
            pthread_mutex_lock(&sp->lock);
            pthread_cond_broadcast(&sp->cond);
            pthread_mutex_unlock(&sp->lock);
        }
    }
}

static int
spread_fd(const MigDevice *md, uint32_t channel)
{
    return channel == 0 ? md->fd : md->spread->fds[channel];
}

/* The device's next read, under the lock: its sequence and, at the end of the data, the
 * device's totals. 1 = a record of *ret_n bytes, 0 = the device's end (DEVICE_END is this
 * channel's to send), 2 = another channel found the end (CHANNEL_END), -errno. */
static int
spread_take(MigDevice *md, uint8_t *buf, ssize_t *ret_n, uint64_t *ret_seq,
            StreamDeviceTotals *ret_totals)
{
    MigSpread *sp = md->spread;
    DataSession *s = md->device->session;
    ssize_t n;
    int r;

    pthread_mutex_lock(&sp->lock);
    if (sp->read_end) {
        r = 2;
    } else {
        n = s->ops->read(s, buf, MIGRATION_DATA_CHUNK);
        sp->read_end = n <= 0;
        *ret_seq = md->sequence++;
        if (n > 0) {
            sp->read_bytes += (uint64_t) n;
            *ret_n = n;
        } else {
            ret_totals->bytes = atomic_load(&md->precopy_bytes) + sp->read_bytes;
            ret_totals->records = *ret_seq; /* DEVICE_END continues the sequence */
        }
        r = n > 0 ? 1 : (int) n;
    }
    pthread_mutex_unlock(&sp->lock);
    return r;
}

int
mig_drain_spread(MigDevice *md, uint32_t channel, char *err, size_t err_size)
{
    MigSpread *sp = md->spread;
    int fd = spread_fd(md, channel);
    uint8_t *buf = channel == 0 ? md->buf : sp->bufs[channel], end[16];
    StreamDeviceTotals t = {0}, mine = {0};
    uint64_t seq = 0;
    ssize_t n = 0;
    int r;

    if (!buf || !md->device->session) {
        (void) snprintf(err, err_size, "device '%s': no buffer or data session for channel %u",
                        md->device->id, channel);
        return -ENODATA;
    }
    for (;;) {
        if (atomic_load(&md->job->abort)) {
            (void) snprintf(err, err_size, "device '%s': stopped", md->device->id);
            return -ECANCELED;
        }
        r = spread_take(md, buf, &n, &seq, &t);
        if (r != 1) {
            break;
        }
        r = mig_write_record(fd, STREAM_RECORD_DEVICE_DATA, 0, md->index, seq, buf, (uint32_t) n);
        if (r < 0) {
            (void) snprintf(err, err_size, "device '%s': sending stop-copy data on channel %u "
                            "failed: %s", md->device->id, channel, transport_strerror(r));
            return r;
        }
        mine.bytes += (uint64_t) n;
        mine.records++;
        atomic_fetch_add(&md->stopcopy_bytes, (uint64_t) n);
        atomic_fetch_add(&md->records, 1);
        pace(md->job, &sp->pace_ns[channel], sp->n, &md->job->stopcopy_cap, (uint64_t) n, NULL);
    }
    if (r < 0) {
        (void) snprintf(err, err_size, "device '%s': reading stop-copy data failed: %s (%s)",
                        md->device->id, strerror(-r), strerrorname_np(-r) ?: "?");
        return r;
    }
    /* The channel that found the end sends the device's (after its interrupt state, which
     * the destination delivers with it, in its turn); every other one its own. */
    if (r == 0) {
        r = mig_write_irqs(md, fd, err, err_size);
        if (r < 0) {
            return r;
        }
    }
    (void) stream_encode_device_end(r == 0 ? &t : &mine, end, sizeof(end));
    r = r == 0 ? mig_write_record(fd, STREAM_RECORD_DEVICE_END, 0, md->index, seq, end,
                                  sizeof(end))
               : mig_write_record(fd, STREAM_RECORD_CHANNEL_END, STREAM_FLAG_OPTIONAL,
                                  md->index, 0, end, sizeof(end));
    if (r < 0) {
        (void) snprintf(err, err_size, "device '%s': sending the end of channel %u failed: %s",
                        md->device->id, channel, transport_strerror(r));
    }
    return r;
}

/* Waits, under the lock, until the record this channel holds (@seq) is the device's next.
 * 0 = deliver it now; -ESTALE with @why when it can never be (a record repeated, or one
 * that no channel carries); -ECANCELED when the job aborts. */
static int
spread_wait_turn(MigWork *w, uint64_t seq, char *why, size_t why_size)
{
    MigSpread *sp = w->dev->spread;
    int r = spread_arrive(&sp->window, w->channel, seq);

    while (r == SPREAD_WAIT && !atomic_load(&w->job->abort)) {
        (void) pthread_cond_wait(&sp->cond, &sp->lock); /* mig_spread_wake() on a failure */
        r = spread_recheck(&sp->window, w->channel);
    }
    if (r == SPREAD_WAIT) {
        return -ECANCELED;
    }
    if (r < 0) {
        (void) snprintf(why, why_size, "record %llu on its channel %u cannot be the device's "
                        "record %llu: a record repeated, reordered or never sent",
                        (unsigned long long) seq, w->channel,
                        (unsigned long long) sp->window.next);
        pthread_cond_broadcast(&sp->cond); /* the others see the window stuck too */
    }
    return r;
}

/* A spread channel's DEVICE_IRQS (it has no sequence number), held until its DEVICE_END's
 * turn: the device's reader takes it right before that DEVICE_END, so after every
 * DEVICE_DATA of every channel, exactly where a single channel would have carried it. */
typedef struct HeldIrqs {
    bool held;
    uint32_t length;
    uint8_t hdr[STREAM_RECORD_HEADER_SIZE];
    uint8_t payload[STREAM_IRQS_MAX_SIZE];
} HeldIrqs;

static int
hold_irqs(HeldIrqs *held, const ChannelIn *in, const StreamRecordHeader *h, char *why,
          size_t why_size)
{
    if (held->held || h->length > sizeof(held->payload)) {
        (void) snprintf(why, why_size, "a second interrupt state on one channel");
        return -EBADMSG;
    }
    *held = (HeldIrqs){.held = true, .length = h->length};
    memcpy(held->hdr, in->hdr, sizeof(held->hdr));
    memcpy(held->payload, in->buf, h->length);
    return 0;
}

/* Under the lock, in the DEVICE_END's turn: the held DEVICE_IRQS to the device's reader. */
static int
spread_feed_irqs(MigWork *w, const HeldIrqs *held, char *why, size_t why_size)
{
    MigSpread *sp = w->dev->spread;
    StreamRecordHeader rh;
    int r;

    if (!held->held) {
        return 0;
    }
    r = stream_reader_record_crc_checked(&sp->reader, held->hdr, held->payload, &rh);
    if (r < 0) {
        (void) snprintf(why, why_size, "bad record from the source: %s", sp->reader.error);
        return r;
    }
    w->dev->irqs_present =
        stream_decode_device_irqs(held->payload, held->length, &w->dev->irqs, NULL, 0) == 0;
    return 0;
}

/* One record of a spread channel, in its turn: the device's reader checks its order (and at
 * DEVICE_END the device's totals), then it goes to the device. 1 = the device ended. */
static int
spread_deliver(MigWork *w, ChannelIn *in, const StreamRecordHeader *h, const HeldIrqs *held,
               char *why, size_t why_size)
{
    MigSpread *sp = w->dev->spread;
    StreamRecordHeader rh;
    int r;

    pthread_mutex_lock(&sp->lock);
    r = spread_wait_turn(w, h->sequence, why, why_size);
    if (r >= 0 && h->type == STREAM_RECORD_DEVICE_END) {
        r = spread_feed_irqs(w, held, why, why_size);
    }
    if (r >= 0) {
        r = stream_reader_record_crc_checked(&sp->reader, in->hdr, in->buf, &rh);
        if (r < 0) {
            (void) snprintf(why, why_size, "bad record from the source: %s", sp->reader.error);
        }
    }
    pthread_mutex_unlock(&sp->lock);
    if (r < 0) {
        return r;
    }
    /* Outside the lock: the others read and check their next records meanwhile; none can
     * deliver before this one is done (spread_delivered()). */
    if (h->type == STREAM_RECORD_DEVICE_DATA) {
        r = feed_session(w, NULL, in->buf, h->length);
        if (r < 0) {
            return r;
        }
        atomic_fetch_add((h->flags & STREAM_FLAG_PRECOPY) ? &w->dev->precopy_bytes
                                                         : &w->dev->stopcopy_bytes,
                         h->length);
        atomic_fetch_add(&w->dev->records, 1);
    }
    pthread_mutex_lock(&sp->lock);
    spread_delivered(&sp->window);
    if (h->type == STREAM_RECORD_DEVICE_END) {
        (void) spread_channel_end(&sp->window, w->channel);
    }
    pthread_cond_broadcast(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
    return h->type == STREAM_RECORD_DEVICE_END;
}

/* CHANNEL_END: this channel carried what it says, and nothing more comes on it. */
static int
spread_channel_done(MigWork *w, const ChannelIn *in, const StreamRecordHeader *h,
                    const StreamDeviceTotals *mine, char *why, size_t why_size)
{
    MigSpread *sp = w->dev->spread;
    StreamDeviceTotals said;

    if (stream_decode_device_end(in->buf, h->length, &said) < 0 || said.bytes != mine->bytes ||
        said.records != mine->records) {
        (void) snprintf(why, why_size, "the end of its channel %u does not match the %llu "
                        "records / %llu bytes that arrived on it", w->channel,
                        (unsigned long long) mine->records, (unsigned long long) mine->bytes);
        return -EBADMSG;
    }
    pthread_mutex_lock(&sp->lock);
    (void) spread_channel_end(&sp->window, w->channel);
    pthread_cond_broadcast(&sp->cond); /* the channels left may all be waiting now */
    pthread_mutex_unlock(&sp->lock);
    return 0;
}

void
mig_channel_receive_spread(MigWork *w)
{
    MigDevice *md = w->dev;
    _cleanup_(channel_in_done) ChannelIn in = {0};
    _cleanup_free_ HeldIrqs *held = calloc(1, sizeof(*held));
    StreamDeviceTotals mine = {0};
    StreamRecordHeader rh;
    char why[512] = "";
    int r = 0;

    if (!held || channel_in_init_spread(&in, spread_fd(md, w->channel), md->index,
                                        MIGRATION_DATA_CHUNK + STREAM_RECORD_HEADER_SIZE) < 0) {
        (void) fail_work(w, -ENOMEM, "no memory for the data channel");
        return;
    }
    /* A plugin's stream parser (mtty) follows one channel's bytes; such devices are small. */
    if (device_stream_is_plugins(md->device)) {
        (void) fail_work(w, -EOPNOTSUPP, "a device whose plugin parses its stream takes one "
                         "data channel; migrate it with --channels 1");
        return;
    }
    while (r == 0 && !atomic_load(&w->job->abort)) {
        r = channel_in_next(&in, &rh, why, sizeof(why));
        if (r < 0) {
            break;
        }
        if (held->held && (rh.type == STREAM_RECORD_DEVICE_DATA ||
                           rh.type == STREAM_RECORD_CHANNEL_END)) {
            /* only the channel that ends the device carries its interrupt state, last */
            (void) snprintf(why, sizeof(why), "a record after the interrupt state on channel "
                            "%u, where only the device's DEVICE_END may follow", w->channel);
            r = -EBADMSG;
        } else if (rh.type == STREAM_RECORD_DEVICE_IRQS) {
            r = hold_irqs(held, &in, &rh, why, sizeof(why));
        } else if (rh.type == STREAM_RECORD_CHANNEL_END) {
            r = spread_channel_done(w, &in, &rh, &mine, why, sizeof(why));
            r = r < 0 ? r : 1;
        } else if (rh.type == STREAM_RECORD_DEVICE_DATA || rh.type == STREAM_RECORD_DEVICE_END) {
            /* CHANNEL_END counts this channel's stop-copy records: the first channel's
             * pre-copy records are the device's, counted at its DEVICE_END. */
            bool stopcopy = rh.type == STREAM_RECORD_DEVICE_DATA &&
                            !(rh.flags & STREAM_FLAG_PRECOPY);

            mine.bytes += stopcopy ? rh.length : 0;
            mine.records += stopcopy;
            r = spread_deliver(w, &in, &rh, held, why, sizeof(why));
        } /* else an optional record type we do not know */
    }
    if (r < 0 && w->r == 0) {
        (void) snprintf(w->error, sizeof(w->error), "device '%s': %s", md->device->id, why);
        w->r = r;
    }
    if (r == 0) {
        w->r = w->r ? w->r : -ECANCELED;
    }
}
