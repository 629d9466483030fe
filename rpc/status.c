/* SPDX-License-Identifier: MIT */
/*
 * status — see status.h. Kernel arc failures are not mapped here: the device handlers answer
 * those with ABORTED explicitly, because the same errno (EIO, EINVAL) means "the device
 * failed" there and "you asked wrong" everywhere else.
 */
#include "status.h"

#include <errno.h>

grpc_status_code
rpc_status_from_errno(int r)
{
    switch (-r) {
    case 0:
        return GRPC_STATUS_OK;
    case ENOENT:       /* no such device, group, job or file */
        return GRPC_STATUS_NOT_FOUND;
    case EINVAL:       /* malformed request, or a path the kernel refuses */
    case ERANGE:
    case ENAMETOOLONG:
    case EBADMSG:      /* a damaged save file */
    case ENOEXEC:      /* not a save file */
    case EISDIR:       /* a directory where a file was meant */
    case ENOTDIR:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case EEXIST:
        return GRPC_STATUS_ALREADY_EXISTS;
    case EBUSY:        /* another operation holds the object */
    case EOPNOTSUPP:   /* the device cannot do this (no migration, no P2P) */
    case ENOTTY:
    case EMEDIUMTYPE:  /* state saved from another kind of device */
    case EPROTONOSUPPORT:
    case ESTALE:       /* wrong phase for the request */
        return GRPC_STATUS_FAILED_PRECONDITION;
    case EACCES:
    case EPERM:
        return GRPC_STATUS_PERMISSION_DENIED;
    case ENOSPC:       /* a daemon limit */
    case ENOMEM:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case ENOSYS:
        return GRPC_STATUS_UNIMPLEMENTED;
    case ECANCELED:
        return GRPC_STATUS_CANCELLED;
    case ETIMEDOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case ESHUTDOWN:
        return GRPC_STATUS_UNAVAILABLE;
    case ECONNABORTED:
        return GRPC_STATUS_ABORTED;
    default:
        return GRPC_STATUS_INTERNAL;
    }
}
