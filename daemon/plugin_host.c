/* SPDX-License-Identifier: MIT */
/*
 * plugin_host — see plugin_host.h.
 *
 * The plan: a Plugin keeps a private copy of the plugin's descriptor, as large as this
 * daemon's struct vfio_migd_plugin and zero-filled past the plugin's struct_size, so every
 * later read of a member is safe whatever minor the plugin was built with. Each Plugin also
 * embeds the struct vfio_migd_host it hands to hooks, so a host callback finds its plugin
 * (for the log tag) from the pointer it is given. Output sinks (prerequisites, fields) are
 * daemon structs behind the opaque types of plugin.h; the *_add callbacks validate and copy.
 */
#include "plugin_host.h"

#include "devlink.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/macro.h"

/* ABI 1.0's descriptor ends with the rules; anything smaller is not a 1.x plugin. */
#define PLUGIN_MIN_SIZE (offsetof(struct vfio_migd_plugin, rules) + sizeof(void *))
#define PLUGIN_MODEL_MIN_SIZE (offsetof(struct vfio_migd_sim_model, mig_flags) + sizeof(void *))
#define PLUGIN_MAX_CLAIMS 64
#define PLUGIN_MAX_RULES COMPAT_MAX_FIELDS
#define PLUGIN_VERSION_MAX 64
#define PLUGIN_DESCRIPTION_MAX 200

struct Plugin {
    PluginHost *host;
    void *dl;                         /* dlopen() handle; owned */
    char *path;
    struct vfio_migd_plugin d;        /* the plugin's descriptor, zero-extended */
    struct vfio_migd_sim_model model; /* its sim model, zero-extended (d.sim_model points here) */
    struct vfio_migd_host services;   /* what its hooks get; finds the Plugin back */
};

struct PluginHost {
    PluginServices svc;
    Plugin *plugins[PLUGIN_MAX];
    size_t n;
};

/* The sinks behind plugin.h's opaque types. */
struct vfio_migd_prereq_list {
    PluginPrereqs *list;
    int error; /* the first add that failed */
};

struct vfio_migd_field_list {
    const Plugin *plugin;
    CompatDescriptor desc; /* a copy: the caller's changes only on success */
    int error;
    char bad_field[COMPAT_MAX_NAME + 1];
};

static const Plugin *
plugin_of(const struct vfio_migd_host *host)
{
    return (const Plugin *) ((const char *) host - offsetof(Plugin, services));
}

/* ---- host services */

static void
host_log(const struct vfio_migd_host *host, int32_t priority, const char *message)
{
    int level = priority < LOG_ERR ? LOG_ERR : priority > LOG_DEBUG ? LOG_DEBUG : priority;

    if (!host || !message) {
        return;
    }
    log_full_errno(level, 0, "plugin '%s': %.400s", plugin_of(host)->d.name, message);
}

static uint64_t
host_clock_ns(const struct vfio_migd_host *host)
{
    return host ? plugin_of(host)->host->svc.clock_ns() : clock_now_ns();
}

static int32_t
host_devlink_get(const struct vfio_migd_host *host, const char *handle, const char *attribute,
                 char *buf, uint32_t size)
{
    const PluginServices *svc;

    if (!host || !handle || !attribute || !buf || size == 0) {
        return -EINVAL;
    }
    svc = &plugin_of(host)->host->svc;
    if (!svc->devlink_get) {
        return -EOPNOTSUPP;
    }
    return svc->devlink_get(svc->userdata, handle, attribute, buf, size);
}

static bool
text_ok(const char *s, size_t max)
{
    size_t n;

    if (!s || (n = strnlen(s, max + 1)) > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

static int32_t
host_prereq_add(struct vfio_migd_prereq_list *out, const char *check, uint32_t ok,
                const char *message, const char *fix)
{
    PluginPrereq *p;
    int r = 0;

    if (!out) {
        return -EINVAL;
    }
    if (!check || !message || !fix || !check[0] || ok > 1) {
        r = -EINVAL;
    } else if (!text_ok(check, PLUGIN_PREREQ_CHECK_MAX) ||
               !text_ok(message, PLUGIN_PREREQ_TEXT_MAX) || !text_ok(fix, PLUGIN_PREREQ_TEXT_MAX)) {
        r = strnlen(check, 512) > PLUGIN_PREREQ_CHECK_MAX ? -E2BIG : -EINVAL;
    } else if (out->list->n >= PLUGIN_MAX_PREREQS) {
        r = -ENOSPC;
    }
    if (r < 0) {
        out->error = out->error ?: r;
        return r;
    }
    p = &out->list->items[out->list->n++];
    (void) snprintf(p->check, sizeof(p->check), "%s", check);
    (void) snprintf(p->message, sizeof(p->message), "%s", message);
    (void) snprintf(p->fix, sizeof(p->fix), "%s", fix);
    p->ok = (int) ok;
    return 0;
}

static CompatRule
rule_of(const Plugin *p, const char *field)
{
    for (uint32_t i = 0; i < p->d.n_rules; i++) {
        if (strcmp(p->d.rules[i].field, field) == 0) {
            return (CompatRule) p->d.rules[i].rule;
        }
    }
    return COMPAT_RULE_EQUAL; /* the strict default */
}

static int32_t
host_field_add(struct vfio_migd_field_list *out, const char *name, const char *value)
{
    int r;

    if (!out) {
        return -EINVAL;
    }
    if (!name || !value) {
        r = -EINVAL;
    } else if (out->desc.n_fields >= COMPAT_MAX_FIELDS) {
        r = -ENOSPC;
    } else {
        r = compat_descriptor_add(&out->desc, name, rule_of(out->plugin, name), value);
    }
    if (r < 0 && out->error == 0) {
        out->error = r;
        (void) snprintf(out->bad_field, sizeof(out->bad_field), "%s", name ? name : "(null)");
    }
    return r;
}

PluginServices
plugin_services_default(const char *sysfs_root)
{
    const char *root = sysfs_root ? sysfs_root : "/sys";

    /* devlink_get needs the sysfs root too: a VF's number comes from its PF's virtfnN. */
    return (PluginServices){.sysfs_root = root, .clock_ns = clock_now_ns,
                            .devlink_get = devlink_get, .userdata = (void *) root};
}

/* ---- the host */

PluginHost *
plugin_host_new(const PluginServices *services)
{
    PluginHost *h = calloc(1, sizeof(*h));

    if (!h) {
        return NULL;
    }
    h->svc = *services;
    if (!h->svc.clock_ns) {
        h->svc.clock_ns = clock_now_ns;
    }
    if (!h->svc.sysfs_root) {
        h->svc.sysfs_root = "/sys";
    }
    return h;
}

static void
plugin_free(Plugin *p)
{
    if (!p) {
        return;
    }
    if (p->dl) {
        (void) dlclose(p->dl);
    }
    free(p->path);
    free(p);
}

PluginHost *
plugin_host_free(PluginHost *h)
{
    if (!h) {
        return NULL;
    }
    for (size_t i = 0; i < h->n; i++) {
        plugin_free(h->plugins[i]);
    }
    free(h);
    return NULL;
}

static bool
plugin_name_ok(const char *s)
{
    size_t n = s ? strnlen(s, PLUGIN_NAME_MAX + 1) : 0;

    if (n == 0 || n > PLUGIN_NAME_MAX || s[0] < 'a' || s[0] > 'z') {
        return false;
    }
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* A claim must name something: a claim of everything would take every device. */
static bool
claim_ok(const struct vfio_migd_claim *c)
{
    bool any = (c->driver && c->driver[0]) || c->vendor_id != VFIO_MIGD_ANY_ID ||
               c->device_id != VFIO_MIGD_ANY_ID || (c->mdev_type && c->mdev_type[0]);

    return any && (!c->driver || text_ok(c->driver, 63)) &&
           (!c->mdev_type || text_ok(c->mdev_type, 63)) &&
           (!c->variant_driver || text_ok(c->variant_driver, 63)) &&
           (c->vendor_id <= 0xffff || c->vendor_id == VFIO_MIGD_ANY_ID) &&
           (c->device_id <= 0xffff || c->device_id == VFIO_MIGD_ANY_ID);
}

static bool
model_ok(const struct vfio_migd_sim_model *m)
{
    return m->struct_size >= PLUGIN_MODEL_MIN_SIZE && plugin_name_ok(m->name) && m->create &&
           m->destroy && m->mig_flags;
}

/* What is wrong with a descriptor of the right major, or NULL. */
static const char *
plugin_check(const struct vfio_migd_plugin *d)
{
    bool streams = d->stream_open || d->stream_feed || d->stream_close;

    if (!plugin_name_ok(d->name)) {
        return "its name is not [a-z][a-z0-9_-]* of at most 32 bytes";
    }
    if (!text_ok(d->version, PLUGIN_VERSION_MAX) ||
        (d->description && !text_ok(d->description, PLUGIN_DESCRIPTION_MAX))) {
        return "its version (or description) is missing, too long or has control characters";
    }
    if (d->n_claims > PLUGIN_MAX_CLAIMS || (d->n_claims > 0 && !d->claims)) {
        return "its claims table is missing or has more than 64 entries";
    }
    for (uint32_t i = 0; i < d->n_claims; i++) {
        if (!claim_ok(&d->claims[i])) {
            return "a claim names nothing (a driver, an ID or an mdev type) or a bad value";
        }
    }
    if (d->n_rules > PLUGIN_MAX_RULES || (d->n_rules > 0 && !d->rules)) {
        return "its rules table is missing or has more than 24 entries";
    }
    for (uint32_t i = 0; i < d->n_rules; i++) {
        if (!d->rules[i].field || !compat_rule_name((CompatRule) d->rules[i].rule)) {
            return "a rule has no field or a rule kind other than equal, at_least and info";
        }
    }
    if (streams && !(d->stream_open && d->stream_feed && d->stream_close)) {
        return "it has some stream hooks but not all three (stream_open, stream_feed, "
               "stream_close)";
    }
    if (d->sim_model && !model_ok(d->sim_model)) {
        return "its sim model lacks a name, create, destroy or mig_flags";
    }
    return NULL;
}

/* Checks the ABI words and copies the descriptor, zero-extended. One log line on refusal. */
static int
plugin_accept(Plugin *p, const struct vfio_migd_plugin *d)
{
    const char *why;

    if (d->abi_major != VFIO_MIGD_PLUGIN_ABI_MAJOR) {
        log_error("Refusing plugin %s: it was built for plugin ABI %u.%u, this daemon expects "
                  "ABI major %d (%d.%d); rebuild it against this daemon's <vfio-migd/plugin.h> "
                  "(package vfio-migd-dev) or remove it from the plugin directory.",
                  p->path, d->abi_major, d->abi_minor, VFIO_MIGD_PLUGIN_ABI_MAJOR,
                  VFIO_MIGD_PLUGIN_ABI_MAJOR, VFIO_MIGD_PLUGIN_ABI_MINOR);
        return -EPROTO;
    }
    if (d->struct_size < PLUGIN_MIN_SIZE) {
        log_error("Refusing plugin %s: its descriptor is %u bytes, smaller than ABI %d.0's %zu; "
                  "rebuild it against <vfio-migd/plugin.h>.", p->path, d->struct_size,
                  VFIO_MIGD_PLUGIN_ABI_MAJOR, PLUGIN_MIN_SIZE);
        return -EPROTO;
    }
    memcpy(&p->d, d, MIN((size_t) d->struct_size, sizeof(p->d)));
    why = plugin_check(&p->d);
    if (why) {
        log_error("Refusing plugin %s: %s; fix the plugin (docs/plugins.md).", p->path, why);
        return -EINVAL;
    }
    if (p->d.sim_model) {
        /* the same zero-extension as the descriptor: the sim reads hooks of any minor safely */
        memcpy(&p->model, p->d.sim_model, MIN((size_t) p->d.sim_model->struct_size,
                                              sizeof(p->model)));
        p->d.sim_model = &p->model;
    }
    return 0;
}

static void
plugin_init_services(Plugin *p)
{
    p->services = (struct vfio_migd_host){
        .struct_size = sizeof(struct vfio_migd_host),
        .abi_major = VFIO_MIGD_PLUGIN_ABI_MAJOR,
        .abi_minor = VFIO_MIGD_PLUGIN_ABI_MINOR,
        .sysfs_root = p->host->svc.sysfs_root,
        .log = host_log,
        .clock_ns = host_clock_ns,
        .devlink_get = host_devlink_get,
        .prereq_add = host_prereq_add,
        .field_add = host_field_add,
    };
}

/* dlopen() and the entry symbol; one log line on failure. */
static int
plugin_open(Plugin *p, const struct vfio_migd_plugin **ret)
{
    vfio_migd_plugin_entry_fn entry;
    const struct vfio_migd_plugin *d;
    void *sym;

    p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        log_error("Refusing plugin %s: it cannot be loaded: %s.", p->path, dlerror());
        return -ENOEXEC;
    }
    sym = dlsym(p->dl, VFIO_MIGD_PLUGIN_ENTRY);
    if (!sym) {
        log_error("Refusing plugin %s: it exports no %s() (docs/plugins.md).", p->path,
                  VFIO_MIGD_PLUGIN_ENTRY);
        return -ENOEXEC;
    }
    memcpy(&entry, &sym, sizeof(entry)); /* POSIX: a data pointer that is a function */
    d = entry();
    if (!d) {
        log_error("Refusing plugin %s: its %s() returned NULL.", p->path, VFIO_MIGD_PLUGIN_ENTRY);
        return -ENOEXEC;
    }
    *ret = d;
    return 0;
}

int
plugin_host_load(PluginHost *h, const char *path)
{
    const struct vfio_migd_plugin *d;
    Plugin *p;
    int r;

    if (h->n >= PLUGIN_MAX) {
        log_error("Refusing plugin %s: %d plugins are loaded already.", path, PLUGIN_MAX);
        return -ENOSPC;
    }
    p = calloc(1, sizeof(*p));
    if (!p || !(p->path = strdup(path))) {
        free(p);
        return -ENOMEM;
    }
    p->host = h;
    r = plugin_open(p, &d);
    r = r < 0 ? r : plugin_accept(p, d);
    if (r >= 0 && plugin_host_find(h, p->d.name)) {
        log_error("Refusing plugin %s: a plugin named '%s' is loaded already (%s); remove one "
                  "of them.", path, p->d.name, plugin_host_find(h, p->d.name)->path);
        r = -EEXIST;
    }
    if (r >= 0 && p->d.sim_model && (plugin_host_find_model(h, p->model.name) ||
                                      strcmp(p->model.name, "generic") == 0)) {
        log_error("Refusing plugin %s: its sim model '%s' is the sim's own or another "
                  "plugin's; rename the model or remove one of the plugins.", path,
                  p->model.name);
        r = -EEXIST;
    }
    if (r < 0) {
        plugin_free(p);
        return r;
    }
    plugin_init_services(p);
    h->plugins[h->n++] = p;
    log_info("Loaded plugin '%s' %s (ABI %u.%u) from %s.", p->d.name, p->d.version,
             p->d.abi_major, p->d.abi_minor, path);
    return 0;
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool
is_plugin_file(const char *name)
{
    size_t n = strlen(name);

    return name[0] != '.' && n > 3 && strcmp(name + n - 3, ".so") == 0;
}

int
plugin_host_load_dir(PluginHost *h, const char *dir)
{
    char *names[PLUGIN_MAX * 2];
    size_t n = 0;
    struct dirent *e;
    DIR *d;
    int loaded = 0;

    d = opendir(dir);
    if (!d) {
        return errno == ENOENT ? 0 : -errno;
    }
    while ((e = readdir(d)) && n < ELEMENTSOF(names)) {
        if (is_plugin_file(e->d_name) && asprintf(&names[n], "%s/%s", dir, e->d_name) >= 0) {
            n++;
        }
    }
    (void) closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        loaded += plugin_host_load(h, names[i]) >= 0;
        free(names[i]);
    }
    return loaded;
}

size_t
plugin_host_count(const PluginHost *h)
{
    return h ? h->n : 0;
}

const Plugin *
plugin_host_get(const PluginHost *h, size_t i)
{
    return h && i < h->n ? h->plugins[i] : NULL;
}

const Plugin *
plugin_host_find(const PluginHost *h, const char *name)
{
    for (size_t i = 0; h && i < h->n; i++) {
        if (strcmp(h->plugins[i]->d.name, name) == 0) {
            return h->plugins[i];
        }
    }
    return NULL;
}

const char *
plugin_name(const Plugin *p)
{
    return p->d.name;
}

const char *
plugin_version(const Plugin *p)
{
    return p->d.version;
}

const char *
plugin_description(const Plugin *p)
{
    return p->d.description ? p->d.description : "";
}

const char *
plugin_path(const Plugin *p)
{
    return p->path;
}

uint32_t
plugin_abi_major(const Plugin *p)
{
    return p->d.abi_major;
}

uint32_t
plugin_abi_minor(const Plugin *p)
{
    return p->d.abi_minor;
}

const struct vfio_migd_plugin *
plugin_descriptor_of(const Plugin *p)
{
    return &p->d;
}

const struct vfio_migd_host *
plugin_host_services(const Plugin *p)
{
    return &p->services;
}

const struct vfio_migd_sim_model *
plugin_sim_model(const Plugin *p)
{
    return p && p->d.sim_model ? &p->model : NULL;
}

const Plugin *
plugin_host_find_model(const PluginHost *h, const char *model)
{
    for (size_t i = 0; h && model && i < h->n; i++) {
        if (h->plugins[i]->d.sim_model && strcmp(h->plugins[i]->model.name, model) == 0) {
            return h->plugins[i];
        }
    }
    return NULL;
}

void
plugin_host_model_names(const PluginHost *h, char *buf, size_t size)
{
    size_t used = 0;
    int n = snprintf(buf, size, "generic");

    used = n > 0 ? MIN((size_t) n, size) : 0;
    for (size_t i = 0; h && i < h->n && used < size; i++) {
        if (h->plugins[i]->d.sim_model) {
            n = snprintf(buf + used, size - used, ", %s", h->plugins[i]->model.name);
            used += n > 0 ? MIN((size_t) n, size - used) : 0;
        }
    }
}

/* ---- matching */

static bool
str_matches(const char *want, const char *have)
{
    return !want || !want[0] || strcmp(want, have) == 0;
}

static bool
claim_matches(const struct vfio_migd_claim *c, const BackendIdentity *id)
{
    return str_matches(c->driver, id->driver) && str_matches(c->mdev_type, id->mdev_type) &&
           (c->vendor_id == VFIO_MIGD_ANY_ID || c->vendor_id == id->vendor_id) &&
           (c->device_id == VFIO_MIGD_ANY_ID || c->device_id == id->device_id);
}

const Plugin *
plugin_host_match(const PluginHost *h, const BackendIdentity *id,
                  const struct vfio_migd_claim **ret_claim)
{
    for (size_t i = 0; h && i < h->n; i++) {
        const Plugin *p = h->plugins[i];

        for (uint32_t k = 0; k < p->d.n_claims; k++) {
            if (claim_matches(&p->d.claims[k], id)) {
                if (ret_claim) {
                    *ret_claim = &p->d.claims[k];
                }
                return p;
            }
        }
    }
    return NULL;
}

void
plugin_device_view(const BackendIdentity *id, const char *name, struct vfio_migd_device *out)
{
    *out = (struct vfio_migd_device){
        .struct_size = sizeof(*out),
        .simulated = id->sim_options != NULL,
        .name = name ? name : "",
        .bus = id->bus,
        .address = id->address,
        .driver = id->driver,
        .vendor_id = id->vendor_id,
        .device_id = id->device_id,
        .mdev_type = id->mdev_type,
        .parent = id->parent,
        .parent_driver = id->parent_driver,
        .sysfs_path = id->sysfs_path,
        .sim_options = id->sim_options ? id->sim_options : "",
    };
}

/* ---- hooks */

/* @why gets the plugin's sentence, or one of ours when it left none. */
static int
hook_failed(const Plugin *p, int r, const char *hook, const char *said, char *why,
            size_t why_size)
{
    if (r >= 0 || r < -4095) {
        r = -EIO; /* a positive or absurd return is a plugin bug, still a failure */
    }
    if (said[0]) {
        (void) snprintf(why, why_size, "plugin '%s': %s", p->d.name, said);
    } else {
        (void) snprintf(why, why_size, "plugin '%s' failed in its %s hook: %s", p->d.name, hook,
                        strerror(-r));
    }
    return r;
}

int
plugin_describe(const Plugin *p, const struct vfio_migd_device *dev, CompatDescriptor *desc,
                char *why, size_t why_size)
{
    _cleanup_free_ struct vfio_migd_field_list *out = NULL;
    char said[256] = "";
    int32_t r;

    if (!p->d.descriptor) {
        return 0;
    }
    out = calloc(1, sizeof(*out));
    if (!out) {
        return -ENOMEM;
    }
    out->plugin = p;
    out->desc = *desc;
    r = p->d.descriptor(&p->services, dev, out, said, sizeof(said));
    said[sizeof(said) - 1] = '\0';
    if (r < 0) {
        return hook_failed(p, r, "descriptor", said, why, why_size);
    }
    if (out->error < 0) {
        (void) snprintf(why, why_size, "plugin '%s' gave a field the daemon cannot carry ('%s': "
                        "%s)", p->d.name, out->bad_field, strerror(-out->error));
        return -EPROTO;
    }
    *desc = out->desc;
    return 0;
}

int
plugin_prerequisites(const Plugin *p, const struct vfio_migd_device *dev, PluginPrereqs *ret,
                     char *why, size_t why_size)
{
    struct vfio_migd_prereq_list out = {.list = ret};
    int32_t r;

    ret->n = 0;
    if (!p->d.prerequisites) {
        return 0;
    }
    r = p->d.prerequisites(&p->services, dev, &out);
    if (r < 0) {
        ret->n = 0;
        return hook_failed(p, r, "prerequisites", "", why, why_size);
    }
    if (out.error < 0) {
        ret->n = 0;
        (void) snprintf(why, why_size, "plugin '%s' gave a prerequisite the daemon cannot show "
                        "(%s)", p->d.name, strerror(-out.error));
        return -EPROTO;
    }
    return 0;
}

uint32_t
plugin_max_migrating_per_parent(const Plugin *p)
{
    return p ? p->d.max_migrating_per_parent : 0;
}

int
plugin_has_stream(const Plugin *p)
{
    return p && p->d.stream_open != NULL;
}

struct PluginStream {
    const Plugin *plugin;
    void *state;
    struct vfio_migd_stream_progress progress;
    bool failed; /* a feed was refused: every later one is too */
};

int
plugin_stream_open(const Plugin *p, const struct vfio_migd_device *dev, uint32_t direction,
                   PluginStream **ret)
{
    PluginStream *s;
    int32_t r;

    if (!plugin_has_stream(p) || direction > VFIO_MIGD_STREAM_RESUME) {
        return -EOPNOTSUPP;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->plugin = p;
    s->progress.struct_size = sizeof(s->progress);
    r = p->d.stream_open(&p->services, dev, direction, &s->state);
    if (r < 0) {
        free(s);
        return r < -4095 ? -EIO : r;
    }
    *ret = s;
    return 0;
}

int
plugin_stream_feed(PluginStream *s, const void *data, size_t size, char *why, size_t why_size)
{
    const Plugin *p = s->plugin;
    char said[256] = "";
    int32_t r;

    if (s->failed) {
        (void) snprintf(why, why_size, "plugin '%s' refused this stream already", p->d.name);
        return -EBADMSG;
    }
    r = p->d.stream_feed(&p->services, s->state, data, size, &s->progress, said, sizeof(said));
    said[sizeof(said) - 1] = '\0';
    if (r < 0) {
        s->failed = true;
        return hook_failed(p, r, "stream_feed", said, why, why_size);
    }
    s->progress.bytes += size;
    return 0;
}

const struct vfio_migd_stream_progress *
plugin_stream_progress(const PluginStream *s)
{
    return &s->progress;
}

PluginStream *
plugin_stream_close(PluginStream *s)
{
    if (s) {
        s->plugin->d.stream_close(&s->plugin->services, s->state);
        free(s);
    }
    return NULL;
}
