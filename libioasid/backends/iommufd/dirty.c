/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's dirty tracking: IOMMU_HWPT_SET_DIRTY_TRACKING,
 * IOMMU_HWPT_GET_DIRTY_BITMAP by runs the kernel has mapped, and the
 * (not atomic) unmap that returns the bits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "backends/iommufd/priv.h"
#include "util/bitmap.h"

static int set_dirty_tracking(struct be_tenant *t, uint32_t hwpt_id, bool on)
{
	struct ifd_hwpt_set_dirty_tracking s = {
		.size = sizeof(s), .hwpt_id = hwpt_id,
		.flags = on ? IFD_HWPT_DIRTY_TRACKING_ENABLE : 0,
	};

	return traced(t, IOMMUFD_CALL_SET_DIRTY, IFD_HWPT_SET_DIRTY_TRACKING,
		      &s);
}

/* IOMMU_HWPT_SET_DIRTY_TRACKING; -EOPNOTSUPP where the IOMMU cannot. */
int iommufd_set_dirty_tracking(struct be_domain *d, bool on)
{
	int r;

	if (on && !d->can_track)
		return -EOPNOTSUPP;
	if (d->dirty == on)
		return 0;
	r = set_dirty_tracking(d->ioas->tenant, d->hwpt_id, on);
	if (r == 0)
		d->dirty = on;
	return r;
}

/*
 * IOMMU_HWPT_GET_DIRTY_BITMAP of one run of IOVA the kernel has mapped
 * without a hole (it refuses ranges with holes), ORed into @bitmap
 * whose bit 0 is @bitmap_iova.
 */
static int dirty_run(struct be_domain *d, uint64_t iova, uint64_t length,
		     bool clear, uint64_t *bitmap, uint64_t bitmap_iova)
{
	uint64_t pages = length / SZ_4K;
	struct ifd_hwpt_get_dirty_bitmap g = {
		.size = sizeof(g), .hwpt_id = d->hwpt_id,
		.flags = clear ? 0 : IFD_HWPT_GET_DIRTY_NO_CLEAR,
		.iova = iova, .length = length, .page_size = SZ_4K,
	};
	uint64_t *tmp = calloc((pages + 63) / 64, sizeof(*tmp));
	int r;

	if (!tmp)
		return -ENOMEM;
	g.data = (uint64_t)(uintptr_t)tmp;
	r = kioctl(d->ioas->tenant->fd, IFD_HWPT_GET_DIRTY_BITMAP, &g);
	if (r == 0)
		bitmap_or_at(bitmap, (iova - bitmap_iova) / SZ_4K, tmp, pages);
	free(tmp);
	return r;
}

/* The dirty bits of what the kernel has mapped in [iova, iova+length). */
static int dirty_range(struct be_domain *d, uint64_t iova, uint64_t length,
		       bool clear, uint64_t *bitmap, uint64_t bitmap_iova)
{
	const struct kmap *m = &d->ioas->map;
	uint64_t end = iova + length, lo = 0, hi = 0;
	int r = 0;

	if (!d->dirty)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < m->nr && r == 0; i++) {
		uint64_t s = m->v[i].iova, e = s + m->v[i].length;

		if (e <= iova || s >= end)
			continue;
		s = s > iova ? s : iova;
		e = e < end ? e : end;
		if (hi == s) {		/* contiguous with the run */
			hi = e;
			continue;
		}
		if (hi > lo)
			r = dirty_run(d, lo, hi - lo, clear, bitmap,
				      bitmap_iova);
		lo = s;
		hi = e;
	}
	if (r == 0 && hi > lo)
		r = dirty_run(d, lo, hi - lo, clear, bitmap, bitmap_iova);
	return r;
}

int iommufd_read_dirty(struct be_domain *d, uint64_t iova,
		       uint64_t length, uint64_t *bitmap, bool clear)
{
	return dirty_range(d, iova, length, clear, bitmap, iova);
}

/*
 * Not atomic: the kernel has no unmap that returns dirty bits, so each
 * tracking HWPT's bits are read and cleared (IOMMU_HWPT_GET_DIRTY_BITMAP)
 * and then the range is unmapped (IOMMU_IOAS_UNMAP).  A device write
 * between the two is lost; the caller must have stopped the device's DMA
 * to the range if that matters.
 */
int iommufd_unmap_dirty(struct be_ioas *ioas, uint64_t iova,
			uint64_t length, const struct be_piece *old,
			uint32_t nr_old, uint64_t *bitmap,
			uint64_t bitmap_iova)
{
	int r = 0;

	for (struct be_domain *d = ioas->domains; d && r == 0; d = d->next)
		if (d->dirty)
			r = dirty_range(d, iova, length, true, bitmap,
					bitmap_iova);
	if (r < 0)
		return r;
	return iommufd_unmap(ioas, iova, length, old, nr_old);
}
