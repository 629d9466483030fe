/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * cli — the frame every vfio-migctl command runs in: the global options (--socket,
 * $VFIO_MIGD_SOCKET, --json, --timeout, --help, --version), the command table's row type,
 * parsing a command's own options and positional arguments, the call to the daemon, and the
 * exit status. Nothing here knows a command; the command files (device_commands.c,
 * group_commands.c, migration_commands.c, save_commands.c, system_commands.c) each export
 * their rows, and main.c puts them in order.
 *
 * A command is a row (CliCommand): its name and help texts, its own options, and either one
 * unary call (CliCall: a request builder and the answer's JSON and text forms), which cli.c
 * makes and prints, or a run function for a command that does more than that (follows a
 * migration, picks one of two calls). Either way cli.c has parsed the arguments first, so a
 * command never sees getopt.
 *
 * Used by:  main.c (cli_main), every *_commands.c, follow.c.
 * Uses:     rpc/client.h (the calls), output.h (the error format, JSON).
 * Threads:  single-threaded.
 * Errors:   a command's result is a CliExit, decided where the failure is known (a usage
 *           error, an answer, a daemon that cannot be reached), never derived from an errno.
 *           Helpers below the commands (output.h, the parsers) return negative errnos.
 */

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "client.h"
#include "util/macro.h"
#include "vfio_migd/v1/devices.pb-c.h"

/* The exit statuses of vfio-migctl (docs/cli.md, "Exit status"). */
typedef enum CliExit {
    CLI_EXIT_OK = 0,          /* success; also --help */
    CLI_EXIT_FAILED = 1,      /* the daemon answered with an error, or a local failure */
    CLI_EXIT_USAGE = 2,       /* bad command line; nothing was sent to the daemon */
    CLI_EXIT_UNREACHABLE = 3, /* no socket, nothing listening, or UNAVAILABLE */
    /* Not an exit status: a step (parsing, building a request) worked, the command goes on.
     * Every step returns either this or the status to exit with. */
    CLI_GO_ON = -1,
} CliExit;

/* Long-option values of the global options, above any character a command uses. */
enum {
    CLI_OPT_JSON = 0x100,
    CLI_OPT_SOCKET,
    CLI_OPT_TIMEOUT,
    CLI_OPT_VERSION,
    CLI_OPT_NO_HEADERS,
    CLI_OPT_COMMAND_FIRST, /* commands number their own long-only options from here */
};

/* 30 s: generous for any single-device request on the sim back-end and on real devices
 * with a few hundred MiB of state; longer saves and restores take --timeout. */
#define CLI_DEFAULT_TIMEOUT_MS 30000

typedef struct CliCommand CliCommand;

/* What every command gets: the global options, its positional arguments and, once the first
 * call is made, the client. */
typedef struct Cli {
    const char *socket_path;    /* --socket, $VFIO_MIGD_SOCKET or RPC_DEFAULT_SOCKET */
    bool json;                  /* --json: one JSON document on stdout */
    int timeout_ms;             /* --timeout; <= 0 waits for ever */
    const CliCommand *command;  /* the command being run: its name in messages, its --help */
    char **args;                /* the positional arguments, after the options */
    int n_args;
    bool help_shown;            /* "COMMAND --help" was printed */
    RpcClient *client;          /* made by the first call, freed by cli_main() */
} Cli;

/* The method and message types of a CliCall of vfio_migd.v1's @service, e.g.
 * CLI_METHOD("DeviceService", GetDevice, get_device_request, get_device_response). */
#define CLI_METHOD(service, method_, request_, response_)                                          \
    .method = "/vfio_migd.v1." service "/" #method_,                                               \
    .request = &vfio_migd__v1__##request_##__descriptor,                                           \
    .response = &vfio_migd__v1__##response_##__descriptor

/* The usual CLI_METHOD: the messages are named after the method (@snake_, its name in snake
 * case, as in the generated descriptors): CLI_METHOD_OF("GroupService", GetGroup, get_group). */
#define CLI_METHOD_OF(service, method_, snake_)                                                    \
    CLI_METHOD(service, method_, snake_##_request, snake_##_response)

/* A CliCall as one row, as the daemon's method tables are (METHOD() in rpc/handlers/): the
 * method (CLI_METHOD...), the request builder, the required field, the JSON and text printers
 * (NULL where a CliCall's field may be), then any other field by name (.outcome = ...). */
#define CLI_CALL(method_, build_, required_, json_, text_, ...)                                    \
    {                                                                                              \
        method_, .build = (build_), .required = (required_), .json = (json_), .text = (text_),     \
        __VA_ARGS__                                                                                \
    }

/* A row of the command table (CliCommand) as the daemon's method rows are written: what every
 * command has first (its name, the arguments for "Usage:" lines, the one-line summary, the
 * least and the most positional arguments), then its other fields by name (.help, .options,
 * .call, .run, ...). */
#define CLI_COMMAND(name_, usage_, summary_, min_args_, max_args_, ...)                            \
    {                                                                                              \
        .name = (name_), .usage = (usage_), .summary = (summary_), .min_args = (min_args_),        \
        .max_args = (max_args_), __VA_ARGS__                                                       \
    }

/* A command row that takes one ID and makes the call (a const CliCall *, the rest of the
 * arguments: a compound literal has commas) with it: the "one call by id" commands, detach,
 * show, switchover, cancel, job, irqs and describe. */
#define CLI_BY_ID_COMMAND(name_, summary_, ...)                                                    \
    CLI_COMMAND(name_, "ID", summary_, 1, 1, .call = __VA_ARGS__)

/*
 * One unary call and how its answer is printed. @req and @resp are messages of the
 * descriptors' types; @args is what the command's options were parsed into (NULL when it
 * has none).
 */
typedef struct CliCall {
    const char *method; /* "/vfio_migd.v1.DeviceService/GetDevice" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    /* Fills @req (a message of the request's type) from cli->args and @args; CLI_GO_ON, or
     * CLI_EXIT_USAGE after cli_usage_error(). The strings may point into argv or @args: @req
     * is freed shallowly. NULL: the request has no fields. */
    CliExit (*build)(Cli *cli, void *args, void *req);
    /* The field of the answer that a well-formed one always has ("device"), or NULL. Without
     * it the answer is refused: "the daemon's answer has no device". */
    const char *required;
    /* The answer as the JSON document (--json) and as text; @req and @resp are messages of
     * the two types. */
    json_object *(*json)(const void *req, const void *resp);
    int (*text)(const void *req, const void *resp);
    /* The exit status of a printed answer (health: anything but SERVING is 1). NULL: 0. */
    CliExit (*outcome)(const void *resp);
    /* When set, a failed call's partial result (RPC_RESULT_TRAILER, with the required field)
     * is printed before the error: as this text, or as the JSON document with "error" and
     * "code" added. NULL: a partial result is not shown. */
    int (*partial_text)(const void *req, const void *resp);
} CliCall;

/*
 * An own option whose argument needs no parsing, stored as it is in the command's args: a
 * string option's argument in a const char * field, or true in a bool field for an option
 * without one. cli.c does that; CliCommand.option gets only the other options.
 */
typedef struct CliStore {
    int opt;       /* the option's value in CliCommand.options; 0 ends a table */
    bool flag;     /* no argument: store true */
    size_t offset; /* of the field in the command's args */
} CliStore;

/* CliStore rows for @field of the args struct @Args, whose type is checked when compiled. */
#define CLI_STORE_STRING(opt_, Args, field)                                                        \
    {.opt = (opt_), .offset = CLI_STORE_OFFSET_(Args, field, const char *)}
#define CLI_STORE_FLAG(opt_, Args, field)                                                          \
    {.opt = (opt_), .flag = true, .offset = CLI_STORE_OFFSET_(Args, field, bool)}
#define CLI_STORE_OFFSET_(Args, field, type)                                                       \
    (offsetof(Args, field) +                                                                       \
     0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((Args *) 0)->field), type) ? 1 : -1]))

/*
 * A row of the command table. cli.c parses the arguments (own options, the global ones, then
 * min_args..max_args positional ones) and then makes @call or runs @run.
 */
struct CliCommand {
    const char *name;
    const char *usage;   /* the arguments after the name, for "Usage:" lines */
    const char *summary; /* one line, for "vfio-migctl --help" */
    const char *help;    /* the command's own option lines for "COMMAND --help", or NULL */
    int min_args, max_args;
    /* The command's own options, ending with {} (cli.c adds the global ones), or NULL. Each
     * is handed to @option with a zeroed struct of @args_size bytes to parse it into. */
    const struct option *options;
    size_t args_size;
    /* Those of the options that are only stored, ending with {}, or NULL. */
    const CliStore *stores;
    /* Parses every other own option (NULL when there is none). */
    CliExit (*option)(Cli *cli, int opt, const char *arg, void *args);
    /* After the options, before the positional arguments are counted: checks that involve
     * several options (attach: exactly one source). NULL: none. */
    CliExit (*options_done)(Cli *cli, void *args);
    const CliCall *call;
    CliExit (*run)(Cli *cli, void *args);
    /* Frees what the option parser or the request builder allocated in @args (the struct
     * itself is cli.c's). NULL: nothing to free. */
    void (*args_done)(void *args);
    /* Instead of all the above: a command of subcommands (group) gets argv as it is, with
     * argv[0] its own name, and picks a row to cli_run_command(). */
    CliExit (*dispatch)(Cli *cli, int argc, char **argv);
};

/* Set by the SIGINT/SIGTERM handler that cli_main() installs: every call to the daemon then
 * ends at once (rpc_client_set_interrupt()) with code CANCELLED, reported as "interrupted"
 * (exit 1); follow.c says instead what goes on. */
extern volatile sig_atomic_t cli_interrupted;

/* vfio-migctl's main(): the global options, the command among @commands, the exit status. */
int cli_main(const CliCommand *const *commands, size_t n_commands, int argc, char **argv);

/* Parses @argv (argv[0] is the command's or subcommand's name) as @row says and runs it.
 * Messages and --help are about cli->command, which may be @row's parent. */
CliExit cli_run_command(Cli *cli, const CliCommand *row, int argc, char **argv);

/* Makes @call with the request built from @args and prints the answer; on failure reports it
 * (with --json: @error_doc, or a new object, plus "error" and "code"). Takes @error_doc. */
CliExit cli_run_call(Cli *cli, const CliCall *call, void *args, json_object *error_doc);

/* ---- messages */

/* "COMMAND --help" for cli->command on stdout; returns CLI_EXIT_OK. */
CliExit cli_help(Cli *cli);
/* "vfio-migctl: COMMAND: <what>" and "Try 'vfio-migctl COMMAND --help'." on stderr. */
CliExit cli_usage_error(Cli *cli, const char *fmt, ...) _printf_(2, 3);
/* "vfio-migctl: COMMAND: <what>" on stderr, for a failure of this side (exit 1). */
CliExit cli_fail(Cli *cli, const char *fmt, ...) _printf_(2, 3);
/* CLI_EXIT_OK after output that worked (0), CLI_EXIT_FAILED after output that did not (a
 * negative errno from output.h: out of memory, stdout not writable). */
CliExit cli_exit_output(int r);

/* ---- parsing helpers for builders and options */

/* A state name as users type it (fsm_state_from_name), as the protocol's number (kernel
 * value + 1). CLI_GO_ON, or a usage error that lists the valid names. */
CliExit cli_parse_state(Cli *cli, const char *name, VfioMigd__V1__DeviceState *ret);
/* A CliCall.build for the many requests that are one name: the request's field 1 (a string,
 * its "id" or "name") is the first positional argument. */
CliExit cli_build_name(Cli *cli, void *args, void *req);
/* A required option's value: given and not empty. */
CliExit cli_require(Cli *cli, const char *option, const char *value);

/* ---- calls, for commands that do more than one CliCall */

/* The call alone, reporting nothing (rpc_client_call() rules): 0, or a negative errno with
 * @err filled. *@ret_resp may be set on failure too (a partial result). */
int cli_call_raw(Cli *cli, const char *method, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **ret_resp,
                 RpcError *err);
/* The call; on failure reported as cli_report_call_error() does. CLI_GO_ON and *@ret_resp,
 * or the exit status. Takes @error_doc. */
CliExit cli_call(Cli *cli, const char *method, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *resp_desc, json_object *error_doc,
                 ProtobufCMessage **ret_resp);
/* Opens a server-streaming call (rpc_client_stream_open(), --timeout for the daemon to take
 * it), reporting nothing: cli_call_raw() rules. */
int cli_stream_open(Cli *cli, const char *method, const ProtobufCMessage *req, RpcStream **ret,
                    RpcError *err);
/* A failed call: "vfio-migctl: COMMAND: <message> (<STATUS>)" on stderr and, with --json,
 * @error_doc (or a new object) plus "error" and "code" on stdout. Takes @error_doc. Returns
 * CLI_EXIT_UNREACHABLE for UNAVAILABLE, else CLI_EXIT_FAILED. */
CliExit cli_report_call_error(Cli *cli, const RpcError *err, json_object *error_doc);

/* ---- messages owned by the caller */

static inline void
cli_message_freep(void *p)
{
    ProtobufCMessage **m = p;

    if (*m) {
        protobuf_c_message_free_unpacked(*m, NULL);
    }
}
#define _cleanup_message_ __attribute__((cleanup(cli_message_freep)))
