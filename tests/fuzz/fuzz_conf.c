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
 * The driver, the builds and the corpus (tests/fuzz/corpus/fuzz_conf/): fuzz.h.
 */
#include "conf.h"
#include "fuzz.h"

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
           a->channels == b->channels &&
           a->migration_timeout_ms == b->migration_timeout_ms;
}

static void
check_errors(const ConfErrors *e)
{
    fuzz_check(e->n <= CONF_MAX_ERRORS, "at most CONF_MAX_ERRORS problems are kept");
    for (size_t i = 0; i < e->n; i++) {
        fuzz_check_message(e->errors[i].message, sizeof(e->errors[i].message));
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

    fuzz_check(f != NULL, "fmemopen");
    conf_write(c, f, /* commented= */ false);
    n = (size_t) ftell(f);
    fclose(f);
    conf_defaults(&back);
    conf_parse(&back, text, n, &e);
    fuzz_check(e.n == 0 && e.dropped == 0, "a written configuration reads back without a problem");
    fuzz_check(same(c, &back), "a written configuration reads back the same");
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
            fuzz_check(e.n == 1, "a refused option is one problem");
            fuzz_check(same(&c, &before), "a refused option changes nothing");
            check_errors(&e);
        } else {
            fuzz_check(e.n == 0, "an accepted option is no problem");
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
