/* SPDX-License-Identifier: MIT */
/*
 * vfio-migctl — the command-line client of vfio-migd. This file only wires: the global
 * options, the command table, dispatch, and the mapping from a command's result to the exit
 * status. Each command (commands.c) parses its own arguments, makes one call and prints;
 * nothing here or there computes what the daemon knows (CONVENTIONS 23).
 *
 * Exit statuses: 0 success; 1 the daemon answered with an error (or the call failed
 * locally); 2 usage error, nothing was sent; 3 the daemon cannot be reached.
 */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "migration_commands.h"
#include "util/macro.h"

enum {
    EXIT_STATUS_OK = 0,
    EXIT_STATUS_FAILED = 1,      /* the daemon said no, or the call failed */
    EXIT_STATUS_USAGE = 2,       /* bad command line; the daemon was not asked */
    EXIT_STATUS_UNREACHABLE = 3, /* no socket, nothing listening, or UNAVAILABLE */
};

static const Command command_table[] = {
    {"devices", "", "List the attached devices and their migration states", NULL,
     commands_devices},
    {"attach", "--sim OPTS [--model M] [--name NAME] | --pci BDF | --mdev UUID | --cdev PATH",
     "Attach a simulated or a VFIO device to the daemon",
     "  --sim OPTS     a simulated device with comma-separated key=value options,\n"
     "                 e.g. 'flags=stop_copy+p2p,size=4M,latency_ms=5' ('' for defaults)\n"
     "  --model M      the simulated device's model (default: generic)\n"
     "  --pci BDF      a VFIO PCI device, e.g. 0000:3b:00.2\n"
     "  --mdev UUID    a VFIO mediated device\n"
     "  --cdev PATH    a VFIO device cdev, e.g. /dev/vfio/devices/vfio0 (iommufd)\n"
     "  --name NAME    the device's id (default: chosen by the daemon, e.g. sim0)\n",
     commands_attach},
    {"detach", "ID", "Detach a device from the daemon", NULL, commands_detach},
    {"show", "ID", "Show one device: state, flags, counters, properties", NULL,
     commands_show},
    {"state", "ID [TARGET]",
     "Print a device's state, or move it to TARGET arc by arc",
     "  TARGET         running, stop, stop_copy, resuming, running_p2p, pre_copy,\n"
     "                 pre_copy_p2p (any case; short forms run, sc, res, rp2p, pc, pcp2p)\n",
     commands_state},
    {"path", "FROM TO [--flags FLAGS]",
     "Show the kernel's arcs from FROM to TO (no device needed)",
     "  --flags FLAGS  the device's migration flags, names joined by '+' from stop_copy,\n"
     "                 p2p, pre_copy, or a number (default: stop_copy+p2p+pre_copy)\n",
     commands_path},
    {"reset", "ID", "Reset a device: back to running, any data session ends",
     NULL, commands_reset},
    {"save", "NAME FILE [--resume] [--force] [--group|--device]",
     "Save a group's or a device's state to FILE on the daemon's host",
     "  NAME           a group, else a device (the daemon is asked for a group first)\n"
     "  --resume       return the devices to running after saving (default: stop)\n"
     "  --force        replace FILE if it exists\n"
     "  --group        NAME is a group: do not try a device\n"
     "  --device       NAME is a device: do not try a group\n"
     "  FILE           made absolute against the current directory\n",
     commands_save},
    {"restore", "NAME FILE [--stop] [--group|--device]",
     "Restore a group's or a device's state from a FILE written by save",
     "  NAME           a group, else a device (the daemon is asked for a group first)\n"
     "  --stop         leave the devices stopped instead of running\n"
     "  --group        NAME is a group: do not try a device\n"
     "  --device       NAME is a device: do not try a group\n"
     "  FILE           made absolute against the current directory\n",
     commands_restore},
    {"group",
     "create NAME ID... | delete NAME | show NAME | list | state NAME TARGET [--force]",
     "Manage groups: the devices of one VM, moved together P2P-safely",
     "  create NAME ID...     make a group of attached devices (each in one group at most)\n"
     "  delete NAME           delete a group; its devices stay attached\n"
     "  show NAME             devices, states and the last transition's timeline\n"
     "  list                  every group\n"
     "  state NAME TARGET     move every device to TARGET: to a P2P state first, barrier,\n"
     "                        then TARGET (and the reverse when resuming); rolls back on\n"
     "                        failure and prints where every device ended\n"
     "  --force               allow a group where some device lacks P2P (best-effort order)\n",
     commands_group},
    {"region", "read ID REGION OFFSET LENGTH | write ID REGION OFFSET HEXBYTES",
     "Read or write bytes of a device region (diagnostics)",
     "  read           print LENGTH (1-4096) bytes as hex, read as one access\n"
     "  write          write HEXBYTES (pairs of hex digits, e.g. 5a68) as one access\n"
     "  REGION         the VFIO region index (vfio-pci: 0-5 BARs, 7 config space)\n"
     "  OFFSET         bytes into the region; decimal, or hex after 0x\n"
     "                 Only while the device runs (running, pre_copy). A device register\n"
     "                 may act on every access: mtty's UART wants 1-byte accesses.\n",
     commands_region},
    {"incoming", "GROUP --listen ADDR [--resume] [--timeout-ms N]",
     "Prepare GROUP to receive a migration: listen, print the address and token",
     "  --listen ADDR      host:port to listen on (port 0: any free port), or unix:/path\n"
     "  --resume           resume the group (running) once the migration completed\n"
     "  --timeout-ms N     how long to wait for the source, in ms (0: the daemon's default)\n",
     commands_incoming},
    {"migrate",
     "GROUP --to ADDR --token T [--wait] [--precopy auto|off] [--switchover auto|manual] ...",
     "Migrate GROUP's device state to the daemon that ran 'incoming'",
     "  --to ADDR            the address 'incoming' printed (host:port or unix:/path)\n"
     "  --token T            the token 'incoming' printed (single use)\n"
     "  --precopy MODE       auto: pre-copy when every device can (default); off: none\n"
     "  --switchover MODE    auto: once pre-copy converged (default); manual: wait in\n"
     "                       phase ready for 'vfio-migctl switchover ID'\n"
     "  --max-precopy-ms N   longest pre-copy, in ms (0: the daemon's default)\n"
     "  --downtime-ms N      downtime target, in ms (0: the daemon's default)\n"
     "  --bandwidth RATE     bytes per second over all devices: 500000, 64K, 100M, 1G\n"
     "                       (binary multiples; a trailing /s is accepted; 0: the daemon's\n"
     "                       default, unlimited unless its configuration sets one)\n"
     "  --peer-timeout-ms N  longest wait for the peer, in ms (0: the daemon's default)\n"
     "  --wait               follow the migration to its end (progress line on a terminal);\n"
     "                       exit 0 only when it completed\n",
     commands_migrate},
    {"switchover", "ID", "Switch a migration waiting in phase ready over now", NULL,
     commands_switchover},
    {"cancel", "ID", "Cancel a migration: the source group keeps running", NULL,
     commands_cancel},
    {"jobs", "", "List the migrations, saves and restores (newest first)", NULL, commands_jobs},
    {"job", "ID", "Show one migration: phase, progress, timings, every device", NULL,
     commands_job},
    {"watch", "[ID]",
     "Follow one migration, or every active one, until it ends (the daemon's events)",
     "  ID             the migration to follow; without it, every active one\n"
     "                 Prints a line when the phase or state changes and a progress line\n"
     "                 at most once a second; exit 0 only when all completed.\n",
     commands_watch},
    {"health", "[SERVICE]",
     "Check the daemon's health (exit 0 only when SERVING)",
     "  SERVICE        '' (default: the whole daemon), vfio_migd.v1.DeviceService or\n"
     "                 vfio_migd.v1.SystemService\n",
     commands_health},
    {"version", "", "Print the client's and the daemon's versions",
     NULL, commands_version},
};

static void
print_help(FILE *f)
{
    fprintf(f, "Usage: vfio-migctl [OPTIONS] COMMAND [ARGS...]\n\n"
               "Controls vfio-migd, the VFIO device migration daemon, over its unix socket.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < ELEMENTSOF(command_table); i++) {
        fprintf(f, "  %-10s %s\n", command_table[i].name, command_table[i].summary);
    }
    fprintf(f, "\nOptions (also accepted after the command):\n"
               "  --socket PATH      the daemon's socket (default: $VFIO_MIGD_SOCKET or "
               RPC_DEFAULT_SOCKET ")\n"
               "  --json             print one JSON document on stdout\n"
               "  --timeout SECONDS  wait at most SECONDS for the daemon (default 30; 0: "
               "for ever)\n"
               "  -h, --help         show this help; 'COMMAND --help' shows a command's\n"
               "  --version          print this client's version and exit\n"
               "\nExit status: 0 success, 1 the daemon answered with an error, 2 usage error,\n"
               "3 the daemon cannot be reached.\n");
}

static int
usage_error(const char *fmt, ...) _printf_(1, 2);

static int
usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "vfio-migctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'vfio-migctl --help'.\n");
    return EXIT_STATUS_USAGE;
}

static const Command *
command_find(const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(command_table); i++) {
        if (strcmp(command_table[i].name, name) == 0) {
            return &command_table[i];
        }
    }
    return NULL;
}

/* Parses the options before the command. Returns -1 to go on with the command at optind,
 * else the exit status to leave with. */
static int
parse_global(Cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"version", no_argument, NULL, OPT_VERSION},
        COMMANDS_GLOBAL_OPTIONS,
        {},
    };
    int c;

    opterr = 0;
    /* '+': stop at the command; its own options are its business. */
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (c == 'h') {
            print_help(stdout);
            return EXIT_STATUS_OK;
        }
        if (c == OPT_VERSION) {
            printf("vfio-migctl %s\n", VFIO_MIGD_VERSION);
            return EXIT_STATUS_OK;
        }
        if (c == ':') {
            return usage_error("option '%s' needs an argument", argv[optind - 1]);
        }
        if (c == '?') {
            return usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
        if (commands_global_option(cli, c, optarg) < 0) {
            return EXIT_STATUS_USAGE;
        }
    }
    if (optind >= argc) {
        return usage_error("no command given");
    }
    return -1;
}

static int
exit_status(int r)
{
    if (r >= 0 || r == -ECANCELED) {
        return EXIT_STATUS_OK;
    }
    if (r == -EINVAL) {
        return EXIT_STATUS_USAGE;
    }
    if (r == -EHOSTUNREACH) {
        return EXIT_STATUS_UNREACHABLE;
    }
    return EXIT_STATUS_FAILED;
}

int
main(int argc, char **argv)
{
    const char *env = getenv("VFIO_MIGD_SOCKET");
    Cli cli = {
        .socket_path = env && *env ? env : RPC_DEFAULT_SOCKET,
        .timeout_ms = COMMANDS_DEFAULT_TIMEOUT_MS,
    };
    int r;

    r = parse_global(&cli, argc, argv);
    if (r >= 0) {
        return r;
    }
    cli.command = command_find(argv[optind]);
    if (!cli.command) {
        return usage_error("unknown command '%s'", argv[optind]);
    }

    r = cli.command->run(&cli, argc - optind, argv + optind);
    commands_done(&cli);
    /* A full disk or a closed pipe must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "vfio-migctl: %s: cannot write to stdout\n", cli.command->name);
        r = r < 0 ? r : -EIO;
    }
    return exit_status(r);
}
