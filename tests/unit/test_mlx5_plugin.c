/* SPDX-License-Identifier: MIT */
/*
 * test_mlx5_plugin — the mlx5 plugin's hooks (plugins/mlx5/mlx5.c) against the plugin_host
 * mock (tests/mocks/plugin_mock.h), without the daemon: prerequisites with their fixes from
 * devlink answers (and "cannot tell" without devlink), the descriptor from devlink dev info,
 * the stream hooks' progress, and the pre-copy refill through PRECOPY_INFO.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "plugin_mock.h"

const struct vfio_migd_plugin *vfio_migd_plugin_entry(void);

#define PF "pci/0000:3b:00.0"
#define PORT "pci/0000:3b:00.0/1"

static struct vfio_migd_device
vf(const char *driver)
{
    struct vfio_migd_device d = plugin_mock_device("nic0", "pci", driver);

    d.address = "0000:3b:00.2";
    d.vendor_id = 0x15b3;
    d.device_id = 0x101e;
    d.parent = "0000:3b:00.0";
    d.parent_driver = "mlx5_core";
    return d;
}

static void
ready_host(PluginMock *m, const char *migratable, const char *mode)
{
    plugin_mock_init(m, "/nonexistent");
    plugin_mock_devlink(m, PF, "board.id", "MT_0000000359");
    plugin_mock_devlink(m, PF, "fw.version", "22.36.1010");
    plugin_mock_devlink(m, PF, "eswitch_mode", mode);
    plugin_mock_devlink(m, PF, "port_of:0000:3b:00.2", PORT);
    plugin_mock_devlink(m, PORT, "function.migratable", migratable);
}

Test(mlx5_plugin, claims_the_vf_with_its_variant_driver)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();

    cr_assert_eq(p->abi_major, VFIO_MIGD_PLUGIN_ABI_MAJOR);
    cr_assert_str_eq(p->name, "mlx5");
    cr_assert_eq(p->n_claims, 1);
    cr_assert_eq(p->claims[0].vendor_id, 0x15b3);
    cr_assert_eq(p->claims[0].device_id, 0x101e);
    cr_assert_str_eq(p->claims[0].variant_driver, "mlx5_vfio_pci");
    cr_assert_null(p->claims[0].driver, "claimed whatever it is bound to: prerequisites say");
}

Test(mlx5_plugin, prerequisites_all_met)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = vf("mlx5_vfio_pci");
    PluginMock m;
    char why[512];

    ready_host(&m, "enable", "switchdev");
    cr_assert_eq(p->prerequisites(&m.host, &d, &m.prereqs), 0);
    cr_assert_str_empty(plugin_mock_prereq_unmet(&m, 3, why, sizeof(why)));
}

Test(mlx5_plugin, prerequisites_failing_with_fixes)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = vf("vfio-pci");
    PluginMock m;

    ready_host(&m, "disable", "legacy");
    cr_assert_eq(p->prerequisites(&m.host, &d, &m.prereqs), 0, "failures are entries");
    cr_assert_str_eq(m.prereqs.items[0].check, "bound to mlx5_vfio_pci");
    cr_assert_eq(m.prereqs.items[0].ok, 0);
    cr_assert(strstr(m.prereqs.items[0].message, "bound to vfio-pci, not mlx5_vfio_pci"), "%s",
              m.prereqs.items[0].message);
    cr_assert_str_eq(m.prereqs.items[0].fix, "vfio-migctl bind 0000:3b:00.2");
    cr_assert_eq(m.prereqs.items[1].ok, 0);
    cr_assert(strstr(m.prereqs.items[1].message, "legacy mode"), "%s", m.prereqs.items[1].message);
    cr_assert_str_eq(m.prereqs.items[1].fix, "devlink dev eswitch set " PF " mode switchdev");
    cr_assert_eq(m.prereqs.items[2].ok, 0);
    cr_assert(strstr(m.prereqs.items[2].message, "rebind"), "%s", m.prereqs.items[2].message);
    cr_assert(strncmp(m.prereqs.items[2].fix, "devlink port function set " PORT
                      " migratable enable && echo 0000:3b:00.2 > /sys/bus/pci/drivers/"
                      "mlx5_vfio_pci/unbind", 105) == 0, "%s", m.prereqs.items[2].fix);
}

static int32_t
no_devlink(const struct vfio_migd_host *host, const char *handle, const char *attribute, char *buf,
           uint32_t size)
{
    (void) host, (void) handle, (void) attribute, (void) buf, (void) size;
    return -EOPNOTSUPP;
}

Test(mlx5_plugin, without_devlink_it_cannot_tell)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = vf("mlx5_vfio_pci");
    char why[256] = "";
    PluginMock m;

    plugin_mock_init(&m, "/nonexistent");
    m.host.devlink_get = no_devlink;
    cr_assert_eq(p->prerequisites(&m.host, &d, &m.prereqs), 0);
    cr_assert_eq(m.prereqs.items[0].ok, 1, "the driver is read from sysfs");
    for (size_t i = 1; i < 3; i++) {
        cr_assert_eq(m.prereqs.items[i].ok, 0, "never ok when it cannot tell");
        cr_assert(strstr(m.prereqs.items[i].message, "cannot tell:"), "%s",
                  m.prereqs.items[i].message);
        cr_assert(strstr(m.prereqs.items[i].message, "no devlink access"), "%s",
                  m.prereqs.items[i].message);
    }
    cr_assert_eq(p->descriptor(&m.host, &d, &m.fields, why, sizeof(why)), -EOPNOTSUPP);
    cr_assert(strstr(why, "board.id of " PF), "%s", why);
}

Test(mlx5_plugin, descriptor_from_devlink_dev_info)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = vf("mlx5_vfio_pci");
    char why[256] = "";
    PluginMock m;

    ready_host(&m, "enable", "switchdev");
    cr_assert_eq(p->descriptor(&m.host, &d, &m.fields, why, sizeof(why)), 0, "%s", why);
    cr_assert_str_eq(plugin_mock_field(&m, "psid"), "MT_0000000359");
    cr_assert_str_eq(plugin_mock_field(&m, "fw_version"), "22.36.1010");
    cr_assert_str_eq(plugin_mock_field(&m, "device_id"), "101e");
    cr_assert_str_eq(plugin_mock_field(&m, "chunk_mode"), "unknown",
                     "a real device does not show its firmware caps to user space");
    for (uint32_t i = 0; i < p->n_rules; i++) {
        int compared = strcmp(p->rules[i].field, "psid") == 0 ||
                       strcmp(p->rules[i].field, "fw_version") == 0;
        cr_assert_eq(p->rules[i].rule, compared ? VFIO_MIGD_RULE_EQUAL : VFIO_MIGD_RULE_INFO,
                     "%s", p->rules[i].field);
    }
}

Test(mlx5_plugin, a_sim_device_is_described_from_its_options)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = vf("mlx5_vfio_pci");
    char why[256] = "";
    PluginMock m;

    d.simulated = 1;
    d.parent = "";
    d.sim_options = "model=mlx5,psid=MT_0000000001,fw=22.40.1000,migratable=0,chunk=0,size=1M";
    plugin_mock_init(&m, "/nonexistent");
    m.host.devlink_get = no_devlink; /* a sim device never asks the host */
    cr_assert_eq(p->descriptor(&m.host, &d, &m.fields, why, sizeof(why)), 0, "%s", why);
    cr_assert_str_eq(plugin_mock_field(&m, "psid"), "MT_0000000001");
    cr_assert_str_eq(plugin_mock_field(&m, "fw_version"), "22.40.1000");
    cr_assert_str_eq(plugin_mock_field(&m, "chunk_mode"), "no");
    cr_assert_eq(p->prerequisites(&m.host, &d, &m.prereqs), 0);
    cr_assert_eq(m.prereqs.items[1].ok, 1, "eswitch: switchdev by default");
    cr_assert_eq(m.prereqs.items[2].ok, 0, "migratable=0");
    cr_assert(strstr(m.prereqs.items[2].message, "(disable)"), "%s", m.prereqs.items[2].message);
    cr_assert(strstr(m.prereqs.items[2].fix, "pci/<PF>/1 migratable enable"), "%s",
              m.prereqs.items[2].fix);
}

Test(mlx5_plugin, stream_progress_knows_the_stop_copy_size)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = vf("mlx5_vfio_pci");
    struct vfio_migd_stream_progress prog = {.struct_size = sizeof(prog)};
    static const uint8_t s[] = {8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
                                0, 0, 0x10, 0, 0, 0, 0, 0, /* 1 MiB */
                                2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'o', 'k',
                                1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0};
    void *st = NULL;
    char why[256] = "";
    PluginMock m;

    plugin_mock_init(&m, "/nonexistent");
    cr_assert_eq(p->stream_open(&m.host, &d, VFIO_MIGD_STREAM_RESUME, &st), 0);
    cr_assert_eq(p->stream_feed(&m.host, st, s, 24, &prog, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(prog.stop_copy_size, 1u << 20);
    cr_assert_eq(prog.complete, 0);
    cr_assert_eq(p->stream_feed(&m.host, st, s + 24, 18, &prog, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(prog.complete, 1);
    cr_assert_eq(p->stream_feed(&m.host, st, s + 42, 16, &prog, why, sizeof(why)), -EPROTONOSUPPORT,
                 "tag 9 without TAG_OPTIONAL: refused before the device sees it");
    cr_assert(strstr(why, "tag 0x9"), "%s", why);
    p->stream_close(&m.host, st);
}

/* A fake data fd: each PRECOPY_INFO reports what the "firmware" queued. */
typedef struct FakeInfo {
    int calls;
    uint64_t dirty[3];
    int32_t fail;
} FakeInfo;

static int32_t
fake_info(void *ctx, uint64_t *ret_initial, uint64_t *ret_dirty)
{
    FakeInfo *f = ctx;

    if (f->fail) {
        return f->fail;
    }
    *ret_initial = 0;
    *ret_dirty = f->dirty[f->calls++ % 3];
    return 0;
}

Test(mlx5_plugin, precopy_refill_calls_precopy_info)
{
    const struct vfio_migd_plugin *p = vfio_migd_plugin_entry();
    struct vfio_migd_device d = vf("mlx5_vfio_pci");
    FakeInfo f = {.dirty = {4096, 0, 0}};
    struct vfio_migd_precopy_io io = {.struct_size = sizeof(io), .data_fd = 7, .ctx = &f,
                                      .precopy_info = fake_info};
    uint64_t initial = 1, dirty = 1;
    PluginMock m;

    plugin_mock_init(&m, "/nonexistent");
    cr_assert_eq(p->precopy_refill(&m.host, &d, &io, &initial, &dirty), 1, "SAVE queued");
    cr_assert_eq(dirty, 4096);
    cr_assert_eq(initial, 0);
    cr_assert_eq(p->precopy_refill(&m.host, &d, &io, &initial, &dirty), 0, "nothing dirty");
    cr_assert_eq(dirty, 0);
    cr_assert_eq(f.calls, 2, "one ioctl per refill");
    f.fail = -ENODEV;
    cr_assert_eq(p->precopy_refill(&m.host, &d, &io, &initial, &dirty), -ENODEV);
}
