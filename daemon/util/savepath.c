/* SPDX-License-Identifier: MIT */
/*
 * savepath — see savepath.h.
 */
#include "savepath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"

/* Refuses, before any device is touched, a save that could not be completed: an existing
 * file without overwrite, a directory, or a directory that does not exist. */
int
save_path_check(const char *path, bool overwrite, char *err, size_t err_size)
{
    _cleanup_free_ char *dir = strdup(path);
    struct stat st;

    if (!dir) {
        return -ENOMEM;
    }
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            (void) snprintf(err, err_size, "'%s' is a directory; name a file to save to", path);
            return -EISDIR;
        }
        if (!overwrite) {
            (void) snprintf(err, err_size, "'%s' already exists; allow overwriting to replace "
                                           "it (vfio-migctl save --force)", path);
            return -EEXIST;
        }
    }
    *strrchr(dir, '/') = '\0'; /* handlers pass absolute paths only */
    if (stat(dir[0] ? dir : "/", &st) < 0 || !S_ISDIR(st.st_mode)) {
        (void) snprintf(err, err_size, "the directory of '%s' does not exist on the daemon's host",
                        path);
        return -ENOENT;
    }
    return 0;
}
