/* SPDX-License-Identifier: MIT */
/*
 * test_devlink — the devlink host service's netlink messages (daemon/devlink.c), built and
 * parsed in memory without a kernel: the requests it sends (family lookup, dev info, eswitch,
 * port get and the port dump) and the answers it reads, shaped as the kernel's
 * devlink_nl_*_fill() shapes them (mlx5: the PSID as the fixed version "fw.psid"), including
 * truncated and malformed ones. Last, the real service on this host: whatever it finds, a
 * device that does not exist is never an answer.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <criterion/criterion.h>
#include <libmnl/libmnl.h>
#include <linux/devlink.h>
#include <linux/genetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devlink.h"
#include "tmptree.h"

#define FAMILY 0x1a

static uint8_t msg[DEVLINK_MSG_MAX];

static struct nlmsghdr *
answer(uint8_t cmd)
{
    struct nlmsghdr *nlh;
    struct genlmsghdr *g;

    memset(msg, 0, sizeof(msg));
    nlh = mnl_nlmsg_put_header(msg);
    nlh->nlmsg_type = FAMILY;
    g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
    g->cmd = cmd;
    mnl_attr_put_strz(nlh, DEVLINK_ATTR_BUS_NAME, "pci");
    mnl_attr_put_strz(nlh, DEVLINK_ATTR_DEV_NAME, "0000:3b:00.0");
    return nlh;
}

static void
version(struct nlmsghdr *nlh, uint16_t kind, const char *name, const char *value)
{
    struct nlattr *nest = mnl_attr_nest_start(nlh, kind);

    mnl_attr_put_strz(nlh, DEVLINK_ATTR_INFO_VERSION_NAME, name);
    mnl_attr_put_strz(nlh, DEVLINK_ATTR_INFO_VERSION_VALUE, value);
    mnl_attr_nest_end(nlh, nest);
}

static int
parse(const struct nlmsghdr *nlh, const char *attribute, uint32_t vf, char *buf, size_t size)
{
    DevlinkHandle h;
    int q = devlink_query_of(attribute, strcmp(attribute, "function.migratable") == 0 ||
                                            strcmp(attribute, "function.hw_addr") == 0 ||
                                            strcmp(attribute, "pci_vf_number") == 0);

    cr_assert_geq(q, 0, "%s", attribute);
    cr_assert_eq(devlink_handle_parse("pci/0000:3b:00.0", &h), 0);
    return devlink_parse_answer(nlh, nlh->nlmsg_len, (DevlinkQuery) q, attribute, &h, vf, buf,
                                size);
}

Test(devlink, handles)
{
    DevlinkHandle h;

    cr_assert_eq(devlink_handle_parse("pci/0000:3b:00.0", &h), 0);
    cr_assert_str_eq(h.bus, "pci");
    cr_assert_str_eq(h.dev, "0000:3b:00.0");
    cr_assert_eq(h.has_port, 0);
    cr_assert_eq(devlink_handle_parse("pci/0000:3b:00.0/65535", &h), 0);
    cr_assert_eq(h.has_port, 1);
    cr_assert_eq(h.port, 65535);
    const char *bad[] = {"pci", "pci/", "/0000:3b:00.0", "pci/0000:3b:00.0/", "pci/0000:3b:00.0/x",
                         "pci/0000:3b:00.0/1/2", "pci/0000:3b:00.0/-1", "pci/0000:3b:00.0/ 1",
                         "pci/0000:3b:00.0/4294967296", "averyveryverylongbus/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(devlink_handle_parse(bad[i], &h), -EINVAL, "%s", bad[i]);
    }
}

Test(devlink, attributes_of_devices_and_ports)
{
    cr_assert_eq(devlink_query_of("board.id", 0), DEVLINK_QUERY_INFO_FIXED);
    cr_assert_eq(devlink_query_of("fw.version", 0), DEVLINK_QUERY_INFO_RUNNING);
    cr_assert_eq(devlink_query_of("eswitch_mode", 0), DEVLINK_QUERY_ESWITCH_MODE);
    cr_assert_eq(devlink_query_of("port_of:0000:3b:00.2", 0), DEVLINK_QUERY_PORT_OF);
    cr_assert_eq(devlink_query_of("function.migratable", 1), DEVLINK_QUERY_FN_MIGRATABLE);
    cr_assert_eq(devlink_query_of("board.id", 1), -EINVAL, "a device's, asked of a port");
    cr_assert_eq(devlink_query_of("function.migratable", 0), -EINVAL);
    cr_assert_eq(devlink_query_of("port_of:", 0), -EINVAL, "no VF named");
    cr_assert_eq(devlink_query_of("fw.psid", 0), -EINVAL, "not in plugin.h");
}

Test(devlink, the_requests)
{
    DevlinkHandle h;
    struct nlmsghdr *nlh = (struct nlmsghdr *) msg;
    struct genlmsghdr *g;
    size_t n = devlink_msg_family(msg, 7);
    const struct nlattr *a;
    int attrs = 0;

    cr_assert_eq(n, nlh->nlmsg_len);
    cr_assert_eq(nlh->nlmsg_type, GENL_ID_CTRL);
    cr_assert_eq(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
    cr_assert_eq(nlh->nlmsg_seq, 7);
    g = mnl_nlmsg_get_payload(nlh);
    cr_assert_eq(g->cmd, CTRL_CMD_GETFAMILY);
    mnl_attr_for_each(a, nlh, sizeof(*g)) {
        cr_assert_eq(mnl_attr_get_type(a), CTRL_ATTR_FAMILY_NAME);
        cr_assert_str_eq(mnl_attr_get_str(a), "devlink");
        attrs++;
    }
    cr_assert_eq(attrs, 1);

    cr_assert_eq(devlink_handle_parse("pci/0000:3b:00.0/3", &h), 0);
    (void) devlink_msg_request(msg, FAMILY, DEVLINK_QUERY_FN_MIGRATABLE, &h, 8);
    cr_assert_eq(nlh->nlmsg_type, FAMILY);
    cr_assert_eq(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
    cr_assert_eq(((struct genlmsghdr *) mnl_nlmsg_get_payload(nlh))->cmd, DEVLINK_CMD_PORT_GET);
    attrs = 0;
    mnl_attr_for_each(a, nlh, sizeof(*g)) {
        uint16_t t = mnl_attr_get_type(a);

        cr_assert(t == DEVLINK_ATTR_BUS_NAME || t == DEVLINK_ATTR_DEV_NAME ||
                  t == DEVLINK_ATTR_PORT_INDEX);
        if (t == DEVLINK_ATTR_PORT_INDEX) {
            cr_assert_eq(mnl_attr_get_u32(a), 3);
        }
        attrs++;
    }
    cr_assert_eq(attrs, 3);
    cr_assert_eq(devlink_handle_parse("pci/0000:3b:00.0", &h), 0);
    (void) devlink_msg_request(msg, FAMILY, DEVLINK_QUERY_PORT_OF, &h, 9);
    cr_assert_eq(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP, "port_of dumps the ports");
    (void) devlink_msg_request(msg, FAMILY, DEVLINK_QUERY_INFO_FIXED, &h, 10);
    cr_assert_eq(((struct genlmsghdr *) mnl_nlmsg_get_payload(nlh))->cmd, DEVLINK_CMD_INFO_GET);
}

Test(devlink, the_family_answer)
{
    struct nlmsghdr *nlh = answer(CTRL_CMD_NEWFAMILY);
    uint16_t id = 0;

    nlh->nlmsg_type = GENL_ID_CTRL;
    cr_assert_eq(devlink_parse_family(nlh, nlh->nlmsg_len, &id), -EBADMSG, "no id yet");
    mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, 0x1a);
    cr_assert_eq(devlink_parse_family(nlh, nlh->nlmsg_len, &id), 0);
    cr_assert_eq(id, 0x1a);
    cr_assert_eq(devlink_parse_family(nlh, nlh->nlmsg_len - 1, &id), -EBADMSG, "truncated");
}

Test(devlink, dev_info_as_mlx5_fills_it)
{
    struct nlmsghdr *nlh = answer(DEVLINK_CMD_INFO_GET);
    char buf[64];

    mnl_attr_put_strz(nlh, DEVLINK_ATTR_INFO_DRIVER_NAME, "mlx5_core");
    mnl_attr_put_strz(nlh, DEVLINK_ATTR_INFO_SERIAL_NUMBER, "MT2140X12345");
    version(nlh, DEVLINK_ATTR_INFO_VERSION_FIXED, "fw.psid", "MT_0000000359");
    version(nlh, DEVLINK_ATTR_INFO_VERSION_RUNNING, "fw", "22.36.1010");
    version(nlh, DEVLINK_ATTR_INFO_VERSION_RUNNING, "fw.version", "22.36.1011");
    version(nlh, DEVLINK_ATTR_INFO_VERSION_STORED, "fw.version", "22.38.1002");
    cr_assert_eq(parse(nlh, "board.id", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "MT_0000000359");
    cr_assert_eq(parse(nlh, "fw.version", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "22.36.1011", "the running one, not the stored one");
    cr_assert_eq(parse(nlh, "driver", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "mlx5_core");
    cr_assert_eq(parse(nlh, "serial_number", 0, buf, sizeof(buf)), 1);
    cr_assert_eq(parse(nlh, "board.id", 0, buf, 5), -ENOBUFS);
    nlh = answer(DEVLINK_CMD_INFO_GET);
    cr_assert_eq(parse(nlh, "board.id", 0, buf, sizeof(buf)), 0, "not there");
}

Test(devlink, eswitch_mode)
{
    struct nlmsghdr *nlh = answer(DEVLINK_CMD_ESWITCH_GET);
    char buf[32];

    mnl_attr_put_u16(nlh, DEVLINK_ATTR_ESWITCH_MODE, DEVLINK_ESWITCH_MODE_SWITCHDEV);
    cr_assert_eq(parse(nlh, "eswitch_mode", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "switchdev");
    nlh = answer(DEVLINK_CMD_ESWITCH_GET);
    mnl_attr_put_u16(nlh, DEVLINK_ATTR_ESWITCH_MODE, DEVLINK_ESWITCH_MODE_LEGACY);
    cr_assert_eq(parse(nlh, "eswitch_mode", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "legacy");
    nlh = answer(DEVLINK_CMD_ESWITCH_GET);
    mnl_attr_put_u32(nlh, DEVLINK_ATTR_ESWITCH_MODE, 1);
    cr_assert_eq(parse(nlh, "eswitch_mode", 0, buf, sizeof(buf)), -EBADMSG, "not a u16");
}

/* A VF's port as devlink_nl_port_fill() answers it, with a function nest. */
static struct nlmsghdr *
vf_port(uint16_t vf, uint32_t caps_value, int with_caps)
{
    struct nlmsghdr *nlh = answer(DEVLINK_CMD_PORT_NEW);
    static const uint8_t mac[6] = {0x02, 0, 0, 0, 0x3b, 0x02};
    struct nla_bitfield32 caps = {.value = caps_value, .selector = 0x3};
    struct nlattr *nest;

    mnl_attr_put_u32(nlh, DEVLINK_ATTR_PORT_INDEX, 1 + vf);
    mnl_attr_put_u16(nlh, DEVLINK_ATTR_PORT_FLAVOUR, DEVLINK_PORT_FLAVOUR_PCI_VF);
    mnl_attr_put_u16(nlh, DEVLINK_ATTR_PORT_PCI_PF_NUMBER, 0);
    mnl_attr_put_u16(nlh, DEVLINK_ATTR_PORT_PCI_VF_NUMBER, vf);
    nest = mnl_attr_nest_start(nlh, DEVLINK_ATTR_PORT_FUNCTION);
    mnl_attr_put(nlh, DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR, sizeof(mac), mac);
    if (with_caps) {
        mnl_attr_put(nlh, 4 /* DEVLINK_PORT_FN_ATTR_CAPS, Linux 6.2 */, sizeof(caps), &caps);
    }
    mnl_attr_nest_end(nlh, nest);
    return nlh;
}

Test(devlink, port_function_migratable)
{
    char buf[64];

    cr_assert_eq(parse(vf_port(1, 1u << 1, 1), "function.migratable", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "enable");
    cr_assert_eq(parse(vf_port(1, 1u << 0, 1), "function.migratable", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "disable", "roce only");
    cr_assert_eq(parse(vf_port(1, 0, 0), "function.migratable", 0, buf, sizeof(buf)), 0,
                 "no caps: the service answers EOPNOTSUPP, never a value");
    cr_assert_eq(parse(vf_port(1, 0, 0), "function.hw_addr", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "02:00:00:00:3b:02");
    cr_assert_eq(parse(vf_port(5, 0, 0), "pci_vf_number", 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "5");
}

Test(devlink, port_of_a_vf_in_a_dump)
{
    char buf[64];
    struct nlmsghdr *nlh;

    cr_assert_eq(parse(vf_port(2, 0, 0), "port_of:0000:3b:00.3", 2, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "pci/0000:3b:00.0/3");
    cr_assert_eq(parse(vf_port(1, 0, 0), "port_of:0000:3b:00.3", 2, buf, sizeof(buf)), 0,
                 "another VF's port");
    nlh = vf_port(2, 0, 0);
    memcpy(memmem(msg, nlh->nlmsg_len, "0000:3b:00.0", 12), "0000:5e:00.0", 12);
    cr_assert_eq(parse(nlh, "port_of:0000:3b:00.3", 2, buf, sizeof(buf)), 0,
                 "the same VF number on another device");
}

Test(devlink, malformed_answers)
{
    struct nlmsghdr *nlh = answer(DEVLINK_CMD_INFO_GET);
    char buf[64];
    struct nlattr *nest;

    nest = mnl_attr_nest_start(nlh, DEVLINK_ATTR_INFO_VERSION_FIXED);
    mnl_attr_put(nlh, DEVLINK_ATTR_INFO_VERSION_NAME, 7, "fw.psid"); /* no NUL */
    mnl_attr_put_strz(nlh, DEVLINK_ATTR_INFO_VERSION_VALUE, "MT_1");
    mnl_attr_nest_end(nlh, nest);
    cr_assert_eq(parse(nlh, "board.id", 0, buf, sizeof(buf)), -EBADMSG);
    nlh = answer(DEVLINK_CMD_INFO_GET);
    version(nlh, DEVLINK_ATTR_INFO_VERSION_FIXED, "fw.psid", "MT_0000000359");
    nlh->nlmsg_len -= 4; /* cut into the last attribute */
    cr_assert_neq(parse(nlh, "board.id", 0, buf, sizeof(buf)), 1, "a cut attribute is not read");
    cr_assert_eq(devlink_parse_answer(msg, 8, DEVLINK_QUERY_INFO_FIXED, "board.id", NULL, 0, buf,
                                      sizeof(buf)), -EBADMSG, "shorter than a header");
}

Test(devlink, the_service_on_this_host_never_invents)
{
    char root[] = "/tmp/test-devlink-XXXXXX", path[256], buf[64] = "";
    int r;

    cr_assert_not_null(mkdtemp(root));
    r = devlink_get(root, "pci/0000:3b:00.0", "port_of:0000:3b:00.2", buf, sizeof(buf));
    cr_assert_eq(r, -ENOENT, "no PF in the sysfs tree: no VF number");
    (void) snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:3b:00.0", root);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        (void) mkdir(path, 0755);
        *p = '/';
    }
    cr_assert_eq(mkdir(path, 0755), 0);
    (void) snprintf(path + strlen(path), sizeof(path) - strlen(path), "/virtfn1");
    cr_assert_eq(symlink("../0000:3b:00.2", path), 0);
    r = devlink_get(root, "pci/0000:3b:00.0", "port_of:0000:3b:00.2", buf, sizeof(buf));
    cr_assert(r == -ENOENT || r == -EOPNOTSUPP || r == -EPERM || r == -EACCES,
              "VF 1 found in sysfs; devlink on this host has no such device: %d", r);
    r = devlink_get(root, "pci/0000:ff:1f.7", "board.id", buf, sizeof(buf));
    cr_assert(r < 0, "no such device is never an answer: %d '%s'", r, buf);
    cr_assert_eq(devlink_get(root, "nonsense", "board.id", buf, sizeof(buf)), -ENOENT);
    cr_assert_eq(tmptree_remove(root), 0);
}
