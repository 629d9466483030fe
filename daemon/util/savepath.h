/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * savepath — checks a save destination before anything is touched: an absolute path whose
 * directory exists, that is not a directory, and that does not exist unless overwriting is
 * allowed. Used by a save of a group or of a device. Errors: -EISDIR, -EEXIST, -ENOENT, -ENOMEM,
 * with a sentence in @err.
 */

#include <stdbool.h>
#include <stddef.h>

int save_path_check(const char *path, bool overwrite, char *err, size_t err_size);
