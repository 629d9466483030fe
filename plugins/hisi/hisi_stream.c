/* SPDX-License-Identifier: MIT */
/*
 * hisi_stream — see hisi_stream.h. Native endianness, as the driver copies its struct to and
 * from user space raw (the hosts are arm64, little-endian; a big-endian peer is not a case
 * the driver handles either).
 */
#include "hisi_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static uint64_t
rd64(const uint8_t *b, size_t off)
{
    uint64_t v;

    memcpy(&v, b + off, sizeof(v));
    return v;
}

static uint32_t
rd32(const uint8_t *b, size_t off)
{
    uint32_t v;

    memcpy(&v, b + off, sizeof(v));
    return v;
}

static uint16_t
rd16(const uint8_t *b, size_t off)
{
    uint16_t v;

    memcpy(&v, b + off, sizeof(v));
    return v;
}

void
hisi_match_decode(const uint8_t *b, struct hisi_match *ret)
{
    *ret = (struct hisi_match){
        .magic = rd64(b, HISI_OFF_MAGIC),
        .qp_num = rd32(b, HISI_OFF_QP_NUM),
        .dev_id = rd32(b, HISI_OFF_DEV_ID),
        .que_iso_cfg = rd32(b, HISI_OFF_ISO),
        .qp_base = rd32(b, HISI_OFF_QP_BASE),
        .vf_qm_state = rd32(b, HISI_OFF_QM_STATE),
        .major_ver = rd16(b, HISI_OFF_MAJOR),
        .minor_ver = rd16(b, HISI_OFF_MINOR),
    };
}

void
hisi_match_encode(const struct hisi_match *m, uint8_t *b)
{
    memset(b, 0, HISI_MATCH_SIZE);
    memcpy(b + HISI_OFF_MAGIC, &m->magic, 8);
    memcpy(b + HISI_OFF_QP_NUM, &m->qp_num, 4);
    memcpy(b + HISI_OFF_DEV_ID, &m->dev_id, 4);
    memcpy(b + HISI_OFF_ISO, &m->que_iso_cfg, 4);
    memcpy(b + HISI_OFF_QP_BASE, &m->qp_base, 4);
    memcpy(b + HISI_OFF_QM_STATE, &m->vf_qm_state, 4);
    memcpy(b + HISI_OFF_MAJOR, &m->major_ver, 2);
    memcpy(b + HISI_OFF_MINOR, &m->minor_ver, 2);
}

/* One field the destination compares, as the driver does (kernel-uapi.md §9.4). */
static int
hisi_field_check(const char *field, uint32_t have, uint32_t want, int known, char *why,
                 size_t why_size)
{
    if (!known || have == want) {
        return 0;
    }
    (void) snprintf(why, why_size, "%s: the stream has %" PRIu32 " (0x%" PRIx32 "), the "
                    "destination device %" PRIu32 " (0x%" PRIx32 "); its driver would refuse "
                    "the state with EFAULT", field, have, have, want, want);
    return -EMEDIUMTYPE;
}

int
hisi_match_check(const struct hisi_match *m, const struct hisi_expect *e, char *why,
                 size_t why_size)
{
    int r;

    if (m->magic == HISI_MAGIC_V2 && m->major_ver != HISI_DRV_MAJOR) {
        (void) snprintf(why, why_size, "major_ver: the stream's driver version is %u.%u, the "
                        "destination's driver takes %u.x", m->major_ver, m->minor_ver,
                        HISI_DRV_MAJOR);
        return -EBADMSG;
    }
    if (m->magic != HISI_MAGIC_V2 && m->magic != HISI_MAGIC_V1) {
        (void) snprintf(why, why_size, "acc_magic: the stream has 0x%016" PRIx64 ", the "
                        "destination's driver takes 0x%016" PRIx64 " (V2) or 0x%016" PRIx64
                        " (V1)", m->magic, HISI_MAGIC_V2, HISI_MAGIC_V1);
        return -EBADMSG;
    }
    r = hisi_field_check("dev_id", m->dev_id, e->dev_id, e->dev_id_known, why, why_size);
    if (r == 0) {
        r = hisi_field_check("qp_num", m->qp_num, e->qp_num, e->qp_num_known, why, why_size);
    }
    if (r == 0) {
        r = hisi_field_check("que_iso_cfg", m->que_iso_cfg, e->que_iso_cfg, e->iso_known, why,
                             why_size);
    }
    return r;
}

void
hisi_parser_init(struct hisi_parser *p, const struct hisi_expect *e)
{
    *p = (struct hisi_parser){.expect = *e};
}

int
hisi_parser_feed(struct hisi_parser *p, const uint8_t *data, uint64_t size, char *why,
                 size_t why_size)
{
    struct hisi_match m;
    int r;

    if (p->failed) {
        (void) snprintf(why, why_size, "the stream was refused already");
        return -EBADMSG;
    }
    /* the match first, then the length: the verdict must not depend on how the stream is
     * cut (the driver's does: one write past 176 bytes is ENOMEM before any match check) */
    if (p->pos < HISI_MATCH_SIZE) {
        uint64_t n = size < HISI_MATCH_SIZE - p->pos ? size : HISI_MATCH_SIZE - p->pos;

        memcpy(p->match + p->pos, data, (size_t) n);
        if (p->pos + n == HISI_MATCH_SIZE) {
            hisi_match_decode(p->match, &m);
            r = hisi_match_check(&m, &p->expect, why, why_size);
            if (r < 0) {
                p->failed = 1;
                return r;
            }
        }
    }
    if (size > HISI_STATE_SIZE - p->pos) {
        (void) snprintf(why, why_size, "the stream is longer than the %u bytes of the driver's "
                        "state (its driver would refuse it with ENOMEM)", HISI_STATE_SIZE);
        p->failed = 1;
        return -EBADMSG;
    }
    p->pos += size;
    return 0;
}

int
hisi_parser_complete(const struct hisi_parser *p)
{
    return !p->failed && (p->pos == HISI_MATCH_SIZE || p->pos == HISI_STATE_SIZE);
}
