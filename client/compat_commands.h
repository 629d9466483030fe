/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * compat_commands — the compatibility questions a scheduler or an operator asks before any
 * migration (docs/cli.md): `describe DEV` (a device's descriptor as JSON, to carry to
 * another host), `check FILE DEV` (is that descriptor one this local device can take? the
 * daemon compares) and `migrate ... --dry-run` (MigrationService/CheckMigration: the
 * destination compares, nothing moves, the token stays valid).
 *
 * Used by:  main.c (the rows), migration_commands.c (migrate --dry-run).
 */

#include <stdint.h>

#include "cli.h"

extern const CliCommand compat_commands_describe;
extern const CliCommand compat_commands_check;

/* `migrate GROUP --to ADDR --token T --dry-run [--tls MODE]` (@tls a MigrationTls): prints {compatible, mismatches, total}; exit
 * 0 only when compatible. */
CliExit compat_commands_dry_run(Cli *cli, const char *group, const char *address,
                                const char *token, uint32_t timeout_ms, int tls);
