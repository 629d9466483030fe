/* SPDX-License-Identifier: MIT */
/*
 * conf — see conf.h.
 *
 * The plan: libinih reads the ini syntax (sections, "key = value", comments) and hands each
 * pair to conf_ini_handler(), which checks it against conf_keys[] and the value against its
 * type (conf_types[]). inih is given the text through our own line reader, which is what
 * knows the line numbers (Debian's inih passes none to the handler), refuses over-long lines
 * and NUL bytes instead of letting inih split or cut them, and can blank a line out. inih
 * reports only its first syntax error: after each one the text is parsed again with that
 * line blanked, so every syntax error is found (CONF_MAX_ERRORS passes at most), and the key
 * problems of the last pass are kept.
 */
#include "conf.h"
#include "core/spread.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "files.h"
#include "listener.h" /* the connection limits */
#include "migration.h"
#include "migration_watch.h"
#include "util/cleanup.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/strutil.h"
#include "worker.h"

#define DEFAULT_SOCKET "/run/vfio-migd/api.sock"
/* Each device operation holds a worker for its whole duration (arcs may take seconds on
 * real hardware), and a group moves all its devices at once: size the pool for that. */
#define DEFAULT_WORKERS 64
#define MAX_RATE LIMIT_MAX_RATE /* util/limits.h: the API and the CLI take the same ranges */
#define MAX_MS LIMIT_MAX_MS
/* sizeof(sockaddr_un.sun_path) - 1 */
#define MAX_SOCKET_PATH 107
/* useradd's limit on Debian (and glibc's LOGIN_NAME_MAX - 1). */
#define MAX_GROUP_NAME 32
/* A broken section header is fed to inih as this one: keys under it were already refused
 * with the header, so they are skipped instead of reported again. */
#define BROKEN_SECTION "?"

#define KEY(id_, sec, nm, ty, mn, mx, def, opt, sh, arg, field, hlp)                              \
    [id_] = {.section = (sec), .name = (nm), .type = (ty), .min = (mn), .max = (mx),               \
             .default_text = (def), .option = (opt), .short_option = (sh), .arg_name = (arg),     \
             .offset = offsetof(Config, field), .help = (hlp)}
/* The kinds of key that several rows share: a list of users or of groups (@ty USERS or
 * GROUPS, which names the option's argument too), and an optional path (empty: built in). */
#define IDS_KEY(id_, sec, nm, ty, def, opt, field, hlp)                                            \
    KEY(id_, sec, nm, CONF_TYPE_##ty, AUTHZ_MAX_IDS, CONF_IDS_MAX - 1, def, opt, 0, #ty, field, hlp)
#define OPTIONAL_PATH_KEY(id_, sec, nm, opt, arg, field, hlp)                                     \
    KEY(id_, sec, nm, CONF_TYPE_PATH, 1, CONF_STRING_MAX - 1, "", opt, 0, arg, field, hlp)

static const ConfKey conf_keys[] = {
    KEY(CONF_LOG_LEVEL, "daemon", "log_level", CONF_TYPE_LOG_LEVEL, 0, 0, "info", "log-level",
        'l', "LEVEL", log_level, "the least important messages logged"),
    KEY(CONF_WORKERS, "daemon", "workers", CONF_TYPE_U32, 1, WORKER_MAX,
        STRINGIFY(DEFAULT_WORKERS), "workers", 'w', "N", workers,
        "threads for device operations and data pumps: one per device in motion"),
    OPTIONAL_PATH_KEY(CONF_PLUGIN_DIR, "daemon", "plugin_dir", "plugin-dir", "DIR", plugin_dir,
                      "vendor plugins (*.so); empty: the install's <libdir>/vfio-migd/plugins"),
    KEY(CONF_SYSFS_ROOT, "daemon", "sysfs_root", CONF_TYPE_PATH, 0, CONF_STRING_MAX - 1, "/sys",
        "sysfs-root", 0, "DIR", sysfs_root,
        "the sysfs tree read by attach, show, host-devices; bind writes it"),
    KEY(CONF_SOCKET, "api", "socket", CONF_TYPE_PATH, 0, MAX_SOCKET_PATH, DEFAULT_SOCKET,
        "socket", 's', "PATH", socket, "the API's unix socket (its directory is created)"),
    KEY(CONF_SOCKET_MODE, "api", "socket_mode", CONF_TYPE_MODE, 0600, 0770, "0660",
        "socket-mode", 0, "MODE", socket_mode, "the API socket's permissions"),
    KEY(CONF_SOCKET_GROUP, "api", "socket_group", CONF_TYPE_GROUP, 0, MAX_GROUP_NAME, "",
        "socket-group", 0, "GROUP", socket_group,
        "the API socket's group, whose members may call the API"),
    KEY(CONF_MAX_CONNECTIONS, "api", "max_connections", CONF_TYPE_U32, 1,
        RPC_LISTENER_MAX_CONNECTIONS, STRINGIFY(RPC_LISTENER_DEFAULT_MAX_CONNECTIONS),
        "max-connections", 0, "N", max_connections,
        "API connections open at once; one more is closed at once and logged"),
    KEY(CONF_MAX_WATCHERS, "api", "max_watchers", CONF_TYPE_U32, 1, MIGRATION_WATCH_MAX,
        STRINGIFY(MIGRATION_WATCH_DEFAULT_MAX), "max-watchers", 0, "N", max_watchers,
        "watch streams (vfio-migctl watch) open at once; one more is refused"),
    KEY(CONF_WATCH_QUEUE_MAX, "api", "watch_queue_max", CONF_TYPE_U32,
        MIGRATION_WATCH_MIN_QUEUE, MIGRATION_WATCH_MAX_QUEUE,
        STRINGIFY(MIGRATION_WATCH_DEFAULT_QUEUE), "watch-queue-max", 0, "N", watch_queue_max,
        "events a watcher may leave unread; a slower reader is disconnected"),
    IDS_KEY(CONF_OPERATOR_USERS, "api", "operator_users", USERS, "root", "operator-users",
            operator_users, "users who may call everything: change devices, groups, jobs, files"),
    IDS_KEY(CONF_OPERATOR_GROUPS, "api", "operator_groups", GROUPS, "", "operator-groups",
            operator_groups, "groups whose members may call everything, as operator_users"),
    IDS_KEY(CONF_READER_USERS, "api", "reader_users", USERS, "", "reader-users", reader_users,
            "users who may only look: list, show, path, jobs, watch"),
    IDS_KEY(CONF_READER_GROUPS, "api", "reader_groups", GROUPS, "vfio-migd", "reader-groups",
            reader_groups, "groups whose members may only look, as reader_users"),
    KEY(CONF_PRECOPY, "migration", "precopy", CONF_TYPE_BOOL, 0, 0, "yes", "precopy", 0,
        "yes|no", precopy, "pre-copy while the VM runs when every device supports it"),
    KEY(CONF_MAX_PRECOPY_MS, "migration", "max_precopy_ms", CONF_TYPE_U32, 1, MAX_MS,
        STRINGIFY(MIGRATION_DEFAULT_MAX_PRECOPY_MS), "max-precopy-ms", 0, "N", max_precopy_ms,
        "longest pre-copy in ms, then switchover (or phase ready if manual)"),
    KEY(CONF_DOWNTIME_TARGET_MS, "migration", "downtime_target_ms", CONF_TYPE_U32, 1, MAX_MS,
        STRINGIFY(MIGRATION_DEFAULT_DOWNTIME_TARGET_MS), "downtime-target-ms", 0, "N",
        downtime_target_ms, "pre-copy has converged once the rest moves within this many ms"),
    KEY(CONF_BANDWIDTH_LIMIT, "migration", "bandwidth_limit", CONF_TYPE_RATE, 0, MAX_RATE, "0",
        "bandwidth-limit", 0, "RATE", bandwidth_limit,
        "pre-copy's bytes per second over all devices (0: unlimited)"),
    KEY(CONF_STOPCOPY_BANDWIDTH_LIMIT, "migration", "stopcopy_bandwidth_limit", CONF_TYPE_RATE,
        0, MAX_RATE, "0", "stopcopy-bandwidth-limit", 0, "RATE", stopcopy_bandwidth_limit,
        "stop-copy's bytes per second over all devices (0: unlimited)"),
    KEY(CONF_CHANNELS, "migration", "channels", CONF_TYPE_U32, 0, SPREAD_MAX_CHANNELS, "0",
        "channels", 0, "N", channels,
        "data channels per device, 1-8 (0: automatic, from data size and CPUs)"),
    KEY(CONF_MIGRATION_TIMEOUT_MS, "migration", "timeout_ms", CONF_TYPE_U32, 1, MAX_MS,
        STRINGIFY(MIGRATION_DEFAULT_TIMEOUT_MS), "migration-timeout-ms", 0, "N",
        migration_timeout_ms, "longest wait of a source for its peer in ms (connect, silence, DONE)"),
    KEY(CONF_HANDSHAKE_TIMEOUT_MS, "migration", "handshake_timeout_ms", CONF_TYPE_U32, 100,
        MAX_MS, STRINGIFY(MIGRATION_HANDSHAKE_MS), "handshake-timeout-ms", 0, "N",
        handshake_timeout_ms,
        "total ms a data-port connection has to send its whole HELLO"),
    KEY(CONF_TLS, "migration", "tls", CONF_TYPE_TLS, 0, 0, "psk", "tls", 0, "psk|cert|off", tls,
        "psk: TLS keyed by the token; cert: TLS with certificates; off: clear"),
    OPTIONAL_PATH_KEY(CONF_TLS_CERT, "migration", "tls_cert", "tls-cert", "FILE", tls_cert,
                      "this daemon's certificate (PEM, then intermediates) for --tls cert"),
    OPTIONAL_PATH_KEY(CONF_TLS_KEY, "migration", "tls_key", "tls-key", "FILE", tls_key,
                      "its key (PEM, unencrypted, mode 0600, owned by the daemon's user)"),
    OPTIONAL_PATH_KEY(CONF_TLS_CA, "migration", "tls_ca", "tls-ca", "FILE", tls_ca,
                      "the CA certificates (PEM) a peer's certificate must chain to"),
    KEY(CONF_ALLOWED_DIRS, "files", "allowed_dirs", CONF_TYPE_DIRS, FILES_MAX_DIRS - 1,
        CONF_DIRS_MAX - 1, "", "allowed-dirs", 0, "DIRS", allowed_dirs,
        "directories for save files and unix sockets, beside the state directory"),
    KEY(CONF_VMM_SOCKET, "vmm", "socket", CONF_TYPE_PATH, 1, MAX_SOCKET_PATH, "",
        "vmm-socket", 0, "PATH",
        vmm_socket, "the VMM socket (docs/vmm-protocol.md); empty: vmm.sock beside the API's"),
    IDS_KEY(CONF_VMM_USERS, "vmm", "allowed_users", USERS, "root", "vmm-users", vmm_users,
            "users whose processes may take devices over the VMM socket"),
    IDS_KEY(CONF_VMM_GROUPS, "vmm", "allowed_groups", GROUPS, "", "vmm-groups", vmm_groups,
            "groups whose members may take devices over the VMM socket"),
};
static_assert(ELEMENTSOF(conf_keys) == _CONF_KEY_MAX, "conf_keys out of sync with ConfKeyId");

static const char *const sections[] = {"daemon", "api", "migration", "files", "vmm"};

/* ---- problems */

static void conf_error(ConfErrors *e, unsigned line, const char *fmt, ...) _printf_(3, 4);

static void
conf_error(ConfErrors *e, unsigned line, const char *fmt, ...)
{
    va_list ap;

    if (e->n == CONF_MAX_ERRORS) {
        e->dropped++;
        return;
    }
    e->errors[e->n].line = line;
    va_start(ap, fmt);
    (void) vsnprintf(e->errors[e->n].message, sizeof(e->errors[e->n].message), fmt, ap);
    va_end(ap);
    e->n++;
}

/* A value as the messages quote it: at most 40 bytes, anything unprintable as '?'. */
static const char *
shown(const char *value, char *buf, size_t size)
{
    return strutil_printable(value, 40, buf, size);
}

/* ---- the value types: parse (0 or -EINVAL) and format, and what each accepts in words
 * (conf_types[] below: a sentence in the row, or a function where it needs more than the
 * key's min and max) */

static const char *conf_type_value_format(ConfType t);

static int
parse_u32(const ConfKey *k, const char *text, void *field)
{
    long long v;

    if (strutil_parse_int_bounded(text, k->min, k->max, &v) < 0) {
        return -EINVAL;
    }
    *(uint32_t *) field = (uint32_t) v;
    return 0;
}

/* A uint32_t as its type's row says: decimal or octal. */
static void
format_u32(const ConfKey *k, const void *field, char *buf, size_t size)
{
    (void) snprintf(buf, size, conf_type_value_format(k->type), *(const uint32_t *) field);
}

/* Rates as the CLI's --bandwidth takes them (strutil_parse_rate). */
static int
parse_rate(const ConfKey *k, const char *text, void *field)
{
    uint64_t v;

    if (strutil_parse_rate(text, &v) < 0 || v < (uint64_t) k->min || v > (uint64_t) k->max) {
        return -EINVAL;
    }
    *(uint64_t *) field = v;
    return 0;
}

static void
format_rate(const ConfKey *k _unused_, const void *field, char *buf, size_t size)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"G", 30}, {"M", 20}, {"K", 10}};
    uint64_t v = *(const uint64_t *) field;

    for (size_t i = 0; i < ELEMENTSOF(units); i++) {
        if (v != 0 && v % (1ULL << units[i].shift) == 0) {
            (void) snprintf(buf, size, "%" PRIu64 "%s", v >> units[i].shift, units[i].suffix);
            return;
        }
    }
    (void) snprintf(buf, size, "%" PRIu64, v);
}

static void
range_rate(const ConfKey *k, char *buf, size_t size)
{
    char max[32];

    format_rate(k, &(uint64_t){(uint64_t) k->max}, max, sizeof(max));
    (void) snprintf(buf, size, "bytes per second from %lld to %s, as 500000, 64K, 100M or 1G",
                    k->min, max);
}

static const struct {
    const char *text;
    bool value;
} bool_words[] = {
    {"yes", true}, {"no", false}, {"true", true}, {"false", false},
    {"on", true},  {"off", false}, {"1", true},   {"0", false},
};

static int
parse_bool(const ConfKey *k _unused_, const char *text, void *field)
{
    for (size_t i = 0; i < ELEMENTSOF(bool_words); i++) {
        if (strcasecmp(text, bool_words[i].text) == 0) {
            *(bool *) field = bool_words[i].value;
            return 0;
        }
    }
    return -EINVAL;
}

static void
format_bool(const ConfKey *k _unused_, const void *field, char *buf, size_t size)
{
    (void) snprintf(buf, size, "%s", *(const bool *) field ? "yes" : "no");
}

/* The levels the daemon documents; log_level_from_string() knows a few more syslog names,
 * which are accepted too but never suggested. */
static int
parse_log_level(const ConfKey *k _unused_, const char *text, void *field)
{
    int level = log_level_from_string(text);

    if (level < 0) {
        return -EINVAL;
    }
    *(int *) field = level;
    return 0;
}

static void
format_log_level(const ConfKey *k _unused_, const void *field, char *buf, size_t size)
{
    (void) snprintf(buf, size, "%s", log_level_to_string(*(const int *) field));
}

/* psk (TLS, the default), cert or off, into an int TlsMode. */
static int
parse_tls(const ConfKey *k _unused_, const char *text, void *field)
{
    for (int m = 0; m < _TLS_MODE_MAX; m++) {
        if (strcmp(text, tls_mode_name((TlsMode) m)) == 0) {
            *(int *) field = m;
            return 0;
        }
    }
    return -EINVAL;
}

static void
format_tls(const ConfKey *k _unused_, const void *field, char *buf, size_t size)
{
    (void) snprintf(buf, size, "%s", tls_mode_name((TlsMode) *(const int *) field));
}

static int
parse_mode(const ConfKey *k, const char *text, void *field)
{
    unsigned long v;
    char *end;

    if (!isdigit((unsigned char) text[0]) || strlen(text) > 4) {
        return -EINVAL;
    }
    errno = 0;
    v = strtoul(text, &end, 8);
    if (errno || *end || (v & (unsigned long) k->min) != (unsigned long) k->min ||
        (v & ~(unsigned long) k->max)) {
        return -EINVAL;
    }
    *(uint32_t *) field = (uint32_t) v;
    return 0;
}

static bool
has_control_characters(const char *text)
{
    for (const char *p = text; *p; p++) {
        if (iscntrl((unsigned char) *p)) {
            return true;
        }
    }
    return false;
}

static bool conf_type_valid(const ConfKey *k, const char *text, size_t len);

/* The string types (paths, names, lists): @text as it is, when it is at most k->max bytes and
 * the type's check (conf_types[].valid) accepts it. */
static int
parse_string(const ConfKey *k, const char *text, void *field)
{
    size_t len = strlen(text);

    if (len > (size_t) k->max || !conf_type_valid(k, text, len)) {
        return -EINVAL;
    }
    memcpy(field, text, len + 1);
    return 0;
}

static bool
valid_path(const ConfKey *k, const char *text, size_t len)
{
    if (len == 0 && k->min == 1) {
        return true; /* an optional path: empty means the built-in one */
    }
    return text[0] == '/' && !has_control_characters(text);
}

static void
format_string(const ConfKey *k _unused_, const void *field, char *buf, size_t size)
{
    (void) snprintf(buf, size, "%s", (const char *) field);
}

static void
range_path(const ConfKey *k, char *buf, size_t size)
{
    (void) snprintf(buf, size, "an absolute path of at most %lld bytes%s", k->max,
                    k->min == 1 ? ", or empty for the built-in one" : "");
}

/* A user or group name as useradd and groupadd take it (letters, digits, '_', '.', '-', a
 * final '$'; not starting with '-'), or a number: @len bytes of @text. */
static bool
name_is_valid(const char *text, size_t len)
{
    if (len == 0 || len > MAX_GROUP_NAME || text[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char) text[i]) && !strchr("_.-", text[i]) &&
            !(text[i] == '$' && i == len - 1)) {
            return false;
        }
    }
    return true;
}

/* "" keeps the daemon's own group. */
static bool
valid_group(const ConfKey *k _unused_, const char *text, size_t len)
{
    return len == 0 || name_is_valid(text, len);
}

static void
range_group(const ConfKey *k, char *buf, size_t size)
{
    (void) snprintf(buf, size, "a group name of at most %lld characters or a number, or empty "
                    "for the daemon's own group", k->max);
}

/* Directories as a list like $PATH: each absolute, none empty, no control characters. What
 * a directory must be (canonical, existing) is the files module's to check. */
static bool
valid_dirs(const ConfKey *k, const char *text, size_t len _unused_)
{
    size_t n = 0;

    if (has_control_characters(text)) {
        return false;
    }
    for (const char *p = text; *p; n++) {
        const char *end = strchrnul(p, ':');

        if (*p != '/' || n == (size_t) k->min) {
            return false;
        }
        p = *end ? end + 1 : end;
        if (*end && !*p) {
            return false; /* a trailing ':' */
        }
    }
    return true;
}

/* The items of a list of users or groups, separated by commas and blanks: "root, 1000 ops". */
#define ID_SEPARATORS ", \t"

/* Calls @fn on each item of @text (@len bytes each, not NUL-terminated); stops at the first
 * negative return and returns it. Returns the number of items otherwise. */
static int
ids_foreach(const char *text, int (*fn)(const char *item, size_t len, void *userdata),
            void *userdata)
{
    int n = 0;

    for (const char *p = text + strspn(text, ID_SEPARATORS); *p;
         p += strspn(p, ID_SEPARATORS), n++) {
        size_t len = strcspn(p, ID_SEPARATORS);
        int r = fn(p, len, userdata);

        if (r < 0) {
            return r;
        }
        p += len;
    }
    return n;
}

static int
check_id(const char *item, size_t len, void *userdata _unused_)
{
    return name_is_valid(item, len) ? 0 : -EINVAL;
}

static bool
valid_ids(const ConfKey *k, const char *text, size_t len _unused_)
{
    int n = ids_foreach(text, check_id, NULL);

    return n >= 0 && n <= k->min;
}

static void
range_ids(const ConfKey *k, char *buf, size_t size)
{
    (void) snprintf(buf, size, "%s names or numbers separated by commas or blanks (at most "
                    "%lld), or empty", k->type == CONF_TYPE_USERS ? "user" : "group", k->min);
}

static const struct {
    int (*parse)(const ConfKey *k, const char *text, void *field);
    void (*format)(const ConfKey *k, const void *field, char *buf, size_t size);
    /* What the type accepts, in words: @range_text, a printf format of the key's min and max
     * (in this order, as long long; it may use neither), or @range where that is not enough. */
    const char *range_text;
    void (*range)(const ConfKey *k, char *buf, size_t size);
    const char *value_format; /* format_u32's, of the uint32_t value */
    /* parse_string's check of a text of @len bytes, at most k->max */
    bool (*valid)(const ConfKey *k, const char *text, size_t len);
    size_t size;              /* of the Config field */
} conf_types[] = {
    [CONF_TYPE_U32] = {.parse = parse_u32, .format = format_u32, .value_format = "%" PRIu32,
                       .range_text = "a whole number from %lld to %lld", .size = sizeof(uint32_t)},
    [CONF_TYPE_RATE] = {.parse = parse_rate, .format = format_rate, .range = range_rate,
                        .size = sizeof(uint64_t)},
    [CONF_TYPE_BOOL] = {.parse = parse_bool, .format = format_bool,
                        .range_text = "yes or no (or true/false, on/off, 1/0)",
                        .size = sizeof(bool)},
    [CONF_TYPE_LOG_LEVEL] = {.parse = parse_log_level, .format = format_log_level,
                             .range_text = "one of debug, info, notice, warning, error",
                             .size = sizeof(int)},
    [CONF_TYPE_TLS] = {.parse = parse_tls, .format = format_tls,
                       .range_text = "one of psk, cert, off", .size = sizeof(int)},
    [CONF_TYPE_MODE] = {.parse = parse_mode, .format = format_u32, .value_format = "%04" PRIo32,
                        .range_text = "an octal mode from %04llo to %04llo (the owner reads and "
                                      "writes, others never)",
                        .size = sizeof(uint32_t)},
    [CONF_TYPE_PATH] = {.parse = parse_string, .valid = valid_path, .format = format_string,
                        .range = range_path, .size = CONF_STRING_MAX},
    [CONF_TYPE_GROUP] = {.parse = parse_string, .valid = valid_group, .format = format_string,
                         .range = range_group, .size = CONF_STRING_MAX},
    [CONF_TYPE_DIRS] = {.parse = parse_string, .valid = valid_dirs, .format = format_string,
                        .range_text = "absolute directory paths separated by ':' (at most %lld "
                                      "of them, %lld bytes in all), or empty",
                        .size = CONF_DIRS_MAX},
    [CONF_TYPE_USERS] = {.parse = parse_string, .valid = valid_ids, .format = format_string,
                         .range = range_ids, .size = CONF_IDS_MAX},
    [CONF_TYPE_GROUPS] = {.parse = parse_string, .valid = valid_ids, .format = format_string,
                          .range = range_ids, .size = CONF_IDS_MAX},
};
static_assert(ELEMENTSOF(conf_types) == _CONF_TYPE_MAX, "conf_types out of sync with ConfType");

static const char *
conf_type_value_format(ConfType t)
{
    return conf_types[t].value_format;
}

static bool
conf_type_valid(const ConfKey *k, const char *text, size_t len)
{
    return conf_types[k->type].valid(k, text, len);
}

/* ---- the table */

const ConfKey *
conf_key(ConfKeyId id)
{
    return id >= 0 && id < _CONF_KEY_MAX ? &conf_keys[id] : NULL;
}

ConfKeyId
conf_key_from_option(const char *option)
{
    for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
        if (strcmp(conf_keys[i].option, option) == 0) {
            return (ConfKeyId) i;
        }
    }
    return _CONF_KEY_INVALID;
}

ConfKeyId
conf_key_from_short_option(int c)
{
    for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
        if (c != 0 && conf_keys[i].short_option == c) {
            return (ConfKeyId) i;
        }
    }
    return _CONF_KEY_INVALID;
}

void
conf_key_range(const ConfKey *k, char *buf, size_t size)
{
    if (conf_types[k->type].range) {
        conf_types[k->type].range(k, buf, size);
    } else {
        (void) snprintf(buf, size, conf_types[k->type].range_text, k->min, k->max);
    }
}

void
conf_key_format(const Config *c, ConfKeyId id, char *buf, size_t size)
{
    const ConfKey *k = &conf_keys[id];

    conf_types[k->type].format(k, (const char *) c + k->offset, buf, size);
}

void
conf_key_copy(Config *to, const Config *from, ConfKeyId id)
{
    const ConfKey *k = &conf_keys[id];

    memcpy((char *) to + k->offset, (const char *) from + k->offset, conf_types[k->type].size);
    to->line[id] = from->line[id];
    to->given[id] = from->given[id];
}

bool
conf_key_takes_restart(ConfKeyId id)
{
    /* The sockets (the API's and the VMM's) are bound, the listener's limit set, the worker
     * pool made, the plugins loaded (with the sysfs root they read) and the allowed
     * directories cleaned of stale partial files once, before the API serves. */
    return id == CONF_WORKERS || id == CONF_PLUGIN_DIR || id == CONF_SYSFS_ROOT ||
           id == CONF_SOCKET || id == CONF_SOCKET_MODE || id == CONF_SOCKET_GROUP ||
           id == CONF_MAX_CONNECTIONS || id == CONF_ALLOWED_DIRS || id == CONF_VMM_SOCKET;
}

static ConfKeyId
key_find(const char *section, const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
        if ((!section || strcmp(conf_keys[i].section, section) == 0) &&
            strcmp(conf_keys[i].name, name) == 0) {
            return (ConfKeyId) i;
        }
    }
    return _CONF_KEY_INVALID;
}

/* Sets @k's field from @text, or returns -EINVAL and leaves it. */
static int
key_parse(Config *c, const ConfKey *k, const char *text)
{
    return conf_types[k->type].parse(k, text, (char *) c + k->offset);
}

void
conf_defaults(Config *c)
{
    *c = (Config){.socket_gid = (gid_t) -1};
    for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
        int r = key_parse(c, &conf_keys[i], conf_keys[i].default_text);

        assert(r == 0); /* a default outside its own range is our bug (test_conf checks) */
        (void) r;
    }
}

/* ---- did you mean */

/* Edit distance of two short strings, or SIZE_MAX for long ones. */
static size_t
distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65], prev_diag, tmp;

    if (la > 64 || lb > 64) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        prev_diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            tmp = row[j];
            row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1),
                         prev_diag + (tolower((unsigned char) a[i - 1]) !=
                                      tolower((unsigned char) b[j - 1])));
            prev_diag = tmp;
        }
    }
    return row[lb];
}

/* The closest of @n @names to @word, if close enough to be a typo (a third of it). */
static const char *
closest(const char *word, const char *const *names, size_t n)
{
    size_t best = SIZE_MAX, limit = MAX(strlen(word) / 3, (size_t) 1);
    const char *found = NULL;

    for (size_t i = 0; i < n; i++) {
        size_t d = distance(word, names[i]);

        if (d <= limit && d < best) {
            best = d;
            found = names[i];
        }
    }
    return found;
}

static const char *
closest_key(const char *section, const char *name)
{
    const char *names[_CONF_KEY_MAX];
    size_t n = 0;

    for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
        if (strcmp(conf_keys[i].section, section) == 0) {
            names[n++] = conf_keys[i].name;
        }
    }
    return closest(name, names, n);
}

/* ---- the parser */

typedef struct ConfParse {
    Config *config;
    ConfErrors *errors;
    /* The reader's state: */
    const char *text;
    size_t size;
    size_t pos;
    unsigned line;              /* the line last handed to inih */
    bool indented;              /* that line starts with a blank */
    const unsigned *blank;      /* lines to hand over as blank (syntax errors found) */
    size_t n_blank;
    /* The handler's state: */
    unsigned prev_line;         /* the line of the last key seen, for continuations */
    char prev_name[64];
} ConfParse;

static bool
is_blanked(const ConfParse *p, unsigned line)
{
    for (size_t i = 0; i < p->n_blank; i++) {
        if (p->blank[i] == line) {
            return true;
        }
    }
    return false;
}

/* A line starting with '[' that inih refused is a broken section header. */
static bool
line_is_header(const char *start, size_t len)
{
    size_t i = 0;

    while (i < len && (start[i] == ' ' || start[i] == '\t')) {
        i++;
    }
    return i < len && start[i] == '[';
}

/* inih's ini_reader: one line of the text per call (fgets' contract), with its number. */
static char *
conf_reader(char *str, int num, void *stream)
{
    ConfParse *p = stream;
    const char *start = p->text + p->pos, *nl;
    size_t len, rest = p->size - p->pos, max = num > 2 ? (size_t) num - 2 : 0;

    if (p->pos >= p->size) {
        return NULL;
    }
    nl = memchr(start, '\n', rest);
    len = nl ? (size_t) (nl - start) : rest;
    p->pos += len + (nl ? 1 : 0);
    p->line++;
    p->indented = len > 0 && (start[0] == ' ' || start[0] == '\t');
    if (is_blanked(p, p->line)) {
        (void) snprintf(str, (size_t) num, "%s\n",
                        line_is_header(start, len) ? "[" BROKEN_SECTION "]" : "");
    } else if (memchr(start, '\0', len)) {
        conf_error(p->errors, p->line, "the line holds a NUL byte: this is not a text file");
        (void) snprintf(str, (size_t) num, "\n");
    } else if (len > max) {
        conf_error(p->errors, p->line, "the line is longer than %zu characters", max);
        (void) snprintf(str, (size_t) num, "\n");
    } else {
        memcpy(str, start, len);
        str[len] = '\n';
        str[len + 1] = '\0';
    }
    return str;
}

static bool
section_is_known(const char *section)
{
    for (size_t i = 0; i < ELEMENTSOF(sections); i++) {
        if (strcmp(sections[i], section) == 0) {
            return true;
        }
    }
    return false;
}

/* The keys of @section, "a, b, c", for a message. */
static const char *
section_keys(const char *section, char *buf, size_t size)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < ELEMENTSOF(conf_keys) && n < size; i++) {
        if (strcmp(conf_keys[i].section, section) == 0) {
            n += (size_t) snprintf(buf + n, size - n, "%s%s", n ? ", " : "", conf_keys[i].name);
        }
    }
    return buf;
}

/* Refuses a pair inih gave us that is not a known key of a known section, saying what the
 * writer probably meant. */
static void
refuse_unknown(ConfParse *p, const char *section, const char *name)
{
    ConfKeyId elsewhere = key_find(NULL, name);
    const char *guess;
    char n[48], s[48], keys[256];

    (void) shown(name, n, sizeof(n));
    (void) shown(section, s, sizeof(s));
    if (!*name) {
        conf_error(p->errors, p->line, "a value without a key name before its '='");
    } else if (!*section) {
        if (elsewhere >= 0) {
            conf_error(p->errors, p->line, "'%s' is outside any section; it belongs in [%s]", n,
                       conf_keys[elsewhere].section);
        } else {
            conf_error(p->errors, p->line, "unknown key '%s', outside any section", n);
        }
    } else if (!section_is_known(section)) {
        guess = closest(section, sections, ELEMENTSOF(sections));
        if (guess) {
            conf_error(p->errors, p->line, "unknown section [%s]; did you mean [%s]?", s, guess);
        } else {
            conf_error(p->errors, p->line, "unknown section [%s]; the sections are [daemon], "
                       "[api], [migration] and [files]", s);
        }
    } else if (elsewhere >= 0) {
        conf_error(p->errors, p->line, "'%s' belongs in section [%s], not [%s]", n,
                   conf_keys[elsewhere].section, section);
    } else if ((guess = closest_key(section, name))) {
        conf_error(p->errors, p->line, "unknown key '%s' in [%s]; did you mean '%s'?", n,
                   section, guess);
    } else {
        conf_error(p->errors, p->line, "unknown key '%s' in [%s]; its keys are %s", n, section,
                   section_keys(section, keys, sizeof(keys)));
    }
}

static int
conf_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    ConfParse *p = user;
    ConfKeyId id;
    const ConfKey *k;
    char range[256], v[48];

    if (strcmp(section, BROKEN_SECTION) == 0) {
        return 1;
    }
    if (p->indented && p->prev_line && strcmp(name, p->prev_name) == 0) {
        conf_error(p->errors, p->line, "an indented line continues the value of '%s' (line %u); "
                   "remove the indentation", shown(name, v, sizeof(v)), p->prev_line);
        return 1;
    }
    p->prev_line = p->line;
    (void) snprintf(p->prev_name, sizeof(p->prev_name), "%s", name);

    id = key_find(section, name);
    if (id < 0) {
        refuse_unknown(p, section, name);
        return 1;
    }
    k = &conf_keys[id];
    if (p->config->line[id]) {
        conf_error(p->errors, p->line, "[%s] %s is set again (first on line %u)", k->section,
                   k->name, p->config->line[id]);
        return 1;
    }
    if (key_parse(p->config, k, value) < 0) {
        conf_key_range(k, range, sizeof(range));
        conf_error(p->errors, p->line, "[%s] %s must be %s, not '%s'", k->section, k->name,
                   range, shown(value, v, sizeof(v)));
        return 1;
    }
    p->config->line[id] = p->line;
    p->config->given[id] = true;
    return 1;
}

/* Finds line @line of @text, for the message about a syntax error on it. */
static bool
line_at(const char *text, size_t size, unsigned line, const char **ret_start, size_t *ret_len)
{
    const char *p = text, *end = text + size, *nl;

    for (unsigned i = 1; i < line && p < end; i++) {
        nl = memchr(p, '\n', (size_t) (end - p));
        p = nl ? nl + 1 : end;
    }
    if (p >= end) {
        return false;
    }
    nl = memchr(p, '\n', (size_t) (end - p));
    *ret_start = p;
    *ret_len = nl ? (size_t) (nl - p) : (size_t) (end - p);
    return true;
}

static void
refuse_syntax(ConfErrors *errors, const char *text, size_t size, unsigned line)
{
    const char *start = NULL;
    size_t len = 0;

    if (line_at(text, size, line, &start, &len) && line_is_header(start, len)) {
        conf_error(errors, line, "a section header must be '[name]', alone on its line");
    } else {
        conf_error(errors, line, "expected 'key = value', a [section] header or a comment "
                   "(a line starting with '#' or ';')");
    }
}

void
conf_parse(Config *c, const char *text, size_t size, ConfErrors *errors)
{
    unsigned blank[CONF_MAX_ERRORS];
    size_t n_blank = 0;
    ConfErrors pass;
    Config work;
    int r;

    for (;;) {
        work = *c;
        memset(work.line, 0, sizeof(work.line));
        pass = (ConfErrors){.source = errors->source};
        ConfParse p = {.config = &work, .errors = &pass, .text = text, .size = size,
                       .blank = blank, .n_blank = n_blank};
        r = ini_parse_stream(conf_reader, &p, conf_ini_handler, &p);
        if (r <= 0 || n_blank == ELEMENTSOF(blank)) {
            break;
        }
        blank[n_blank++] = (unsigned) r;
    }
    for (size_t i = 0; i < n_blank; i++) {
        refuse_syntax(errors, text, size, blank[i]);
    }
    if (r > 0) {
        refuse_syntax(errors, text, size, (unsigned) r);
    } else if (r < 0) {
        conf_error(errors, 0, "out of memory while parsing");
    }
    for (size_t i = 0; i < pass.n; i++) {
        conf_error(errors, pass.errors[i].line, "%s", pass.errors[i].message);
    }
    errors->dropped += pass.dropped;
    *c = work;
}

int
conf_set_option(Config *c, ConfKeyId id, const char *value, ConfErrors *errors)
{
    const ConfKey *k = conf_key(id);
    char range[256], v[48];

    if (!k) {
        return -EINVAL;
    }
    if (key_parse(c, k, value) < 0) {
        conf_key_range(k, range, sizeof(range));
        conf_error(errors, 0, "--%s must be %s, not '%s'", k->option, range,
                   shown(value, v, sizeof(v)));
        return -EINVAL;
    }
    c->line[id] = 0;
    c->given[id] = true;
    return 0;
}

/* Writes @text as comment lines of at most 80 columns. */
static void
write_comment(FILE *f, const char *text)
{
    const char *p = text;

    while (*p) {
        size_t len = strlen(p), cut = len;

        if (len > 78) {
            cut = 78;
            while (cut > 0 && p[cut] != ' ') {
                cut--;
            }
            cut = cut ? cut : 78;
        }
        fprintf(f, "# %.*s\n", (int) cut, p);
        p += cut;
        p += *p == ' ';
    }
}

void
conf_write(const Config *c, FILE *f, bool commented)
{
    const char *section = NULL;
    char value[CONF_DIRS_MAX + 8], range[256], text[512];

    write_comment(f, "vfio-migd configuration, see vfio-migd.conf(5). Each key comes with what it "
                     "is, what it accepts, its default and the command-line option that "
                     "overrides it. 'vfio-migd --check-config [--config FILE]' checks a file.");
    for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
        const ConfKey *k = &conf_keys[i];

        if (!section || strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(f, "\n[%s]\n", section);
        }
        conf_key_format(c, (ConfKeyId) i, value, sizeof(value));
        conf_key_range(k, range, sizeof(range));
        (void) snprintf(text, sizeof(text), "%c%s. %c%s. Default %s; --%s overrides it.",
                        toupper((unsigned char) k->help[0]), k->help + 1,
                        toupper((unsigned char) range[0]), range + 1,
                        *k->default_text ? k->default_text : "empty", k->option);
        fprintf(f, "\n");
        write_comment(f, text);
        fprintf(f, "%s%s = %s\n", commented ? "#" : "", k->name, value);
    }
}

static int
error_cmp(const void *a, const void *b)
{
    const ConfError *x = a, *y = b;

    return (x->line > y->line) - (x->line < y->line);
}

size_t
conf_errors_print(ConfErrors *errors, FILE *f)
{
    /* Sorted by line for the reader; mergesort-like stability is not needed: two problems on
     * one line come from one key and read fine in either order. */
    qsort(errors->errors, errors->n, sizeof(errors->errors[0]), error_cmp);
    for (size_t i = 0; i < errors->n; i++) {
        const ConfError *e = &errors->errors[i];

        if (!errors->source) {
            fprintf(f, "%s\n", e->message);
        } else if (e->line) {
            fprintf(f, "%s:%u: %s\n", errors->source, e->line, e->message);
        } else {
            fprintf(f, "%s: %s\n", errors->source, e->message);
        }
    }
    if (errors->dropped) {
        fprintf(f, "... and %zu more problems\n", errors->dropped);
    }
    return errors->n + errors->dropped;
}

/* ---- I/O: the file, the group database */

/* Reads at most @max + 1 bytes of @fd into @buf. */
static ssize_t
read_bounded(int fd, char *buf, size_t max)
{
    size_t n = 0;

    while (n <= max) {
        ssize_t k = read(fd, buf + n, max + 1 - n);

        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            return -errno;
        }
        if (k == 0) {
            break;
        }
        n += (size_t) k;
    }
    return (ssize_t) n;
}

int
conf_load_file(Config *c, const char *path, bool required, ConfErrors *errors)
{
    /* O_NONBLOCK: a FIFO named as the file must not hang the daemon's start. */
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    _cleanup_free_ char *buf = NULL;
    ssize_t n;

    if (fd < 0 && errno == ENOENT && !required) {
        return 0;
    }
    if (fd < 0) {
        n = -errno;
        conf_error(errors, 0, "cannot open the configuration file: %s", strerror((int) -n));
        return (int) n;
    }
    buf = malloc(CONF_MAX_FILE_SIZE + 1);
    if (!buf) {
        conf_error(errors, 0, "out of memory");
        return -ENOMEM;
    }
    n = read_bounded(fd, buf, CONF_MAX_FILE_SIZE);
    if (n < 0) {
        conf_error(errors, 0, "cannot read the configuration file: %s", strerror((int) -n));
        return (int) n;
    }
    if (n > CONF_MAX_FILE_SIZE) {
        conf_error(errors, 0, "the file is larger than %d KiB: not a configuration file",
                   CONF_MAX_FILE_SIZE / 1024);
        return -EFBIG;
    }
    conf_parse(c, buf, (size_t) n, errors);
    return 1;
}

/* What a key is called in a message: "[api] socket_group" when the file set it, else its
 * option. */
static const char *
key_origin(const Config *c, ConfKeyId id, char *buf, size_t size)
{
    const ConfKey *k = &conf_keys[id];

    if (c->line[id] || !c->given[id]) {
        (void) snprintf(buf, size, "[%s] %s", k->section, k->name);
    } else {
        (void) snprintf(buf, size, "--%s", k->option);
    }
    return buf;
}

/* Looks @name up as a user (@users) or a group: 1 and its id, 0 when there is none, or a
 * negative errno when NSS failed. A number is an id as chown(1) takes it: it need not have a
 * name. */
static int
lookup_id(const char *name, bool users, unsigned *ret)
{
    char buf[16384];
    long long n;
    int r;

    if (strutil_parse_int_bounded(name, 0, (uid_t) -2, &n) == 0) {
        *ret = (unsigned) n;
        return 1;
    }
    if (users) {
        struct passwd pw, *found = NULL;

        r = getpwnam_r(name, &pw, buf, sizeof(buf), &found);
        if (r == 0 && found) {
            *ret = found->pw_uid;
        }
        return r ? -r : !!found;
    }
    struct group gr, *found = NULL;

    r = getgrnam_r(name, &gr, buf, sizeof(buf), &found);
    if (r == 0 && found) {
        *ret = found->gr_gid;
    }
    return r ? -r : !!found;
}

int
conf_lookup_id(const char *name, bool users, unsigned *ret)
{
    if (!name_is_valid(name, strlen(name))) {
        return -EINVAL;
    }
    return lookup_id(name, users, ret);
}

/* The problem of a name in key @id that lookup_id() did not resolve (@r: 0 or its negative
 * errno). */
static void
refuse_unresolved(const Config *c, ConfKeyId id, bool users, const char *name, int r,
                  ConfErrors *errors)
{
    char who[64];

    if (r == 0) {
        conf_error(errors, c->line[id], "%s names no %s of this host: '%s' (create it with "
                   "'%s --system %s', or name another)", key_origin(c, id, who, sizeof(who)),
                   users ? "user" : "group", name, users ? "useradd" : "groupadd", name);
    } else {
        conf_error(errors, c->line[id], "%s: cannot look %s '%s' up: %s",
                   key_origin(c, id, who, sizeof(who)), users ? "user" : "group", name,
                   strerror(-r));
    }
}

typedef struct ResolveIds {
    Config *config;
    ConfKeyId id;
    AuthzIds *into;
    ConfErrors *errors; /* the file's or the command line's, as the key came from */
} ResolveIds;

static int
resolve_one_id(const char *item, size_t len, void *userdata)
{
    ResolveIds *ri = userdata;
    Config *c = ri->config;
    bool users = conf_keys[ri->id].type == CONF_TYPE_USERS;
    char name[MAX_GROUP_NAME + 1];
    unsigned id = 0;
    int r;

    (void) snprintf(name, sizeof(name), "%.*s", (int) len, item);
    r = lookup_id(name, users, &id);
    if (r == 1) {
        (void) authz_ids_add(ri->into, id); /* parse_ids bounded the items */
    } else if (r == 0 && strcmp((const char *) c + conf_keys[ri->id].offset,
                                conf_keys[ri->id].default_text) == 0) {
        /* The default names a group this host need not have: it grants nothing, whether the
         * file writes it out (the shipped file uncommented, --dump-config's output) or not. */
        size_t n = strlen(c->authz_unresolved);
        (void) snprintf(c->authz_unresolved + n, sizeof(c->authz_unresolved) - n, "%s%s",
                        n ? ", " : "", name);
    } else {
        refuse_unresolved(c, ri->id, users, name, r, ri->errors);
    }
    return 0;
}

static void
resolve_socket_group(Config *c, ConfErrors *file_errors, ConfErrors *cli_errors)
{
    const char *name = c->socket_group;
    unsigned gid = 0;
    int r;

    c->socket_gid = (gid_t) -1;
    if (!*name) {
        return;
    }
    r = lookup_id(name, /* users= */ false, &gid);
    if (r == 1) {
        c->socket_gid = (gid_t) gid;
    } else {
        refuse_unresolved(c, CONF_SOCKET_GROUP, /* users= */ false, name, r,
                          c->line[CONF_SOCKET_GROUP] ? file_errors : cli_errors);
    }
}

void
conf_resolve(Config *c, ConfErrors *file_errors, ConfErrors *cli_errors)
{
    const struct {
        ConfKeyId id;
        AuthzIds *into;
    } roles[] = {
        {CONF_OPERATOR_USERS, &c->authz.operator_users},
        {CONF_OPERATOR_GROUPS, &c->authz.operator_groups},
        {CONF_READER_USERS, &c->authz.reader_users},
        {CONF_READER_GROUPS, &c->authz.reader_groups},
        {CONF_VMM_USERS, &c->vmm_allow_users},
        {CONF_VMM_GROUPS, &c->vmm_allow_groups},
    };

    resolve_socket_group(c, file_errors, cli_errors);
    c->authz = (AuthzPolicy){.self = geteuid()};
    c->vmm_allow_users = (AuthzIds){0};
    c->vmm_allow_groups = (AuthzIds){0};
    c->authz_unresolved[0] = '\0';
    for (size_t i = 0; i < ELEMENTSOF(roles); i++) {
        ResolveIds ri = {.config = c, .id = roles[i].id, .into = roles[i].into,
                         .errors = c->line[roles[i].id] ? file_errors : cli_errors};
        const char *text = (const char *) c + conf_keys[roles[i].id].offset;

        (void) ids_foreach(text, resolve_one_id, &ri);
    }
}
