/* SPDX-License-Identifier: MIT */
/*
 * small — a plugin whose descriptor is smaller than this header's (as one built against an
 * older minor would be): struct_size stops before the hooks, so the daemon must read them as
 * NULL even though the memory after the plugin's struct holds pointers to functions that
 * abort. The claims and rules inside struct_size are used.
 */
#include <stddef.h>
#include <stdlib.h>

#include <vfio-migd/plugin.h>

static const struct vfio_migd_claim claims[] = {
    {.driver = "smalldrv", .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID},
};

static int32_t
never(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
      struct vfio_migd_prereq_list *out)
{
    (void) host, (void) dev, (void) out;
    abort();
}

static int32_t
never_describe(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
               struct vfio_migd_field_list *out, char *why, uint32_t why_size)
{
    (void) host, (void) dev, (void) out, (void) why, (void) why_size;
    abort();
}

static const struct vfio_migd_plugin plugin = {
    .abi_major = VFIO_MIGD_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .struct_size = offsetof(struct vfio_migd_plugin, prerequisites),
    .name = "small",
    .version = "0.0.1",
    .claims = claims,
    .n_claims = 1,
    .prerequisites = never,
    .descriptor = never_describe,
};

VFIO_MIGD_PLUGIN_EXPORT const struct vfio_migd_plugin *
vfio_migd_plugin_entry(void)
{
    return &plugin;
}
