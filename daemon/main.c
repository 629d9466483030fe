/* SPDX-License-Identifier: MIT */
/*
 * vfio-migd — main(): arguments, configuration, wiring, signals, loop; nothing else (systemd
 * run() style). The configuration (conf.c) is the built-in defaults, the file and the command
 * line, in that order, and is checked whole before anything starts. The manager owns
 * devices, rpc/server serves the API on the loop, sd_service talks to systemd. SIGTERM/SIGINT
 * stop the API (in-flight calls get a grace period), then the loop ends when the last worker
 * has finished. SIGHUP reads the configuration again and applies what can change at run time
 * (daemon_reload()); it never stops the daemon.
 */
#include <getopt.h>
#include <malloc.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "conf.h"
#include "fdpass.h"
#include "dispatch.h"
#include "files.h"
#include "grpc_setup.h"
#include "handlers/handlers.h"
#include "manager.h"
#include "migration.h"
#include "plugin_host.h"
#include "restore_state.h"
#include "sd_service.h"
#include "server.h"
#include "summary.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "worker.h"

/* VFIO_MIGD_CONFIG_FILE comes from CMake: $sysconfdir/vfio-migd/vfio-migd.conf, where the
 * install puts the commented default file. */
#define DEFAULT_CONFIG VFIO_MIGD_CONFIG_FILE
/* The help's left column. */
#define HELP_INDENT 28
/* Allocations from this size up are mmap()ed (main(), mallopt): glibc's initial value. */
#define DAEMON_MMAP_THRESHOLD (128 * 1024)
/* At most this many malloc arenas (main(), mallopt): glibc's default is 8 per CPU. */
#define DAEMON_ARENA_MAX 2

typedef struct Options {
    const char *config_path;                /* NULL: DEFAULT_CONFIG, which may be missing */
    bool check_config;
    bool dump_config;
    const char *overrides[_CONF_KEY_MAX];   /* --option VALUE, applied over the file */
} Options;

enum {
    OPT_CHECK_CONFIG = 0x100,
    OPT_DUMP_CONFIG,
    OPT_KEY_BASE = 0x200, /* + ConfKeyId: a key's option */
};

typedef struct Daemon {
    uv_loop_t *loop;
    const Options *options; /* the command line: a reload applies it over the file again */
    Config config;          /* the whole configuration in effect */
    RpcContext ctx;
    SdService *sd;
    RestoreState *restore;  /* the fd store and the state journal (restart without reset) */
    FdPass *vmm;            /* the VMM socket (fdpass.c) */
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup;
} Daemon;

static void
usage_option(FILE *f, char short_option, const char *option, const char *arg, const char *help)
{
    char left[64];

    (void) snprintf(left, sizeof(left), "  %c%c%c --%s%s%s", short_option ? '-' : ' ',
                    short_option ? short_option : ' ', short_option ? ',' : ' ', option,
                    arg ? " " : "", arg ? arg : "");
    if (strlen(left) + 2 > HELP_INDENT) {
        fprintf(f, "%s\n%*s%s\n", left, HELP_INDENT, "", help);
    } else {
        fprintf(f, "%-*s%s\n", HELP_INDENT, left, help);
    }
}

/* The options that set a configuration key come from the key table (conf.c). */
static void
usage(FILE *f)
{
    char def[CONF_STRING_MAX + 64];

    fprintf(f, "Usage: vfio-migd [OPTIONS]\n"
               "\n"
               "Owns VFIO devices and migrates their state (VFIO migration protocol v2).\n"
               "Serves the vfio_migd.v1 gRPC API on a unix socket; drive it with vfio-migctl.\n"
               "\n"
               "Options:\n");
    usage_option(f, 'c', "config", "PATH", "the configuration file, default");
    fprintf(f, "%*s%s (if missing: built-in defaults)\n", HELP_INDENT, "", DEFAULT_CONFIG);
    usage_option(f, 0, "check-config", NULL, "check the file and the options, print every problem");
    usage_option(f, 0, "dump-config", NULL, "print the configuration in effect as a file");
    for (ConfKeyId id = 0; id < _CONF_KEY_MAX; id++) {
        const ConfKey *k = conf_key(id);

        usage_option(f, k->short_option, k->option, k->arg_name, k->help);
        (void) snprintf(def, sizeof(def), "[%s] %s, default %s", k->section, k->name,
                        *k->default_text ? k->default_text : "empty");
        fprintf(f, "%*s%s\n", HELP_INDENT, "", def);
    }
    usage_option(f, 'h', "help", NULL, "show this help");
    usage_option(f, 'V', "version", NULL, "show the version");
    fprintf(f, "\nAn option overrides the configuration file's key named under it; what each key\n"
               "accepts: 'vfio-migd --dump-config' and vfio-migd.conf(5).\n");
}

/* getopt's tables: the fixed options, then one per configuration key. */
static void
build_options(struct option *longopts, char *shortopts, size_t shortopts_size)
{
    static const struct option fixed[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"dump-config", no_argument, NULL, OPT_DUMP_CONFIG},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
    };
    size_t n = 0, len;

    (void) snprintf(shortopts, shortopts_size, "c:hV");
    for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
        longopts[n++] = fixed[i];
    }
    for (ConfKeyId id = 0; id < _CONF_KEY_MAX; id++) {
        const ConfKey *k = conf_key(id);

        longopts[n++] = (struct option){k->option, required_argument, NULL, OPT_KEY_BASE + id};
        len = strlen(shortopts);
        if (k->short_option && len + 3 < shortopts_size) {
            shortopts[len] = k->short_option;
            shortopts[len + 1] = ':';
            shortopts[len + 2] = '\0';
        }
    }
    longopts[n] = (struct option){0};
}

/* 0: run; 1: exit 0 (help/version); negative: usage error, already reported. */
static int
parse_args(int argc, char **argv, Options *o)
{
    struct option longopts[_CONF_KEY_MAX + 6];
    char shortopts[2 * _CONF_KEY_MAX + 8];
    ConfKeyId id;
    int c;

    build_options(longopts, shortopts, sizeof(shortopts));
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
        id = c >= OPT_KEY_BASE ? (ConfKeyId) (c - OPT_KEY_BASE) : conf_key_from_short_option(c);
        if (id >= 0 && id < _CONF_KEY_MAX) {
            o->overrides[id] = optarg; /* checked once the file is read: it is the last word */
            continue;
        }
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case OPT_CHECK_CONFIG:
            o->check_config = true;
            break;
        case OPT_DUMP_CONFIG:
            o->dump_config = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("vfio-migd %s\n", VFIO_MIGD_VERSION);
            return 1;
        default:
            fprintf(stderr, "Try 'vfio-migd --help'.\n");
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vfio-migd: unexpected argument '%s'; try 'vfio-migd --help'\n",
                argv[optind]);
        return -EINVAL;
    }
    return 0;
}

/* The configuration: built-in defaults, the file, the command line. Returns 0 when all of it
 * is good, else prints every problem and returns the exit status: 2 when an option was bad
 * (as any usage error), 1 when only the file was. */
static int
load_config(const Options *o, Config *c, bool reload)
{
    const char *path = o->config_path ? o->config_path : DEFAULT_CONFIG;
    ConfErrors file_errors = {.source = path}, cli_errors = {.source = "vfio-migd"};
    size_t n;

    conf_defaults(c);
    (void) conf_load_file(c, path, /* required= */ o->config_path != NULL, &file_errors);
    for (ConfKeyId id = 0; id < _CONF_KEY_MAX; id++) {
        if (o->overrides[id]) {
            (void) conf_set_option(c, id, o->overrides[id], &cli_errors);
        }
    }
    conf_resolve(c, &file_errors, &cli_errors);
    n = conf_errors_print(&file_errors, stderr) + conf_errors_print(&cli_errors, stderr);
    if (n == 0) {
        return 0;
    }
    fprintf(stderr, "vfio-migd: %zu problem%s in the configuration; %s\n", n, n == 1 ? "" : "s",
            o->check_config ? "see above"
            : reload        ? "not reloaded, nothing changed ('vfio-migd --check-config' checks it)"
                            : "not starting ('vfio-migd --check-config' checks it)");
    return cli_errors.n + cli_errors.dropped ? 2 : 1;
}

static void
on_server_done(void *userdata)
{
    (void) userdata;
    log_info("API stopped.");
}

/* STATUS= says what the daemon holds, as soon as that changes. */
static void
on_manager_changed(Manager *m, void *userdata)
{
    Daemon *dm = userdata;
    char line[128];
    Summary sum;

    summary_of(m, &sum);
    summary_format(&sum, line, sizeof(line));
    sd_service_status(dm->sd, line);
    restore_state_changed(dm->restore);
}

static void
on_signal(uv_signal_t *h, int signum)
{
    Daemon *dm = h->data;

    if (dm->ctx.manager->shutting_down) {
        /* Keep handling the signal: the default action would kill a device mid-arc. */
        log_notice("Received %s again; still waiting for running device operations.",
                   strsignal(signum));
        return;
    }
    log_info("Received %s, shutting down.", strsignal(signum));
    sd_service_stopping(dm->sd);
    /* From here on, calls that would change anything are refused (rpc_dispatch_admit); calls
     * that only look still answer until the server stops taking calls. */
    dm->ctx.manager->shutting_down = true;
    manager_changed(dm->ctx.manager);
    /* A migration in flight rolls back (the source group returns to RUNNING) before exit. */
    migration_abort_all(dm->ctx.manager);
    rpc_server_shutdown(dm->ctx.server, on_server_done, dm);
    /* Still handled, but no longer keeping the loop alive: it ends with the last operation. */
    uv_unref((uv_handle_t *) &dm->sigterm);
    uv_unref((uv_handle_t *) &dm->sigint);
    uv_unref((uv_handle_t *) &dm->sighup);
}

/* The configuration's [migration] keys, as the defaults of every migration's options. */
static MigrationOptions
migration_defaults_from(const Config *c)
{
    MigrationOptions o;

    migration_options_defaults(&o);
    o.precopy = c->precopy;
    o.max_precopy_ms = c->max_precopy_ms;
    o.downtime_target_ms = c->downtime_target_ms;
    o.bandwidth_limit = c->bandwidth_limit;
    o.stopcopy_bandwidth_limit = c->stopcopy_bandwidth_limit;
    o.channels = c->channels;
    o.timeout_ms = c->migration_timeout_ms;
    o.tls = (TlsMode) c->tls;
    return o;
}

/* [migration] tls_cert, tls_key and tls_ca, read once here, before the API is served:
 * --tls cert needs them, and a missing or unreadable file is refused at start rather than at
 * the first migration. A reload (SIGHUP) does not read them again. */
static int
daemon_load_certs(const Config *c)
{
    int given = !!c->tls_cert[0] + !!c->tls_key[0] + !!c->tls_ca[0];
    char err[512] = "";
    int r;

    if (given == 0 && c->tls == TLS_MODE_CERT) {
        return log_error_errno(SYNTHETIC_ERRNO(ENOKEY), "[migration] tls = cert needs this "
                               "daemon's certificate: set tls_cert, tls_key and tls_ca in "
                               "[migration] (or --tls-cert FILE --tls-key FILE --tls-ca FILE).");
    }
    if (given == 0) {
        return 0;
    }
    if (given < 3) {
        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "A certificate for --tls cert needs all "
                               "three of [migration] tls_cert, tls_key and tls_ca (or "
                               "--tls-cert, --tls-key, --tls-ca); %s is not set.",
                               !c->tls_cert[0] ? "tls_cert" : !c->tls_key[0] ? "tls_key" : "tls_ca");
    }
    r = tls_load_certs(c->tls_cert, c->tls_key, c->tls_ca, err, sizeof(err));
    if (r < 0) {
        return log_error_errno(r, "Cannot use the certificate for --tls cert: %s.", err);
    }
    log_info("Migrations with --tls cert present '%s' and accept peers whose certificate "
             "chains to '%s'.", c->tls_cert, c->tls_ca);
    return 0;
}

/* Where files may be ([files] allowed_dirs and the state directory), and the partial save
 * files that a daemon killed mid-save left there. */
static int
daemon_allow_dirs(Manager *m, const Config *c)
{
    char err[256] = "", dirs[1024], list[CONF_DIRS_MAX], *save = NULL;
    int r = files_policy_allow(&m->files, FILES_STATE_DIR, err, sizeof(err));

    (void) snprintf(list, sizeof(list), "%s", c->allowed_dirs);
    for (char *d = strtok_r(list, ":", &save); r >= 0 && d; d = strtok_r(NULL, ":", &save)) {
        r = files_policy_allow(&m->files, d, err, sizeof(err));
    }
    if (r < 0) {
        return log_error_errno(r, "Cannot allow the directory: %s", err[0] ? err : strerror(-r));
    }
    files_policy_describe(&m->files, dirs, sizeof(dirs));
    log_info("Files (saves, restores, unix listening sockets) may be in %s; %u stale partial "
             "save file(s) removed.", dirs, files_remove_stale(&m->files));
    return 0;
}

/* ---- SIGHUP: reload */

/* Appends " KEY" to @list for every key whose value differs between @a and @b and for which
 * @takes_restart holds. Returns how many. */
static size_t
changed_keys(const Config *a, const Config *b, bool takes_restart, char *list, size_t size)
{
    char x[CONF_VALUE_MAX], y[CONF_VALUE_MAX];
    size_t n = 0, len;

    list[0] = '\0';
    for (ConfKeyId id = 0; id < _CONF_KEY_MAX; id++) {
        conf_key_format(a, id, x, sizeof(x));
        conf_key_format(b, id, y, sizeof(y));
        if (conf_key_takes_restart(id) != takes_restart || strcmp(x, y) == 0) {
            continue;
        }
        len = strlen(list);
        (void) snprintf(list + len, size - len, " %s", conf_key(id)->name);
        n++;
    }
    return n;
}

/* Reads the configuration again (file, then the same command line) and, when all of it is
 * good, applies the keys that can change at run time: the log level and the [migration]
 * defaults (migrations already running keep theirs); the API roles and the global VMM
 * allow-list are read from dm->config at each check, so replacing it in place applies them. A key that takes a restart keeps its
 * value and is named. A configuration with a problem changes nothing. One line says what
 * happened. */
static void
daemon_reload(Daemon *dm)
{
    Config next;
    char applied[512], pending[512];
    size_t n_applied, n_pending;

    if (load_config(dm->options, &next, /* reload= */ true) != 0) {
        log_warning("Reload on SIGHUP refused: the configuration has problems (logged above); "
                    "nothing changed.");
        return;
    }
    n_applied = changed_keys(&dm->config, &next, false, applied, sizeof(applied));
    n_pending = changed_keys(&dm->config, &next, true, pending, sizeof(pending));
    for (ConfKeyId id = 0; id < _CONF_KEY_MAX; id++) {
        if (conf_key_takes_restart(id)) {
            conf_key_copy(&next, &dm->config, id); /* in effect until a restart */
        }
    }
    next.socket_gid = dm->config.socket_gid;
    dm->config = next;
    log_set_max_level(next.log_level);
    dm->ctx.manager->migration_defaults = migration_defaults_from(&next);
    dm->ctx.manager->migration_handshake_ms = next.handshake_timeout_ms;
    dm->ctx.manager->max_watches = next.max_watchers;
    dm->ctx.manager->watch_queue_max = next.watch_queue_max;
    log_notice("Reloaded on SIGHUP: %s%s%s%s.", n_applied ? "changed" : "nothing changed",
               applied, n_pending ? "; takes a restart, unchanged:" : "", pending);
}

static void
on_sighup(uv_signal_t *h, int signum _unused_)
{
    Daemon *dm = h->data;

    if (dm->ctx.manager->shutting_down) {
        log_notice("Received SIGHUP while shutting down; nothing to reload.");
        return;
    }
    daemon_reload(dm);
}

/* Who may call what, once at start: a default group this host lacks is said here, not on
 * every refusal. */
static void
log_roles(const Config *c)
{
    log_info("API roles: operators are users '%s' and groups '%s'; readers are users '%s' and "
             "groups '%s'; the daemon's own uid %u is an operator too.", c->operator_users,
             c->operator_groups, c->reader_users, c->reader_groups, (unsigned) c->authz.self);
    if (c->authz_unresolved[0]) {
        log_notice("The default group(s) %s of the API roles do not exist on this host and "
                   "grant nothing (create them with 'groupadd --system', or set [api] "
                   "reader_groups and operator_groups).", c->authz_unresolved);
    }
}

/* The sysfs tree everything host-side reads (attach, prerequisites, host-devices, bind):
 * refused at start unless it is a directory, since a wrong root would otherwise show up only
 * as "no such device" on every request. Points into dm->config, whose restart-only keys a
 * reload keeps. */
static int
daemon_sysfs_root(Manager *m, const Config *c)
{
    struct stat st;

    if (stat(c->sysfs_root, &st) < 0) {
        return log_error_errno(-errno, "The sysfs root '%s' cannot be read: %m (set [daemon] "
                               "sysfs_root or --sysfs-root to a directory; /sys on a real host).",
                               c->sysfs_root);
    }
    if (!S_ISDIR(st.st_mode)) {
        return log_error_errno(SYNTHETIC_ERRNO(ENOTDIR), "The sysfs root '%s' is not a directory "
                               "(set [daemon] sysfs_root or --sysfs-root to a directory; /sys on "
                               "a real host).", c->sysfs_root);
    }
    m->sysfs_root = c->sysfs_root;
    return 0;
}

/* Vendor plugins, before any device is attached (restored ones included) so that each is
 * claimed by its plugin. A plugin that is refused is logged and skipped; only a directory
 * that exists and cannot be read, or no memory, stops the daemon. */
static int
daemon_load_plugins(Manager *m, const Config *c)
{
    const char *dir = c->plugin_dir[0] ? c->plugin_dir : VFIO_MIGD_PLUGIN_DIR;
    PluginServices svc = plugin_services_default(m->sysfs_root);
    int r;

    m->plugins = plugin_host_new(&svc);
    if (!m->plugins) {
        return log_error_errno(SYNTHETIC_ERRNO(ENOMEM), "Cannot load plugins: out of memory.");
    }
    r = plugin_host_load_dir(m->plugins, dir);
    if (r < 0) {
        return log_error_errno(r, "Cannot read the plugin directory '%s': %m (set [daemon] "
                               "plugin_dir or --plugin-dir to a readable directory).", dir);
    }
    log_info("%d vendor plugin(s) loaded from '%s'.", r, dir);
    return 0;
}

/* The VMM socket: [vmm] socket, or vmm.sock beside the API socket. */
static int
daemon_vmm_socket(Daemon *dm)
{
    const Config *c = &dm->config;
    const char *api = rpc_server_socket_path(dm->ctx.server);
    const char *slash = strrchr(api, '/');
    char path[256], err[512] = "";
    int r;

    if (c->vmm_socket[0]) {
        (void) snprintf(path, sizeof(path), "%s", c->vmm_socket);
    } else {
        (void) snprintf(path, sizeof(path), "%.*svmm.sock", slash ? (int) (slash - api + 1) : 0,
                        api);
    }
    r = fdpass_new(dm->ctx.manager, path, &c->vmm_allow_users, &c->vmm_allow_groups, &dm->vmm,
                   err, sizeof(err));
    if (r < 0) {
        return log_error_errno(r, "Cannot serve VMMs: %s (set [vmm] socket or --vmm-socket)",
                               err[0] ? err : strerror(-r));
    }
    log_info("VMM socket on '%s' (docs/vmm-protocol.md).", path);
    return 0;
}

/* The device manager with its settings from the configuration, its plugins and the
 * directories it may write to: everything the API needs before it serves. */
static int
daemon_manager_start(Daemon *dm)
{
    const Config *c = &dm->config;
    int r;

    r = manager_new(dm->loop, &dm->ctx.manager);
    if (r < 0) {
        return log_error_errno(r, "Cannot create the device manager: %m");
    }
    dm->ctx.manager->migration_defaults = migration_defaults_from(c);
    dm->ctx.manager->migration_handshake_ms = c->handshake_timeout_ms;
    dm->ctx.manager->max_watches = c->max_watchers;
    dm->ctx.manager->watch_queue_max = c->watch_queue_max;
    /* Into dm->config, which a reload replaces whole: roles change on SIGHUP. */
    dm->ctx.authz = &dm->config.authz;
    dm->ctx.config_path = dm->options->config_path ? dm->options->config_path : DEFAULT_CONFIG;
    log_roles(c);
    r = daemon_sysfs_root(dm->ctx.manager, c);
    if (r < 0) {
        return r;
    }
    r = daemon_load_plugins(dm->ctx.manager, c);
    if (r < 0) {
        return r;
    }
    r = daemon_load_certs(c);
    if (r < 0) {
        return r;
    }
    return daemon_allow_dirs(dm->ctx.manager, c);
}

/* SIGTERM and SIGINT stop the daemon, SIGHUP reloads its configuration. */
static void
daemon_signals_start(Daemon *dm)
{
    (void) uv_signal_init(dm->loop, &dm->sigterm);
    (void) uv_signal_init(dm->loop, &dm->sigint);
    (void) uv_signal_init(dm->loop, &dm->sighup);
    dm->sigterm.data = dm->sigint.data = dm->sighup.data = dm;
    (void) uv_signal_start(&dm->sigterm, on_signal, SIGTERM);
    (void) uv_signal_start(&dm->sigint, on_signal, SIGINT);
    (void) uv_signal_start(&dm->sighup, on_sighup, SIGHUP);
}

static int
daemon_start(Daemon *dm)
{
    const Config *c = &dm->config;
    RpcServerConfig cfg = {.socket_path = c->socket, .socket_mode = c->socket_mode,
                           .socket_gid_set = c->socket_gid != (gid_t) -1,
                           .socket_gid = c->socket_gid, .max_connections = c->max_connections,
                           .admit = rpc_dispatch_admit, .userdata = &dm->ctx};
    char err[512] = "", line[128];
    int r;

    r = sd_service_new(dm->loop, &dm->sd);
    if (r < 0) {
        return log_error_errno(r, "Cannot set up the systemd notifications: %m");
    }
    r = daemon_manager_start(dm);
    if (r < 0) {
        return r;
    }
    /* Devices the previous daemon held come back from the fd store before the API serves,
     * so that no request sees the daemon without them. */
    dm->restore = restore_state_start(dm->ctx.manager, dm->sd);
    /* Socket activation: vfio-migd.socket passes the API socket as "api". */
    r = sd_service_take_fd(dm->sd, "api", &cfg.listen_fd);
    if (r == -ENOTUNIQ) {
        return log_error_errno(r, "systemd passed several fds named 'api'; give the API "
                               "socket unit one ListenStream=.");
    }
    cfg.methods = rpc_dispatch_table(&cfg.n_methods);
    r = rpc_server_new(dm->loop, &cfg, &dm->ctx.server, err, sizeof(err));
    if (r < 0) {
        return log_error_errno(r, "Cannot serve the API: %s", err[0] ? err : strerror(-r));
    }
    sd_service_close_unclaimed(dm->sd);
    r = daemon_vmm_socket(dm);
    if (r < 0) {
        return r;
    }
    daemon_signals_start(dm);
    log_info("vfio-migd %s serving on '%s'%s (grpc core %s, %u workers).", VFIO_MIGD_VERSION,
             rpc_server_socket_path(dm->ctx.server),
             rpc_server_socket_activated(dm->ctx.server) ? " (socket activation)" : "",
             grpc_version_string(), (unsigned) c->workers);
    dm->ctx.manager->on_change = on_manager_changed;
    dm->ctx.manager->on_change_userdata = dm;
    restore_state_changed(dm->restore); /* what came back is kept again, in a new journal */
    summary_format(&(Summary){0}, line, sizeof(line));
    sd_service_ready(dm->sd, line);
    return 0;
}

/* --check-config and --dump-config: the configuration was loaded without a problem. */
static int
report_config(const Options *o, const Config *c)
{
    const char *path = o->config_path ? o->config_path : DEFAULT_CONFIG;

    if (o->dump_config) {
        conf_write(c, stdout, /* commented= */ false);
    }
    if (o->check_config) {
        fprintf(o->dump_config ? stderr : stdout, "vfio-migd: configuration OK (%s%s)\n",
                access(path, F_OK) == 0 ? "" : "no file: built-in defaults; looked for ", path);
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Frees what daemon_start() made, in the order that keeps the devices' state: the VMM socket
 * gives their vectors back before the devices go, the fd store keeps its fds for a restart.
 * @started: daemon_start() succeeded (its signal handles exist). */
static void
daemon_stop(Daemon *dm, bool started)
{
    rpc_server_free(dm->ctx.server);
    dm->vmm = fdpass_free(dm->vmm); /* before the devices: it gives their vectors back */
    if (dm->ctx.manager) {
        dm->ctx.manager->on_change = NULL; /* freeing is no news */
    }
    manager_free(dm->ctx.manager);
    restore_state_free(dm->restore); /* the store keeps its fds: a restart finds them */
    tls_unload_certs();
    sd_service_free(dm->sd);
    if (started) {
        uv_close((uv_handle_t *) &dm->sigterm, NULL);
        uv_close((uv_handle_t *) &dm->sigint, NULL);
        uv_close((uv_handle_t *) &dm->sighup, NULL);
        (void) signal(SIGHUP, SIG_IGN); /* libuv put back the default action, which kills */
    }
    (void) uv_run(dm->loop, UV_RUN_DEFAULT); /* close callbacks of the freed handles */
    (void) uv_loop_close(dm->loop);
}

int
main(int argc, char **argv)
{
    Options o = {0};
    Daemon dm = {.options = &o};
    int r;

    /* Before any message: whether stderr is the journal decides how every line is sent. */
    log_open();
    /* A hangup (the terminal the daemon was started from went away, or a reload asked for
     * before the loop handles it) never ends the daemon: ignored until daemon_start(). */
    (void) signal(SIGHUP, SIG_IGN);

    r = parse_args(argc, argv, &o);
    if (r != 0) {
        return r > 0 ? EXIT_SUCCESS : 2;
    }
    r = load_config(&o, &dm.config, /* reload= */ false);
    if (r != 0) {
        return r;
    }
    if (o.check_config || o.dump_config) {
        return report_config(&o, &dm.config);
    }
    log_set_max_level(dm.config.log_level);
    (void) signal(SIGPIPE, SIG_IGN);
    /* Every migration, save and restore mallocs its data buffers (512 KiB a device, more for
     * a save file) on a worker thread and frees them at its end. glibc's dynamic mmap
     * threshold rises past such a size the first time one is freed, after which they come
     * from the worker's own arena and are kept there: 200 small saves took the daemon from
     * 15 to 85 MiB. A fixed threshold (which also fixes the trim threshold) keeps them
     * mmap()ed and returned on free(); they are allocated once per job, so the mmap costs
     * nothing measurable (bench-migrate before and after: the note of issue 11). */
    (void) mallopt(M_MMAP_THRESHOLD, DAEMON_MMAP_THRESHOLD);
    /* glibc gives each thread that mallocs an arena of its own, up to 8 per CPU: after
     * bench-rpc the idle daemon had 13 (the loop's, gRPC's threads', the CQ thread's), each
     * keeping freed memory resident up to the trim threshold, 0.1-0.2 MiB of its 16 MiB.
     * Two suffice: a call's small allocations come from each thread's tcache without the
     * arena's lock, and the data buffers are mmap()ed (above), so threads seldom meet on a
     * lock (bench-rpc's calls/s: bench/README.md, issue 12). Before any thread exists. */
    (void) mallopt(M_ARENA_MAX, DAEMON_ARENA_MAX);

    (void) rpc_grpc_init();
    dm.loop = uv_default_loop();
    /* The workers exist before the API is served, so that no device operation, the first
     * group transition included, waits for them to be made. */
    r = worker_pool_start(dm.loop, dm.config.workers);
    if (r < 0) {
        (void) log_warning_errno(r, "Cannot start the %u workers now, they start with the "
                                 "first device operation, ignoring: %m",
                                 (unsigned) dm.config.workers);
    }
    r = daemon_start(&dm);
    if (r >= 0) {
        (void) uv_run(dm.loop, UV_RUN_DEFAULT);
    }
    daemon_stop(&dm, r >= 0);
    grpc_shutdown();
    return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
