/* SPDX-License-Identifier: MIT */
/*
 * replay — the main() of every fuzz target built without libFuzzer (see fuzz.h):
 *   <target>_replay FILE|DIR...    runs each file, and each regular file of each directory
 *                                  (in name order), once; fails when none was run
 *   <target>_replay --seeds DIR    writes the target's generated seeds to DIR and runs them
 * Built with FUZZ_LIBFUZZER, only what the targets share is compiled (libFuzzer has main()).
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "fuzz.h"

const char *fuzz_outcome;

int
fuzz_write_file(const char *dir, const char *name, const void *p, size_t size)
{
    char path[4096];
    FILE *f;

    (void) snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wbe");
    if (!f || fwrite(p, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

#ifndef FUZZ_LIBFUZZER

/* Larger inputs than any target reads whole; a bigger file is a mistake, not an input. */
#define REPLAY_MAX_INPUT (64u << 20)

__attribute__((weak)) int
fuzz_write_seeds(const char *dir)
{
    (void) dir;
    fprintf(stderr, "fuzz: this target has no seed generator; its seeds are files\n");
    return 0;
}

/* Runs one file; 0, or 1 when it cannot be read. */
static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rbe");
    struct stat st;
    uint8_t *p;
    size_t size;
    int rc = 0;

    if (!f || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t) st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "fuzz: %s: not a readable file of at most %u bytes\n", path,
                REPLAY_MAX_INPUT);
        if (f) {
            (void) fclose(f);
        }
        return 1;
    }
    size = (size_t) st.st_size;
    p = malloc(size ? size : 1); /* exactly sized: ASan sees a read past the end */
    if (!p || fread(p, 1, size, f) != size) {
        fprintf(stderr, "fuzz: %s: cannot read it\n", path);
        rc = 1;
    } else {
        fuzz_outcome = NULL;
        (void) LLVMFuzzerTestOneInput(p, size);
        printf("%s: %s\n", path, fuzz_outcome ? fuzz_outcome : "run");
    }
    free(p);
    (void) fclose(f);
    return rc;
}

static int
skip_dots(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Runs every file of @dir; *ran counts them. */
static int
run_dir(const char *dir, unsigned *ran)
{
    struct dirent **names;
    char path[4096];
    int n = scandir(dir, &names, skip_dots, alphasort), rc = 0;

    if (n < 0) {
        fprintf(stderr, "fuzz: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        (void) snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        rc |= run_file(path);
        (*ran)++;
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    unsigned ran = 0;
    int rc = 0;

    if (argc == 3 && strcmp(argv[1], "--seeds") == 0) {
        rc = fuzz_write_seeds(argv[2]);
        return rc | run_dir(argv[2], &ran);
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            rc |= run_dir(argv[i], &ran);
        } else {
            rc |= run_file(argv[i]);
            ran++;
        }
    }
    printf("%s: %u input(s) run\n", argv[0], ran);
    if (ran == 0) {
        fprintf(stderr, "fuzz: no input to run (give files or corpus directories)\n");
        return 1;
    }
    return rc;
}
#endif
