/* SPDX-License-Identifier: MIT */
/*
 * test_conf — unit tests for daemon/conf.c: the key table, every value type at and beyond its
 * limits (from the file and from the command line, which must agree), the parser's problem
 * reports (line numbers, did-you-mean, every syntax error and not only the first), the
 * written file read back, and the file and group look-ups. Expected values and limits are
 * written out here from conf.h's contract and the documentation, never read from the table
 * under test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"
#include "migration.h"

TestSuite(conf, .timeout = 20);

/* ---- helpers */

static ConfErrors errors;
static Config cfg;

static void
parse_text(const char *text)
{
    errors = (ConfErrors){.source = "test.conf"};
    conf_defaults(&cfg);
    conf_parse(&cfg, text, strlen(text), &errors);
}

/* Every problem, printed as --check-config prints them. */
static char *
printed(void)
{
    static char buf[32768];
    FILE *f = fmemopen(buf, sizeof(buf), "w");

    cr_assert_not_null(f);
    (void) conf_errors_print(&errors, f);
    fclose(f);
    return buf;
}

static bool
has_error(unsigned line, const char *needle)
{
    for (size_t i = 0; i < errors.n; i++) {
        if (errors.errors[i].line == line && strstr(errors.errors[i].message, needle)) {
            return true;
        }
    }
    return false;
}

#define assert_error(line, needle)                                                                \
    cr_assert(has_error(line, needle), "expected a problem on line %u with '%s'; got:\n%s",       \
              (unsigned) (line), needle, printed())
#define assert_no_errors() cr_assert_eq(errors.n, 0, "expected no problem; got:\n%s", printed())

static void
assert_configs_equal(const Config *a, const Config *b)
{
    cr_assert_eq(a->log_level, b->log_level);
    cr_assert_eq(a->workers, b->workers);
    cr_assert_str_eq(a->socket, b->socket);
    cr_assert_eq(a->socket_mode, b->socket_mode);
    cr_assert_str_eq(a->socket_group, b->socket_group);
    cr_assert_eq(a->precopy, b->precopy);
    cr_assert_eq(a->max_precopy_ms, b->max_precopy_ms);
    cr_assert_eq(a->downtime_target_ms, b->downtime_target_ms);
    cr_assert_eq(a->bandwidth_limit, b->bandwidth_limit);
    cr_assert_eq(a->stopcopy_bandwidth_limit, b->stopcopy_bandwidth_limit);
    cr_assert_eq(a->channels, b->channels);
    cr_assert_eq(a->migration_timeout_ms, b->migration_timeout_ms);
    cr_assert_str_eq(a->allowed_dirs, b->allowed_dirs);
}

/* ---- the table */

Test(conf, defaults_are_the_documented_ones)
{
    MigrationOptions m;

    conf_defaults(&cfg);
    cr_assert_eq(cfg.log_level, LOG_INFO);
    cr_assert_eq(cfg.workers, 64);
    cr_assert_str_eq(cfg.socket, "/run/vfio-migd/api.sock");
    cr_assert_eq(cfg.socket_mode, 0660);
    cr_assert_str_eq(cfg.socket_group, "");
    cr_assert_eq(cfg.socket_gid, (gid_t) -1);
    cr_assert(cfg.precopy);
    cr_assert_eq(cfg.max_precopy_ms, 30000);
    cr_assert_eq(cfg.downtime_target_ms, 300);
    cr_assert_eq(cfg.bandwidth_limit, 0);
    cr_assert_eq(cfg.stopcopy_bandwidth_limit, 0);
    cr_assert_eq(cfg.migration_timeout_ms, 30000);
    /* Root operates, a vfio-migd group looks (docs/security.md). */
    cr_assert_str_eq(cfg.operator_users, "root");
    cr_assert_str_eq(cfg.operator_groups, "");
    cr_assert_str_eq(cfg.reader_users, "");
    cr_assert_str_eq(cfg.reader_groups, "vfio-migd");
    for (int i = 0; i < _CONF_KEY_MAX; i++) {
        cr_assert_eq(cfg.line[i], 0);
        cr_assert(!cfg.given[i]);
    }
    /* A daemon without a file migrates exactly as one built before the file existed. */
    migration_options_defaults(&m);
    cr_assert_eq(m.precopy, cfg.precopy);
    cr_assert_eq(m.max_precopy_ms, cfg.max_precopy_ms);
    cr_assert_eq(m.downtime_target_ms, cfg.downtime_target_ms);
    cr_assert_eq(m.bandwidth_limit, cfg.bandwidth_limit);
    cr_assert_eq(m.stopcopy_bandwidth_limit, cfg.stopcopy_bandwidth_limit);
    cr_assert_eq(m.timeout_ms, cfg.migration_timeout_ms);
}

Test(conf, table_rows_are_complete_and_unique)
{
    static const char *const sections[] = {"daemon", "api", "migration", "files", "vmm"};

    cr_assert_null(conf_key(_CONF_KEY_MAX));
    cr_assert_null(conf_key(_CONF_KEY_INVALID));
    for (ConfKeyId i = 0; i < _CONF_KEY_MAX; i++) {
        const ConfKey *k = conf_key(i);
        bool known = false;

        cr_assert_not_null(k);
        for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
            known = known || strcmp(k->section, sections[s]) == 0;
        }
        cr_assert(known, "key %s: section [%s] is not one the parser knows", k->name, k->section);
        cr_assert(k->name && *k->name && k->help && *k->help && k->arg_name && *k->arg_name);
        cr_assert(k->option && *k->option && k->option[0] != '-');
        cr_assert_lt(strlen(k->help), 72, "key %s: the help must fit --help's line", k->name);
        cr_assert_eq(conf_key_from_option(k->option), i, "--%s maps back to its key", k->option);
        if (k->short_option) {
            cr_assert_eq(conf_key_from_short_option(k->short_option), i);
        }
        for (ConfKeyId j = 0; j < i; j++) {
            const ConfKey *o = conf_key(j);

            cr_assert(strcmp(k->name, o->name) != 0 || strcmp(k->section, o->section) != 0);
            cr_assert_str_neq(k->option, o->option);
            cr_assert(!k->short_option || k->short_option != o->short_option);
        }
    }
    cr_assert_eq(conf_key_from_option("config"), _CONF_KEY_INVALID);
    cr_assert_eq(conf_key_from_option(""), _CONF_KEY_INVALID);
    cr_assert_eq(conf_key_from_short_option('s'), CONF_SOCKET);
    cr_assert_eq(conf_key_from_short_option('l'), CONF_LOG_LEVEL);
    cr_assert_eq(conf_key_from_short_option('w'), CONF_WORKERS);
    cr_assert_eq(conf_key_from_short_option(0), _CONF_KEY_INVALID);
    cr_assert_eq(conf_key_from_short_option('x'), _CONF_KEY_INVALID);
}

/* ---- values: every type at and beyond its limits, from the file and the command line */

typedef struct ValueCase {
    ConfKeyId key;
    const char *text;
    bool ok;
    unsigned long long want; /* numbers, modes, bools, levels */
    const char *want_text;   /* strings */
} ValueCase;

static unsigned long long
value_of(const Config *c, ConfKeyId id)
{
    switch (id) {
    case CONF_LOG_LEVEL: return (unsigned long long) c->log_level;
    case CONF_WORKERS: return c->workers;
    case CONF_SOCKET_MODE: return c->socket_mode;
    case CONF_PRECOPY: return c->precopy;
    case CONF_MAX_PRECOPY_MS: return c->max_precopy_ms;
    case CONF_DOWNTIME_TARGET_MS: return c->downtime_target_ms;
    case CONF_BANDWIDTH_LIMIT: return c->bandwidth_limit;
    case CONF_STOPCOPY_BANDWIDTH_LIMIT: return c->stopcopy_bandwidth_limit;
    case CONF_CHANNELS: return c->channels;
    case CONF_MIGRATION_TIMEOUT_MS: return c->migration_timeout_ms;
    case CONF_HANDSHAKE_TIMEOUT_MS: return c->handshake_timeout_ms;
    case CONF_TLS: return (unsigned long long) c->tls;
    default: return 0;
    }
}

static const char *
text_of(const Config *c, ConfKeyId id)
{
    return id == CONF_SOCKET            ? c->socket
           : id == CONF_SOCKET_GROUP    ? c->socket_group
           : id == CONF_ALLOWED_DIRS    ? c->allowed_dirs
           : id == CONF_OPERATOR_USERS  ? c->operator_users
           : id == CONF_OPERATOR_GROUPS ? c->operator_groups
           : id == CONF_READER_USERS    ? c->reader_users
           : id == CONF_READER_GROUPS   ? c->reader_groups
           : id == CONF_TLS_CERT        ? c->tls_cert
           : id == CONF_TLS_KEY         ? c->tls_key
           : id == CONF_TLS_CA          ? c->tls_ca
                                        : NULL;
}

#define DAY_MS 86400000ULL

static const ValueCase value_cases[] = {
    /* --tls: the three modes by name, nothing else (no case folding, no numbers) */
    {CONF_TLS, "psk", true, TLS_MODE_PSK, NULL},
    {CONF_TLS, "cert", true, TLS_MODE_CERT, NULL},
    {CONF_TLS, "off", true, TLS_MODE_OFF, NULL},
    {CONF_TLS, "CERT", false, 0, NULL},
    {CONF_TLS, "2", false, 0, NULL},
    {CONF_TLS, "", false, 0, NULL},
    /* certificate files: absolute paths, or empty for none */
    {CONF_TLS_CERT, "/etc/vfio-migd/host.pem", true, 0, "/etc/vfio-migd/host.pem"},
    {CONF_TLS_CERT, "", true, 0, ""},
    {CONF_TLS_CERT, "host.pem", false, 0, NULL},
    {CONF_TLS_KEY, "/etc/vfio-migd/host.key", true, 0, "/etc/vfio-migd/host.key"},
    {CONF_TLS_KEY, "key\n", false, 0, NULL},
    {CONF_TLS_CA, "/etc/vfio-migd/ca.pem", true, 0, "/etc/vfio-migd/ca.pem"},
    {CONF_TLS_CA, "./ca.pem", false, 0, NULL},
    {CONF_LOG_LEVEL, "debug", true, LOG_DEBUG, NULL},
    {CONF_LOG_LEVEL, "info", true, LOG_INFO, NULL},
    {CONF_LOG_LEVEL, "notice", true, LOG_NOTICE, NULL},
    {CONF_LOG_LEVEL, "warning", true, LOG_WARNING, NULL},
    {CONF_LOG_LEVEL, "error", true, LOG_ERR, NULL},
    {CONF_LOG_LEVEL, "loud", false, 0, NULL},
    {CONF_LOG_LEVEL, "", false, 0, NULL},
    {CONF_LOG_LEVEL, "3", false, 0, NULL},
    {CONF_WORKERS, "1", true, 1, NULL},
    {CONF_WORKERS, "1024", true, 1024, NULL},
    {CONF_WORKERS, "64", true, 64, NULL},
    {CONF_WORKERS, "0", false, 0, NULL},
    {CONF_WORKERS, "1025", false, 0, NULL},
    {CONF_WORKERS, "-1", false, 0, NULL},
    {CONF_WORKERS, "many", false, 0, NULL},
    {CONF_WORKERS, "8x", false, 0, NULL},
    {CONF_WORKERS, "0x10", false, 0, NULL},
    {CONF_WORKERS, "", false, 0, NULL},
    {CONF_WORKERS, "99999999999999999999999", false, 0, NULL},
    {CONF_MAX_PRECOPY_MS, "1", true, 1, NULL},
    {CONF_MAX_PRECOPY_MS, "86400000", true, DAY_MS, NULL},
    {CONF_MAX_PRECOPY_MS, "86400001", false, 0, NULL},
    {CONF_MAX_PRECOPY_MS, "0", false, 0, NULL},
    {CONF_DOWNTIME_TARGET_MS, "1", true, 1, NULL},
    {CONF_DOWNTIME_TARGET_MS, "86400000", true, DAY_MS, NULL},
    {CONF_DOWNTIME_TARGET_MS, "0", false, 0, NULL},
    {CONF_DOWNTIME_TARGET_MS, "4294967296", false, 0, NULL},
    {CONF_MIGRATION_TIMEOUT_MS, "1", true, 1, NULL},
    {CONF_MIGRATION_TIMEOUT_MS, "86400000", true, DAY_MS, NULL},
    {CONF_MIGRATION_TIMEOUT_MS, "86400001", false, 0, NULL},
    {CONF_MIGRATION_TIMEOUT_MS, "30s", false, 0, NULL},
    {CONF_HANDSHAKE_TIMEOUT_MS, "100", true, 100, NULL},
    {CONF_HANDSHAKE_TIMEOUT_MS, "99", false, 0, NULL},
    {CONF_BANDWIDTH_LIMIT, "0", true, 0, NULL},
    {CONF_BANDWIDTH_LIMIT, "500000", true, 500000, NULL},
    {CONF_BANDWIDTH_LIMIT, "64K", true, 64ULL << 10, NULL},
    {CONF_BANDWIDTH_LIMIT, "100M", true, 100ULL << 20, NULL},
    {CONF_BANDWIDTH_LIMIT, "100M/s", true, 100ULL << 20, NULL},
    {CONF_BANDWIDTH_LIMIT, "1G", true, 1ULL << 30, NULL},
    {CONF_BANDWIDTH_LIMIT, "1024G", true, 1ULL << 40, NULL},
    {CONF_BANDWIDTH_LIMIT, "1025G", false, 0, NULL},
    {CONF_BANDWIDTH_LIMIT, "1.5M", false, 0, NULL},
    {CONF_STOPCOPY_BANDWIDTH_LIMIT, "0", true, 0, NULL},
    {CONF_STOPCOPY_BANDWIDTH_LIMIT, "1G", true, 1ULL << 30, NULL},
    {CONF_STOPCOPY_BANDWIDTH_LIMIT, "1025G", false, 0, NULL},
    {CONF_CHANNELS, "0", true, 0, NULL},
    {CONF_CHANNELS, "8", true, 8, NULL},
    {CONF_CHANNELS, "9", false, 0, NULL},
    {CONF_BANDWIDTH_LIMIT, "-1", false, 0, NULL},
    {CONF_BANDWIDTH_LIMIT, "fast", false, 0, NULL},
    {CONF_BANDWIDTH_LIMIT, "/s", false, 0, NULL},
    {CONF_BANDWIDTH_LIMIT, "", false, 0, NULL},
    {CONF_PRECOPY, "yes", true, 1, NULL},
    {CONF_PRECOPY, "no", true, 0, NULL},
    {CONF_PRECOPY, "true", true, 1, NULL},
    {CONF_PRECOPY, "false", true, 0, NULL},
    {CONF_PRECOPY, "on", true, 1, NULL},
    {CONF_PRECOPY, "off", true, 0, NULL},
    {CONF_PRECOPY, "1", true, 1, NULL},
    {CONF_PRECOPY, "0", true, 0, NULL},
    {CONF_PRECOPY, "NO", true, 0, NULL},
    {CONF_PRECOPY, "maybe", false, 0, NULL},
    {CONF_PRECOPY, "2", false, 0, NULL},
    {CONF_PRECOPY, "", false, 0, NULL},
    {CONF_SOCKET_MODE, "0660", true, 0660, NULL},
    {CONF_SOCKET_MODE, "660", true, 0660, NULL},
    {CONF_SOCKET_MODE, "0600", true, 0600, NULL},
    {CONF_SOCKET_MODE, "0770", true, 0770, NULL},
    {CONF_SOCKET_MODE, "0640", true, 0640, NULL},
    {CONF_SOCKET_MODE, "0666", false, 0, NULL}, /* others */
    {CONF_SOCKET_MODE, "0601", false, 0, NULL},
    {CONF_SOCKET_MODE, "0460", false, 0, NULL}, /* the owner cannot write */
    {CONF_SOCKET_MODE, "0000", false, 0, NULL},
    {CONF_SOCKET_MODE, "0777", false, 0, NULL},
    {CONF_SOCKET_MODE, "1660", false, 0, NULL}, /* sticky */
    {CONF_SOCKET_MODE, "00660", false, 0, NULL},
    {CONF_SOCKET_MODE, "0680", false, 0, NULL},
    {CONF_SOCKET_MODE, "rw-rw----", false, 0, NULL},
    {CONF_SOCKET_MODE, "", false, 0, NULL},
    {CONF_SOCKET, "/x", true, 0, "/x"},
    {CONF_SOCKET, "/run/other/api.sock", true, 0, "/run/other/api.sock"},
    {CONF_SOCKET, "run/api.sock", false, 0, NULL},
    {CONF_SOCKET, "", false, 0, NULL},
    {CONF_SOCKET, "/a\x01b", false, 0, NULL},
    {CONF_SOCKET_GROUP, "", true, 0, ""},
    {CONF_SOCKET_GROUP, "vfio-migd", true, 0, "vfio-migd"},
    {CONF_SOCKET_GROUP, "kvm_ops.2", true, 0, "kvm_ops.2"},
    {CONF_SOCKET_GROUP, "1234", true, 0, "1234"},
    {CONF_SOCKET_GROUP, "host$", true, 0, "host$"},
    {CONF_SOCKET_GROUP, "a b", false, 0, NULL},
    {CONF_SOCKET_GROUP, "-x", false, 0, NULL},
    {CONF_SOCKET_GROUP, "a$b", false, 0, NULL},
    {CONF_SOCKET_GROUP, "abcdefghijklmnopqrstuvwxyz0123456", false, 0, NULL}, /* 33 */
    {CONF_ALLOWED_DIRS, "", true, 0, ""},
    {CONF_ALLOWED_DIRS, "/srv/saves", true, 0, "/srv/saves"},
    {CONF_ALLOWED_DIRS, "/srv/saves:/var/lib/libvirt/qemu/save", true, 0,
     "/srv/saves:/var/lib/libvirt/qemu/save"},
    {CONF_ALLOWED_DIRS, "/a/../b:/c//d/", true, 0, "/a/../b:/c//d/"}, /* made canonical later */
    {CONF_ALLOWED_DIRS, "srv/saves", false, 0, NULL},
    {CONF_ALLOWED_DIRS, "/srv:saves", false, 0, NULL},
    {CONF_ALLOWED_DIRS, "/srv::/x", false, 0, NULL},
    {CONF_ALLOWED_DIRS, "/srv:", false, 0, NULL},
    {CONF_ALLOWED_DIRS, ":/srv", false, 0, NULL},
    {CONF_ALLOWED_DIRS, "/a\x01b", false, 0, NULL},
    {CONF_ALLOWED_DIRS,
     "/1:/2:/3:/4:/5:/6:/7:/8:/9:/10:/11:/12:/13:/14:/15:/16:/17:/18:/19:/20:/21:/22:/23:/24:"
     "/25:/26:/27:/28:/29:/30:/31", true, 0,
     "/1:/2:/3:/4:/5:/6:/7:/8:/9:/10:/11:/12:/13:/14:/15:/16:/17:/18:/19:/20:/21:/22:/23:/24:"
     "/25:/26:/27:/28:/29:/30:/31"},
    {CONF_ALLOWED_DIRS,
     "/1:/2:/3:/4:/5:/6:/7:/8:/9:/10:/11:/12:/13:/14:/15:/16:/17:/18:/19:/20:/21:/22:/23:/24:"
     "/25:/26:/27:/28:/29:/30:/31:/32", false, 0, NULL}, /* 32: one too many */
    {CONF_OPERATOR_USERS, "", true, 0, ""},
    {CONF_OPERATOR_USERS, "root", true, 0, "root"},
    {CONF_OPERATOR_USERS, "root, 1000 alice,bob", true, 0, "root, 1000 alice,bob"},
    {CONF_OPERATOR_USERS, ",root,,", true, 0, ",root,,"},
    {CONF_OPERATOR_USERS, "svc$", true, 0, "svc$"},
    {CONF_OPERATOR_USERS, "root;alice", false, 0, NULL},
    {CONF_OPERATOR_USERS, "-root", false, 0, NULL},
    {CONF_OPERATOR_USERS, "a:b", false, 0, NULL},
    {CONF_OPERATOR_USERS, "abcdefghijklmnopqrstuvwxyz0123456", false, 0, NULL}, /* 33 */
    {CONF_OPERATOR_GROUPS, "wheel adm", true, 0, "wheel adm"},
    {CONF_OPERATOR_GROUPS, "a\x01", false, 0, NULL},
    {CONF_READER_USERS, "65534", true, 0, "65534"},
    {CONF_READER_GROUPS, "vfio-migd", true, 0, "vfio-migd"},
    {CONF_READER_GROUPS,
     "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32",
     true, 0,
     "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32"},
    {CONF_READER_GROUPS,
     "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33",
     false, 0, NULL}, /* 33: one too many */
};

static void
check_value_case(const ValueCase *vc, const Config *c, bool ok, const char *how)
{
    const ConfKey *k = conf_key(vc->key);

    cr_assert_eq(ok, vc->ok, "%s: [%s] %s = '%s' should be %s", how, k->section, k->name,
                 vc->text, vc->ok ? "accepted" : "refused");
    if (!ok) {
        return;
    }
    if (vc->want_text) {
        cr_assert_str_eq(text_of(c, vc->key), vc->want_text, "%s: %s", how, vc->text);
    } else {
        cr_assert_eq(value_of(c, vc->key), vc->want, "%s: '%s' gave %llu", how, vc->text,
                     value_of(c, vc->key));
    }
}

Test(conf, values_from_the_file)
{
    char text[512];

    for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
        const ValueCase *vc = &value_cases[i];
        const ConfKey *k = conf_key(vc->key);

        (void) snprintf(text, sizeof(text), "# a comment\n[%s]\n%s = %s\n", k->section, k->name,
                        vc->text);
        parse_text(text);
        check_value_case(vc, &cfg, errors.n == 0, "file");
        if (vc->ok) {
            cr_assert_eq(cfg.line[vc->key], 3, "the line that set it is recorded");
            continue;
        }
        cr_assert_eq(errors.n, 1, "one problem for '%s':\n%s", vc->text, printed());
        /* The message names the key and gives what it accepts. */
        char want[128];
        (void) snprintf(want, sizeof(want), "[%s] %s must be ", k->section, k->name);
        assert_error(3, want);
        cr_assert_eq(cfg.line[vc->key], 0, "a refused value is not recorded as set");
    }
}

Test(conf, values_from_the_command_line_agree)
{
    for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
        const ValueCase *vc = &value_cases[i];
        const ConfKey *k = conf_key(vc->key);
        char want[128];
        Config before;
        int r;

        errors = (ConfErrors){0};
        conf_defaults(&cfg);
        before = cfg;
        r = conf_set_option(&cfg, vc->key, vc->text, &errors);
        check_value_case(vc, &cfg, r == 0, "command line");
        if (vc->ok) {
            cr_assert_eq(errors.n, 0);
            continue;
        }
        cr_assert_eq(r, -EINVAL);
        cr_assert_eq(errors.n, 1);
        cr_assert_eq(errors.errors[0].line, 0);
        (void) snprintf(want, sizeof(want), "--%s must be ", k->option);
        cr_assert(strstr(errors.errors[0].message, want), "%s", errors.errors[0].message);
        assert_configs_equal(&before, &cfg); /* bad input changes nothing */
    }
}

Test(conf, refusals_give_the_range_and_the_value)
{
    static const struct {
        const char *text;
        const char *range;
    } cases[] = {
        {"[daemon]\nworkers = 0\n", "a whole number from 1 to 1024, not '0'"},
        {"[daemon]\nlog_level = loud\n", "one of debug, info, notice, warning, error, not 'loud'"},
        {"[api]\nsocket_mode = 0666\n", "from 0600 to 0770"},
        {"[api]\nsocket = relative\n", "an absolute path of at most 107 bytes, not 'relative'"},
        {"[migration]\nprecopy = maybe\n", "yes or no"},
        {"[migration]\nbandwidth_limit = 2T\n", "from 0 to 1024G"},
        {"[migration]\ntimeout_ms = 0\n", "from 1 to 86400000, not '0'"},
        {"[api]\nreader_users = a;b\n",
         "user names or numbers separated by commas or blanks (at most 32), or empty, not 'a;b'"},
        {"[api]\noperator_groups = -g\n",
         "group names or numbers separated by commas or blanks (at most 32), or empty, not '-g'"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_text(cases[i].text);
        assert_error(2, cases[i].range);
    }
}

Test(conf, long_and_unprintable_values_are_shown_safely)
{
    char text[256];

    (void) snprintf(text, sizeof(text), "[daemon]\nworkers = %s\x1b[31m\n",
                    "1234567890123456789012345678901234567890123456789");
    parse_text(text);
    cr_assert_eq(errors.n, 1);
    cr_assert_null(strchr(errors.errors[0].message, '\x1b'), "no escape reaches a terminal");
    assert_error(2, "'1234567890123456789012345678901234567890...'");
}

Test(conf, a_whole_file_sets_every_key)
{
    parse_text("[daemon]\n"
               "log_level = debug\n"
               "workers = 8\n"
               "\n"
               "[api]\n"
               "socket = /tmp/x.sock\n"
               "socket_mode = 0600\n"
               "socket_group = kvm\n"
               "[migration]\n"
               "precopy = no\n"
               "max_precopy_ms = 1000\n"
               "downtime_target_ms = 50\n"
               "bandwidth_limit = 10M\n"
               "timeout_ms = 5000\n");
    assert_no_errors();
    cr_assert_eq(cfg.log_level, LOG_DEBUG);
    cr_assert_eq(cfg.workers, 8);
    cr_assert_str_eq(cfg.socket, "/tmp/x.sock");
    cr_assert_eq(cfg.socket_mode, 0600);
    cr_assert_str_eq(cfg.socket_group, "kvm");
    cr_assert(!cfg.precopy);
    cr_assert_eq(cfg.max_precopy_ms, 1000);
    cr_assert_eq(cfg.downtime_target_ms, 50);
    cr_assert_eq(cfg.bandwidth_limit, 10ULL << 20);
    cr_assert_eq(cfg.migration_timeout_ms, 5000);
    static const unsigned lines[_CONF_KEY_MAX] = {
        [CONF_LOG_LEVEL] = 2, [CONF_WORKERS] = 3, [CONF_SOCKET] = 6, [CONF_SOCKET_MODE] = 7,
        [CONF_SOCKET_GROUP] = 8, [CONF_PRECOPY] = 10, [CONF_MAX_PRECOPY_MS] = 11,
        [CONF_DOWNTIME_TARGET_MS] = 12, [CONF_BANDWIDTH_LIMIT] = 13,
        [CONF_MIGRATION_TIMEOUT_MS] = 14,
    };
    for (int i = 0; i < _CONF_KEY_MAX; i++) {
        cr_assert_eq(cfg.line[i], lines[i], "key %d: line %u", i, cfg.line[i]);
    }
}

Test(conf, the_command_line_overrides_the_file)
{
    parse_text("[daemon]\nworkers = 8\n");
    assert_no_errors();
    cr_assert_eq(conf_set_option(&cfg, CONF_WORKERS, "16", &errors), 0);
    cr_assert_eq(cfg.workers, 16);
    cr_assert_eq(cfg.line[CONF_WORKERS], 0, "the value no longer comes from the file");
}

/* ---- the ini syntax as written by people */

Test(conf, empty_and_comment_only_files)
{
    Config defaults;

    conf_defaults(&defaults);
    parse_text("");
    assert_no_errors();
    assert_configs_equal(&defaults, &cfg);
    parse_text("# nothing\n; nothing either\n\n   \n[daemon]\n");
    assert_no_errors();
    assert_configs_equal(&defaults, &cfg);
}

Test(conf, spellings_inih_accepts)
{
    /* CRLF line ends, a UTF-8 BOM, blanks around '=', ':' as the separator, an inline ';'
     * comment, a last line without a newline. */
    parse_text("\xef\xbb\xbf[daemon]\r\n"
               "workers=3\r\n"
               "log_level   :   warning   ; quieter\r\n"
               "[migration]\n"
               "precopy = off");
    assert_no_errors();
    cr_assert_eq(cfg.workers, 3);
    cr_assert_eq(cfg.log_level, LOG_WARNING);
    cr_assert(!cfg.precopy);
}

Test(conf, unknown_keys_and_sections_with_a_guess)
{
    parse_text("[daemon]\n"
               "worker = 4\n"                /* 2: typo */
               "socket = /x\n"               /* 3: wrong section */
               "[deamon]\n"
               "workers = 4\n"               /* 5: misspelt section */
               "[plugins]\n"
               "dir = /x\n"                  /* 7: no such section, nothing close */
               "[migration]\n"
               "colour = blue\n");           /* 9: nothing close */
    cr_assert_eq(errors.n, 5, "%s", printed());
    assert_error(2, "unknown key 'worker' in [daemon]; did you mean 'workers'?");
    assert_error(3, "'socket' belongs in section [api], not [daemon]");
    assert_error(5, "unknown section [deamon]; did you mean [daemon]?");
    assert_error(7, "unknown section [plugins]; the sections are [daemon], [api], [migration] and "
                    "[files]");
    assert_error(9, "unknown key 'colour' in [migration]; its keys are precopy, max_precopy_ms");
    cr_assert_eq(cfg.workers, 64, "a key under a misspelt section is not taken");
}

Test(conf, keys_outside_any_section)
{
    parse_text("workers = 4\nfrobs = 1\n[daemon]\n");
    assert_error(1, "'workers' is outside any section; it belongs in [daemon]");
    assert_error(2, "unknown key 'frobs', outside any section");
    cr_assert_eq(cfg.workers, 64);
}

Test(conf, a_key_set_twice)
{
    parse_text("[daemon]\nworkers = 4\n[api]\n[daemon]\nworkers = 5\n");
    cr_assert_eq(errors.n, 1, "%s", printed());
    assert_error(5, "[daemon] workers is set again (first on line 2)");
}

Test(conf, an_indented_line_is_not_silently_a_continuation)
{
    /* inih would read "  workers = 4" as more of socket's value. */
    parse_text("[api]\nsocket = /x\n  socket_mode = 0600\n");
    assert_error(3, "an indented line continues the value of 'socket' (line 2)");
    cr_assert_eq(cfg.socket_mode, 0660);
    /* Right after a header, indentation is harmless. */
    parse_text("[daemon]\n    workers = 4\n");
    assert_no_errors();
    cr_assert_eq(cfg.workers, 4);
}

Test(conf, every_syntax_error_is_reported_with_its_line)
{
    parse_text("[daemon]\n"
               "workers 4\n"                 /* 2 */
               "log_level = debug\n"
               "just words\n"                /* 4 */
               "[api\n"                      /* 5: broken header */
               "socket_mode = 0600\n"        /* under the broken header: not reported again */
               "[migration]\n"
               "precopy = perhaps\n"         /* 8: a bad value after the syntax errors */
               "=\n");                       /* 9 */
    cr_assert_eq(errors.n, 5, "%s", printed());
    assert_error(2, "expected 'key = value'");
    assert_error(4, "expected 'key = value'");
    assert_error(5, "a section header must be '[name]'");
    assert_error(8, "[migration] precopy must be yes or no");
    assert_error(9, "a value without a key name");
    cr_assert_eq(cfg.log_level, LOG_DEBUG, "good lines between bad ones still count");
    /* Sorted by line when printed. */
    cr_assert(strstr(printed(), "test.conf:2: ") < strstr(printed(), "test.conf:4: "));
    cr_assert(strstr(printed(), "test.conf:8: ") < strstr(printed(), "test.conf:9: "));
}

Test(conf, over_long_lines_and_nul_bytes)
{
    char text[1024];
    char longer[400];

    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    (void) snprintf(text, sizeof(text), "[api]\nsocket = /%s\n[daemon]\nworkers = 2\n", longer);
    parse_text(text);
    cr_assert_eq(errors.n, 1, "%s", printed());
    assert_error(2, "the line is longer than");
    cr_assert_str_eq(cfg.socket, "/run/vfio-migd/api.sock", "the cut line is not half read");
    cr_assert_eq(cfg.workers, 2, "the line after is read as itself");

    static const char with_nul[] = "[daemon]\nworkers = 2\0 junk\nlog_level = debug\n";
    errors = (ConfErrors){.source = "test.conf"};
    conf_defaults(&cfg);
    conf_parse(&cfg, with_nul, sizeof(with_nul) - 1, &errors);
    assert_error(2, "NUL byte");
    cr_assert_eq(cfg.workers, 64);
    cr_assert_eq(cfg.log_level, LOG_DEBUG);
}

Test(conf, the_number_of_problems_listed_is_bounded)
{
    char text[8192] = "";
    size_t n = 0;

    for (int i = 0; i < CONF_MAX_ERRORS + 8; i++) {
        n += (size_t) snprintf(text + n, sizeof(text) - n, "[daemon]\nworkers = x%d\n", i);
    }
    parse_text(text);
    cr_assert_eq(errors.n, CONF_MAX_ERRORS);
    cr_assert_eq(errors.dropped, 8);
    cr_assert(strstr(printed(), "... and 8 more problems"));
    /* Syntax errors too: more than the passes allow still ends, and is still bounded. */
    n = 0;
    for (int i = 0; i < CONF_MAX_ERRORS + 8; i++) {
        n += (size_t) snprintf(text + n, sizeof(text) - n, "garbage %d\n", i);
    }
    parse_text(text);
    cr_assert_eq(errors.n + errors.dropped, CONF_MAX_ERRORS + 1, "%zu + %zu", errors.n,
                 errors.dropped);
}

Test(conf, errors_print_with_the_source_and_line)
{
    parse_text("[daemon]\nworkers = 0\n");
    cr_assert_str_eq(printed(), "test.conf:2: [daemon] workers must be a whole number from 1 to "
                                "1024, not '0'\n");
    errors = (ConfErrors){.source = "vfio-migd"};
    (void) conf_set_option(&cfg, CONF_PRECOPY, "x", &errors);
    cr_assert(strncmp(printed(), "vfio-migd: --precopy must be yes or no", 38) == 0, "%s",
              printed());
}

/* ---- conf_write: what --dump-config prints reads back the same */

static char *
written(const Config *c, bool commented)
{
    static char buf[16384];
    FILE *f = fmemopen(buf, sizeof(buf), "w");

    cr_assert_not_null(f);
    conf_write(c, f, commented);
    fclose(f);
    return buf;
}

Test(conf, written_defaults_read_back)
{
    Config defaults;
    char *text;

    conf_defaults(&defaults);
    text = written(&defaults, false);
    parse_text(text);
    assert_no_errors();
    assert_configs_equal(&defaults, &cfg);
    for (int i = 0; i < _CONF_KEY_MAX; i++) {
        cr_assert_neq(cfg.line[i], 0, "key %d is in the written file", i);
    }
    /* The commented file sets nothing, and names every key with its default. */
    text = written(&defaults, true);
    parse_text(text);
    assert_no_errors();
    for (int i = 0; i < _CONF_KEY_MAX; i++) {
        cr_assert_eq(cfg.line[i], 0);
    }
    cr_assert(strstr(text, "\n#workers = 64\n"));
    cr_assert(strstr(text, "\n#socket_group = \n"));
    cr_assert(strstr(text, "\n[migration]\n"));
}

Test(conf, written_settings_read_back)
{
    Config set;

    parse_text("[daemon]\nlog_level = error\nworkers = 1024\n[api]\nsocket = /a/b\n"
               "socket_mode = 0640\nsocket_group = users\n[migration]\nprecopy = no\n"
               "max_precopy_ms = 7\ndowntime_target_ms = 9\nbandwidth_limit = 1536K\n"
               "timeout_ms = 86400000\n");
    assert_no_errors();
    set = cfg;
    parse_text(written(&set, false));
    assert_no_errors();
    assert_configs_equal(&set, &cfg);
    cr_assert(strstr(written(&set, false), "bandwidth_limit = 1536K\n"));
    cr_assert(strstr(written(&set, false), "socket_mode = 0640\n"));
}

/* ---- the file and the group database */

static char tmpdir[64];

static const char *
tmp_path(const char *name)
{
    static char path[128];

    if (!tmpdir[0]) {
        strcpy(tmpdir, "/tmp/test_conf.XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
    }
    (void) snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

static void
write_file(const char *path, const char *text, size_t size)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, size, f), size);
    fclose(f);
}

Test(conf, load_file)
{
    char p[128], *big;

    (void) snprintf(p, sizeof(p), "%s", tmp_path("a.conf"));
    errors = (ConfErrors){.source = "x"};
    conf_defaults(&cfg);
    cr_assert_eq(conf_load_file(&cfg, tmp_path("missing.conf"), false, &errors), 0);
    assert_no_errors();
    cr_assert_eq(conf_load_file(&cfg, tmp_path("missing.conf"), true, &errors), -ENOENT);
    assert_error(0, "cannot open the configuration file: No such file or directory");

    write_file(p, "[daemon]\nworkers = 5\n", 21);
    errors = (ConfErrors){.source = "x"};
    cr_assert_eq(conf_load_file(&cfg, p, true, &errors), 1);
    assert_no_errors();
    cr_assert_eq(cfg.workers, 5);

    errors = (ConfErrors){.source = "x"};
    cr_assert_lt(conf_load_file(&cfg, tmpdir, true, &errors), 0);
    assert_error(0, "cannot read the configuration file");

    big = calloc(1, CONF_MAX_FILE_SIZE + 1);
    memset(big, '#', CONF_MAX_FILE_SIZE + 1);
    write_file(p, big, CONF_MAX_FILE_SIZE + 1);
    free(big);
    errors = (ConfErrors){.source = "x"};
    conf_defaults(&cfg);
    cr_assert_eq(conf_load_file(&cfg, p, true, &errors), -EFBIG);
    assert_error(0, "larger than 64 KiB");

    /* A FIFO with no writer: read at once as empty, never waited on. */
    cr_assert_eq(mkfifo(tmp_path("fifo"), 0600), 0);
    errors = (ConfErrors){.source = "x"};
    cr_assert_eq(conf_load_file(&cfg, tmp_path("fifo"), true, &errors), 1);
    assert_no_errors();

    (void) unlink(tmp_path("fifo"));
    (void) unlink(p);
    cr_assert_eq(rmdir(tmpdir), 0);
}

Test(conf, resolve_the_socket_group)
{
    struct group *root = getgrgid(0);

    cr_assert_not_null(root);
    parse_text("[api]\nsocket_group = \n");
    conf_resolve(&cfg, &errors, &errors);
    assert_no_errors();
    cr_assert_eq(cfg.socket_gid, (gid_t) -1, "empty: keep the daemon's own group");

    parse_text("[api]\nsocket_group = 4242\n");
    conf_resolve(&cfg, &errors, &errors);
    assert_no_errors();
    cr_assert_eq(cfg.socket_gid, 4242);

    char text[128];
    (void) snprintf(text, sizeof(text), "[api]\nsocket_group = %s\n", root->gr_name);
    parse_text(text);
    conf_resolve(&cfg, &errors, &errors);
    assert_no_errors();
    cr_assert_eq(cfg.socket_gid, 0);

    parse_text("\n[api]\nsocket_group = no-such-group-vfio\n");
    conf_resolve(&cfg, &errors, &errors);
    assert_error(3, "[api] socket_group names no group of this host: 'no-such-group-vfio'");
    cr_assert_eq(cfg.socket_gid, (gid_t) -1);

    errors = (ConfErrors){0};
    conf_defaults(&cfg);
    cr_assert_eq(conf_set_option(&cfg, CONF_SOCKET_GROUP, "no-such-group-vfio", &errors), 0);
    conf_resolve(&cfg, &errors, &errors);
    assert_error(0, "--socket-group names no group");
}

Test(conf, resolve_the_roles)
{
    struct passwd *root = getpwuid(0);
    struct group *g0 = getgrgid(0);
    char text[256];

    cr_assert_not_null(root);
    cr_assert_not_null(g0);
    /* Defaults: root operates; a vfio-migd group this host may lack grants nothing. */
    parse_text("");
    conf_resolve(&cfg, &errors, &errors);
    assert_no_errors();
    cr_assert_eq(cfg.authz.self, geteuid());
    cr_assert_eq(cfg.authz.operator_users.n, 1);
    cr_assert_eq(cfg.authz.operator_users.ids[0], 0);
    cr_assert_eq(cfg.authz.operator_groups.n + cfg.authz.reader_users.n, 0);
    if (getgrnam("vfio-migd")) {
        cr_assert_eq(cfg.authz.reader_groups.n, 1);
        cr_assert_str_eq(cfg.authz_unresolved, "");
    } else {
        cr_assert_eq(cfg.authz.reader_groups.n, 0);
        cr_assert_str_eq(cfg.authz_unresolved, "vfio-migd");
    }

    /* Names and numbers, duplicates once. */
    (void) snprintf(text, sizeof(text), "[api]\noperator_users = %s, 1000 1000\n"
                    "operator_groups = %s 77\nreader_users = 65534\nreader_groups = 5,6\n",
                    root->pw_name, g0->gr_name);
    parse_text(text);
    conf_resolve(&cfg, &errors, &errors);
    assert_no_errors();
    cr_assert_eq(cfg.authz.operator_users.n, 2);
    cr_assert_eq(cfg.authz.operator_users.ids[0], 0);
    cr_assert_eq(cfg.authz.operator_users.ids[1], 1000);
    cr_assert_eq(cfg.authz.operator_groups.n, 2);
    cr_assert_eq(cfg.authz.operator_groups.ids[1], 77);
    cr_assert_eq(cfg.authz.reader_users.ids[0], 65534);
    cr_assert_eq(cfg.authz.reader_groups.n, 2);
    cr_assert_str_eq(cfg.authz_unresolved, "");

    /* A name that does not resolve is a problem on its line, user or group... */
    parse_text("[api]\n\noperator_users = root no-such-user-vfio\n"
               "reader_groups = vfio-migd-no-such-group\n");
    conf_resolve(&cfg, &errors, &errors);
    assert_error(3, "[api] operator_users names no user of this host: 'no-such-user-vfio' "
                    "(create it with 'useradd --system no-such-user-vfio', or name another)");
    assert_error(4, "[api] reader_groups names no group of this host: "
                    "'vfio-migd-no-such-group' (create it with 'groupadd --system");
    cr_assert_eq(errors.n, 2);

    /* ... except the default's value written out (the shipped file, uncommented). */
    parse_text("[api]\nreader_groups = vfio-migd\n");
    conf_resolve(&cfg, &errors, &errors);
    assert_no_errors();
    cr_assert_eq(cfg.authz.reader_groups.n, getgrnam("vfio-migd") ? 1u : 0u);

    /* From the command line: named by its option. */
    errors = (ConfErrors){0};
    conf_defaults(&cfg);
    cr_assert_eq(conf_set_option(&cfg, CONF_READER_GROUPS, "no-such-group-vfio", &errors), 0);
    conf_resolve(&cfg, &errors, &errors);
    assert_error(0, "--reader-groups names no group of this host: 'no-such-group-vfio'");
}
