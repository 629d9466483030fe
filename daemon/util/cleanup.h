/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * cleanup — scope-bound release of locals (__attribute__((cleanup))), systemd style.
 * Every cleanup variable is initialised where it is declared; TAKE_PTR()/TAKE_FD() hand
 * ownership on. Deliberately small: this is the whole framework.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _p = (p);                                                                    \
        (p) = NULL;                                                                                \
        _p;                                                                                        \
    })

#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _fd = (fd);                                                                            \
        (fd) = -EBADF;                                                                             \
        _fd;                                                                                       \
    })

/* Declares fnp(type *) that calls fn(*p) when *p is set; for _cleanup_(fnp). */
#define DEFINE_CLEANUP_FUNC(type, fn)                                                              \
    static inline void fn##p(type *p)                                                              \
    {                                                                                              \
        if (*p) {                                                                                  \
            (void) fn(*p);                                                                         \
        }                                                                                          \
    }                                                                                              \
    _Static_assert(1, "lets the macro take a trailing semicolon")

static inline void
freep(void *p)
{
    free(*(void **) p);
}

static inline void
closep(int *fd)
{
    if (*fd >= 0) {
        (void) close(*fd);
    }
}

static inline void
fclosep(FILE **f)
{
    if (*f) {
        (void) fclose(*f);
    }
}
