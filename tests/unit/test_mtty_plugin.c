/* SPDX-License-Identifier: MIT */
/*
 * test_mtty_plugin — the mtty plugin's hooks (plugins/mtty/mtty.c) against the plugin_host
 * mock (tests/mocks/plugin_mock.h), without the daemon: its descriptor and prerequisites for
 * each mdev type, and its stream hooks at a destination.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "plugin_mock.h"

const struct vfio_migd_plugin *vfio_migd_plugin_entry(void);

static struct vfio_migd_device
mdev(const char *type)
{
    struct vfio_migd_device d = plugin_mock_device("tty0", "mdev", "mtty");

    d.mdev_type = type;
    return d;
}

Test(mtty_plugin, descriptor_for_each_type)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d1 = mdev("mtty-1"), d2 = mdev("mtty-2"), d3 = mdev("mtty-3");
    PluginMock m;
    char why[256] = "";

    cr_assert_eq(p->abi_major, VFIO_MIGD_PLUGIN_ABI_MAJOR);
    cr_assert_eq(p->struct_size, sizeof(*p));
    plugin_mock_init(&m, "/nonexistent");
    cr_assert_eq(p->descriptor(&m.host, &d1, &m.fields, why, sizeof(why)), 0, "%s", why);
    cr_assert_str_eq(plugin_mock_field(&m, "ports"), "1");
    cr_assert_str_eq(plugin_mock_field(&m, "stream_version"), "1.0");
    plugin_mock_init(&m, "/nonexistent");
    cr_assert_eq(p->descriptor(&m.host, &d2, &m.fields, why, sizeof(why)), 0, "%s", why);
    cr_assert_str_eq(plugin_mock_field(&m, "ports"), "2");
    plugin_mock_init(&m, "/nonexistent");
    cr_assert_eq(p->descriptor(&m.host, &d3, &m.fields, why, sizeof(why)), -EINVAL);
    cr_assert_str_eq(why, "mdev type 'mtty-3' is not mtty-1 or mtty-2");
}

Test(mtty_plugin, prerequisites_with_fixes)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = mdev("mtty-2");
    PluginMock m;
    char why[512];

    plugin_mock_init(&m, "/nonexistent");
    cr_assert_eq(p->prerequisites(&m.host, &d, &m.prereqs), 0);
    cr_assert_str_empty(plugin_mock_prereq_unmet(&m, 2, why, sizeof(why)));
    d.driver = "vfio-pci";
    d.mdev_type = "other";
    plugin_mock_init(&m, "/nonexistent");
    cr_assert_eq(p->prerequisites(&m.host, &d, &m.prereqs), 0, "failures are entries");
    cr_assert_eq(m.prereqs.items[0].ok, 0);
    cr_assert_str_eq(m.prereqs.items[0].fix, "modprobe mtty");
    cr_assert_eq(m.prereqs.items[1].ok, 0);
    cr_assert(strstr(m.prereqs.items[1].fix, "mdev_supported_types/mtty-2/create"));
}

Test(mtty_plugin, stream_at_a_destination)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = mdev("mtty-1");
    struct vfio_migd_stream_progress prog = {.struct_size = sizeof(prog)};
    uint8_t s[60] = {0};
    uint64_t magic = UINT64_C(0x7e9d09898c3e2c4e);
    uint32_t one = 1;
    void *st = NULL;
    PluginMock m;
    char why[256] = "";

    memcpy(s, &magic, 8);
    memcpy(s + 8, &one, 4);
    memcpy(s + 16, &one, 4);
    plugin_mock_init(&m, "/nonexistent");
    cr_assert_eq(p->stream_open(&m.host, &d, VFIO_MIGD_STREAM_RESUME, &st), 0);
    cr_assert_eq(p->stream_feed(&m.host, st, s, 30, &prog, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(prog.expected_total, 60);
    cr_assert_eq(prog.complete, 0);
    cr_assert_eq(p->stream_feed(&m.host, st, s + 30, 30, &prog, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(prog.complete, 1);
    p->stream_close(&m.host, st);

    d.mdev_type = "mtty-2";
    cr_assert_eq(p->stream_open(&m.host, &d, VFIO_MIGD_STREAM_RESUME, &st), 0);
    cr_assert_eq(p->stream_feed(&m.host, st, s, 60, &prog, why, sizeof(why)), -EMEDIUMTYPE);
    cr_assert(strstr(why, "ports"), "%s", why);
    p->stream_close(&m.host, st);
}
