/* SPDX-License-Identifier: MIT */
#ifndef HISI_OPTIONS_H
#define HISI_OPTIONS_H

/*
 * hisi_options — the keys of the hisi sim model (attach --sim model=hisi,KEY=VALUE,...),
 * read by the model's create (strictly: an unknown key is refused) and by the plugin's
 * descriptor and prerequisites hooks for a sim device (from its whole options string, where
 * the sim's own keys are skipped). docs/vendors/hisi.md lists them.
 */

#include <stddef.h>
#include <stdint.h>

#define HISI_DRIVER_NAME_MAX 32

struct hisi_options {
    uint32_t dev_id;      /* dev_id=a251|a256|a259 (the VF's PCI device ID) */
    uint32_t qp_num;      /* qp_num=1..1024: queue pairs of the VF */
    uint32_t que_iso_cfg; /* iso=0|1: the PF's queue isolation setting */
    uint32_t qp_base;     /* qp_base=0..1023 */
    uint64_t magic;       /* magic=v2|v1|0xHEX: the acc_magic the device writes */
    int qm_ready;         /* qm_ready=1|0: the guest started the VF's queues */
    uint64_t content;     /* content=N: seed of the QM register values */
    int content_set;
    int irq_pending;      /* irq_pending=1: stopping the device fails with EBUSY */
    char pf_driver[HISI_DRIVER_NAME_MAX]; /* pf_driver=: the PF's driver (default native) */
    uint32_t qm_ver;      /* qm_ver=0xNN: the PF's QM version (default 0x30, V3) */
};

/* Parses "key=value,..." into @o (defaults first). @strict: a key that is not the model's is
 * refused (the model's create, which gets only the keys the sim does not know); otherwise it
 * is skipped (a sim device's whole options string). 0, or -EINVAL with a sentence in @why. */
int hisi_options_parse(const char *options, int strict, struct hisi_options *o, char *why,
                       size_t why_size);

/* The PF driver that owns a VF of @dev_id ("hisi_zip", "hisi_sec2", "hisi_hpre"), or NULL. */
const char *hisi_native_driver(uint32_t dev_id);

#endif /* HISI_OPTIONS_H */
