/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's nested HWPTs: IOMMU_HWPT_ALLOC of a stage-1 table
 * (VT-d or the selftest's) over a nest-parent HWPT, attach, and
 * IOMMU_HWPT_INVALIDATE with the kernel's count of entries handled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/iommufd/priv.h"

/* ---- nested HWPTs ------------------------------------------------------- */

/*
 * IOMMU_HWPT_ALLOC of @n's request (its object, its vendor data) for
 * @dev, with FAULT @fault_id (0: none).  A device with PASIDs gets it
 * PASID-capable, as its paging HWPTs are, so its PASIDs may go on it and
 * its own requests move there beside PASIDs attached elsewhere.
 */
int iommufd_nested_hwpt(struct be_nested *n, struct be_device *dev,
			uint32_t fault_id, uint32_t *hwpt_id)
{
	struct ifd_hwpt_alloc h = {
		.size = sizeof(h), .dev_id = dev->dev_id, .pt_id = n->pt_id,
		.flags = (fault_id ? IFD_HWPT_FAULT_ID_VALID : 0) |
			 (dev->max_pasid_log2 ? IFD_HWPT_ALLOC_PASID : 0),
		.fault_id = fault_id, .data_type = n->data_type,
		.data_len = n->data_len,
		.data_uptr = (uint64_t)(uintptr_t)n->data,
	};
	int r = kioctl(dev->tenant->fd, IFD_HWPT_ALLOC, &h);

	if (r == 0)
		*hwpt_id = h.out_hwpt_id;
	return r;
}

/*
 * A nested HWPT over @parent, allocated on @pt_id: the parent's HWPT, or
 * a vIOMMU over it (viommu.c), which the kernel then ties the table to.
 */
int iommufd_nested_make(struct be_domain *parent, uint32_t pt_id,
			struct be_device *dev, uint32_t type,
			const void *data, uint32_t len,
			uint32_t nested_id, struct be_nested **out,
			char *why, size_t whylen)
{
	const struct ioasid_nested_selftest *st = data;
	uint32_t iotlb = type == IOASID_NESTED_SELFTEST ? st->iotlb : 0;
	struct be_nested *n;
	int r;

	if (!parent->ioas->nest_parent) {
		snprintf(why, whylen, "the parent's HWPT is not a nest parent");
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->pt_id = pt_id;
	if (type == IOASID_NESTED_VTD_S1) {
		/* struct ioasid_nested_vtd_s1 is iommu_hwpt_vtd_s1 */
		n->data_type = IFD_HWPT_DATA_VTD_S1;
		n->data_len = len;
		if (len > sizeof(n->data)) {
			free(n);
			return -EINVAL;
		}
		memcpy(n->data, data, len);
	} else {
		/* the kernel's struct iommu_hwpt_selftest is one __u32 */
		n->data_type = IFD_HWPT_DATA_SELFTEST;
		n->data_len = sizeof(iotlb);
		memcpy(n->data, &iotlb, sizeof(iotlb));
	}
	n->type = type;
	/* a successor's: the predecessor's HWPT, if the kernel has it */
	r = iommufd_adopt_nested(dev->tenant, n) ? 0 :
	    iommufd_nested_hwpt(n, dev, 0, &n->hwpt_id);
	if (r < 0) {
		snprintf(why, whylen, "IOMMU_HWPT_ALLOC of a nested HWPT (data "
			 "type 0x%x) for %s: %s", n->data_type,
			 dev->inv->info.name, strerror(-r));
		free(n);
		return r;
	}
	n->tenant = dev->tenant;
	n->parent = parent;
	n->type = type;
	dbg(dev->be->log, "iommufd: nested HWPT %u (table %u) on %u, over "
	    "HWPT %u", n->hwpt_id, nested_id, pt_id, parent->hwpt_id);
	*out = n;
	return 0;
}

int iommufd_nested_alloc(struct be_domain *parent,
			 struct be_device *dev, uint32_t type,
			 const void *data, uint32_t len,
			 uint32_t nested_id, struct be_nested **out,
			 char *why, size_t whylen)
{
	return iommufd_nested_make(parent, parent->hwpt_id, dev, type, data,
				   len, nested_id, out, why, whylen);
}

void iommufd_nested_free(struct be_nested *n)
{
	iommufd_destroy(n->tenant, n->hwpt_id, "nested HWPT");
	/* a queue freed with its table (fault.c): its FAULT goes after */
	if (n->dead_fault)
		iommufd_fault_bury(n->tenant, n->dead_fault);
	free(n);
}

/*
 * Attach, or replace without a gap (a mock device's DMA access goes to
 * the parent IOAS: the mock's nested domain translates through its
 * parent).
 */
int iommufd_attach_nested(struct be_device *dev, struct be_nested *n)
{
	int r = iommufd_attach_pt(dev, n->hwpt_id, n->parent->ioas->id);

	if (r < 0)
		return r;
	dev->domain = n->parent;
	dev->nested = n;
	return 0;
}

/* The kernel's entries for ours (the core checked them). */
static void *inval_entries(const struct be_nested *n,
			   const struct ioasid_nested_inval *v, uint32_t nr,
			   uint32_t *type, uint32_t *len)
{
	struct ifd_selftest_invalidate *st;
	struct ifd_vtd_s1_invalidate *vtd;
	bool all;

	if (n->type == IOASID_NESTED_SELFTEST) {
		st = calloc(nr, sizeof(*st));
		for (uint32_t i = 0; st && i < nr; i++) {
			all = v[i].flags & IOASID_NESTED_INVAL_ALL;
			st[i].flags = all ? IFD_TEST_INVALIDATE_FLAG_ALL : 0;
			/* the slot is the page index: core entries are
			 * 4 KiB aligned */
			st[i].iotlb_id = all ? 0 :
					 (uint32_t)(v[i].addr / SZ_4K);
		}
		*type = IFD_HWPT_INVALIDATE_DATA_SELFTEST;
		*len = sizeof(*st);
		return st;
	}
	vtd = calloc(nr, sizeof(*vtd));
	for (uint32_t i = 0; vtd && i < nr; i++) {
		all = v[i].flags & IOASID_NESTED_INVAL_ALL;
		vtd[i].addr = all ? 0 : v[i].addr;
		vtd[i].npages = all ? UINT64_MAX : v[i].npages;
		vtd[i].flags = v[i].flags & IOASID_NESTED_INVAL_LEAF ?
			       IFD_VTD_INV_FLAGS_LEAF : 0;
	}
	*type = IFD_HWPT_INVALIDATE_DATA_VTD_S1;
	*len = sizeof(*vtd);
	return vtd;
}

int iommufd_nested_invalidate(struct be_nested *n,
			      const struct ioasid_nested_inval *v,
			      uint32_t nr, uint32_t *done, char *why,
			      size_t whylen)
{
	struct ifd_hwpt_invalidate inv = {
		.size = sizeof(inv), .hwpt_id = n->hwpt_id, .entry_num = nr,
	};
	void *entries = inval_entries(n, v, nr, &inv.data_type,
				      &inv.entry_len);
	int r;

	*done = 0;
	if (!entries)
		return -ENOMEM;
	inv.data_uptr = (uint64_t)(uintptr_t)entries;
	r = kioctl(n->tenant->fd, IFD_HWPT_INVALIDATE, &inv);
	free(entries);
	/*
	 * The kernel says how many it handled when an entry failed; when
	 * it refused the call before any, entry_num may still read nr.
	 */
	*done = inv.entry_num < nr ? inv.entry_num : 0;
	if (r < 0)
		snprintf(why, whylen, "IOMMU_HWPT_INVALIDATE: %s",
			 strerror(-r));
	else
		*done = nr;
	return r;
}
