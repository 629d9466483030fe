/* SPDX-License-Identifier: MIT */
/*
 * hisi — the vfio-migd plugin for HiSilicon Kunpeng accelerator VFs (ZIP 19e5:a251, SEC
 * 19e5:a256, HPRE 19e5:a259) under the hisi_acc_vfio_pci variant driver (kernel-uapi.md §9;
 * docs/vendors/hisi.md).
 *
 *   claims         the three VF IDs, and any device bound to hisi_acc_vfio_pci;
 *   prerequisites  bound to hisi_acc_vfio_pci, a VF, its PF bound to the native driver
 *                  (hisi_zip / hisi_sec2 / hisi_hpre), the PF's QM version >= V3 (0x30, the
 *                  PF's PCI revision): without these the driver binds without migration;
 *   descriptor     dev_id, qp_num, que_iso_cfg (what the driver itself matches) and
 *                  stream_magic (shown: a destination takes V1 and V2);
 *   stream         the 40-byte match data that pre-copy sends first (hisi_stream.c), checked
 *                  at the destination against its own device DURING PRE-COPY, where the
 *                  driver would answer EFAULT only inside the downtime;
 *   sim model      "hisi" (hisi_model.c).
 * For a real device the queue count and isolation are not in sysfs: the descriptor then has
 * dev_id only and the stream check compares what it knows. For a sim device everything comes
 * from its options (hisi_options.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vfio-migd/plugin.h>

#include "hisi.h"
#include "hisi_options.h"
#include "hisi_stream.h"

#define HISI_VENDOR 0x19e5u
#define HISI_VARIANT "hisi_acc_vfio_pci"
#define HISI_QM_V3 0x30u

static const struct vfio_migd_claim hisi_claims[] = {
    {.vendor_id = HISI_VENDOR, .device_id = 0xa251, .variant_driver = HISI_VARIANT},
    {.vendor_id = HISI_VENDOR, .device_id = 0xa256, .variant_driver = HISI_VARIANT},
    {.vendor_id = HISI_VENDOR, .device_id = 0xa259, .variant_driver = HISI_VARIANT},
    {.driver = HISI_VARIANT, .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID,
     .variant_driver = HISI_VARIANT}, /* VFIO_MIGD_CLAIM_DRIVER() plus its variant driver */
};

static const struct vfio_migd_rule hisi_rules[] = {
    {.field = "dev_id", .rule = VFIO_MIGD_RULE_EQUAL},
    {.field = "qp_num", .rule = VFIO_MIGD_RULE_EQUAL},
    {.field = "que_iso_cfg", .rule = VFIO_MIGD_RULE_EQUAL},
    {.field = "stream_magic", .rule = VFIO_MIGD_RULE_INFO},
};

/* What the hooks know of a device: a sim device's options, a real one's IDs and sysfs. */
struct hisi_view {
    int sim;
    struct hisi_options o; /* sim: all of it; real: dev_id only */
    const char *driver, *pf, *pf_driver;
    uint32_t qm_ver;
    int qm_ver_known;
};

/* The PF's QM version is its PCI revision (hisi_qm: qm->ver = pdev->revision). */
static int
hisi_read_revision(const struct vfio_migd_host *host, const char *pf, uint32_t *ret)
{
    char path[512], buf[32];
    unsigned v;
    FILE *f;
    int ok;

    (void) snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/revision", host->sysfs_root, pf);
    f = fopen(path, "re");
    if (!f) {
        return -errno;
    }
    ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "0x%x", &v) == 1 && v <= 0xff;
    (void) fclose(f);
    if (!ok) {
        return -EINVAL;
    }
    *ret = v;
    return 0;
}

static int
hisi_view_of(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
             struct hisi_view *v, char *why, uint32_t why_size)
{
    int r;

    *v = (struct hisi_view){.sim = dev->simulated != 0, .driver = dev->driver};
    if (v->sim) {
        r = hisi_options_parse(dev->sim_options, 0, &v->o, why, why_size);
        if (r < 0) {
            return r;
        }
        /* a model device IS the variant driver, unless driver= says it is bound elsewhere */
        v->driver = dev->driver[0] ? dev->driver : HISI_VARIANT;
        v->pf = "(sim)";
        v->pf_driver = v->o.pf_driver;
        v->qm_ver = v->o.qm_ver;
        v->qm_ver_known = 1;
        return 0;
    }
    v->o.dev_id = dev->device_id;
    v->pf = dev->parent;
    v->pf_driver = dev->parent_driver;
    v->qm_ver_known = dev->parent[0] && hisi_read_revision(host, dev->parent, &v->qm_ver) == 0;
    return 0;
}

static int32_t
hisi_prereq_pf(const struct vfio_migd_host *host, const struct hisi_view *v, const char *vf,
               struct vfio_migd_prereq_list *out)
{
    const char *native = hisi_native_driver(v->o.dev_id);
    int ok = native && strcmp(v->pf_driver, native) == 0;
    char msg[256] = "", fix[256] = "";
    int32_t r;

    if (!ok) {
        (void) snprintf(msg, sizeof(msg), "the PF %s is bound to '%s', not to %s: the variant "
                        "driver then binds the VF without migration", v->pf,
                        v->pf_driver[0] ? v->pf_driver : "no driver", native ? native : "its "
                        "native driver (hisi_zip, hisi_sec2 or hisi_hpre)");
        if (native) {
            /* the variant driver decides at probe: the VF is bound again afterwards */
            (void) snprintf(fix, sizeof(fix), "modprobe %s && echo %s > /sys/bus/pci/drivers/"
                            "%s/bind && vfio-migctl bind %s", native, v->pf, native,
                            vf[0] ? vf : "ADDRESS");
        }
    }
    r = host->prereq_add(out, "PF bound to its native driver", (uint32_t) ok, msg, fix);
    if (r < 0) {
        return r;
    }
    ok = v->qm_ver_known && v->qm_ver >= HISI_QM_V3;
    if (!ok && v->qm_ver_known) {
        (void) snprintf(msg, sizeof(msg), "the PF's QM is version 0x%02" PRIx32 ", migration "
                        "needs V3 (0x30) or later: this hardware cannot migrate", v->qm_ver);
    } else if (!ok) {
        (void) snprintf(msg, sizeof(msg), "the PF's QM version (its PCI revision) cannot be "
                        "read under %s/bus/pci/devices/%s", host->sysfs_root, v->pf);
    }
    return host->prereq_add(out, "PF QM version >= V3", (uint32_t) ok, ok ? "" : msg, "");
}

static int32_t
hisi_prerequisites(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                   struct vfio_migd_prereq_list *out)
{
    struct hisi_view v;
    char why[256], fix[128];
    int bound, vf;
    int32_t r;

    r = hisi_view_of(host, dev, &v, why, sizeof(why));
    if (r < 0) {
        return r;
    }
    bound = strcmp(v.driver, HISI_VARIANT) == 0;
    (void) snprintf(fix, sizeof(fix), "vfio-migctl bind %s", dev->address[0] ? dev->address
                                                                             : "ADDRESS");
    r = host->prereq_add(out, "bound to " HISI_VARIANT, (uint32_t) bound,
                         bound ? "" : "the VF is not bound to hisi_acc_vfio_pci, the driver "
                                      "that migrates it", bound ? "" : fix);
    vf = v.sim || v.pf[0];
    if (r >= 0) {
        r = host->prereq_add(out, "a VF", (uint32_t) vf, vf ? "" : "the device is not a VF "
                             "(no physfn): only VFs migrate; create them on the PF's "
                             "sriov_numvfs", "");
    }
    return r < 0 ? r : hisi_prereq_pf(host, &v, dev->address, out);
}

static const char *
hisi_magic_name(uint64_t magic, char *buf, size_t size)
{
    if (magic == HISI_MAGIC_V2 || magic == HISI_MAGIC_V1) {
        return magic == HISI_MAGIC_V2 ? "v2" : "v1";
    }
    (void) snprintf(buf, size, "0x%016" PRIx64, magic);
    return buf;
}

static int32_t
hisi_descriptor(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                struct vfio_migd_field_list *out, char *why, uint32_t why_size)
{
    struct hisi_view v;
    char text[32], qp_num[16], iso[16], magic[32];
    int32_t r;

    r = hisi_view_of(host, dev, &v, why, why_size);
    if (r < 0) {
        return r;
    }
    (void) snprintf(text, sizeof(text), "%04" PRIx32, v.o.dev_id);
    r = host->field_add(out, "dev_id", text);
    if (r < 0 || !v.sim) {
        return r; /* a real VF's queues and isolation are known to its driver only */
    }
    (void) snprintf(qp_num, sizeof(qp_num), "%" PRIu32, v.o.qp_num);
    (void) snprintf(iso, sizeof(iso), "%" PRIu32, v.o.que_iso_cfg);
    const struct vfio_migd_field fields[] = {
        {"qp_num", qp_num},
        {"que_iso_cfg", iso},
        {"stream_magic", hisi_magic_name(v.o.magic, magic, sizeof(magic))},
    };
    return vfio_migd_fields_add(host, out, fields, VFIO_MIGD_ELEMENTS(fields));
}

static int32_t
hisi_stream_open(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                 uint32_t direction, void **ret_state)
{
    struct hisi_parser *p = malloc(sizeof(*p));
    struct hisi_expect e = {0};
    struct hisi_view v;
    char why[256];

    if (!p) {
        return -ENOMEM;
    }
    /* a destination compares with itself; a source only parses */
    if (direction == VFIO_MIGD_STREAM_RESUME && hisi_view_of(host, dev, &v, why, sizeof(why)) == 0) {
        e = (struct hisi_expect){v.o.dev_id, v.o.qp_num, v.o.que_iso_cfg,
                                 v.o.dev_id != VFIO_MIGD_ANY_ID, v.sim, v.sim};
    }
    hisi_parser_init(p, &e);
    *ret_state = p;
    return 0;
}

static int32_t
hisi_stream_feed(const struct vfio_migd_host *host, void *state, const uint8_t *data,
                 uint64_t size, struct vfio_migd_stream_progress *progress, char *why,
                 uint32_t why_size)
{
    struct hisi_parser *p = state;
    int r;

    (void) host;
    r = hisi_parser_feed(p, data, size, why, why_size);
    if (r < 0) {
        return r;
    }
    progress->complete = (uint32_t) hisi_parser_complete(p);
    progress->expected_total = 0; /* 40 or 176: the stream does not say which */
    progress->stop_copy_size = 0;
    return 0;
}

static void
hisi_stream_close(const struct vfio_migd_host *host, void *state)
{
    (void) host;
    free(state);
}

static const struct vfio_migd_plugin hisi_plugin = {
    VFIO_MIGD_PLUGIN_HEADER,
    .name = "hisi",
    .version = "1.0",
    .description = "HiSilicon Kunpeng accelerator VFs (hisi_acc_vfio_pci: ZIP, SEC, HPRE)",
    .claims = hisi_claims,
    .n_claims = VFIO_MIGD_ELEMENTS(hisi_claims),
    .n_rules = VFIO_MIGD_ELEMENTS(hisi_rules),
    .rules = hisi_rules,
    .prerequisites = hisi_prerequisites,
    .descriptor = hisi_descriptor,
    .stream_open = hisi_stream_open,
    .stream_feed = hisi_stream_feed,
    .stream_close = hisi_stream_close,
    .sim_model = &hisi_sim_model,
};

VFIO_MIGD_PLUGIN_DEFINE_ENTRY(hisi_plugin)
