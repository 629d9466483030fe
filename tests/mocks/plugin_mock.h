/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * plugin_mock — a fake vfio-migd host for unit tests of a plugin's hooks, without the daemon
 * (collectd's plugin_mock.c does the same for its plugins). It provides a struct
 * vfio_migd_host whose output sinks record what a hook added, a log that keeps the last
 * lines, a clock the test sets, a devlink table the test fills, and the sysfs root the test
 * chooses (tests/unit/tmptree.h builds fake trees). Header-only; include it in ONE test file,
 * which links the plugin's sources directly (see tests/unit/test_mtty_plugin.c).
 *
 *     PluginMock m;
 *     plugin_mock_init(&m, "/tmp/fake-sysfs");
 *     plugin_mock_devlink(&m, "pci/0000:3b:00.0", "board.id", "MT_0000000359");
 *     r = plugin->descriptor(&m.host, &dev, &m.fields, why, sizeof(why));
 *     plugin_mock_field(&m, "psid") -> "MT_0000000359"
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vfio-migd/plugin.h>

#define PLUGIN_MOCK_MAX 32

struct vfio_migd_prereq_list {
    size_t n;
    struct {
        char check[128];
        uint32_t ok;
        char message[256];
        char fix[256];
    } items[PLUGIN_MOCK_MAX];
};

struct vfio_migd_field_list {
    size_t n;
    struct {
        char name[64];
        char value[160];
    } items[PLUGIN_MOCK_MAX];
};

typedef struct PluginMock {
    struct vfio_migd_host host; /* first: the callbacks find the mock from it */
    char sysfs_root[256];
    uint64_t now_ns;
    char log[4096]; /* every line, each ending in '\n' */
    size_t n_devlink;
    struct {
        char handle[96], attribute[64], value[128];
    } devlink[PLUGIN_MOCK_MAX];
    struct vfio_migd_prereq_list prereqs;
    struct vfio_migd_field_list fields;
} PluginMock;

static inline void
plugin_mock_log(const struct vfio_migd_host *host, int32_t priority, const char *message)
{
    PluginMock *m = (PluginMock *) host;
    size_t used = strlen(m->log);

    (void) snprintf(m->log + used, sizeof(m->log) - used, "<%d>%s\n", (int) priority, message);
}

static inline uint64_t
plugin_mock_clock(const struct vfio_migd_host *host)
{
    return ((const PluginMock *) host)->now_ns;
}

static inline int32_t
plugin_mock_devlink_get(const struct vfio_migd_host *host, const char *handle,
                        const char *attribute, char *buf, uint32_t size)
{
    const PluginMock *m = (const PluginMock *) host;

    for (size_t i = 0; i < m->n_devlink; i++) {
        if (strcmp(m->devlink[i].handle, handle) == 0 &&
            strcmp(m->devlink[i].attribute, attribute) == 0) {
            if (strlen(m->devlink[i].value) >= size) {
                return -ENOBUFS;
            }
            memcpy(buf, m->devlink[i].value, strlen(m->devlink[i].value) + 1);
            return 0;
        }
    }
    return -ENOENT;
}

/* As strict as the daemon's sinks: NULLs, control characters and overflows are refused. */
static inline int
plugin_mock_text_ok(const char *s, size_t max)
{
    if (!s || strlen(s) > max) {
        return 0;
    }
    for (; *s; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static inline int32_t
plugin_mock_prereq_add(struct vfio_migd_prereq_list *out, const char *check, uint32_t ok,
                       const char *message, const char *fix)
{
    if (!plugin_mock_text_ok(check, 64) || !check[0] || ok > 1 ||
        !plugin_mock_text_ok(message, 255) || !plugin_mock_text_ok(fix, 255)) {
        return -EINVAL;
    }
    if (out->n >= PLUGIN_MOCK_MAX) {
        return -ENOSPC;
    }
    (void) snprintf(out->items[out->n].check, sizeof(out->items[0].check), "%s", check);
    out->items[out->n].ok = ok;
    (void) snprintf(out->items[out->n].message, sizeof(out->items[0].message), "%s", message);
    (void) snprintf(out->items[out->n].fix, sizeof(out->items[0].fix), "%s", fix);
    out->n++;
    return 0;
}

/* "check: message" of the first of @m's @n prerequisites that is not met, in @buf; "" when
 * there are @n and all are met, "N prerequisites" when there are not @n. */
static inline const char *
plugin_mock_prereq_unmet(const PluginMock *m, size_t n, char *buf, size_t size)
{
    buf[0] = '\0';
    if (m->prereqs.n != n) {
        (void) snprintf(buf, size, "%zu prerequisites", m->prereqs.n);
    }
    for (size_t i = 0; i < m->prereqs.n && !buf[0]; i++) {
        if (!m->prereqs.items[i].ok) {
            (void) snprintf(buf, size, "%s: %s", m->prereqs.items[i].check,
                            m->prereqs.items[i].message);
        }
    }
    return buf;
}

static inline int32_t
plugin_mock_field_add(struct vfio_migd_field_list *out, const char *name, const char *value)
{
    if (!plugin_mock_text_ok(name, 32) || !name[0] || name[0] < 'a' || name[0] > 'z' ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != strlen(name) ||
        !plugin_mock_text_ok(value, 128)) {
        return -EINVAL;
    }
    for (size_t i = 0; i < out->n; i++) {
        if (strcmp(out->items[i].name, name) == 0) {
            return -EEXIST;
        }
    }
    if (out->n >= PLUGIN_MOCK_MAX) {
        return -ENOSPC;
    }
    (void) snprintf(out->items[out->n].name, sizeof(out->items[0].name), "%s", name);
    (void) snprintf(out->items[out->n].value, sizeof(out->items[0].value), "%s", value);
    out->n++;
    return 0;
}

static inline void
plugin_mock_init(PluginMock *m, const char *sysfs_root)
{
    memset(m, 0, sizeof(*m));
    (void) snprintf(m->sysfs_root, sizeof(m->sysfs_root), "%s", sysfs_root);
    m->host = (struct vfio_migd_host){
        .struct_size = sizeof(struct vfio_migd_host),
        .abi_major = VFIO_MIGD_PLUGIN_ABI_MAJOR,
        .abi_minor = VFIO_MIGD_PLUGIN_ABI_MINOR,
        .sysfs_root = m->sysfs_root,
        .log = plugin_mock_log,
        .clock_ns = plugin_mock_clock,
        .devlink_get = plugin_mock_devlink_get,
        .prereq_add = plugin_mock_prereq_add,
        .field_add = plugin_mock_field_add,
    };
}

static inline void
plugin_mock_devlink(PluginMock *m, const char *handle, const char *attribute, const char *value)
{
    if (m->n_devlink < PLUGIN_MOCK_MAX) {
        (void) snprintf(m->devlink[m->n_devlink].handle, sizeof(m->devlink[0].handle), "%s", handle);
        (void) snprintf(m->devlink[m->n_devlink].attribute, sizeof(m->devlink[0].attribute), "%s",
                        attribute);
        (void) snprintf(m->devlink[m->n_devlink].value, sizeof(m->devlink[0].value), "%s", value);
        m->n_devlink++;
    }
}

/* A field's value as the descriptor hook added it, or NULL. */
static inline const char *
plugin_mock_field(const PluginMock *m, const char *name)
{
    for (size_t i = 0; i < m->fields.n; i++) {
        if (strcmp(m->fields.items[i].name, name) == 0) {
            return m->fields.items[i].value;
        }
    }
    return NULL;
}

/* A device view @name on @bus bound to @driver, with every other string "" and no IDs; the
 * test sets what else it needs. */
static inline struct vfio_migd_device
plugin_mock_device(const char *name, const char *bus, const char *driver)
{
    return (struct vfio_migd_device){
        .struct_size = sizeof(struct vfio_migd_device), .name = name, .bus = bus, .address = "",
        .driver = driver, .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID,
        .mdev_type = "", .parent = "", .parent_driver = "", .sysfs_path = "", .sim_options = "",
    };
}
