/* SPDX-License-Identifier: MIT */
/*
 * client_socket — why the daemon cannot be reached through the socket the user named, in one
 * sentence that names the path and what to do (client_internal.h).
 *
 * Before the first call the path is looked at with stat(): a missing file, something that is
 * not a socket, or a socket we may not connect to are said at once, without gRPC. What only a
 * connection shows (nobody listens, or the server there does not speak gRPC over HTTP/2) is
 * read from the text gRPC gives when its connection attempt failed: "failed to connect to all
 * addresses; last error: ...: REASON". That text is not an API, so an unknown REASON keeps
 * gRPC's own words rather than a guess.
 */
#include "client_internal.h"

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/macro.h"

/* What the user can do when the path is wrong. */
#define SOCKET_HINT "use --socket to name the daemon's socket (the default is " \
    RPC_DEFAULT_SOCKET ")"

/* The prefix of gRPC's text for a channel that could not connect. */
#define GRPC_CONNECT_FAILED "failed to connect to all addresses"

/* The file types by their S_IFMT bits (octal 0170000: the type is the top 4 bits of the
 * 16, so (mode & S_IFMT) >> 12 indexes 16 rows); the ones a user meets in place of a socket. */
#define FILE_TYPE_INDEX(mode) (((mode) & S_IFMT) >> 12)
static const char *const file_types[FILE_TYPE_INDEX(S_IFMT) + 1] = {
    [FILE_TYPE_INDEX(S_IFREG)] = "a regular file",
    [FILE_TYPE_INDEX(S_IFDIR)] = "a directory",
    [FILE_TYPE_INDEX(S_IFIFO)] = "a FIFO",
    [FILE_TYPE_INDEX(S_IFCHR)] = "a character device",
    [FILE_TYPE_INDEX(S_IFBLK)] = "a block device",
};

static const char *
file_type_words(mode_t mode)
{
    const char *words = file_types[FILE_TYPE_INDEX(mode)];

    return words ? words : "not a socket";
}

/* How gRPC's reason for a failed connection reads, for the cases a user meets. */
typedef enum ConnectFailure {
    CONNECT_NOBODY,  /* a socket file nobody listens on: a stopped daemon's */
    CONNECT_GONE,    /* the file went away after it was looked at */
    CONNECT_FOREIGN, /* a server that does not speak HTTP/2 */
    CONNECT_CLOSED,  /* the server closed the connection without a word */
} ConnectFailure;

static const struct {
    const char *grpc_text;
    ConnectFailure failure;
    const char *server_did; /* CONNECT_FOREIGN: what the server did, in words */
} connect_reasons[] = {
    {"Connection refused", CONNECT_NOBODY, NULL},
    {"No such file or directory", CONNECT_GONE, NULL},
    {"http1.x", CONNECT_FOREIGN, "answers HTTP/1.x"},
    {"Failed parsing HTTP/2", CONNECT_FOREIGN, "sent bytes that are not HTTP/2"},
    {"before receiving SETTINGS", CONNECT_FOREIGN,
     "accepted the connection and sent nothing (no HTTP/2 greeting) for 20 s"},
    {"Socket closed", CONNECT_CLOSED, NULL},
    {"Connection reset", CONNECT_CLOSED, NULL},
    {"Broken pipe", CONNECT_CLOSED, NULL},
    {"End of TCP stream", CONNECT_CLOSED, NULL},
};

/* Says what the server at the path did; false when @text is no known connection failure. */
static bool
explain_connect_failure(RpcClient *c, const char *text, RpcError *err)
{
    const char *p = c->socket_path;

    if (strncmp(text, GRPC_CONNECT_FAILED, strlen(GRPC_CONNECT_FAILED)) != 0) {
        return false;
    }
    for (size_t i = 0; i < ELEMENTSOF(connect_reasons); i++) {
        if (!strstr(text, connect_reasons[i].grpc_text)) {
            continue;
        }
        switch (connect_reasons[i].failure) {
        case CONNECT_NOBODY:
            rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "cannot reach vfio-migd at '%s': "
                          "nobody listens on this socket (is the daemon running? a daemon that "
                          "was killed leaves its socket behind); start it, or " SOCKET_HINT, p);
            return true;
        case CONNECT_GONE:
            rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "cannot reach vfio-migd at '%s': the "
                          "socket was removed (is the daemon running?); start it, or "
                          SOCKET_HINT, p);
            return true;
        case CONNECT_FOREIGN:
            rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "'%s' is not a vfio-migd API socket "
                          "(the server listening there %s); " SOCKET_HINT, p,
                          connect_reasons[i].server_did);
            return true;
        case CONNECT_CLOSED:
            rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "the server at '%s' closed the "
                          "connection without answering: either it is not vfio-migd (then "
                          SOCKET_HINT ") or the daemon has --max-connections clients already "
                          "(its log says 'Refused an API connection'; retry later)", p);
            return true;
        }
    }
    return false;
}

bool
rpc_explain_unreachable(RpcClient *c, grpc_status_code status, const char *text,
                        int timeout_ms, RpcError *err)
{
    if (c->reached) {
        return false;
    }
    if (status == GRPC_STATUS_UNAVAILABLE) {
        return explain_connect_failure(c, text, err);
    }
    /* Our deadline passed before the connection was up: the server there never greeted us
     * in HTTP/2 (a vfio-migd does so as soon as it accepts). */
    if (status == GRPC_STATUS_DEADLINE_EXCEEDED && timeout_ms > 0 &&
        grpc_channel_check_connectivity_state(c->channel, 0) != GRPC_CHANNEL_READY) {
        rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "nothing at '%s' answered as a gRPC server "
                      "within %g s: it is not a vfio-migd API socket, or the daemon is stuck "
                      "(its log, or `systemctl status vfio-migd`, says why); " SOCKET_HINT,
                      c->socket_path, timeout_ms / 1000.0);
        return true;
    }
    return false;
}

/* We may not connect: the daemon may well run, so "is the daemon running?" would mislead. */
static int
permission_denied(RpcClient *c, RpcError *err)
{
    struct stat st;
    struct group *gr;

    gr = stat(c->socket_path, &st) == 0 ? getgrgid(st.st_gid) : NULL;
    if (gr && st.st_gid != 0) {
        rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "permission denied on '%s': run as "
                      "root or as a member of group '%s'", c->socket_path, gr->gr_name);
    } else {
        rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "permission denied on '%s': run as "
                      "root", c->socket_path);
    }
    return -EREMOTEIO;
}

int
rpc_check_socket(RpcClient *c, RpcError *err)
{
    const char *p = c->socket_path;
    struct stat st;

    if (c->reached) {
        return 0;
    }
    if (stat(p, &st) < 0) {
        if (errno == EACCES) {
            return permission_denied(c, err);
        }
        rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "cannot reach vfio-migd at '%s': %s (is "
                      "the daemon running?); start it, or " SOCKET_HINT, p,
                      errno == ENOENT ? "there is no such file" : strerror(errno));
        return -EREMOTEIO;
    }
    /* Permissions first: what we may not use is not ours to judge further. */
    if (access(p, W_OK) < 0) {
        if (errno == EACCES) {
            return permission_denied(c, err);
        }
        rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "cannot reach vfio-migd at '%s': %s; "
                      SOCKET_HINT, p, strerror(errno));
        return -EREMOTEIO;
    }
    if (!S_ISSOCK(st.st_mode)) {
        rpc_error_set(err, GRPC_STATUS_UNAVAILABLE, "'%s' is not a vfio-migd API socket (it is "
                      "%s); " SOCKET_HINT, p, file_type_words(st.st_mode));
        return -EREMOTEIO;
    }
    return 0;
}
