/* SPDX-License-Identifier: MIT */
/*
 * vfio-migctl — the command-line client of vfio-migd. This file only wires: the command
 * table, in the order `vfio-migctl --help` lists it. Everything else is cli.c (options,
 * calls, exit statuses) and the rows of the command files, one per role: device_commands.c,
 * group_commands.c, save_commands.c, migration_commands.c (with follow.c for what waits) and
 * system_commands.c. Nothing computes what the daemon knows (CONVENTIONS 23).
 */

#include "cli.h"
#include "compat_commands.h"
#include "libvirt_commands.h"
#include "device_commands.h"
#include "group_commands.h"
#include "irq_commands.h"
#include "migration_commands.h"
#include "save_commands.h"
#include "system_commands.h"
#include "util/macro.h"

static const CliCommand *const commands[] = {
    &device_commands_devices,
    &device_commands_attach,
    &device_commands_detach,
    &device_commands_show,
    &device_commands_state,
    &device_commands_path,
    &device_commands_reset,
    &save_commands_save,
    &save_commands_restore,
    &group_commands_group,
    &device_commands_region,
    &irq_commands_irqs,
    &irq_commands_irq,
    &migration_commands_incoming,
    &migration_commands_migrate,
    &migration_commands_migrate_set,
    &migration_commands_switchover,
    &migration_commands_cancel,
    &migration_commands_resolve,
    &migration_commands_jobs,
    &migration_commands_job,
    &migration_commands_watch,
    &system_commands_health,
    &system_commands_version,
    &system_commands_log_level,
    &system_commands_plugins,
    &system_commands_host_devices,
    &system_commands_bind,
    &compat_commands_describe,
    &compat_commands_check,
    &libvirt_commands_annotate,
};

int
main(int argc, char **argv)
{
    return cli_main(commands, ELEMENTSOF(commands), argc, argv);
}
