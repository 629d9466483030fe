/* SPDX-License-Identifier: MIT */
/*
 * failing — a plugin whose hooks fail: the descriptor hook answers -EIO with a sentence, the
 * prerequisites hook -EIO without one. Whatever asked (a migration, describe, show) is refused
 * with the plugin's words, and the device stays as it was (test_plugin_host.c; integration
 * test_plugins.sh: the source's state and last transition unchanged).
 */
#include <errno.h>
#include <stdio.h>

#include <vfio-migd/plugin.h>

static const struct vfio_migd_claim claims[] = {
    {.driver = "faildrv", .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID},
};

static int32_t
failing_prerequisites(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                      struct vfio_migd_prereq_list *out)
{
    (void) host, (void) dev, (void) out;
    return -EIO;
}

static int32_t
failing_descriptor(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                   struct vfio_migd_field_list *out, char *why, uint32_t why_size)
{
    /* A field first: the daemon must drop it with the failure, not keep half a descriptor. */
    (void) host->field_add(out, "half", "1");
    (void) snprintf(why, why_size, "the firmware of '%s' did not answer", dev->name);
    return -EIO;
}

static const struct vfio_migd_plugin plugin = {
    .abi_major = VFIO_MIGD_PLUGIN_ABI_MAJOR,
    .abi_minor = VFIO_MIGD_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(struct vfio_migd_plugin),
    .name = "failing",
    .version = "1",
    .claims = claims,
    .n_claims = 1,
    .prerequisites = failing_prerequisites,
    .descriptor = failing_descriptor,
};

VFIO_MIGD_PLUGIN_EXPORT const struct vfio_migd_plugin *
vfio_migd_plugin_entry(void)
{
    return &plugin;
}
