/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * summary — what the daemon holds, in one line an operator reads in `systemctl status`
 * (STATUS=): "Serving: 3 devices, 1 group, 1 migration running". Counted from the manager
 * whenever it reports a change (Manager.on_change), never on a timer.
 *
 * Used by:  main.c (wires Manager.on_change to sd_service_status()).
 * Threads:  loop-thread only.
 */

#include <stdbool.h>
#include <stddef.h>

#include "forward.h"

typedef struct Summary {
    size_t devices;
    size_t groups;
    size_t migrations; /* jobs not over: migrations, saves and restores in flight */
    bool shutting_down;
} Summary;

void summary_of(const Manager *m, Summary *ret);
/* Pure: the line for @s, truncated to @size. */
void summary_format(const Summary *s, char *buf, size_t size);
