/* SPDX-License-Identifier: MIT */
/*
 * backend — what every back-end shares (see backend.h): building the properties GetDevice
 * shows.
 */
#include "backend.h"

#include <stdarg.h>
#include <stdio.h>

void
backend_property_add(BackendProperty *props, size_t max, size_t *n, const char *key,
                     const char *fmt, ...)
{
    va_list ap;

    if (*n >= max) {
        return;
    }
    (void) snprintf(props[*n].key, sizeof(props[*n].key), "%s", key);
    va_start(ap, fmt);
    (void) vsnprintf(props[*n].value, sizeof(props[*n].value), fmt, ap);
    va_end(ap);
    (*n)++;
}
