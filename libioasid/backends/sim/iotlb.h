/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated IOMMU: per-device IOTLB, the domain object and the
 * invalidation protocol.
 *
 * Integration note
 * ----------------
 * struct sim_domain is what the sim backend creates per HWPT: a page table
 * (pgtable.h) plus the list of IOTLBs of the devices attached to it.
 * The backend calls sim_domain_map/unmap/read_and_clear_dirty; devices
 * (dma.h) attach with sim_dev_attach(), which uses sim_domain_attach_iotlb.
 * DMA uses sim_iotlb_lookup/fill from inside a grace-period read section.
 *
 * Guarantee: when sim_domain_unmap() returns, no DMA of any device can
 * reach the unmapped pages, including DMA that was in flight:
 *   1. the page table entries are cleared (atomically, leaf by leaf; a
 *      straddling large leaf is first split in place),
 *   2. every attached IOTLB drops the entries overlapping the range and
 *      bumps its invalidation generation, so a fill computed from an old
 *      walk is refused,
 *   3. sim_gp_synchronize() waits until every DMA chunk that might still
 *      hold an old translation (from the IOTLB or from a walk) has
 *      finished its copy,
 *   4. retired page-table pages are freed.
 *
 * Locking rules
 * -------------
 *  - Each domain has a mutex serializing its writers (map, unmap, dirty,
 *    attach/detach).  Callers may hold their own IOAS lock around these
 *    calls; never call them from inside a sim_gp read section.
 *  - IOTLB lookups and fills are lock-free (per-entry seqlock); fills
 *    and invalidations serialize per entry with a tiny CAS lock and the
 *    reader never waits for them.
 *  - Lock order: device attach lock (dma.c) -> domain mutex.
 */
#ifndef IOASID_SIM_IOTLB_H
#define IOASID_SIM_IOTLB_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgtable.h"

#define SIM_IOTLB_ENTRIES_4K	256
#define SIM_IOTLB_ENTRIES_2M	64
#define SIM_IOTLB_ENTRIES_1G	16

/* Fields are private; all are accessed atomically. */
struct sim_iotlb_entry {
	uint64_t seq;		/* seqlock: odd while being written */
	uint64_t tag;		/* IOVA of the page | SIM_IOTLB_VALID */
	uint64_t hva;		/* hva of the page */
	uint64_t info;		/* domain id << 32 | PTE flags | DIRTY mark */
};

struct sim_domain;
struct sim_iotlb;

/*
 * Membership of an IOTLB in a domain's invalidation list.  Two per IOTLB:
 * while a device is moved between domains it is on both lists.
 */
struct sim_iotlb_link {
	struct sim_domain *domain;	/* NULL: unused */
	struct sim_iotlb *tlb;
	struct sim_iotlb_link *next;
};

/* One per device.  Embedded in struct sim_dev; fields private. */
struct sim_iotlb {
	struct sim_iotlb_entry e4k[SIM_IOTLB_ENTRIES_4K];
	struct sim_iotlb_entry e2m[SIM_IOTLB_ENTRIES_2M];
	struct sim_iotlb_entry e1g[SIM_IOTLB_ENTRIES_1G];
	uint64_t gen;		/* bumped by every invalidation */
	uint64_t hits;
	uint64_t misses;
	uint64_t invalidations;
	/* writer side: device attach lock + the domain's mutex */
	struct sim_iotlb_link links[2];
};

/* A cached translation as seen by a lookup. */
struct sim_iotlb_hit {
	uint64_t iova;		/* page base */
	uint64_t hva;		/* page base */
	uint64_t size;
	uint64_t flags;		/* SIM_PTE_R/W/SNP */
	bool dirty;		/* D already set in the leaf by this entry */
};

/* sim_domain_create() flags */
#define SIM_DOMAIN_ENFORCE_COHERENCY	SIM_PGT_ENFORCE_COHERENCY

/* sim_domain.dirty_state bits (read by DMA without the lock) */
#define SIM_DOMAIN_TRACKING	(1U << 0)	/* A/D set by DMA */
#define SIM_DOMAIN_CLEARING	(1U << 1)	/* cached D marks untrusted */

struct sim_domain {
	struct sim_pgtable *pgt;	/* NULL for a nested domain */
	uint32_t id;		/* tags IOTLB entries */
	bool enforce_coherency;
	uint32_t dirty_state;	/* SIM_DOMAIN_TRACKING | _CLEARING */
	pthread_mutex_t lock;
	struct sim_iotlb_link *iotlbs;	/* attached devices */
	unsigned int nr_attached;
	/*
	 * Nested (two-stage) domains, nested.h: a nested domain has no page
	 * table of its own but a stage-1 table in guest memory, read
	 * through @parent (its stage 2); its IOTLB entries (tagged with its
	 * id) cache the combined translation.  A parent lists its nested
	 * domains (under its mutex) so that its unmaps drop their entries.
	 */
	struct sim_domain *parent;
	struct sim_domain *children;
	struct sim_domain *next_child;
	uint64_t s1_root;		/* guest-physical, in @parent */
	unsigned int s1_levels;		/* 4 or 5 */
	unsigned int s1_width;		/* 48 or 57 */
};

/* --- IOTLB (per device) --------------------------------------------- */

void sim_iotlb_init(struct sim_iotlb *tlb);

/*
 * Reader side, inside a sim_gp read section.  Returns true and fills *hit
 * if a valid entry of domain domid translates iova.
 */
bool sim_iotlb_lookup(struct sim_iotlb *tlb, uint32_t domid, uint64_t iova,
		      struct sim_iotlb_hit *hit);

/* Generation to read BEFORE walking the page table for a fill. */
uint64_t sim_iotlb_gen(struct sim_iotlb *tlb);

/*
 * Insert a translation obtained by a walk that started after reading gen.
 * Silently does nothing if an invalidation ran since (the walk may be
 * stale) or the slot is busy.  dirty: the walk set D in the leaf.
 */
void sim_iotlb_fill(struct sim_iotlb *tlb, uint64_t gen, uint32_t domid,
		    const struct sim_xlate *x, bool dirty);

/* Drop entries overlapping [start, last] (inclusive), any domain. */
void sim_iotlb_invalidate_range(struct sim_iotlb *tlb, uint64_t start,
				uint64_t last);
void sim_iotlb_invalidate_all(struct sim_iotlb *tlb);

/* Hit/miss accounting (batched by the DMA engine). */
void sim_iotlb_account(struct sim_iotlb *tlb, uint64_t hits,
		       uint64_t misses);

/* --- Domain ---------------------------------------------------------- */

/*
 * Create a domain.  addr_width/pgsize_mask as for sim_pgtable_create();
 * flags: SIM_DOMAIN_ENFORCE_COHERENCY (fixed for the domain's lifetime:
 * every leaf carries SNP).  Returns 0, -EINVAL, -ENOMEM.
 */
int sim_domain_create(unsigned int addr_width, uint64_t pgsize_mask,
		      unsigned int flags, struct sim_domain **out);

/* Returns -EBUSY if devices are still attached (nothing freed). */
int sim_domain_destroy(struct sim_domain *dom);

/* sim_pgtable_map() under the domain mutex. */
int sim_domain_map(struct sim_domain *dom, uint64_t iova, uint64_t length,
		   uint64_t hva, uint64_t prot);

/*
 * Unmap, invalidate every attached IOTLB, wait for in-flight DMA, free
 * retired tables.  Returns bytes unmapped or a negative errno (see
 * sim_pgtable_unmap()).
 */
int64_t sim_domain_unmap(struct sim_domain *dom, uint64_t iova,
			 uint64_t length);

struct sim_range {
	uint64_t iova;
	uint64_t length;
};

/*
 * sim_domain_unmap() of many ranges with one IOTLB flush and one grace
 * period: what confidential-memory conversions need.  Returns the bytes
 * unmapped, or the first error (-EINVAL, -ERANGE, -ENOMEM); the ranges
 * before the failing one are unmapped (and unreachable), the rest not.
 */
int64_t sim_domain_unmap_batch(struct sim_domain *dom,
			       const struct sim_range *ranges, size_t nr);

/*
 * Dirty tracking of the domain, off at creation (VT-d: SSADE).  Off, DMA
 * writes nothing into the page table and never walks for a dirty bit: it
 * costs nothing.  Turning it on clears every D bit, drops the cached
 * translations and waits for DMA in flight, so that every write issued
 * after the return is tracked.  Returns 0.
 */
int sim_domain_set_dirty_tracking(struct sim_domain *dom, bool on);

/*
 * Read (and clear, unless SIM_DIRTY_NO_CLEAR) dirty bits.  A write that
 * races with the clear is reported now or in the next read, never lost:
 *   1. SIM_DOMAIN_CLEARING is set and a grace period waits out DMA that
 *      trusted a cached "D already set" mark; from now on every write
 *      walks and sets D with a CAS before moving data;
 *   2. D is read and cleared leaf by leaf (fetch-and: a D set after the
 *      clear stays for the next read);
 *   3. the IOTLBs drop the range (marks filled during 1-2 go), CLEARING
 *      is cleared, and a second grace period waits until every write
 *      whose D was reported has landed, so that a copy made after the
 *      return sees its data.
 * NO_CLEAR only reads (no grace period).
 */
int sim_domain_read_and_clear_dirty(struct sim_domain *dom, uint64_t iova,
				    uint64_t length, uint64_t *bitmap,
				    unsigned int flags);

/*
 * sim_pgtable_mark_dirty() under the domain's lock.  An IOTLB entry
 * that cached "D not set" only makes the next write walk again.
 */
int sim_domain_mark_dirty(struct sim_domain *dom, uint64_t iova,
			  uint64_t length);

/*
 * sim_domain_unmap() that ORs the D bits of what it removes into @bitmap
 * (sim_pgtable_unmap_dirty()), in the same step as the removal: every
 * write that reached the range before is reported, none after can
 * reach it.
 */
int64_t sim_domain_unmap_dirty(struct sim_domain *dom, uint64_t iova,
			       uint64_t length, uint64_t *bitmap,
			       uint64_t bitmap_iova);

/*
 * sim_pgtable_prefetch() of the domain's table, without its mutex: a hint
 * before a sim_domain_unmap() at @iova.
 */
void sim_domain_prefetch(struct sim_domain *dom, uint64_t iova);

/* Writer-side walk (debug / tests). */
int sim_domain_walk(struct sim_domain *dom, uint64_t iova,
		    struct sim_xlate *x);

/*
 * Attach/detach an IOTLB (used by sim_dev_attach(), which serializes calls
 * for one IOTLB).  An IOTLB can be on two domains' lists at once.  Attach
 * returns 0 or -EBUSY (already on two lists).  Detach flushes the whole
 * IOTLB but does not wait; the caller synchronizes.
 */
int sim_domain_attach_iotlb(struct sim_domain *dom, struct sim_iotlb *tlb);
void sim_domain_detach_iotlb(struct sim_domain *dom, struct sim_iotlb *tlb);

/* A fresh domain id (IOTLB tag), shared by plain and nested domains. */
uint32_t sim_domain_new_id(void);

#endif /* IOASID_SIM_IOTLB_H */
