/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated IOTLB and domain invalidation.
 *
 * IOTLB: three direct-mapped arrays, one per page size (like the separate
 * large-page TLBs of real hardware).  Each entry is a seqlock: a reader
 * loads seq, the fields, and seq again, and uses the entry only if seq
 * was even and unchanged.  Writers (fill, invalidation) take the entry by
 * moving seq from even to odd with a CAS; an invalidation that finds
 * nothing to drop restores the old even value, so readers of unrelated
 * entries are not disturbed.
 *
 * Fill vs invalidation race: a DMA may walk the page table before an unmap
 * and insert the (now stale) result after the invalidation scanned its
 * IOTLB.  To stop that, an invalidation first bumps tlb->gen, then takes
 * every entry's lock in turn.  A fill reads gen before its walk and
 * re-checks it while holding the entry lock: if the invalidation took that
 * entry earlier, the lock hand-over makes the bumped gen visible and the
 * fill is dropped; if later, the invalidation sees and drops the entry.
 * An entry can only live in the slot its page number selects, so an
 * invalidation takes only the slots of the pages in its range (all of them
 * once the range covers the array): O(range), not O(IOTLB).
 */
#include "iotlb.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define SIM_IOTLB_VALID		(1ULL << 0)
#define INFO_DIRTY		(1ULL << 2)
#define INFO_FLAGS		(SIM_PTE_R | SIM_PTE_W | SIM_PTE_SNP)

static uint32_t next_domain_id = 1;

uint32_t sim_domain_new_id(void)
{
	return __atomic_fetch_add(&next_domain_id, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Entry seqlock                                                       */
/* ------------------------------------------------------------------ */

static bool entry_trylock(struct sim_iotlb_entry *e, uint64_t *seq)
{
	uint64_t s = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);

	if (s & 1)
		return false;
	if (!__atomic_compare_exchange_n(&e->seq, &s, s + 1, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return false;
	/* Field stores must not be visible before seq turns odd. */
	sim_smp_wmb();
	*seq = s;
	return true;
}

/* Writers only.  The holder may be a preempted DMA thread filling the
 * entry: yield rather than burn the CPU it needs. */
static void entry_lock(struct sim_iotlb_entry *e, uint64_t *seq)
{
	unsigned int spins = 0;

	while (!entry_trylock(e, seq)) {
		if (++spins < 128) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
		} else {
			sched_yield();
		}
	}
}

static void entry_unlock(struct sim_iotlb_entry *e, uint64_t seq,
			 bool changed)
{
	__atomic_store_n(&e->seq, changed ? seq + 2 : seq, __ATOMIC_RELEASE);
}

static struct sim_iotlb_entry *entry_for(struct sim_iotlb *tlb,
					 uint64_t iova, uint64_t size)
{
	if (size == SIM_SZ_4K)
		return &tlb->e4k[(iova >> 12) % SIM_IOTLB_ENTRIES_4K];
	if (size == SIM_SZ_2M)
		return &tlb->e2m[(iova >> 21) % SIM_IOTLB_ENTRIES_2M];
	return &tlb->e1g[(iova >> 30) % SIM_IOTLB_ENTRIES_1G];
}

/* ------------------------------------------------------------------ */
/* Lookup / fill                                                       */
/* ------------------------------------------------------------------ */

void sim_iotlb_init(struct sim_iotlb *tlb)
{
	memset(tlb, 0, sizeof(*tlb));
}

static bool probe(struct sim_iotlb *tlb, uint32_t domid, uint64_t iova,
		  uint64_t size, struct sim_iotlb_hit *hit)
{
	struct sim_iotlb_entry *e = entry_for(tlb, iova, size);
	uint64_t want = (iova & ~(size - 1)) | SIM_IOTLB_VALID;
	uint64_t s1, s2, hva, info;

	s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
	if (__atomic_load_n(&e->tag, __ATOMIC_RELAXED) != want || (s1 & 1))
		return false;
	hva = __atomic_load_n(&e->hva, __ATOMIC_RELAXED);
	info = __atomic_load_n(&e->info, __ATOMIC_RELAXED);
	sim_smp_rmb();
	s2 = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
	if (s1 != s2 || (uint32_t)(info >> 32) != domid)
		return false;
	hit->iova = want & ~SIM_IOTLB_VALID;
	hit->hva = hva;
	hit->size = size;
	hit->flags = info & INFO_FLAGS;
	hit->dirty = info & INFO_DIRTY;
	return true;
}

bool sim_iotlb_lookup(struct sim_iotlb *tlb, uint32_t domid, uint64_t iova,
		      struct sim_iotlb_hit *hit)
{
	return probe(tlb, domid, iova, SIM_SZ_2M, hit) ||
	       probe(tlb, domid, iova, SIM_SZ_4K, hit) ||
	       probe(tlb, domid, iova, SIM_SZ_1G, hit);
}

uint64_t sim_iotlb_gen(struct sim_iotlb *tlb)
{
	return __atomic_load_n(&tlb->gen, __ATOMIC_SEQ_CST);
}

void sim_iotlb_fill(struct sim_iotlb *tlb, uint64_t gen, uint32_t domid,
		    const struct sim_xlate *x, bool dirty)
{
	struct sim_iotlb_entry *e = entry_for(tlb, x->iova, x->size);
	uint64_t info = ((uint64_t)domid << 32) | (x->pte & INFO_FLAGS);
	uint64_t seq;

	if (!entry_trylock(e, &seq))
		return;		/* busy: it is only a cache */
	if (__atomic_load_n(&tlb->gen, __ATOMIC_SEQ_CST) != gen) {
		entry_unlock(e, seq, false);
		return;
	}
	if (dirty)
		info |= INFO_DIRTY;
	__atomic_store_n(&e->tag, x->iova | SIM_IOTLB_VALID, __ATOMIC_RELAXED);
	__atomic_store_n(&e->hva, x->hva, __ATOMIC_RELAXED);
	__atomic_store_n(&e->info, info, __ATOMIC_RELAXED);
	entry_unlock(e, seq, true);
}

void sim_iotlb_account(struct sim_iotlb *tlb, uint64_t hits, uint64_t misses)
{
	if (hits)
		__atomic_fetch_add(&tlb->hits, hits, __ATOMIC_RELAXED);
	if (misses)
		__atomic_fetch_add(&tlb->misses, misses, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Invalidation                                                        */
/* ------------------------------------------------------------------ */

/* Take entry e, drop it if it overlaps [start, last], release it. */
static void inval_entry(struct sim_iotlb_entry *e, uint64_t size,
			uint64_t start, uint64_t last)
{
	uint64_t seq, tag, base;
	bool hit;

	entry_lock(e, &seq);
	tag = __atomic_load_n(&e->tag, __ATOMIC_RELAXED);
	base = tag & ~SIM_IOTLB_VALID;
	hit = (tag & SIM_IOTLB_VALID) && base <= last &&
	      base + (size - 1) >= start;
	if (hit)
		__atomic_store_n(&e->tag, 0, __ATOMIC_RELAXED);
	entry_unlock(e, seq, hit);
}

/*
 * The arrays are direct-mapped: a page of this size can only sit in slot
 * (page number % n).  So an entry overlapping [start, last] is in one of
 * the slots of the pages the range covers, and only those need taking
 * (the fill/invalidation hand-over argument above is per slot).  A range
 * of n pages or more covers every slot: scan the array once.
 */
static void inval_array(struct sim_iotlb_entry *arr, unsigned int n,
			unsigned int shift, uint64_t start, uint64_t last)
{
	uint64_t first = start >> shift, pages = (last >> shift) - first;
	uint64_t size = 1ULL << shift;
	unsigned int i;

	if (pages >= n - 1) {
		for (i = 0; i < n; i++)
			inval_entry(&arr[i], size, start, last);
		return;
	}
	for (uint64_t p = 0; p <= pages; p++)
		inval_entry(&arr[(first + p) % n], size, start, last);
}

void sim_iotlb_invalidate_range(struct sim_iotlb *tlb, uint64_t start,
				uint64_t last)
{
	/* Bump first: fills that raced with the walk are refused. */
	__atomic_add_fetch(&tlb->gen, 1, __ATOMIC_SEQ_CST);
	inval_array(tlb->e4k, SIM_IOTLB_ENTRIES_4K, 12, start, last);
	inval_array(tlb->e2m, SIM_IOTLB_ENTRIES_2M, 21, start, last);
	inval_array(tlb->e1g, SIM_IOTLB_ENTRIES_1G, 30, start, last);
	__atomic_fetch_add(&tlb->invalidations, 1, __ATOMIC_RELAXED);
}

void sim_iotlb_invalidate_all(struct sim_iotlb *tlb)
{
	sim_iotlb_invalidate_range(tlb, 0, UINT64_MAX);
}

/* ------------------------------------------------------------------ */
/* Domain                                                              */
/* ------------------------------------------------------------------ */

int sim_domain_create(unsigned int addr_width, uint64_t pgsize_mask,
		      unsigned int flags, struct sim_domain **out)
{
	struct sim_domain *dom;
	int ret;

	if (flags & ~SIM_DOMAIN_ENFORCE_COHERENCY)
		return -EINVAL;
	dom = calloc(1, sizeof(*dom));
	if (!dom)
		return -ENOMEM;
	ret = sim_pgtable_create(addr_width, pgsize_mask, flags, &dom->pgt);
	if (ret) {
		free(dom);
		return ret;
	}
	pthread_mutex_init(&dom->lock, NULL);
	dom->id = sim_domain_new_id();
	dom->enforce_coherency = flags & SIM_DOMAIN_ENFORCE_COHERENCY;
	*out = dom;
	return 0;
}

int sim_domain_destroy(struct sim_domain *dom)
{
	if (!dom)
		return 0;
	pthread_mutex_lock(&dom->lock);
	if (dom->nr_attached) {
		pthread_mutex_unlock(&dom->lock);
		return -EBUSY;
	}
	if (dom->children) {
		pthread_mutex_unlock(&dom->lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&dom->lock);
	if (dom->parent) {
		struct sim_domain **pp;

		pthread_mutex_lock(&dom->parent->lock);
		for (pp = &dom->parent->children; *pp; pp = &(*pp)->next_child)
			if (*pp == dom) {
				*pp = dom->next_child;
				break;
			}
		pthread_mutex_unlock(&dom->parent->lock);
	}
	sim_pgtable_destroy(dom->pgt);
	pthread_mutex_destroy(&dom->lock);
	free(dom);
	return 0;
}

int sim_domain_map(struct sim_domain *dom, uint64_t iova, uint64_t length,
		   uint64_t hva, uint64_t prot)
{
	int ret;

	pthread_mutex_lock(&dom->lock);
	ret = sim_pgtable_map(dom->pgt, iova, length, hva, prot);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

/*
 * The nested domains over @dom cache combined translations tagged by
 * their own IOVAs, which say nothing of the stage-2 address they went
 * through: a change of stage 2 drops all of their entries (as VT-d's
 * second-stage invalidation does for nested entries).  @dom's mutex held;
 * lock order parent -> nested.
 */
static void flush_children(struct sim_domain *dom)
{
	for (struct sim_domain *c = dom->children; c; c = c->next_child) {
		pthread_mutex_lock(&c->lock);
		for (struct sim_iotlb_link *l = c->iotlbs; l; l = l->next)
			sim_iotlb_invalidate_all(l->tlb);
		pthread_mutex_unlock(&c->lock);
	}
}

/* Steps 2-4 of the protocol in iotlb.h; domain mutex held. */
static void flush_and_wait(struct sim_domain *dom, uint64_t iova,
			   uint64_t length)
{
	struct sim_iotlb_link *l;

	for (l = dom->iotlbs; l; l = l->next)
		sim_iotlb_invalidate_range(l->tlb, iova, iova + length - 1);
	flush_children(dom);
	sim_gp_synchronize();
	sim_pgtable_reclaim(dom->pgt);
}

int64_t sim_domain_unmap(struct sim_domain *dom, uint64_t iova,
			 uint64_t length)
{
	int64_t ret;

	pthread_mutex_lock(&dom->lock);
	ret = sim_pgtable_unmap(dom->pgt, iova, length);
	if (ret > 0)
		flush_and_wait(dom, iova, length);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

/* Past this many ranges, dropping whole IOTLBs is cheaper than ranges. */
#define BATCH_FLUSH_ALL 8

int64_t sim_domain_unmap_batch(struct sim_domain *dom,
			       const struct sim_range *ranges, size_t nr)
{
	struct sim_iotlb_link *l;
	int64_t total = 0, ret = 0;
	size_t i;

	pthread_mutex_lock(&dom->lock);
	for (i = 0; i < nr; i++) {
		ret = sim_pgtable_unmap(dom->pgt, ranges[i].iova,
					ranges[i].length);
		if (ret < 0)
			break;
		total += ret;
	}
	/* even after a failure: what was unmapped must be unreachable */
	if (total)
		flush_children(dom);
	for (l = dom->iotlbs; l && total; l = l->next) {
		if (i > BATCH_FLUSH_ALL) {
			sim_iotlb_invalidate_all(l->tlb);
			continue;
		}
		for (size_t j = 0; j < i; j++)
			sim_iotlb_invalidate_range(l->tlb, ranges[j].iova,
						   ranges[j].iova +
						   ranges[j].length - 1);
	}
	if (total) {
		sim_gp_synchronize();
		sim_pgtable_reclaim(dom->pgt);
	}
	pthread_mutex_unlock(&dom->lock);
	return ret < 0 ? ret : total;
}

static void set_dirty_state(struct sim_domain *dom, uint32_t state)
{
	__atomic_store_n(&dom->dirty_state, state, __ATOMIC_SEQ_CST);
}

/* Steps 1-3 of sim_domain_read_and_clear_dirty(); domain mutex held. */
static int clear_dirty_locked(struct sim_domain *dom, uint64_t iova,
			      uint64_t length, uint64_t *bitmap,
			      unsigned int flags)
{
	uint32_t state = dom->dirty_state;
	int ret;

	if (state & SIM_DOMAIN_TRACKING) {
		set_dirty_state(dom, state | SIM_DOMAIN_CLEARING);
		sim_gp_synchronize();
	}
	ret = sim_pgtable_read_and_clear_dirty(dom->pgt, iova, length, bitmap,
					       flags);
	for (struct sim_iotlb_link *l = dom->iotlbs; l; l = l->next)
		sim_iotlb_invalidate_range(l->tlb, iova, iova + length - 1);
	set_dirty_state(dom, state);
	sim_gp_synchronize();
	return ret;
}

int sim_domain_set_dirty_tracking(struct sim_domain *dom, bool on)
{
	uint64_t top = 1ULL << sim_pgtable_addr_width(dom->pgt);

	pthread_mutex_lock(&dom->lock);
	if (!on) {
		/* D bits left behind are cleared by the next start */
		set_dirty_state(dom, 0);
	} else if (!(dom->dirty_state & SIM_DOMAIN_TRACKING)) {
		set_dirty_state(dom, SIM_DOMAIN_TRACKING);
		clear_dirty_locked(dom, 0, top, NULL, SIM_DIRTY_DISCARD);
	}
	pthread_mutex_unlock(&dom->lock);
	return 0;
}

int sim_domain_read_and_clear_dirty(struct sim_domain *dom, uint64_t iova,
				    uint64_t length, uint64_t *bitmap,
				    unsigned int flags)
{
	int ret;

	pthread_mutex_lock(&dom->lock);
	if (flags & SIM_DIRTY_NO_CLEAR)
		ret = sim_pgtable_read_and_clear_dirty(dom->pgt, iova, length,
						       bitmap, flags);
	else
		ret = clear_dirty_locked(dom, iova, length, bitmap, flags);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

int sim_domain_mark_dirty(struct sim_domain *dom, uint64_t iova,
			  uint64_t length)
{
	int ret;

	pthread_mutex_lock(&dom->lock);
	ret = sim_pgtable_mark_dirty(dom->pgt, iova, length);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

int64_t sim_domain_unmap_dirty(struct sim_domain *dom, uint64_t iova,
			       uint64_t length, uint64_t *bitmap,
			       uint64_t bitmap_iova)
{
	int64_t ret;

	pthread_mutex_lock(&dom->lock);
	ret = sim_pgtable_unmap_dirty(dom->pgt, iova, length, bitmap,
				      bitmap_iova);
	if (ret > 0)
		flush_and_wait(dom, iova, length);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

void sim_domain_prefetch(struct sim_domain *dom, uint64_t iova)
{
	if (dom->pgt)
		sim_pgtable_prefetch(dom->pgt, iova);
}

int sim_domain_walk(struct sim_domain *dom, uint64_t iova,
		    struct sim_xlate *x)
{
	int ret;

	pthread_mutex_lock(&dom->lock);
	ret = sim_pgtable_walk(dom->pgt, iova, x);
	pthread_mutex_unlock(&dom->lock);
	return ret;
}

int sim_domain_attach_iotlb(struct sim_domain *dom, struct sim_iotlb *tlb)
{
	struct sim_iotlb_link *l = &tlb->links[0];

	if (l->domain)
		l = &tlb->links[1];
	if (l->domain)
		return -EBUSY;
	pthread_mutex_lock(&dom->lock);
	l->domain = dom;
	l->tlb = tlb;
	l->next = dom->iotlbs;
	dom->iotlbs = l;
	dom->nr_attached++;
	pthread_mutex_unlock(&dom->lock);
	return 0;
}

void sim_domain_detach_iotlb(struct sim_domain *dom, struct sim_iotlb *tlb)
{
	struct sim_iotlb_link **pp;

	pthread_mutex_lock(&dom->lock);
	for (pp = &dom->iotlbs; *pp; pp = &(*pp)->next) {
		if ((*pp)->tlb == tlb) {
			(*pp)->domain = NULL;
			*pp = (*pp)->next;
			dom->nr_attached--;
			break;
		}
	}
	sim_iotlb_invalidate_all(tlb);
	pthread_mutex_unlock(&dom->lock);
}
