/* SPDX-License-Identifier: MIT */
/*
 * test_authz — the role decision of daemon/core/authz.c, exhaustively: every combination of
 * the ways a caller can be granted a role (its uid in each user list, its primary or a
 * supplementary group in each group list, being the daemon's own uid), against every role a
 * call can need. The expected answers are written from the documented rules (docs/security.md),
 * not computed by the code under test.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "core/authz.h"
#include "util/macro.h"

TestSuite(authz, .timeout = 20);

enum {
    CALLER = 1000,      /* the caller's uid */
    OTHER = 1001,       /* someone else */
    SELF = 4242,        /* the daemon's uid */
    PRIMARY = 100,      /* the caller's primary group */
    SUPPLEMENTARY = 27, /* one of its supplementary groups */
    STRANGER = 555,     /* a group the caller is not in */
};

/* The ways a grant can reach the caller, one bit each. */
enum {
    G_OP_USER = 1 << 0,
    G_OP_PRIMARY = 1 << 1,
    G_OP_SUPPLEMENTARY = 1 << 2,
    G_RD_USER = 1 << 3,
    G_RD_PRIMARY = 1 << 4,
    G_RD_SUPPLEMENTARY = 1 << 5,
    G_SELF = 1 << 6,
    _G_ALL = 1 << 7,
};

/* A policy granting the caller what @bits say, and unrelated ids everywhere else, so that a
 * match on the wrong id would show. */
static AuthzPolicy
policy_of(unsigned bits)
{
    AuthzPolicy p = {.self = bits & G_SELF ? CALLER : SELF};
    /* Which list each grant bit adds which of the caller's ids to. */
    const struct {
        unsigned bit;
        AuthzIds *list;
        unsigned id;
    } grants[] = {
        {G_OP_USER, &p.operator_users, CALLER},
        {G_OP_PRIMARY, &p.operator_groups, PRIMARY},
        {G_OP_SUPPLEMENTARY, &p.operator_groups, SUPPLEMENTARY},
        {G_RD_USER, &p.reader_users, CALLER},
        {G_RD_PRIMARY, &p.reader_groups, PRIMARY},
        {G_RD_SUPPLEMENTARY, &p.reader_groups, SUPPLEMENTARY},
    };

    cr_assert_eq(authz_ids_add(&p.operator_users, OTHER), 0);
    cr_assert_eq(authz_ids_add(&p.operator_groups, STRANGER), 0);
    cr_assert_eq(authz_ids_add(&p.reader_users, OTHER), 0);
    cr_assert_eq(authz_ids_add(&p.reader_groups, STRANGER), 0);
    for (size_t i = 0; i < ELEMENTSOF(grants); i++) {
        if (bits & grants[i].bit) {
            cr_assert_eq(authz_ids_add(grants[i].list, grants[i].id), 0);
        }
    }
    return p;
}

/* The rule as docs/security.md states it: the own uid and any operator grant make an
 * operator; else any reader grant makes a reader; else nothing. */
static AuthzRole
expected(unsigned bits)
{
    if (bits & (G_SELF | G_OP_USER | G_OP_PRIMARY | G_OP_SUPPLEMENTARY)) {
        return AUTHZ_ROLE_OPERATOR;
    }
    if (bits & (G_RD_USER | G_RD_PRIMARY | G_RD_SUPPLEMENTARY)) {
        return AUTHZ_ROLE_READER;
    }
    return AUTHZ_ROLE_NONE;
}

Test(authz, every_combination_of_grants_and_needs)
{
    const gid_t gids[] = {PRIMARY, 4, SUPPLEMENTARY, 1234};

    for (unsigned bits = 0; bits < _G_ALL; bits++) {
        AuthzPolicy p = policy_of(bits);
        AuthzRole want = expected(bits), got = authz_role(&p, CALLER, gids, ELEMENTSOF(gids));

        cr_expect_eq(got, want, "grants %#x: role %s, want %s", bits, authz_role_name(got),
                     authz_role_name(want));
        for (AuthzRole need = AUTHZ_ROLE_NONE; need < _AUTHZ_ROLE_MAX; need++) {
            cr_expect_eq(authz_allows(got, need), want >= need, "grants %#x, need %s", bits,
                         authz_role_name(need));
            /* The uid alone is enough exactly when a user grant (or being the daemon) is. */
            bool by_uid = need == AUTHZ_ROLE_NONE ||
                          (bits & (G_SELF | G_OP_USER)) ||
                          (need == AUTHZ_ROLE_READER && (bits & G_RD_USER));
            cr_expect_eq(authz_uid_suffices(&p, CALLER, need), by_uid, "grants %#x, need %s",
                         bits, authz_role_name(need));
        }
        /* Without its groups, a caller keeps only what its uid gives it. */
        AuthzRole uid_only = expected(bits & (G_SELF | G_OP_USER | G_RD_USER));
        cr_expect_eq(authz_role(&p, CALLER, NULL, 0), uid_only, "grants %#x, no groups", bits);
        /* Someone else is never granted by the caller's grants (OTHER is listed as a user). */
        cr_expect_eq(authz_role(&p, 7, (const gid_t[]){STRANGER + 1}, 1), AUTHZ_ROLE_NONE);
    }
}

Test(authz, only_the_listed_ids_count)
{
    AuthzPolicy p = {.self = 0};

    /* Root as the daemon's own uid; a group id equal to a listed user id is not that user. */
    cr_assert_eq(authz_ids_add(&p.reader_users, 1000), 0);
    cr_expect_eq(authz_role(&p, 0, NULL, 0), AUTHZ_ROLE_OPERATOR);
    cr_expect_eq(authz_role(&p, 1000, NULL, 0), AUTHZ_ROLE_READER);
    cr_expect_eq(authz_role(&p, 2000, (const gid_t[]){1000}, 1), AUTHZ_ROLE_NONE,
                 "gid 1000 is not uid 1000");
    cr_assert_eq(authz_ids_add(&p.operator_groups, 1000), 0);
    cr_expect_eq(authz_role(&p, 2000, (const gid_t[]){1000}, 1), AUTHZ_ROLE_OPERATOR);
    cr_expect_eq(authz_role(&p, 2000, (const gid_t[]){999, 1001}, 2), AUTHZ_ROLE_NONE);
}

Test(authz, an_empty_policy_grants_only_the_daemon_itself)
{
    AuthzPolicy p = {.self = 4242};
    const gid_t everything[] = {0, 1, 4, 27, 100, 65534};

    cr_expect_eq(authz_role(&p, 0, everything, ELEMENTSOF(everything)), AUTHZ_ROLE_NONE,
                 "root is an operator by the default list, not by being root");
    cr_expect_eq(authz_role(&p, 4242, NULL, 0), AUTHZ_ROLE_OPERATOR);
}

Test(authz, id_lists_are_bounded_and_without_duplicates)
{
    AuthzIds ids = {0};

    for (unsigned i = 0; i < AUTHZ_MAX_IDS; i++) {
        cr_assert_eq(authz_ids_add(&ids, i * 7), 0);
        cr_assert_eq(authz_ids_add(&ids, i * 7), 0, "again: no second entry");
    }
    cr_expect_eq(ids.n, AUTHZ_MAX_IDS);
    cr_expect_eq(authz_ids_add(&ids, 1), -E2BIG);
    cr_expect_eq(authz_ids_add(&ids, 7), 0, "one that is there is still fine");
    cr_expect(authz_ids_contain(&ids, (AUTHZ_MAX_IDS - 1) * 7));
    cr_expect_not(authz_ids_contain(&ids, 1));
}

Test(authz, role_names)
{
    cr_expect_str_eq(authz_role_name(AUTHZ_ROLE_NONE), "none");
    cr_expect_str_eq(authz_role_name(AUTHZ_ROLE_READER), "reader");
    cr_expect_str_eq(authz_role_name(AUTHZ_ROLE_OPERATOR), "operator");
    cr_expect_str_eq(authz_role_name(_AUTHZ_ROLE_MAX), "invalid");
    cr_expect_str_eq(authz_role_name(_AUTHZ_ROLE_INVALID), "invalid");
}

/* ---- the VMM socket's allow-lists: the global one and a device's */

/* The ways a VMM peer (CALLER, primary group PRIMARY) can be named, one bit each. */
enum {
    V_GLOBAL_USER = 1 << 0,  /* the global list names its uid */
    V_GLOBAL_GROUP = 1 << 1, /* ... its gid */
    V_DEVICE_OTHER = 1 << 2, /* the device has a list, naming someone else */
    V_DEVICE_USER = 1 << 3,  /* the device's list names its uid */
    V_DEVICE_GROUP = 1 << 4, /* ... its gid */
    _V_ALL = 1 << 5,
};

/* The rule as docs/vmm-protocol.md states it: a device's list, when it names anyone, decides
 * alone; else the global list decides. */
static bool
vmm_expected(unsigned bits)
{
    if (bits & (V_DEVICE_OTHER | V_DEVICE_USER | V_DEVICE_GROUP)) {
        return bits & (V_DEVICE_USER | V_DEVICE_GROUP);
    }
    return bits & (V_GLOBAL_USER | V_GLOBAL_GROUP);
}

static void
vmm_add(AuthzIds *ids, bool yes, unsigned id)
{
    if (yes) {
        cr_assert_eq(authz_ids_add(ids, id), 0);
    }
}

Test(authz, vmm_every_combination_of_global_and_device_lists)
{
    for (unsigned bits = 0; bits < _V_ALL; bits++) {
        AuthzVmmList global = {0}, device = {0};

        /* Unrelated ids in the global list, and a group id equal to the caller's uid, so that
         * a match on the wrong id or the wrong kind would show. */
        vmm_add(&global.users, true, OTHER);
        vmm_add(&global.groups, true, CALLER);
        vmm_add(&global.users, bits & V_GLOBAL_USER, CALLER);
        vmm_add(&global.groups, bits & V_GLOBAL_GROUP, PRIMARY);
        vmm_add(&device.users, bits & V_DEVICE_OTHER, OTHER);
        vmm_add(&device.groups, bits & V_DEVICE_OTHER, STRANGER);
        vmm_add(&device.users, bits & V_DEVICE_USER, CALLER);
        vmm_add(&device.groups, bits & V_DEVICE_GROUP, PRIMARY);

        bool set = bits & (V_DEVICE_OTHER | V_DEVICE_USER | V_DEVICE_GROUP);
        cr_expect_eq(authz_vmm_list_is_set(&device), set, "bits %#x", bits);
        cr_expect_eq(authz_vmm_admits(&global, &device, CALLER, PRIMARY), vmm_expected(bits),
                     "bits %#x", bits);
        /* Someone named nowhere is never admitted; OTHER only where a list names it. */
        cr_expect_not(authz_vmm_admits(&global, &device, 7, STRANGER + 1), "bits %#x", bits);
        cr_expect_eq(authz_vmm_admits(&global, &device, OTHER, 1), !set || (bits & V_DEVICE_OTHER),
                     "bits %#x: OTHER", bits);
        if (!set) {
            cr_expect_eq(authz_vmm_admits(&global, NULL, CALLER, PRIMARY), vmm_expected(bits),
                         "bits %#x: no device list is an empty one", bits);
        }
    }
}

Test(authz, vmm_device_list_implies_no_root)
{
    AuthzVmmList global = {0}, device = {0};

    cr_assert_eq(authz_ids_add(&global.users, 0), 0); /* the default: root */
    cr_expect(authz_vmm_admits(&global, &device, 0, 0));
    cr_assert_eq(authz_ids_add(&device.users, 1000), 0);
    cr_expect_not(authz_vmm_admits(&global, &device, 0, 0),
                  "a device's list replaces the global one: root is not on it");
    cr_expect(authz_vmm_admits(&global, &device, 1000, 1000));
    cr_expect_not(authz_vmm_list_is_set(NULL));
}
