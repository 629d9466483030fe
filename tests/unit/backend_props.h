/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * backend_props — one device property as the back-end's describe() reports it, and its
 * state, for the back-end tests (test_sim.c, test_sim_model.c).
 */

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"

/* @key's value copied into @buf, or NULL when the device does not report it (or it does not
 * fit: a test's buffer too small is a failure, not a shorter value). */
static inline const char *
dev_prop(BackendDevice *bd, const char *key, char *buf, size_t size)
{
    BackendProperty props[BACKEND_MAX_PROPERTIES];
    int n = bd->ops->describe(bd, props, BACKEND_MAX_PROPERTIES);

    for (int i = 0; i < n; i++) {
        if (strcmp(props[i].key, key) == 0) {
            int len = snprintf(buf, size, "%s", props[i].value);

            return len >= 0 && (size_t) len < size ? buf : NULL;
        }
    }
    return NULL;
}

/* The device's state; a get_state() that fails is a test failure. */
static inline DeviceState
dev_state(BackendDevice *bd)
{
    DeviceState s = _DEVICE_STATE_INVALID;

    cr_assert_eq(bd->ops->get_state(bd, &s), 0);
    return s;
}
