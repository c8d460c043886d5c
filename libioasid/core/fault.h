/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Faults: DMA a client asks a (simulated) device to do, and the fault
 * records it leaves: the core's own (group not viable), kept per session,
 * and the backend's, read per device.
 */
#ifndef IOASID_CORE_FAULT_H
#define IOASID_CORE_FAULT_H

#include <stdint.h>

#include "core/base.h"
#include "op/op.h"

/* Runs without the core lock, beside map/unmap (CONCURRENT). */
int fault_dma(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int fault_read(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* Drop the queued records of a device leaving @s (unbound, unplugged). */
void fault_purge_device(struct session *s, uint32_t dev_id);
/* What the device's own fault log dropped counts as lost for its owner. */
void fault_take_lost(struct core *core, struct device *dev);
/*
 * The session's fault records lost: its core queue's overflows and what
 * its devices' own logs dropped (taken from the backend now).
 */
uint64_t fault_lost_count(struct session *s);

#endif
