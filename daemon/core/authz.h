/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * authz — who may call what on the API: the role a caller holds, from its uid and groups and
 * the configured grants, and whether that role is enough for a call. Pure logic, no I/O: the
 * caller's groups come from rpc/dispatch.c (SO_PEERCRED's gid plus NSS's supplementary
 * groups), the grants from conf.c ([api] operator_users, operator_groups, reader_users,
 * reader_groups, names already resolved to numbers).
 *
 * Three levels, each including the ones below it:
 *   open      health and version: anyone who can open the socket (a probe must work);
 *   reader    every call that only looks (list, show, path, jobs, watch);
 *   operator  every call that changes a device, a group, a migration or a file.
 * The daemon's own uid is always an operator: a process of that user could ptrace the daemon
 * and do anything it does, so refusing it would protect nothing.
 *
 * The VMM socket (fdpass.c) has its own allow-lists: the global one ([vmm] allowed_users,
 * allowed_groups) and, optionally, one per device (attach --vmm-users, --vmm-groups). A
 * device's list, when set, replaces the global one for that device (authz_vmm_admits()).
 *
 * Used by:  rpc/dispatch.c (admission), fdpass.c (VMM peers), daemon/conf.c (the policy's
 *           storage), device.h and core/state_journal (a device's VMM list), tests.
 * Threads:  any; no globals.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Users or groups per grant: a few admins and service accounts; a longer list is a policy
 * that belongs in a group. */
#define AUTHZ_MAX_IDS 32

typedef enum AuthzRole {
    AUTHZ_ROLE_NONE,     /* may call only open methods */
    AUTHZ_ROLE_READER,
    AUTHZ_ROLE_OPERATOR,
    _AUTHZ_ROLE_MAX,
    _AUTHZ_ROLE_INVALID = -1,
} AuthzRole;

typedef struct AuthzIds {
    unsigned ids[AUTHZ_MAX_IDS]; /* uids or gids */
    size_t n;
} AuthzIds;

typedef struct AuthzPolicy {
    AuthzIds operator_users, operator_groups;
    AuthzIds reader_users, reader_groups;
    uid_t self;                  /* the daemon's own uid: always an operator */
} AuthzPolicy;

/* The role of a caller with @uid whose groups are @gids (primary and supplementary; @n_gids
 * may be 0): the highest one any grant gives it. */
AuthzRole authz_role(const AuthzPolicy *p, uid_t uid, const gid_t *gids, size_t n_gids);

/* Whether @have is enough for a call needing @need. */
bool authz_allows(AuthzRole have, AuthzRole need);

/* Whether @uid alone decides that it holds @need (so that its groups need not be looked up). */
bool authz_uid_suffices(const AuthzPolicy *p, uid_t uid, AuthzRole need);

/* "reader", "operator", "none". */
const char *authz_role_name(AuthzRole r);

/* Who may take devices over the VMM socket: a peer whose uid is in @users or whose gid
 * (SO_PEERCRED's, its primary group) is in @groups. */
typedef struct AuthzVmmList {
    AuthzIds users, groups;
} AuthzVmmList;

/* Whether @l names anyone: a device whose list names no one has none and follows the global
 * list. */
bool authz_vmm_list_is_set(const AuthzVmmList *l);

/* Whether a VMM peer with @uid and primary group @gid may take (and drive) a device whose own
 * list is @device (NULL, or naming no one: it has none), under the global list @global. A
 * device's list, when set, replaces the global one for that device: exactly the ids it names
 * are admitted, the global list does not widen it, and root is not implied (the global
 * default names root; a device's list names root when root is to take it). */
bool authz_vmm_admits(const AuthzVmmList *global, const AuthzVmmList *device, uid_t uid,
                      gid_t gid);

/* Adds @id to @ids unless it is there. -E2BIG when @ids is full. */
int authz_ids_add(AuthzIds *ids, unsigned id);
bool authz_ids_contain(const AuthzIds *ids, unsigned id);
