/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sysfs — arbitrary bytes through the kernel back-end's sysfs parsers
 * (daemon/backend/kernel_sysfs.c): the device addresses a request names (PCI address, mdev
 * UUID, cdev path), a driver's name, and what the sysfs links read (a link target's last
 * component, an IOMMU group's number).
 * Properties, besides no crash and no out-of-bounds access:
 *   - a refused input leaves the output untouched;
 *   - an accepted address is written canonically (lower case, a PCI address with its
 *     domain), and the canonical spelling is accepted as itself (one spelling per device,
 *     so the same device cannot be attached twice under two names);
 *   - a link's name is a non-empty last component of the target; a group number is the
 *     number written ("%u" of it parses back to it).
 * The input is used up to its first NUL, as a string from a request or readlink() is.
 */
#include <errno.h>
#include <limits.h>

#include "backend/kernel_sysfs.h"
#include "fuzz.h"

typedef int (*ParseFn)(const char *s, char *buf, size_t size);

/* A name parser: refusal touches nothing, acceptance is canonical and a fixed point. */
static void
check_name(ParseFn parse, const char *s, const char *what)
{
    char out[KERNEL_SYSFS_NAME_MAX], again[KERNEL_SYSFS_NAME_MAX], full[KERNEL_SYSFS_NAME_MAX + 32];

    memset(out, 0x5a, sizeof(out));
    if (parse(s, out, sizeof(out)) < 0) {
        for (size_t i = 0; i < sizeof(out); i++) {
            fuzz_check(out[i] == 0x5a, "a refused name leaves the output untouched");
        }
        return;
    }
    fuzz_outcome = what;
    for (const char *p = out; *p; p++) {
        fuzz_check(isprint((unsigned char) *p) && !isupper((unsigned char) *p),
                   "a canonical name is printable and lower case");
    }
    /* A cdev is parsed from its path and written as its name. */
    (void) snprintf(full, sizeof(full), "%s%s", parse == kernel_sysfs_parse_cdev_path ?
                    "/dev/vfio/devices/" : "", out);
    fuzz_check(parse(full, again, sizeof(again)) == 0 && strcmp(again, out) == 0,
               "a canonical name parses to itself");
}

static void
check_link(const char *s)
{
    char name[256];
    unsigned group = 0xdeadbeef, back;
    size_t len;

    if (kernel_sysfs_link_name(s, name, sizeof(name)) == 0) {
        len = strlen(name);
        fuzz_check(len > 0 && !strchr(name, '/'), "a link's name is one non-empty component");
        fuzz_check(strlen(s) >= len && strcmp(s + strlen(s) - len, name) == 0,
                   "a link's name ends its target");
    }
    if (kernel_sysfs_parse_group(s, &group) < 0) {
        fuzz_check(group == 0xdeadbeef, "a refused group leaves the output untouched");
        return;
    }
    (void) snprintf(name, sizeof(name), "%u", group);
    fuzz_check(kernel_sysfs_parse_group(name, &back) == 0 && back == group,
               "a group number prints and parses back to itself");
    fuzz_outcome = "a group number";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[PATH_MAX];

    fuzz_string(data, size, s, sizeof(s));
    fuzz_outcome = "refused";
    check_name(kernel_sysfs_parse_bdf, s, "a PCI address");
    check_name(kernel_sysfs_parse_uuid, s, "an mdev UUID");
    check_name(kernel_sysfs_parse_cdev_path, s, "a cdev path");
    (void) kernel_sysfs_driver_is_vfio(s);
    check_link(s);
    return 0;
}
