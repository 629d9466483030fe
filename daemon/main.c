/* SPDX-License-Identifier: MIT */
/*
 * vfio-migd — main(): arguments, wiring, signals, loop; nothing else (systemd run() style).
 * The manager owns devices, rpc/server serves the API on the loop, sd_service talks to
 * systemd. SIGTERM/SIGINT stop the API (in-flight calls get a grace period), then the loop
 * ends when the last worker has finished.
 */
#include <getopt.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "dispatch.h"
#include "handlers/handlers.h"
#include "manager.h"
#include "migration.h"
#include "sd_service.h"
#include "server.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/strutil.h"
#include "worker.h"

#define DEFAULT_SOCKET "/run/vfio-migd/api.sock"
/* Each device operation holds a worker for its whole duration (arcs may take seconds on
 * real hardware), and a group moves all its devices at once: size the pool for that. */
#define DEFAULT_WORKERS 64

typedef struct Options {
    const char *socket_path;
    int workers;
} Options;

typedef struct Daemon {
    uv_loop_t *loop;
    RpcContext ctx;
    SdService *sd;
    uv_signal_t sigterm;
    uv_signal_t sigint;
} Daemon;

static void
usage(FILE *f)
{
    fprintf(f,
            "Usage: vfio-migd [OPTIONS]\n"
            "\n"
            "Owns VFIO devices and migrates their state (VFIO migration protocol v2).\n"
            "Serves the vfio_migd.v1 gRPC API on a unix socket; drive it with vfio-migctl.\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH      API socket (default %s)\n"
            "  -l, --log-level LEVEL  debug, info, notice, warning, error (default info)\n"
            "  -w, --workers N        worker threads for device operations (default %d)\n"
            "  -h, --help             show this help\n"
            "  -V, --version          show the version\n",
            DEFAULT_SOCKET, DEFAULT_WORKERS);
}

/* 0: run; 1: exit 0 (help/version); negative: usage error, already reported. */
static int
parse_args(int argc, char **argv, Options *o)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'}, {"log-level", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {0},
    };
    long long v;
    int c, level;

    while ((c = getopt_long(argc, argv, "s:l:w:hV", longopts, NULL)) >= 0) {
        switch (c) {
        case 's':
            o->socket_path = optarg;
            break;
        case 'l':
            level = log_level_from_string(optarg);
            if (level < 0) {
                fprintf(stderr, "vfio-migd: unknown log level '%s'\n", optarg);
                return -EINVAL;
            }
            log_set_max_level(level);
            break;
        case 'w':
            if (strutil_parse_int_bounded(optarg, 1, WORKER_MAX, &v) < 0) {
                fprintf(stderr, "vfio-migd: --workers takes a number from 1 to %d\n", WORKER_MAX);
                return -EINVAL;
            }
            o->workers = (int) v;
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

static void
on_server_done(void *userdata)
{
    Daemon *dm = userdata;

    log_info("API stopped.");
    sd_service_free(TAKE_PTR(dm->sd));
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
    /* A migration in flight rolls back (the source group returns to RUNNING) before exit. */
    migration_abort_all(dm->ctx.manager);
    rpc_server_shutdown(dm->ctx.server, on_server_done, dm);
    /* Still handled, but no longer keeping the loop alive: it ends with the last operation. */
    uv_unref((uv_handle_t *) &dm->sigterm);
    uv_unref((uv_handle_t *) &dm->sigint);
}

static int
daemon_start(Daemon *dm, const Options *o)
{
    RpcServerConfig cfg = {.socket_path = o->socket_path, .admit = rpc_dispatch_admit,
                           .userdata = &dm->ctx};
    char err[512] = "";
    int r;

    r = manager_new(dm->loop, &dm->ctx.manager);
    if (r < 0) {
        return log_error_errno(r, "Cannot create the device manager: %m");
    }
    cfg.methods = rpc_dispatch_table(&cfg.n_methods);
    r = rpc_server_new(dm->loop, &cfg, &dm->ctx.server, err, sizeof(err));
    if (r < 0) {
        return log_error_errno(r, "Cannot serve the API: %s", err[0] ? err : strerror(-r));
    }
    r = sd_service_new(dm->loop, &dm->sd);
    if (r < 0) {
        return log_error_errno(r, "Cannot set up the systemd notifications: %m");
    }
    (void) uv_signal_init(dm->loop, &dm->sigterm);
    (void) uv_signal_init(dm->loop, &dm->sigint);
    dm->sigterm.data = dm->sigint.data = dm;
    (void) uv_signal_start(&dm->sigterm, on_signal, SIGTERM);
    (void) uv_signal_start(&dm->sigint, on_signal, SIGINT);
    log_info("vfio-migd %s serving on '%s' (grpc core %s, %d workers).", VFIO_MIGD_VERSION,
             o->socket_path, grpc_version_string(), o->workers);
    sd_service_ready(dm->sd, "Serving");
    return 0;
}

int
main(int argc, char **argv)
{
    Options o = {.socket_path = DEFAULT_SOCKET, .workers = DEFAULT_WORKERS};
    Daemon dm = {0};
    int r;

    r = parse_args(argc, argv, &o);
    if (r != 0) {
        return r > 0 ? EXIT_SUCCESS : 2;
    }
    (void) signal(SIGPIPE, SIG_IGN);

    grpc_init();
    dm.loop = uv_default_loop();
    /* The workers exist before the API is served, so that no device operation, the first
     * group transition included, waits for them to be made. */
    r = worker_pool_start(dm.loop, (unsigned) o.workers);
    if (r < 0) {
        (void) log_warning_errno(r, "Cannot start the %d workers now, they start with the "
                                 "first device operation, ignoring: %m", o.workers);
    }
    r = daemon_start(&dm, &o);
    if (r >= 0) {
        (void) uv_run(dm.loop, UV_RUN_DEFAULT);
    }
    rpc_server_free(dm.ctx.server);
    manager_free(dm.ctx.manager);
    sd_service_free(dm.sd);
    if (r >= 0) {
        uv_close((uv_handle_t *) &dm.sigterm, NULL);
        uv_close((uv_handle_t *) &dm.sigint, NULL);
        (void) uv_run(dm.loop, UV_RUN_DEFAULT); /* close callbacks of the freed handles */
    }
    (void) uv_loop_close(dm.loop);
    grpc_shutdown();
    return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
