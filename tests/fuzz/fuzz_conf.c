/* SPDX-License-Identifier: MIT */
/*
 * fuzz_conf — arbitrary bytes through the configuration parser (daemon/conf.c, libinih).
 *
 * The input is a configuration file. Besides "no crash, no out-of-bounds access" (ASan; the
 * input is an exactly sized heap copy, not NUL-terminated), it checks properties that must
 * hold for every input:
 *   - the problems listed are bounded (CONF_MAX_ERRORS) and each is a printable sentence;
 *   - a file with no problem, written back with conf_write() (--dump-config), reads back
 *     with no problem to the same configuration: what the daemon says it runs with is what
 *     it would run with;
 *   - the first input line, given as each key's command-line value, is accepted or refused
 *     without touching the configuration when refused.
 * A broken property aborts, which both libFuzzer and the replay main() report.
 *
 * Build with libFuzzer: cmake -DFUZZ=ON -DCMAKE_C_COMPILER=clang (target fuzz_conf). Built
 * without FUZZ_LIBFUZZER (target fuzz_conf_replay, run by ctest), main() runs each file given
 * as an argument once, or writes a seed corpus with --seeds DIR and runs it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_conf: property broken: %s\n", what);
        abort();
    }
}

static bool
same(const Config *a, const Config *b)
{
    return a->log_level == b->log_level && a->workers == b->workers &&
           strcmp(a->socket, b->socket) == 0 && a->socket_mode == b->socket_mode &&
           strcmp(a->socket_group, b->socket_group) == 0 && a->precopy == b->precopy &&
           a->max_precopy_ms == b->max_precopy_ms &&
           a->downtime_target_ms == b->downtime_target_ms &&
           a->bandwidth_limit == b->bandwidth_limit &&
           a->stopcopy_bandwidth_limit == b->stopcopy_bandwidth_limit &&
           a->migration_timeout_ms == b->migration_timeout_ms;
}

static void
check_errors(const ConfErrors *e)
{
    check(e->n <= CONF_MAX_ERRORS, "at most CONF_MAX_ERRORS problems are kept");
    for (size_t i = 0; i < e->n; i++) {
        const char *m = e->errors[i].message;

        check(memchr(m, '\0', sizeof(e->errors[i].message)) != NULL, "a message is terminated");
        check(*m != '\0', "a message says something");
        for (; *m; m++) {
            check(isprint((unsigned char) *m), "a message is printable");
        }
    }
}

static void
round_trip(const Config *c)
{
    static char text[CONF_MAX_FILE_SIZE];
    ConfErrors e = {.source = "dump"};
    Config back;
    FILE *f = fmemopen(text, sizeof(text), "w");
    size_t n;

    check(f != NULL, "fmemopen");
    conf_write(c, f, /* commented= */ false);
    n = (size_t) ftell(f);
    fclose(f);
    conf_defaults(&back);
    conf_parse(&back, text, n, &e);
    check(e.n == 0 && e.dropped == 0, "a written configuration reads back without a problem");
    check(same(c, &back), "a written configuration reads back the same");
}

static void
options_from_first_line(const uint8_t *data, size_t size)
{
    char value[256];
    size_t len = 0;

    while (len < size && len + 1 < sizeof(value) && data[len] != '\n') {
        len++;
    }
    memcpy(value, data, len);
    value[len] = '\0';
    for (ConfKeyId id = 0; id < _CONF_KEY_MAX; id++) {
        ConfErrors e = {0};
        Config c, before;

        conf_defaults(&c);
        before = c;
        if (conf_set_option(&c, id, value, &e) < 0) {
            check(e.n == 1, "a refused option is one problem");
            check(same(&c, &before), "a refused option changes nothing");
            check_errors(&e);
        } else {
            check(e.n == 0, "an accepted option is no problem");
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ConfErrors e = {.source = "fuzz"};
    Config c;

    if (size > CONF_MAX_FILE_SIZE) {
        return 0; /* conf_load_file() refuses these before parsing */
    }
    conf_defaults(&c);
    conf_parse(&c, (const char *) data, size, &e);
    check_errors(&e);
    if (e.n == 0 && e.dropped == 0) {
        round_trip(&c);
    }
    options_from_first_line(data, size);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
/* ---- replay and seeds, for builds without libFuzzer */

static const char *const seeds[] = {
    "",
    "[daemon]\nworkers = 8\nlog_level = debug\n",
    "[api]\nsocket = /run/x.sock\nsocket_mode = 0640\nsocket_group = kvm\n",
    "[migration]\nprecopy = no\nmax_precopy_ms = 1000\ndowntime_target_ms = 50\n"
    "bandwidth_limit = 100M/s\nstopcopy_bandwidth_limit = 1G\ntimeout_ms = 5000\n",
    "\xef\xbb\xbf[daemon]\r\nworkers=3\r\nlog_level : warning ; quieter\r\n",
    "workers = 4\n[deamon]\nworker = 4\n[api\nsocket_mode = 0666\n  socket = /x\n= 1\n",
    "[daemon]\nworkers = 4\nworkers = 5\n[migration]\nprecopy = perhaps\njunk line\n",
    /* found by the fuzzer: an unprintable key name in the continuation message */
    "socket_mod\xaa\xaa = 0666\n  4\n",
};

static int
run_file(const char *path)
{
    static uint8_t buf[CONF_MAX_FILE_SIZE + 1];
    FILE *f = fopen(path, "rb");
    size_t n;
    uint8_t *copy;

    if (!f) {
        fprintf(stderr, "fuzz_conf: %s: %s\n", path, strerror(errno));
        return 1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    copy = malloc(n ? n : 1); /* exactly sized, so ASan sees a read past the end */
    if (!copy) {
        return 1;
    }
    memcpy(copy, buf, n);
    (void) LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

static int
write_seeds(const char *dir)
{
    char path[4096];
    int rc = 0;

    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        FILE *f;

        (void) snprintf(path, sizeof(path), "%s/seed-%zu.conf", dir, i);
        f = fopen(path, "wb");
        if (!f || fwrite(seeds[i], 1, strlen(seeds[i]), f) != strlen(seeds[i])) {
            fprintf(stderr, "fuzz_conf: cannot write %s\n", path);
            return 1;
        }
        fclose(f);
        rc |= run_file(path);
    }
    return rc;
}

int
main(int argc, char **argv)
{
    int rc = 0;

    if (argc == 3 && strcmp(argv[1], "--seeds") == 0) {
        rc = write_seeds(argv[2]);
        printf("fuzz_conf: %zu seeds written to %s and run\n", sizeof(seeds) / sizeof(seeds[0]),
               argv[2]);
        return rc;
    }
    for (int i = 1; i < argc; i++) {
        rc |= run_file(argv[i]);
    }
    printf("fuzz_conf: %d inputs run\n", argc - 1);
    return rc;
}
#endif
