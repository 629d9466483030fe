/* SPDX-License-Identifier: MIT */
/*
 * mlx5_sim — see mlx5_sim.h.
 */
#include "mlx5_sim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlx5_plugin.h"
#include "mlx5_stream.h"

#define RECORD_PREFIX (MLX5_HEADER_SIZE + MLX5_SIM_IMAGE_HEADER)
#define PSID_SIZE 24
#define FINAL_SAVE_MIN 4096 /* the final incremental SAVE carries the device's last state */

struct mlx5_sim {
    const struct vfio_migd_host *host;
    char psid[PSID_SIZE];
    int chunk;
    uint64_t image;   /* the state's size */
    uint64_t dirty;   /* bytes an incremental SAVE finds dirty */
    uint64_t key;     /* the content; 0: none valid (a load that never completed) */
};

/* One record being read out of a saving stream: its prefix, then generated data. */
struct mlx5_sim_out {
    uint8_t prefix[RECORD_PREFIX];
    uint32_t prefix_size, prefix_pos;
    uint64_t key, off, left; /* generated data still to come */
};

struct mlx5_sim_stream {
    struct mlx5_sim *m;
    uint32_t state;                 /* VFIO_MIGD_STATE_* the device is in */
    int resume;
    /* saving */
    struct mlx5_sim_out cur;
    int have_cur, scs_pending, incr_pending;
    uint64_t full_key, full_next;   /* full image chunks still to queue: from full_next */
    int full_pending;
    uint64_t incr_base, incr_key, incr_size;
    uint64_t initial_left, queued_left;
    /* resuming */
    uint8_t hdr[MLX5_HEADER_SIZE];
    uint32_t hdr_pos, in_record;
    struct mlx5_record_header rec;
    uint64_t rec_pos;
    uint8_t img[MLX5_SIM_IMAGE_HEADER];
    int bytes_bad;
    uint64_t full_total, full_loaded, load_key, cur_key;
    int failed;
};

/* ---- content */

static uint64_t
mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

void
mlx5_sim_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t n)
{
    while (n > 0) {
        uint64_t w = mix(key ^ ((off / 8) * UINT64_C(0x9e3779b97f4a7c15)));
        size_t skip = (size_t) (off % 8), take = 8 - skip < n ? 8 - skip : n;

        for (size_t i = 0; i < take; i++) {
            buf[i] = (uint8_t) (w >> (8 * (skip + i)));
        }
        buf += take;
        off += take;
        n -= take;
    }
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8) {
        p[i] = (uint8_t) v;
    }
}

static uint64_t
get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint64_t
mlx5_sim_content(const void *model, uint64_t *ret_image)
{
    const struct mlx5_sim *m = model;

    *ret_image = m->image;
    return m->key;
}

/* ---- options */

static int
parse_size(const char *v, uint64_t min, uint64_t max, uint64_t *ret)
{
    char *end;
    unsigned long long x;
    int shift = 0;

    if (*v < '0' || *v > '9') {
        return -EINVAL;
    }
    errno = 0;
    x = strtoull(v, &end, 0);
    shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
            : *end == 'G' || *end == 'g' ? 30 : 0;
    if (errno || (shift && end[1]) || (!shift && *end) || x > (max >> shift) ||
        (x << shift) < min) {
        return -EINVAL;
    }
    *ret = (uint64_t) x << shift;
    return 0;
}

static int
text_ok(const char *v, size_t max, const char *allowed)
{
    size_t n = strlen(v);

    return n > 0 && n <= max && strspn(v, allowed) == n;
}

#define UPPER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* One key=value of the model's; -EINVAL with a sentence naming it. */
static int
sim_option(struct mlx5_sim *m, const char *key, const char *v, char *why, uint32_t why_size)
{
    const char *what = NULL;
    uint64_t x = 0;

    if (strcmp(key, "psid") == 0) {
        what = text_ok(v, PSID_SIZE - 1, UPPER_DIGITS "_") ? NULL : "1 to 23 of A-Z, 0-9, '_'";
        if (!what) {
            memset(m->psid, 0, sizeof(m->psid));
            memcpy(m->psid, v, strlen(v));
        }
    } else if (strcmp(key, "fw") == 0) {
        what = text_ok(v, 31, "0123456789.") ? NULL : "a version such as 22.36.1010";
    } else if (strcmp(key, "eswitch") == 0) {
        what = strcmp(v, "switchdev") == 0 || strcmp(v, "legacy") == 0 ? NULL
                                                                       : "switchdev or legacy";
    } else if (strcmp(key, "chunk") == 0) {
        what = strcmp(v, "0") == 0 || strcmp(v, "1") == 0 ? NULL : "0 or 1";
        m->chunk = strcmp(v, "1") == 0;
    } else if (strcmp(key, "image") == 0) {
        what = parse_size(v, 4096, UINT64_C(64) << 30, &m->image) < 0 ? "a size from 4K to 64G"
                                                                      : NULL;
    } else if (strcmp(key, "dirty") == 0) {
        what = parse_size(v, 0, UINT64_C(1) << 30, &m->dirty) < 0 ? "a size from 0 to 1G" : NULL;
    } else if (strcmp(key, "content") == 0) {
        what = parse_size(v, 1, UINT64_MAX, &x) < 0 ? "a number from 1 to 2^64-1" : NULL;
        m->key = x;
    } else {
        (void) snprintf(why, why_size, "model mlx5: unknown option '%s' (known: psid, fw, "
                        "eswitch, chunk, image, dirty, content)", key);
        return -EINVAL;
    }
    if (what) {
        (void) snprintf(why, why_size, "model mlx5: %s: '%s' is not %s", key, v, what);
        return -EINVAL;
    }
    return 0;
}

static int32_t
sim_create(const struct vfio_migd_host *host, const char *options, void **ret_model, char *why,
           uint32_t why_size)
{
    struct mlx5_sim *m = calloc(1, sizeof(*m));
    char key[32], value[128];
    int r = 0;

    if (!m) {
        return -ENOMEM;
    }
    *m = (struct mlx5_sim){.host = host, .chunk = 1, .image = UINT64_C(1) << 20, .key = 1};
    (void) snprintf(m->psid, sizeof(m->psid), "%s", MLX5_SIM_PSID);
    for (const char *p = options; r == 0 && p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        size_t kn = strcspn(p, "=,"), vn = p[kn] == '=' ? strcspn(p + kn + 1, ",") : 0;

        if (p[kn] != '=' || kn >= sizeof(key) || vn >= sizeof(value)) {
            (void) snprintf(why, why_size, "model mlx5: malformed option at '%.40s'", p);
            r = -EINVAL;
            break;
        }
        (void) snprintf(key, sizeof(key), "%.*s", (int) kn, p);
        (void) snprintf(value, sizeof(value), "%.*s", (int) vn, p + kn + 1);
        r = sim_option(m, key, value, why, why_size);
    }
    if (r == 0 && !m->chunk && m->image > MLX5_SIM_MAX_UNCHUNKED) {
        (void) snprintf(why, why_size, "model mlx5: image %" PRIu64 " bytes without chunk mode: "
                        "one SAVE holds less than 4 GiB (a 32-bit size); chunk=1 lifts it",
                        m->image);
        r = -EINVAL;
    }
    if (r < 0) {
        free(m);
        return r;
    }
    *ret_model = m;
    return 0;
}

static void
sim_destroy(void *model)
{
    free(model);
}

static uint32_t
sim_flags(void *model)
{
    (void) model;
    return 0x7; /* STOP_COPY | P2P | PRE_COPY: mandatory since Linux 6.9 */
}

static uint64_t
chunk_size(const struct mlx5_sim *m)
{
    return m->chunk ? MLX5_SIM_CHUNK : m->image;
}

/* The bytes of a full image as records. */
static uint64_t
full_bytes(const struct mlx5_sim *m)
{
    uint64_t chunks = (m->image + chunk_size(m) - 1) / chunk_size(m);

    return chunks * RECORD_PREFIX + m->image;
}

static int32_t
sim_data_size(void *model, uint32_t state, uint64_t *ret_bytes)
{
    (void) state;
    /* remaining_total_size in chunk mode, required_umem_size otherwise: the full image. */
    *ret_bytes = full_bytes(model) + MLX5_HEADER_SIZE + MLX5_STOP_COPY_DATA_SIZE;
    return 0;
}

/* ---- saving */

/* Starts the next record: the STOP_COPY_SIZE record, a chunk of the full image, then the
 * incremental SAVE. 0 when nothing is queued. */
static int
out_next(struct mlx5_sim_stream *s)
{
    struct mlx5_sim *m = s->m;
    struct mlx5_sim_out *o = &s->cur;
    struct mlx5_record_header h = {.flags = 0, .tag = MLX5_TAG_FW_DATA};
    uint64_t key, base = 0, off = 0, n;

    memset(o, 0, sizeof(*o));
    if (s->scs_pending) {
        s->scs_pending = 0;
        h = (struct mlx5_record_header){MLX5_STOP_COPY_DATA_SIZE, MLX5_FLAG_TAG_OPTIONAL,
                                        MLX5_TAG_STOP_COPY_SIZE};
        mlx5_header_write(&h, o->prefix);
        put_le64(o->prefix + MLX5_HEADER_SIZE, full_bytes(m));
        o->prefix_size = MLX5_HEADER_SIZE + MLX5_STOP_COPY_DATA_SIZE;
        return s->have_cur = 1;
    }
    if (s->full_pending) {
        key = s->full_key;
        off = s->full_next;
        n = m->image - off < chunk_size(m) ? m->image - off : chunk_size(m);
        s->full_next += n;
        s->full_pending = s->full_next < m->image;
    } else if (s->incr_pending) {
        s->incr_pending = 0;
        key = s->incr_key;
        base = s->incr_base;
        n = s->incr_size;
    } else {
        return s->have_cur = 0;
    }
    h.record_size = MLX5_SIM_IMAGE_HEADER + n;
    mlx5_header_write(&h, o->prefix);
    put_le64(o->prefix + 16, MLX5_SIM_MAGIC);
    put_le64(o->prefix + 24, key);
    put_le64(o->prefix + 32, base);
    put_le64(o->prefix + 40, off);
    put_le64(o->prefix + 48, m->image);
    memcpy(o->prefix + 56, m->psid, PSID_SIZE);
    o->prefix_size = RECORD_PREFIX;
    o->key = key;
    o->off = off;
    o->left = n;
    return s->have_cur = 1;
}

/* Queues a SAVE: the full image at the current key (with its STOP_COPY_SIZE record), or an
 * incremental one of @size bytes that gives the state a new key. */
static void
queue_full(struct mlx5_sim_stream *s)
{
    s->scs_pending = 1;
    s->full_pending = 1;
    s->full_next = 0;
    s->full_key = s->m->key;
    s->queued_left += MLX5_HEADER_SIZE + MLX5_STOP_COPY_DATA_SIZE + full_bytes(s->m);
}

static void
queue_incremental(struct mlx5_sim_stream *s, uint64_t size)
{
    struct mlx5_sim *m = s->m;

    if (s->incr_pending) {
        /* One still unread: the new SAVE's changes join it (one record, from its base). */
        s->queued_left -= RECORD_PREFIX + s->incr_size;
        size += s->incr_size;
    } else {
        s->incr_base = m->key;
    }
    size = size < m->image ? size : m->image;
    s->incr_pending = 1;
    s->incr_key = m->key = mix(m->key) | 1; /* the guest changed the state; never 0 */
    s->incr_size = size;
    s->queued_left += RECORD_PREFIX + size;
}

static int32_t
sim_stream_open(void *model, uint32_t from, uint32_t to, void **ret_stream)
{
    struct mlx5_sim_stream *s = calloc(1, sizeof(*s));

    (void) from;
    if (!s) {
        return -ENOMEM;
    }
    s->m = model;
    s->state = to;
    s->resume = to == VFIO_MIGD_STATE_RESUMING;
    if (!s->resume) {
        /* RUNNING -> PRE_COPY: the initial SAVE, tracking on; STOP -> STOP_COPY: a full one. */
        queue_full(s);
        s->initial_left = to == VFIO_MIGD_STATE_STOP_COPY ? 0 : s->queued_left;
    }
    *ret_stream = s;
    return 0;
}

static int32_t
sim_stream_advance(void *stream, uint32_t from, uint32_t to)
{
    struct mlx5_sim_stream *s = stream;

    (void) from;
    if (to == VFIO_MIGD_STATE_STOP_COPY) {
        /* PCP2P -> SC: SUSPEND_RESPONDER, then the final incremental SAVE, no new fd. */
        queue_incremental(s, s->m->dirty ? s->m->dirty : FINAL_SAVE_MIN);
    }
    s->state = to;
    return 0;
}

static void
consumed(struct mlx5_sim_stream *s, uint64_t n)
{
    s->queued_left -= n;
    s->initial_left -= n < s->initial_left ? n : s->initial_left;
}

static int64_t
sim_stream_read(void *stream, uint8_t *buf, uint64_t size)
{
    struct mlx5_sim_stream *s = stream;
    struct mlx5_sim_out *o = &s->cur;
    uint64_t done = 0;

    while (done < size && (s->have_cur || out_next(s))) {
        if (o->prefix_pos < o->prefix_size) {
            uint64_t k = o->prefix_size - o->prefix_pos;

            k = k < size - done ? k : size - done;
            memcpy(buf + done, o->prefix + o->prefix_pos, (size_t) k);
            o->prefix_pos += (uint32_t) k;
            done += k;
            continue;
        }
        uint64_t k = o->left < size - done ? o->left : size - done;

        mlx5_sim_fill(o->key, o->off, buf + done, (size_t) k);
        o->off += k;
        o->left -= k;
        done += k;
        s->have_cur = o->left > 0;
    }
    consumed(s, done);
    if (done > 0) {
        return (int64_t) done;
    }
    /* Nothing queued: the end in STOP_COPY; in pre-copy read() never starts a SAVE. */
    return s->state == VFIO_MIGD_STATE_STOP_COPY ? 0 : -ENOMSG;
}

static int32_t
sim_stream_precopy_info(void *stream, uint64_t *ret_initial, uint64_t *ret_dirty)
{
    struct mlx5_sim_stream *s = stream;
    uint64_t pending = 0;

    /* In PRE_COPY the ioctl queries the firmware and, with the queue read and state dirty,
     * starts the next incremental SAVE; in PRE_COPY_P2P it only reports the queue. */
    if (s->state == VFIO_MIGD_STATE_PRE_COPY && s->m->dirty > 0) {
        if (s->queued_left == 0) {
            queue_incremental(s, s->m->dirty);
        } else {
            pending = s->m->dirty; /* the firmware's incremental size, not yet saved */
        }
    }
    *ret_initial = s->initial_left;
    *ret_dirty = s->queued_left - s->initial_left + pending;
    return 0;
}

/* ---- resuming */

static void
sim_log(const struct mlx5_sim *m, const char *text)
{
    if (m->host && m->host->log) {
        m->host->log(m->host, VFIO_MIGD_LOG_WARNING, text);
    }
}

/* A FW_DATA record is complete: LOAD_VHCA_STATE, as the firmware judges it. */
static int
load_record(struct mlx5_sim_stream *s)
{
    struct mlx5_sim *m = s->m;
    const uint8_t *h = s->img;
    uint64_t key = get_le64(h + 8), base = get_le64(h + 16), off = get_le64(h + 24);
    uint64_t total = get_le64(h + 32), n = s->rec.record_size - MLX5_SIM_IMAGE_HEADER;
    char psid[PSID_SIZE + 1] = "", text[160];

    if (s->rec.record_size < MLX5_SIM_IMAGE_HEADER || get_le64(h) != MLX5_SIM_MAGIC ||
        s->bytes_bad || key == 0) {
        sim_log(m, "LOAD_VHCA_STATE failed: not an image this firmware wrote");
        return -EIO;
    }
    memcpy(psid, h + 40, PSID_SIZE);
    if (strncmp(psid, m->psid, PSID_SIZE) != 0) {
        (void) snprintf(text, sizeof(text), "LOAD_VHCA_STATE failed: image of PSID '%.24s', "
                        "this VF's is '%s'", psid, m->psid);
        sim_log(m, text);
        return -EIO;
    }
    if (base == 0) { /* a full image's chunk, in order */
        if (off == 0) {
            s->full_total = total;
            s->full_loaded = 0;
            s->load_key = key;
        }
        if (off != s->full_loaded || key != s->load_key || total != s->full_total ||
            n > total - off) {
            sim_log(m, "LOAD_VHCA_STATE failed: a chunk out of order");
            return -EIO;
        }
        s->full_loaded += n;
        s->cur_key = s->full_loaded == s->full_total ? key : 0;
        return 0;
    }
    if (s->cur_key == 0 || base != s->cur_key) {
        sim_log(m, "LOAD_VHCA_STATE failed: an incremental image on another state");
        return -EIO;
    }
    s->cur_key = key;
    return 0;
}

/* Data bytes of the record in progress: the image header, then bytes checked against the
 * key (nothing is kept: a firmware image of any size costs no memory here). */
static void
take_data(struct mlx5_sim_stream *s, const uint8_t *p, uint64_t n)
{
    uint8_t want[4096];

    while (n > 0) {
        uint64_t k;

        if (s->rec.tag != MLX5_TAG_FW_DATA) {
            s->rec_pos += n; /* STOP_COPY_SIZE (a buffer size hint) or an optional record */
            return;
        }
        if (s->rec_pos < MLX5_SIM_IMAGE_HEADER) {
            k = MLX5_SIM_IMAGE_HEADER - s->rec_pos < n ? MLX5_SIM_IMAGE_HEADER - s->rec_pos : n;
            memcpy(s->img + s->rec_pos, p, (size_t) k);
        } else {
            uint64_t off = get_le64(s->img + 24) + (s->rec_pos - MLX5_SIM_IMAGE_HEADER);

            k = n < sizeof(want) ? n : sizeof(want);
            mlx5_sim_fill(get_le64(s->img + 8), off, want, (size_t) k);
            s->bytes_bad |= memcmp(want, p, (size_t) k) != 0;
        }
        s->rec_pos += k;
        p += k;
        n -= k;
    }
}

/* A complete record header: what the driver's resume parser refuses, it refuses too. */
static int
take_header(struct mlx5_sim_stream *s)
{
    char why[256];
    int r = mlx5_header_parse(s->hdr, &s->rec, why, sizeof(why));

    if (r == -EPROTONOSUPPORT) {
        return -EOPNOTSUPP; /* an unknown mandatory tag */
    }
    if (r < 0) {
        return get_le64(s->hdr) > MLX5_MAX_RECORD_SIZE ? -ENOMEM : -EINVAL;
    }
    s->in_record = 1;
    s->rec_pos = 0;
    s->bytes_bad = 0;
    return 0;
}

static int64_t
sim_stream_write(void *stream, const uint8_t *buf, uint64_t size)
{
    struct mlx5_sim_stream *s = stream;
    uint64_t done = 0;
    int r = 0;

    if (s->failed) {
        return -ENODEV; /* the migration file is in its error state */
    }
    while (r == 0 && (done < size || (s->in_record && s->rec_pos == s->rec.record_size))) {
        if (s->in_record && s->rec_pos == s->rec.record_size) {
            r = s->rec.tag == MLX5_TAG_FW_DATA ? load_record(s) : 0;
            s->in_record = 0;
            s->hdr_pos = 0;
        } else if (!s->in_record) {
            uint64_t k = MLX5_HEADER_SIZE - s->hdr_pos < size - done ? MLX5_HEADER_SIZE - s->hdr_pos
                                                                     : size - done;

            memcpy(s->hdr + s->hdr_pos, buf + done, (size_t) k);
            s->hdr_pos += (uint32_t) k;
            done += k;
            r = s->hdr_pos == MLX5_HEADER_SIZE ? take_header(s) : 0;
        } else {
            uint64_t k = s->rec.record_size - s->rec_pos < size - done
                             ? s->rec.record_size - s->rec_pos : size - done;

            take_data(s, buf + done, k);
            done += k;
        }
    }
    if (r < 0) {
        s->failed = 1;
        return r;
    }
    return (int64_t) done;
}

static int32_t
sim_stream_finish(void *stream)
{
    struct mlx5_sim_stream *s = stream;

    /* RESUMING -> STOP checks nothing (each record was loaded in its write()): a VF whose
     * full image never arrived has no valid state, which its digest shows. */
    s->m->key = s->failed ? 0 : s->cur_key;
    if (s->full_total) {
        s->m->image = s->full_total;
    }
    return 0;
}

/* What a save carries: the content key and the image size (no valid state: key 0). */
static uint64_t
sim_digest(void *model)
{
    const struct mlx5_sim *m = model;

    return mix(m->key ^ mix(m->image));
}

static void
sim_stream_close(void *stream)
{
    free(stream);
}

const struct vfio_migd_sim_model mlx5_sim_model = {
    .struct_size = sizeof(struct vfio_migd_sim_model),
    .name = "mlx5",
    .create = sim_create,
    .destroy = sim_destroy,
    .mig_flags = sim_flags,
    .data_size = sim_data_size,
    .stream_open = sim_stream_open,
    .stream_advance = sim_stream_advance,
    .stream_read = sim_stream_read,
    .stream_precopy_info = sim_stream_precopy_info,
    .stream_write = sim_stream_write,
    .stream_finish = sim_stream_finish,
    .stream_close = sim_stream_close,
    .digest = sim_digest,
};
