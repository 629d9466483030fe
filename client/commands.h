/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * commands — the vfio-migctl commands, one short function each: parse the command's own
 * arguments, build one request, make one call, print the answer (output.h). Nothing here
 * computes what the daemon knows: state and flag names are translated, paths are asked for.
 *
 * Used by:  main.c (command table, global options, exit statuses).
 * Uses:     rpc/client.h (the call), output.h (tables, JSON, errors), core/fsm.h (names).
 * Threads:  single-threaded.
 * Errors:   every command reports its own failure on stderr (and, with --json, as a JSON
 *           document on stdout) and returns 0 or a negative errno that main.c maps to the
 *           exit status:
 *             -ECANCELED    --help was printed (exit 0)
 *             -EINVAL       usage error, nothing was sent (exit 2)
 *             -EHOSTUNREACH the daemon cannot be reached (exit 3)
 *             other         the daemon answered with an error, or a local failure (exit 1)
 */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

#include "client.h"
#include "vfio_migd/v1/devices.pb-c.h"

/* Long-option values of the global options, above any character a command uses. */
enum {
    OPT_JSON = 0x100,
    OPT_SOCKET,
    OPT_TIMEOUT,
    OPT_VERSION,
    OPT_COMMAND_FIRST, /* commands number their own long-only options from here */
};

/* The global options, accepted before the command and again among its arguments; every
 * command's option table ends with these (then its {} terminator). */
#define COMMANDS_GLOBAL_OPTIONS                                                                    \
    {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, OPT_JSON},                       \
        {"socket", required_argument, NULL, OPT_SOCKET},                                           \
        {"timeout", required_argument, NULL, OPT_TIMEOUT}

/* 30 s: generous for any single-device request on the sim back-end and on real devices
 * with a few hundred MiB of state; longer saves and restores take --timeout. */
#define COMMANDS_DEFAULT_TIMEOUT_MS 30000

struct Command;

/* What every command gets: the global options and, once the first call is made, the client. */
typedef struct Cli {
    const char *socket_path;       /* --socket, $VFIO_MIGD_SOCKET or RPC_DEFAULT_SOCKET */
    bool json;                     /* --json: one JSON document on stdout */
    int timeout_ms;                /* --timeout; <= 0 waits for ever */
    const struct Command *command; /* the command being run: messages and --help */
    RpcClient *client;             /* made by the first call, freed by commands_done() */
} Cli;

/* @argv[0] is the command's name; options may appear anywhere among the arguments. */
typedef int (*command_fn)(Cli *cli, int argc, char **argv);

typedef struct Command {
    const char *name;
    const char *usage;   /* the arguments after the name, for "Usage:" lines */
    const char *summary; /* one line, for "vfio-migctl --help" */
    const char *options; /* the command's own option lines for "CMD --help", or NULL */
    command_fn run;
} Command;

/* Applies one global option (OPT_JSON, OPT_SOCKET, OPT_TIMEOUT) to @cli. 0, or -EINVAL
 * after reporting a bad value. */
int commands_global_option(Cli *cli, int opt, const char *arg);
/* Prints "Usage: ..." and the option lines of @cmd. */
void commands_print_help(const Command *cmd, FILE *f);
/* Frees the client, if a call made one, and shuts gRPC down. */
void commands_done(Cli *cli);

/* ---- helpers shared by the command files (commands.c, group_commands.c) ---- */

static inline void
message_freep(void *p)
{
    ProtobufCMessage **m = p;

    if (*m) {
        protobuf_c_message_free_unpacked(*m, NULL);
    }
}
#define _cleanup_message_ __attribute__((cleanup(message_freep)))

/* Reports a usage error of the current command; returns -EINVAL. */
int commands_usage_error(Cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* getopt_long over a command's argv; see commands.c. */
int commands_next_option(Cli *cli, int argc, char **argv, const struct option *opts);
void commands_parse_begin(void);
int commands_check_positional(Cli *cli, int argc, int min, int max);
/* For commands without options of their own: min..max positional arguments. */
int commands_parse_plain(Cli *cli, int argc, char **argv, int min, int max);
/* A state name as users type it, as the API's number (kernel value + 1). */
int commands_parse_state(Cli *cli, const char *name, VfioMigd__V1__DeviceState *ret);
/* The command's one call; on failure reports it (with --json: @error_doc plus "error" and
 * "code" on stdout) and returns a negative errno; takes @error_doc. */
int commands_call(Cli *cli, const char *method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *resp_desc, json_object *error_doc,
                  ProtobufCMessage **ret_resp);

/* The call alone, reporting nothing: for commands that print a failed call's partial result
 * (RPC_RESULT_TRAILER). *@ret_resp may be set on failure too. */
int commands_call_raw(Cli *cli, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **ret_resp,
                      RpcError *err);
/* Opens a server-streaming call (rpc_client_stream_open(), --timeout for the daemon to take
 * it), reporting nothing: commands_call_raw() rules. */
int commands_stream_open(Cli *cli, const char *method, const ProtobufCMessage *req,
                         RpcStream **ret, RpcError *err);
/* Reports a failed call as commands_call() does; takes @error_doc; returns the errno. */
int commands_report_call_error(Cli *cli, int r, const RpcError *err, json_object *error_doc);

int commands_devices(Cli *cli, int argc, char **argv);
int commands_attach(Cli *cli, int argc, char **argv);
int commands_detach(Cli *cli, int argc, char **argv);
int commands_show(Cli *cli, int argc, char **argv);
int commands_state(Cli *cli, int argc, char **argv);
int commands_path(Cli *cli, int argc, char **argv);
int commands_reset(Cli *cli, int argc, char **argv);
int commands_save(Cli *cli, int argc, char **argv);
int commands_restore(Cli *cli, int argc, char **argv);
int commands_health(Cli *cli, int argc, char **argv);
int commands_version(Cli *cli, int argc, char **argv);
int commands_group(Cli *cli, int argc, char **argv); /* group_commands.c */
int commands_region(Cli *cli, int argc, char **argv);
