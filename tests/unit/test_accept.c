/* SPDX-License-Identifier: MIT */
/*
 * test_accept — util/accept.h: which accept() errors end a wake-up, skip to the next
 * connection or pause the listener, and the pause doubling to its maximum.
 */
#include <criterion/criterion.h>

#include "util/accept.h"

TestSuite(accept, .timeout = 10);

Test(accept, errors_by_kind)
{
    cr_expect_eq(accept_error_kind(-EAGAIN), ACCEPT_ERROR_EMPTY);
    cr_expect_eq(accept_error_kind(-EWOULDBLOCK), ACCEPT_ERROR_EMPTY);
    cr_expect_eq(accept_error_kind(-EINTR), ACCEPT_ERROR_NEXT);
    cr_expect_eq(accept_error_kind(-ECONNABORTED), ACCEPT_ERROR_NEXT);
    cr_expect_eq(accept_error_kind(-EPROTO), ACCEPT_ERROR_NEXT);
    /* Out of fds or memory, and anything unexpected: pause, never spin. */
    cr_expect_eq(accept_error_kind(-EMFILE), ACCEPT_ERROR_PAUSE);
    cr_expect_eq(accept_error_kind(-ENFILE), ACCEPT_ERROR_PAUSE);
    cr_expect_eq(accept_error_kind(-ENOBUFS), ACCEPT_ERROR_PAUSE);
    cr_expect_eq(accept_error_kind(-ENOMEM), ACCEPT_ERROR_PAUSE);
    cr_expect_eq(accept_error_kind(-EBADF), ACCEPT_ERROR_PAUSE);
}

Test(accept, the_pause_doubles_to_its_maximum_and_starts_again_after_a_connection)
{
    static const unsigned want[] = {50, 100, 200, 400, 800, 1000, 1000};
    AcceptPause p = {0};

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_expect_eq(accept_pause_next(&p), want[i], "pause %zu", i);
    }
    accept_pause_reset(&p);
    cr_expect_eq(accept_pause_next(&p), ACCEPT_PAUSE_FIRST_MS);
}
