/* SPDX-License-Identifier: MIT */
/*
 * migration_check — a migration's dry run, at the source (`migrate --dry-run`,
 * MigrationService/CheckMigration): the manifest a real migration would send goes to the
 * destination as a CHECK message; the destination compares it with its group exactly as it
 * compares a HELLO and answers every mismatch (CHECK_REPORT), touching no device and leaving
 * the token unspent (migration_dest.c, on_check). No job is made and no device is locked here
 * either: the only effect is one connection.
 *
 * The plan: on the loop, find the group and build its manifest (the devices' descriptors,
 * plugins included); on a worker, connect, send, read the answer; back on the loop, the
 * callback. Used by rpc/handlers/migrations.c. Threads: loop, plus the one worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "group.h"
#include "handshake.h"
#include "manager.h"
#include "migration.h"
#include "migration_internal.h"
#include "tls.h"
#include "util/cleanup.h"

typedef struct MigrationCheck {
    uv_work_t req;
    char address[TRANSPORT_ADDRESS_MAX];
    int timeout_ms;
    TlsMode tls;                           /* --tls: off is a clear connection */
    char token[TRANSPORT_TOKEN_HEX + 1];   /* the control PSK's secret (tls.h) */
    uint8_t *hello; /* CHECK's payload: HELLO's */
    size_t hello_size;
    int r;
    CompatReport report;
    char error[1024];
    migration_check_cb cb;
    void *userdata;
} MigrationCheck;

static void
check_free(MigrationCheck *c)
{
    if (c) {
        free(c->hello);
        explicit_bzero(c->token, sizeof(c->token));
        free(c);
    }
}
DEFINE_CLEANUP_FUNC(MigrationCheck *, check_free);

/* The destination's answer: CHECK_REPORT, or REFUSE/FAIL with its words. */
static int
check_answer(MigrationCheck *c, int fd)
{
    _cleanup_free_ uint8_t *buf = malloc(HANDSHAKE_REPORT_MAX + 1);
    char why[768], text[1024];
    uint32_t type, size;
    int r;

    if (!buf) {
        return -ENOMEM;
    }
    r = transport_recv_answer(fd, c->address, "migration", &type, buf, HANDSHAKE_REPORT_MAX, &size,
                              why, sizeof(why));
    if (r < 0) {
        (void) snprintf(c->error, sizeof(c->error), "asking '%s': %s", c->address, why);
        return r;
    }
    if (type == TMSG_REFUSE || type == TMSG_FAIL) {
        (void) snprintf(c->error, sizeof(c->error), "the destination refused the dry run: %s",
                        handshake_text(buf, size, 960, text, sizeof(text)));
        return -EPERM; /* a wrong or spent token: the question itself is refused */
    }
    if (type != TMSG_CHECK_REPORT || handshake_parse_report(buf, size, &c->report) < 0) {
        (void) snprintf(c->error, sizeof(c->error), "the peer at '%s' answered %s where "
                        "CHECK_REPORT was due: it speaks another version of the vfio-migd "
                        "protocol (a dry run needs the same version on both hosts)", c->address,
                        transport_message_name(type));
        return -EPROTO;
    }
    return 0;
}

static void
check_run(uv_work_t *req)
{
    MigrationCheck *c = req->data;
    _cleanup_(transport_closep) int fd = -EBADF;
    int r;

    r = transport_connect(c->address, c->timeout_ms, &fd, c->error, sizeof(c->error));
    if (r >= 0) {
        (void) transport_set_timeout(fd, c->timeout_ms);
        r = tls_client_handshake(fd, c->tls, TLS_PSK_CONTROL, c->token, c->address, c->error,
                                 sizeof(c->error));
    }
    if (r >= 0) {
        r = transport_send(fd, TMSG_CHECK, c->hello, (uint32_t) c->hello_size);
        if (r < 0) {
            (void) snprintf(c->error, sizeof(c->error), "sending the manifest to '%s' failed: %s",
                            c->address, transport_strerror(r));
        }
    }
    c->r = r < 0 ? r : check_answer(c, fd);
}

static void
check_after(uv_work_t *req, int status)
{
    _cleanup_(check_freep) MigrationCheck *c = req->data;

    if (status < 0 && c->r >= 0) {
        c->r = status;
        (void) snprintf(c->error, sizeof(c->error), "the dry run was cancelled");
    }
    c->cb(c->r, c->r >= 0 ? &c->report : NULL, c->error, c->userdata);
}

/* The manifest of @g as a source sends it, encoded as HELLO's payload into @c. */
static int
check_build(MigrationCheck *c, const Group *g, const char *token, char *err, size_t err_size)
{
    _cleanup_free_ StreamManifestDevice *devs = calloc(g->n_devices + 1, sizeof(*devs));
    StreamManifest mf = {.devices = devs};
    char proof[TRANSPORT_TOKEN_HEX + 1];
    int r;

    if (!devs) {
        return -ENOMEM;
    }
    r = mig_manifest_of_group(g, &mf, err, err_size);
    if (r < 0) {
        return r;
    }
    /* As a migration's HELLO: with TLS, a proof in place of the token (migration_source.c). */
    if (c->tls != TLS_MODE_OFF) {
        tls_hello_proof(token, proof);
    }
    r = mig_encode_hello(c->tls == TLS_MODE_OFF ? token : proof, /* stream_id= */ 0, &mf, &c->hello,
                         &c->hello_size);
    if (r == -E2BIG) {
        (void) snprintf(err, err_size, "the manifest of '%s' is larger than a control message "
                        "may be (%u bytes)", g->name, TRANSPORT_MAX_MESSAGE);
    }
    return r;
}

int
migration_check(Manager *m, const char *group, const char *address, const char *token,
                uint32_t timeout_ms, TlsMode tls, migration_check_cb cb, void *userdata,
                char *err, size_t err_size)
{
    _cleanup_(check_freep) MigrationCheck *c = NULL;
    const Group *g = group_find(m, group);
    int r;

    if (!g) {
        (void) snprintf(err, err_size, "no group named '%.64s'", group);
        return -ENOENT;
    }
    r = transport_check_peer_address(address, err, err_size);
    if (r < 0) {
        return r;
    }
    if (strlen(token) != TRANSPORT_TOKEN_HEX || strlen(address) >= TRANSPORT_ADDRESS_MAX) {
        (void) snprintf(err, err_size, "the token must be the %d characters `vfio-migctl "
                        "incoming` printed; the address at most %d", TRANSPORT_TOKEN_HEX,
                        TRANSPORT_ADDRESS_MAX - 1);
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->tls = tls;
    memcpy(c->token, token, TRANSPORT_TOKEN_HEX);
    r = check_build(c, g, token, err, err_size);
    if (r < 0) {
        return r;
    }
    (void) snprintf(c->address, sizeof(c->address), "%s", address);
    c->timeout_ms = (int) (timeout_ms ? timeout_ms : m->migration_defaults.timeout_ms);
    c->cb = cb;
    c->userdata = userdata;
    c->req.data = c;
    r = uv_queue_work(m->loop, &c->req, check_run, check_after);
    if (r < 0) {
        (void) snprintf(err, err_size, "cannot start the dry run: %s", uv_strerror(r));
        return r;
    }
    TAKE_PTR(c);
    return 0;
}
