/* SPDX-License-Identifier: MIT */
/*
 * status — see status.h. One table, indexed by errno: the status a refusal with that errno
 * gets, and whether the errno blames a job's input. Anything not listed is INTERNAL: an
 * errno nobody expected is a bug or an environment problem, not the caller's mistake.
 */
#include "status.h"

#include <errno.h>
#include <stdbool.h>

#include "util/macro.h"

typedef struct ErrnoStatus {
    bool listed;           /* false: not in the table, INTERNAL */
    grpc_status_code code; /* the answer to a request refused with this errno */
    bool blames_input;     /* a job that failed with it failed on its input, not part-way */
} ErrnoStatus;

#define MAP(e, c)   [e] = {true, GRPC_STATUS_##c, false}
#define INPUT(e, c) [e] = {true, GRPC_STATUS_##c, true}

static const ErrnoStatus errno_table[] = {
    MAP(ENOENT, NOT_FOUND),                   /* no such device, group, job or file */
    MAP(EINVAL, INVALID_ARGUMENT),            /* malformed request, or a path the kernel refuses */
    MAP(ERANGE, INVALID_ARGUMENT),            /* a number or a byte range out of bounds */
    MAP(ENAMETOOLONG, INVALID_ARGUMENT),      /* a path or name over its limit */
    MAP(EISDIR, INVALID_ARGUMENT),            /* a directory where a file was meant */
    MAP(ENOTDIR, INVALID_ARGUMENT),
    INPUT(EBADMSG, INVALID_ARGUMENT),         /* a damaged save file or stream */
    INPUT(ENODATA, INVALID_ARGUMENT),         /* a truncated one */
    INPUT(ENOEXEC, INVALID_ARGUMENT),         /* not a save file at all */
    MAP(EEXIST, ALREADY_EXISTS),
    MAP(EBUSY, FAILED_PRECONDITION),          /* another operation holds the object */
    MAP(EOPNOTSUPP, FAILED_PRECONDITION),     /* the device cannot do this (no migration, P2P) */
    MAP(ENOTTY, FAILED_PRECONDITION),         /* the back-end has no such feature */
    INPUT(EMEDIUMTYPE, FAILED_PRECONDITION),  /* state saved from another kind of device */
    MAP(EPROTONOSUPPORT, FAILED_PRECONDITION),
    MAP(ESTALE, FAILED_PRECONDITION),         /* wrong phase or state for the request */
    MAP(EACCES, PERMISSION_DENIED),
    MAP(EPERM, PERMISSION_DENIED),            /* e.g. a file outside the allowed directories */
    MAP(ELOOP, PERMISSION_DENIED),            /* a symbolic link where vfio-migd follows none */
    MAP(ENOSPC, RESOURCE_EXHAUSTED),          /* a daemon limit */
    MAP(ENOMEM, RESOURCE_EXHAUSTED),
    MAP(ENOSYS, UNIMPLEMENTED),               /* no such method */
    MAP(ECANCELED, CANCELLED),
    MAP(ETIMEDOUT, DEADLINE_EXCEEDED),
    MAP(ESHUTDOWN, UNAVAILABLE),              /* the daemon is stopping */
    MAP(ECONNREFUSED, UNAVAILABLE),           /* a peer daemon cannot be reached */
    MAP(EHOSTUNREACH, UNAVAILABLE),
    MAP(ENETUNREACH, UNAVAILABLE),
    MAP(ECONNABORTED, ABORTED),               /* a peer daemon ended a migration */
};

/* The row for @r, or NULL when the table does not list it. */
static const ErrnoStatus *
errno_status(int r)
{
    /* Compared before negating: -INT_MIN does not exist. */
    if (r >= 0 || r <= -(int) ELEMENTSOF(errno_table) || !errno_table[-r].listed) {
        return NULL;
    }
    return &errno_table[-r];
}

grpc_status_code
rpc_status_from_errno(int r)
{
    const ErrnoStatus *s = errno_status(r);

    if (r == 0) {
        return GRPC_STATUS_OK;
    }
    return s ? s->code : GRPC_STATUS_INTERNAL;
}

grpc_status_code
rpc_status_from_failure(int r, RpcFailure failure)
{
    const ErrnoStatus *s = errno_status(r);

    if (r == 0 || failure == RPC_FAILURE_REFUSED) {
        return rpc_status_from_errno(r);
    }
    if (failure == RPC_FAILURE_JOB && s && s->blames_input) {
        return s->code;
    }
    return GRPC_STATUS_ABORTED;
}
