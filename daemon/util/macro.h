/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * macro — tiny project-wide helpers: array sizes, static assertions, min/max.
 * Used everywhere, including client/ and tests/; includes nothing from the project.
 */

#include <assert.h>
#include <stddef.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Defines `const char *fn(type v)`: @v's name in @table, an array of names indexed by value
 * (designated initializers), or @fallback for a value outside the table or a hole in it. One
 * definition for every enum-to-name function (systemd's DEFINE_STRING_TABLE_LOOKUP_TO_STRING);
 * the cast makes a negative value (an _*_INVALID) fall outside too. */
#define DEFINE_NAME_LOOKUP(fn, type, table, fallback)                                             \
    const char *fn(type v)                                                                         \
    {                                                                                              \
        return (size_t) v < ELEMENTSOF(table) && (table)[v] ? (table)[v] : (fallback);             \
    }                                                                                              \
    _Static_assert(1, "lets the macro take a trailing semicolon")

#undef MIN
#undef MAX
#define MIN(a, b)                                                                                  \
    ({                                                                                             \
        __typeof__(a) _a = (a);                                                                    \
        __typeof__(b) _b = (b);                                                                    \
        _a < _b ? _a : _b;                                                                         \
    })

#define MAX(a, b)                                                                                  \
    ({                                                                                             \
        __typeof__(a) _a = (a);                                                                    \
        __typeof__(b) _b = (b);                                                                    \
        _a > _b ? _a : _b;                                                                         \
    })

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static inline int
negative_errno_or(int e, int fallback)
{
    return e > 0 ? -e : fallback;
}
