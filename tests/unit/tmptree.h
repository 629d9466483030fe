/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * tmptree — removes a test's temporary directory tree without a shell: nftw, depth first,
 * never through a symbolic link (the trees hold links that point out of them on purpose).
 * Used by: test_files.c, test_listener.c.
 */

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int
tmptree_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void) st;
    (void) type;
    (void) ftw;
    return remove(path);
}

/* 0, or -1 with errno set when something could not be removed. */
static inline int
tmptree_remove(const char *dir)
{
    return nftw(dir, tmptree_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
