/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * limits — the ranges of the numbers a user gives for a migration, in one place for the three
 * that check them: the configuration file (conf.c), the API (rpc/handlers/migrations.c) and
 * the CLI (client/migration_commands.c), so that each refusal gives the same range.
 */

/* A day: no wait or pre-copy phase of one migration is meant to last longer (and a wait in
 * milliseconds must fit the int that poll() and SO_RCVTIMEO take). */
#define LIMIT_MAX_MS (24u * 3600u * 1000u)
/* 1 TiB/s is beyond any link a host has: a larger number is a typo. */
#define LIMIT_MAX_RATE (1ULL << 40)
