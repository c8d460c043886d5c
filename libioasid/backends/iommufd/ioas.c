/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's address spaces: kernel IOASes, the mapping
 * ioctls behind kcommon's record of kernel mappings (kmap), cuts, copies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/iommufd/priv.h"

/* ---- kernel mappings ----------------------------------------------------- */

static int map_by_address(struct be_ioas *ioas, const struct kmap_entry *e,
			  uint32_t flags)
{
	struct ifd_ioas_map m = {
		.size = sizeof(m), .flags = flags, .ioas_id = ioas->id,
		.length = e->length, .iova = e->iova,
	};
	uint64_t hva;
	int r;

	r = filemap_hva(&e->backing, e->length, &hva);
	if (r < 0)
		return r;
	m.user_va = hva;
	return traced(ioas->tenant, IOMMUFD_CALL_MAP, IFD_IOAS_MAP, &m);
}

static int map_by_file(struct be_ioas *ioas, const struct kmap_entry *e,
		       uint32_t flags)
{
	struct ifd_ioas_map_file m = {
		.size = sizeof(m), .flags = flags, .ioas_id = ioas->id,
		.fd = e->backing.fd, .start = e->backing.offset,
		.length = e->length, .iova = e->iova,
	};

	return traced(ioas->tenant, IOMMUFD_CALL_MAP_FILE, IFD_IOAS_MAP_FILE, &m);
}

static bool by_file(const struct backend *be, const struct be_backing *b)
{
	return b->file && b->file->kind != IOASID_FILE_GUEST_MEMFD &&
	       !be->no_map_file;
}

static int kmap_do_map(void *arg, const struct kmap_entry *e)
{
	struct be_ioas *ioas = arg;
	uint32_t flags = IFD_MAP_FIXED_IOVA |
			 kprot(e->prot, IFD_MAP_READABLE, IFD_MAP_WRITEABLE);
	int r;

	if (ioas->adopted && ioas->tenant->adopting &&
	    iommufd_adopt_map(ioas, e, flags) == 0)
		return 0;
	if (!by_file(ioas->be, &e->backing))
		return map_by_address(ioas, e, flags);
	r = map_by_file(ioas, e, flags);
	if (r == -ENOTTY) {
		notice(ioas->be->log, "iommufd: no IOMMU_IOAS_MAP_FILE (Linux "
		       "before 6.13): mapping files by address");
		ioas->be->no_map_file = true;
		snprintf(ioas->be->desc, sizeof(ioas->be->desc), IOMMUFD_PATH
			 " (one per session; files mapped by address)");
		r = map_by_address(ioas, e, flags);
	}
	return r;
}

static int kmap_do_unmap(void *arg, uint64_t iova, uint64_t length)
{
	struct be_ioas *ioas = arg;

	if (ioas->tenant->adopting)
		return 0;	/* a hand-over given up: leave the kernel's */
	struct ifd_ioas_unmap u = {
		.size = sizeof(u), .ioas_id = ioas->id, .iova = iova,
		.length = length,
	};
	int r = traced(ioas->tenant, IOMMUFD_CALL_UNMAP, IFD_IOAS_UNMAP, &u);

	/*
	 * The record only asks for ranges of whole kernel mappings, so ENOENT
	 * (a cut, or nothing there) means the record is wrong: report it
	 * rather than let the core believe a still-mapped range is gone.
	 */
	if (r < 0)
		err(ioas->be->log, "iommufd: IOMMU_IOAS_UNMAP 0x%llx+0x%llx of "
		    "IOAS %u: %s", (unsigned long long)iova,
		    (unsigned long long)length, ioas->id, strerror(-r));
	return r;
}

/*
 * The kernel's own split (page-granular IOASes): make the IOAS this fd's
 * compatibility IOAS (a per-fd pointer: set before every cut, under the
 * core's lock like every seam call), then the VFIO-compatibility unmap on
 * the iommufd itself cuts the areas at both ends of the range and removes
 * only the range.  The areas outside keep their pages and IOPTEs.
 */
static int kmap_do_cut(void *arg, uint64_t iova, uint64_t length)
{
	struct be_ioas *ioas = arg;
	struct backend *be = ioas->be;
	struct be_tenant *t = ioas->tenant;
	struct ifd_vfio_ioas v = {
		.size = sizeof(v), .ioas_id = ioas->id, .op = IFD_VFIO_IOAS_SET,
	};
	struct kvfio_dma_unmap u = {
		.argsz = sizeof(u), .iova = iova, .size = length,
	};
	int r = traced(t, IOMMUFD_CALL_VFIO_IOAS, IFD_VFIO_IOAS, &v);

	if (r == 0)
		r = traced(t, IOMMUFD_CALL_CUT, KVFIO_IOMMU_UNMAP_DMA, &u);
	if (r < 0) {
		/*
		 * A split alone changes no translation; the kernel unmaps
		 * areas in IOVA order and stops at the first it cannot
		 * remove (EBUSY: an in-kernel access, which this backend
		 * never creates), so u.size says how far it got.
		 */
		err(be->log, "iommufd: cut of IOVA 0x%llx+0x%llx from IOAS %u "
		    "(VFIO_IOMMU_UNMAP_DMA on the iommufd): %s%s",
		    (unsigned long long)iova, (unsigned long long)length,
		    ioas->id, strerror(-r),
		    u.size ? "; part of the range was unmapped" : "");
	}
	return r;
}

static void kmap_lost(void *arg, const struct kmap_entry *e)
{
	struct be_ioas *ioas = arg;

	err(ioas->be->log, "iommufd: IOAS %u lost IOVA 0x%llx-0x%llx while "
	    "undoing a failed unmap", ioas->id, (unsigned long long)e->iova,
	    (unsigned long long)(e->iova + e->length - 1));
}

static const struct kmap_ops iommufd_kmap_ops = {
	.map = kmap_do_map,
	.unmap = kmap_do_unmap,
	.lost = kmap_lost,
	.cut = kmap_do_cut,
};

/* ---- address spaces ------------------------------------------------------ */

static int disable_huge_pages(struct be_tenant *t, uint32_t ioas_id)
{
	struct backend *be = t->be;
	struct ifd_option o = {
		.size = sizeof(o), .option_id = IFD_OPTION_HUGE_PAGES,
		.op = IFD_OPTION_OP_SET, .object_id = ioas_id, .val64 = 0,
	};
	int r = traced(t, IOMMUFD_CALL_OPTION, IFD_OPTION, &o);

	if (r < 0) {
		err(be->log, "iommufd: IOMMU_OPTION_HUGE_PAGES off for IOAS %u: "
		    "%s: a page-granular IOAS cannot be had", ioas_id,
		    strerror(-r));
		return -EOPNOTSUPP;
	}
	return 0;
}

int iommufd_ioas_alloc(struct backend *be, struct be_tenant *t,
		       uint32_t flags, struct be_ioas **out)
{
	struct ifd_ioas_alloc a = { .size = sizeof(a) };
	struct be_ioas *ioas = calloc(1, sizeof(*ioas));
	int r;

	if (!ioas)
		return -ENOMEM;
	ioas->be = be;
	ioas->tenant = t;
	ioas->nest_parent = flags & IOASID_IOAS_NEST_PARENT;
	if (iommufd_adopt_ioas(t, ioas)) {
		ioas->page_granular = flags & IOASID_IOAS_PAGE_GRANULAR;
		ioas->map.kernel_cuts = ioas->page_granular;
		*out = ioas;
		return 0;
	}
	r = traced(t, IOMMUFD_CALL_IOAS_ALLOC, IFD_IOAS_ALLOC, &a);
	if (r < 0) {
		free(ioas);
		return r;
	}
	ioas->id = a.out_ioas_id;
	/*
	 * Page-granular (restricted IOASes always are): 4 KiB IOPTEs, so the
	 * kernel can split its areas and every cut is one atomic call.  The
	 * option must be set before any domain holds mappings: now.  A
	 * restricted IOAS is then mapped by runs, not page by page.
	 */
	if (flags & IOASID_IOAS_PAGE_GRANULAR) {
		r = disable_huge_pages(t, ioas->id);
		if (r < 0) {
			iommufd_destroy(t, ioas->id, "IOAS");
			free(ioas);
			return r;
		}
		ioas->page_granular = true;
		ioas->map.kernel_cuts = true;
	}
	*out = ioas;
	return 0;
}

void iommufd_ioas_free(struct be_ioas *ioas)
{
	/* the kernel drops the mappings with the IOAS */
	iommufd_destroy(ioas->tenant, ioas->id, "IOAS");
	kmap_release(&ioas->map);
	free(ioas);
}

int iommufd_map(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		const struct be_backing *backing, uint32_t prot)
{
	return kmap_map(&ioas->map, &iommufd_kmap_ops, ioas, iova, length,
			backing, prot);
}

int iommufd_unmap(struct be_ioas *ioas, uint64_t iova, uint64_t length,
		  const struct be_piece *old, uint32_t nr_old)
{
	/* the record of kernel mappings knows more than @old: see kmap.c */
	return kmap_unmap(&ioas->map, &iommufd_kmap_ops, ioas, iova, length);
}

size_t iommufd_take_lost(struct be_ioas *ioas,
			 struct ioasid_iova_range *out, size_t cap)
{
	return kmap_take_lost(&ioas->map, out, cap);
}

int iommufd_hide_batch(struct be_ioas *ioas,
		       const struct ioasid_iova_range *runs,
		       uint32_t nr)
{
	int r = 0;

	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = kmap_unmap(&ioas->map, &iommufd_kmap_ops, ioas,
			       runs[i].start, runs[i].last - runs[i].start + 1);
	return r;
}

struct copy_call {
	struct be_ioas *dst, *src;
	struct ifd_ioas_copy c;
};

static int do_copy(void *arg)
{
	struct copy_call *cc = arg;

	return traced(cc->dst->tenant, IOMMUFD_CALL_COPY, IFD_IOAS_COPY,
		      &cc->c);
}

/*
 * IOMMU_IOAS_COPY: the destination maps the source's pages themselves
 * (the kernel shares the pinned iopt_pages, so they are pinned and
 * accounted once), one kernel call whatever the number of pieces.  Both
 * IOASes are in one iommufd: the kernel looks both ids up in the fd it
 * is called on, so no session can copy from another's.
 */
int iommufd_copy(struct be_ioas *dst, uint64_t dst_iova,
		 struct be_ioas *src, uint64_t src_iova, uint64_t length,
		 uint32_t prot, const struct be_piece *pieces,
		 uint32_t nr_pieces)
{
	struct copy_call cc = {
		.dst = dst, .src = src,
		.c = {
			.size = sizeof(cc.c), .dst_ioas_id = dst->id,
			.src_ioas_id = src->id, .length = length,
			.dst_iova = dst_iova, .src_iova = src_iova,
			.flags = IFD_MAP_FIXED_IOVA |
				 kprot(prot, IFD_MAP_READABLE,
				       IFD_MAP_WRITEABLE),
		},
	};
	int r;

	if (dst->tenant != src->tenant)
		return -EXDEV;
	r = kmap_copy(&dst->map, &src->map, dst_iova, src_iova, length, prot,
		      pieces, nr_pieces, do_copy, &cc);
	if (r < 0)
		err(dst->be->log, "iommufd: IOMMU_IOAS_COPY of IOVA 0x%llx+0x%llx "
		    "of IOAS %u to 0x%llx of IOAS %u: %s",
		    (unsigned long long)src_iova, (unsigned long long)length,
		    src->id, (unsigned long long)dst_iova, dst->id,
		    strerror(-r));
	return r;
}
