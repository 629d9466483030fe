/* SPDX-License-Identifier: MIT */
/*
 * libvirt_commands — see libvirt_commands.h. The element written here is the one the hook's
 * source_descriptors() reads: one <device> per PCI hostdev, with the daemon's id, back-end,
 * migration flags, kind (the sim's model or the kernel driver) and compatibility fields.
 */

#include "libvirt_commands.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "output.h"
#include "util/cleanup.h"

extern char **environ;

/* A domain XML is kilobytes; the hook refuses more than this too. */
#define DOMAIN_XML_MAX (16u << 20)
#define ANNOTATE_MAX_HOSTDEVS 256

enum {
    OPT_DOMAIN = CLI_OPT_COMMAND_FIRST,
    OPT_CONNECT,
};

typedef struct AnnotateArgs {
    const char *domain;  /* --domain: ask virsh, and store the result there */
    const char *connect; /* --connect URI, for virsh */
} AnnotateArgs;

typedef struct Buffer {
    char *data;
    size_t len;
} Buffer;

static void
buffer_done(Buffer *b)
{
    free(b->data);
    b->data = NULL;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for @fd to be readable until @end_ms (< 0: no end). poll() is never restarted after
 * a signal, so Ctrl-C (cli_interrupted) ends the wait even where read() would be. */
static int
wait_readable(int fd, int64_t end_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int left = end_ms < 0 ? -1 : (int) (end_ms - now_ms());

    if (end_ms >= 0 && left <= 0) {
        return -ETIMEDOUT;
    }
    if (poll(&p, 1, left) < 0) {
        return cli_interrupted ? -EINTR : (errno == EINTR ? 0 : -errno);
    }
    return 0;
}

/* Reads @fd to its end, at most @max bytes, waiting at most @timeout_ms in all (<= 0: no
 * limit, for a file or stdin the user gave). -EFBIG past @max, -ETIMEDOUT, -EINTR (Ctrl-C),
 * or read's errno. */
static int
read_all(int fd, size_t max, int timeout_ms, Buffer *ret)
{
    int64_t end = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
    size_t cap = 0;
    ssize_t k = 1;
    int r = 0;

    *ret = (Buffer) {};
    while (r == 0 && k != 0) {
        if (ret->len == cap) {
            char *bigger = cap > max ? NULL : realloc(ret->data, (cap = cap ? cap * 2 : 65536) + 1);

            if (!bigger) {
                r = ret->data && cap > max ? -EFBIG : -ENOMEM;
                break;
            }
            ret->data = bigger;
        }
        r = wait_readable(fd, end);
        k = r == 0 ? read(fd, ret->data + ret->len, cap - ret->len) : 0;
        if (k < 0 && errno != EINTR && errno != EAGAIN) {
            r = -errno;
        }
        ret->len += k > 0 ? (size_t) k : 0;
        k = k < 0 ? 1 : k;
    }
    if (r == 0 && ret->len > max) {
        r = -EFBIG;
    }
    if (r < 0) {
        buffer_done(ret);
        return r;
    }
    ret->data[ret->len] = '\0';
    return 0;
}

/* ---- virsh, for --domain */

/* Runs `virsh [-c URI] ARGS...` with stdout captured in @out (may be NULL: discarded) and
 * its stderr on ours; killed when --timeout runs out. 0, or cli_fail()'s status. */
static CliExit
run_virsh(Cli *cli, const AnnotateArgs *a, const char *const *args, Buffer *out)
{
    const char *argv[16] = {"virsh", "-q"};
    size_t n = 2;
    posix_spawn_file_actions_t fa;
    int pipefd[2], status = 0, r;
    pid_t pid;
    Buffer discard = {};
    const char *what = args[0];

    if (a->connect) {
        argv[n++] = "-c";
        argv[n++] = a->connect;
    }
    for (; *args && n < ELEMENTSOF(argv) - 1; args++) {
        argv[n++] = *args;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        return cli_fail(cli, "cannot run virsh: %s", strerror(errno));
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    r = posix_spawnp(&pid, "virsh", &fa, NULL, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    (void) close(pipefd[1]);
    if (r != 0) {
        (void) close(pipefd[0]);
        return cli_fail(cli, "cannot run virsh: %s (apt install libvirt-clients)", strerror(r));
    }
    r = read_all(pipefd[0], DOMAIN_XML_MAX, cli->timeout_ms, out ? out : &discard);
    (void) close(pipefd[0]);
    buffer_done(&discard);
    if (r < 0) {
        (void) kill(pid, SIGTERM);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (out) {
            buffer_done(out);
        }
        return cli_fail(cli, "'virsh %s %s' failed: %s", what, a->domain,
                        r < 0 ? strerror(-r) : "virsh said why above");
    }
    return CLI_GO_ON;
}

/* The domain's XML: from `virsh dumpxml` with --domain, else from FILE or stdin. */
static CliExit
read_domain_xml(Cli *cli, const AnnotateArgs *a, Buffer *ret)
{
    const char *path = cli->n_args > 0 ? cli->args[0] : "-";
    int fd = STDIN_FILENO;
    struct stat st;
    int r;

    if (a->domain) {
        return run_virsh(cli, a, (const char *const[]) {"dumpxml", a->domain, NULL}, ret);
    }
    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
            r = fd < 0 ? errno : EISDIR;
            if (fd >= 0) {
                (void) close(fd);
            }
            return cli_fail(cli, "cannot read the domain XML '%s': %s", path, strerror(r));
        }
        (void) fcntl(fd, F_SETFL, 0); /* opened without blocking on a FIFO; now read it */
    }
    r = read_all(fd, DOMAIN_XML_MAX, 0, ret);
    if (fd != STDIN_FILENO) {
        (void) close(fd);
    }
    if (r < 0) {
        return cli_fail(cli, "cannot read the domain XML '%s': %s", path,
                        r == -EFBIG ? "larger than 16 MiB: not a domain" : strerror(-r));
    }
    return CLI_GO_ON;
}

/* ---- the domain's PCI hostdevs */

/* An <address> attribute: a number in C syntax within [0, @max], or -1. */
static long
address_part(xmlNode *addr, const char *name, long max)
{
    xmlChar *s = xmlGetProp(addr, (const xmlChar *) name);
    char *end;
    long v;

    if (!s) {
        return 0; /* libvirt's default for an attribute left out */
    }
    errno = 0;
    v = strtol((const char *) s, &end, 0);
    v = errno == 0 && end != (char *) s && *end == '\0' && v >= 0 && v <= max ? v : -1;
    xmlFree(s);
    return v;
}

/* "DDDD:BB:SS.F" of a hostdev's <source><address>; -EINVAL for one out of range. */
static int
hostdev_bdf(xmlNode *addr, char *out, size_t size)
{
    long d = address_part(addr, "domain", 0xFFFF), b = address_part(addr, "bus", 0xFF);
    long s = address_part(addr, "slot", 0x1F), f = address_part(addr, "function", 7);

    if (d < 0 || b < 0 || s < 0 || f < 0) {
        return -EINVAL;
    }
    snprintf(out, size, "%04lx:%02lx:%02lx.%lx", d, b, s, f);
    return 0;
}

typedef struct Hostdevs {
    char bdf[ANNOTATE_MAX_HOSTDEVS][16];
    size_t n;
} Hostdevs;

static CliExit
find_hostdevs(Cli *cli, const Buffer *xml, Hostdevs *ret)
{
    static const char *const query = "/domain/devices/hostdev[@type='pci']/source/address";
    xmlDoc *doc = xmlReadMemory(xml->data, (int) xml->len, "domain.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlXPathContext *ctx = doc ? xmlXPathNewContext(doc) : NULL;
    xmlXPathObject *set = ctx ? xmlXPathEvalExpression((const xmlChar *) query, ctx) : NULL;
    const xmlError *e = xmlGetLastError();
    CliExit r = CLI_GO_ON;

    if (!doc) {
        const char *why = e && e->message ? e->message : "unreadable";

        r = cli_fail(cli, "the domain XML is not XML: %.*s at line %d", (int) strcspn(why, "\n"),
                     why, e ? e->line : 0);
    } else if (!set || !xmlDocGetRootElement(doc) ||
               xmlStrcmp(xmlDocGetRootElement(doc)->name, (const xmlChar *) "domain") != 0) {
        r = cli_fail(cli, "the XML is not a libvirt domain (its root is not <domain>)");
    }
    for (int i = 0; r == CLI_GO_ON && set->nodesetval && i < set->nodesetval->nodeNr; i++) {
        if (ret->n == ANNOTATE_MAX_HOSTDEVS) {
            r = cli_fail(cli, "the domain has more than %d PCI hostdevs", ANNOTATE_MAX_HOSTDEVS);
        } else if (hostdev_bdf(set->nodesetval->nodeTab[i], ret->bdf[ret->n], 16) < 0) {
            r = cli_fail(cli, "a <hostdev> <address> is not a PCI address (domain <= 0xffff, "
                         "bus <= 0xff, slot <= 0x1f, function <= 7)");
        } else {
            ret->n++;
        }
    }
    xmlXPathFreeObject(set);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return r;
}

/* ---- the element */

static const char *
device_property(const VfioMigd__V1__Device *d, const char *key)
{
    for (size_t i = 0; i < d->n_properties; i++) {
        if (strcmp(d->properties[i]->key, key) == 0) {
            return d->properties[i]->value;
        }
    }
    return NULL;
}

static const VfioMigd__V1__Device *
device_at(const VfioMigd__V1__ListDevicesResponse *list, const char *bdf)
{
    for (size_t i = 0; i < list->n_devices; i++) {
        const char *bus = device_property(list->devices[i], "bus");
        const char *at = device_property(list->devices[i], "device");

        if (bus && at && strcmp(bus, "pci") == 0 && strcasecmp(at, bdf) == 0) {
            return list->devices[i];
        }
    }
    return NULL;
}

/* What makes two devices the same kind, for the hook's placement: the sim's model, a kernel
 * device's driver. */
static const char *
device_kind(const VfioMigd__V1__Device *d)
{
    const char *kind = device_property(d, "model");

    kind = kind ? kind : device_property(d, "driver");
    return kind ? kind : "";
}

static void
add_device(xmlNode *top, const char *bdf, const VfioMigd__V1__Device *d)
{
    xmlNode *el = xmlNewChild(top, NULL, (const xmlChar *) "device", NULL);
    char flags[16];

    snprintf(flags, sizeof(flags), "%" PRIu32, d->migration_flags);
    xmlNewProp(el, (const xmlChar *) "address", (const xmlChar *) bdf);
    xmlNewProp(el, (const xmlChar *) "id", (const xmlChar *) d->id);
    xmlNewProp(el, (const xmlChar *) "backend", (const xmlChar *) d->backend);
    xmlNewProp(el, (const xmlChar *) "migration_flags", (const xmlChar *) flags);
    xmlNewProp(el, (const xmlChar *) "kind", (const xmlChar *) device_kind(d));
    if (d->plugin[0]) {
        xmlNewProp(el, (const xmlChar *) "plugin", (const xmlChar *) d->plugin);
    }
    for (size_t i = 0; i < d->n_compat; i++) {
        xmlNode *f = xmlNewChild(el, NULL, (const xmlChar *) "compat", NULL);

        xmlNewProp(f, (const xmlChar *) "name", (const xmlChar *) d->compat[i]->name);
        xmlNewProp(f, (const xmlChar *) "value", (const xmlChar *) d->compat[i]->value);
        xmlNewProp(f, (const xmlChar *) "rule", (const xmlChar *) d->compat[i]->rule);
    }
}

/* The element for @hd from the daemon's @list, as text in @ret; a hostdev the daemon does not
 * hold is refused with the command that attaches it. It has no namespace: `virsh metadata
 * --set` puts it in LIBVIRT_METADATA_NS with the key as its prefix (and refuses an element
 * that declares the namespace itself). */
static CliExit
build_element(Cli *cli, const Hostdevs *hd, const VfioMigd__V1__ListDevicesResponse *list,
              Buffer *ret)
{
    xmlNode *top = xmlNewNode(NULL, (const xmlChar *) "devices");
    xmlBuffer *text = xmlBufferCreate();
    CliExit r = CLI_GO_ON;

    for (size_t i = 0; i < hd->n && r == CLI_GO_ON; i++) {
        const VfioMigd__V1__Device *d = device_at(list, hd->bdf[i]);

        if (!d) {
            r = cli_fail(cli, "%s: not attached to vfio-migd (vfio-migctl attach --pci %s)",
                         hd->bdf[i], hd->bdf[i]);
        } else {
            add_device(top, hd->bdf[i], d);
        }
    }
    if (r == CLI_GO_ON && (!text || xmlNodeDump(text, NULL, top, 0, 0) < 0 ||
                           !(ret->data = strdup((const char *) xmlBufferContent(text))))) {
        r = cli_fail(cli, "out of memory");
    }
    xmlBufferFree(text);
    xmlFreeNode(top);
    return r;
}

/* ---- storing it with virsh */

/* Whether `virsh dominfo`'s line "@key:   value" has @value. */
static bool
dominfo_is(const char *info, const char *key, const char *value)
{
    for (const char *line = info; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        size_t klen = strlen(key), vlen = strlen(value);

        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            line += klen + 1 + strspn(line + klen + 1, " \t");
            return strncmp(line, value, vlen) == 0 && (line[vlen] == '\n' || line[vlen] == '\0');
        }
    }
    return false;
}

/* `virsh metadata --set` on the running domain (--live) and its persistent definition
 * (--config), whichever it has: both travel with a migration. */
static CliExit
store_in_domain(Cli *cli, const AnnotateArgs *a, const char *element)
{
    _cleanup_(buffer_done) Buffer info = {};
    const char *args[10] = {"metadata", a->domain, LIBVIRT_METADATA_NS, "--key", "vfio-migd",
                            "--set", element};
    size_t n = 7;
    CliExit r = run_virsh(cli, a, (const char *const[]) {"dominfo", a->domain, NULL}, &info);

    if (r != CLI_GO_ON) {
        return r;
    }
    if (!dominfo_is(info.data, "State", "shut off")) {
        args[n++] = "--live";
    }
    if (dominfo_is(info.data, "Persistent", "yes")) {
        args[n++] = "--config";
    }
    return run_virsh(cli, a, args, NULL);
}

/* ---- the command */

static CliExit
annotate_options_done(Cli *cli, void *args)
{
    const AnnotateArgs *a = args;

    if (a->connect && !a->domain) {
        return cli_usage_error(cli, "--connect applies with --domain only");
    }
    if (a->domain && cli->n_args > 0) {
        return cli_usage_error(cli, "give --domain or a FILE, not both");
    }
    return CLI_GO_ON;
}

static CliExit
annotate_print(Cli *cli, const AnnotateArgs *a, const Hostdevs *hd, const char *element)
{
    json_object *o, *devs;

    if (!cli->json) {
        printf("%s\n", element);
        return CLI_EXIT_OK;
    }
    o = json_object_new_object();
    devs = json_object_new_array();
    for (size_t i = 0; i < hd->n; i++) {
        json_object_array_add(devs, json_object_new_string(hd->bdf[i]));
    }
    output_json_set(o, "domain", a->domain ? json_object_new_string(a->domain) : NULL);
    output_json_set(o, "stored", json_object_new_boolean(a->domain != NULL));
    output_json_set(o, "hostdevs", devs);
    output_json_set(o, "metadata", json_object_new_string(element));
    return cli_exit_output(output_json_print(o));
}

static CliExit
annotate_run(Cli *cli, void *args)
{
    const AnnotateArgs *a = args;
    const VfioMigd__V1__ListDevicesRequest req = VFIO_MIGD__V1__LIST_DEVICES_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__ListDevicesResponse *list = NULL;
    _cleanup_(buffer_done) Buffer xml = {}, element = {};
    Hostdevs *hd = calloc(1, sizeof(*hd));
    CliExit r = hd ? read_domain_xml(cli, a, &xml) : cli_fail(cli, "out of memory");

    r = r == CLI_GO_ON ? find_hostdevs(cli, &xml, hd) : r;
    if (r == CLI_GO_ON && hd->n > 0) {
        r = cli_call(cli, "/vfio_migd.v1.DeviceService/ListDevices", &req.base,
                     &vfio_migd__v1__list_devices_response__descriptor, NULL,
                     (ProtobufCMessage **) &list);
    }
    r = r == CLI_GO_ON && hd->n > 0 ? build_element(cli, hd, list, &element) : r;
    if (r == CLI_GO_ON && hd->n == 0) {
        r = cli_fail(cli, "the domain%s%s has no PCI <hostdev>: nothing to annotate",
                     a->domain ? " " : "", a->domain ? a->domain : "");
    }
    if (r == CLI_GO_ON && a->domain) {
        r = store_in_domain(cli, a, element.data);
    }
    r = r == CLI_GO_ON ? annotate_print(cli, a, hd, element.data) : r;
    free(hd);
    return r;
}

static const CliStore annotate_stores[] = {
    CLI_STORE_STRING(OPT_DOMAIN, AnnotateArgs, domain),
    CLI_STORE_STRING(OPT_CONNECT, AnnotateArgs, connect),
    {},
};

const CliCommand libvirt_commands_annotate = CLI_COMMAND(
    "libvirt-annotate", "[--domain NAME [--connect URI]] [FILE]",
    "Print (or store in a libvirt domain) this host's descriptors of the domain's "
    "PCI hostdevs, for the libvirt hook on the destination", 0, 1,
    .help = "  FILE           the domain XML ('virsh dumpxml NAME'); default: stdin\n"
            "  --domain NAME  read the XML with 'virsh dumpxml NAME' and store the element in\n"
            "                 the domain with 'virsh metadata' (live and persistent)\n"
            "  --connect URI  libvirt's URI for virsh (default: virsh's own)\n",
    .options = (const struct option[]) {
        {"domain", required_argument, NULL, OPT_DOMAIN},
        {"connect", required_argument, NULL, OPT_CONNECT},
        {},
    },
    .args_size = sizeof(AnnotateArgs),
    .stores = annotate_stores,
    .options_done = annotate_options_done,
    .run = annotate_run);
