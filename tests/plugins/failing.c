/* SPDX-License-Identifier: MIT */
/*
 * failing — a plugin whose hooks fail: the descriptor hook answers -EIO with a sentence, the
 * prerequisites hook -EIO without one. Whatever asked (a migration, describe, show) is refused
 * with the plugin's words, and the device stays as it was (test_plugin_host.c; integration
 * test_plugins.sh: the source's state and last transition unchanged).
 */
#include <errno.h>
#include <stdio.h>

#include "test_plugin.h"

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

TEST_PLUGIN("faildrv", "failing", "1", .prerequisites = failing_prerequisites,
            .descriptor = failing_descriptor)
