/* SPDX-License-Identifier: MIT */
/*
 * minimal — a plugin with a name, a version, one claim and NO hook at all: the ABI says
 * every hook may be NULL, and the daemon must then treat the device as no plugin claimed it
 * (test_plugin_host.c, integration test_plugins.sh).
 */
#include <vfio-migd/plugin.h>

static const struct vfio_migd_claim claims[] = {
    {.driver = "testdrv", .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID},
};

static const struct vfio_migd_plugin plugin = {
    .abi_major = VFIO_MIGD_PLUGIN_ABI_MAJOR,
    .abi_minor = VFIO_MIGD_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(struct vfio_migd_plugin),
    .name = "minimal",
    .version = "0.1",
    .claims = claims,
    .n_claims = 1,
};

VFIO_MIGD_PLUGIN_EXPORT const struct vfio_migd_plugin *
vfio_migd_plugin_entry(void)
{
    return &plugin;
}
