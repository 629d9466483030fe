/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * devlink — answers the plugins' devlink_get host service (include/vfio-migd/plugin.h) over
 * devlink generic netlink, with libmnl: a PF's `devlink dev info` (board.id, fw.version,
 * driver, serial_number), its eswitch mode, a VF's port and that port function's
 * `migratable` capability, hw_addr and VF number — what `devlink dev info`, `devlink dev
 * eswitch show` and `devlink port function show` print, read without running a tool.
 *
 * The message building and parsing (devlink_msg_*, devlink_parse_*) touch memory only, so the
 * unit test builds requests and answers in memory (tests/unit/test_devlink.c); devlink_get()
 * does the I/O: one netlink socket per query, a receive timeout so nothing waits without an
 * end, and a VF's number read from the PF's virtfnN links under the sysfs root.
 *
 * Used by:  plugin_host.c (plugin_services_default()), the plugins through devlink_get.
 * Threads:  any; no state between calls. Non-logging.
 * Errors:   -ENOENT no such device, port or attribute; -EOPNOTSUPP no devlink (no generic
 *           netlink, no devlink family, or a kernel too old for the attribute); -ENOBUFS
 *           @size too small; -ETIMEDOUT the kernel did not answer; another negative errno.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define DEVLINK_MSG_MAX 8192          /* one request; answers are read in MNL_SOCKET_BUFFER_SIZE */
#define DEVLINK_TIMEOUT_MS 2000       /* the kernel answers in microseconds; this is an end */

/* "pci/0000:3b:00.0" (a device) or "pci/0000:3b:00.0/1" (a port). */
typedef struct DevlinkHandle {
    char bus[16];
    char dev[64];
    uint32_t port;
    int has_port;
} DevlinkHandle;

/* What one attribute of devlink_get needs: which command, on a device or a port. */
typedef enum DevlinkQuery {
    DEVLINK_QUERY_INFO_FIXED,     /* devlink dev info, a fixed version ("board.id") */
    DEVLINK_QUERY_INFO_RUNNING,   /* devlink dev info, a running version ("fw.version") */
    DEVLINK_QUERY_INFO_DRIVER,
    DEVLINK_QUERY_INFO_SERIAL,
    DEVLINK_QUERY_ESWITCH_MODE,
    DEVLINK_QUERY_PORT_OF,        /* "port_of:<VF>": a dump of the device's ports */
    DEVLINK_QUERY_FN_MIGRATABLE,  /* the port function's caps, bit MIGRATABLE */
    DEVLINK_QUERY_FN_HW_ADDR,
    DEVLINK_QUERY_PCI_VF_NUMBER,
    _DEVLINK_QUERY_MAX,
    _DEVLINK_QUERY_INVALID = -EINVAL,
} DevlinkQuery;

/* The query of @attribute on a handle with or without a port; -EINVAL an attribute
 * plugin.h does not list, or listed for the other kind of handle. */
int devlink_query_of(const char *attribute, int has_port);
/* The netlink command a query sends (DEVLINK_CMD_*) and whether it dumps. */
uint8_t devlink_query_cmd(DevlinkQuery q, int *ret_dump);

int devlink_handle_parse(const char *handle, DevlinkHandle *ret);

/* Builds CTRL_CMD_GETFAMILY for "devlink" into @buf (at least DEVLINK_MSG_MAX bytes);
 * returns its length. */
size_t devlink_msg_family(void *buf, uint32_t seq);
/* The devlink family id from a CTRL_CMD_NEWFAMILY answer: 0, or -EBADMSG. */
int devlink_parse_family(const void *msg, size_t len, uint16_t *ret_id);
/* Builds the request of @q for @h (bus, dev and, for a port query, the port index; a dump
 * names the device so a kernel that filters dumps does). Returns its length. */
size_t devlink_msg_request(void *buf, uint16_t family, DevlinkQuery q, const DevlinkHandle *h,
                           uint32_t seq);

/* Looks in one answer message for what @q asks; @name is the version name of an info query,
 * @vf_number the VF of a port_of query (and @h's device, which a dump answer must name).
 * 1 found (the value in @buf), 0 not in this message, -ENOBUFS, -EOPNOTSUPP (the port has no
 * function caps: a kernel or driver without `migratable`), -EBADMSG. */
int devlink_parse_answer(const void *msg, size_t len, DevlinkQuery q, const char *name,
                         const DevlinkHandle *h, uint32_t vf_number, char *buf, size_t size);

/* The devlink_get host service (plugin_host.h PluginServices): @userdata is the sysfs root
 * (const char *), for a VF's number. */
int devlink_get(void *userdata, const char *handle, const char *attribute, char *buf,
                size_t size);
