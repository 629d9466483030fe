/* SPDX-License-Identifier: MIT */
/*
 * migration_commands — `vfio-migctl incoming|migrate|migrate-set|switchover|cancel|resolve|
 * jobs|job|watch`, the calls to vfio_migd.v1.MigrationService (migrations.proto). Each is a row;
 * most are one CliCall, printed through output_migration.h so that a migration looks the same in every
 * command (docs/cli.md, "The migration object"). `migrate --wait` and `watch` hand over to
 * the follow engine (follow.h).
 */
#include "migration_commands.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "compat_commands.h"
#include "core/spread.h"
#include "follow.h"
#include "output.h"
#include "output_migration.h"
#include "util/limits.h"
#include "util/macro.h"
#include "util/strutil.h"

#define MIGRATION_METHOD(m) "/vfio_migd.v1.MigrationService/" m

typedef VfioMigd__V1__Migration Migration;
typedef VfioMigd__V1__MigrationResponse MigrationResponse;

/* ---- parsing */

enum {
    OPT_LISTEN = CLI_OPT_COMMAND_FIRST,
    OPT_RESUME,
    OPT_TIMEOUT_MS,
    OPT_TO,
    OPT_TOKEN,
    OPT_TOKEN_FILE,
    OPT_PRECOPY,
    OPT_SWITCHOVER,
    OPT_MAX_PRECOPY_MS,
    OPT_DOWNTIME_MS,
    OPT_BANDWIDTH,
    OPT_STOPCOPY_BANDWIDTH,
    OPT_CHANNELS,
    OPT_PEER_TIMEOUT_MS,
    OPT_DRY_RUN,
    OPT_WAIT,
    OPT_PEER,
    OPT_ABORT,
    OPT_TLS,
};

/* --tls psk|cert|off into a MigrationTls (a request's DEFAULT when the option is not given). */
static CliExit
parse_tls(Cli *cli, const char *arg, int *ret)
{
    for (int v = VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_PSK;
         v <= VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_CERT; v++) {
        if (strcasecmp(arg, output_migration_tls_names[v]) == 0) {
            *ret = v;
            return CLI_GO_ON;
        }
    }
    return cli_usage_error(cli, "--tls: unknown value '%s' (psk, cert or off)", arg);
}

/* A number of milliseconds as the protocol carries it (uint32; 0 = the daemon's default). */
static CliExit
parse_ms(Cli *cli, const char *option, const char *arg, uint32_t *ret)
{
    long long v;

    if (strutil_parse_int_bounded(arg, 0, LIMIT_MAX_MS, &v) < 0) {
        return cli_usage_error(cli, "%s: '%s' is not a number of milliseconds from 0 (the "
                               "daemon's default) to %u (a day)", option, arg, LIMIT_MAX_MS);
    }
    *ret = (uint32_t) v;
    return CLI_GO_ON;
}

/* "100M", "1G/s", "500000": bytes per second, K/M/G binary multiples (strutil_parse_rate).
 * @zero says what 0 means to the command. */
static CliExit
parse_bandwidth(Cli *cli, const char *option, const char *arg, const char *zero, uint64_t *ret)
{
    if (strutil_parse_rate(arg, ret) < 0 || *ret > LIMIT_MAX_RATE) {
        return cli_usage_error(cli, "%s: '%s' is not a rate in bytes per second from 0 (%s) to "
                               "1024G (e.g. 500000, 64K, 100M, 1G)", option, arg, zero);
    }
    return CLI_GO_ON;
}

/* @arg as an index of the two @names (the protocol's number). */
/* --channels: data channels per device, 0 (the daemon's default) to SPREAD_MAX_CHANNELS. */
static CliExit
parse_channels(Cli *cli, const char *arg, uint32_t *ret)
{
    long long v;

    if (strutil_parse_int_bounded(arg, 0, SPREAD_MAX_CHANNELS, &v) < 0) {
        return cli_usage_error(cli, "--channels: '%s' is not a number of data channels per "
                               "device from 1 to %u (0: the daemon's default, automatic)", arg,
                               SPREAD_MAX_CHANNELS);
    }
    *ret = (uint32_t) v;
    return CLI_GO_ON;
}

static CliExit
parse_choice(Cli *cli, const char *option, const char *arg, const char *const names[2], int *ret)
{
    for (size_t i = 0; i < 2; i++) {
        if (strcasecmp(arg, names[i]) == 0) {
            *ret = (int) i;
            return CLI_GO_ON;
        }
    }
    return cli_usage_error(cli, "%s: unknown value '%s' (%s or %s)", option, arg, names[0],
                           names[1]);
}

/* ---- the migration as the answer */

static json_object *
migration_json(const void *req _unused_, const void *resp)
{
    return output_migration_json(((const MigrationResponse *) resp)->migration);
}

static int
migration_text(const void *req _unused_, const void *resp)
{
    return output_migration_fields(((const MigrationResponse *) resp)->migration);
}

/* A call of MigrationService answered with the migration (MigrationResponse), printed as such. */
#define MIGRATION_CALL(method_, request_, build_)                                                  \
    CLI_CALL(CLI_METHOD("MigrationService", method_, request_, migration_response), (build_),      \
             "migration", migration_json, migration_text)

/* ---- incoming */

typedef struct IncomingArgs {
    const char *listen; /* --listen; NULL: not given */
    const char *peer;   /* --peer; NULL: not given */
    bool resume;        /* --resume */
    uint32_t timeout_ms;
    int tls;            /* --tls: VFIO_MIGD__V1__MIGRATION_TLS__*, 0: the daemon's default */
} IncomingArgs;

static CliExit
incoming_option(Cli *cli, int opt, const char *arg, void *args)
{
    IncomingArgs *a = args;

    if (opt == OPT_TLS) {
        return parse_tls(cli, arg, &a->tls);
    }
    return parse_ms(cli, "--timeout-ms", arg, &a->timeout_ms);
}

static CliExit
incoming_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__PrepareIncomingRequest *req = request;
    const IncomingArgs *a = args;
    CliExit r;

    r = cli_require(cli, "--listen", a->listen);
    if (r != CLI_GO_ON) {
        return r;
    }
    req->group = cli->args[0];
    req->listen = (char *) a->listen;
    req->peer = a->peer ? (char *) a->peer : "";
    req->auto_resume = a->resume;
    req->timeout_ms = a->timeout_ms;
    req->tls = (VfioMigd__V1__MigrationTls) a->tls;
    return CLI_GO_ON;
}

static json_object *
incoming_json(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__PrepareIncomingResponse *r = resp;
    json_object *o = output_migration_json(r->migration);

    output_json_set(o, "address", json_object_new_string(r->address));
    output_json_set(o, "peer_addresses",
                    OUTPUT_JSON_ARRAY(r->peer_addresses, r->n_peer_addresses,
                                      json_object_new_string));
    output_json_set(o, "token", json_object_new_string(r->token));
    return o;
}

/* @s as one shell word: as is when it is plain, else in single quotes. */
static void
print_shell_word(const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "_.:/@%+=,-") == strlen(s)) {
        fputs(s, stdout);
        return;
    }
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'') {
            fputs("'\\''", stdout);
        } else {
            putchar(*s);
        }
    }
    putchar('\'');
}

/* The address and token, and the command to paste on the source: one per address a peer can
 * use (peer_addresses; a wildcard address such as 0.0.0.0 is none). */
static int
incoming_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__PrepareIncomingResponse *r = resp;
    const Migration *m = r->migration;
    char *const *to = r->n_peer_addresses ? r->peer_addresses : &r->address;
    size_t n = r->n_peer_addresses ? r->n_peer_addresses : 1;

    output_field("id", "%s", m->id);
    output_field("address", "%s", r->address);
    output_field("token", "%s", r->token);
    printf("\nGroup %s waits for the source (phase %s). On the source, run%s:\n", m->group,
           output_migration_phase(m->phase),
           n > 1 ? " the line with an address it can reach" : "");
    for (size_t i = 0; i < n; i++) {
        fputs("  vfio-migctl migrate ", stdout);
        print_shell_word(m->group);
        fputs(" --to ", stdout);
        print_shell_word(to[i]);
        fputs(" --token ", stdout);
        print_shell_word(r->token);
        putchar('\n');
    }
    return 0;
}

static const CliCall incoming_call =
    CLI_CALL(CLI_METHOD_OF("MigrationService", PrepareIncoming, prepare_incoming), incoming_build,
             "migration", incoming_json, incoming_text);

static const CliStore incoming_stores[] = {
    CLI_STORE_STRING(OPT_LISTEN, IncomingArgs, listen),
    CLI_STORE_STRING(OPT_PEER, IncomingArgs, peer),
    CLI_STORE_FLAG(OPT_RESUME, IncomingArgs, resume),
    {},
};

const CliCommand migration_commands_incoming = CLI_COMMAND(
    "incoming",
    "GROUP --listen ADDR [--peer HOST] [--resume] [--timeout-ms N] [--tls psk|cert|off]",
    "Prepare GROUP to receive a migration: listen, print the address and token", 1, 1,
    .help = "  --listen ADDR      host:port to listen on (port 0: any free port), or unix:/path\n"
            "  --peer HOST        the source host's address: with a wildcard ADDR (0.0.0.0:0),\n"
            "                     print this host's address on the route to it (default: every\n"
            "                     interface's address)\n"
            "  --resume           resume the group (running) once the migration completed\n"
            "  --timeout-ms N     how long to wait for the source, in ms (0: the daemon's "
            "default)\n"
            "  --tls MODE         psk: TLS 1.3 keyed by the token (the default unless the\n"
            "                     daemon's [migration] tls says otherwise); cert: TLS 1.3\n"
            "                     with both daemons' certificates ([migration] tls_cert,\n"
            "                     tls_key, tls_ca) and the token; off: clear, for a\n"
            "                     trusted link only. The source must use the same\n",
    .options = (const struct option[]) {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"peer", required_argument, NULL, OPT_PEER},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
        {"tls", required_argument, NULL, OPT_TLS},
        {},
    },
    .args_size = sizeof(IncomingArgs),
    .stores = incoming_stores,
    .option = incoming_option,
    .call = &incoming_call);

/* ---- migrate */

/* A token is 64 hex digits (transport.h); a file much longer than that holds something else. */
#define TOKEN_FILE_MAX 256

typedef struct MigrateArgs {
    const char *to;         /* --to; NULL: not given */
    const char *token;      /* --token; NULL: not given */
    const char *token_file; /* --token-file; "-": stdin; NULL: not given */
    char token_buf[TOKEN_FILE_MAX + 2]; /* what --token-file held */
    /* --precopy ... --tls, parsed straight into the request's options (all zero, the daemon's
     * defaults and auto, when not given); migrate_run() sets the message header */
    VfioMigd__V1__MigrationOptions options;
    bool wait;
    bool dry_run;      /* --dry-run: ask the destination (CheckMigration), move nothing */
    int tls;           /* VFIO_MIGD__V1__MIGRATION_TLS__*, 0: the daemon's default */
} MigrateArgs;

static CliExit
migrate_option(Cli *cli, int opt, const char *arg, void *args)
{
    MigrateArgs *a = args;
    VfioMigd__V1__MigrationOptions *o = &a->options;
    int choice = 0;
    CliExit r;

    switch (opt) {
    case OPT_PRECOPY:
        r = parse_choice(cli, "--precopy", arg, output_migration_precopy_names, &choice);
        o->precopy = (VfioMigd__V1__PrecopyMode) choice;
        return r;
    case OPT_SWITCHOVER:
        r = parse_choice(cli, "--switchover", arg, output_migration_switchover_names, &choice);
        o->switchover = (VfioMigd__V1__SwitchoverMode) choice;
        return r;
    case OPT_MAX_PRECOPY_MS:
        return parse_ms(cli, "--max-precopy-ms", arg, &o->max_precopy_ms);
    case OPT_DOWNTIME_MS:
        return parse_ms(cli, "--downtime-ms", arg, &o->downtime_target_ms);
    case OPT_PEER_TIMEOUT_MS:
        return parse_ms(cli, "--peer-timeout-ms", arg, &o->timeout_ms);
    case OPT_BANDWIDTH:
        return parse_bandwidth(cli, "--bandwidth", arg, "the daemon's default",
                               &o->bandwidth_limit);
    case OPT_STOPCOPY_BANDWIDTH:
        return parse_bandwidth(cli, "--stopcopy-bandwidth", arg, "the daemon's default",
                               &o->stopcopy_bandwidth_limit);
    case OPT_CHANNELS:
        return parse_channels(cli, arg, &o->channels);
    default:
        r = parse_tls(cli, arg, &choice); /* OPT_TLS: the rest are stored (migrate_stores) */
        o->tls = (VfioMigd__V1__MigrationTls) choice;
        return r;
    }
}

/* Reads the token from @path ("-": stdin) into @buf (TOKEN_FILE_MAX + 2 bytes): the file's
 * text without its trailing blanks and newline, so that a token never needs to be on the
 * command line, where ps(1) shows it to every user. */
static CliExit
read_token_file(Cli *cli, const char *path, char *buf)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    size_t n = 0;
    ssize_t k = 0;

    if (fd < 0) {
        return cli_fail(cli, "cannot open the token file '%s': %s", path, strerror(errno));
    }
    while (n <= TOKEN_FILE_MAX && (k = read(fd, buf + n, TOKEN_FILE_MAX + 1 - n)) != 0) {
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            break;
        }
        n += (size_t) k;
    }
    if (k < 0) {
        k = -errno;
    }
    if (!is_stdin) {
        (void) close(fd);
    }
    if (k < 0) {
        return cli_fail(cli, "cannot read the token from '%s': %s", path, strerror((int) -k));
    }
    if (n > TOKEN_FILE_MAX) {
        return cli_fail(cli, "'%s' holds more than %d bytes: not a token", path, TOKEN_FILE_MAX);
    }
    while (n > 0 && strchr(" \t\r\n", buf[n - 1])) {
        n--;
    }
    buf[n] = '\0';
    if (n == 0) {
        return cli_fail(cli, "'%s' holds no token", path);
    }
    return CLI_GO_ON;
}

/* The token, from --token or --token-file (exactly one of them). */
static CliExit
migrate_token(Cli *cli, MigrateArgs *a)
{
    if (a->token && a->token_file) {
        return cli_usage_error(cli, "--token and --token-file are exclusive: give one");
    }
    if (!a->token_file) {
        return cli_require(cli, "--token", a->token);
    }
    a->token = a->token_buf;
    return read_token_file(cli, a->token_file, a->token_buf);
}

/* StartMigration; then, with --wait, the follow engine, else the migration's id (or JSON). */
static CliExit
migrate_run(Cli *cli, void *args)
{
    VfioMigd__V1__StartMigrationRequest req = VFIO_MIGD__V1__START_MIGRATION_REQUEST__INIT;
    const VfioMigd__V1__MigrationOptions init = VFIO_MIGD__V1__MIGRATION_OPTIONS__INIT;
    _cleanup_message_ MigrationResponse *resp = NULL;
    MigrateArgs *a = args;
    CliExit r;

    r = cli_require(cli, "--to", a->to);
    if (r == CLI_GO_ON) {
        r = migrate_token(cli, a);
    }
    if (r != CLI_GO_ON) {
        return r;
    }
    if (a->dry_run && a->wait) {
        return cli_usage_error(cli, "--dry-run and --wait are exclusive: a dry run starts no "
                               "migration to wait for");
    }
    if (a->dry_run) {
        return compat_commands_dry_run(cli, cli->args[0], a->to, a->token, a->options.timeout_ms,
                                       a->options.tls);
    }
    a->options.base = init.base; /* every other default of the message is 0 */
    req.group = cli->args[0];
    req.address = (char *) a->to;
    req.token = (char *) a->token;
    req.options = &a->options;
    r = cli_call(cli, MIGRATION_METHOD("StartMigration"), &req.base,
                 &vfio_migd__v1__migration_response__descriptor, NULL,
                 (ProtobufCMessage **) &resp);
    if (r != CLI_GO_ON) {
        return r;
    }
    if (!resp->migration) {
        return cli_fail(cli, "the daemon's answer has no migration");
    }
    if (a->wait) {
        return follow_migration(cli, &resp);
    }
    if (cli->json) {
        return cli_exit_output(output_json_print(output_migration_json(resp->migration)));
    }
    printf("%s\n", resp->migration->id);
    return CLI_EXIT_OK;
}

static const CliStore migrate_stores[] = {
    CLI_STORE_STRING(OPT_TO, MigrateArgs, to),
    CLI_STORE_STRING(OPT_TOKEN, MigrateArgs, token),
    CLI_STORE_STRING(OPT_TOKEN_FILE, MigrateArgs, token_file),
    CLI_STORE_FLAG(OPT_DRY_RUN, MigrateArgs, dry_run),
    CLI_STORE_FLAG(OPT_WAIT, MigrateArgs, wait),
    {},
};

const CliCommand migration_commands_migrate = CLI_COMMAND(
    "migrate",
    "GROUP --to ADDR --token T|--token-file PATH [--wait|--dry-run] [--precopy auto|off] "
    "[--switchover auto|manual] ...",
    "Migrate GROUP's device state to the daemon that ran 'incoming'", 1, 1,
    .help = "  --to ADDR            the address 'incoming' printed (host:port or unix:/path)\n"
            "  --token T            the token 'incoming' printed (single use); on the command\n"
            "                       line, any user's ps(1) shows it: prefer --token-file\n"
            "  --token-file PATH    read the token from PATH ('-': stdin) instead\n"
            "  --precopy MODE       auto: pre-copy when every device can (default); off: none\n"
            "  --switchover MODE    auto: once pre-copy converged (default); manual: wait in\n"
            "                       phase ready for 'vfio-migctl switchover ID'\n"
            "  --max-precopy-ms N   longest pre-copy, in ms (0: the daemon's default)\n"
            "  --downtime-ms N      downtime target, in ms (0: the daemon's default)\n"
            "  --bandwidth RATE     pre-copy's bytes per second over all devices: 500000, 64K,\n"
            "                       100M, 1G (binary multiples; a trailing /s is accepted; 0: the\n"
            "                       daemon's default, unlimited unless its configuration sets\n"
            "                       one). Stop-copy, with the VM paused, is not held to it\n"
            "  --stopcopy-bandwidth RATE\n"
            "                       stop-copy's own cap, for a shared link (0: the daemon's\n"
            "                       default, unlimited); 'migrate-set' changes both later\n"
            "  --channels N         data channels per device, 1 to 8: a large device's data\n"
            "                       over several connections and cores (0: the daemon's\n"
            "                       default, automatic from its data size and the CPUs)\n"
            "  --peer-timeout-ms N  longest wait for the peer, in ms (0: the daemon's default)\n"
            "  --tls MODE           psk: TLS 1.3 keyed by the token, which never crosses the\n"
            "                       wire (default unless [migration] tls says otherwise);\n"
            "                       cert: TLS 1.3 with both daemons' certificates and the\n"
            "                       token; off: clear, for a trusted link only. As\n"
            "                       'incoming --tls' said\n"
            "  --wait               follow the migration to its end (progress line on a "
            "terminal);\n"
            "                       exit 0 only when it completed\n"
            "  --dry-run            only ask the destination whether it would accept GROUP's\n"
            "                       devices: every mismatch (device, field, both values); no\n"
            "                       device moves, the token stays valid; exit 0 only when\n"
            "                       compatible\n",
    .options = (const struct option[]) {
        {"to", required_argument, NULL, OPT_TO},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"precopy", required_argument, NULL, OPT_PRECOPY},
        {"switchover", required_argument, NULL, OPT_SWITCHOVER},
        {"max-precopy-ms", required_argument, NULL, OPT_MAX_PRECOPY_MS},
        {"downtime-ms", required_argument, NULL, OPT_DOWNTIME_MS},
        {"bandwidth", required_argument, NULL, OPT_BANDWIDTH},
        {"stopcopy-bandwidth", required_argument, NULL, OPT_STOPCOPY_BANDWIDTH},
        {"channels", required_argument, NULL, OPT_CHANNELS},
        {"peer-timeout-ms", required_argument, NULL, OPT_PEER_TIMEOUT_MS},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"tls", required_argument, NULL, OPT_TLS},
        {"wait", no_argument, NULL, OPT_WAIT},
        {},
    },
    .args_size = sizeof(MigrateArgs),
    .stores = migrate_stores,
    .option = migrate_option,
    .run = migrate_run);

/* ---- migrate-set */

typedef struct MigrateSetArgs {
    VfioMigd__V1__Rate precopy, stopcopy;
    bool have_precopy, have_stopcopy;
} MigrateSetArgs;

static CliExit
migrate_set_option(Cli *cli, int opt, const char *arg, void *args)
{
    MigrateSetArgs *a = args;
    bool stopcopy = opt == OPT_STOPCOPY_BANDWIDTH;
    VfioMigd__V1__Rate *rate = stopcopy ? &a->stopcopy : &a->precopy;

    vfio_migd__v1__rate__init(rate);
    *(stopcopy ? &a->have_stopcopy : &a->have_precopy) = true;
    return parse_bandwidth(cli, stopcopy ? "--stopcopy-bandwidth" : "--bandwidth", arg,
                           "unlimited", &rate->bytes_per_second);
}

static CliExit
migrate_set_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__UpdateMigrationRequest *req = request;
    MigrateSetArgs *a = args;

    if (!a->have_precopy && !a->have_stopcopy) {
        return cli_usage_error(cli, "nothing to set: give --bandwidth, --stopcopy-bandwidth or "
                               "both");
    }
    req->id = cli->args[0];
    req->bandwidth_limit = a->have_precopy ? &a->precopy : NULL;
    req->stopcopy_bandwidth_limit = a->have_stopcopy ? &a->stopcopy : NULL;
    return CLI_GO_ON;
}

const CliCommand migration_commands_migrate_set = CLI_COMMAND(
    "migrate-set", "ID [--bandwidth RATE] [--stopcopy-bandwidth RATE]",
    "Change a running migration's bandwidth caps (on the source)", 1, 1,
    .help = "  --bandwidth RATE     pre-copy's cap: bytes per second over all devices, e.g.\n"
            "                       500000, 64K, 100M, 1G (0: unlimited)\n"
            "  --stopcopy-bandwidth RATE\n"
            "                       stop-copy's cap (0: unlimited)\n"
            "                 Each applies from every device's next record; one left out keeps\n"
            "                 its value.\n",
    .options = (const struct option[]) {
        {"bandwidth", required_argument, NULL, OPT_BANDWIDTH},
        {"stopcopy-bandwidth", required_argument, NULL, OPT_STOPCOPY_BANDWIDTH},
        {},
    },
    .args_size = sizeof(MigrateSetArgs),
    .option = migrate_set_option,
    .call = &(const CliCall) MIGRATION_CALL(UpdateMigration, update_migration_request,
                                           migrate_set_build));

/* ---- switchover, cancel, job: one call by id, the migration as the answer */

#define BY_ID_COMMAND(name_, method_, summary_)                                                    \
    CLI_BY_ID_COMMAND(                                                                             \
        name_, summary_,                                                                           \
        &(const CliCall) MIGRATION_CALL(method_, migration_id_request, cli_build_name))

const CliCommand migration_commands_switchover =
    BY_ID_COMMAND("switchover", Switchover, "Switch a migration waiting in phase ready over now");
const CliCommand migration_commands_cancel =
    BY_ID_COMMAND("cancel", CancelMigration,
                  "Cancel a migration before its commit: the source group keeps running");
/* ---- resolve */

static CliExit
resolve_option(Cli *cli _unused_, int opt, const char *arg _unused_, void *args)
{
    *(VfioMigd__V1__ResolveOutcome *) args =
        opt == OPT_ABORT ? VFIO_MIGD__V1__RESOLVE_OUTCOME__RESOLVE_OUTCOME_ABORT
                         : VFIO_MIGD__V1__RESOLVE_OUTCOME__RESOLVE_OUTCOME_RESUME;
    return CLI_GO_ON;
}

static CliExit
resolve_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__ResolveMigrationRequest *req = request;

    req->outcome = *(VfioMigd__V1__ResolveOutcome *) args;
    if (req->outcome == VFIO_MIGD__V1__RESOLVE_OUTCOME__RESOLVE_OUTCOME_UNSPECIFIED) {
        return cli_usage_error(cli, "say which outcome: --resume (this side runs the VM) or "
                               "--abort (it gives the VM up), after asking the other side");
    }
    req->id = cli->args[0];
    return CLI_GO_ON;
}

const CliCommand migration_commands_resolve = CLI_COMMAND(
    "resolve", "ID --resume|--abort",
    "Decide a migration left in_doubt: this side runs the VM, or gives it up", 1, 1,
    .help = "  --resume       this side runs the VM: a source takes its group back to running,\n"
            "                 a destination resumes as after the source's commit\n"
            "  --abort        this side gives the VM up: a source stays stopped (the migration\n"
            "                 completed), a destination resets its devices\n"
            "                 Ask the other side first ('vfio-migctl job ID' on its daemon): the\n"
            "                 VM is the destination's exactly when the source committed. The\n"
            "                 destination resumes when the source's migration is in_doubt or\n"
            "                 completed, and aborts when it failed or was cancelled; the source\n"
            "                 aborts when the destination's is completed or in_doubt, and\n"
            "                 resumes only when the destination failed or lost its devices.\n",
    .options = (const struct option[]) {
        {"resume", no_argument, NULL, OPT_RESUME},
        {"abort", no_argument, NULL, OPT_ABORT},
        {},
    },
    .args_size = sizeof(VfioMigd__V1__ResolveOutcome),
    .option = resolve_option,
    .call = &(const CliCall) MIGRATION_CALL(ResolveMigration, resolve_migration_request,
                                            resolve_build));

const CliCommand migration_commands_job = BY_ID_COMMAND(
    "job", GetMigration, "Show one migration: phase, progress, timings, every device");

/* ---- jobs */

OUTPUT_JSON_LIST_PRINTER(jobs_json, ListMigrationsResponse, migrations,
                         output_migration_json)

static int
jobs_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__ListMigrationsResponse *r = resp;
    _cleanup_(output_table_freep) OutputTable *t = NULL;

    t = output_table_new(9, "ID", "ROLE", "GROUP", "PHASE", "STATE", "BYTES", "ELAPSED", "PEER",
                         "SWITCHOVER");
    if (!t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < r->n_migrations; i++) {
        const Migration *m = r->migrations[i];
        char bytes[32], elapsed[32];

        if (output_table_add(t, m->id, output_migration_role(m->role), m->group,
                             output_migration_phase(m->phase), m->state,
                             strutil_format_bytes(m->bytes, bytes, sizeof(bytes)),
                             output_duration(m->elapsed_us, elapsed, sizeof(elapsed)),
                             m->peer[0] ? m->peer : "-",
                             m->switchover_reason[0] ? m->switchover_reason : "-") < 0) {
            return -ENOMEM;
        }
    }
    output_table_print(t, stdout);
    return 0;
}

static const CliCall jobs_call =
    CLI_CALL(CLI_METHOD_OF("MigrationService", ListMigrations, list_migrations), NULL, NULL,
             jobs_json, jobs_text);

const CliCommand migration_commands_jobs = CLI_COMMAND(
    "jobs", "",
    "List the migrations, saves and restores (newest first)", 0, 0,
    .call = &jobs_call);

/* ---- watch */

static CliExit
watch_run(Cli *cli, void *args _unused_)
{
    return follow_watch(cli, cli->n_args ? cli->args[0] : NULL);
}

const CliCommand migration_commands_watch = CLI_COMMAND(
    "watch", "[ID]",
    "Follow one migration, or every active one, until it ends (the daemon's events)", 0, 1,
    .help = "  ID             the migration to follow; without it, every active one\n"
            "                 Prints a line when the phase or state changes and a progress line\n"
            "                 at most once a second; exit 0 only when all completed.\n",
    .run = watch_run);
