/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's domains: HWPTs allocated from an IOAS for a
 * device of the unit, and the coherency rules the kernel imposes on them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/iommufd/priv.h"

/* ---- domains (HWPTs) ----------------------------------------------------- */

/*
 * A device bound to @t behind @unit: HWPT_ALLOC needs one (of the same
 * iommufd) to pick the driver.
 */
struct be_device *iommufd_device_on(struct be_tenant *t,
				    const struct inv_iommu *unit)
{
	for (struct be_device *d = t->devices; d; d = d->next)
		if (d->unit == unit)
			return d;
	return NULL;
}

/*
 * Can the kernel enforce coherency for @dev?  The kernel decides by the
 * driver's IOMMU_CAP_ENFORCE_CACHE_COHERENCY; for VT-d that is ecap.SC,
 * which GET_HW_INFO gives us; otherwise trust what sysfs said.
 */
static bool kernel_can_enforce(const struct be_device *dev)
{
	if (dev->hw_type == IFD_HW_INFO_TYPE_INTEL_VTD)
		return dev->ecap & VTD_ECAP_SC;
	if (dev->hw_type == IFD_HW_INFO_TYPE_AMD)
		return true;
	if (dev->mock)	/* no IOMMU_CAP_ENFORCE_CACHE_COHERENCY */
		return false;
	return dev->unit->info.flags & IOASID_IOMMU_SNOOP_CONTROL;
}

static int check_coherency(struct backend *be, const struct be_device *dev,
			   bool enforce)
{
	bool can = kernel_can_enforce(dev);

	if (enforce && !can) {
		info(be->log, "iommufd: %s cannot enforce cache coherency",
		     dev->unit->info.name);
		return -EINVAL;
	}
	if (!enforce && can) {
		/*
		 * iommufd_hwpt_paging_alloc() turns enforcement on for every
		 * HWPT allocated for a device whose IOMMU can enforce, and
		 * there is no flag to ask otherwise: "allow" cannot be had.
		 */
		warn(be->log, "iommufd: a HWPT for %s always enforces cache "
		     "coherency (the kernel offers no way to let no-snoop DMA "
		     "through on a unit with snoop control): snoop mode "
		     "\"allow\" is not supported by this backend",
		     dev->unit->info.name);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int hwpt_alloc(struct be_tenant *t, struct be_device *dev,
		      struct be_ioas *ioas, bool dirty, uint32_t fault_id,
		      uint32_t *hwpt_id)
{
	struct ifd_hwpt_alloc h = {
		.size = sizeof(h), .dev_id = dev->dev_id, .pt_id = ioas->id,
		.flags = (dirty ? IFD_HWPT_ALLOC_DIRTY_TRACKING : 0) |
			 (ioas->nest_parent ? IFD_HWPT_ALLOC_NEST_PARENT : 0),
	};
	int r;

	/*
	 * A device with PASIDs: every HWPT of it can take them (the kernel
	 * refuses a PASID attach while the device itself is on a HWPT
	 * allocated without IOMMU_HWPT_ALLOC_PASID, and the reverse).
	 */
	if (dev->max_pasid_log2)
		h.flags |= IFD_HWPT_ALLOC_PASID;
	/* the IOAS's fault queue takes its devices' page requests */
	h.fault_id = fault_id;
	if (h.fault_id)
		h.flags |= IFD_HWPT_FAULT_ID_VALID;
	r = kioctl(t->fd, IFD_HWPT_ALLOC, &h);

	if (r == 0)
		*hwpt_id = h.out_hwpt_id;
	return r;
}

int iommufd_domain_alloc(struct be_ioas *ioas,
			 const struct inv_iommu *unit, uint32_t flags,
			 const struct be_replay *replay,
			 struct be_domain **out)
{
	struct backend *be = ioas->be;
	struct be_device *dev = iommufd_device_on(ioas->tenant, unit);
	bool enforce = flags & BE_DOMAIN_ENFORCE_COHERENCY;
	bool dirty, adopted;
	struct be_domain *d;
	int r;

	if (!dev) {
		err(be->log, "iommufd: no device of this session bound behind "
		    "%s to allocate a HWPT for", unit->info.name);
		return -ENODEV;
	}
	r = check_coherency(be, dev, enforce);
	if (r < 0)
		return r;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/*
	 * Able to track wherever the IOMMU can (the kernel wants the flag
	 * at allocation); off until the core starts it (->set_dirty_tracking)
	 */
	dirty = dev->hw_caps & IFD_HW_CAP_DIRTY_TRACKING;
	d->ioas = ioas;
	adopted = iommufd_adopt_domain(ioas->tenant, d);
	r = adopted ? 0 :
	    hwpt_alloc(ioas->tenant, dev, ioas, dirty, iommufd_fault_id(ioas),
		       &d->hwpt_id);
	if (r < 0) {
		if (ioas->nest_parent)
			err(be->log, "iommufd: the kernel refuses a nest-parent "
			    "HWPT on %s: %s (no nesting on this IOMMU?)",
			    unit->info.name, strerror(-r));
		free(d);
		return r;
	}
	d->ioas = ioas;
	d->unit = unit;
	d->enforce = enforce;
	d->can_track = dirty;
	d->fault = iommufd_fault_id(ioas) != 0;
	d->next = ioas->domains;
	ioas->domains = d;
	dbg(be->log, "iommufd: %sHWPT %u on IOAS %u for %s (%s%s)",
	    adopted ? "adopted " : "", d->hwpt_id, ioas->id, unit->info.name,
	    enforce ? "coherent" : "non-coherent",
	    dirty ? ", can track dirty pages" : "");
	*out = d;
	return 0;
}

/*
 * A HWPT to replace @d's (fault.c): the same IOAS, whose mappings the
 * kernel gives it, and flags, carrying FAULT @fault_id instead.
 */
int iommufd_domain_hwpt(struct be_domain *d, uint32_t fault_id,
			uint32_t *hwpt_id)
{
	struct be_device *dev = iommufd_device_on(d->ioas->tenant, d->unit);

	if (!dev)
		return -ENODEV;
	return hwpt_alloc(d->ioas->tenant, dev, d->ioas, d->can_track,
			  fault_id, hwpt_id);
}

void iommufd_domain_free(struct be_domain *d)
{
	struct be_domain **p = &d->ioas->domains;

	while (*p && *p != d)
		p = &(*p)->next;
	if (*p)
		*p = d->next;
	iommufd_destroy(d->ioas->tenant, d->hwpt_id, "HWPT");
	free(d);
}
