/* SPDX-License-Identifier: MIT */
/*
 * seam — a plugin that only adds a sim model, "seam", shaped like a vendor driver with a
 * match header (hisi_acc) so that tests/unit/test_sim_model.c can check every call the sim
 * back-end makes into a model and what it keeps for itself. Never installed.
 *
 * The device's content is one byte, `content=N` (0..255, default 1). Its stream is 32 bytes:
 * an 8-byte header "SEAMHDR" + the content byte, then 24 body bytes, each the content byte.
 * Pre-copy carries only the header (read() then answers 0, the temporary end); PRE_COPY ->
 * STOP_COPY appends the body. A resuming device takes a stream whose header is right and,
 * with `accept=N`, whose content byte is N (else write() -EFAULT, as hisi answers a match
 * mismatch); bytes past 32 are -ENOMEM; RESUMING -> STOP wants all 32 (else -EINVAL).
 * Other options: `mflags=N` the migration flags it reports (default 5), `busy=1` fails
 * RUNNING -> STOP with -EBUSY, `bad=read|errno|size` returns what the ABI forbids (a read
 * longer than asked, a positive errno from the arc hook, a data size hook that fails with
 * an errno beyond 4095) so the test sees the sim catch it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vfio-migd/plugin.h>

#define SEAM_HDR 8u
#define SEAM_TOTAL 32u

struct seam {
    unsigned content, accept, flags;
    int busy, accept_set;
    char bad[8];
};

struct seam_stream {
    struct seam *m;
    int resume, body; /* body: the stream carries the body too (STOP_COPY) */
    unsigned pos;
    unsigned char in[SEAM_TOTAL];
};

static int
seam_unsigned(const char *v, unsigned max, unsigned *ret)
{
    char *end;
    unsigned long x = strtoul(v, &end, 10);

    if (!*v || *end || x > max) {
        return -EINVAL;
    }
    *ret = (unsigned) x;
    return 0;
}

static int
seam_option(struct seam *m, const char *key, const char *v)
{
    unsigned x = 0;

    if (strcmp(key, "content") == 0) {
        return seam_unsigned(v, 255, &m->content);
    }
    if (strcmp(key, "accept") == 0) {
        m->accept_set = 1;
        return seam_unsigned(v, 255, &m->accept);
    }
    if (strcmp(key, "mflags") == 0) {
        return seam_unsigned(v, 255, &m->flags);
    }
    if (strcmp(key, "busy") == 0) {
        int r = seam_unsigned(v, 1, &x);

        m->busy = (int) x;
        return r;
    }
    if (strcmp(key, "bad") == 0 && strlen(v) < sizeof(m->bad)) {
        strcpy(m->bad, v);
        return 0;
    }
    return -EINVAL;
}

static int32_t
seam_create(const struct vfio_migd_host *host, const char *options, void **ret_model, char *why,
            uint32_t why_size)
{
    struct seam *m = calloc(1, sizeof(*m));
    char buf[512], *save = NULL;

    (void) host;
    if (!m) {
        return -ENOMEM;
    }
    *m = (struct seam){.content = 1, .flags = 5};
    if (strlen(options) >= sizeof(buf)) {
        free(m);
        return -E2BIG;
    }
    strcpy(buf, options);
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');

        if (!eq || (*eq = '\0', seam_option(m, kv, eq + 1) < 0)) {
            (void) snprintf(why, why_size, "seam: unknown option or bad value '%s'", kv);
            free(m);
            return -EINVAL;
        }
    }
    *ret_model = m;
    return 0;
}

static void
seam_destroy(void *model)
{
    free(model);
}

static uint32_t
seam_flags(void *model)
{
    return ((struct seam *) model)->flags;
}

static int32_t
seam_data_size(void *model, uint32_t state, uint64_t *ret)
{
    (void) state;
    if (strcmp(((struct seam *) model)->bad, "size") == 0) {
        return -5000;
    }
    *ret = SEAM_TOTAL;
    return 0;
}

static int32_t
seam_arc(void *model, uint32_t from, uint32_t to)
{
    struct seam *m = model;

    if (strcmp(m->bad, "errno") == 0) {
        return EIO; /* positive: against the ABI */
    }
    if (m->busy && from == VFIO_MIGD_STATE_RUNNING && to == VFIO_MIGD_STATE_STOP) {
        return -EBUSY;
    }
    return 0;
}

static int32_t
seam_open(void *model, uint32_t from, uint32_t to, void **ret)
{
    struct seam_stream *s = calloc(1, sizeof(*s));

    if (!s) {
        return -ENOMEM;
    }
    s->m = model;
    s->resume = to == VFIO_MIGD_STATE_RESUMING;
    s->body = from == VFIO_MIGD_STATE_STOP && to == VFIO_MIGD_STATE_STOP_COPY;
    *ret = s;
    return 0;
}

static int32_t
seam_advance(void *stream, uint32_t from, uint32_t to)
{
    (void) from;
    if (to == VFIO_MIGD_STATE_STOP_COPY) {
        ((struct seam_stream *) stream)->body = 1;
    }
    return 0;
}

static unsigned char
seam_byte(const struct seam *m, unsigned pos)
{
    static const char hdr[] = "SEAMHDR";

    return pos < 7 ? (unsigned char) hdr[pos] : (unsigned char) m->content;
}

static int64_t
seam_read(void *stream, uint8_t *buf, uint64_t size)
{
    struct seam_stream *s = stream;
    unsigned end = s->body ? SEAM_TOTAL : SEAM_HDR;
    uint64_t n = 0;

    if (strcmp(s->m->bad, "read") == 0) {
        return (int64_t) size + 1;
    }
    while (n < size && s->pos < end) {
        buf[n++] = seam_byte(s->m, s->pos++);
    }
    return (int64_t) n;
}

static int32_t
seam_precopy_info(void *stream, uint64_t *ret_initial, uint64_t *ret_dirty)
{
    struct seam_stream *s = stream;

    *ret_initial = s->pos < SEAM_HDR ? SEAM_HDR - s->pos : 0;
    *ret_dirty = 0;
    return 0;
}

static int64_t
seam_write(void *stream, const uint8_t *buf, uint64_t size)
{
    struct seam_stream *s = stream;

    if (size > SEAM_TOTAL - s->pos) {
        return -ENOMEM;
    }
    memcpy(s->in + s->pos, buf, size);
    if (s->pos < SEAM_HDR && s->pos + size >= SEAM_HDR &&
        (memcmp(s->in, "SEAMHDR", 7) != 0 ||
         (s->m->accept_set && s->in[7] != s->m->accept))) {
        return -EFAULT;
    }
    s->pos += (unsigned) size;
    return (int64_t) size;
}

static int32_t
seam_finish(void *stream)
{
    struct seam_stream *s = stream;

    if (s->pos != SEAM_TOTAL) {
        return -EINVAL;
    }
    s->m->content = s->in[7];
    return 0;
}

static void
seam_close(void *stream)
{
    free(stream);
}

static uint64_t
seam_digest(void *model)
{
    return UINT64_C(0x5EA0000000000000) | ((struct seam *) model)->content;
}

static const struct vfio_migd_sim_model model = {
    .struct_size = sizeof(struct vfio_migd_sim_model),
    .name = "seam",
    .create = seam_create,
    .destroy = seam_destroy,
    .mig_flags = seam_flags,
    .data_size = seam_data_size,
    .arc = seam_arc,
    .stream_open = seam_open,
    .stream_advance = seam_advance,
    .stream_read = seam_read,
    .stream_precopy_info = seam_precopy_info,
    .stream_write = seam_write,
    .stream_finish = seam_finish,
    .stream_close = seam_close,
    .digest = seam_digest,
};

static const struct vfio_migd_plugin plugin = {
    VFIO_MIGD_PLUGIN_HEADER,
    .name = "seam",
    .version = "0.1",
    .description = "a sim model for the sim<->model seam tests",
    .sim_model = &model,
};

VFIO_MIGD_PLUGIN_DEFINE_ENTRY(plugin)
