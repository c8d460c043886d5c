/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated IOMMU: nested (two-stage) translation.
 *
 * Integration note
 * ----------------
 * A nested domain is a struct sim_domain (iotlb.h) without a page table
 * of its own: its stage-1 table lives in guest memory, at a
 * guest-physical address that its parent domain (stage 2) translates.
 * Devices attach to it with sim_dev_attach() as to any domain; the DMA
 * engine (dma.c) sees dom->parent and walks both stages.  Layering:
 * iotlb < nested < dma.
 *
 * Stage-1 format: VT-d first-stage, i.e. x86-64 (IA-32e) paging: 512
 * 64-bit entries per 4 KiB table, 4 levels (48-bit input) or 5 (57-bit);
 * bit 0 present, bit 1 writable, bit 2 user, bit 7 page size (a 1 GiB
 * leaf at level 3, a 2 MiB leaf at level 2; reserved above level 3),
 * bits 12..51 the next table's or the page's guest-physical address.
 * The simulated device's requests are user requests without PASID: every
 * entry on the way must have U set, and a write needs W at every level.
 * The simulator reads stage-1 entries and never writes them (no
 * accessed/dirty bits in stage 1; stage 2 gets its A and D as usual).
 *
 * Every read of a stage-1 entry is a DMA read of the parent: translated
 * by stage 2 (needing read permission there) and copied with a guarded
 * copy, so a table the guest placed outside the parent's mappings, or in
 * memory that vanished, is a fault record, never a crash.
 *
 * Caching: the IOTLB of each attached device caches the combined
 * translation (stage-1 input -> host address, the smaller of the two
 * leaves, the intersection of the permissions) tagged with the nested
 * domain's id.  There is no paging-structure cache: a miss walks both
 * stages.  So a stage-1 entry the guest changes keeps its old meaning
 * for DMA until sim_nested_invalidate() covers it; a stage-2 unmap of
 * the parent drops all entries of its nested domains (iotlb.c).
 */
#ifndef IOASID_SIM_NESTED_H
#define IOASID_SIM_NESTED_H

#include <stdint.h>

#include "iotlb.h"

/* Stage-1 entry bits (x86-64 paging). */
#define SIM_S1_P		(1ULL << 0)
#define SIM_S1_RW		(1ULL << 1)
#define SIM_S1_US		(1ULL << 2)
#define SIM_S1_PS		(1ULL << 7)
#define SIM_S1_ADDR_MASK	0x000ffffffffff000ULL

/* Where a nested walk failed. */
struct sim_nested_fault {
	unsigned int stage;	/* 1 or 2 */
	/* -ENOENT not present, -EACCES permission, -ERANGE beyond the
	 * width, -EILSEQ a reserved bit, -EFAULT the memory vanished */
	int err;
	uint64_t addr;		/* stage 1: the input; stage 2: the GPA */
};

/*
 * A nested domain over @parent (a plain domain), its stage-1 root at
 * guest-physical @root (4 KiB aligned), @width 48 or 57.  Returns 0,
 * -EINVAL, -ENOMEM.
 */
int sim_nested_create(struct sim_domain *parent, uint64_t root,
		      unsigned int width, struct sim_domain **out);

/*
 * Walk both stages for a DMA access to @iova (inside a sim_gp read
 * section).  0 and *x (x->iova/size: the combined page, x->hva its host
 * address, x->pte its SIM_PTE_R/W/SNP), or a negative errno and *f.
 */
int sim_nested_translate(struct sim_domain *nd, uint64_t iova,
			 unsigned int access, struct sim_xlate *x,
			 struct sim_nested_fault *f);

/*
 * Drop the cached translations of [start, last] (inclusive) from every
 * IOTLB attached to @nd and wait until no DMA uses one any more: when it
 * returns, DMA sees the stage-1 table as it is now.
 */
void sim_nested_invalidate(struct sim_domain *nd, uint64_t start,
			   uint64_t last);

#endif /* IOASID_SIM_NESTED_H */
