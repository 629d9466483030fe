/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * status — the one place where a negative errno becomes a gRPC status code (CONVENTIONS 9,
 * snippet C1). Every answer the daemon gives goes through here: the handlers' refusals and
 * failures, the server's own (unknown method, unparsable request, admission), and the end
 * of a stream.
 *
 * The same errno means different things depending on how far a request got: EINVAL before
 * anything was touched is "you asked wrong" (INVALID_ARGUMENT), but from a kernel arc it is
 * "the device refused" — the request failed part-way and the device was rolled back or left
 * somewhere (ABORTED). So a caller says which kind of failure it answers (RpcFailure).
 *
 * Used by:  rpc/server.c (which the handlers answer through), tests/unit/test_status.c.
 * Threads:  any. Pure.
 */

#include <grpc/status.h>

typedef enum RpcFailure {
    /* Refused before anything was touched, or a file the caller named could not be used:
     * the errno says what is wrong with the request or the host (the plain table). */
    RPC_FAILURE_REFUSED,
    /* A device did something else than asked part-way (a kernel arc, its data session, a
     * region access): ABORTED whatever the errno; the message says where the device was
     * left, or that it was rolled back. */
    RPC_FAILURE_DEVICE,
    /* A job (a migration, a group save or restore) failed part-way: ABORTED, unless the
     * errno blames the job's input (a damaged, truncated or foreign stream, state saved
     * from another kind of device), which answers as if it had been refused. */
    RPC_FAILURE_JOB,
    _RPC_FAILURE_MAX,
} RpcFailure;

/* The status for a request refused with @r (0 gives OK; unlisted errnos INTERNAL). */
grpc_status_code rpc_status_from_errno(int r);
/* The status for a request that failed with @r in the way @failure says. */
grpc_status_code rpc_status_from_failure(int r, RpcFailure failure);
