/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated IOMMU: nested domains and the two-stage walk (nested.h).
 */
#include "nested.h"
#include "guarded_copy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sim_nested_create(struct sim_domain *parent, uint64_t root,
		      unsigned int width, struct sim_domain **out)
{
	struct sim_domain *nd;

	if (!parent || parent->parent || !parent->pgt ||
	    (width != 48 && width != 57) || (root & (SIM_PAGE_SIZE - 1)) ||
	    (root & ~SIM_S1_ADDR_MASK))
		return -EINVAL;
	nd = calloc(1, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	pthread_mutex_init(&nd->lock, NULL);
	nd->id = sim_domain_new_id();
	nd->enforce_coherency = parent->enforce_coherency;
	nd->parent = parent;
	nd->s1_root = root;
	nd->s1_width = width;
	nd->s1_levels = width == 57 ? 5 : 4;
	pthread_mutex_lock(&parent->lock);
	nd->next_child = parent->children;
	parent->children = nd;
	pthread_mutex_unlock(&parent->lock);
	*out = nd;
	return 0;
}

static int fail(struct sim_nested_fault *f, unsigned int stage, int err,
		uint64_t addr)
{
	f->stage = stage;
	f->err = err;
	f->addr = addr;
	return err;
}

/* Read the stage-1 entry at guest-physical @gpa through stage 2. */
static int read_entry(struct sim_domain *nd, uint64_t gpa, uint64_t *pte,
		      struct sim_nested_fault *f)
{
	struct sim_xlate sx;
	size_t done;
	int r;

	r = sim_pgtable_translate(nd->parent->pgt, gpa, SIM_ACCESS_READ, &sx);
	if (r)
		return fail(f, 2, r, gpa);
	r = sim_guarded_copy(pte, (const void *)(uintptr_t)(sx.hva +
							   (gpa - sx.iova)),
			     sizeof(*pte), &done, NULL);
	if (r)
		return fail(f, 2, -EFAULT, gpa);
	return 0;
}

/*
 * Bits that must be zero in a present entry: PS where no leaf may be
 * (above level 3), and in a large leaf the address bits below its size
 * (bit 12 is its PAT bit).
 */
static bool reserved_set(uint64_t pte, unsigned int level)
{
	uint64_t size;

	if (!(pte & SIM_S1_PS) || level == 1)
		return false;
	if (level > 3)
		return true;
	size = 1ULL << (12 + 9 * (level - 1));
	return pte & SIM_S1_ADDR_MASK & (size - 1) & ~(1ULL << 12);
}

int sim_nested_translate(struct sim_domain *nd, uint64_t iova,
			 unsigned int access, struct sim_xlate *x,
			 struct sim_nested_fault *f)
{
	bool write = access & SIM_ACCESS_WRITE, writable = true, user = true;
	uint64_t table = nd->s1_root, pte = 0, size = SIM_SZ_4K, gpa, csize;
	unsigned int level;
	struct sim_xlate sx;
	int r;

	if (iova >> nd->s1_width)
		return fail(f, 1, -ERANGE, iova);
	for (level = nd->s1_levels; level >= 1; level--) {
		unsigned int shift = 12 + 9 * (level - 1);

		r = read_entry(nd, table + ((iova >> shift) & 511) * 8, &pte,
			       f);
		if (r)
			return r;
		if (!(pte & SIM_S1_P))
			return fail(f, 1, -ENOENT, iova);
		if (reserved_set(pte, level))
			return fail(f, 1, -EILSEQ, iova);
		writable &= !!(pte & SIM_S1_RW);
		user &= !!(pte & SIM_S1_US);
		if (level == 1 || (pte & SIM_S1_PS)) {
			size = 1ULL << shift;
			break;
		}
		table = pte & SIM_S1_ADDR_MASK;
	}
	if (!user || (write && !writable))
		return fail(f, 1, -EACCES, iova);
	gpa = (pte & SIM_S1_ADDR_MASK & ~(size - 1)) | (iova & (size - 1));
	r = sim_pgtable_translate(nd->parent->pgt, gpa, access, &sx);
	if (r)
		return fail(f, 2, r, gpa);
	/* both leaves are aligned to their sizes: the smaller one is the
	 * page both stages agree on */
	csize = size < sx.size ? size : sx.size;
	x->iova = iova & ~(csize - 1);
	x->hva = sx.hva + ((gpa & ~(csize - 1)) - sx.iova);
	x->size = csize;
	x->level = csize == SIM_SZ_4K ? 1 : csize == SIM_SZ_2M ? 2 : 3;
	x->pte = sx.pte & (SIM_PTE_R | SIM_PTE_SNP | SIM_PTE_A | SIM_PTE_D);
	if (writable)
		x->pte |= sx.pte & SIM_PTE_W;
	return 0;
}

void sim_nested_invalidate(struct sim_domain *nd, uint64_t start,
			   uint64_t last)
{
	pthread_mutex_lock(&nd->lock);
	for (struct sim_iotlb_link *l = nd->iotlbs; l; l = l->next)
		sim_iotlb_invalidate_range(l->tlb, start, last);
	/* DMA that still holds an old translation finishes first */
	sim_gp_synchronize();
	pthread_mutex_unlock(&nd->lock);
}
