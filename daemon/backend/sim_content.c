/* SPDX-License-Identifier: MIT */
/*
 * sim_content — see sim_content.h.
 *
 * The plan: the public functions do the partial words at either end themselves (through the
 * scalar word, a copy of its bytes) and hand the whole words in between to the chosen
 * implementation's word loop. The vector word loops are one body compiled into functions
 * per instruction set (a macro), so the AVX2 and AVX-512 versions are the same source
 * as the base one. j * GOLDEN grows by GOLDEN from one word to the next, so no loop multiplies:
 * a vector of N word offsets grows by N * GOLDEN per step.
 */
#include "sim_content.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "../util/macro.h"

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15) /* 2^64 / phi; must equal sim.c's */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* A vector word is stored as it is computed, so the vector loops need a little-endian CPU;
 * elsewhere the scalar loop (htole64) is all there is. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SIM_CONTENT_HAVE_VECTOR 1
#endif
#if defined(__x86_64__) && defined(SIM_CONTENT_HAVE_VECTOR)
#define SIM_CONTENT_HAVE_X86 1
#endif

typedef void (*fill_words_fn)(uint64_t key, uint64_t p, uint8_t *buf, size_t words);
/* The OR of (word ^ expected word) over @words words: 0 when they all match. */
typedef uint64_t (*diff_words_fn)(uint64_t key, uint64_t p, const uint8_t *buf, size_t words);

/* ---- scalar: the reference */

ALWAYS_INLINE void
fill_words_scalar_body(uint64_t key, uint64_t p, uint8_t *buf, size_t words)
{
    for (size_t i = 0; i < words; i++, p += GOLDEN) {
        uint64_t w = htole64(key ^ p);
        memcpy(buf + 8 * i, &w, 8);
    }
}

ALWAYS_INLINE uint64_t
diff_words_scalar_body(uint64_t key, uint64_t p, const uint8_t *buf, size_t words)
{
    uint64_t diff = 0, w;

    for (size_t i = 0; i < words; i++, p += GOLDEN) {
        memcpy(&w, buf + 8 * i, 8);
        diff |= w ^ htole64(key ^ p);
    }
    return diff;
}

static void
fill_words_scalar(uint64_t key, uint64_t p, uint8_t *buf, size_t words)
{
    fill_words_scalar_body(key, p, buf, words);
}

static uint64_t
diff_words_scalar(uint64_t key, uint64_t p, const uint8_t *buf, size_t words)
{
    return diff_words_scalar_body(key, p, buf, words);
}

/* ---- vector: one body, compiled once per instruction set
 *
 * Each instruction set gets a vector type of its own register width: GCC lowers a vector
 * wider than the registers into pieces but keeps the variables in memory, which measured
 * slower than the scalar loop. */

/* Defines fill_words_<NAME>() and diff_words_<NAME>() on vectors of type VEC (uint64_t
 * lanes) for the instruction set TARGET ("default" for the base one). The main loops take
 * four vectors per step: with one, the loop's own add, compare and branch cost as much as
 * the work, and a step of four measured 1.6 to 2 times faster (bench-datapath). */
#define DEFINE_WORD_LOOPS(NAME, VEC, TARGET)                                                   \
    enum { NAME##_lanes = sizeof(VEC) / sizeof(uint64_t) };                                   \
    static const uint64_t NAME##_step = NAME##_lanes * GOLDEN; /* one vector further */       \
                                                                                               \
    __attribute__((target(TARGET))) static void                                                \
    fill_words_##NAME(uint64_t key, uint64_t p, uint8_t *buf, size_t words)                    \
    {                                                                                          \
        VEC pv; /* the offsets of the next words: p, p + GOLDEN, ... */                        \
        size_t i = 0;                                                                          \
                                                                                               \
        for (int k = 0; k < NAME##_lanes; k++) {                                               \
            pv[k] = p + (uint64_t) k * GOLDEN;                                                 \
        }                                                                                      \
        for (; i + 4 * NAME##_lanes <= words; i += 4 * NAME##_lanes) {                         \
            VEC w0 = key ^ pv, w1 = key ^ (pv + NAME##_step);                                  \
            VEC w2 = key ^ (pv + 2 * NAME##_step), w3 = key ^ (pv + 3 * NAME##_step);          \
                                                                                               \
            memcpy(buf + 8 * i, &w0, sizeof(w0));                                              \
            memcpy(buf + 8 * i + sizeof(VEC), &w1, sizeof(w1));                                \
            memcpy(buf + 8 * i + 2 * sizeof(VEC), &w2, sizeof(w2));                            \
            memcpy(buf + 8 * i + 3 * sizeof(VEC), &w3, sizeof(w3));                            \
            pv += 4 * NAME##_step;                                                             \
        }                                                                                      \
        for (; i + NAME##_lanes <= words; i += NAME##_lanes) {                                 \
            VEC w = key ^ pv;                                                                  \
                                                                                               \
            memcpy(buf + 8 * i, &w, sizeof(w));                                                \
            pv += NAME##_step;                                                                 \
        }                                                                                      \
        fill_words_scalar_body(key, p + i * GOLDEN, buf + 8 * i, words - i);                   \
    }                                                                                          \
                                                                                               \
    __attribute__((target(TARGET))) static uint64_t                                            \
    diff_words_##NAME(uint64_t key, uint64_t p, const uint8_t *buf, size_t words)              \
    {                                                                                          \
        VEC pv, d0 = {0}, d1 = {0}, w0, w1, w2, w3;                                            \
        uint64_t diff;                                                                         \
        size_t i = 0;                                                                          \
                                                                                               \
        for (int k = 0; k < NAME##_lanes; k++) {                                               \
            pv[k] = p + (uint64_t) k * GOLDEN;                                                 \
        }                                                                                      \
        /* OR-ing the differences needs no branch per word and no buffer to compare with;     \
         * two accumulators, so that the ORs of a step do not wait for each other. */          \
        for (; i + 4 * NAME##_lanes <= words; i += 4 * NAME##_lanes) {                         \
            memcpy(&w0, buf + 8 * i, sizeof(w0));                                              \
            memcpy(&w1, buf + 8 * i + sizeof(VEC), sizeof(w1));                                \
            memcpy(&w2, buf + 8 * i + 2 * sizeof(VEC), sizeof(w2));                            \
            memcpy(&w3, buf + 8 * i + 3 * sizeof(VEC), sizeof(w3));                            \
            d0 |= (w0 ^ (key ^ pv)) | (w1 ^ (key ^ (pv + NAME##_step)));                       \
            d1 |= (w2 ^ (key ^ (pv + 2 * NAME##_step))) | (w3 ^ (key ^ (pv + 3 * NAME##_step))); \
            pv += 4 * NAME##_step;                                                             \
        }                                                                                      \
        for (; i + NAME##_lanes <= words; i += NAME##_lanes) {                                 \
            memcpy(&w0, buf + 8 * i, sizeof(w0));                                              \
            d0 |= w0 ^ (key ^ pv);                                                             \
            pv += NAME##_step;                                                                 \
        }                                                                                      \
        d0 |= d1;                                                                              \
        diff = diff_words_scalar_body(key, p + i * GOLDEN, buf + 8 * i, words - i);            \
        for (int k = 0; k < NAME##_lanes; k++) {                                               \
            diff |= d0[k];                                                                     \
        }                                                                                      \
        return diff;                                                                           \
    }                                                                                          \
    _Static_assert(1, "lets the macro take a trailing semicolon")

#ifdef SIM_CONTENT_HAVE_VECTOR
typedef uint64_t U64x2 __attribute__((vector_size(16))); /* SSE2, NEON */
DEFINE_WORD_LOOPS(vector, U64x2, "default");
#endif
#ifdef SIM_CONTENT_HAVE_X86
typedef uint64_t U64x4 __attribute__((vector_size(32)));
typedef uint64_t U64x8 __attribute__((vector_size(64)));
DEFINE_WORD_LOOPS(avx2, U64x4, "avx2");
DEFINE_WORD_LOOPS(avx512, U64x8, "avx512f");
#endif

/* ---- the implementations and the choice among them */

static const char *const impl_names[_SIM_CONTENT_IMPL_MAX] = {
    [SIM_CONTENT_IMPL_SCALAR] = "scalar",
    [SIM_CONTENT_IMPL_VECTOR] = "vector",
    [SIM_CONTENT_IMPL_AVX2] = "avx2",
    [SIM_CONTENT_IMPL_AVX512] = "avx512",
};

/* The word loops this build has; impl_init() never picks one that is missing. */
static const struct {
    fill_words_fn fill;
    diff_words_fn diff;
} impls[_SIM_CONTENT_IMPL_MAX] = {
    [SIM_CONTENT_IMPL_SCALAR] = {fill_words_scalar, diff_words_scalar},
#ifdef SIM_CONTENT_HAVE_VECTOR
    [SIM_CONTENT_IMPL_VECTOR] = {fill_words_vector, diff_words_vector},
#endif
#ifdef SIM_CONTENT_HAVE_X86
    [SIM_CONTENT_IMPL_AVX2] = {fill_words_avx2, diff_words_avx2},
    [SIM_CONTENT_IMPL_AVX512] = {fill_words_avx512, diff_words_avx512},
#endif
};

static pthread_once_t impl_once = PTHREAD_ONCE_INIT;
static SimContentImpl impl_best = SIM_CONTENT_IMPL_SCALAR;

static void
impl_init(void)
{
#ifdef SIM_CONTENT_HAVE_VECTOR
    impl_best = SIM_CONTENT_IMPL_VECTOR;
#endif
#ifdef SIM_CONTENT_HAVE_X86
    if (__builtin_cpu_supports("avx2")) {
        impl_best = SIM_CONTENT_IMPL_AVX2;
        if (__builtin_cpu_supports("avx512f")) {
            impl_best = SIM_CONTENT_IMPL_AVX512;
        }
    }
#endif
}

SimContentImpl
sim_content_impl(void)
{
    (void) pthread_once(&impl_once, impl_init);
    return impl_best;
}

DEFINE_NAME_LOOKUP(sim_content_impl_name, SimContentImpl, impl_names, "unknown");

/* @impl when this CPU runs it, else the scalar reference. */
static SimContentImpl
impl_or_scalar(SimContentImpl impl)
{
    return (unsigned) impl <= (unsigned) sim_content_impl() ? impl : SIM_CONTENT_IMPL_SCALAR;
}

/* ---- the partial words at either end */

/* Bytes [@skip, @skip + @n) of the word at offset @p: 1 <= @n, @skip + @n <= 8. */
static void
fill_part(uint64_t key, uint64_t p, size_t skip, uint8_t *buf, size_t n)
{
    uint64_t w = htole64(key ^ p);

    memcpy(buf, (const uint8_t *) &w + skip, n);
}

static bool
part_differs(uint64_t key, uint64_t p, size_t skip, const uint8_t *buf, size_t n)
{
    uint64_t w = htole64(key ^ p);

    return memcmp(buf, (const uint8_t *) &w + skip, n) != 0;
}

void
sim_content_fill_with(SimContentImpl impl, uint64_t key, uint64_t off, uint8_t *buf, size_t len)
{
    size_t skip = off % 8, words;
    uint64_t p = (off / 8) * GOLDEN;

    if (skip != 0 && len > 0) {
        size_t n = MIN(8 - skip, len);

        fill_part(key, p, skip, buf, n);
        p += GOLDEN;
        buf += n;
        len -= n;
    }
    words = len / 8;
    impls[impl_or_scalar(impl)].fill(key, p, buf, words);
    if (len % 8 != 0) {
        fill_part(key, p + words * GOLDEN, 0, buf + 8 * words, len % 8);
    }
}

int
sim_content_verify_with(SimContentImpl impl, uint64_t key, uint64_t off, const uint8_t *buf,
                        size_t len)
{
    size_t skip = off % 8, words;
    uint64_t p = (off / 8) * GOLDEN;

    if (skip != 0 && len > 0) {
        size_t n = MIN(8 - skip, len);

        if (part_differs(key, p, skip, buf, n)) {
            return -EFAULT;
        }
        p += GOLDEN;
        buf += n;
        len -= n;
    }
    words = len / 8;
    if (impls[impl_or_scalar(impl)].diff(key, p, buf, words) != 0) {
        return -EFAULT;
    }
    if (len % 8 != 0 && part_differs(key, p + words * GOLDEN, 0, buf + 8 * words, len % 8)) {
        return -EFAULT;
    }
    return 0;
}

void
sim_content_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t len)
{
    sim_content_fill_with(sim_content_impl(), key, off, buf, len);
}

int
sim_content_verify(uint64_t key, uint64_t off, const uint8_t *buf, size_t len)
{
    return sim_content_verify_with(sim_content_impl(), key, off, buf, len);
}
