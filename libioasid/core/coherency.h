/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coherency (docs/coherency.md): a device is non-coherent when it may
 * issue no-snoop DMA (PCIe "Enable No Snoop" set or unknown, and no trusted
 * hint that it won't) and its domain does not enforce snooping.  A VM with
 * at least one non-coherent device needs WBINVD to really flush.
 */
#ifndef IOASID_CORE_COHERENCY_H
#define IOASID_CORE_COHERENCY_H

#include <stdbool.h>

#include "core/base.h"

struct device;
struct vm;

/* May @dev issue no-snoop DMA (whatever its domain)? */
bool coherency_may_nosnoop(const struct device *dev);
/* Recompute @dev's coherency and its VM's registration; emits events. */
void coherency_update(struct core *core, struct device *dev);
void coherency_join_vm(struct core *core, struct device *dev, struct vm *vm);
void coherency_leave_vm(struct core *core, struct device *dev);

#endif
