/* SPDX-License-Identifier: MIT */
/*
 * mtty — the vfio-migd plugin for the kernel's mtty sample device (samples/vfio-mdev/mtty.c,
 * a virtual 16550 UART mdev with migration support since Linux 6.7), and the example for
 * plugin authors: docs/plugins.md walks through this file.
 *
 * What it does, hook by hook (include/vfio-migd/plugin.h has the contracts):
 *   claims         mdevs of type mtty-1 and mtty-2 bound to the mtty driver;
 *   prerequisites  bound to mtty, and of a type this plugin knows;
 *   descriptor     ports (1 or 2) and stream_version ("1.0"): the driver accepts a stream
 *                  only into a device of the same port count, and only version 1.0;
 *   rules          both equal; mdev_type is shown but not compared (ports decides);
 *   stream         the 24-byte header (mtty_stream.c): at the destination it is checked
 *                  against the destination's port count BEFORE the bytes reach the device,
 *                  which would answer -EFAULT inside the switchover; progress knows the
 *                  stream's total size (24 + 36 x ports) from the header.
 * No pre-copy driving (mtty's pre-copy is the header alone, read() then returns 0) and no sim
 * model (the sim back-end's generic model is what tests use with driver=mtty).
 *
 * Everything here goes through the host services it is given; nothing is reached for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vfio-migd/plugin.h>

#include "mtty_stream.h"

#define MTTY_STREAM_VERSION "1.0" /* MTTY_MAJOR.MTTY_MINOR: what the 6.7+ driver writes */

static const struct vfio_migd_claim mtty_claims[] = {
    {.driver = "mtty", .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID,
     .mdev_type = "mtty-1"},
    {.driver = "mtty", .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID,
     .mdev_type = "mtty-2"},
};

static const struct vfio_migd_rule mtty_rules[] = {
    {.field = "ports", .rule = VFIO_MIGD_RULE_EQUAL},
    {.field = "stream_version", .rule = VFIO_MIGD_RULE_EQUAL},
    {.field = "mdev_type", .rule = VFIO_MIGD_RULE_INFO},
};

static int32_t
mtty_prerequisites(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                   struct vfio_migd_prereq_list *out)
{
    int bound = strcmp(dev->driver, "mtty") == 0;
    int typed = mtty_ports_of_type(dev->mdev_type) > 0;
    int32_t r;

    r = host->prereq_add(out, "bound to the mtty driver", (uint32_t) bound,
                         bound ? "" : "the mdev is not bound to the mtty driver",
                         bound ? "" : "modprobe mtty");
    if (r < 0) {
        return r;
    }
    return host->prereq_add(out, "an mtty-1 or mtty-2 mdev", (uint32_t) typed,
                            typed ? "" : "the mdev's type is neither mtty-1 nor mtty-2",
                            typed ? "" : "create it with: uuidgen > /sys/devices/virtual/mtty/"
                                         "mtty/mdev_supported_types/mtty-2/create");
}

static int32_t
mtty_descriptor(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                struct vfio_migd_field_list *out, char *why, uint32_t why_size)
{
    int ports = mtty_ports_of_type(dev->mdev_type);
    char text[16];

    if (ports < 0) {
        (void) snprintf(why, why_size, "mdev type '%s' is not mtty-1 or mtty-2", dev->mdev_type);
        return -EINVAL;
    }
    (void) snprintf(text, sizeof(text), "%d", ports);
    const struct vfio_migd_field fields[] = {
        {"ports", text}, {"stream_version", MTTY_STREAM_VERSION}, {"mdev_type", dev->mdev_type}};
    return vfio_migd_fields_add(host, out, fields, VFIO_MIGD_ELEMENTS(fields));
}

static int32_t
mtty_stream_open(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                 uint32_t direction, void **ret_state)
{
    struct mtty_stream *s = malloc(sizeof(*s));
    int ports = mtty_ports_of_type(dev->mdev_type);

    (void) host;
    if (!s) {
        return -ENOMEM;
    }
    /* A destination checks the stream against its own port count; a source only parses. */
    mtty_stream_init(s, direction == VFIO_MIGD_STREAM_RESUME && ports > 0 ? (uint32_t) ports : 0);
    *ret_state = s;
    return 0;
}

static int32_t
mtty_stream_feed_hook(const struct vfio_migd_host *host, void *state, const uint8_t *data,
                      uint64_t size, struct vfio_migd_stream_progress *progress, char *why,
                      uint32_t why_size)
{
    struct mtty_stream *s = state;
    int r;

    (void) host;
    r = mtty_stream_feed(s, data, (size_t) size, why, why_size);
    if (r < 0) {
        return r;
    }
    progress->expected_total = s->total;
    progress->stop_copy_size = s->total;
    progress->complete = s->total > 0 && s->pos == s->total;
    return 0;
}

static void
mtty_stream_close(const struct vfio_migd_host *host, void *state)
{
    (void) host;
    free(state);
}

static const struct vfio_migd_plugin mtty_plugin = {
    VFIO_MIGD_PLUGIN_HEADER,
    .name = "mtty",
    .version = "1.0",
    .description = "the kernel's mtty sample UART (samples/vfio-mdev/mtty.c)",
    .claims = mtty_claims,
    .n_claims = VFIO_MIGD_ELEMENTS(mtty_claims),
    .n_rules = VFIO_MIGD_ELEMENTS(mtty_rules),
    .rules = mtty_rules,
    .prerequisites = mtty_prerequisites,
    .descriptor = mtty_descriptor,
    .stream_open = mtty_stream_open,
    .stream_feed = mtty_stream_feed_hook,
    .stream_close = mtty_stream_close,
};

VFIO_MIGD_PLUGIN_DEFINE_ENTRY(mtty_plugin)
