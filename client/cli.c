/* SPDX-License-Identifier: MIT */
/*
 * cli — see cli.h. The plan of one invocation:
 *
 *   cli_main()         the global options before the command (getopt "+": stop at the
 *                      command), the command's row, then after it the one check that stdout
 *                      took everything (a full disk or a closed pipe is not success)
 *   cli_run_command()  the row's own options and the global ones anywhere among its
 *                      arguments, --help wherever it appears, the count of positional ones
 *   cli_run_call()     the request built, the one call, the answer printed as JSON or text
 *
 * cli_report_call_error() is the only place a failed call is reported and mapped to an exit
 * status, so the error format (docs/cli.md, "Errors") is the same for every command.
 */

#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsm.h"
#include "output.h"
#include "util/cleanup.h"

/* --timeout is an int of milliseconds inside: 2147483 s is the largest that fits. */
#define TIMEOUT_MAX_S 2147483.0

/* Room for the longest own option table (migrate: 9) plus the global options. */
#define OPTIONS_MAX 32

/* The global options, accepted before the command and again among its arguments. */
static const struct option global_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"json", no_argument, NULL, CLI_OPT_JSON},
    {"no-headers", no_argument, NULL, CLI_OPT_NO_HEADERS},
    {"socket", required_argument, NULL, CLI_OPT_SOCKET},
    {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},
};

/* ---- help */

/* The part of both help texts that is about the global options and the exit statuses. */
static void
print_global_help(FILE *f, const char *heading, const char *help_lines)
{
    fprintf(f, "\n%s (also accepted after the command):\n"
               "  --socket PATH      the daemon's socket (default: $VFIO_MIGD_SOCKET or "
               RPC_DEFAULT_SOCKET ")\n"
               "  --json             print one JSON document on stdout\n"
               "  --no-headers       print tables without their header line\n"
               "  --timeout SECONDS  wait at most SECONDS for the daemon (default 30; 0: "
               "for ever)\n"
               "%s"
               "\nExit status: 0 success, 1 the daemon answered with an error, 2 usage error,\n"
               "3 the daemon cannot be reached.\n",
            heading, help_lines);
}

/* `help` is cli_main()'s own (it needs the command table): this row only describes it. */
static const CliCommand help_row = {
    .name = "help",
    .usage = "[COMMAND [SUBCOMMAND]]",
    .summary = "Show COMMAND's help, as 'COMMAND --help' does; alone, this list",
};

static void
print_help(FILE *f, const CliCommand *const *commands, size_t n_commands)
{
    fprintf(f, "Usage: vfio-migctl [OPTIONS] COMMAND [ARGS...]\n\n"
               "Controls vfio-migd, the VFIO device migration daemon, over its unix socket.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < n_commands; i++) {
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    }
    fprintf(f, "  %-10s %s\n", help_row.name, help_row.summary);
    print_global_help(f, "Options",
                      "  -h, --help         show this help; 'COMMAND --help' shows a command's\n"
                      "  --version          print this client's version and exit\n");
}

/* "COMMAND --help": the usage line, the summary, the command's own options. */
static void
print_command_help(const CliCommand *cmd, FILE *f)
{
    fprintf(f, "Usage: vfio-migctl [OPTIONS] %s%s%s\n\n%s.\n", cmd->name, *cmd->usage ? " " : "",
            cmd->usage, cmd->summary);
    if (cmd->help) {
        fprintf(f, "\nOptions:\n%s", cmd->help);
    }
    print_global_help(f, "Global options", "  -h, --help         show this help\n");
}

CliExit
cli_help(Cli *cli)
{
    print_command_help(cli->command, stdout);
    cli->help_shown = true;
    return CLI_EXIT_OK;
}

/* ---- messages */

/* A usage error of the command line as a whole (before the command, or a global option):
 * "Try 'vfio-migctl --help'." */
static CliExit
global_usage_error(const char *fmt, ...) _printf_(1, 2);

static CliExit
global_usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "vfio-migctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'vfio-migctl --help'.\n");
    return CLI_EXIT_USAGE;
}

CliExit
cli_usage_error(Cli *cli, const char *fmt, ...)
{
    const char *name = cli->command->name;
    va_list ap;

    fprintf(stderr, "vfio-migctl: %s: ", name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'vfio-migctl %s --help'.\n", name);
    return CLI_EXIT_USAGE;
}

CliExit
cli_fail(Cli *cli, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    output_verror(cli->command->name, fmt, ap);
    va_end(ap);
    return CLI_EXIT_FAILED;
}

CliExit
cli_exit_output(int r)
{
    return r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* ---- parsing */

/* @first (ending with {}, or NULL), then the global options, then {}: getopt_long's table. */
static void
options_table(const struct option *first, struct option table[static OPTIONS_MAX])
{
    size_t n = 0;

    for (const struct option *o = first; o && o->name; o++) {
        assert(n + ELEMENTSOF(global_options) + 1 < OPTIONS_MAX); /* raise OPTIONS_MAX */
        table[n++] = *o;
    }
    for (size_t i = 0; i < ELEMENTSOF(global_options); i++) {
        table[n++] = global_options[i];
    }
    table[n] = (struct option) {};
}

/* Applies one global option to @cli. Its errors are the command line's, wherever the option
 * stands. */
static CliExit
global_option(Cli *cli, int opt, const char *arg)
{
    double seconds;
    char *end;

    if (opt == CLI_OPT_JSON) {
        cli->json = true;
        return CLI_GO_ON;
    }
    if (opt == CLI_OPT_NO_HEADERS) {
        output_set_table_headers(false);
        return CLI_GO_ON;
    }
    if (opt == CLI_OPT_SOCKET) {
        if (!*arg) {
            return global_usage_error("--socket needs a path");
        }
        cli->socket_path = arg;
        return CLI_GO_ON;
    }
    errno = 0;
    seconds = strtod(arg, &end);
    if (errno || end == arg || *end || !(seconds >= 0 && seconds <= TIMEOUT_MAX_S)) {
        return global_usage_error("--timeout: '%s' is not a number of seconds (0 waits for ever)",
                                  arg);
    }
    cli->timeout_ms = (int) (seconds * 1000.0 + 0.5);
    /* A positive value never rounds down to "wait for ever". */
    if (seconds > 0 && cli->timeout_ms == 0) {
        cli->timeout_ms = 1;
    }
    return CLI_GO_ON;
}

/* One of @row's own options: stored as it is (CliStore), or parsed by the row. */
static CliExit
own_option(Cli *cli, const CliCommand *row, int opt, const char *arg, void *args)
{
    for (const CliStore *s = row->stores; s && s->opt; s++) {
        if (s->opt != opt) {
            continue;
        }
        assert(s->flag == !arg); /* a CLI_STORE_FLAG row for an option without argument */
        if (s->flag) {
            *(bool *) ((char *) args + s->offset) = true;
        } else {
            *(const char **) ((char *) args + s->offset) = arg;
        }
        return CLI_GO_ON;
    }
    return row->option(cli, opt, arg, args);
}

/* What getopt_long() returned (@c) among a command's arguments: --help, a mistake, a global
 * option, or one of @row's own. */
static CliExit
take_option(Cli *cli, const CliCommand *row, int c, char **argv, void *args)
{
    switch (c) {
    case 'h':
        return cli_help(cli);
    case ':':
        return cli_usage_error(cli, "option '%s' needs an argument", argv[optind - 1]);
    case '?':
        /* getopt sets optopt to the value of a long option given an argument it does not take
         * ("--wait=1"): a value above any character, or 'h' of --help. */
        if (optopt == 'h' || optopt >= CLI_OPT_JSON) {
            return cli_usage_error(cli, "option '%.*s' takes no argument",
                                   (int) strcspn(argv[optind - 1], "="), argv[optind - 1]);
        }
        if (optopt) {
            return cli_usage_error(cli, "invalid option '-%c'", optopt);
        }
        return cli_usage_error(cli, "unrecognized option '%s'", argv[optind - 1]);
    case CLI_OPT_JSON:
    case CLI_OPT_SOCKET:
    case CLI_OPT_TIMEOUT:
        return global_option(cli, c, optarg);
    default:
        return own_option(cli, row, c, optarg, args);
    }
}

/* The options of @row and the global ones, wherever they stand, then the count of the
 * positional arguments, which are left in cli->args. */
static CliExit
parse_arguments(Cli *cli, const CliCommand *row, int argc, char **argv, void *args)
{
    struct option table[OPTIONS_MAX];
    CliExit r = CLI_GO_ON;
    int c, n, index = 0;

    options_table(row->options, table);
    optind = 0; /* glibc starts over, at argv[1] */
    opterr = 0;
    while (r == CLI_GO_ON && (c = getopt_long(argc, argv, ":h", table, &index)) != -1) {
        /* An empty value is a mistake (a variable that expanded to nothing), never a request
         * for the default: leaving the option out asks for that. */
        if (optarg && !*optarg && c != ':' && c != '?') {
            return cli_usage_error(cli, "--%s: an empty value is refused; give a value, or leave "
                                   "the option out for its default", table[index].name);
        }
        r = take_option(cli, row, c, argv, args);
        index = 0;
    }
    if (r == CLI_GO_ON && row->options_done) {
        r = row->options_done(cli, args);
    }
    if (r != CLI_GO_ON) {
        return r;
    }
    n = argc - optind;
    if (n < row->min_args || n > row->max_args) {
        return cli_usage_error(cli, "%s; usage: vfio-migctl %s%s%s",
                               n < row->min_args ? "missing argument" : "too many arguments",
                               cli->command->name, *cli->command->usage ? " " : "",
                               cli->command->usage);
    }
    cli->args = argv + optind;
    cli->n_args = n;
    return CLI_GO_ON;
}

CliExit
cli_parse_state(Cli *cli, const char *name, VfioMigd__V1__DeviceState *ret)
{
    DeviceState s = fsm_state_from_name(name);
    char valid[256] = "";

    if (s >= 0) {
        *ret = (VfioMigd__V1__DeviceState) (s + 1); /* devices.proto: kernel value + 1 */
        return CLI_GO_ON;
    }
    for (int i = 0; i < _DEVICE_STATE_MAX; i++) {
        size_t used = strlen(valid);

        (void) snprintf(valid + used, sizeof(valid) - used, "%s%s", i ? ", " : "",
                        fsm_state_name((DeviceState) i));
    }
    return cli_usage_error(cli, "unknown state '%s'; valid states: %s (also the short forms run, "
                           "sc, res, rp2p, pc, pcp2p, err)", name, valid);
}

CliExit
cli_build_name(Cli *cli, void *args _unused_, void *req)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(((ProtobufCMessage *) req)->descriptor, 1);

    assert(f && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED);
    *(char **) ((char *) req + f->offset) = cli->args[0];
    return CLI_GO_ON;
}

CliExit
cli_require(Cli *cli, const char *option, const char *value)
{
    if (!value) {
        return cli_usage_error(cli, "%s is required; usage: vfio-migctl %s %s", option,
                               cli->command->name, cli->command->usage);
    }
    if (!*value) {
        return cli_usage_error(cli, "%s must not be empty", option);
    }
    return CLI_GO_ON;
}

/* ---- calls */

volatile sig_atomic_t cli_interrupted;

static void
on_interrupt(int sig _unused_)
{
    cli_interrupted = 1;
}

/* SIGINT and SIGTERM end every wait for the daemon (the client looks at the flag while it
 * waits), so that the command can say what goes on and exit 1, instead of dying silently
 * or, as gRPC retries interrupted waits, not at all. */
static void
catch_interrupts(void)
{
    struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESTART};

    (void) sigemptyset(&sa.sa_mask);
    (void) sigaction(SIGINT, &sa, NULL);
    (void) sigaction(SIGTERM, &sa, NULL);
}

/* Makes the client on the first call. */
static int
ensure_client(Cli *cli, RpcError *err)
{
    int r;

    if (cli->client) {
        return 0;
    }
    rpc_client_global_init();
    r = rpc_client_new(cli->socket_path, &cli->client);
    if (r < 0) {
        rpc_client_global_shutdown();
        (void) snprintf(err->message, sizeof(err->message),
                        "cannot set up a client for '%s': %s", cli->socket_path, strerror(-r));
        err->code = GRPC_STATUS_INTERNAL;
        return r;
    }
    rpc_client_set_interrupt(cli->client, &cli_interrupted);
    return 0;
}

/* Frees the client, if a call made one, and shuts gRPC down. */
static void
release_client(Cli *cli)
{
    if (cli->client) {
        rpc_client_free(cli->client);
        cli->client = NULL;
        rpc_client_global_shutdown();
    }
}

int
cli_call_raw(Cli *cli, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **ret_resp,
             RpcError *err)
{
    int r = ensure_client(cli, err);

    if (r < 0) {
        return r;
    }
    return rpc_client_call(cli->client, method, req, resp_desc, cli->timeout_ms, ret_resp, err);
}

int
cli_stream_open(Cli *cli, const char *method, const ProtobufCMessage *req, RpcStream **ret,
                RpcError *err)
{
    int r = ensure_client(cli, err);

    if (r < 0) {
        return r;
    }
    return rpc_client_stream_open(cli->client, method, req, cli->timeout_ms, ret, err);
}

CliExit
cli_report_call_error(Cli *cli, const RpcError *err, json_object *error_doc)
{
    if (!cli->json) {
        json_object_put(error_doc);
        error_doc = NULL;
    } else if (!error_doc) {
        error_doc = json_object_new_object();
    }
    output_call_error(cli->command->name, err, error_doc);
    return err->code == GRPC_STATUS_UNAVAILABLE ? CLI_EXIT_UNREACHABLE : CLI_EXIT_FAILED;
}

CliExit
cli_call(Cli *cli, const char *method, const ProtobufCMessage *req,
         const ProtobufCMessageDescriptor *resp_desc, json_object *error_doc,
         ProtobufCMessage **ret_resp)
{
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    ProtobufCMessage *resp = NULL;

    if (cli_call_raw(cli, method, req, resp_desc, &resp, &err) >= 0) {
        json_object_put(error_doc);
        *ret_resp = resp;
        return CLI_GO_ON;
    }
    if (resp) {
        protobuf_c_message_free_unpacked(resp, NULL); /* a partial result nobody asked for */
    }
    return cli_report_call_error(cli, &err, error_doc);
}

/* Whether @resp has its message field @name (a sub-message, NULL when the daemon left it
 * out). */
static bool
has_field(const ProtobufCMessage *resp, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(resp->descriptor, name);

    assert(f && f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED);
    return *(const void *const *) ((const char *) resp + f->offset) != NULL;
}

/* The answer of @call: checked, printed, and what it means for the exit status. */
static CliExit
print_answer(Cli *cli, const CliCall *call, const ProtobufCMessage *req,
             const ProtobufCMessage *resp)
{
    int r;

    if (call->required && !has_field(resp, call->required)) {
        return cli_fail(cli, "the daemon's answer has no %s", call->required);
    }
    if (cli->json) {
        r = output_json_print(call->json(req, resp));
    } else {
        r = call->text(req, resp);
    }
    if (r < 0) {
        return CLI_EXIT_FAILED;
    }
    return call->outcome ? call->outcome(resp) : CLI_EXIT_OK;
}

CliExit
cli_run_call(Cli *cli, const CliCall *call, void *args, json_object *error_doc)
{
    _cleanup_free_ ProtobufCMessage *req = calloc(1, call->request->sizeof_message);
    _cleanup_message_ ProtobufCMessage *resp = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    CliExit r;

    if (!req) {
        json_object_put(error_doc);
        return cli_fail(cli, "%s", strerror(ENOMEM));
    }
    call->request->message_init(req);
    r = call->build ? call->build(cli, args, req) : CLI_GO_ON;
    if (r != CLI_GO_ON) {
        json_object_put(error_doc);
        return r;
    }
    if (cli_call_raw(cli, call->method, req, call->response, &resp, &err) >= 0) {
        json_object_put(error_doc);
        return print_answer(cli, call, req, resp);
    }
    /* A failed call may say how far it got (a group transition rolled back): show that. */
    if (resp && call->partial_text && (!call->required || has_field(resp, call->required))) {
        if (cli->json) {
            json_object_put(error_doc);
            error_doc = call->json(req, resp);
        } else {
            (void) call->partial_text(req, resp);
        }
    }
    return cli_report_call_error(cli, &err, error_doc);
}

/* ---- commands */

CliExit
cli_run_command(Cli *cli, const CliCommand *row, int argc, char **argv)
{
    _cleanup_free_ void *args = NULL;
    CliExit r;

    if (row->dispatch) {
        return row->dispatch(cli, argc, argv);
    }
    if (row->args_size) {
        args = calloc(1, row->args_size);
        if (!args) {
            return cli_fail(cli, "%s", strerror(ENOMEM));
        }
    }
    r = parse_arguments(cli, row, argc, argv, args);
    if (r == CLI_GO_ON && row->call) {
        r = cli_run_call(cli, row->call, args, NULL);
    } else if (r == CLI_GO_ON) {
        r = row->run(cli, args);
    }
    if (args && row->args_done) {
        row->args_done(args);
    }
    return r;
}

/* The options before the command: CLI_GO_ON with the command at argv[optind], or the exit
 * status of --help, --version or a mistake. */
static CliExit
parse_global(Cli *cli, const CliCommand *const *commands, size_t n_commands, int argc,
             char **argv)
{
    static const struct option version[] = {
        {"version", no_argument, NULL, CLI_OPT_VERSION},
        {},
    };
    struct option table[OPTIONS_MAX];
    CliExit r = CLI_GO_ON;
    int c;

    options_table(version, table);
    opterr = 0;
    /* '+': stop at the command; its own options are its business. */
    while (r == CLI_GO_ON && (c = getopt_long(argc, argv, "+:h", table, NULL)) != -1) {
        if (c == 'h') {
            print_help(stdout, commands, n_commands);
            return CLI_EXIT_OK;
        }
        if (c == CLI_OPT_VERSION) {
            printf("vfio-migctl %s\n", VFIO_MIGD_VERSION);
            return CLI_EXIT_OK;
        }
        if (c == ':') {
            return global_usage_error("option '%s' needs an argument", argv[optind - 1]);
        }
        if (c == '?') {
            return global_usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
        r = global_option(cli, c, optarg);
    }
    if (r == CLI_GO_ON && optind >= argc) {
        return global_usage_error("no command given");
    }
    return r;
}

static const CliCommand *
find_command(const CliCommand *const *commands, size_t n_commands, const char *name)
{
    for (size_t i = 0; i < n_commands; i++) {
        if (strcmp(commands[i]->name, name) == 0) {
            return commands[i];
        }
    }
    return NULL;
}

/* `help [COMMAND [SUBCOMMAND]]` (argv[0] is "help"): the list of commands, or, by turning
 * the line into `COMMAND [SUBCOMMAND] --help` in place, exactly that command's help.
 * CLI_GO_ON with argv rewritten, or the exit status. */
static CliExit
help_command(const CliCommand *const *commands, size_t n_commands, int argc, char **argv)
{
    static char help_option[] = "--help";

    if (argc == 1) {
        print_help(stdout, commands, n_commands);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_command_help(&help_row, stdout);
        return CLI_EXIT_OK;
    }
    if (!find_command(commands, n_commands, argv[1])) {
        return global_usage_error("help: unknown command '%s'", argv[1]);
    }
    if (argc > 3) {
        return global_usage_error("help: too many arguments (help COMMAND [SUBCOMMAND])");
    }
    /* argv[0..argc-1] becomes COMMAND [SUBCOMMAND] --help: argc stays the same. */
    memmove(argv, argv + 1, (size_t) (argc - 1) * sizeof(*argv));
    argv[argc - 1] = help_option;
    return CLI_GO_ON;
}

int
cli_main(const CliCommand *const *commands, size_t n_commands, int argc, char **argv)
{
    const char *env = getenv("VFIO_MIGD_SOCKET");
    Cli cli = {
        .socket_path = env && *env ? env : RPC_DEFAULT_SOCKET,
        .timeout_ms = CLI_DEFAULT_TIMEOUT_MS,
    };
    CliExit r;

    /* A reader that went away (`| head`) makes a write fail with EPIPE, which the check at the
     * end reports (exit 1), instead of killing the CLI without a word (exit 141). */
    (void) signal(SIGPIPE, SIG_IGN);
    catch_interrupts();
    r = parse_global(&cli, commands, n_commands, argc, argv);
    if (r != CLI_GO_ON) {
        return r;
    }
    if (strcmp(argv[optind], "help") == 0) {
        r = help_command(commands, n_commands, argc - optind, argv + optind);
        if (r != CLI_GO_ON) {
            return r;
        }
    }
    cli.command = find_command(commands, n_commands, argv[optind]);
    if (!cli.command) {
        return global_usage_error("unknown command '%s'", argv[optind]);
    }

    r = cli_run_command(&cli, cli.command, argc - optind, argv + optind);
    assert(r >= CLI_EXIT_OK && r <= CLI_EXIT_UNREACHABLE); /* a row ended with CLI_GO_ON */
    release_client(&cli);
    /* A full disk or a closed pipe must not pass for success; a --help that could not be
     * written still exits 0, as it always has. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "vfio-migctl: %s: cannot write to stdout\n", cli.command->name);
        if (r == CLI_EXIT_OK && !cli.help_shown) {
            r = CLI_EXIT_FAILED;
        }
    }
    return r;
}
