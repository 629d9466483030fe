/* SPDX-License-Identifier: MIT */
/*
 * pages — see pages.h.
 */
#include "pages.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t
page_size(void)
{
    long sc = sysconf(_SC_PAGESIZE);

    return sc > 0 ? (size_t) sc : 4096;
}

/* Through a volatile pointer, so that the compiler keeps every access; the byte written is
 * the byte read, so a buffer already in use keeps its content. */
void
pages_touch_by_writes(void *p, size_t size)
{
    volatile uint8_t *v = p;
    size_t page = page_size();

    for (size_t off = 0; off < size; off += page) {
        v[off] = v[off];
    }
    if (size > 0) {
        v[size - 1] = v[size - 1];
    }
}

void
pages_touch(void *p, size_t size)
{
    size_t page = page_size();
    uintptr_t start = (uintptr_t) p & ~(uintptr_t) (page - 1);
    uintptr_t end = ((uintptr_t) p + size + page - 1) & ~(uintptr_t) (page - 1);

    if (size == 0) {
        return;
    }
    /* First the guest kernel's page faults, all in one call (where the kernel has it: 5.14
     * and later); the whole pages around the buffer, as populating a neighbour's part of the
     * first or the last page changes none of its bytes. Then a write to each page from user
     * space: a VM whose host shadows its page tables (the project's PVM guest) still pays an
     * exit at the first user access of each populated page, 6 us a page, 0.8 ms a record,
     * which must not fall into the downtime either. */
    (void) madvise((void *) start, end - start, MADV_POPULATE_WRITE);
    pages_touch_by_writes(p, size);
}

void *
pages_alloc(size_t size)
{
    void *p = malloc(size);

    if (p) {
        pages_touch(p, size);
    }
    return p;
}
