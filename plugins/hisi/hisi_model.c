/* SPDX-License-Identifier: MIT */
/*
 * hisi_model — the hisi sim model (attach --sim model=hisi,...): a HiSilicon accelerator VF
 * under hisi_acc_vfio_pci as Linux 6.12.117 drives it (kernel-uapi.md §9), never more
 * forgivingly:
 *  - flags STOP_COPY | PRE_COPY (0x5): no P2P states; MIG_DATA_SIZE is 176 in every state;
 *  - RUNNING -> PRE_COPY opens a stream holding only the 40 match bytes (vf_qm_state 0 as the
 *    driver's zeroed buffer has it); read() at its end answers 0; PRECOPY_INFO says
 *    initial = 40 - read, dirty 0;
 *  - stopping the device (RUNNING -> STOP, PRE_COPY -> STOP_COPY) fails with EBUSY while
 *    interrupts are pending (irq_pending=1); otherwise the state is appended: the whole 176
 *    bytes when the guest started the VF's queues (qm_ready=1), nothing more when not (the
 *    stream is then the 40 match bytes);
 *  - a resuming write() past 176 bytes is ENOMEM; as soon as 40 bytes are in, the match is
 *    checked as the driver does (magic, dev_id, qp_num, que_iso_cfg) and a mismatch answers
 *    EFAULT — after the driver has already taken the bytes, as it does;
 *  - RESUMING -> STOP takes exactly 40 bytes (nothing loaded) or 176 (loaded; zero DMA
 *    addresses mark the VF not ready), anything else is EINVAL. Strict reading: a stream
 *    whose match was refused is refused here too (the driver would load it), and the match
 *    is checked on every resume (the driver's match_done flag is never cleared).
 * The device's content is the 136 bytes after the match (QM registers and DMA addresses),
 * from a seed (content=), and whether its queues are ready; the digest covers both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vfio-migd/plugin.h>

#include "hisi.h"
#include "hisi_options.h"
#include "hisi_stream.h"

struct hisi_model {
    struct hisi_options o;
    uint8_t regs[HISI_STATE_SIZE - HISI_MATCH_SIZE]; /* the device's content after the match */
    int ready;                                       /* vf_qm_state == QM_READY */
};

struct hisi_mstream {
    struct hisi_model *m;
    int resume, match_done;
    uint8_t buf[HISI_STATE_SIZE];
    uint32_t pos, total;
};

static uint64_t
hisi_mix(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* Register words from the seed; the four DMA addresses nonzero and page aligned. */
static void
hisi_fill_regs(struct hisi_model *m, uint64_t seed)
{
    for (size_t i = 0; i < sizeof(m->regs); i += 8) {
        uint64_t w = hisi_mix(seed + i);

        memcpy(m->regs + i, &w, sizeof(m->regs) - i < 8 ? sizeof(m->regs) - i : 8);
    }
    for (size_t off = HISI_OFF_EQE_DMA; off < HISI_STATE_SIZE; off += 8) {
        uint64_t dma = (hisi_mix(seed ^ off) | UINT64_C(0x1000)) & ~UINT64_C(0xfff);

        memcpy(m->regs + off - HISI_MATCH_SIZE, &dma, 8);
    }
}

static int32_t
hisi_model_create(const struct vfio_migd_host *host, const char *options, void **ret_model,
                  char *why, uint32_t why_size)
{
    struct hisi_model *m = calloc(1, sizeof(*m));
    int r;

    if (!m) {
        return -ENOMEM;
    }
    r = hisi_options_parse(options, 1, &m->o, why, why_size);
    if (r < 0) {
        free(m);
        return r;
    }
    /* without content=, each device its own content, as two real VFs have */
    hisi_fill_regs(m, m->o.content_set ? m->o.content : host->clock_ns(host));
    m->ready = m->o.qm_ready;
    *ret_model = m;
    return 0;
}

static void
hisi_model_destroy(void *model)
{
    free(model);
}

static uint32_t
hisi_model_flags(void *model)
{
    (void) model;
    return 0x5; /* STOP_COPY | PRE_COPY */
}

static int32_t
hisi_model_data_size(void *model, uint32_t state, uint64_t *ret_bytes)
{
    (void) model;
    (void) state;
    *ret_bytes = HISI_STATE_SIZE;
    return 0;
}

/* hisi_acc_vf_stop_device(): the QM is paused and its interrupt status checked. */
static int32_t
hisi_model_arc(void *model, uint32_t from, uint32_t to)
{
    const struct hisi_model *m = model;
    int stops = (from == VFIO_MIGD_STATE_RUNNING && to == VFIO_MIGD_STATE_STOP) ||
                (from == VFIO_MIGD_STATE_PRE_COPY && to == VFIO_MIGD_STATE_STOP_COPY);

    return stops && m->o.irq_pending ? -EBUSY : 0;
}

/* vf_qm_get_match_data(): into a zeroed buffer, so vf_qm_state reads QM_READY (0). */
static void
hisi_match_data(const struct hisi_model *m, uint8_t *buf)
{
    struct hisi_match match = {
        .magic = m->o.magic,
        .qp_num = m->o.qp_num,
        .dev_id = m->o.dev_id,
        .que_iso_cfg = m->o.que_iso_cfg,
        .qp_base = m->o.qp_base,
        .vf_qm_state = HISI_QM_READY,
        .major_ver = HISI_DRV_MAJOR,
        .minor_ver = HISI_DRV_MINOR,
    };

    hisi_match_encode(&match, buf);
}

/* vf_qm_state_save(): the state goes after the match when the queues are ready. */
static void
hisi_state_save(struct hisi_mstream *s)
{
    uint32_t st = s->m->ready ? HISI_QM_READY : HISI_QM_NOT_READY;

    memcpy(s->buf + HISI_OFF_QM_STATE, &st, sizeof(st));
    if (!s->m->ready) {
        s->total = HISI_MATCH_SIZE;
        return;
    }
    memcpy(s->buf + HISI_MATCH_SIZE, s->m->regs, sizeof(s->m->regs));
    s->total = HISI_STATE_SIZE;
}

static int32_t
hisi_model_open(void *model, uint32_t from, uint32_t to, void **ret_stream)
{
    struct hisi_mstream *s = calloc(1, sizeof(*s));

    if (!s) {
        return -ENOMEM;
    }
    s->m = model;
    s->resume = to == VFIO_MIGD_STATE_RESUMING;
    if (!s->resume) {
        hisi_match_data(s->m, s->buf);
        s->total = HISI_MATCH_SIZE;
        if (from == VFIO_MIGD_STATE_STOP) {
            hisi_state_save(s); /* STOP -> STOP_COPY: match and state at once */
        }
    }
    *ret_stream = s;
    return 0;
}

static int32_t
hisi_model_advance(void *stream, uint32_t from, uint32_t to)
{
    (void) from;
    if (to == VFIO_MIGD_STATE_STOP_COPY) {
        hisi_state_save(stream);
    }
    return 0;
}

static int64_t
hisi_model_read(void *stream, uint8_t *buf, uint64_t size)
{
    struct hisi_mstream *s = stream;
    uint64_t n = s->total - s->pos;

    n = n < size ? n : size;
    memcpy(buf, s->buf + s->pos, (size_t) n);
    s->pos += (uint32_t) n;
    return (int64_t) n;
}

static int32_t
hisi_model_precopy_info(void *stream, uint64_t *ret_initial, uint64_t *ret_dirty)
{
    const struct hisi_mstream *s = stream;

    *ret_initial = s->total - s->pos;
    *ret_dirty = 0;
    return 0;
}

/* hisi_acc_vf_resume_write(): the bytes are taken first, then the match is checked. */
static int64_t
hisi_model_write(void *stream, const uint8_t *buf, uint64_t size)
{
    struct hisi_mstream *s = stream;
    const struct hisi_options *o = &s->m->o;
    struct hisi_expect e = {o->dev_id, o->qp_num, o->que_iso_cfg, 1, 1, 1};
    struct hisi_match match;
    char why[256];

    if (size > HISI_STATE_SIZE - s->pos) {
        return -ENOMEM;
    }
    memcpy(s->buf + s->pos, buf, (size_t) size);
    s->pos += (uint32_t) size;
    if (s->pos < HISI_MATCH_SIZE || s->match_done) {
        return (int64_t) size;
    }
    hisi_match_decode(s->buf, &match);
    if (hisi_match_check(&match, &e, why, sizeof(why)) < 0) {
        return -EFAULT;
    }
    s->match_done = 1;
    return (int64_t) size;
}

/* vf_qm_load_data() at RESUMING -> STOP. */
static int32_t
hisi_model_finish(void *stream)
{
    struct hisi_mstream *s = stream;
    static const uint8_t zero[8];

    if (s->pos == HISI_MATCH_SIZE && s->match_done) {
        return 0; /* only match data: nothing to load */
    }
    if (s->pos < HISI_STATE_SIZE || !s->match_done) {
        return -EINVAL;
    }
    for (size_t off = HISI_OFF_EQE_DMA; off < HISI_STATE_SIZE; off += 8) {
        if (memcmp(s->buf + off, zero, 8) == 0) {
            s->m->ready = 0; /* "resume dma addr is NULL": not ready, no load */
            return 0;
        }
    }
    memcpy(s->m->regs, s->buf + HISI_MATCH_SIZE, sizeof(s->m->regs));
    s->m->ready = 1;
    return 0;
}

static void
hisi_model_close(void *stream)
{
    free(stream);
}

/* FNV-1a over the content and the ready flag: what a save of the device carries. */
static uint64_t
hisi_model_digest(void *model)
{
    const struct hisi_model *m = model;
    uint64_t h = UINT64_C(0xCBF29CE484222325);

    if (!m->ready) {
        return hisi_mix(HISI_QM_NOT_READY);
    }
    for (size_t i = 0; i < sizeof(m->regs); i++) {
        h = (h ^ m->regs[i]) * UINT64_C(0x100000001B3);
    }
    return h;
}

const struct vfio_migd_sim_model hisi_sim_model = {
    .struct_size = sizeof(struct vfio_migd_sim_model),
    .name = "hisi",
    .create = hisi_model_create,
    .destroy = hisi_model_destroy,
    .mig_flags = hisi_model_flags,
    .data_size = hisi_model_data_size,
    .arc = hisi_model_arc,
    .stream_open = hisi_model_open,
    .stream_advance = hisi_model_advance,
    .stream_read = hisi_model_read,
    .stream_precopy_info = hisi_model_precopy_info,
    .stream_write = hisi_model_write,
    .stream_finish = hisi_model_finish,
    .stream_close = hisi_model_close,
    .digest = hisi_model_digest,
};
