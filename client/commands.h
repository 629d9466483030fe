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

#include "client.h"

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
