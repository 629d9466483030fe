/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * plugin_host — loads vendor plugins (include/vfio-migd/plugin.h) and calls their hooks.
 *
 * plugin_host_load_dir() dlopen()s every "*.so" of the plugin directory in file-name order,
 * checks each plugin's ABI (another major: refused with ONE log line saying expected vs found
 * and what to do; an older, smaller descriptor: the members it lacks read as NULL/0), checks
 * its name and claims, and keeps it. A plugin it refuses is dlclose()d and never called
 * again; a plugin it keeps stays loaded until plugin_host_free().
 *
 * plugin_host_match() finds the plugin that claims a device (identity.h); the plugin_*()
 * calls run one hook each and turn its output into the daemon's types: compatibility fields
 * with their rules (core/compat), prerequisites, stream progress. Every hook failure comes
 * back as a negative errno with a sentence: the caller refuses what it was asked to do and
 * the device stays as it was (no hook runs inside a device transition).
 *
 * The host services a plugin gets (log, sysfs root, clock, devlink) are PluginServices: the
 * daemon's are real (plugin_services_default()), a test passes its own (tests/mocks/).
 *
 * Used by:  main.c (loads), manager.c/device.c (matching, descriptors, prerequisites),
 *           rpc/handlers (plugins list), tests.
 * Threads:  loading and matching on the loop; the stream hooks on the data worker that
 *           owns the stream. Logs (a plugin is refused where it is consumed: here).
 */

#include <stddef.h>
#include <stdint.h>

#include <vfio-migd/plugin.h>

#include "backend/identity.h"
#include "util/cleanup.h"
#include "core/compat.h"

typedef struct PluginHost PluginHost;
typedef struct Plugin Plugin;

/* What the daemon lends every plugin: overridable for tests. */
typedef struct PluginServices {
    const char *sysfs_root; /* "/sys" */
    uint64_t (*clock_ns)(void);
    /* The host's devlink_get (plugin.h). NULL: every query answers -EOPNOTSUPP. */
    int (*devlink_get)(void *userdata, const char *handle, const char *attribute, char *buf,
                       size_t size);
    void *userdata;
} PluginServices;

/* The daemon's services under @sysfs_root: the monotonic clock, devlink over generic
 * netlink (devlink.h). */
PluginServices plugin_services_default(const char *sysfs_root);

#define PLUGIN_MAX 64              /* plugins loaded at most; a directory with more is odd */
#define PLUGIN_MAX_PREREQS 32
#define PLUGIN_PREREQ_CHECK_MAX 64
#define PLUGIN_PREREQ_TEXT_MAX 255
#define PLUGIN_NAME_MAX 32

typedef struct PluginPrereq {
    char check[PLUGIN_PREREQ_CHECK_MAX + 1];
    int ok;
    char message[PLUGIN_PREREQ_TEXT_MAX + 1];
    char fix[PLUGIN_PREREQ_TEXT_MAX + 1];
} PluginPrereq;

typedef struct PluginPrereqs {
    size_t n;
    PluginPrereq items[PLUGIN_MAX_PREREQS];
} PluginPrereqs;

/* A new host without plugins; @services is copied (its strings must outlive the host).
 * NULL on OOM. */
PluginHost *plugin_host_new(const PluginServices *services);
/* dlclose()s every plugin. NULL-safe; returns NULL. */
PluginHost *plugin_host_free(PluginHost *h);
DEFINE_CLEANUP_FUNC(PluginHost *, plugin_host_free);

/* Loads every "*.so" in @dir (file-name order). A missing directory is no plugin (0). A
 * plugin that is refused is logged and skipped. Returns the number of plugins loaded, or a
 * negative errno when @dir cannot be read for another reason than not existing. */
int plugin_host_load_dir(PluginHost *h, const char *dir);
/* Loads one plugin. -ENOEXEC not a loadable object or no entry symbol; -EPROTO another ABI
 * major or a descriptor too small; -EINVAL a malformed name or claim; -EEXIST a plugin of
 * that name is loaded; -ENOSPC PLUGIN_MAX reached. Logs one line on each refusal. */
int plugin_host_load(PluginHost *h, const char *path);

size_t plugin_host_count(const PluginHost *h);
const Plugin *plugin_host_get(const PluginHost *h, size_t i);
const Plugin *plugin_host_find(const PluginHost *h, const char *name);

const char *plugin_name(const Plugin *p);
const char *plugin_version(const Plugin *p);
const char *plugin_description(const Plugin *p); /* "" when none */
const char *plugin_path(const Plugin *p);
uint32_t plugin_abi_major(const Plugin *p);
uint32_t plugin_abi_minor(const Plugin *p);
/* The plugin's descriptor, members it lacks zeroed: for its sim model. */
const struct vfio_migd_plugin *plugin_descriptor_of(const Plugin *p);
const struct vfio_migd_host *plugin_host_services(const Plugin *p);
/* The plugin's sim model, zero-extended to this daemon's struct (members the plugin's minor
 * lacks are NULL), or NULL when it has none. NULL-safe. */
const struct vfio_migd_sim_model *plugin_sim_model(const Plugin *p);
/* The plugin whose sim model is named @model, or NULL. Model names are unique (a plugin whose
 * model name is taken, or is "generic", is refused at load). */
const Plugin *plugin_host_find_model(const PluginHost *h, const char *model);
/* "generic, hisi, mlx5": the models attach --sim model= knows, for a refusal. Truncated to
 * @size. */
void plugin_host_model_names(const PluginHost *h, char *buf, size_t size);

/* The first plugin with a claim that matches @id (and that claim in *ret_claim when not
 * NULL), or NULL. */
const Plugin *plugin_host_match(const PluginHost *h, const BackendIdentity *id,
                                const struct vfio_migd_claim **ret_claim);

/* The plugin.h view of a device: @out's strings point into @id and @name. */
void plugin_device_view(const BackendIdentity *id, const char *name,
                        struct vfio_migd_device *out);

/* Runs the descriptor hook, adding each field with its rule to @desc (which may already hold
 * the back-end's fields). 0 also when the plugin has no descriptor hook. On failure @desc is
 * unchanged and @why says why (the plugin's words, or what it did wrong: a malformed field,
 * a name the back-end already uses). */
int plugin_describe(const Plugin *p, const struct vfio_migd_device *dev, CompatDescriptor *desc,
                    char *why, size_t why_size);
/* Runs the prerequisites hook into @ret (emptied first). 0 also without a hook. */
int plugin_prerequisites(const Plugin *p, const struct vfio_migd_device *dev,
                         PluginPrereqs *ret, char *why, size_t why_size);
/* How many devices of one parent it lets migrate at once as sources; 0: no limit. */
uint32_t plugin_max_migrating_per_parent(const Plugin *p);
/* Whether the plugin knows its vendor's stream (all three stream hooks). */
int plugin_has_stream(const Plugin *p);

/* One stream being parsed (plugin.h stream hooks). */
typedef struct PluginStream PluginStream;
int plugin_stream_open(const Plugin *p, const struct vfio_migd_device *dev, uint32_t direction,
                       PluginStream **ret);
/* Feeds the next bytes; a negative errno refuses them, with the plugin's sentence in @why. */
int plugin_stream_feed(PluginStream *s, const void *data, size_t size, char *why,
                       size_t why_size);
const struct vfio_migd_stream_progress *plugin_stream_progress(const PluginStream *s);
PluginStream *plugin_stream_close(PluginStream *s);
DEFINE_CLEANUP_FUNC(PluginStream *, plugin_stream_close);
