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
#include "manager.h"
#include "plugin_host.h"
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

#define SYSTEM "vfio_migd.v1.SystemService"

const RpcMethod system_methods[] = {
    METHOD(SYSTEM, GetVersion, V1(get_version_request), V1(get_version_response),
           handle_get_version, RPC_READ_ONLY | RPC_OPEN),
    METHOD(SYSTEM, ListPlugins, V1(list_plugins_request), V1(list_plugins_response),
           handle_list_plugins, RPC_READ_ONLY),
    METHOD(SYSTEM, GetLogLevel, V1(get_log_level_request), V1(log_level_response),
           handle_get_log_level, RPC_READ_ONLY),
    METHOD(SYSTEM, SetLogLevel, V1(set_log_level_request), V1(log_level_response),
           handle_set_log_level, RPC_MUTATING),
};
const size_t system_methods_count = ELEMENTSOF(system_methods);
