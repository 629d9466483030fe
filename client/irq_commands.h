/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * irq_commands — the interrupt commands of vfio-migctl: irqs and irq (see irq_commands.c).
 *
 * Used by:  main.c (the command table).
 * Uses:     cli.h (rows, calls), output.h.
 */

#include "cli.h"

extern const CliCommand irq_commands_irqs;
extern const CliCommand irq_commands_irq;
