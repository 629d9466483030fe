/* SPDX-License-Identifier: MIT */
#ifndef HISI_STREAM_H
#define HISI_STREAM_H

/*
 * hisi_stream — the HiSilicon accelerator VF's migration stream (hisi_acc_vfio_pci, Linux
 * 6.12.117; kernel-uapi.md §9.3-9.4): a raw native-endian struct acc_vf_data of 176 bytes,
 * whose first 40 bytes are the "match data" the destination driver checks against its own
 * device. Pure code (no I/O): the layout, the driver's own match check, and a parser fed the
 * stream in pieces of any size, as the daemon's destination feeds it before the bytes reach
 * the device. Shared by the plugin's stream hooks and its sim model (hisi_model.c), so that
 * the two can never disagree about a byte.
 */

#include <stddef.h>
#include <stdint.h>

#define HISI_MATCH_SIZE 40u  /* QM_MATCH_SIZE */
#define HISI_STATE_SIZE 176u /* sizeof(struct acc_vf_data) */
#define HISI_MAGIC_V1 UINT64_C(0xCDCDCDCDFEEDAACC)
#define HISI_MAGIC_V2 UINT64_C(0xAACCFEEDDECADEDE)
#define HISI_DRV_MAJOR 1u /* ACC_DRV_MAJOR_VER */
#define HISI_DRV_MINOR 0u
#define HISI_QM_READY 0u
#define HISI_QM_NOT_READY 1u

/* Byte offsets in struct acc_vf_data. */
enum {
    HISI_OFF_MAGIC = 0,     /* u64 acc_magic */
    HISI_OFF_QP_NUM = 8,    /* u32 */
    HISI_OFF_DEV_ID = 12,   /* u32 */
    HISI_OFF_ISO = 16,      /* u32 que_iso_cfg */
    HISI_OFF_QP_BASE = 20,  /* u32 */
    HISI_OFF_QM_STATE = 24, /* u32 vf_qm_state */
    HISI_OFF_MAJOR = 28,    /* u16 major_ver */
    HISI_OFF_MINOR = 30,    /* u16 minor_ver */
    HISI_OFF_RSV = 32,      /* u32 qm_rsv_state[2] */
    HISI_OFF_REGS = 40,     /* u32 aeq_int_mask .. page_size, eqc, aeqc, rsv regs, padding */
    HISI_OFF_EQE_DMA = 144, /* u64 eqe_dma, aeqe_dma, sqc_dma, cqc_dma */
};

/* The match data (the first 40 bytes), decoded. */
struct hisi_match {
    uint64_t magic;
    uint32_t qp_num, dev_id, que_iso_cfg, qp_base, vf_qm_state;
    uint16_t major_ver, minor_ver;
};

void hisi_match_decode(const uint8_t *b, struct hisi_match *ret);
/* Writes the 40 match bytes (qm_rsv_state zero). */
void hisi_match_encode(const struct hisi_match *m, uint8_t *b);

/* What a destination device is, for the match: each value with whether it is known (a real
 * device's queue count and isolation are not in sysfs; only its stream check knows them). */
struct hisi_expect {
    uint32_t dev_id, qp_num, que_iso_cfg;
    int dev_id_known, qp_num_known, iso_known;
};

/* The driver's vf_qm_check_match(), in its order: the magic (V2 needs major_ver 1, V1 is
 * accepted, anything else is not), then dev_id, qp_num and que_iso_cfg against @e. 0, or
 * -EBADMSG (a magic or version the driver does not take) or -EMEDIUMTYPE (a field that
 * differs from the destination's), with a sentence naming the field in @why. */
int hisi_match_check(const struct hisi_match *m, const struct hisi_expect *e, char *why,
                     size_t why_size);

/* A destination's parser: the match is checked as soon as 40 bytes are in, anything past 176
 * bytes is refused. */
struct hisi_parser {
    struct hisi_expect expect;
    uint64_t pos;
    uint8_t match[HISI_MATCH_SIZE];
    int failed; /* a refused feed: every later one is refused too */
};

void hisi_parser_init(struct hisi_parser *p, const struct hisi_expect *e);
/* The next @size bytes. 0, or -EBADMSG / -EMEDIUMTYPE with @why (see hisi_match_check), or
 * -EBADMSG for bytes past 176 (checked after the match, so the verdict does not depend on
 * how the stream is cut). A refused feed consumed nothing. */
int hisi_parser_feed(struct hisi_parser *p, const uint8_t *data, uint64_t size, char *why,
                     size_t why_size);
/* 1 when what was fed is a whole stream the driver's RESUMING -> STOP takes: the 40 match
 * bytes alone (a VF whose guest never started its queues), or all 176. */
int hisi_parser_complete(const struct hisi_parser *p);

#endif /* HISI_STREAM_H */
