/* SPDX-License-Identifier: MIT */
/*
 * test_status — the errno -> gRPC status table (rpc/status.c), written out here once more by
 * hand, so that a changed row shows up as a failure instead of passing silently. Every errno
 * the kernel defines is checked: the listed ones against this table, the others must be
 * INTERNAL. Then the three kinds of failure (status.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "status.h"
#include "util/macro.h"

TestSuite(status, .timeout = 120);

/* The highest errno Linux defines (EHWPOISON); beyond it nothing is listed. */
#define ERRNO_LAST 133

static const struct {
    int e;
    grpc_status_code code;
    bool blames_input; /* a job failing with it answers code, not ABORTED */
} expected[] = {
    {ENOENT, GRPC_STATUS_NOT_FOUND, false},
    {EINVAL, GRPC_STATUS_INVALID_ARGUMENT, false},
    {ERANGE, GRPC_STATUS_INVALID_ARGUMENT, false},
    {ENAMETOOLONG, GRPC_STATUS_INVALID_ARGUMENT, false},
    {EISDIR, GRPC_STATUS_INVALID_ARGUMENT, false},
    {ENOTDIR, GRPC_STATUS_INVALID_ARGUMENT, false},
    {EBADMSG, GRPC_STATUS_INVALID_ARGUMENT, true},
    {ENODATA, GRPC_STATUS_INVALID_ARGUMENT, true},
    {ENOEXEC, GRPC_STATUS_INVALID_ARGUMENT, true},
    {EEXIST, GRPC_STATUS_ALREADY_EXISTS, false},
    {EBUSY, GRPC_STATUS_FAILED_PRECONDITION, false},
    {EOPNOTSUPP, GRPC_STATUS_FAILED_PRECONDITION, false},
    {ENOTTY, GRPC_STATUS_FAILED_PRECONDITION, false},
    {EMEDIUMTYPE, GRPC_STATUS_FAILED_PRECONDITION, true},
    {EPROTONOSUPPORT, GRPC_STATUS_FAILED_PRECONDITION, false},
    {ESTALE, GRPC_STATUS_FAILED_PRECONDITION, false},
    {EACCES, GRPC_STATUS_PERMISSION_DENIED, false},
    {EPERM, GRPC_STATUS_PERMISSION_DENIED, false},
    {ELOOP, GRPC_STATUS_PERMISSION_DENIED, false},
    {ENOSPC, GRPC_STATUS_RESOURCE_EXHAUSTED, false},
    {ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED, false},
    {ENOSYS, GRPC_STATUS_UNIMPLEMENTED, false},
    {ECANCELED, GRPC_STATUS_CANCELLED, false},
    {ETIMEDOUT, GRPC_STATUS_DEADLINE_EXCEEDED, false},
    {ESHUTDOWN, GRPC_STATUS_UNAVAILABLE, false},
    {ECONNREFUSED, GRPC_STATUS_UNAVAILABLE, false},
    {EHOSTUNREACH, GRPC_STATUS_UNAVAILABLE, false},
    {ENETUNREACH, GRPC_STATUS_UNAVAILABLE, false},
    {ECONNABORTED, GRPC_STATUS_ABORTED, false},
};

/* The row for @e, or -1 when the table does not list it. */
static int
row_of(int e)
{
    for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
        if (expected[i].e == e) {
            return (int) i;
        }
    }
    return -1;
}

Test(status, success_is_ok_whatever_the_failure_kind)
{
    cr_expect_eq(rpc_status_from_errno(0), GRPC_STATUS_OK);
    for (int f = 0; f < _RPC_FAILURE_MAX; f++) {
        cr_expect_eq(rpc_status_from_failure(0, (RpcFailure) f), GRPC_STATUS_OK, "kind %d", f);
    }
}

Test(status, every_errno_when_refused)
{
    for (int e = 1; e <= ERRNO_LAST + 16; e++) {
        int i = row_of(e);
        grpc_status_code want = i >= 0 ? expected[i].code : GRPC_STATUS_INTERNAL;

        cr_expect_eq(rpc_status_from_errno(-e), want, "-%s (%d)", strerrorname_np(e) ?: "?", e);
        cr_expect_eq(rpc_status_from_failure(-e, RPC_FAILURE_REFUSED), want, "-%s (%d)",
                     strerrorname_np(e) ?: "?", e);
    }
}

Test(status, a_device_failing_part_way_is_aborted_whatever_the_errno)
{
    /* EINVAL or ENOENT from a kernel arc are the device's answer, not the caller's mistake. */
    for (int e = 1; e <= ERRNO_LAST + 16; e++) {
        cr_expect_eq(rpc_status_from_failure(-e, RPC_FAILURE_DEVICE), GRPC_STATUS_ABORTED,
                     "-%s (%d)", strerrorname_np(e) ?: "?", e);
    }
}

Test(status, a_job_is_aborted_unless_its_input_is_at_fault)
{
    for (int e = 1; e <= ERRNO_LAST + 16; e++) {
        int i = row_of(e);
        grpc_status_code want =
            i >= 0 && expected[i].blames_input ? expected[i].code : GRPC_STATUS_ABORTED;

        cr_expect_eq(rpc_status_from_failure(-e, RPC_FAILURE_JOB), want, "-%s (%d)",
                     strerrorname_np(e) ?: "?", e);
    }
    /* The cases the save/restore tests rely on, spelled out. */
    cr_expect_eq(rpc_status_from_failure(-EMEDIUMTYPE, RPC_FAILURE_JOB),
                 GRPC_STATUS_FAILED_PRECONDITION, "state from another kind of device");
    cr_expect_eq(rpc_status_from_failure(-EBADMSG, RPC_FAILURE_JOB),
                 GRPC_STATUS_INVALID_ARGUMENT, "a damaged file");
    cr_expect_eq(rpc_status_from_failure(-EIO, RPC_FAILURE_JOB), GRPC_STATUS_ABORTED,
                 "a device failing during a restore");
    cr_expect_eq(rpc_status_from_failure(-ENOENT, RPC_FAILURE_JOB), GRPC_STATUS_ABORTED,
                 "a file gone while the job ran");
}

Test(status, nonsense_is_internal_not_a_crash)
{
    cr_expect_eq(rpc_status_from_errno(5), GRPC_STATUS_INTERNAL, "a positive errno is a bug");
    cr_expect_eq(rpc_status_from_errno(-100000), GRPC_STATUS_INTERNAL);
    cr_expect_eq(rpc_status_from_errno(-2147483647), GRPC_STATUS_INTERNAL);
    cr_expect_eq(rpc_status_from_errno(INT_MIN), GRPC_STATUS_INTERNAL, "-INT_MIN overflows");
    cr_expect_eq(rpc_status_from_failure(-100000, RPC_FAILURE_JOB), GRPC_STATUS_ABORTED);
}
