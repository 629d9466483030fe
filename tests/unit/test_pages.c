/* SPDX-License-Identifier: MIT */
/*
 * test_pages — util/pages.h: after pages_touch(), pages_touch_by_writes() and pages_alloc(),
 * every page of the buffer is resident (mincore), and the bytes already there are kept; the
 * pool's buffers never overlap, and a chunk is unmapped with its last buffer.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/pages.h"

TestSuite(pages, .timeout = 10);

#define SIZE (512u << 10)

/* How many pages of [@p, @p + @size) are resident. */
static size_t
resident_pages(const void *p, size_t size)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t) p & ~(uintptr_t) (page - 1);
    size_t n = ((uintptr_t) p + size - start + page - 1) / page, count = 0;
    unsigned char *vec = calloc(n, 1);

    cr_assert_not_null(vec);
    cr_assert_eq(mincore((void *) start, n * page, vec), 0, "mincore: %m");
    for (size_t i = 0; i < n; i++) {
        count += vec[i] & 1;
    }
    free(vec);
    return count;
}

static uint8_t *
fresh_mapping(void)
{
    void *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    cr_assert_neq(p, MAP_FAILED, "mmap: %m");
    /* The premise: a fresh anonymous mapping has no page yet (what a calloc()'d buffer above
     * the mmap threshold is). */
    cr_assert_eq(resident_pages(p, SIZE), 0);
    return p;
}

static void
check_touch(void (*touch)(void *, size_t))
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    uint8_t *p = fresh_mapping();

    /* One page written before: its bytes must survive the touch. */
    memset(p + 3 * page, 0xa5, page);
    touch(p, SIZE);
    cr_expect_eq(resident_pages(p, SIZE), SIZE / page);
    for (size_t i = 0; i < page; i++) {
        cr_assert_eq(p[3 * page + i], 0xa5, "byte %zu changed", i);
    }
    cr_expect_eq(p[0], 0);
    cr_expect_eq(p[SIZE - 1], 0);
    munmap(p, SIZE);
}

Test(pages, touch_makes_every_page_resident_and_keeps_the_bytes)
{
    check_touch(pages_touch);
}

Test(pages, the_fallback_makes_every_page_resident_and_keeps_the_bytes)
{
    check_touch(pages_touch_by_writes);
}

Test(pages, a_part_of_a_page_at_either_end_is_touched_too)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    uint8_t *p = fresh_mapping();

    /* From the middle of page 1 to the middle of page 5: pages 1 to 5, no others. */
    pages_touch_by_writes(p + page + page / 2, 4 * page);
    cr_expect_eq(resident_pages(p, SIZE), 5);
    cr_expect_eq(resident_pages(p + page, 5 * page), 5);
    munmap(p, SIZE);
}

Test(pages, alloc_gives_a_resident_buffer)
{
    uint8_t *p = pages_alloc(SIZE);

    cr_assert_not_null(p);
    cr_expect_eq(resident_pages(p, SIZE), (SIZE + (uintptr_t) p % sysconf(_SC_PAGESIZE) +
                                           sysconf(_SC_PAGESIZE) - 1) / sysconf(_SC_PAGESIZE));
    pages_free(p);
}

/* ---- the pool of 2 MiB chunks */

Test(pages, four_record_buffers_share_one_chunk_that_goes_with_the_last)
{
    uint8_t *b[4];

    cr_assert_eq(pages_pool_chunks(), 0);
    for (int i = 0; i < 4; i++) {
        b[i] = pages_alloc(SIZE);
        cr_assert_not_null(b[i]);
        memset(b[i], 0x10 + i, SIZE); /* each its own bytes: no two overlap */
    }
    cr_expect_eq(pages_pool_chunks(), 1);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq((uintptr_t) b[i] % 64, 0);
        cr_expect_eq(b[i][0], 0x10 + i);
        cr_expect_eq(b[i][SIZE - 1], 0x10 + i);
    }
    pages_free(b[1]);
    cr_expect_eq(pages_pool_chunks(), 1);
    b[1] = pages_alloc(SIZE); /* the freed run serves again: still one chunk */
    cr_expect_eq(pages_pool_chunks(), 1);
    for (int i = 0; i < 4; i++) {
        pages_free(b[i]);
    }
    cr_expect_eq(pages_pool_chunks(), 0, "a chunk with no buffer left stays mapped");
}

Test(pages, a_buffer_just_over_a_record_is_rounded_to_granules)
{
    size_t size = SIZE + 64; /* a record and its header: 33 granules, three to a chunk */
    uint8_t *b[4];

    for (int i = 0; i < 4; i++) {
        b[i] = pages_alloc(size);
        cr_assert_not_null(b[i]);
        memset(b[i], 0x20 + i, size);
    }
    cr_expect_eq(pages_pool_chunks(), 2);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(resident_pages(b[i], size), (size + 4095) / 4096);
        cr_expect_eq(b[i][size - 1], 0x20 + i);
        pages_free(b[i]);
    }
    cr_expect_eq(pages_pool_chunks(), 0);
}

Test(pages, small_and_large_buffers_come_from_malloc)
{
    uint8_t *small = pages_alloc(PAGES_POOL_MIN - 1);
    uint8_t *large = pages_alloc(PAGES_CHUNK + 1);

    cr_assert_not_null(small);
    cr_assert_not_null(large);
    cr_expect_eq(pages_pool_chunks(), 0);
    cr_expect_geq(resident_pages(large, PAGES_CHUNK + 1), (PAGES_CHUNK + 1 + 4095) / 4096);
    pages_free(small);
    pages_free(large);
    pages_free(NULL);
}
