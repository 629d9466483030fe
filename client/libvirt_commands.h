/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libvirt_commands — `vfio-migctl libvirt-annotate`: this host's compatibility descriptors of
 * a libvirt domain's PCI <hostdev> devices, as the <metadata> element that the libvirt hook
 * (packaging/libvirt/vfio-migd) reads on the destination at `migrate` (docs/libvirt.md).
 * The domain XML comes from a file, stdin, or `virsh dumpxml`; the element is printed as
 * `virsh metadata --set` takes it (libvirt adds the namespace), and with --domain stored in
 * the domain that way. The daemon is asked for its devices; the
 * CLI compares nothing.
 *
 * Used by:  main.c (the row).
 * Uses:     libxml2 (the domain XML in, the element out), virsh (with --domain only).
 */

#include "cli.h"

/* The namespace of the element, as the hook and libvirt's <metadata> know it. */
#define LIBVIRT_METADATA_NS "https://github.com/vfio-migd/vfio-migd/libvirt/1"

extern const CliCommand libvirt_commands_annotate;
