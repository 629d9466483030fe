/* SPDX-License-Identifier: MIT */
/*
 * test_host_devices — host readiness on a fake sysfs tree (daemon/host_devices.c): which
 * functions and mdevs are listed, what each needs and its fixes, and the writes a bind makes
 * (observed through the HostWriter: a fake tree cannot really bind), with the test plugins'
 * "vendor" claiming 1234:abcd with variant driver vendor_vfio, and the hisi plugin on a ZIP VF.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host_devices.h"
#include "util/log.h"

#define CLAIMED "0000:3b:00.2" /* 1234:abcd (vendor plugin), bound to hostdrv */
#define VFIO "0000:3b:00.3"    /* 8086:1515, bound to vfio-pci */
#define HOST "0000:3b:00.4"    /* 8086:1515, bound to ixgbevf: not listed */
#define UUID "83b8f4f2-509f-382f-3c1e-e6bfe0fa0002" /* mtty-2 mdev */
#define PCIDEV "devices/pci0000:3a/0000:3a:00.0"

static char root[PATH_MAX];
static PluginHost *plugins;

static void
put(const char *rel, const char *text)
{
    char path[PATH_MAX + 512], cmd[PATH_MAX * 3];
    FILE *f;

    (void) snprintf(path, sizeof(path), "%s/%s", root, rel);
    (void) snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    cr_assert_eq(system(cmd), 0);
    if (text) {
        f = fopen(path, "w");
        cr_assert(f, "%s: %m", path);
        fputs(text, f);
        fclose(f);
    } else {
        cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
    }
}

static void
link_at(const char *rel, const char *target)
{
    char path[PATH_MAX + 512], dir[PATH_MAX];

    (void) snprintf(dir, sizeof(dir), "%s", rel);
    *strrchr(dir, '/') = '\0';
    put(dir, NULL);
    (void) snprintf(path, sizeof(path), "%s/%s", root, rel);
    cr_assert(symlink(target, path) == 0, "symlink %s: %m", path);
}

static void
function(const char *bdf, const char *vendor, const char *device, const char *driver)
{
    char rel[PATH_MAX], target[PATH_MAX];

    (void) snprintf(rel, sizeof(rel), "%s/%s/vendor", PCIDEV, bdf);
    put(rel, vendor);
    (void) snprintf(rel, sizeof(rel), "%s/%s/device", PCIDEV, bdf);
    put(rel, device);
    (void) snprintf(rel, sizeof(rel), "bus/pci/devices/%s", bdf);
    (void) snprintf(target, sizeof(target), "../../../%s/%s", PCIDEV, bdf);
    link_at(rel, target);
    (void) snprintf(rel, sizeof(rel), "%s/%s/driver", PCIDEV, bdf);
    (void) snprintf(target, sizeof(target), "../../../../bus/pci/drivers/%s", driver);
    link_at(rel, target);
}

static void
build_tree(void)
{
    PluginServices svc;

    (void) snprintf(root, sizeof(root), "/tmp/test_host_devices.XXXXXX");
    cr_assert(mkdtemp(root));
    put("bus/pci/drivers/vfio-pci", NULL);
    put("bus/pci/drivers/vendor_vfio", NULL);
    put("bus/pci/drivers/hostdrv", NULL);
    put("bus/pci/drivers/ixgbevf", NULL);
    function(CLAIMED, "0x1234\n", "0xabcd\n", "hostdrv");
    function(VFIO, "0x8086\n", "0x1515\n", "vfio-pci");
    function(HOST, "0x8086\n", "0x1515\n", "ixgbevf");
    put("devices/virtual/mtty/mtty/" UUID, NULL);
    put("devices/virtual/mtty/mtty/mdev_supported_types/mtty-2", NULL);
    link_at("bus/mdev/devices/" UUID, "../../../devices/virtual/mtty/mtty/" UUID);
    link_at("devices/virtual/mtty/mtty/" UUID "/driver", "../../../../../bus/mdev/drivers/mtty");
    link_at("devices/virtual/mtty/mtty/" UUID "/mdev_type", "../mdev_supported_types/mtty-2");
    svc = plugin_services_default(root);
    plugins = plugin_host_new(&svc);
    log_set_max_level(LOG_ERR);
    cr_assert_eq(plugin_host_load(plugins, TEST_PLUGIN_DIR "/vendor.so"), 0);
    cr_assert_eq(plugin_host_load(plugins, PLUGIN_BUILD_DIR "/mtty.so"), 0);
}

static void
remove_tree(void)
{
    char cmd[PATH_MAX + 16];

    plugins = plugin_host_free(plugins);
    (void) snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(host_devices, .init = build_tree, .fini = remove_tree, .timeout = 30);

Test(host_devices, what_is_listed_and_what_it_needs)
{
    HostDevice *hd = NULL;
    size_t n = 0;

    cr_assert_eq(host_devices_list(root, plugins, &hd, &n), 0);
    cr_assert_eq(n, 3, "the claimed function, the vfio-pci one and the mdev; not ixgbevf's");
    cr_assert_str_eq(hd[0].id.address, CLAIMED);
    cr_assert_str_eq(plugin_name(hd[0].plugin), "vendor");
    cr_assert_str_eq(hd[0].variant_driver, "vendor_vfio");
    cr_assert_eq(hd[0].can_migrate, false);
    cr_assert_str_eq(hd[0].prereqs.items[0].check, "bound to vendor_vfio");
    cr_assert_eq(hd[0].prereqs.items[0].ok, 0);
    cr_assert_str_eq(hd[0].prereqs.items[0].message,
                     "the function is bound to hostdrv, not to vendor_vfio");
    cr_assert_str_eq(hd[0].prereqs.items[0].fix, "vfio-migctl bind " CLAIMED);
    cr_assert_eq(hd[0].id.vendor_id, 0x1234);

    cr_assert_str_eq(hd[1].id.address, VFIO);
    cr_assert_null(hd[1].plugin);
    cr_assert_str_eq(hd[1].variant_driver, "vfio-pci");
    cr_assert_eq(hd[1].can_migrate, true);

    cr_assert_str_eq(hd[2].id.address, UUID);
    cr_assert_str_eq(hd[2].id.mdev_type, "mtty-2");
    cr_assert_str_eq(plugin_name(hd[2].plugin), "mtty");
    cr_assert_eq(hd[2].can_migrate, true, "bound to mtty, a type the plugin knows");
    free(hd);
}

/* The hisi plugin on the same fake tree: a ZIP VF on its variant driver whose PF is bound to
 * vfio-pci instead of hisi_zip, on QM V3 hardware: one prerequisite fails, with its fix. */
Test(host_devices, a_hisi_vf_whose_pf_is_not_on_its_native_driver)
{
    HostDevice *hd = NULL;
    size_t n = 0, i;

    put("bus/pci/drivers/hisi_acc_vfio_pci", NULL);
    function("0000:7d:00.0", "0x19e5\n", "0xa250\n", "vfio-pci");
    put(PCIDEV "/0000:7d:00.0/revision", "0x30\n");
    function("0000:7d:00.1", "0x19e5\n", "0xa251\n", "hisi_acc_vfio_pci");
    link_at(PCIDEV "/0000:7d:00.1/physfn", "../0000:7d:00.0");
    cr_assert_eq(plugin_host_load(plugins, PLUGIN_BUILD_DIR "/hisi.so"), 0);
    cr_assert_eq(host_devices_list(root, plugins, &hd, &n), 0);
    for (i = 0; i < n && strcmp(hd[i].id.address, "0000:7d:00.1") != 0; i++) {
        continue;
    }
    cr_assert_lt(i, n, "the VF is listed");
    cr_expect_str_eq(plugin_name(hd[i].plugin), "hisi");
    cr_expect_str_eq(hd[i].variant_driver, "hisi_acc_vfio_pci");
    cr_expect_eq(hd[i].can_migrate, false);
    /* the daemon's binding check, then the plugin's four */
    cr_assert_eq(hd[i].prereqs.n, 5);
    cr_expect_eq(hd[i].prereqs.items[0].ok, 1, "bound to its variant driver");
    cr_expect_eq(hd[i].prereqs.items[1].ok, 1, "bound to hisi_acc_vfio_pci");
    cr_expect_eq(hd[i].prereqs.items[2].ok, 1, "a VF");
    cr_expect_eq(hd[i].prereqs.items[3].ok, 0, "PF on vfio-pci");
    cr_expect_str_eq(hd[i].prereqs.items[3].fix, "modprobe hisi_zip && echo 0000:7d:00.0 > "
                     "/sys/bus/pci/drivers/hisi_zip/bind && vfio-migctl bind 0000:7d:00.1");
    cr_expect_eq(hd[i].prereqs.items[4].ok, 1, "QM V3: %s", hd[i].prereqs.items[4].message);
    free(hd);
}

/* The writes a bind makes, in order. */
static char writes[2048];

static int
record(void *userdata, const char *path, const char *value)
{
    size_t used = strlen(writes);

    (void) userdata;
    (void) snprintf(writes + used, sizeof(writes) - used, "%s <- %s\n", path + strlen(root),
                    value);
    return 0;
}

Test(host_devices, bind_unbinds_overrides_and_binds)
{
    HostWriter w = {record, NULL};
    char before[64], driver[64], err[512] = "";

    writes[0] = '\0';
    cr_assert_eq(host_devices_bind(root, plugins, "3b:00.2", &w, before, driver, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_str_eq(before, "hostdrv");
    cr_assert_str_eq(driver, "vendor_vfio");
    cr_assert_str_eq(writes, "/bus/pci/devices/" CLAIMED "/driver/unbind <- " CLAIMED "\n"
                             "/bus/pci/devices/" CLAIMED "/driver_override <- vendor_vfio\n"
                             "/bus/pci/drivers/vendor_vfio/bind <- " CLAIMED "\n");

    writes[0] = '\0';
    cr_assert_eq(host_devices_bind(root, plugins, VFIO, &w, before, driver, err, sizeof(err)), 0);
    cr_assert_str_eq(writes, "", "already bound to what it needs: nothing written");

    writes[0] = '\0';
    cr_assert_eq(host_devices_bind(root, plugins, HOST, &w, before, driver, err, sizeof(err)), 0);
    cr_assert_str_eq(driver, "vfio-pci", "no plugin: vfio-pci");
}

Test(host_devices, bind_refusals_write_nothing)
{
    HostWriter w = {record, NULL};
    char before[64], driver[64], err[512] = "", cmd[PATH_MAX + 64];

    writes[0] = '\0';
    cr_assert_eq(host_devices_bind(root, plugins, "nonsense", &w, before, driver, err, sizeof(err)),
                 -EINVAL);
    cr_assert_eq(host_devices_bind(root, plugins, "0000:3b:01.0", &w, before, driver, err,
                                   sizeof(err)), -ENOENT);
    cr_assert_str_eq(err, "no PCI function 0000:3b:01.0 on this host");
    (void) snprintf(cmd, sizeof(cmd), "rmdir '%s/bus/pci/drivers/vendor_vfio'", root);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(host_devices_bind(root, plugins, CLAIMED, &w, before, driver, err, sizeof(err)),
                 -ENOENT);
    cr_assert_str_eq(err, "the driver vendor_vfio is not loaded: modprobe vendor_vfio, then bind again");
    cr_assert_str_eq(writes, "");
}
