/* SPDX-License-Identifier: MIT */
/*
 * mlx5 — the vfio-migd plugin for NVIDIA ConnectX VFs bound to mlx5_vfio_pci
 * (drivers/vfio/pci/mlx5; reference: kernel-uapi.md §8; docs/vendors/mlx5.md).
 *
 *   claims         15b3:101e, whatever it is bound to (the prerequisites say what is wrong),
 *                  to be bound to the variant driver mlx5_vfio_pci (`vfio-migctl bind`);
 *   prerequisites  bound to mlx5_vfio_pci (plain vfio-pci has no migration: QEMU's "VFIO
 *                  migration is not supported in kernel"); the PF's eswitch in switchdev
 *                  mode (devlink port functions exist only there); the VF's port function
 *                  `migratable` enabled — read over devlink (host->devlink_get); the driver
 *                  looks at it only when it probes the VF, so the fix enables it and
 *                  rebinds. Without devlink the checks say "cannot tell", never ok;
 *   descriptor     psid (devlink dev info board.id of the PF), fw_version (fw.version),
 *                  device_id, chunk_mode (whether the firmware saves in chunks, lifting the
 *                  4 GiB image limit: not visible from user space on a real device);
 *   rules          psid and fw_version equal (firmware judges an image by both, and only
 *                  inside the destination's write(), during the downtime); device_id and
 *                  chunk_mode shown, not compared;
 *   stream         the 16-byte record headers (mlx5_stream.c): a destination refuses what
 *                  the driver would refuse before the bytes reach the device, and progress
 *                  learns the stop-copy size from the STOP_COPY_SIZE record;
 *   pre-copy       read() alone never produces new pre-copy data (-ENOMSG once the queue is
 *                  read): VFIO_MIG_GET_PRECOPY_INFO starts the next incremental SAVE, so the
 *                  refill hook calls it and says whether data is readable again.
 * A sim device (attach --sim model=mlx5,...) is described from its options instead of sysfs
 * and devlink: psid=, fw=, migratable=, eswitch=, chunk= (mlx5_sim.c models the driver).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vfio-migd/plugin.h>

#include "mlx5_plugin.h"
#include "mlx5_sim.h"
#include "mlx5_stream.h"

static const struct vfio_migd_claim mlx5_claims[] = {
    {.vendor_id = MLX5_VENDOR_ID, .device_id = MLX5_VF_DEVICE_ID,
     .variant_driver = MLX5_VARIANT_DRIVER},
};

static const struct vfio_migd_rule mlx5_rules[] = {
    {.field = "psid", .rule = VFIO_MIGD_RULE_EQUAL},
    {.field = "fw_version", .rule = VFIO_MIGD_RULE_EQUAL},
    {.field = "device_id", .rule = VFIO_MIGD_RULE_INFO},
    {.field = "chunk_mode", .rule = VFIO_MIGD_RULE_INFO},
};

/* A sim device answers devlink queries from its options, with a real device's defaults. */
static const struct {
    const char *attribute, *key, *dflt;
} mlx5_sim_devlink[] = {
    {"board.id", "psid", MLX5_SIM_PSID},
    {"fw.version", "fw", MLX5_SIM_FW},
    {"eswitch_mode", "eswitch", "switchdev"},
    {"function.migratable", "migratable", "1"},
};

int
mlx5_option(const char *options, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);

    for (const char *p = options; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t n = strcspn(p + klen + 1, ",");

            if (n >= size) {
                return -ENOBUFS;
            }
            memcpy(buf, p + klen + 1, n);
            buf[n] = '\0';
            return 1;
        }
    }
    return 0;
}

/* devlink_get for @dev: the host's for a real device, the options for a sim one. */
static int32_t
mlx5_devlink(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
             const char *handle, const char *attribute, char *buf, uint32_t size)
{
    if (!dev->simulated) {
        return host->devlink_get(host, handle, attribute, buf, size);
    }
    if (strncmp(attribute, "port_of:", 8) == 0) {
        return snprintf(buf, size, "%s/1", handle) < (int) size ? 0 : -ENOBUFS;
    }
    for (size_t i = 0; i < sizeof(mlx5_sim_devlink) / sizeof(mlx5_sim_devlink[0]); i++) {
        if (strcmp(mlx5_sim_devlink[i].attribute, attribute) == 0) {
            int r = mlx5_option(dev->sim_options, mlx5_sim_devlink[i].key, buf, size);

            if (r == 0) {
                r = snprintf(buf, size, "%s", mlx5_sim_devlink[i].dflt) < (int) size ? 1 : -ENOBUFS;
            }
            if (r > 0 && strcmp(attribute, "function.migratable") == 0) {
                (void) snprintf(buf, size, "%s", strcmp(buf, "0") == 0 ? "disable" : "enable");
            }
            return r < 0 ? r : 0;
        }
    }
    return -ENOENT;
}

/* "pci/<PF>": the PF's devlink handle (a sim device without one: a placeholder). */
static void
mlx5_pf_handle(const struct vfio_migd_device *dev, char *buf, size_t size)
{
    (void) snprintf(buf, size, "pci/%s", dev->parent[0] ? dev->parent : "<PF>");
}

/* One check: a met one says nothing more, a failing one what is wrong and its fix. */
static int32_t
mlx5_prereq_add(const struct vfio_migd_host *host, struct vfio_migd_prereq_list *out,
                const char *check, int ok, const char *message, const char *fix)
{
    return host->prereq_add(out, check, (uint32_t) !!ok, ok ? "" : message, ok ? "" : fix);
}

static int32_t
mlx5_prereq_bound(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                  struct vfio_migd_prereq_list *out)
{
    int ok = strcmp(dev->driver, MLX5_VARIANT_DRIVER) == 0;
    char message[256], fix[128];

    (void) snprintf(message, sizeof(message), "%s%s%s: plain vfio-pci and mlx5_core have no "
                    "mlx5 migration (QEMU says 'VFIO migration is not supported in kernel')",
                    dev->driver[0] ? "bound to " : "not bound to any driver",
                    dev->driver, dev->driver[0] ? ", not mlx5_vfio_pci" : "");
    (void) snprintf(fix, sizeof(fix), "vfio-migctl bind %s",
                    dev->address[0] ? dev->address : "ADDRESS");
    return mlx5_prereq_add(host, out, "bound to " MLX5_VARIANT_DRIVER, ok, message, fix);
}

/* "cannot tell" with why: a failed query is never a pass. */
static void
mlx5_cannot_tell(char *message, size_t size, const char *what, const char *handle, int32_t r)
{
    (void) snprintf(message, size, "cannot tell: reading %s of %s over devlink failed: %s", what,
                    handle, r == -EOPNOTSUPP ? "this host or daemon has no devlink access"
                            : r == -ENOENT ? "devlink does not know it"
                                           : strerror(-r));
}

static int32_t
mlx5_prereq_switchdev(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                      struct vfio_migd_prereq_list *out)
{
    char pf[96], mode[32] = "", message[256], fix[160];
    int32_t r;

    mlx5_pf_handle(dev, pf, sizeof(pf));
    r = mlx5_devlink(host, dev, pf, "eswitch_mode", mode, sizeof(mode));
    if (r < 0) {
        mlx5_cannot_tell(message, sizeof(message), "the eswitch mode", pf, r);
    } else {
        (void) snprintf(message, sizeof(message), "the PF's eswitch is in %s mode: devlink "
                        "port functions, and so 'migratable', exist only in switchdev mode",
                        mode);
    }
    (void) snprintf(fix, sizeof(fix), "devlink dev eswitch set %s mode switchdev", pf);
    return mlx5_prereq_add(host, out, "PF eswitch in switchdev mode", r == 0 &&
                           strcmp(mode, "switchdev") == 0, message, fix);
}

static int32_t
mlx5_prereq_migratable(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                       struct vfio_migd_prereq_list *out)
{
    char pf[96], query[96], port[112] = "", value[32] = "", message[256], fix[320];
    const char *vf = dev->address[0] ? dev->address : "VF";
    int32_t r;

    mlx5_pf_handle(dev, pf, sizeof(pf));
    (void) snprintf(query, sizeof(query), "port_of:%s", vf);
    r = mlx5_devlink(host, dev, pf, query, port, sizeof(port));
    if (r < 0) {
        (void) snprintf(port, sizeof(port), "%s/<port>", pf);
        mlx5_cannot_tell(message, sizeof(message), "the VF's port", pf, r);
    } else if ((r = mlx5_devlink(host, dev, port, "function.migratable", value,
                                 sizeof(value))) < 0) {
        mlx5_cannot_tell(message, sizeof(message), "function.migratable", port, r);
    } else {
        (void) snprintf(message, sizeof(message), "the VF's devlink port function is not "
                        "migratable (%s); mlx5_vfio_pci looks only when it probes the VF, so "
                        "enable it, then rebind the VF", value);
    }
    (void) snprintf(fix, sizeof(fix), "devlink port function set %s migratable enable && echo %s"
                    " > /sys/bus/pci/drivers/mlx5_vfio_pci/unbind && echo %s > "
                    "/sys/bus/pci/drivers/mlx5_vfio_pci/bind", port, vf, vf);
    return mlx5_prereq_add(host, out, "VF port function migratable", r == 0 &&
                           strcmp(value, "enable") == 0, message, fix);
}

static int32_t
mlx5_prerequisites(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                   struct vfio_migd_prereq_list *out)
{
    int32_t r = mlx5_prereq_bound(host, dev, out);

    if (r >= 0) {
        r = mlx5_prereq_switchdev(host, dev, out);
    }
    if (r >= 0) {
        r = mlx5_prereq_migratable(host, dev, out);
    }
    return r;
}

/* One devlink value of the PF into a field; the descriptor fails without it. */
static int32_t
mlx5_field_devlink(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                   struct vfio_migd_field_list *out, const char *field, const char *attribute,
                   char *why, uint32_t why_size)
{
    char pf[96], value[129];
    int32_t r;

    mlx5_pf_handle(dev, pf, sizeof(pf));
    r = mlx5_devlink(host, dev, pf, attribute, value, sizeof(value));
    if (r < 0) {
        mlx5_cannot_tell(why, why_size, attribute, pf, r);
        return r;
    }
    return host->field_add(out, field, value);
}

static int32_t
mlx5_descriptor(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                struct vfio_migd_field_list *out, char *why, uint32_t why_size)
{
    char id[16], chunk[16] = "unknown";
    int32_t r;

    r = mlx5_field_devlink(host, dev, out, "psid", "board.id", why, why_size);
    if (r >= 0) {
        r = mlx5_field_devlink(host, dev, out, "fw_version", "fw.version", why, why_size);
    }
    (void) snprintf(id, sizeof(id), "%04x", dev->device_id == VFIO_MIGD_ANY_ID
                                                ? MLX5_VF_DEVICE_ID : dev->device_id);
    if (r >= 0) {
        r = host->field_add(out, "device_id", id);
    }
    if (dev->simulated && mlx5_option(dev->sim_options, "chunk", chunk, sizeof(chunk)) == 0) {
        (void) snprintf(chunk, sizeof(chunk), "1");
    }
    if (r >= 0) {
        r = host->field_add(out, "chunk_mode", strcmp(chunk, "0") == 0   ? "no"
                                               : strcmp(chunk, "1") == 0 ? "yes"
                                                                         : "unknown");
    }
    return r;
}

static int32_t
mlx5_stream_open(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                 uint32_t direction, void **ret_state)
{
    struct mlx5_stream *s = malloc(sizeof(*s));

    (void) host;
    (void) dev;
    (void) direction; /* the stream names no device: firmware judges it, by PSID and version */
    if (!s) {
        return -ENOMEM;
    }
    mlx5_stream_init(s);
    *ret_state = s;
    return 0;
}

static int32_t
mlx5_stream_feed_hook(const struct vfio_migd_host *host, void *state, const uint8_t *data,
                      uint64_t size, struct vfio_migd_stream_progress *progress, char *why,
                      uint32_t why_size)
{
    struct mlx5_stream *s = state;
    int r;

    (void) host;
    r = mlx5_stream_feed(s, data, (size_t) size, why, why_size);
    if (r < 0) {
        return r;
    }
    progress->stop_copy_size = s->stop_copy_size;
    progress->complete = (uint32_t) mlx5_stream_complete(s);
    return 0;
}

static void
mlx5_stream_close(const struct vfio_migd_host *host, void *state)
{
    (void) host;
    free(state);
}

static int32_t
mlx5_precopy_refill(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                    const struct vfio_migd_precopy_io *io, uint64_t *ret_initial_bytes,
                    uint64_t *ret_dirty_bytes)
{
    uint64_t initial = 0, dirty = 0;
    int32_t r;

    (void) host;
    (void) dev;
    /* With the queue read, the ioctl queries the firmware and, when the device has dirty
     * state, starts the next incremental SAVE: both counters then cover what it queued. */
    r = io->precopy_info(io->ctx, &initial, &dirty);
    if (r < 0) {
        return r;
    }
    *ret_initial_bytes = initial;
    *ret_dirty_bytes = dirty;
    return initial + dirty > 0;
}

static const struct vfio_migd_plugin mlx5_plugin = {
    VFIO_MIGD_PLUGIN_HEADER,
    .name = "mlx5",
    .version = "1.0",
    .description = "NVIDIA ConnectX VFs bound to mlx5_vfio_pci",
    .claims = mlx5_claims,
    .n_claims = VFIO_MIGD_ELEMENTS(mlx5_claims),
    .n_rules = VFIO_MIGD_ELEMENTS(mlx5_rules),
    .rules = mlx5_rules,
    .prerequisites = mlx5_prerequisites,
    .descriptor = mlx5_descriptor,
    .stream_open = mlx5_stream_open,
    .stream_feed = mlx5_stream_feed_hook,
    .stream_close = mlx5_stream_close,
    .precopy_refill = mlx5_precopy_refill,
    .sim_model = &mlx5_sim_model,
    .max_migrating_per_parent = 4, /* the firmware migrates at most 4 VFs of a PF at once */
};

VFIO_MIGD_PLUGIN_DEFINE_ENTRY(mlx5_plugin)
