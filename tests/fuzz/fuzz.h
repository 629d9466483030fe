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
