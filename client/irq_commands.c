/* SPDX-License-Identifier: MIT */
/*
 * irq_commands — `vfio-migctl irqs ID` and `irq enable|mask|unmask|trigger`, each one call
 * of DeviceService's interrupt methods (devices.proto, IrqStatus). The --json form of irqs is
 * the contract acceptance scripts read: {index, count, vectors: [{vector, in_use, masked,
 * pending}]}, with latch_wakeups and latch_wakeups_total (bench-irq reads them).
 */

#include "irq_commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "util/cleanup.h"
#include "util/macro.h"

#define IRQ_CALL(method_, snake_) CLI_METHOD_OF("DeviceService", method_, snake_)

typedef VfioMigd__V1__IrqStatus IrqStatus;

/* Every response of these calls is {IrqStatus irqs = 1}: the same layout. */
static const IrqStatus *
status_of(const void *resp)
{
    return ((const VfioMigd__V1__GetIrqsResponse *)resp)->irqs;
}

static json_object *
irqs_json(const void *req _unused_, const void *resp)
{
    const IrqStatus *s = status_of(resp);
    json_object *o = json_object_new_object();
    json_object *vectors = json_object_new_array();

    for (size_t i = 0; i < s->n_vectors; i++) {
        const VfioMigd__V1__IrqVector *v = s->vectors[i];
        json_object *j = json_object_new_object();
        output_json_set(j, "vector", json_object_new_uint64(v->vector));
        output_json_set(j, "in_use", json_object_new_boolean(v->in_use));
        output_json_set(j, "masked", json_object_new_boolean(v->masked));
        output_json_set(j, "pending", json_object_new_boolean(v->pending));
        (void)json_object_array_add(vectors, j);
    }
    output_json_set(o, "index", json_object_new_string(s->index));
    output_json_set(o, "count", json_object_new_uint64(s->count));
    output_json_set(o, "vectors", vectors);
    output_json_set(o, "latch_wakeups", json_object_new_uint64(s->latch_wakeups));
    output_json_set(o, "latch_wakeups_total", json_object_new_uint64(s->latch_wakeups_total));
    return o;
}

static int
irqs_text(const void *req _unused_, const void *resp)
{
    const IrqStatus *s = status_of(resp);
    _cleanup_(output_table_freep) OutputTable *t = NULL;
    char holder[32] = "-";

    printf("index %s, %u vector%s enabled (device offers intx %u, msi %u, msix %u%s)\n", s->index,
           s->count, s->count == 1 ? "" : "s", s->intx_count, s->msi_count, s->msix_count,
           s->msix_resizable ? ", resizable" : "");
    if (s->holder_pid > 0) {
        (void)snprintf(holder, sizeof(holder), "pid %d", s->holder_pid);
    }
    printf("held by: %s\n", s->holder_pid > 0 ? holder : "no VMM");
    printf("latch wake-ups: %llu (all devices: %llu)\n", (unsigned long long)s->latch_wakeups,
           (unsigned long long)s->latch_wakeups_total);
    if (s->n_vectors == 0) {
        return 0;
    }
    t = output_table_new(5, "VECTOR", "IN-USE", "MASKED", "PENDING", "HOLDER");
    if (!t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n_vectors; i++) {
        const VfioMigd__V1__IrqVector *v = s->vectors[i];
        char num[16];
        (void)snprintf(num, sizeof(num), "%u", v->vector);
        if (output_table_add(t, num, v->in_use ? "yes" : "no", v->masked ? "yes" : "no",
                             v->pending ? "yes" : "no", v->held ? holder : "-") < 0) {
            return -ENOMEM;
        }
    }
    output_table_print(t, stdout);
    return 0;
}

static const CliCall irqs_call =
    CLI_CALL(IRQ_CALL(GetIrqs, get_irqs), cli_build_name, "irqs", irqs_json, irqs_text);

const CliCommand irq_commands_irqs = CLI_BY_ID_COMMAND(
    "irqs", "Show a device's interrupts: index, vectors in use, masked, pending, holder",
    &irqs_call);

/* ---- irq enable|mask|unmask|trigger */

/* "7": decimal, within [0, max]. */
static CliExit
parse_u32(Cli *cli, const char *what, const char *s, uint32_t max, uint32_t *ret)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || s[0] == '+' || v > max) {
        return cli_usage_error(cli, "%s '%s' is not a number from 0 to %u", what, s, max);
    }
    *ret = (uint32_t)v;
    return CLI_GO_ON;
}

static CliExit
enable_build(Cli *cli, void *args _unused_, void *request)
{
    VfioMigd__V1__EnableIrqsRequest *req = request;
    const char *index = cli->args[2];

    if (strcmp(index, "intx") != 0 && strcmp(index, "msi") != 0 && strcmp(index, "msix") != 0) {
        return cli_usage_error(cli, "'%s' is not an interrupt index: intx, msi or msix", index);
    }
    req->id = cli->args[1];
    req->index = (char *)index;
    return parse_u32(cli, "COUNT", cli->args[3], 2048, &req->count);
}

static CliExit
vector_build(Cli *cli, void *args _unused_, void *request)
{
    VfioMigd__V1__IrqVectorRequest *req = request;

    req->id = cli->args[1];
    return parse_u32(cli, "VECTOR", cli->args[2], 2047, &req->vector);
}

static const CliCall irq_enable_call =
    CLI_CALL(IRQ_CALL(EnableIrqs, enable_irqs), enable_build, "irqs", irqs_json, irqs_text);

#define VECTOR_CALL(method_)                                                                       \
    CLI_CALL(IRQ_CALL(method_, irq_vector), vector_build, "irqs", irqs_json, irqs_text)

static const CliCall irq_mask_call = VECTOR_CALL(MaskIrq);
static const CliCall irq_unmask_call = VECTOR_CALL(UnmaskIrq);
static const CliCall irq_trigger_call = VECTOR_CALL(TriggerIrq);

static const struct {
    const char *verb;
    int n_args; /* the verb included */
    const char *usage;
    const CliCall *call;
} irq_verbs[] = {
    {"enable", 4, "ID intx|msi|msix COUNT", &irq_enable_call},
    {"mask", 3, "ID VECTOR", &irq_mask_call},
    {"unmask", 3, "ID VECTOR", &irq_unmask_call},
    {"trigger", 3, "ID VECTOR", &irq_trigger_call},
};

/* The subcommand first: `irq frob` is an unknown subcommand, not a missing argument. */
static CliExit
irq_run(Cli *cli, void *args)
{
    for (size_t i = 0; i < ELEMENTSOF(irq_verbs); i++) {
        if (strcmp(cli->args[0], irq_verbs[i].verb) != 0) {
            continue;
        }
        if (cli->n_args != irq_verbs[i].n_args) {
            return cli_usage_error(cli, "usage: vfio-migctl irq %s %s", irq_verbs[i].verb,
                                   irq_verbs[i].usage);
        }
        return cli_run_call(cli, irq_verbs[i].call, args, NULL);
    }
    return cli_usage_error(cli, "unknown subcommand '%s' (enable, mask, unmask or trigger)",
                           cli->args[0]);
}

const CliCommand irq_commands_irq = CLI_COMMAND(
    "irq", "enable ID intx|msi|msix COUNT | mask|unmask|trigger ID VECTOR",
    "Enable a device's interrupt index; mask, unmask or trigger one vector", 1,
    4, /* the most: irq_run() checks each subcommand's own count */
    .help = "  enable         enable the index with COUNT vectors, grow it, or disable it\n"
            "                 (COUNT 0); INTx, MSI and MSI-X are exclusive\n"
            "  mask           a masked vector's interrupts set its pending bit\n"
            "  unmask         a pending interrupt is delivered once to the VMM\n"
            "  trigger        the kernel's loopback: the vector fires as if the device\n"
            "                 raised it (tests, diagnostics)\n",
    .run = irq_run);
