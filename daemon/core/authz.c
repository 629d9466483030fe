/* SPDX-License-Identifier: MIT */
/*
 * authz — see authz.h.
 */
#include "authz.h"

#include <errno.h>

#include "util/macro.h"

static const char *const role_names[] = {
    [AUTHZ_ROLE_NONE] = "none",
    [AUTHZ_ROLE_READER] = "reader",
    [AUTHZ_ROLE_OPERATOR] = "operator",
};
static_assert(ELEMENTSOF(role_names) == _AUTHZ_ROLE_MAX, "role_names out of sync with AuthzRole");

bool
authz_ids_contain(const AuthzIds *ids, unsigned id)
{
    for (size_t i = 0; i < ids->n; i++) {
        if (ids->ids[i] == id) {
            return true;
        }
    }
    return false;
}

int
authz_ids_add(AuthzIds *ids, unsigned id)
{
    if (authz_ids_contain(ids, id)) {
        return 0;
    }
    if (ids->n == AUTHZ_MAX_IDS) {
        return -E2BIG;
    }
    ids->ids[ids->n++] = id;
    return 0;
}

static bool
any_group_in(const AuthzIds *grant, const gid_t *gids, size_t n_gids)
{
    for (size_t i = 0; i < n_gids; i++) {
        if (authz_ids_contain(grant, gids[i])) {
            return true;
        }
    }
    return false;
}

static AuthzRole
role_of_uid(const AuthzPolicy *p, uid_t uid)
{
    if (uid == p->self || authz_ids_contain(&p->operator_users, uid)) {
        return AUTHZ_ROLE_OPERATOR;
    }
    if (authz_ids_contain(&p->reader_users, uid)) {
        return AUTHZ_ROLE_READER;
    }
    return AUTHZ_ROLE_NONE;
}

AuthzRole
authz_role(const AuthzPolicy *p, uid_t uid, const gid_t *gids, size_t n_gids)
{
    AuthzRole r = role_of_uid(p, uid);

    if (r == AUTHZ_ROLE_OPERATOR || any_group_in(&p->operator_groups, gids, n_gids)) {
        return AUTHZ_ROLE_OPERATOR;
    }
    if (r == AUTHZ_ROLE_READER || any_group_in(&p->reader_groups, gids, n_gids)) {
        return AUTHZ_ROLE_READER;
    }
    return AUTHZ_ROLE_NONE;
}

bool
authz_allows(AuthzRole have, AuthzRole need)
{
    return have >= need;
}

bool
authz_uid_suffices(const AuthzPolicy *p, uid_t uid, AuthzRole need)
{
    return authz_allows(role_of_uid(p, uid), need);
}

bool
authz_vmm_list_is_set(const AuthzVmmList *l)
{
    return l && (l->users.n > 0 || l->groups.n > 0);
}

bool
authz_vmm_admits(const AuthzVmmList *global, const AuthzVmmList *device, uid_t uid, gid_t gid)
{
    const AuthzVmmList *l = authz_vmm_list_is_set(device) ? device : global;

    return authz_ids_contain(&l->users, uid) || authz_ids_contain(&l->groups, gid);
}

DEFINE_NAME_LOOKUP(authz_role_name, AuthzRole, role_names, "invalid");
