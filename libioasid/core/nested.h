/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nested tables: a stage-1 table the VMM supplies in the vendor's format,
 * allocated over a nest-parent IOAS (its stage 2: a domain of the parent
 * on the IOMMU of the device it was allocated for), devices attached to
 * it, invalidation of its caches, destroy.
 *
 * A nested table holds its stage-2 domain (domain->nr_nested) and its
 * parent (ioas->nr_nested): neither goes while it exists.  A device
 * attached to it is on the parent IOAS as far as the IOAS is concerned
 * (reserved regions, groups, coherency: dev->ioas is the parent,
 * dev->domain the stage-2 domain) and has dev->nested set; domain.c
 * attaches and detaches it, this module owns the tables.  A device's
 * PASID on it (pasid.c) holds it too: nr_pasids.
 */
#ifndef IOASID_CORE_NESTED_H
#define IOASID_CORE_NESTED_H

#include <stdint.h>

#include "core/base.h"
#include "op/op.h"

struct ioas;
struct domain;
struct be_nested;
struct fault_queue;
struct viommu;

struct nested {
	uint32_t id;
	struct session *owner;
	struct ioas *parent;
	struct domain *s2;		/* the parent's domain under it */
	struct be_nested *be;
	struct viommu *viommu;		/* allocated on it, or NULL */
	uint32_t type;			/* enum ioasid_nested_type */
	struct ioasid_nested_vtd_s1 vtd;	/* VT-d: what the VMM gave */
	struct ioasid_nested_selftest st;	/* selftest: likewise */
	uint32_t dev_id;		/* the device it was allocated for */
	uint32_t nr_devices;
	uint32_t nr_pasids;		/* device PASIDs on it (pasid.c) */
	uint64_t nr_invalidations;
	/* its fault queue (iopf.c), NULL; read by DMA: atomic */
	struct fault_queue *fq;
	struct nested *next;		/* in core->nested */
};

/* The session's nested table @id, or NULL (inline: domain.c uses it). */
static inline struct nested *nested_find(struct session *s, uint32_t id)
{
	for (struct nested *n = s->core->nested; id && n; n = n->next)
		if (n->id == id && n->owner == s)
			return n;
	return NULL;
}

int nested_alloc(struct session *s, struct ioas *parent, struct ioasid_op *op);
/* NESTED_ALLOC on the vIOMMU IOAS_ID2 (over its parent, for its IOMMU). */
int nested_alloc_viommu(struct session *s, struct ioas *unused,
			struct ioasid_op *op);
int nested_destroy(struct session *s, struct ioas *unused,
		   struct ioasid_op *op);
int nested_attach(struct session *s, struct ioas *unused,
		  struct ioasid_op *op);
int nested_invalidate(struct session *s, struct ioas *unused,
		      struct ioasid_op *op);
int nested_list(struct session *s, struct ioas *parent, struct ioasid_op *op);
/* Free @s's nested tables (its devices are detached already). */
void nested_release_session(struct core *core, struct session *s);

#endif
