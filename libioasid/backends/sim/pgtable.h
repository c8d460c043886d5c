/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated IOMMU: multi-level I/O page tables and the grace-period
 * machinery that lets DMA walk them without locks.
 *
 * Integration note
 * ----------------
 * Layering (lowest first):  guarded_copy  <  pgtable (+ sim_gp)  <  iotlb
 * (+ sim_domain)  <  dma.  Most callers want struct sim_domain (iotlb.h),
 * which wraps a sim_pgtable with a mutex, the IOTLB fan-out and the
 * "unmap returns => no DMA reaches the old pages" guarantee.  Use the raw
 * sim_pgtable only for tests or if you build your own invalidation.
 *
 * Format: x86-64 VT-d second-stage style.  512 64-bit PTEs per 4 KiB table,
 * 3/4/5 levels for an address width of <=39/<=48/<=57 bits.  Level 1 holds
 * 4 KiB leaves; a level-2 (level-3) entry with SIM_PTE_PS is a 2 MiB
 * (1 GiB) leaf.  The address field of a leaf holds a *host virtual
 * address* (the simulator's "physical" memory is the process' own mappings
 * of the backing files); a large leaf covers hva..hva+size-1.  A large leaf
 * is used only when iova AND hva are both aligned to its size and the
 * remaining length covers it; otherwise the range falls back to smaller
 * leaves, so any 4 KiB-aligned hva works.
 * Bits 52..61 of an entry that points to a table (ignored by the walk)
 * count the present entries of that table: the writer's bookkeeping for
 * unlinking tables that unmap empties (pgtable.c).
 *
 * Locking rules
 * -------------
 *  - Writers (map, unmap, read_and_clear_dirty, reclaim, destroy) must be
 *    serialized by the caller (sim_domain does it with its mutex).
 *  - Readers (sim_pgtable_walk, sim_pgtable_translate) take no lock but
 *    MUST run inside sim_gp_read_lock()/sim_gp_read_unlock(), or on the
 *    writer's side of the caller's mutex.  Any number of readers may run
 *    concurrently with the one writer.
 *  - A reader sees, for every IOVA, either the translation before or after
 *    a concurrent write; a split of a large leaf never exposes a hole for
 *    the pages whose translation did not change (see pgtable.c).
 *  - DMA sets the accessed/dirty bits with a compare-and-swap on the leaf;
 *    writers that replace or clear a leaf use atomic exchange/CAS so those
 *    bits are never lost.
 *  - Table pages removed by unmap are *retired*, not freed: they are freed
 *    after a grace period (sim_gp_synchronize()) by sim_pgtable_reclaim(),
 *    or by unmap itself once SIM_PGT_RECLAIM_BATCH pages are pending, so
 *    memory stays bounded under map/unmap churn.
 *  - Never call a writer operation or sim_gp_synchronize() from inside a
 *    read-side section: it would wait for itself.
 */
#ifndef IOASID_SIM_PGTABLE_H
#define IOASID_SIM_PGTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PTE bits (VT-d second-level layout where one exists). */
#define SIM_PTE_R		(1ULL << 0)	/* read allowed */
#define SIM_PTE_W		(1ULL << 1)	/* write allowed */
#define SIM_PTE_PS		(1ULL << 7)	/* leaf at level > 1 */
#define SIM_PTE_A		(1ULL << 8)	/* accessed (set by DMA) */
#define SIM_PTE_D		(1ULL << 9)	/* dirty (set by DMA write) */
#define SIM_PTE_SNP		(1ULL << 11)	/* force snoop */
#define SIM_PTE_ADDR_MASK	0x000ffffffffff000ULL	/* bits 12..51 */

#define SIM_PAGE_SHIFT		12
#define SIM_PAGE_SIZE		(1ULL << SIM_PAGE_SHIFT)
#define SIM_SZ_4K		(1ULL << 12)
#define SIM_SZ_2M		(1ULL << 21)
#define SIM_SZ_1G		(1ULL << 30)

/* Map protection flags (subset of the PTE bits). */
#define SIM_PROT_READ		SIM_PTE_R
#define SIM_PROT_WRITE		SIM_PTE_W
#define SIM_PROT_SNOOP		SIM_PTE_SNP

/* sim_pgtable_create() flags */
#define SIM_PGT_ENFORCE_COHERENCY	(1U << 0)	/* SNP in every leaf */

/* Access types for sim_pgtable_translate(). */
#define SIM_ACCESS_READ		(1U << 0)
#define SIM_ACCESS_WRITE	(1U << 1)
/*
 * Dirty tracking is on in the domain (VT-d: SSADE in the PASID entry):
 * the walk sets A, and D for a write.  Without it the walk writes
 * nothing into the table, as hardware with A/D disabled.
 */
#define SIM_ACCESS_TRACK	(1U << 2)

/* sim_pgtable_read_and_clear_dirty() flags */
#define SIM_DIRTY_NO_CLEAR	(1U << 0)
/* clear without reporting (bitmap must be NULL): tracking starts clean */
#define SIM_DIRTY_DISCARD	(1U << 1)

/* Retired table pages that make unmap synchronize and free by itself. */
#define SIM_PGT_RECLAIM_BATCH	64

/*
 * Memory barriers for the lock-free paths.  ThreadSanitizer does not model
 * standalone fences (gcc warns, -Wtsan); in TSan builds a seq_cst
 * read-modify-write on a dummy word stands in for them.  TSan does not
 * simulate store buffering either, so this keeps the meaning it checks.
 */
#if defined(__SANITIZE_THREAD__)
static inline void sim_barrier(void)
{
	static uint64_t sim_barrier_word;

	__atomic_fetch_add(&sim_barrier_word, 0, __ATOMIC_SEQ_CST);
}
#define sim_smp_mb()	sim_barrier()
#define sim_smp_rmb()	sim_barrier()
#define sim_smp_wmb()	sim_barrier()
#else
#define sim_smp_mb()	__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define sim_smp_rmb()	__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define sim_smp_wmb()	__atomic_thread_fence(__ATOMIC_RELEASE)
#endif

struct sim_pgtable;

/* Result of a walk: the leaf that translates an IOVA. */
struct sim_xlate {
	uint64_t iova;		/* IOVA of the leaf's first byte */
	uint64_t hva;		/* host virtual address of that byte */
	uint64_t size;		/* leaf size: 4 KiB, 2 MiB or 1 GiB */
	uint64_t pte;		/* leaf PTE value (flags in the low bits) */
	unsigned int level;	/* 1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB */
};

/* Debug/accounting snapshot (writer side only: it walks the whole tree). */
struct sim_pgt_stats {
	unsigned int levels;
	unsigned int addr_width;
	uint64_t tables;	/* live table pages, root included */
	uint64_t pending;	/* retired pages awaiting a grace period */
	uint64_t leaves_4k;
	uint64_t leaves_2m;
	uint64_t leaves_1g;
	uint64_t mapped_bytes;
	uint64_t splits;	/* large leaves split by unmap so far */
	uint64_t chunks;	/* 2 MiB chunks the table pages come from */
	/* tables whose count of present entries (kept in the entry that
	 * points to them, pgtable.c) is wrong: always 0 */
	uint64_t bad_counts;
};

/*
 * Grace periods (userspace RCU, "memb" flavour).  A read-side section costs
 * one thread-local store, one seq_cst fence and one release store; sections
 * nest.  sim_gp_synchronize() returns once every section that was running
 * when it was called has ended.  The reader registry is process wide, so a
 * synchronize also waits for readers of unrelated domains (bounded by one
 * DMA chunk each).  Threads register on first use and unregister at exit.
 */
void sim_gp_read_lock(void);
void sim_gp_read_unlock(void);
void sim_gp_synchronize(void);

/*
 * Create an empty page table.  addr_width: 30..57 bits of IOVA.
 * pgsize_mask: SIM_SZ_4K, optionally | SIM_SZ_2M, optionally | SIM_SZ_1G
 * (1 GiB requires 2 MiB, as on all VT-d units).  Returns 0, -EINVAL,
 * -ENOMEM.
 */
int sim_pgtable_create(unsigned int addr_width, uint64_t pgsize_mask,
		       unsigned int flags, struct sim_pgtable **out);

/* Free everything.  The caller guarantees no reader can start any more. */
void sim_pgtable_destroy(struct sim_pgtable *pgt);

/*
 * Map [iova, iova+length) to [hva, hva+length) with prot (SIM_PROT_*,
 * READ and/or WRITE required).  Uses the largest leaves that the alignment
 * of iova and hva and the page-size mask allow.  All or nothing: tables are
 * allocated before any live entry is touched.
 * Returns 0, -EINVAL (unaligned, zero length, bad prot, hva too large),
 * -ERANGE (beyond the address width), -EEXIST (a page is already mapped),
 * -ENOMEM.
 */
int sim_pgtable_map(struct sim_pgtable *pgt, uint64_t iova, uint64_t length,
		    uint64_t hva, uint64_t prot);

/*
 * Unmap every present page in [iova, iova+length).  Holes are skipped.
 * Large leaves that straddle a boundary are split in place (atomically).
 * Returns the number of bytes unmapped (>= 0), or -EINVAL, -ERANGE, or
 * -ENOMEM (a split table could not be allocated; nothing was changed).
 * The caller must still invalidate IOTLBs (sim_domain_unmap does).
 */
int64_t sim_pgtable_unmap(struct sim_pgtable *pgt, uint64_t iova,
			  uint64_t length);

/* Free retired table pages.  Call only after a sim_gp_synchronize() that
 * started after the unmap that retired them. */
void sim_pgtable_reclaim(struct sim_pgtable *pgt);

/*
 * Lock-free walk (reader side).  Returns 0 and fills *x, -ENOENT if not
 * mapped, -ERANGE beyond the address width.
 */
int sim_pgtable_walk(struct sim_pgtable *pgt, uint64_t iova,
		     struct sim_xlate *x);

/*
 * Start loading the entry that translates @iova into the cache, for
 * writing (an unmap of @iova is about to clear it), so that the miss
 * overlaps with whatever the caller does before the unmap.  Walks the
 * upper levels like sim_pgtable_walk() inside a read section of its own:
 * any thread, no lock.  Changes nothing; beyond the address width or
 * where nothing is mapped it does nothing (or loads an entry that is 0).
 */
void sim_pgtable_prefetch(struct sim_pgtable *pgt, uint64_t iova);

/*
 * Walk for a DMA access, like hardware: check permission, then, with
 * SIM_ACCESS_TRACK, set A (and D for a write) on the leaf with a CAS
 * (D is set before the caller moves any data).  Returns 0, -ENOENT,
 * -ERANGE, or -EACCES (x is filled, bits untouched).
 */
int sim_pgtable_translate(struct sim_pgtable *pgt, uint64_t iova,
			  unsigned int access, struct sim_xlate *x);

/*
 * Who hears of a leaf whose D bit a DMA write set (clean to dirty, in
 * sim_pgtable_translate(): @fn(@cookie, leaf's IOVA, leaf's size), from
 * the DMA's thread, inside its read section).  Marking (a state image's
 * pages) and splits (D copied to the pieces) are not heard.  NULL: no one.
 * Set before any DMA can use the table, or from the thread that runs it.
 */
typedef void sim_dirtied_fn(void *cookie, uint64_t iova, uint64_t size);
void sim_pgtable_set_dirtied(struct sim_pgtable *pgt, sim_dirtied_fn *fn,
			     void *cookie);

/*
 * Report dirty pages of [iova, iova+length) into bitmap (bit i = page at
 * iova + i * 4 KiB, 64-bit words, caller-zeroed or not: only set bits are
 * written) and clear D unless SIM_DIRTY_NO_CLEAR.  A dirty large leaf sets
 * the bits of all its pages inside the range; its D bit is cleared only if
 * the whole leaf lies inside the range (never under-report).  The caller
 * must flush IOTLBs afterwards so later writes set D again
 * (sim_domain_read_and_clear_dirty does).  Returns 0, -EINVAL, -ERANGE.
 */
int sim_pgtable_read_and_clear_dirty(struct sim_pgtable *pgt, uint64_t iova,
				     uint64_t length, uint64_t *bitmap,
				     unsigned int flags);

/*
 * Set D on every present leaf of [iova, iova+length) again (a state
 * image's dirty pages, after tracking started): a large leaf becomes
 * dirty as a whole, as a write into it would make it.  Holes are
 * skipped.  Returns 0, -EINVAL, -ERANGE.
 */
int sim_pgtable_mark_dirty(struct sim_pgtable *pgt, uint64_t iova,
			   uint64_t length);

/*
 * sim_pgtable_unmap() that ORs into @bitmap (bit i = page @bitmap_iova +
 * i * 4 KiB, @bitmap_iova <= @iova)
 * the D bit of every leaf it removes, read by the same atomic exchange
 * that removes it: a DMA write that got its translation before the
 * removal set D first and is reported; one after it finds nothing
 * mapped.  A dirty large leaf marks all its pages in the range (a split
 * copies D to every piece).  Returns as sim_pgtable_unmap(), -EINVAL
 * for a NULL bitmap or a bad @bitmap_iova.
 */
int64_t sim_pgtable_unmap_dirty(struct sim_pgtable *pgt, uint64_t iova,
				uint64_t length, uint64_t *bitmap,
				uint64_t bitmap_iova);

/* Debug/accounting (writer side). */
void sim_pgtable_stats(struct sim_pgtable *pgt, struct sim_pgt_stats *st);
unsigned int sim_pgtable_levels(const struct sim_pgtable *pgt);
unsigned int sim_pgtable_addr_width(const struct sim_pgtable *pgt);
uint64_t sim_pgtable_pgsize_mask(const struct sim_pgtable *pgt);
bool sim_pgtable_enforces_coherency(const struct sim_pgtable *pgt);

/*
 * Fault injection for tests: let the next n allocations succeed and fail
 * the ones after (n < 0 disables).
 */
void sim_pgtable_fail_alloc_after(struct sim_pgtable *pgt, int n);

#endif /* IOASID_SIM_PGTABLE_H */
