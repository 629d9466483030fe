/* SPDX-License-Identifier: MIT */
/*
 * other_major — a plugin built against another ABI major (the next one): the daemon must
 * refuse it with one log line that says expected vs found, and never call it.
 */
#include <stdlib.h>

#include <vfio-migd/plugin.h>

static const struct vfio_migd_claim claims[] = {
    {.driver = "testdrv", .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID},
};

/* Would the daemon call it, the test process would abort. */
static int32_t
never(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
      struct vfio_migd_prereq_list *out)
{
    (void) host, (void) dev, (void) out;
    abort();
}

static const struct vfio_migd_plugin plugin = {
    .abi_major = VFIO_MIGD_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .struct_size = sizeof(struct vfio_migd_plugin),
    .name = "other_major",
    .version = "9.9",
    .claims = claims,
    .n_claims = 1,
    .prerequisites = never,
};

VFIO_MIGD_PLUGIN_EXPORT const struct vfio_migd_plugin *
vfio_migd_plugin_entry(void)
{
    return &plugin;
}
