/* SPDX-License-Identifier: MIT */
/*
 * devlink — see devlink.h.
 */
#include "devlink.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <limits.h>
#include <linux/devlink.h>
#include <linux/genetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/macro.h"

/* Newer than Debian bookworm's linux-libc-dev (6.1): the port function's capabilities
 * (Linux 6.2, include/uapi/linux/devlink.h: DEVLINK_PORT_FN_ATTR_CAPS after _OPSTATE, a
 * bitfield32 whose bit 1 is DEVLINK_PORT_FN_ATTR_CAP_MIGRATABLE_BIT). */
#define DEVLINK_FN_ATTR_CAPS 4
#define DEVLINK_FN_CAP_MIGRATABLE (UINT32_C(1) << 1)

static const struct {
    const char *attribute; /* plugin.h's name; "port_of:" is a prefix */
    int on_port;           /* asked of a port handle (1) or a device handle (0) */
    uint8_t cmd;
    int dump;
    int missing;           /* the errno when the answer lacks it */
} devlink_queries[] = {
    [DEVLINK_QUERY_INFO_FIXED] = {"board.id", 0, DEVLINK_CMD_INFO_GET, 0, -ENOENT},
    [DEVLINK_QUERY_INFO_RUNNING] = {"fw.version", 0, DEVLINK_CMD_INFO_GET, 0, -ENOENT},
    [DEVLINK_QUERY_INFO_DRIVER] = {"driver", 0, DEVLINK_CMD_INFO_GET, 0, -ENOENT},
    [DEVLINK_QUERY_INFO_SERIAL] = {"serial_number", 0, DEVLINK_CMD_INFO_GET, 0, -ENOENT},
    [DEVLINK_QUERY_ESWITCH_MODE] = {"eswitch_mode", 0, DEVLINK_CMD_ESWITCH_GET, 0, -EOPNOTSUPP},
    [DEVLINK_QUERY_PORT_OF] = {"port_of:", 0, DEVLINK_CMD_PORT_GET, 1, -ENOENT},
    /* A port without function caps: a kernel before 6.2 or a driver without `migratable`. */
    [DEVLINK_QUERY_FN_MIGRATABLE] = {"function.migratable", 1, DEVLINK_CMD_PORT_GET, 0,
                                     -EOPNOTSUPP},
    [DEVLINK_QUERY_FN_HW_ADDR] = {"function.hw_addr", 1, DEVLINK_CMD_PORT_GET, 0, -ENOENT},
    [DEVLINK_QUERY_PCI_VF_NUMBER] = {"pci_vf_number", 1, DEVLINK_CMD_PORT_GET, 0, -ENOENT},
};
static_assert(ELEMENTSOF(devlink_queries) == _DEVLINK_QUERY_MAX, "devlink_queries out of sync");

int
devlink_query_of(const char *attribute, int has_port)
{
    for (size_t i = 0; i < ELEMENTSOF(devlink_queries); i++) {
        const char *a = devlink_queries[i].attribute;
        size_t n = strlen(a);
        int match = a[n - 1] == ':' ? strncmp(attribute, a, n) == 0 && attribute[n]
                                    : strcmp(attribute, a) == 0;

        if (match) {
            return devlink_queries[i].on_port == !!has_port ? (int) i : -EINVAL;
        }
    }
    return -EINVAL;
}

uint8_t
devlink_query_cmd(DevlinkQuery q, int *ret_dump)
{
    *ret_dump = devlink_queries[q].dump;
    return devlink_queries[q].cmd;
}

int
devlink_handle_parse(const char *handle, DevlinkHandle *ret)
{
    DevlinkHandle h = {0};
    const char *slash = strchr(handle, '/'), *port;
    char *end;

    if (!slash || slash == handle || (size_t) (slash - handle) >= sizeof(h.bus)) {
        return -EINVAL;
    }
    memcpy(h.bus, handle, (size_t) (slash - handle));
    port = strchr(slash + 1, '/');
    if ((port ? (size_t) (port - slash - 1) : strlen(slash + 1)) - 1 >= sizeof(h.dev) - 1) {
        return -EINVAL; /* empty or too long */
    }
    memcpy(h.dev, slash + 1, port ? (size_t) (port - slash - 1) : strlen(slash + 1));
    if (port) {
        unsigned long v;

        errno = 0;
        v = strtoul(port + 1, &end, 10);
        if (!port[1] || *end || errno || v > UINT32_MAX || port[1] < '0' || port[1] > '9') {
            return -EINVAL;
        }
        h.port = (uint32_t) v;
        h.has_port = 1;
    }
    *ret = h;
    return 0;
}

/* ---- building */

static struct nlmsghdr *
msg_start(void *buf, uint16_t type, uint16_t flags, uint8_t cmd, uint8_t version, uint32_t seq)
{
    struct nlmsghdr *nlh;
    struct genlmsghdr *genl;

    memset(buf, 0, DEVLINK_MSG_MAX);
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    nlh->nlmsg_seq = seq;
    genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
    genl->cmd = cmd;
    genl->version = version;
    return nlh;
}

size_t
devlink_msg_family(void *buf, uint32_t seq)
{
    struct nlmsghdr *nlh = msg_start(buf, GENL_ID_CTRL, NLM_F_ACK, CTRL_CMD_GETFAMILY, 1, seq);

    mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, DEVLINK_GENL_NAME);
    return nlh->nlmsg_len;
}

size_t
devlink_msg_request(void *buf, uint16_t family, DevlinkQuery q, const DevlinkHandle *h,
                    uint32_t seq)
{
    int dump;
    uint8_t cmd = devlink_query_cmd(q, &dump);
    struct nlmsghdr *nlh = msg_start(buf, family, dump ? NLM_F_DUMP : NLM_F_ACK, cmd,
                                     DEVLINK_GENL_VERSION, seq);

    mnl_attr_put_strz(nlh, DEVLINK_ATTR_BUS_NAME, h->bus);
    mnl_attr_put_strz(nlh, DEVLINK_ATTR_DEV_NAME, h->dev);
    if (devlink_queries[q].on_port) {
        mnl_attr_put_u32(nlh, DEVLINK_ATTR_PORT_INDEX, h->port);
    }
    return nlh->nlmsg_len;
}

/* ---- parsing */

/* The message's first attribute, after checking it is a whole generic netlink message. */
static int
msg_check(const void *msg, size_t len)
{
    const struct nlmsghdr *nlh = msg;

    if (len > INT_MAX || !mnl_nlmsg_ok(nlh, (int) len) ||
        mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr)) {
        return -EBADMSG;
    }
    return 0;
}

int
devlink_parse_family(const void *msg, size_t len, uint16_t *ret_id)
{
    const struct nlmsghdr *nlh = msg;
    const struct nlattr *a;

    if (msg_check(msg, len) < 0) {
        return -EBADMSG;
    }
    mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
        if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID &&
            mnl_attr_validate(a, MNL_TYPE_U16) == 0) {
            *ret_id = mnl_attr_get_u16(a);
            return 0;
        }
    }
    return -EBADMSG;
}

static int
copy_str(const struct nlattr *a, char *buf, size_t size)
{
    if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) {
        return -EBADMSG;
    }
    return snprintf(buf, size, "%s", mnl_attr_get_str(a)) < (int) size ? 1 : -ENOBUFS;
}

/* One nested INFO_VERSION_*: its value when its name is @name. The PSID: mlx5 reports its
 * board ID as "fw.psid" (DEVLINK_INFO_VERSION_GENERIC_FW_PSID), other drivers as "board.id". */
static int
info_version(const struct nlattr *nest, const char *name, char *buf, size_t size)
{
    const struct nlattr *a, *value = NULL;
    int named = 0;

    mnl_attr_for_each_nested(a, nest) {
        if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) {
            return -EBADMSG;
        }
        if (mnl_attr_get_type(a) == DEVLINK_ATTR_INFO_VERSION_NAME) {
            const char *n = mnl_attr_get_str(a);

            named = strcmp(n, name) == 0 ||
                    (strcmp(name, "board.id") == 0 && strcmp(n, "fw.psid") == 0);
        } else if (mnl_attr_get_type(a) == DEVLINK_ATTR_INFO_VERSION_VALUE) {
            value = a;
        }
    }
    return named && value ? copy_str(value, buf, size) : 0;
}

/* The port function's nest: its migratable capability or its hardware address. */
static int
port_function(const struct nlattr *nest, DevlinkQuery q, char *buf, size_t size)
{
    const struct nlattr *a;

    mnl_attr_for_each_nested(a, nest) {
        uint16_t t = mnl_attr_get_type(a);
        const uint8_t *p = mnl_attr_get_payload(a);
        uint16_t n = mnl_attr_get_payload_len(a);

        if (q == DEVLINK_QUERY_FN_MIGRATABLE && t == DEVLINK_FN_ATTR_CAPS) {
            struct nla_bitfield32 caps;

            if (n != sizeof(caps)) {
                return -EBADMSG;
            }
            memcpy(&caps, p, sizeof(caps));
            return snprintf(buf, size, "%s", caps.value & DEVLINK_FN_CAP_MIGRATABLE
                                                 ? "enable" : "disable") < (int) size ? 1 : -ENOBUFS;
        }
        if (q == DEVLINK_QUERY_FN_HW_ADDR && t == DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR) {
            if (n == 0 || size < 3u * n) {
                return n == 0 ? -EBADMSG : -ENOBUFS;
            }
            for (uint16_t i = 0; i < n; i++) {
                (void) snprintf(buf + 3 * i, size - 3 * i, i + 1 < n ? "%02x:" : "%02x", p[i]);
            }
            return 1;
        }
    }
    return 0;
}

/* What a PORT_GET answer says about one port, for port_of. */
typedef struct PortSeen {
    const char *bus, *dev;
    int flavour, vf_number;
    int64_t index;
} PortSeen;

static int
port_attr(const struct nlattr *a, PortSeen *s)
{
    switch (mnl_attr_get_type(a)) {
    case DEVLINK_ATTR_BUS_NAME:
    case DEVLINK_ATTR_DEV_NAME:
        if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) {
            return -EBADMSG;
        }
        *(mnl_attr_get_type(a) == DEVLINK_ATTR_BUS_NAME ? &s->bus : &s->dev) = mnl_attr_get_str(a);
        return 0;
    case DEVLINK_ATTR_PORT_FLAVOUR:
    case DEVLINK_ATTR_PORT_PCI_VF_NUMBER:
        if (mnl_attr_validate(a, MNL_TYPE_U16) < 0) {
            return -EBADMSG;
        }
        *(mnl_attr_get_type(a) == DEVLINK_ATTR_PORT_FLAVOUR ? &s->flavour : &s->vf_number) =
            mnl_attr_get_u16(a);
        return 0;
    case DEVLINK_ATTR_PORT_INDEX:
        if (mnl_attr_validate(a, MNL_TYPE_U32) < 0) {
            return -EBADMSG;
        }
        s->index = mnl_attr_get_u32(a);
        return 0;
    default:
        return 0;
    }
}

static int
port_of(const struct nlmsghdr *nlh, const DevlinkHandle *h, uint32_t vf_number, char *buf,
        size_t size)
{
    PortSeen s = {.flavour = -1, .vf_number = -1, .index = -1};
    const struct nlattr *a;

    mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
        if (port_attr(a, &s) < 0) {
            return -EBADMSG;
        }
    }
    if (!s.bus || !s.dev || strcmp(s.bus, h->bus) != 0 || strcmp(s.dev, h->dev) != 0 ||
        s.flavour != DEVLINK_PORT_FLAVOUR_PCI_VF || s.vf_number != (int) vf_number ||
        s.index < 0) {
        return 0;
    }
    return snprintf(buf, size, "%s/%s/%" PRId64, s.bus, s.dev, s.index) < (int) size ? 1
                                                                                     : -ENOBUFS;
}

/* One top-level attribute of a non-dump answer. */
static int
answer_attr(const struct nlattr *a, DevlinkQuery q, const char *name, char *buf, size_t size)
{
    static const uint16_t wants[] = {
        [DEVLINK_QUERY_INFO_FIXED] = DEVLINK_ATTR_INFO_VERSION_FIXED,
        [DEVLINK_QUERY_INFO_RUNNING] = DEVLINK_ATTR_INFO_VERSION_RUNNING,
        [DEVLINK_QUERY_INFO_DRIVER] = DEVLINK_ATTR_INFO_DRIVER_NAME,
        [DEVLINK_QUERY_INFO_SERIAL] = DEVLINK_ATTR_INFO_SERIAL_NUMBER,
        [DEVLINK_QUERY_ESWITCH_MODE] = DEVLINK_ATTR_ESWITCH_MODE,
        [DEVLINK_QUERY_FN_MIGRATABLE] = DEVLINK_ATTR_PORT_FUNCTION,
        [DEVLINK_QUERY_FN_HW_ADDR] = DEVLINK_ATTR_PORT_FUNCTION,
        [DEVLINK_QUERY_PCI_VF_NUMBER] = DEVLINK_ATTR_PORT_PCI_VF_NUMBER,
    };
    static const char *const modes[] = {"legacy", "switchdev", "switchdev_inactive"};
    uint16_t t = mnl_attr_get_type(a);

    if (t != wants[q]) {
        return 0;
    }
    switch (q) {
    case DEVLINK_QUERY_INFO_FIXED:
    case DEVLINK_QUERY_INFO_RUNNING:
        return info_version(a, name, buf, size);
    case DEVLINK_QUERY_FN_MIGRATABLE:
    case DEVLINK_QUERY_FN_HW_ADDR:
        return port_function(a, q, buf, size);
    case DEVLINK_QUERY_ESWITCH_MODE:
    case DEVLINK_QUERY_PCI_VF_NUMBER:
        if (mnl_attr_validate(a, MNL_TYPE_U16) < 0) {
            return -EBADMSG;
        }
        t = mnl_attr_get_u16(a);
        return (q == DEVLINK_QUERY_ESWITCH_MODE && t < ELEMENTSOF(modes)
                    ? snprintf(buf, size, "%s", modes[t])
                    : snprintf(buf, size, "%u", t)) < (int) size ? 1 : -ENOBUFS;
    default:
        return copy_str(a, buf, size);
    }
}

int
devlink_parse_answer(const void *msg, size_t len, DevlinkQuery q, const char *name,
                     const DevlinkHandle *h, uint32_t vf_number, char *buf, size_t size)
{
    const struct nlmsghdr *nlh = msg;
    const struct nlattr *a;

    if (msg_check(msg, len) < 0) {
        return -EBADMSG;
    }
    if (q == DEVLINK_QUERY_PORT_OF) {
        return port_of(nlh, h, vf_number, buf, size);
    }
    mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
        int r = answer_attr(a, q, name, buf, size);

        if (r != 0) {
            return r;
        }
    }
    return 0;
}

/* ---- the queries over a netlink socket */

typedef struct Answer {
    DevlinkQuery q;
    const char *name;
    const DevlinkHandle *h;
    uint32_t vf_number;
    char *buf;
    size_t size;
    int found;
    int r;         /* a parse error, which mnl_cb_run() cannot carry */
    uint16_t family;
} Answer;

static int
answer_cb(const struct nlmsghdr *nlh, void *data)
{
    Answer *an = data;
    int r;

    if (an->found) {
        return MNL_CB_OK; /* the rest of a dump */
    }
    r = devlink_parse_answer(nlh, nlh->nlmsg_len, an->q, an->name, an->h, an->vf_number, an->buf,
                             an->size);
    if (r < 0) {
        an->r = r;
        return MNL_CB_ERROR;
    }
    an->found = r > 0;
    return MNL_CB_OK;
}

static int
family_cb(const struct nlmsghdr *nlh, void *data)
{
    Answer *an = data;

    an->r = devlink_parse_family(nlh, nlh->nlmsg_len, &an->family);
    return an->r < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

/* Sends @req and runs @cb on every answer until the kernel's ACK or NLMSG_DONE. The receive
 * buffer is allocated per call, not _Thread_local: a thread-local array is zeroed in every
 * thread the process ever starts (64 workers, gRPC's), 2.3 MiB of idle RSS for a call that
 * runs only when a plugin asks devlink. */
static int
roundtrip(struct mnl_socket *nl, void *req, mnl_cb_t cb, Answer *an)
{
    enum { BUF_SIZE = 32768 };
    _cleanup_free_ uint8_t *buf = malloc(BUF_SIZE);
    const struct nlmsghdr *nlh = req;
    uint32_t portid = mnl_socket_get_portid(nl);

    if (!buf) {
        return -ENOMEM;
    }
    if (mnl_socket_sendto(nl, req, nlh->nlmsg_len) < 0) {
        return -errno;
    }
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf, BUF_SIZE);
        int r;

        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        }
        errno = 0;
        r = mnl_cb_run(buf, (size_t) n, nlh->nlmsg_seq, portid, cb, an);
        if (r == MNL_CB_ERROR) {
            return an->r < 0 ? an->r : errno ? -errno : -EBADMSG;
        }
        if (r == MNL_CB_STOP) {
            return 0;
        }
    }
}

static void
mnl_socket_closep(struct mnl_socket **nl)
{
    if (*nl) {
        (void) mnl_socket_close(*nl);
    }
}

/* A generic netlink socket with a receive timeout, and the devlink family's id. */
static int
devlink_open(struct mnl_socket **ret, uint16_t *ret_family)
{
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
    struct timeval tv = {.tv_sec = DEVLINK_TIMEOUT_MS / 1000,
                         .tv_usec = (DEVLINK_TIMEOUT_MS % 1000) * 1000};
    uint8_t req[DEVLINK_MSG_MAX];
    Answer an = {0};
    int r;

    if (!nl) {
        return -EOPNOTSUPP; /* no generic netlink here (or not for us: a sandbox) */
    }
    if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        r = -errno;
        (void) mnl_socket_close(nl);
        return r;
    }
    (void) devlink_msg_family(req, 1);
    r = roundtrip(nl, req, family_cb, &an);
    if (r < 0 || an.family == 0) {
        (void) mnl_socket_close(nl);
        return r == -ENOENT || an.family == 0 ? -EOPNOTSUPP : r; /* no devlink family */
    }
    *ret = nl;
    *ret_family = an.family;
    return 0;
}

static void
closedirp(DIR **d)
{
    if (*d) {
        (void) closedir(*d);
    }
}

/* A VF's number on its PF: which virtfnN link of the PF points at it. */
static int
vf_number_of(const char *sysfs_root, const char *pf, const char *vf, uint32_t *ret)
{
    char dir[PATH_MAX], target[PATH_MAX];
    _cleanup_(closedirp) DIR *d = NULL;
    struct dirent *e;

    if (strchr(pf, '/') || strchr(vf, '/') || !*vf ||
        snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", sysfs_root, pf) >= (int) sizeof(dir)) {
        return -EINVAL;
    }
    d = opendir(dir);
    if (!d) {
        return -ENOENT;
    }
    while ((e = readdir(d))) {
        unsigned n;
        ssize_t k;
        const char *base;

        if (sscanf(e->d_name, "virtfn%u", &n) != 1) {
            continue;
        }
        k = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
        if (k <= 0) {
            continue;
        }
        target[k] = '\0';
        base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
        if (strcmp(base, vf) == 0) {
            *ret = n;
            return 0;
        }
    }
    return -ENOENT;
}

int
devlink_get(void *userdata, const char *handle, const char *attribute, char *buf, size_t size)
{
    _cleanup_(mnl_socket_closep) struct mnl_socket *nl = NULL;
    uint8_t req[DEVLINK_MSG_MAX];
    DevlinkHandle h;
    Answer an = {.buf = buf, .size = size, .h = &h, .name = attribute};
    int q, r;

    if (devlink_handle_parse(handle, &h) < 0 || (q = devlink_query_of(attribute, h.has_port)) < 0) {
        return -ENOENT;
    }
    an.q = (DevlinkQuery) q;
    if (an.q == DEVLINK_QUERY_PORT_OF) {
        r = vf_number_of(userdata ? userdata : "/sys", h.dev, attribute + strlen("port_of:"),
                         &an.vf_number);
        if (r < 0) {
            return r;
        }
    }
    r = devlink_open(&nl, &an.family);
    if (r < 0) {
        return r;
    }
    (void) devlink_msg_request(req, an.family, an.q, &h, 2);
    r = roundtrip(nl, req, answer_cb, &an);
    if (r < 0) {
        return r == -ENODEV ? -ENOENT : r;
    }
    return an.found ? 0 : devlink_queries[an.q].missing;
}
