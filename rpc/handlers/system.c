/* SPDX-License-Identifier: MIT */
/*
 * system — handlers of vfio_migd.v1.SystemService (rpc/proto/vfio_migd/v1/system.proto).
 */
#include <errno.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handlers.h"
#include "device.h"
#include "host_devices.h"
#include "manager.h"
#include "plugin_host.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "vfio_migd/v1/system.pb-c.h"

static void
handle_get_version(RpcCall *call, const ProtobufCMessage *req, void *userdata)
{
    VfioMigd__V1__GetVersionResponse resp = VFIO_MIGD__V1__GET_VERSION_RESPONSE__INIT;
    static char *backends[] = {"sim", "kernel"};
    RpcContext *ctx = userdata;

    (void) req;
    resp.version = VFIO_MIGD_VERSION;
    resp.api = "vfio_migd.v1";
    resp.grpc_core_version = (char *) grpc_version_string();
    resp.pid = (uint32_t) getpid();
    resp.uptime_ms = manager_uptime_ms(ctx->manager);
    resp.n_backends = ELEMENTSOF(backends);
    resp.backends = backends;
    rpc_call_reply(call, &resp.base);
}

static void
handle_get_log_level(RpcCall *call, const ProtobufCMessage *req _unused_, void *userdata _unused_)
{
    VfioMigd__V1__LogLevelResponse resp = VFIO_MIGD__V1__LOG_LEVEL_RESPONSE__INIT;

    resp.level = (char *) log_level_to_string(log_get_max_level());
    rpc_call_reply(call, &resp.base);
}

/* The level holds until a reload (SIGHUP) applies the configured one again: a reload means
 * "what the configuration says", and the log line below tells who changed it meanwhile. */
static void
handle_set_log_level(RpcCall *call, const ProtobufCMessage *r, void *userdata _unused_)
{
    const VfioMigd__V1__SetLogLevelRequest *req = REQ(SetLogLevelRequest, r);
    VfioMigd__V1__LogLevelResponse resp = VFIO_MIGD__V1__LOG_LEVEL_RESPONSE__INIT;
    int previous = log_get_max_level();
    int level = log_level_from_string(req->level);

    if (level < 0) {
        rpc_call_fail(call, -EINVAL, "unknown log level '%.32s': use error, warning, notice, "
                      "info or debug", req->level);
        return;
    }
    log_set_max_level(level);
    log_notice("Log level set to %s (was %s) by a client; a reload (SIGHUP) applies the "
               "configured level again.", log_level_to_string(level),
               log_level_to_string(previous));
    resp.level = (char *) log_level_to_string(level);
    resp.previous = (char *) log_level_to_string(previous);
    rpc_call_reply(call, &resp.base);
}

/* ---- plugins */

/* "driver=mtty mdev_type=mtty-2": the claim's set members, as the CLI shows them. */
static char *
claim_text(const struct vfio_migd_claim *c)
{
    char buf[256] = "";
    size_t used = 0;

#define CLAIM_PART(...) \
    used += (size_t) snprintf(buf + used, used < sizeof(buf) ? sizeof(buf) - used : 0, __VA_ARGS__)
    if (c->driver && c->driver[0]) {
        CLAIM_PART(" driver=%s", c->driver);
    }
    if (c->vendor_id != VFIO_MIGD_ANY_ID || c->device_id != VFIO_MIGD_ANY_ID) {
        CLAIM_PART(" pci_id=%04x:%04x", c->vendor_id & 0xffff, c->device_id & 0xffff);
    }
    if (c->mdev_type && c->mdev_type[0]) {
        CLAIM_PART(" mdev_type=%s", c->mdev_type);
    }
    if (c->variant_driver && c->variant_driver[0]) {
        CLAIM_PART(" variant_driver=%s", c->variant_driver);
    }
#undef CLAIM_PART
    return strdup(buf[0] ? buf + 1 : buf);
}

typedef struct PluginsMsg {
    VfioMigd__V1__Plugin *msgs;
    VfioMigd__V1__Plugin **ptrs;
    char (*abi)[24];
    char **claims; /* every claim's text, all plugins */
    size_t n_claims;
} PluginsMsg;

static void
plugins_msg_done(PluginsMsg *pm)
{
    for (size_t i = 0; i < pm->n_claims; i++) {
        free(pm->claims[i]);
    }
    free(pm->claims);
    free(pm->msgs);
    free(pm->ptrs);
    free(pm->abi);
}

static int
plugin_msg(const Plugin *p, PluginsMsg *pm, size_t i)
{
    const struct vfio_migd_plugin *d = plugin_descriptor_of(p);
    VfioMigd__V1__Plugin *m = &pm->msgs[i];

    vfio_migd__v1__plugin__init(m);
    (void) snprintf(pm->abi[i], sizeof(pm->abi[i]), "%u.%u", plugin_abi_major(p),
                    plugin_abi_minor(p));
    m->name = (char *) plugin_name(p);
    m->version = (char *) plugin_version(p);
    m->abi = pm->abi[i];
    m->description = (char *) plugin_description(p);
    m->path = (char *) plugin_path(p);
    m->sim_model = (char *) (d->sim_model ? d->sim_model->name : "");
    m->claims = pm->claims + pm->n_claims;
    for (uint32_t k = 0; k < d->n_claims; k++) {
        char *t = claim_text(&d->claims[k]);

        if (!t) {
            return -ENOMEM;
        }
        pm->claims[pm->n_claims++] = t;
        m->n_claims++;
    }
    pm->ptrs[i] = m;
    return 0;
}

static void
handle_list_plugins(RpcCall *call, const ProtobufCMessage *req _unused_, void *userdata)
{
    VfioMigd__V1__ListPluginsResponse resp = VFIO_MIGD__V1__LIST_PLUGINS_RESPONSE__INIT;
    RpcContext *ctx = userdata;
    const PluginHost *h = ctx->manager->plugins;
    size_t n = plugin_host_count(h), total = 0;
    PluginsMsg pm = {0};
    int r = 0;

    for (size_t i = 0; i < n; i++) {
        total += plugin_descriptor_of(plugin_host_get(h, i))->n_claims;
    }
    pm.msgs = calloc(n + 1, sizeof(*pm.msgs));
    pm.ptrs = calloc(n + 1, sizeof(*pm.ptrs));
    pm.abi = calloc(n + 1, sizeof(*pm.abi));
    pm.claims = calloc(total + 1, sizeof(*pm.claims));
    if (!pm.msgs || !pm.ptrs || !pm.abi || !pm.claims) {
        r = -ENOMEM;
    }
    for (size_t i = 0; r >= 0 && i < n; i++) {
        r = plugin_msg(plugin_host_get(h, i), &pm, i);
    }
    if (r < 0) {
        plugins_msg_done(&pm);
        rpc_call_fail(call, r, "cannot list the plugins: out of memory");
        return;
    }
    resp.n_plugins = n;
    resp.plugins = pm.ptrs;
    rpc_call_reply(call, &resp.base);
    plugins_msg_done(&pm);
}

/* ---- host readiness */

typedef struct HostDevicesMsg {
    VfioMigd__V1__HostDevice *msgs;
    VfioMigd__V1__HostDevice **ptrs;
    VfioMigd__V1__Prerequisite *pre;
    VfioMigd__V1__Prerequisite **pre_ptrs;
    char (*ids)[2][8];
} HostDevicesMsg;

static void
host_device_msg(const HostDevice *hd, HostDevicesMsg *hm, size_t i)
{
    VfioMigd__V1__HostDevice *m = &hm->msgs[i];
    size_t base = i * PLUGIN_MAX_PREREQS;

    vfio_migd__v1__host_device__init(m);
    m->address = (char *) hd->id.address;
    m->bus = (char *) hd->id.bus;
    if (hd->id.vendor_id != BACKEND_ID_NONE) {
        (void) snprintf(hm->ids[i][0], sizeof(hm->ids[i][0]), "%04x", hd->id.vendor_id & 0xffff);
        (void) snprintf(hm->ids[i][1], sizeof(hm->ids[i][1]), "%04x", hd->id.device_id & 0xffff);
    }
    m->vendor_id = hm->ids[i][0];
    m->device_id = hm->ids[i][1];
    m->driver = (char *) hd->id.driver;
    m->variant_driver = (char *) hd->variant_driver;
    m->plugin = (char *) (hd->plugin ? plugin_name(hd->plugin) : "");
    m->mdev_type = (char *) hd->id.mdev_type;
    m->can_migrate = hd->can_migrate;
    m->plugin_error = (char *) hd->plugin_error;
    for (size_t k = 0; k < hd->prereqs.n; k++) {
        VfioMigd__V1__Prerequisite *p = &hm->pre[base + k];

        vfio_migd__v1__prerequisite__init(p);
        p->check = (char *) hd->prereqs.items[k].check;
        p->ok = hd->prereqs.items[k].ok;
        p->message = (char *) hd->prereqs.items[k].message;
        p->fix = (char *) hd->prereqs.items[k].fix;
        hm->pre_ptrs[base + k] = p;
    }
    m->n_prerequisites = hd->prereqs.n;
    m->prerequisites = hm->pre_ptrs + base;
    hm->ptrs[i] = m;
}

static void
handle_list_host_devices(RpcCall *call, const ProtobufCMessage *req _unused_, void *userdata)
{
    VfioMigd__V1__ListHostDevicesResponse resp = VFIO_MIGD__V1__LIST_HOST_DEVICES_RESPONSE__INIT;
    RpcContext *ctx = userdata;
    _cleanup_free_ HostDevice *hd = NULL;
    HostDevicesMsg hm = {0};
    size_t n = 0;
    int r;

    r = host_devices_list(ctx->manager->sysfs_root, ctx->manager->plugins, &hd, &n);
    if (r < 0) {
        rpc_call_fail(call, r, "cannot list the devices in %s: %s", ctx->manager->sysfs_root,
                      strerror(-r));
        return;
    }
    hm.msgs = calloc(n + 1, sizeof(*hm.msgs));
    hm.ptrs = calloc(n + 1, sizeof(*hm.ptrs));
    hm.ids = calloc(n + 1, sizeof(*hm.ids));
    hm.pre = calloc((n + 1) * PLUGIN_MAX_PREREQS, sizeof(*hm.pre));
    hm.pre_ptrs = calloc((n + 1) * PLUGIN_MAX_PREREQS, sizeof(*hm.pre_ptrs));
    if (!hm.msgs || !hm.ptrs || !hm.ids || !hm.pre || !hm.pre_ptrs) {
        rpc_call_fail(call, -ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            host_device_msg(&hd[i], &hm, i);
        }
        resp.n_devices = n;
        resp.devices = hm.ptrs;
        rpc_call_reply(call, &resp.base);
    }
    free(hm.msgs);
    free(hm.ptrs);
    free(hm.ids);
    free(hm.pre);
    free(hm.pre_ptrs);
}

/* A bind runs on a worker: the driver's probe, inside the sysfs write, may take seconds. */
typedef struct BindWork {
    uv_work_t req;
    RpcCall *call;
    const char *root;
    const PluginHost *plugins;
    char address[80];
    char before[64], driver[64], err[512];
    int r;
} BindWork;

static void
bind_run(uv_work_t *req)
{
    BindWork *b = req->data;
    HostWriter w = {host_devices_write_file, NULL};

    b->r = host_devices_bind(b->root, b->plugins, b->address, &w, b->before, b->driver, b->err,
                             sizeof(b->err));
}

static void
bind_after(uv_work_t *req, int status _unused_)
{
    _cleanup_free_ BindWork *b = req->data;
    VfioMigd__V1__BindHostDeviceResponse resp = VFIO_MIGD__V1__BIND_HOST_DEVICE_RESPONSE__INIT;

    if (b->r < 0) {
        rpc_call_fail(b->call, b->r, "%s", b->err);
        return;
    }
    resp.address = b->address;
    resp.driver_before = b->before;
    resp.driver = b->driver;
    resp.changed = strcmp(b->before, b->driver) != 0;
    if (resp.changed) { /* already bound to it: nothing was written, nothing to log */
        log_notice("Bound PCI function %s to %s (was %s) on request.", b->address, b->driver,
                   b->before[0] ? b->before : "unbound");
    }
    rpc_call_reply(b->call, &resp.base);
}

static void
handle_bind_host_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__BindHostDeviceRequest *req = REQ(BindHostDeviceRequest, r);
    RpcContext *ctx = userdata;
    BindWork *b = calloc(1, sizeof(*b));
    const Device *held;
    int ret;

    if (!b) {
        rpc_call_fail(call, -ENOMEM, "out of memory");
        return;
    }
    if (strlen(req->address) >= sizeof(b->address)) {
        free(b);
        rpc_call_fail(call, -EINVAL, "'%.64s...' is not a PCI address", req->address);
        return;
    }
    held = manager_find_pci(ctx->manager, req->address);
    if (held) {
        free(b);
        rpc_call_fail(call, -EBUSY, "PCI function %s is attached as device '%s': a bind would "
                      "unbind it from under the daemon; detach it first ('vfio-migctl detach "
                      "%s'), then bind", held->identity.address, held->id, held->id);
        return;
    }
    b->call = call;
    b->root = ctx->manager->sysfs_root;
    b->plugins = ctx->manager->plugins;
    (void) snprintf(b->address, sizeof(b->address), "%s", req->address);
    b->req.data = b;
    ret = uv_queue_work(ctx->manager->loop, &b->req, bind_run, bind_after);
    if (ret < 0) {
        free(b);
        rpc_call_fail(call, -ENOMEM, "cannot start the bind: %s", uv_strerror(ret));
    }
}

#define SYSTEM "vfio_migd.v1.SystemService"

const RpcMethod system_methods[] = {
    METHOD_V1(SYSTEM, GetVersion, get_version, RPC_READ_ONLY | RPC_OPEN),
    METHOD_V1(SYSTEM, ListPlugins, list_plugins, RPC_READ_ONLY),
    METHOD_V1(SYSTEM, ListHostDevices, list_host_devices, RPC_READ_ONLY),
    METHOD_V1(SYSTEM, BindHostDevice, bind_host_device, RPC_MUTATING),
    METHOD_V1_RESP(SYSTEM, GetLogLevel, get_log_level, log_level_response, RPC_READ_ONLY),
    METHOD_V1_RESP(SYSTEM, SetLogLevel, set_log_level, log_level_response, RPC_MUTATING),
};
const size_t system_methods_count = ELEMENTSOF(system_methods);
