/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * conf — the daemon's configuration: /etc/vfio-migd/vfio-migd.conf (ini, parsed by libinih)
 * and the command-line options that override its keys.
 *
 * One table (conf.c, conf_keys[]) has a row per key: its section and name, its type and
 * range, its default, the command-line option that overrides it, and its help text. Every
 * user of a key reads that row: the parser, the range checks and their messages, the getopt
 * options and --help of main.c, --dump-config, the shipped default file (which a test
 * compares with --dump-config) and the man page test. A new key is one row, one Config field
 * and one enum value.
 *
 * The order: built-in defaults, then the file, then the command line; each value is checked
 * where it is read, and every problem is collected (with its line) rather than the first
 * one only, so --check-config can list them all. A configuration with any problem is not
 * used: the daemon refuses to start.
 *
 * Pure except conf_load_file() (reads the file), conf_resolve() and conf_lookup_id() (look
 * users and groups up): conf_defaults(), conf_parse(), conf_set_option() and conf_write() do no I/O but
 * through the FILE they are given. The whole configuration is one Config value, so a reload
 * (SIGHUP) builds a new one beside the old and swaps what can change at run time.
 *
 * Used by:  main.c; tests/unit/test_conf.c; tests/fuzz/fuzz_conf.c.
 * Threads:  any; nothing here is shared.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "core/authz.h"
#include "util/macro.h"

/* Every key. The order is the order of --help, --dump-config and the default file. */
typedef enum ConfKeyId {
    CONF_LOG_LEVEL,
    CONF_WORKERS,
    CONF_PLUGIN_DIR,
    CONF_SYSFS_ROOT,
    CONF_SOCKET,
    CONF_SOCKET_MODE,
    CONF_SOCKET_GROUP,
    CONF_MAX_CONNECTIONS,
    CONF_MAX_WATCHERS,
    CONF_WATCH_QUEUE_MAX,
    CONF_OPERATOR_USERS,
    CONF_OPERATOR_GROUPS,
    CONF_READER_USERS,
    CONF_READER_GROUPS,
    CONF_PRECOPY,
    CONF_MAX_PRECOPY_MS,
    CONF_DOWNTIME_TARGET_MS,
    CONF_BANDWIDTH_LIMIT,
    CONF_STOPCOPY_BANDWIDTH_LIMIT,
    CONF_CHANNELS,
    CONF_MIGRATION_TIMEOUT_MS,
    CONF_HANDSHAKE_TIMEOUT_MS,
    CONF_TLS,
    CONF_TLS_CERT,
    CONF_TLS_KEY,
    CONF_TLS_CA,
    CONF_ALLOWED_DIRS,
    CONF_VMM_SOCKET,
    CONF_VMM_USERS,
    CONF_VMM_GROUPS,
    _CONF_KEY_MAX,
    _CONF_KEY_INVALID = -1,
} ConfKeyId;

typedef enum ConfType {
    CONF_TYPE_U32,       /* decimal, within [min, max] */
    CONF_TYPE_RATE,      /* bytes per second: 500000, 64K, 100M, 1G; within [min, max] */
    CONF_TYPE_BOOL,      /* yes/no, true/false, on/off, 1/0 */
    CONF_TYPE_LOG_LEVEL, /* debug, info, notice, warning, error */
    CONF_TYPE_TLS,       /* psk, off or cert, into an int TlsMode */
    CONF_TYPE_MODE,      /* octal; must hold the bits of min and no bit outside max */
    CONF_TYPE_PATH,      /* absolute, at most max bytes, no control characters */
    CONF_TYPE_GROUP,     /* a group name or number; empty: the daemon's own group */
    CONF_TYPE_DIRS,      /* absolute paths separated by ':', or empty */
    CONF_TYPE_USERS,     /* user names or numbers separated by ',' or blanks, or empty */
    CONF_TYPE_GROUPS,    /* group names or numbers separated by ',' or blanks, or empty */
    _CONF_TYPE_MAX,
} ConfType;

/* Strings in Config: a unix socket path holds at most 107 bytes, a group name 32. */
#define CONF_STRING_MAX 128
/* A list of directories: on the command line; a file's line is shorter (about 200). */
#define CONF_DIRS_MAX 1024
/* A list of users or groups: AUTHZ_MAX_IDS names of at most 32 bytes and their separators. */
#define CONF_IDS_MAX 1100
/* Any key's value as text (conf_key_format), with its NUL. */
#define CONF_VALUE_MAX (CONF_IDS_MAX + 8)
/* A configuration file is a few dozen lines; anything near this is not one. */
#define CONF_MAX_FILE_SIZE (64 * 1024)
/* --check-config lists this many problems, then says how many more there were. */
#define CONF_MAX_ERRORS 32

typedef struct Config {
    /* [daemon] */
    int log_level;                        /* LOG_* */
    uint32_t workers;
    char plugin_dir[CONF_STRING_MAX];     /* "": the install's <libdir>/vfio-migd/plugins */
    char sysfs_root[CONF_STRING_MAX];     /* "/sys"; another tree only for tests, containers */
    /* [api] */
    char socket[CONF_STRING_MAX];
    uint32_t socket_mode;
    char socket_group[CONF_STRING_MAX];   /* "": the daemon's own group */
    uint32_t max_connections;             /* API connections open at once */
    uint32_t max_watchers;                /* WatchEvents streams open at once */
    uint32_t watch_queue_max;             /* events one stream may have waiting */
    char operator_users[CONF_IDS_MAX];    /* who may call every method (names or numbers) */
    char operator_groups[CONF_IDS_MAX];
    char reader_users[CONF_IDS_MAX];      /* who may call the methods that only look */
    char reader_groups[CONF_IDS_MAX];
    /* [migration]: what StartMigration uses for the options a request leaves at 0 */
    bool precopy;
    uint32_t max_precopy_ms;
    uint32_t downtime_target_ms;
    uint64_t bandwidth_limit;             /* pre-copy: bytes/s over all devices; 0: unlimited */
    uint64_t stopcopy_bandwidth_limit;    /* stop-copy: the same */
    uint32_t channels;                    /* data channels per device; 0: automatic */
    uint32_t migration_timeout_ms;
    uint32_t handshake_timeout_ms;        /* a data-port connection's first message, whole */
    int tls;                              /* TlsMode: what a migration uses unless asked */
    char tls_cert[CONF_STRING_MAX];       /* --tls cert: files read once at start ("": none) */
    char tls_key[CONF_STRING_MAX];
    char tls_ca[CONF_STRING_MAX];
    /* [files] */
    char allowed_dirs[CONF_DIRS_MAX];     /* besides the state directory; "": none */
    /* [vmm]: the socket VMMs take devices over (fdpass.c) */
    char vmm_socket[CONF_STRING_MAX];     /* "": vmm.sock beside the API socket */
    char vmm_users[CONF_IDS_MAX];         /* who may take devices (names or numbers) */
    char vmm_groups[CONF_IDS_MAX];

    /* Not keys: filled in by the functions below. */
    unsigned line[_CONF_KEY_MAX];         /* the file's line that set each key, 0: not the file */
    bool given[_CONF_KEY_MAX];            /* set by the file or an option, not the default */
    gid_t socket_gid;                     /* socket_group resolved; (gid_t) -1: keep our own */
    AuthzPolicy authz;                    /* the four role keys resolved, and our own uid */
    AuthzIds vmm_allow_users;             /* [vmm] users and groups resolved */
    AuthzIds vmm_allow_groups;
    char authz_unresolved[CONF_IDS_MAX];  /* names of a role key at its default that do not
                                           * exist on this host (they grant nothing) */
} Config;

typedef struct ConfKey {
    const char *section;
    const char *name;
    ConfType type;
    long long min, max;       /* numbers: the range; MODE: required and allowed bits; PATH and
                               * GROUP: max is the longest value in bytes; DIRS, USERS and
                               * GROUPS: min is the most items, max the longest value in bytes */
    const char *default_text; /* parsed like a value from the file, so it obeys the range */
    const char *option;       /* the long command-line option overriding it, without "--" */
    char short_option;        /* 0: none */
    const char *arg_name;     /* in --help: "PATH", "N", ... */
    size_t offset;            /* of its field in Config */
    const char *help;         /* one line: what it is (the range and default are added) */
} ConfKey;

/* The problems found; each names its line (0: not a line of the file) and reads as a whole
 * sentence without it. */
typedef struct ConfError {
    unsigned line;
    char message[384];
} ConfError;

typedef struct ConfErrors {
    const char *source;       /* "/etc/vfio-migd/vfio-migd.conf", for the messages */
    ConfError errors[CONF_MAX_ERRORS];
    size_t n;
    size_t dropped;           /* problems beyond CONF_MAX_ERRORS */
} ConfErrors;

const ConfKey *conf_key(ConfKeyId id);
/* The key overridden by --@option, or _CONF_KEY_INVALID. */
ConfKeyId conf_key_from_option(const char *option);
ConfKeyId conf_key_from_short_option(int c);
/* "1 to 1024", "yes or no", ...: what a key accepts, as the messages and --help say it. */
void conf_key_range(const ConfKey *k, char *buf, size_t size);

/* Key @id's value in @c as the file writes it. */
void conf_key_format(const Config *c, ConfKeyId id, char *buf, size_t size);
/* Copies key @id's value (and the line that set it) from @from to @to. */
void conf_key_copy(Config *to, const Config *from, ConfKeyId id);
/* Whether a new value of key @id applies only after a restart (SIGHUP cannot change it). */
bool conf_key_takes_restart(ConfKeyId id);

/* Every key to its built-in default (and socket_gid to "keep"). */
void conf_defaults(Config *c);

/* Parses @size bytes of ini text (not NUL-terminated; NUL bytes are problems) over @c: every
 * key it sets is checked and recorded with its line; every problem goes to @errors. On return
 * @c holds every valid value that was read, whatever else was wrong: use it only when
 * @errors is empty. */
void conf_parse(Config *c, const char *text, size_t size, ConfErrors *errors);

/* Sets key @id from its command-line option's @value. 0, or -EINVAL with the problem in
 * @errors (line 0, naming the option). */
int conf_set_option(Config *c, ConfKeyId id, const char *value, ConfErrors *errors);

/* Writes @c as an ini file: a header, then every section and key with its help as a comment.
 * @commented: each key as "#key = value" (the shipped default file is this, of the defaults). */
void conf_write(const Config *c, FILE *f, bool commented);

/* Prints every problem, sorted by line, one per line: "SOURCE:LINE: message" (or
 * "SOURCE: message" for line 0, or just the message when @errors->source is NULL), then how
 * many were left out. Returns the number of problems. */
size_t conf_errors_print(ConfErrors *errors, FILE *f);

/* Reads @path and parses it over @c. A file that does not exist is a problem only when
 * @required (the user named it); otherwise @c is left as it was. Reading errors and files
 * larger than CONF_MAX_FILE_SIZE are problems. Returns 1 when a file was read, 0 when none
 * was there, -errno when it could not be read (also in @errors). */
int conf_load_file(Config *c, const char *path, bool required, ConfErrors *errors);

/* Looks a user (@users) or group @name up through NSS, or takes a number below (uid_t) -1 as
 * the id it is (as chown(1) does): 1 and *@ret, 0 when this host has no such user or group,
 * -EINVAL when @name is neither a name (at most 32 of [A-Za-z0-9_.-], not starting with '-')
 * nor a number, or NSS's negative errno. The config's lists and attach --vmm-users resolve
 * through it. */
int conf_lookup_id(const char *name, bool users, unsigned *ret);

/* Resolves socket_group (a name through NSS, or a number) into socket_gid, and the four role
 * keys into authz (names through NSS, numbers as they are; authz.self is our own uid). A user
 * or group that does not exist is a problem in @errors, on the line that named it; except in
 * a key whose value is its default, where it grants nothing and is listed in
 * authz_unresolved (the packaged default names a vfio-migd group a host may not have). A
 * problem goes to @file_errors when the file set the key, else to @cli_errors. */
void conf_resolve(Config *c, ConfErrors *file_errors, ConfErrors *cli_errors);
