/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_host — plugin_host.c with real shared objects built by CMake: the test
 * plugins of tests/plugins/ (minimal: no hooks; other_major: ABI 2; small: a descriptor
 * smaller than this header's; failing: hooks that fail; vendor: a field of each rule) and the
 * mtty plugin. Loading, the ABI check and its one log line, matching, descriptors with their
 * rules through core/compat, prerequisites, the stream hooks, and what each plugin exports.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plugin_host.h"
#include "util/log.h"

static PluginHost *
host_new(void)
{
    PluginServices svc = plugin_services_default("/nonexistent-sysfs");
    PluginHost *h = plugin_host_new(&svc);

    cr_assert(h);
    return h;
}

static BackendIdentity
ident(const char *driver, uint32_t vendor, uint32_t device, const char *mdev_type,
      const char *options)
{
    BackendIdentity id = {.vendor_id = vendor, .device_id = device, .sim_options = options};

    (void) snprintf(id.driver, sizeof(id.driver), "%s", driver);
    (void) snprintf(id.mdev_type, sizeof(id.mdev_type), "%s", mdev_type);
    (void) snprintf(id.bus, sizeof(id.bus), "%s", mdev_type[0] ? "mdev" : "pci");
    (void) snprintf(id.address, sizeof(id.address), "0000:3b:00.2");
    return id;
}

TestSuite(plugin_host, .timeout = 30);

Test(plugin_host, the_directory_loads_all_but_the_other_major, .init = cr_redirect_stderr)
{
    PluginHost *h = host_new();

    log_set_max_level(LOG_ERR);
    cr_assert_eq(plugin_host_load_dir(h, TEST_PLUGIN_DIR), 5);
    cr_assert_eq(plugin_host_count(h), 5);
    /* file-name order */
    cr_assert_str_eq(plugin_name(plugin_host_get(h, 0)), "failing");
    cr_assert_str_eq(plugin_name(plugin_host_get(h, 1)), "minimal");
    cr_assert_str_eq(plugin_name(plugin_host_get(h, 2)), "seam");
    cr_assert_str_eq(plugin_name(plugin_host_get(h, 3)), "small");
    cr_assert_str_eq(plugin_name(plugin_host_get(h, 4)), "vendor");
    cr_assert_null(plugin_host_find(h, "other_major"));
    /* sim models by name, for attach --sim model=NAME and its refusal */
    {
        char names[64];

        cr_assert_eq(plugin_host_find_model(h, "seam"), plugin_host_find(h, "seam"));
        cr_assert_null(plugin_host_find_model(h, "vendor"));
        cr_assert_null(plugin_sim_model(plugin_host_find(h, "vendor")));
        plugin_host_model_names(h, names, sizeof(names));
        cr_assert_str_eq(names, "generic, seam");
        plugin_host_model_names(h, names, 10);
        cr_assert_str_eq(names, "generic, ");
    }
    cr_assert_eq(plugin_host_load(h, TEST_PLUGIN_DIR "/minimal.so"), -EEXIST);
    plugin_host_free(h);
    cr_assert_eq(plugin_host_load_dir(host_new(), "/nonexistent-plugin-dir"), 0);
}

/* One line, naming what was expected and found, and what to do. */
Test(plugin_host, another_major_is_refused_with_one_line, .init = cr_redirect_stderr)
{
    PluginHost *h = host_new();
    char buf[2048] = "";
    size_t n;
    FILE *f;

    log_set_max_level(LOG_INFO);
    cr_assert_eq(plugin_host_load(h, TEST_PLUGIN_DIR "/other_major.so"), -EPROTO);
    cr_assert_eq(plugin_host_count(h), 0);
    fflush(stderr);
    f = cr_get_redirected_stderr();
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    cr_assert(strstr(buf, "built for plugin ABI 2.0"), "%s", buf);
    cr_assert(strstr(buf, "expects ABI major 1"), "%s", buf);
    cr_assert(strstr(buf, "rebuild it against"), "%s", buf);
    cr_assert_eq(strchr(buf, '\n'), buf + n - 1, "exactly one line: %s", buf);
    plugin_host_free(h);
}

Test(plugin_host, not_a_plugin, .init = cr_redirect_stderr)
{
    PluginHost *h = host_new();

    cr_assert_eq(plugin_host_load(h, "/nonexistent/x.so"), -ENOEXEC);
    cr_assert_eq(plugin_host_count(h), 0);
    plugin_host_free(h);
}

Test(plugin_host, matching_by_driver_ids_and_mdev_type, .init = cr_redirect_stderr)
{
    PluginHost *h = host_new();
    BackendIdentity a = ident("testdrv", BACKEND_ID_NONE, BACKEND_ID_NONE, "", NULL);
    BackendIdentity b = ident("vfio-pci", 0x1234, 0xabcd, "", NULL);
    BackendIdentity c = ident("vfio-pci", 0x1234, 0xabce, "", NULL);
    BackendIdentity m2 = ident("mtty", BACKEND_ID_NONE, BACKEND_ID_NONE, "mtty-2", NULL);
    BackendIdentity m3 = ident("mtty", BACKEND_ID_NONE, BACKEND_ID_NONE, "mtty-3", NULL);
    const struct vfio_migd_claim *claim = NULL;

    cr_assert_eq(plugin_host_load_dir(h, TEST_PLUGIN_DIR), 5);
    cr_assert_eq(plugin_host_load(h, PLUGIN_BUILD_DIR "/mtty.so"), 0);
    cr_assert_str_eq(plugin_name(plugin_host_match(h, &a, NULL)), "minimal");
    cr_assert_str_eq(plugin_name(plugin_host_match(h, &b, &claim)), "vendor");
    cr_assert_str_eq(claim->variant_driver, "vendor_vfio");
    cr_assert_null(plugin_host_match(h, &c, NULL));
    cr_assert_str_eq(plugin_name(plugin_host_match(h, &m2, NULL)), "mtty");
    cr_assert_null(plugin_host_match(h, &m3, NULL));
    plugin_host_free(h);
}

/* A plugin without hooks, and one whose hooks lie beyond its struct_size: nothing is called,
 * nothing is added. (small's hooks abort: calling them would fail the test.) */
Test(plugin_host, missing_and_unreachable_hooks_are_not_called, .init = cr_redirect_stderr)
{
    PluginHost *h = host_new();
    CompatDescriptor desc = {0};
    PluginPrereqs pre;
    struct vfio_migd_device view;
    BackendIdentity id = ident("smalldrv", BACKEND_ID_NONE, BACKEND_ID_NONE, "", NULL);
    char why[256] = "";

    cr_assert_eq(plugin_host_load_dir(h, TEST_PLUGIN_DIR), 5);
    for (const char *name = "minimal"; name; name = strcmp(name, "minimal") == 0 ? "small" : NULL) {
        const Plugin *p = plugin_host_find(h, name);

        plugin_device_view(&id, "dev0", &view);
        cr_assert_eq(plugin_describe(p, &view, &desc, why, sizeof(why)), 0, "%s", name);
        cr_assert_eq(desc.n_fields, 0);
        cr_assert_eq(plugin_prerequisites(p, &view, &pre, why, sizeof(why)), 0);
        cr_assert_eq(pre.n, 0);
        cr_assert_eq(plugin_has_stream(p), 0);
    }
    cr_assert_null(plugin_descriptor_of(plugin_host_find(h, "small"))->prerequisites);
    plugin_host_free(h);
}

/* A failing hook: an error with the plugin's words, and the descriptor as it was (the field
 * the plugin added before failing is dropped with it). */
Test(plugin_host, a_failing_hook_changes_nothing, .init = cr_redirect_stderr)
{
    PluginHost *h = host_new();
    CompatDescriptor desc = {0};
    PluginPrereqs pre = {.n = 3};
    struct vfio_migd_device view;
    BackendIdentity id = ident("faildrv", BACKEND_ID_NONE, BACKEND_ID_NONE, "", NULL);
    const Plugin *p;
    char why[256] = "";

    cr_assert_eq(plugin_host_load_dir(h, TEST_PLUGIN_DIR), 5);
    p = plugin_host_match(h, &id, NULL);
    cr_assert_str_eq(plugin_name(p), "failing");
    cr_assert_eq(compat_descriptor_add(&desc, "model", COMPAT_RULE_EQUAL, "generic"), 0);
    plugin_device_view(&id, "dev0", &view);
    cr_assert_eq(plugin_describe(p, &view, &desc, why, sizeof(why)), -EIO);
    cr_assert_str_eq(why, "plugin 'failing': the firmware of 'dev0' did not answer");
    cr_assert_eq(desc.n_fields, 1);
    cr_assert_str_eq(desc.fields[0].name, "model");
    cr_assert_eq(plugin_prerequisites(p, &view, &pre, why, sizeof(why)), -EIO);
    cr_assert_str_eq(why, "plugin 'failing' failed in its prerequisites hook: Input/output error");
    cr_assert_eq(pre.n, 0);
    plugin_host_free(h);
}

static void
vendor_descriptor(const Plugin *p, const char *name, const char *options, CompatDescriptor *desc)
{
    BackendIdentity id = ident("vendor_vfio", 0x1234, 0xabcd, "", options);
    struct vfio_migd_device view;
    char why[256] = "";

    *desc = (CompatDescriptor){0};
    plugin_device_view(&id, name, &view);
    cr_assert_eq(plugin_describe(p, &view, desc, why, sizeof(why)), 0, "%s", why);
}

/* The plugin's rules reach core/compat: at_least on fw, equal on psid, info on note. */
Test(plugin_host, rules_through_compat, .init = cr_redirect_stderr)
{
    PluginHost *h = host_new();
    CompatDescriptor s, d;
    CompatReport rep;
    size_t pairs[1];
    const Plugin *p;

    cr_assert_eq(plugin_host_load_dir(h, TEST_PLUGIN_DIR), 5);
    p = plugin_host_find(h, "vendor");
    vendor_descriptor(p, "nic0", "pci=3b:00.2,label=22.36.1010/MT_1", &s);
    cr_assert_eq(s.n_fields, 3);
    cr_assert_eq(compat_descriptor_find(&s, "fw")->rule, COMPAT_RULE_AT_LEAST);
    cr_assert_eq(compat_descriptor_find(&s, "psid")->rule, COMPAT_RULE_EQUAL);
    cr_assert_eq(compat_descriptor_find(&s, "note")->rule, COMPAT_RULE_INFO);

    CompatDevice src = {"nic0", 7, "sim", &s}, dst = {"nic0", 7, "sim", &d};
    vendor_descriptor(p, "other-name", "label=22.37/MT_1", &d);
    cr_assert_eq(compat_compare(&src, 1, &dst, 1, COMPAT_PAIR_BY_NAME, pairs, &rep), 0,
                 "newer firmware and another note are fine");
    vendor_descriptor(p, "nic0", "label=22.35.9/MT_2", &d);
    cr_assert_eq(compat_compare(&src, 1, &dst, 1, COMPAT_PAIR_BY_NAME, pairs, &rep), -EMEDIUMTYPE);
    cr_assert_eq(rep.n, 2);
    cr_assert_str_eq(rep.items[0].field, "fw");
    cr_assert_str_eq(rep.items[0].source, "22.36.1010");
    cr_assert_str_eq(rep.items[0].destination, "22.35.9");
    cr_assert_str_eq(rep.items[1].field, "psid");
    plugin_host_free(h);
}

/* The mtty plugin: its descriptor from the mdev type, its prerequisites, and its stream hooks
 * refusing a one-port stream for a two-port destination, naming the field. */
Test(plugin_host, mtty, .init = cr_redirect_stderr)
{
    PluginHost *h = host_new();
    BackendIdentity m2 = ident("mtty", BACKEND_ID_NONE, BACKEND_ID_NONE, "mtty-2", NULL);
    uint8_t hdr[24] = {0};
    uint64_t magic = UINT64_C(0x7e9d09898c3e2c4e);
    uint32_t one = 1;
    struct vfio_migd_device view;
    CompatDescriptor desc = {0};
    PluginPrereqs pre;
    PluginStream *s = NULL;
    const Plugin *p;
    char why[256] = "";

    cr_assert_eq(plugin_host_load(h, PLUGIN_BUILD_DIR "/mtty.so"), 0);
    p = plugin_host_match(h, &m2, NULL);
    plugin_device_view(&m2, "tty0", &view);
    cr_assert_eq(plugin_describe(p, &view, &desc, why, sizeof(why)), 0, "%s", why);
    cr_assert_str_eq(compat_descriptor_find(&desc, "ports")->value, "2");
    cr_assert_str_eq(compat_descriptor_find(&desc, "stream_version")->value, "1.0");
    cr_assert_eq(compat_descriptor_find(&desc, "mdev_type")->rule, COMPAT_RULE_INFO);
    cr_assert_eq(plugin_prerequisites(p, &view, &pre, why, sizeof(why)), 0);
    cr_assert_eq(pre.n, 2);
    cr_assert(pre.items[0].ok && pre.items[1].ok);

    memcpy(hdr, &magic, 8);
    memcpy(hdr + 8, &one, 4);
    memcpy(hdr + 16, &one, 4);
    cr_assert_eq(plugin_stream_open(p, &view, VFIO_MIGD_STREAM_RESUME, &s), 0);
    cr_assert_eq(plugin_stream_feed(s, hdr, 10, why, sizeof(why)), 0);
    cr_assert_eq(plugin_stream_feed(s, hdr + 10, 14, why, sizeof(why)), -EMEDIUMTYPE);
    cr_assert(strstr(why, "plugin 'mtty': ports: the stream has 1, the destination device 2"),
              "%s", why);
    plugin_stream_close(s);

    m2.driver[0] = '\0';
    cr_assert_eq(plugin_prerequisites(p, &view, &pre, why, sizeof(why)), 0);
    cr_assert_eq(pre.items[0].ok, 0);
    cr_assert_str_eq(pre.items[0].fix, "modprobe mtty");
    plugin_host_free(h);
}

/* -fvisibility=hidden and plugins/plugin.map: the entry symbol is all a plugin exports. */
Test(plugin_host, only_the_entry_symbol_is_exported)
{
    const char *files[] = {PLUGIN_BUILD_DIR "/mtty.so", TEST_PLUGIN_DIR "/vendor.so",
                           TEST_PLUGIN_DIR "/minimal.so"};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char cmd[512], line[256];
        int n = 0;
        FILE *f;

        (void) snprintf(cmd, sizeof(cmd), "nm -D --defined-only %s", files[i]);
        f = popen(cmd, "r");
        cr_assert(f);
        while (fgets(line, sizeof(line), f)) {
            char type = 0, name[200] = "";

            /* "<addr> <type> <name>"; the version node is an absolute (A) symbol */
            if (sscanf(line, "%*s %c %199s", &type, name) != 2 || type == 'A') {
                continue;
            }
            cr_assert_str_eq(strtok(name, "@"), "vfio_migd_plugin_entry", "%s exports %s", files[i], name);
            n++;
        }
        cr_assert_eq(pclose(f), 0, "nm ran");
        cr_assert_eq(n, 1, "%s exports its entry symbol", files[i]);
    }
}
