/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * fuzz — what every fuzz target shares (tests/fuzz/replay.c). A target is one file that
 * defines LLVMFuzzerTestOneInput() and checks its properties with fuzz_check(); it may define
 * fuzz_write_seeds() to generate binary seeds (the seeds in tests/fuzz/corpus/<target>/ are
 * what ctest replays; the generator only rewrites them when a format changes).
 *
 * Two builds of each target (CMakeLists.txt, migd_fuzz_target()):
 *   <target>          clang, -DFUZZ=ON: libFuzzer's main(), the parsers compiled into the
 *                     target with coverage, ASan and UBSan (scripts/fuzz.sh runs them);
 *   <target>_replay   any build: replay.c's main() runs files and corpus directories, and
 *                     --seeds DIR writes the generated seeds there and runs them (ctest runs
 *                     the tree's corpus this way, so every build checks every property).
 * In both, an input is handed over as an exactly sized heap copy, so that a read past its end
 * is an ASan error; a broken property aborts.
 */

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What became of the last input, in a few words ("refused: ...", "complete"): the replay
 * prints it next to the file's name. Targets set it; NULL says nothing. */
extern const char *fuzz_outcome;

/* Writes the target's generated seeds into @dir; 0 or 1 (a file could not be written). A
 * target without a generator gets replay.c's, which writes none. */
int fuzz_write_seeds(const char *dir);
/* For seed generators: writes @size bytes to @dir/@name. 0 or 1. */
int fuzz_write_file(const char *dir, const char *name, const void *p, size_t size);

/* A broken property: says which, and aborts (libFuzzer keeps the input as a crash). */
static inline void
fuzz_check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz: property broken: %s\n", what);
        abort();
    }
}

/* A message for a person: terminated within @size bytes, not empty, and without a control
 * character (bytes below 0x20, and DEL: what a terminal acts on). Bytes from 0x80 may come
 * from names, which the stream format allows to be UTF-8 (docs/stream-format.md). */
static inline void
fuzz_check_message(const char *m, size_t size)
{
    fuzz_check(memchr(m, '\0', size) != NULL, "a message is terminated within its buffer");
    fuzz_check(*m != '\0', "a message says something");
    for (; *m; m++) {
        fuzz_check((unsigned char) *m >= 0x20 && *m != 0x7f, "a message has no control character");
    }
}

/* The input as a NUL-terminated string of at most @size - 1 bytes (the rest is dropped), for
 * parsers that take C strings. */
static inline void
fuzz_string(const uint8_t *data, size_t n, char *buf, size_t size)
{
    n = n < size - 1 ? n : size - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
}

/* A streaming parser as the plugin stream targets see it: @feed takes the next @n bytes (a
 * negative errno and a message in @why on a refusal); @after checks the parser's invariants
 * once @accepted bytes in all were taken. */
typedef int (*FuzzFeedFn)(void *parser, const uint8_t *p, size_t n, char *why, size_t why_size);
typedef void (*FuzzAfterFn)(void *parser, size_t accepted);

/* Defines @name, a FuzzFeedFn that calls @parser_feed on its typed parser. */
#define FUZZ_FEED_FN(name, parser_feed)                                                        \
    static int name(void *parser, const uint8_t *p, size_t n, char *why, size_t why_size)      \
    {                                                                                          \
        return parser_feed(parser, p, n, why, why_size);                                       \
    }

/* Feeds @n bytes of @p to @parser in pieces of @piece bytes, checking after each piece; a
 * refusal must say why and be final (the next feed is refused too). 0 or the refusal. */
static inline int
fuzz_feed_pieces(void *parser, FuzzFeedFn feed, FuzzAfterFn after, const uint8_t *p, size_t n,
                 size_t piece)
{
    char why[256];

    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        int r;

        why[0] = '\0';
        r = feed(parser, p + off, k, why, sizeof(why));
        if (r < 0) {
            fuzz_check_message(why, sizeof(why));
            fuzz_check(feed(parser, p, 1, why, sizeof(why)) < 0, "a refusal is final");
            return r;
        }
        after(parser, off + k);
    }
    return 0;
}
