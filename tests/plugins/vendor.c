/* SPDX-License-Identifier: MIT */
/*
 * vendor — a made-up vendor plugin with one field of each rule, for the compatibility tests
 * (test_plugin_host.c, integration test_plugins.sh). It claims PCI device 1234:abcd and
 * describes a sim device from the sim's free-text option label=FW/PSID
 * (attach --sim pci=...,pci_id=1234:abcd,driver=vendor_vfio,label=22.36.1010/MT_0359):
 *   fw    at_least  the firmware version: the destination's must be at least the source's
 *   psid  equal     the board's PSID
 *   note  info      the device's name: shown, never compared
 * Prerequisites: bound to its variant driver vendor_vfio, with the command that does it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vfio-migd/plugin.h>

static const struct vfio_migd_claim claims[] = {
    {.vendor_id = 0x1234, .device_id = 0xabcd, .variant_driver = "vendor_vfio"},
};

static const struct vfio_migd_rule rules[] = {
    {.field = "fw", .rule = VFIO_MIGD_RULE_AT_LEAST},
    {.field = "psid", .rule = VFIO_MIGD_RULE_EQUAL},
    {.field = "note", .rule = VFIO_MIGD_RULE_INFO},
};

/* The value of @key in "k=v,k=v" into @buf, or @dflt. */
static void
option(const char *options, const char *key, const char *dflt, char *buf, size_t size)
{
    size_t klen = strlen(key);

    for (const char *p = options; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t n = strcspn(p + klen + 1, ",");
            (void) snprintf(buf, size, "%.*s", (int) n, p + klen + 1);
            return;
        }
    }
    (void) snprintf(buf, size, "%s", dflt);
}

static int32_t
vendor_prerequisites(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                     struct vfio_migd_prereq_list *out)
{
    int ok = strcmp(dev->driver, "vendor_vfio") == 0;
    char fix[128];

    (void) snprintf(fix, sizeof(fix), "vfio-migctl bind %s", dev->address);
    return host->prereq_add(out, "bound to vendor_vfio", (uint32_t) ok,
                            ok ? "" : "the function is not bound to its variant driver vendor_vfio",
                            ok ? "" : fix);
}

static int32_t
vendor_descriptor(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                  struct vfio_migd_field_list *out, char *why, uint32_t why_size)
{
    char label[128], *slash;
    const char *psid = "none";

    option(dev->sim_options, "label", "0", label, sizeof(label));
    slash = strchr(label, '/');
    if (slash) {
        *slash = '\0';
        psid = slash + 1;
    }
    if (strcmp(psid, "fail") == 0) {
        (void) snprintf(why, why_size, "the firmware of '%s' did not answer", dev->name);
        return -EIO;
    }
    const struct vfio_migd_field fields[] = {{"fw", label}, {"psid", psid}, {"note", dev->name}};
    return vfio_migd_fields_add(host, out, fields, VFIO_MIGD_ELEMENTS(fields));
}

static const struct vfio_migd_plugin plugin = {
    VFIO_MIGD_PLUGIN_HEADER,
    .name = "vendor",
    .version = "2.1",
    .description = "a made-up vendor for the tests",
    .claims = claims,
    .n_claims = 1,
    .n_rules = 3,
    .rules = rules,
    .prerequisites = vendor_prerequisites,
    .descriptor = vendor_descriptor,
};

VFIO_MIGD_PLUGIN_DEFINE_ENTRY(plugin)
