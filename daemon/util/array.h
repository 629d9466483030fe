/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * array — the growing arrays of pointers the Manager keeps (devices and groups sorted by
 * name, migration jobs in creation order): growth, insertion and removal at an index, and the
 * binary search of a sorted one, each written once. Macros because C has no generics: the
 * arguments are lvalues (the array, its count, its capacity) and are evaluated more than once,
 * so pass plain names, never expressions with side effects. Includes nothing from the project.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for one more element: doubles @allocated (starting at @first) when @n has
 * reached it. 0, or -ENOMEM with nothing changed. */
#define ARRAY_RESERVE_ONE(items, n, allocated, first)                                              \
    ({                                                                                             \
        int _r = 0;                                                                                \
        if ((n) == (allocated)) {                                                                  \
            size_t _cap = (allocated) ? (allocated) * 2 : (first);                                 \
            __typeof__(items) _p = realloc((items), _cap * sizeof(*(items)));                      \
            if (_p) {                                                                              \
                (items) = _p;                                                                      \
                (allocated) = _cap;                                                                \
            } else {                                                                               \
                _r = -ENOMEM;                                                                      \
            }                                                                                      \
        }                                                                                          \
        _r;                                                                                        \
    })

/* Puts @item at index @i (0..@n), moving the ones from @i up; ARRAY_RESERVE_ONE() first. */
#define ARRAY_INSERT_AT(items, n, i, item)                                                         \
    do {                                                                                           \
        memmove((items) + (i) + 1, (items) + (i), ((n) - (i)) * sizeof(*(items)));                 \
        (items)[i] = (item);                                                                       \
        (n)++;                                                                                     \
    } while (0)

/* Takes out the element at index @i (< @n), moving the ones after it down. */
#define ARRAY_REMOVE_AT(items, n, i)                                                               \
    do {                                                                                           \
        memmove((items) + (i), (items) + (i) + 1, ((n) - (i) - 1) * sizeof(*(items)));             \
        (n)--;                                                                                     \
    } while (0)

/* Index of the first of the @n elements, sorted by their string @member, whose @member is
 * >= @key (binary search): where @key is, or where it would go. */
#define SORTED_LOWER_BOUND(items, n, member, key)                                                  \
    ({                                                                                             \
        const char *_key = (key);                                                                  \
        size_t _lo = 0, _hi = (n);                                                                 \
        while (_lo < _hi) {                                                                        \
            size_t _mid = _lo + (_hi - _lo) / 2;                                                   \
            if (strcmp((items)[_mid]->member, _key) < 0) {                                         \
                _lo = _mid + 1;                                                                    \
            } else {                                                                               \
                _hi = _mid;                                                                        \
            }                                                                                      \
        }                                                                                          \
        _lo;                                                                                       \
    })

/* The element whose string @member equals @key, or NULL (binary search). */
#define SORTED_FIND(items, n, member, key)                                                         \
    ({                                                                                             \
        const char *_fkey = (key);                                                                 \
        size_t _i = SORTED_LOWER_BOUND(items, n, member, _fkey);                                   \
        _i < (n) && strcmp((items)[_i]->member, _fkey) == 0 ? (items)[_i] : NULL;                  \
    })

/* Inserts @item where its string @member keeps the array sorted, growing it as
 * ARRAY_RESERVE_ONE() does. 0, or -ENOMEM with nothing changed. */
#define SORTED_INSERT(items, n, allocated, first, member, item)                                    \
    ({                                                                                             \
        int _sr = ARRAY_RESERVE_ONE(items, n, allocated, first);                                   \
        if (_sr >= 0) {                                                                            \
            size_t _at = SORTED_LOWER_BOUND(items, n, member, (item)->member);                     \
            ARRAY_INSERT_AT(items, n, _at, item);                                                  \
        }                                                                                          \
        _sr;                                                                                       \
    })

/* Takes @item out of the array sorted by @member, if it is there; true when it was. */
#define SORTED_REMOVE(items, n, member, item)                                                      \
    ({                                                                                             \
        size_t _ri = SORTED_LOWER_BOUND(items, n, member, (item)->member);                         \
        bool _found = _ri < (n) && (items)[_ri] == (item);                                         \
        if (_found) {                                                                              \
            ARRAY_REMOVE_AT(items, n, _ri);                                                        \
        }                                                                                          \
        _found;                                                                                    \
    })
