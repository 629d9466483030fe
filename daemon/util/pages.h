/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * pages — a data buffer whose pages are the process's before its first use.
 *
 * The migration's data buffers (512 KiB records) are made while the channels open, so that
 * their page faults are not paid in the downtime: without pre-copy, the first record of each
 * device is read and received during the switchover, and a fresh buffer takes a fault per
 * 4 KiB page there (128 per record; in a VM each is an exit: 1.5 ms of CPU per buffer on the
 * project's PVM guest). A memset(p, 0, n) right after malloc(n) does not take them: GCC turns
 * the pair into calloc(), which for a buffer above the mmap threshold returns fresh zero pages
 * untouched. pages_touch() takes them in a way no compiler can drop.
 *
 * The buffers come from 2 MiB chunks that ask for transparent huge pages (a pool shared by
 * every job, a chunk unmapped as soon as its last buffer is freed): where the kernel gives
 * one, a chunk costs one fault instead of 512. On the project's PVM guest, touching eight
 * 512 KiB buffers took 6-9 ms of a migration's start with 4 KiB pages, 0.3 ms with huge ones.
 * Where there is no THP (or "never"), a chunk is plain pages, touched as before.
 *
 * Used by: channel.c, migration_data.c, migration_source.c. Threads: any (one mutex).
 */

#include <stddef.h>

/* Makes every page of [@p, @p + @size) present and writable now, without changing a byte:
 * MADV_POPULATE_WRITE (one system call; ignored where the kernel has none, before 5.14), then a
 * volatile read and write of one byte per page (the first user access of a page costs a VM
 * exit on hosts that shadow the guest's page tables, even once the guest has it). */
void pages_touch(void *p, size_t size);

/* The second step alone (also for the tests): a volatile read and write of one byte per page. */
void pages_touch_by_writes(void *p, size_t size);

/* A buffer of @size bytes with its pages touched, 64-byte aligned at least; pages_free() it.
 * From the huge-page pool when @size is PAGES_POOL_MIN..PAGES_CHUNK bytes, else malloc().
 * NULL: out of memory. */
void *pages_alloc(size_t size);
void pages_free(void *p); /* NULL: nothing */

#define PAGES_CHUNK (2u << 20)      /* a pool chunk: one x86 huge page */
#define PAGES_GRANULE (16u << 10)   /* what a pool buffer's size is rounded up to */
#define PAGES_POOL_MIN (64u << 10)  /* below it a buffer comes from malloc() */

/* How many pool chunks are mapped now (for the tests: 0 once every buffer is freed). */
size_t pages_pool_chunks(void);
