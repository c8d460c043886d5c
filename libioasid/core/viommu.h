/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vIOMMUs: a VM's slice of one IOMMU over a nest-parent IOAS (its stage
 * 2: a domain of the parent on that IOMMU), the virtual IDs it gives
 * devices (vDEVICEs: a guest's BDF or stream ID for a bound device), the
 * nested tables allocated on it (nested.c), and invalidation of device
 * caches named by virtual ID.
 *
 * A vIOMMU holds its stage-2 domain (domain->nr_nested) and its parent
 * (ioas->nr_viommus); it goes only once it has neither vDEVICEs nor
 * nested tables (EBUSY).  A device has at most one vDEVICE (as iommufd
 * has it); its unbind frees it.
 */
#ifndef IOASID_CORE_VIOMMU_H
#define IOASID_CORE_VIOMMU_H

#include <stdint.h>

#include "core/base.h"
#include "core/device.h"
#include "op/op.h"

struct ioas;
struct domain;
struct be_viommu;
struct be_vdevice;

struct vdevice {
	uint32_t id;
	struct viommu *viommu;
	struct device *dev;		/* dev->vdev is this */
	uint64_t virt_id;
	struct be_vdevice *be;
	struct vdevice *next;		/* in viommu->vdevices */
};

struct viommu {
	uint32_t id;
	struct session *owner;
	struct ioas *parent;
	struct domain *s2;		/* the parent's domain under it */
	const struct inv_iommu *unit;
	struct be_viommu *be;
	uint32_t type;			/* enum ioasid_viommu_type */
	uint32_t dev_id;		/* the device it was allocated for */
	struct vdevice *vdevices;
	uint32_t nr_vdevices;
	uint32_t nr_nested;		/* nested tables on it */
	uint64_t nr_invalidations;
	struct viommu *next;		/* in core->viommus */
};

/* The session's vIOMMU @id, or NULL (inline: nested.c uses it). */
static inline struct viommu *viommu_find(struct session *s, uint32_t id)
{
	for (struct viommu *v = s->core->viommus; id && v; v = v->next)
		if (v->id == id && v->owner == s)
			return v;
	return NULL;
}

/* @dev's vDEVICE on @v, or NULL. */
static inline struct vdevice *viommu_vdevice_of(const struct viommu *v,
						const struct device *dev)
{
	return dev->vdev && dev->vdev->viommu == v ? dev->vdev : NULL;
}

int viommu_alloc(struct session *s, struct ioas *parent, struct ioasid_op *op);
int viommu_destroy(struct session *s, struct ioas *unused,
		   struct ioasid_op *op);
int viommu_vdevice_alloc(struct session *s, struct ioas *unused,
			 struct ioasid_op *op);
int viommu_invalidate(struct session *s, struct ioas *unused,
		      struct ioasid_op *op);
int viommu_list(struct session *s, struct ioas *parent, struct ioasid_op *op);
/* @dev is being unbound: its vDEVICE goes first (the kernel's too). */
void viommu_device_gone(struct core *core, struct device *dev);
/* Free @s's vIOMMUs (its devices and nested tables are gone already). */
void viommu_release_session(struct core *core, struct session *s);

#endif
