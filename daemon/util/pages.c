/* SPDX-License-Identifier: MIT */
/*
 * pages — see pages.h.
 */
#include "pages.h"

#include <pthread.h>
#include <stdbool.h>
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

/* ---- the pool: 2 MiB chunks, each cut into granules; a buffer is a run of them */

#define GRANULES (PAGES_CHUNK / PAGES_GRANULE)

typedef struct PageChunk {
    struct PageChunk *next;
    uint8_t *base;
    uint8_t run[GRANULES]; /* at a buffer's first granule: its length in granules, else 0 */
    bool busy[GRANULES];
    unsigned n_busy;
} PageChunk;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static PageChunk *pool_chunks;

/* A fresh 2 MiB mapping aligned on 2 MiB (so that it can be one huge page), or NULL. */
static uint8_t *
chunk_map(void)
{
    size_t span = 2 * (size_t) PAGES_CHUNK;
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *base;
    size_t head;

    if (raw == MAP_FAILED) {
        return NULL;
    }
    base = (uint8_t *) (((uintptr_t) raw + PAGES_CHUNK - 1) & ~(uintptr_t) (PAGES_CHUNK - 1));
    head = (size_t) (base - raw);
    if (head > 0) {
        (void) munmap(raw, head);
    }
    (void) munmap(base + PAGES_CHUNK, span - head - PAGES_CHUNK);
    /* EINVAL where the kernel has no THP: then the chunk is 512 plain pages, which works. */
    (void) madvise(base, PAGES_CHUNK, MADV_HUGEPAGE);
    return base;
}

static PageChunk *
chunk_new(void)
{
    PageChunk *c = calloc(1, sizeof(*c));

    if (c && !(c->base = chunk_map())) {
        free(c);
        return NULL;
    }
    if (c) {
        c->next = pool_chunks;
        pool_chunks = c;
    }
    return c;
}

/* The first granule of a free run of @n in @c, or -1. */
static int
chunk_find_run(const PageChunk *c, unsigned n)
{
    unsigned len = 0;

    for (unsigned g = 0; g < GRANULES; g++) {
        len = c->busy[g] ? 0 : len + 1;
        if (len == n) {
            return (int) (g + 1 - n);
        }
    }
    return -1;
}

static void *
chunk_take(PageChunk *c, int first, unsigned n)
{
    for (unsigned g = 0; g < n; g++) {
        c->busy[first + g] = true;
    }
    c->run[first] = (uint8_t) n;
    c->n_busy += n;
    return c->base + (size_t) first * PAGES_GRANULE;
}

static void *
pool_alloc(size_t size)
{
    unsigned n = (unsigned) ((size + PAGES_GRANULE - 1) / PAGES_GRANULE);
    void *p = NULL;

    pthread_mutex_lock(&pool_lock);
    for (PageChunk *c = pool_chunks; c && !p; c = c->next) {
        int first = chunk_find_run(c, n);
        p = first >= 0 ? chunk_take(c, first, n) : NULL;
    }
    if (!p) {
        PageChunk *c = chunk_new();
        p = c ? chunk_take(c, 0, n) : NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    return p;
}

/* Whether @p was a pool buffer (then it is freed, and its chunk with its last buffer). */
static bool
pool_free(void *p)
{
    PageChunk **link = &pool_chunks;
    PageChunk *c;

    pthread_mutex_lock(&pool_lock);
    while ((c = *link) && !((uint8_t *) p >= c->base && (uint8_t *) p < c->base + PAGES_CHUNK)) {
        link = &c->next;
    }
    if (c) {
        unsigned first = (unsigned) (((uint8_t *) p - c->base) / PAGES_GRANULE);
        unsigned n = c->run[first];

        for (unsigned g = 0; g < n; g++) {
            c->busy[first + g] = false;
        }
        c->run[first] = 0;
        c->n_busy -= n;
        if (c->n_busy == 0) {
            *link = c->next;
            (void) munmap(c->base, PAGES_CHUNK);
            free(c);
        }
    }
    pthread_mutex_unlock(&pool_lock);
    return c != NULL;
}

size_t
pages_pool_chunks(void)
{
    size_t n = 0;

    pthread_mutex_lock(&pool_lock);
    for (const PageChunk *c = pool_chunks; c; c = c->next) {
        n++;
    }
    pthread_mutex_unlock(&pool_lock);
    return n;
}

void *
pages_alloc(size_t size)
{
    void *p = size >= PAGES_POOL_MIN && size <= PAGES_CHUNK ? pool_alloc(size) : NULL;

    if (!p) {
        p = malloc(size); /* small or large, or no mapping to be had: the plain way */
    }
    if (p) {
        pages_touch(p, size);
    }
    return p;
}

void
pages_free(void *p)
{
    if (p && !pool_free(p)) {
        free(p);
    }
}
