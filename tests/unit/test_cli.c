/* SPDX-License-Identifier: MIT */
/*
 * test_cli — unit tests for client/cli.c, the frame every vfio-migctl command runs in: how a
 * row's own options, the global ones and the positional arguments are parsed, in which order
 * the steps run and stop, which exit status each outcome is, and cli_build_name(). The rows
 * here are made up for the test; no daemon is started: a call goes to a socket path where
 * nothing listens. What the real commands print is the integration tests' business
 * (tests/integration/test_cli.sh and the others drive the real binary).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vfio_migd/v1/devices.pb-c.h"
#include "vfio_migd/v1/groups.pb-c.h"

static void
quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

/* Every test runs in its own process (criterion's default), so getopt's globals and the
 * counters below start fresh each time. */
TestSuite(cli, .init = quiet, .timeout = 20);

enum {
    OPT_FLAG = CLI_OPT_COMMAND_FIRST,
    OPT_VALUE,
    OPT_QUIET,
};

typedef struct Args {
    int n_flags;            /* --flag, counted by take_option() */
    const char *value;      /* --value, stored by cli.c (CliStore) */
    bool quiet;             /* --quiet, stored by cli.c */
    int n_other;            /* options take_option() saw that are not --flag */
    int options_done_calls; /* options seen when options_done ran, -1: it did not */
} Args;

/* What the steps of the test row saw. */
static struct {
    int runs;
    int n_args;
    char first_arg[32];
    Args args;
} seen = {.args.options_done_calls = -1};

static CliExit
take_option(Cli *cli _unused_, int opt, const char *arg _unused_, void *args)
{
    Args *a = args;

    if (opt == OPT_FLAG) {
        a->n_flags++;
    } else {
        a->n_other++; /* a stored option must never get here */
    }
    return CLI_GO_ON;
}

static int options_done_calls;

static CliExit
options_done(Cli *cli, void *args)
{
    Args *a = args;

    options_done_calls++;
    a->options_done_calls = a->n_flags;
    /* A check across options, like attach's "exactly one source". */
    return a->value && strcmp(a->value, "refuse") == 0 ? cli_usage_error(cli, "refused")
                                                       : CLI_GO_ON;
}

static CliExit
run(Cli *cli, void *args)
{
    seen.runs++;
    seen.n_args = cli->n_args;
    if (cli->n_args) {
        (void) snprintf(seen.first_arg, sizeof(seen.first_arg), "%s", cli->args[0]);
    }
    seen.args = *(Args *) args;
    return CLI_EXIT_OK;
}

/* --value and --quiet are stored by cli.c; --flag goes to take_option(). */
static const CliStore stores[] = {
    CLI_STORE_STRING(OPT_VALUE, Args, value),
    CLI_STORE_FLAG(OPT_QUIET, Args, quiet),
    {},
};

static const CliCommand row = {
    .name = "test",
    .usage = "A [B]",
    .summary = "A command for the test",
    .min_args = 1,
    .max_args = 2,
    .options = (const struct option[]) {
        {"flag", no_argument, NULL, OPT_FLAG},
        {"value", required_argument, NULL, OPT_VALUE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {},
    },
    .args_size = sizeof(Args),
    .stores = stores,
    .option = take_option,
    .options_done = options_done,
    .run = run,
};

/* A Cli as cli_main() makes one, for @row, on a socket where nothing listens. */
#define TEST_CLI(row_)                                                                             \
    ((Cli) {.socket_path = "/nonexistent/vfio-migd-test.sock",                                     \
            .timeout_ms = CLI_DEFAULT_TIMEOUT_MS, .command = (row_)})

static CliExit
run_row(Cli *cli, const CliCommand *r, char **argv)
{
    int argc = 0;

    while (argv[argc]) {
        argc++;
    }
    return cli_run_command(cli, r, argc, argv);
}

/* Each of @cases is a usage error, and the command never runs. */
static void
expect_usage_errors(char **const *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Cli cli = TEST_CLI(&row);

        cr_expect_eq(run_row(&cli, &row, cases[i]), CLI_EXIT_USAGE, "case %zu", i);
    }
    cr_expect_eq(seen.runs, 0);
}

#define ARGV(...) ((char *[]) {__VA_ARGS__, NULL})

/* ---- parsing */

Test(cli, own_and_global_options_anywhere)
{
    Cli cli = TEST_CLI(&row);

    cr_assert_eq(run_row(&cli, &row,
                         ARGV("test", "--flag", "one", "--json", "--value", "v", "--flag",
                              "--socket", "/x.sock", "two", "--timeout", "1.5")),
                 CLI_EXIT_OK);
    cr_assert_eq(seen.runs, 1);
    cr_expect_eq(seen.args.n_flags, 2);
    cr_expect_str_eq(seen.args.value, "v");
    cr_expect_not(seen.args.quiet, "left out: not set");
    cr_expect_eq(seen.args.n_other, 0, "stored options are not the row's to parse");
    cr_expect_eq(seen.n_args, 2);
    cr_expect_str_eq(seen.first_arg, "one");
    cr_expect(cli.json);
    cr_expect_str_eq(cli.socket_path, "/x.sock");
    cr_expect_eq(cli.timeout_ms, 1500);
    cr_expect_null(cli.client, "no call was made");
}

Test(cli, stored_options)
{
    Cli cli = TEST_CLI(&row);

    cr_assert_eq(run_row(&cli, &row, ARGV("test", "--quiet", "a", "--value=w", "--flag")),
                 CLI_EXIT_OK);
    cr_expect(seen.args.quiet);
    cr_expect_str_eq(seen.args.value, "w");
    cr_expect_eq(seen.args.n_flags, 1);
    cr_expect_eq(seen.args.n_other, 0);
}

Test(cli, options_done_runs_after_every_option)
{
    Cli cli = TEST_CLI(&row);

    cr_assert_eq(run_row(&cli, &row, ARGV("test", "--flag", "a", "--flag", "--flag")),
                 CLI_EXIT_OK);
    cr_expect_eq(seen.args.options_done_calls, 3);
}

Test(cli, options_done_comes_before_the_count_of_arguments)
{
    Cli cli = TEST_CLI(&row);

    /* Too many arguments and a refused option combination: the option check speaks first. */
    cr_assert_eq(run_row(&cli, &row, ARGV("test", "--value", "refuse", "a", "b", "c")),
                 CLI_EXIT_USAGE);
    cr_expect_eq(options_done_calls, 1);
    cr_expect_eq(seen.runs, 0);
}

Test(cli, positional_counts)
{
    char **const cases[] = {
        ARGV("test"),               /* missing */
        ARGV("test", "a", "b", "c"), /* too many */
    };

    expect_usage_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(cli, mistakes_are_usage_errors)
{
    char **const cases[] = {
        ARGV("test", "a", "--bogus"),     ARGV("test", "a", "-z"),
        ARGV("test", "a", "--value"),     ARGV("test", "a", "--flag=1"),
        ARGV("test", "a", "--json=1"),    ARGV("test", "a", "--timeout", "abc"),
        ARGV("test", "a", "--timeout", "-1"), ARGV("test", "a", "--timeout", "3000000"),
        ARGV("test", "a", "--socket", ""),
    };

    expect_usage_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(cli, help_wins_wherever_it_stands)
{
    char **const cases[] = {
        ARGV("test", "--help"),
        ARGV("test", "a", "b", "c", "-h"), /* before the arguments are counted */
        ARGV("test", "--flag", "--help", "--bogus"),
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Cli cli = TEST_CLI(&row);

        cr_expect_eq(run_row(&cli, &row, cases[i]), CLI_EXIT_OK, "case %zu", i);
        cr_expect(cli.help_shown, "case %zu", i);
    }
    cr_expect_eq(seen.runs, 0);
}

Test(cli, timeout_never_rounds_down_to_for_ever)
{
    Cli cli = TEST_CLI(&row);

    cr_assert_eq(run_row(&cli, &row, ARGV("test", "a", "--timeout", "0.0001")), CLI_EXIT_OK);
    cr_expect_eq(cli.timeout_ms, 1);
    cli = TEST_CLI(&row);
    cr_assert_eq(run_row(&cli, &row, ARGV("test", "a", "--timeout=0")), CLI_EXIT_OK);
    cr_expect_eq(cli.timeout_ms, 0);
}

/* ---- a command of subcommands */

static int dispatched_argc = -1;

static CliExit
dispatch(Cli *cli _unused_, int argc, char **argv _unused_)
{
    dispatched_argc = argc;
    return CLI_EXIT_FAILED;
}

Test(cli, dispatch_gets_argv_as_it_is)
{
    static const CliCommand parent = {.name = "parent", .usage = "", .dispatch = dispatch};
    Cli cli = TEST_CLI(&parent);

    cr_expect_eq(run_row(&cli, &parent, ARGV("parent", "--help", "--bogus")), CLI_EXIT_FAILED);
    cr_expect_eq(dispatched_argc, 3);
    cr_expect_not(cli.help_shown);
}

/* ---- calls */

static int builds, prints;

static CliExit
build_refuses(Cli *cli, void *args _unused_, void *req _unused_)
{
    builds++;
    return cli_usage_error(cli, "no");
}

static json_object *
never_json(const void *req _unused_, const void *resp _unused_)
{
    prints++;
    return NULL;
}

static int
never_text(const void *req _unused_, const void *resp _unused_)
{
    prints++;
    return 0;
}

Test(cli, a_refused_request_is_never_sent)
{
    static const CliCall call = {
        CLI_METHOD("DeviceService", GetDevice, get_device_request, get_device_response),
        .build = build_refuses,
        .json = never_json,
        .text = never_text,
    };
    static const CliCommand r = {.name = "get", .usage = "", .call = &call};
    Cli cli = TEST_CLI(&r);

    cr_expect_eq(run_row(&cli, &r, ARGV("get")), CLI_EXIT_USAGE);
    cr_expect_eq(builds, 1);
    cr_expect_eq(prints, 0);
    cr_expect_null(cli.client, "no client was made, nothing was sent");
}

Test(cli, call_errors_map_to_exit_statuses)
{
    Cli cli = TEST_CLI(&row);
    RpcError unavailable = {.code = GRPC_STATUS_UNAVAILABLE, .message = "gone"};
    RpcError not_found = {.code = GRPC_STATUS_NOT_FOUND, .message = "no such device"};
    RpcError deadline = {.code = GRPC_STATUS_DEADLINE_EXCEEDED, .message = "too slow"};

    cr_expect_eq(cli_report_call_error(&cli, &unavailable, NULL), CLI_EXIT_UNREACHABLE);
    cr_expect_eq(cli_report_call_error(&cli, &not_found, NULL), CLI_EXIT_FAILED);
    cr_expect_eq(cli_report_call_error(&cli, &deadline, NULL), CLI_EXIT_FAILED);
}

Test(cli, build_name_fills_field_one)
{
    Cli cli = TEST_CLI(&row);
    VfioMigd__V1__GetDeviceRequest get = VFIO_MIGD__V1__GET_DEVICE_REQUEST__INIT;
    VfioMigd__V1__DeleteGroupRequest del = VFIO_MIGD__V1__DELETE_GROUP_REQUEST__INIT;
    char *args[] = {"dev0"};

    cli.args = args;
    cli.n_args = 1;
    cr_assert_eq(cli_build_name(&cli, NULL, &get), CLI_GO_ON);
    cr_expect_str_eq(get.id, "dev0");
    cr_assert_eq(cli_build_name(&cli, NULL, &del), CLI_GO_ON);
    cr_expect_str_eq(del.name, "dev0");
}

/* ---- cli_main */

static CliExit
main_of(char **argv)
{
    static const CliCall get_call = {
        CLI_METHOD("DeviceService", GetDevice, get_device_request, get_device_response),
        .build = cli_build_name,
        .json = never_json,
        .text = never_text,
    };
    static const CliCommand get = {.name = "get", .usage = "ID", .min_args = 1, .max_args = 1,
                                   .call = &get_call};
    static const CliCommand *const table[] = {&row, &get};
    int argc = 0;

    while (argv[argc]) {
        argc++;
    }
    optind = 0; /* a fresh getopt for every invocation in this process */
    return (CliExit) cli_main(table, 2, argc, argv);
}

Test(cli, main_before_the_command)
{
    cr_expect_eq(main_of(ARGV("vfio-migctl")), CLI_EXIT_USAGE, "no command");
    cr_expect_eq(main_of(ARGV("vfio-migctl", "frob")), CLI_EXIT_USAGE, "unknown command");
    cr_expect_eq(main_of(ARGV("vfio-migctl", "--bogus", "test")), CLI_EXIT_USAGE);
    cr_expect_eq(main_of(ARGV("vfio-migctl", "--timeout", "x", "test")), CLI_EXIT_USAGE);
    cr_expect_eq(main_of(ARGV("vfio-migctl", "--version")), CLI_EXIT_OK);
    cr_expect_eq(main_of(ARGV("vfio-migctl", "--help", "frob")), CLI_EXIT_OK);
    cr_expect_eq(seen.runs, 0);
    cr_expect_eq(main_of(ARGV("vfio-migctl", "--json", "test", "a")), CLI_EXIT_OK);
    cr_expect_eq(seen.runs, 1);
}

Test(cli, an_unreachable_daemon_is_exit_3)
{
    cr_expect_eq(main_of(ARGV("vfio-migctl", "--socket", "/nonexistent/vfio-migd-test.sock",
                              "get", "dev0")),
                 CLI_EXIT_UNREACHABLE);
    cr_expect_eq(prints, 0);
}
