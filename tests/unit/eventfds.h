/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * eventfds — the two eventfd helpers the interrupt tests share (test_sim_irq.c,
 * test_irq_apply.c): a fresh non-blocking eventfd, and its counter read (and so reset).
 */

#include <criterion/criterion.h>
#include <stdint.h>
#include <sys/eventfd.h>

static inline int
efd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    cr_assert_geq(fd, 0);
    return fd;
}

/* The eventfd's counter, read (and so reset); 0 when nothing was signalled. */
static inline uint64_t
take(int fd)
{
    eventfd_t v = 0;
    return eventfd_read(fd, &v) == 0 ? v : 0;
}
