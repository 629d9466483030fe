/* SPDX-License-Identifier: MIT */
/*
 * dispatch — see dispatch.h. The table is built once, on first use, from the per-service
 * tables of rpc/handlers/. The admission is the one place a call is authorized: the role it
 * needs comes from its method's flags, the role its caller holds from daemon/core/authz.c
 * given the caller's uid and groups, which are looked up here.
 */
#include "dispatch.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"
#include "util/cleanup.h"
#include "util/log.h"

/* Enough for every service's methods; checked below. */
#define DISPATCH_MAX_METHODS 64
/* The kernel's NGROUPS_MAX: no user is in more groups. */
#define DISPATCH_MAX_GROUPS 65536
#define UID_FMT "%u"

/* The caller's groups: its primary gid, from SO_PEERCRED, and the supplementary groups NSS
 * gives its user (getpwuid_r + getgrouplist, as D-Bus does); not /proc/PID/status, whose pid
 * may have been reused by another process since the connection was made. The number of
 * groups and *@ret_gids (the caller frees it), or a negative errno. A uid without a user
 * name has its primary group only. */
static int
caller_groups(const struct ucred *caller, gid_t **ret_gids)
{
    struct passwd pw, *found = NULL;
    char nss[16384];
    int n = 64, r;

    r = getpwuid_r(caller->uid, &pw, nss, sizeof(nss), &found);
    if (r != 0) {
        return -r;
    }
    for (;;) {
        _cleanup_free_ gid_t *gids = malloc((size_t) n * sizeof(gid_t));
        int want = n;

        if (!gids) {
            return -ENOMEM;
        }
        if (!found) {
            gids[0] = caller->gid;
            *ret_gids = TAKE_PTR(gids);
            return 1;
        }
        if (getgrouplist(found->pw_name, caller->gid, gids, &want) >= 0) {
            *ret_gids = TAKE_PTR(gids);
            return want;
        }
        /* Too small: @want now says how many there are (glibc). */
        if (want <= n || want > DISPATCH_MAX_GROUPS) {
            return -E2BIG;
        }
        n = want;
    }
}

const RpcMethod *
rpc_dispatch_table(size_t *ret_count)
{
    static RpcMethod table[DISPATCH_MAX_METHODS];
    static size_t count;
    const struct {
        const RpcMethod *methods;
        size_t n;
    } services[] = {
        {device_methods, device_methods_count},
        {irq_methods, irq_methods_count},
        {group_methods, group_methods_count},
        {migration_methods, migration_methods_count},
        {system_methods, system_methods_count},
        {health_methods, health_methods_count},
    };

    if (count == 0) {
        for (size_t i = 0; i < ELEMENTSOF(services); i++) {
            assert(count + services[i].n <= DISPATCH_MAX_METHODS);
            memcpy(table + count, services[i].methods, services[i].n * sizeof(RpcMethod));
            count += services[i].n;
        }
    }
    *ret_count = count;
    return table;
}

AuthzRole
rpc_dispatch_role_needed(const RpcMethod *m)
{
    if (m->flags & RPC_OPEN) {
        return AUTHZ_ROLE_NONE;
    }
    return m->flags & RPC_MUTATING ? AUTHZ_ROLE_OPERATOR : AUTHZ_ROLE_READER;
}

AuthzRole
rpc_dispatch_role_of(const AuthzPolicy *p, const struct ucred *caller, AuthzRole need)
{
    _cleanup_free_ gid_t *gids = NULL;
    int n;

    if (!p || !caller) {
        return AUTHZ_ROLE_NONE;
    }
    /* The common callers (root, the daemon's user, a listed user) need no NSS look-up. */
    if (authz_uid_suffices(p, caller->uid, need)) {
        return authz_role(p, caller->uid, NULL, 0);
    }
    n = caller_groups(caller, &gids);
    if (n < 0) {
        /* Without its supplementary groups the caller keeps what its uid and primary group
         * give it: never more than it has. */
        log_warning("Cannot list the groups of uid " UID_FMT ", using its primary group only: "
                    "%s", caller->uid, strerror(-n));
        return authz_role(p, caller->uid, &caller->gid, 1);
    }
    return authz_role(p, caller->uid, gids, (size_t) n);
}

/* "uid 1000 (alice)", or "uid 1000" for a uid without a name. */
static void
describe_uid(uid_t uid, char *buf, size_t size)
{
    struct passwd pw, *found = NULL;
    char nss[4096];

    if (getpwuid_r(uid, &pw, nss, sizeof(nss), &found) == 0 && found) {
        (void) snprintf(buf, size, "uid " UID_FMT " (%s)", uid, found->pw_name);
    } else {
        (void) snprintf(buf, size, "uid " UID_FMT, uid);
    }
}

/* The refusal of a call to @m that needs @need, in one sentence: who called, what the call
 * needs, and where to grant it. */
static void
refusal(const RpcContext *ctx, const RpcMethod *m, const struct ucred *caller, AuthzRole need,
        char *why, size_t why_size)
{
    const char *name = strrchr(m->path, '/') + 1;
    const char *file = ctx->config_path ? ctx->config_path : "the configuration file";
    char who[128];

    if (!caller) {
        (void) snprintf(why, why_size, "a caller whose credentials are unknown (SO_PEERCRED) "
                        "may not call %s: connect through the daemon's API socket", name);
        return;
    }
    describe_uid(caller->uid, who, sizeof(who));
    if (need == AUTHZ_ROLE_OPERATOR) {
        (void) snprintf(why, why_size, "%s may not call %s: it changes devices, groups, "
                        "migrations or files and needs the operator role; grant it with [api] "
                        "operator_users or operator_groups in %s (then restart the daemon or "
                        "send it SIGHUP)", who, name, file);
    } else {
        (void) snprintf(why, why_size, "%s may not call %s: it needs the reader role (or the "
                        "operator role); grant it with [api] reader_users or reader_groups in "
                        "%s (then restart the daemon or send it SIGHUP)", who, name, file);
    }
}

int
rpc_dispatch_admit(const RpcMethod *m, const struct ucred *caller, void *userdata, char *why,
                   size_t why_size)
{
    const RpcContext *ctx = userdata;
    AuthzRole need = rpc_dispatch_role_needed(m);

    if (need != AUTHZ_ROLE_NONE &&
        !authz_allows(rpc_dispatch_role_of(ctx->authz, caller, need), need)) {
        refusal(ctx, m, caller, need, why, why_size);
        return -EACCES;
    }
    /* A change started now could not finish before the daemon exits (or would delay that
     * exit); looking at the state of things is harmless and useful until the end. */
    if ((m->flags & RPC_MUTATING) && ctx->manager->shutting_down) {
        (void) snprintf(why, why_size, "vfio-migd is shutting down: it accepts no more calls "
                        "that change devices, groups, migrations or files (start it again to "
                        "make changes)");
        return -ESHUTDOWN;
    }
    return 0;
}

bool
rpc_dispatch_serves(const char *service)
{
    size_t n, len = strlen(service);
    const RpcMethod *t = rpc_dispatch_table(&n);

    /* A method's path is "/<service>/<method>". */
    for (size_t i = 0; i < n; i++) {
        if (strncmp(t[i].path + 1, service, len) == 0 && t[i].path[1 + len] == '/') {
            return true;
        }
    }
    return false;
}
