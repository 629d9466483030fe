/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * state_journal — the encoding of what the daemon must remember across its own restart
 * (restore_state.c keeps it in a sealed memfd in systemd's fd store): every device (id,
 * back-end, how it was attached), every group (name, members in order) and every migration
 * job not over yet (id, role, subject, phase, group or device name; for a live migration kept
 * in doubt, its peer, start and auto_resume).
 *
 * Layout, all integers little-endian:
 *   header (32 bytes): magic "VFMGSTJ1", u32 version, u32 body size, u64 sequence,
 *                      u32 CRC32C of the header's first 24 bytes and the body, u32 zero
 *   body: u32 n_devices, then per device: str id, u8 kernel (0/1), u8 address kind, str source,
 *         u32 IOMMU group (version 2 on; STATE_JOURNAL_NO_GROUP when none),
 *         interrupts (version 3 on): u8 type (IrqType, 0 none), u32 count (0 with type 0),
 *         then 4 bitmaps of (count + 7) / 8 bytes, bit v of byte v / 8: vectors in use,
 *         masked, pending, and held by a VMM (its eventfd is the vector's trigger),
 *         the device's VMM allow-list (version 5 on; earlier: none): u32 n_users, u32 uid...,
 *         u32 n_groups, u32 gid... (at most AUTHZ_MAX_IDS each; both 0: none)
 *         u32 n_groups, then per group: str name, u32 n_members, str member...
 *         u32 n_jobs, then per job: str id, u8 role, u8 subject, u8 phase, str name,
 *         (version 4 on) u8 flags (bit 0: auto_resume; no other bit), str peer, u64 started
 *         (Unix ms): what a live migration kept in doubt across the restart shows and needs
 *   str: u16 length, then that many bytes, no NUL among them.
 * The decoder treats the bytes as hostile: every count and length is bounded below, every
 * byte accounted for (trailing bytes are an error; so is a bit beyond an interrupt count);
 * the meaning of role, subject and phase
 * numbers and of the names is checked by the caller, who knows them.
 *
 * Pure: no I/O. Errors: negative errno, and for decoding a sentence in the caller's buffer.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz.h"

#define STATE_JOURNAL_MAGIC "VFMGSTJ1"
#define STATE_JOURNAL_VERSION UINT32_C(5)
/* Version 1 (no group field) is still read: a daemon upgraded across it keeps its sim devices;
 * its kernel devices were not kept by version 1 anyway. Versions 2 (no interrupts), 3 (no job
 * flags, peer, start) and 4 (no VMM allow-lists: its devices had none) are read too. */
#define STATE_JOURNAL_VERSION_MIN UINT32_C(1)
#define STATE_JOURNAL_NO_GROUP UINT32_MAX
#define STATE_JOURNAL_HEADER_SIZE 32
/* As the manager's limits (MANAGER_MAX_DEVICES, GROUP_MAX_DEVICES, MANAGER_MAX_OPTIONS): a
 * journal beyond them was not written by a daemon of this version. */
#define STATE_JOURNAL_MAX_DEVICES 1024
#define STATE_JOURNAL_MAX_GROUPS 1024
#define STATE_JOURNAL_MAX_MEMBERS 256
#define STATE_JOURNAL_MAX_JOBS 1024
#define STATE_JOURNAL_MAX_NAME 64     /* ids and names (STREAM_MAX_NAME, DEVICE_ID_MAX) */
#define STATE_JOURNAL_MAX_SOURCE 4096 /* sim options or a kernel address */
#define STATE_JOURNAL_MAX_PEER 127    /* a job's peer: TRANSPORT_ADDRESS_MAX less its NUL */
#define STATE_JOURNAL_JOB_AUTO_RESUME 0x01 /* StateJournalJob.flags: a destination's */
#define STATE_JOURNAL_MAX_IRQ_TYPE 3   /* _IRQ_TYPE_MAX - 1: INTx, MSI, MSI-X */
#define STATE_JOURNAL_MAX_VECTORS 2048 /* IRQ_MAX_VECTORS */
#define STATE_JOURNAL_IRQ_MAPS 4       /* in use, masked, pending, VMM */
#define STATE_JOURNAL_IRQ_MAP_SIZE(count) (((size_t) (count) + 7) / 8)
/* 1024 devices with 4 KiB of options each, and the rest: 8 MiB bounds a read. */
#define STATE_JOURNAL_MAX_BODY (UINT32_C(8) << 20)

typedef struct StateJournalDevice {
    char *id;
    bool kernel;            /* false: a sim device */
    uint8_t address_kind;   /* kernel: KernelAddressKind */
    char *source;           /* sim options, or the kernel address */
    uint32_t group;         /* kernel, group path: the IOMMU group whose group and container
                             * fds it shares; STATE_JOURNAL_NO_GROUP otherwise */
    uint8_t irq_type;       /* IrqType; 0 (none): irq_count 0, no bitmaps */
    uint32_t irq_count;     /* vectors enabled */
    /* STATE_JOURNAL_IRQ_MAPS bitmaps of STATE_JOURNAL_IRQ_MAP_SIZE(irq_count) bytes, one
     * after the other (in use, masked, pending, VMM); NULL when irq_count is 0. Owned by a
     * decoded journal; the encoder only reads it. */
    uint8_t *irq_bits;
    AuthzVmmList vmm_allow; /* the device's own VMM allow-list; naming no one: none */
} StateJournalDevice;

typedef struct StateJournalGroup {
    char *name;
    char **members;         /* device ids, in the group's order */
    size_t n_members;
} StateJournalGroup;

typedef struct StateJournalJob {
    char *id;
    uint8_t role;           /* MigrationRole */
    uint8_t subject;        /* MigrationSubject */
    uint8_t phase;          /* MigrationPhase */
    char *name;             /* the group's name, or the device's */
    uint8_t flags;          /* STATE_JOURNAL_JOB_*; 0 before version 4 */
    char *peer;             /* the other daemon's address; NULL or "": unknown (a version 1-3
                             * journal decodes NULL) */
    uint64_t started_unix_ms; /* 0: unknown */
} StateJournalJob;

typedef struct StateJournal {
    uint64_t seq;           /* higher: written later */
    StateJournalDevice *devices;
    size_t n_devices;
    StateJournalGroup *groups;
    size_t n_groups;
    StateJournalJob *jobs;
    size_t n_jobs;
} StateJournal;

/* Encodes @j into a new buffer (*ret_buf, freed by the caller). -EINVAL: a count or a string
 * beyond the limits above; -ENOMEM. */
int state_journal_encode(const StateJournal *j, uint8_t **ret_buf, size_t *ret_size);
/* Decodes @size bytes into @ret (emptied first; state_journal_clear() frees it, also after
 * a failure). -EBADMSG with @err saying what is wrong; -ENOMEM. */
int state_journal_decode(const uint8_t *buf, size_t size, StateJournal *ret, char *err,
                         size_t err_size);
/* Frees everything @j holds and zeroes it. */
void state_journal_clear(StateJournal *j);
