/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PASIDs: a bound device's attachments other than its own (the RID's,
 * domain.c).  Each PASID of the device is attached to a domain of an
 * IOAS, as the device itself is, or to a nested table (its stage-2
 * domain, the backend's ->pasid_attach_nested); DMA tagged with the
 * PASID translates through that domain (sim: ->dma_pasid).  The device must have the PCIe
 * PASID capability (inv info.pasid_bits) and its IOMMU PASID support.
 */
#ifndef IOASID_CORE_PASID_H
#define IOASID_CORE_PASID_H

#include <stdint.h>

#include "core/base.h"
#include "op/op.h"

struct ioas;
struct domain;
struct device;
struct nested;

/* The most PASIDs one device may have attached at once. */
#define PASID_MAX_PER_DEVICE	64

/*
 * On a nested table: @ioas its parent, @domain its stage-2 domain (held
 * as a device's: nr_devices), @nested the table (nested->nr_pasids).
 */
struct pasid_att {
	uint32_t pasid;
	struct ioas *ioas;
	struct domain *domain;
	struct nested *nested;		/* or NULL: on @ioas itself */
};

int pasid_attach(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int pasid_replace(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* FLAGS IOASID_NESTED_ATTACH_REPLACE: replace, else attach. */
int pasid_attach_nested(struct session *s, struct ioas *unused,
			struct ioasid_op *op);
int pasid_detach(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int pasid_list(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/* Detach every PASID of @dev (unbind, unplug): cannot be refused. */
void pasid_release_device(struct core *core, struct device *dev);

#endif
