/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated IOMMU page tables (VT-d second-stage format) and grace periods.
 *
 * Concurrency design
 * ------------------
 * One writer (serialized by the caller) and any number of lock-free
 * walkers.  Every PTE is a 64-bit word accessed with atomics:
 *
 *  - Writers publish a new table with a release store of the table
 *    pointer; walkers read entries with acquire loads, so a walker that
 *    sees a pointer sees the table's contents.
 *  - Splitting a large leaf builds the complete replacement table (512
 *    smaller leaves carrying the same addresses, permissions and A/D bits)
 *    off-line, then installs it with ONE compare-and-swap on the parent
 *    slot.  A walker reads that slot once, so it gets either the old leaf
 *    or the new table, both of which translate every page identically:
 *    there is no window where an unchanged page is absent.  Only after the
 *    install are the leaves that really go away cleared.  The CAS fails if
 *    DMA set A/D on the old leaf in the meantime; the table is then rebuilt
 *    from the new value, so no dirty bit is lost.
 *  - Walkers that already hold a pointer to a table that the writer
 *    unlinks keep reading valid memory: unlinked tables are retired and
 *    freed only after a grace period (sim_gp_synchronize()).  Retirement
 *    never writes into the retired page (a walker may still be reading
 *    it); the retire list is a side array whose capacity is reserved when
 *    tables are allocated, so unmap never needs memory except for split
 *    tables, which are allocated before anything is changed.
 *  - Memory bound: empty tables are unlinked by unmap, and retired pages
 *    are freed by sim_pgtable_reclaim() (sim_domain calls it after the
 *    grace period it needs for IOTLB invalidation anyway) or by unmap
 *    itself once SIM_PGT_RECLAIM_BATCH pages are pending.
 *  - Whether a table is empty: the entry that points to a table holds,
 *    in bits 52..61 (ignored by the VT-d walk of a non-leaf second-stage
 *    entry, and masked off by ours), how many entries of that table are
 *    present.  Only the writer reads or changes it, with the same
 *    release stores that publish the entry, so walkers see the same
 *    pointer and permissions as before.  An unmap learns that a table
 *    has emptied from the entry it just walked through, in a cache line
 *    it has already read, instead of reading the table's other entries
 *    (which, for pages unmapped in random order, are cache misses).
 *
 * Grace periods: a process-wide registry of per-thread reader records,
 * each holding 0 (quiescent) or the global counter value read at entry.
 * Reader entry = store + seq_cst fence; exit = release store of 0.
 * synchronize = fence, bump the counter, wait until every record is 0 or
 * newer than the bump.  The fence pair gives the classic store-buffering
 * guarantee: either the writer sees the reader inside its section (and
 * waits), or the reader's section sees everything the writer did before
 * synchronize (the new, unmapped state).
 */
#include "pgtable.h"
#include "pt_arena.h"

#include "util/bitmap.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint64_t pte_t;

struct dirty_ctx {
	uint64_t iova;
	uint64_t end;
	uint64_t *bitmap;
	unsigned int flags;
};

static void dirty_mark(const struct dirty_ctx *c, uint64_t base,
		       uint64_t size);

#define PTES_PER_TABLE		512
#define TABLE_BYTES		(PTES_PER_TABLE * sizeof(pte_t))
#define LEVEL_SHIFT(l)		(SIM_PAGE_SHIFT + 9 * ((l) - 1))
#define LEVEL_SIZE(l)		(1ULL << LEVEL_SHIFT(l))
#define MAX_LEAF_LEVEL		3
#define PTE_PERM_BITS		(SIM_PTE_R | SIM_PTE_W)
#define PTE_LEAF_FLAGS		(SIM_PTE_R | SIM_PTE_W | SIM_PTE_SNP | \
				 SIM_PTE_A | SIM_PTE_D)
/* In an entry pointing to a table: that table's present entries, 0..512. */
#define PTE_COUNT_SHIFT		52
#define PTE_COUNT_MASK		(0x3ffULL << PTE_COUNT_SHIFT)

struct sim_pgtable {
	pte_t *root;
	unsigned int levels;
	unsigned int addr_width;
	uint64_t pgsize_mask;
	uint64_t leaf_extra;	/* SNP when the domain enforces coherency */
	uint64_t nr_tables;	/* live tables, root included */
	pte_t **retired;	/* unlinked, freed after a grace period */
	size_t nr_retired;
	size_t retired_cap;	/* >= live non-root tables + nr_retired */
	uint64_t splits;
	int fail_after;		/* fault injection, < 0 = off */
	/* freed tables kept for reuse (never visible to walkers) */
	pte_t *spare;
	unsigned int nr_spare;
	struct pt_arena arena;	/* where every table's page comes from */
	/* sim_pgtable_unmap_dirty(): where the removed leaves' D bits go */
	const struct dirty_ctx *collect;
	/* sim_pgtable_set_dirtied(): told of each leaf a write made dirty */
	sim_dirtied_fn *dirtied;
	void *dirtied_cookie;
};

/* How many freed tables a page table keeps instead of freeing them. */
#define SPARE_TABLES 64

/* ------------------------------------------------------------------ */
/* Grace periods                                                       */
/* ------------------------------------------------------------------ */

struct gp_reader {
	uint64_t ctr;		/* 0 = quiescent, else gp_ctr at entry */
	unsigned int nest;
	struct gp_reader *next;
	struct gp_reader **pprev;
} __attribute__((aligned(64)));

static uint64_t gp_ctr = 1;
static uint64_t gp_anon_readers;	/* readers that could not register */
static struct gp_reader *gp_readers;
static pthread_mutex_t gp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t gp_once = PTHREAD_ONCE_INIT;
static pthread_key_t gp_key;
static bool gp_key_ok;

static __thread struct gp_reader *gp_self
	__attribute__((tls_model("initial-exec")));
static __thread unsigned int gp_anon_nest
	__attribute__((tls_model("initial-exec")));

static void gp_thread_exit(void *arg)
{
	struct gp_reader *r = arg;

	/* A later destructor doing DMA re-registers instead of using r. */
	gp_self = NULL;
	pthread_mutex_lock(&gp_lock);
	*r->pprev = r->next;
	if (r->next)
		r->next->pprev = r->pprev;
	pthread_mutex_unlock(&gp_lock);
	free(r);
}

static void gp_init_key(void)
{
	gp_key_ok = pthread_key_create(&gp_key, gp_thread_exit) == 0;
}

/* Register the calling thread; NULL if out of memory (caller falls back). */
static struct gp_reader *gp_register(void)
{
	struct gp_reader *r;

	pthread_once(&gp_once, gp_init_key);
	if (!gp_key_ok)
		return NULL;
	r = aligned_alloc(64, sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	if (pthread_setspecific(gp_key, r)) {
		free(r);
		return NULL;
	}
	pthread_mutex_lock(&gp_lock);
	r->next = gp_readers;
	r->pprev = &gp_readers;
	if (gp_readers)
		gp_readers->pprev = &r->next;
	gp_readers = r;
	pthread_mutex_unlock(&gp_lock);
	gp_self = r;
	return r;
}

void sim_gp_read_lock(void)
{
	struct gp_reader *r = gp_self;

	if (__builtin_expect(!r && !gp_anon_nest, 0))
		r = gp_register();
	if (__builtin_expect(!r || gp_anon_nest, 0)) {
		/* Unregistered fallback: a shared counter, full barrier. */
		if (gp_anon_nest++ == 0)
			__atomic_fetch_add(&gp_anon_readers, 1, __ATOMIC_SEQ_CST);
		return;
	}
	if (r->nest++)
		return;
	/* Release: orders our previous section before this store, so a
	 * writer that reads the new value also "sees" that section end. */
	__atomic_store_n(&r->ctr, __atomic_load_n(&gp_ctr, __ATOMIC_RELAXED),
			 __ATOMIC_RELEASE);
	sim_smp_mb();
}

void sim_gp_read_unlock(void)
{
	struct gp_reader *r = gp_self;

	if (__builtin_expect(gp_anon_nest != 0, 0)) {
		if (--gp_anon_nest == 0)
			__atomic_fetch_sub(&gp_anon_readers, 1, __ATOMIC_RELEASE);
		return;
	}
	if (--r->nest == 0)
		__atomic_store_n(&r->ctr, 0, __ATOMIC_RELEASE);
}

static void gp_backoff(unsigned int spins)
{
	struct timespec ts = { 0, 20000 };

	if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} else if (spins < 1024) {
		sched_yield();
	} else {
		nanosleep(&ts, NULL);
	}
}

static void gp_wait_reader(struct gp_reader *r, uint64_t target)
{
	unsigned int spins = 0;
	uint64_t c;

	for (;;) {
		c = __atomic_load_n(&r->ctr, __ATOMIC_ACQUIRE);
		if (c == 0 || c >= target)
			return;
		gp_backoff(spins++);
	}
}

void sim_gp_synchronize(void)
{
	unsigned int spins = 0;
	struct gp_reader *r;
	uint64_t target;

	sim_smp_mb();
	pthread_mutex_lock(&gp_lock);
	target = __atomic_add_fetch(&gp_ctr, 1, __ATOMIC_SEQ_CST);
	for (r = gp_readers; r; r = r->next)
		gp_wait_reader(r, target);
	while (__atomic_load_n(&gp_anon_readers, __ATOMIC_ACQUIRE))
		gp_backoff(spins++);
	pthread_mutex_unlock(&gp_lock);
	sim_smp_mb();
}

/* ------------------------------------------------------------------ */
/* PTE helpers                                                         */
/* ------------------------------------------------------------------ */

static inline pte_t pte_read(pte_t *slot)
{
	return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

static inline void pte_publish(pte_t *slot, pte_t v)
{
	__atomic_store_n(slot, v, __ATOMIC_RELEASE);
}

static inline bool pte_present(pte_t e)
{
	return (e & PTE_PERM_BITS) != 0;
}

static inline bool pte_is_leaf(pte_t e, unsigned int level)
{
	return level == 1 || (e & SIM_PTE_PS);
}

static inline pte_t *pte_table(pte_t e)
{
	return (pte_t *)(uintptr_t)(e & SIM_PTE_ADDR_MASK);
}

static inline pte_t table_pte(pte_t *table)
{
	return (pte_t)(uintptr_t)table | SIM_PTE_R | SIM_PTE_W;
}

/* Present entries of the table that table entry e points to. */
static inline unsigned int pte_count(pte_t e)
{
	return (unsigned int)((e & PTE_COUNT_MASK) >> PTE_COUNT_SHIFT);
}

/*
 * Writer side: @delta entries of the table that *@pslot points to became
 * present (or, negative, not present).  @pslot NULL: the root, which has
 * no entry pointing to it and is never unlinked.
 */
static inline void count_add(pte_t *pslot, int delta)
{
	pte_t e;

	if (!pslot || !delta)
		return;
	e = pte_read(pslot);
	pte_publish(pslot, (e & ~PTE_COUNT_MASK) |
			   ((pte_t)(pte_count(e) + delta) << PTE_COUNT_SHIFT));
}

static inline unsigned int pte_index(uint64_t iova, unsigned int level)
{
	return (iova >> LEVEL_SHIFT(level)) & (PTES_PER_TABLE - 1);
}

/* End of the level-sized block containing addr, clipped to end. */
static inline uint64_t block_end(uint64_t addr, unsigned int level,
				 uint64_t end)
{
	uint64_t next = (addr | (LEVEL_SIZE(level) - 1)) + 1;

	return next < end ? next : end;
}

static inline bool covers_block(uint64_t addr, uint64_t next,
				unsigned int level)
{
	return !(addr & (LEVEL_SIZE(level) - 1)) &&
	       next - addr == LEVEL_SIZE(level);
}

/* ------------------------------------------------------------------ */
/* Table allocation, retirement and reclaim                            */
/* ------------------------------------------------------------------ */

static bool alloc_allowed(struct sim_pgtable *pgt)
{
	if (pgt->fail_after == 0)
		return false;
	if (pgt->fail_after > 0)
		pgt->fail_after--;
	return true;
}

/*
 * Give a table back: keep a few for the next split (so a conversion storm
 * does not churn the allocator and fault pages in), free the rest.
 */
static void table_free(struct sim_pgtable *pgt, pte_t *t)
{
	if (pgt->nr_spare >= SPARE_TABLES) {
		pt_arena_free(&pgt->arena, t);
		return;
	}
	t[0] = (pte_t)(uintptr_t)pgt->spare;
	pgt->spare = t;
	pgt->nr_spare++;
}

static void spare_release(struct sim_pgtable *pgt)
{
	pte_t *t;

	while ((t = pgt->spare)) {
		pgt->spare = (pte_t *)(uintptr_t)t[0];
		pt_arena_free(&pgt->arena, t);
	}
	pgt->nr_spare = 0;
}

static pte_t *table_alloc(struct sim_pgtable *pgt)
{
	pte_t *t;

	if (!alloc_allowed(pgt))
		return NULL;
	if (pgt->spare) {
		t = pgt->spare;
		pgt->spare = (pte_t *)(uintptr_t)t[0];
		pgt->nr_spare--;
		memset(t, 0, TABLE_BYTES);
		return t;
	}
	t = pt_arena_alloc(&pgt->arena);
	if (!t)
		return NULL;
	if ((uintptr_t)t & ~SIM_PTE_ADDR_MASK) {
		pt_arena_free(&pgt->arena, t);
		return NULL;
	}
	memset(t, 0, TABLE_BYTES);
	return t;
}

/* Make room in the retire array for every table that could be retired. */
static int retire_reserve(struct sim_pgtable *pgt, size_t extra)
{
	size_t need = pgt->nr_tables - 1 + pgt->nr_retired + extra;
	size_t cap = pgt->retired_cap ? pgt->retired_cap : 16;
	pte_t **p;

	if (need <= pgt->retired_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (!alloc_allowed(pgt))
		return -ENOMEM;
	p = realloc(pgt->retired, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	pgt->retired = p;
	pgt->retired_cap = cap;
	return 0;
}

static void retire_table(struct sim_pgtable *pgt, pte_t *table)
{
	/* Capacity is guaranteed by retire_reserve() at allocation time. */
	pgt->retired[pgt->nr_retired++] = table;
	pgt->nr_tables--;
}

void sim_pgtable_reclaim(struct sim_pgtable *pgt)
{
	size_t i;

	for (i = 0; i < pgt->nr_retired; i++)
		table_free(pgt, pgt->retired[i]);
	pgt->nr_retired = 0;
}

/*
 * Tables for one operation, allocated before any live entry changes.
 * Pool pages are not visible to walkers, so they are linked through
 * their first word.
 */
struct pt_pool {
	pte_t *head;
};

static void pool_release(struct sim_pgtable *pgt, struct pt_pool *pool)
{
	pte_t *t;

	while ((t = pool->head)) {
		pool->head = (pte_t *)(uintptr_t)t[0];
		table_free(pgt, t);
	}
}

static int pool_fill(struct sim_pgtable *pgt, struct pt_pool *pool,
		     unsigned long n)
{
	unsigned long i;
	pte_t *t;

	pool->head = NULL;
	if (retire_reserve(pgt, n))
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		t = table_alloc(pgt);
		if (!t) {
			pool_release(pgt, pool);
			return -ENOMEM;
		}
		t[0] = (pte_t)(uintptr_t)pool->head;
		pool->head = t;
	}
	return 0;
}

static pte_t *pool_take(struct sim_pgtable *pgt, struct pt_pool *pool)
{
	pte_t *t = pool->head;

	if (!t)
		return NULL;
	pool->head = (pte_t *)(uintptr_t)t[0];
	t[0] = 0;
	pgt->nr_tables++;
	return t;
}

/* ------------------------------------------------------------------ */
/* Create / destroy                                                    */
/* ------------------------------------------------------------------ */

static int levels_for_width(unsigned int aw)
{
	if (aw < 30 || aw > 57)
		return -EINVAL;
	if (aw <= 39)
		return 3;
	return aw <= 48 ? 4 : 5;
}

static bool pgsize_mask_valid(uint64_t mask)
{
	if (mask & ~(SIM_SZ_4K | SIM_SZ_2M | SIM_SZ_1G))
		return false;
	if (!(mask & SIM_SZ_4K))
		return false;
	/* Splits go one level down: 1 GiB leaves need 2 MiB leaves. */
	return !((mask & SIM_SZ_1G) && !(mask & SIM_SZ_2M));
}

int sim_pgtable_create(unsigned int addr_width, uint64_t pgsize_mask,
		       unsigned int flags, struct sim_pgtable **out)
{
	int levels = levels_for_width(addr_width);
	struct sim_pgtable *pgt;

	if (levels < 0 || !pgsize_mask_valid(pgsize_mask) ||
	    (flags & ~SIM_PGT_ENFORCE_COHERENCY))
		return -EINVAL;
	pgt = calloc(1, sizeof(*pgt));
	if (!pgt)
		return -ENOMEM;
	pgt->fail_after = -1;
	pgt->root = table_alloc(pgt);
	if (!pgt->root) {
		pt_arena_destroy(&pgt->arena);
		free(pgt);
		return -ENOMEM;
	}
	pgt->levels = levels;
	pgt->addr_width = addr_width;
	pgt->pgsize_mask = pgsize_mask;
	pgt->nr_tables = 1;
	if (flags & SIM_PGT_ENFORCE_COHERENCY)
		pgt->leaf_extra = SIM_PTE_SNP;
	*out = pgt;
	return 0;
}

static void free_subtree(struct sim_pgtable *pgt, pte_t *table,
			 unsigned int level)
{
	unsigned int i;
	pte_t e;

	for (i = 0; level > 1 && i < PTES_PER_TABLE; i++) {
		e = table[i];
		if (pte_present(e) && !pte_is_leaf(e, level))
			free_subtree(pgt, pte_table(e), level - 1);
	}
	pt_arena_free(&pgt->arena, table);
}

void sim_pgtable_destroy(struct sim_pgtable *pgt)
{
	if (!pgt)
		return;
	/* Let any straggling walker leave before its tables go away. */
	sim_gp_synchronize();
	sim_pgtable_reclaim(pgt);
	free_subtree(pgt, pgt->root, pgt->levels);
	spare_release(pgt);
	pt_arena_destroy(&pgt->arena);
	free(pgt->retired);
	free(pgt);
}

/* ------------------------------------------------------------------ */
/* Argument checks                                                     */
/* ------------------------------------------------------------------ */

static int check_range(const struct sim_pgtable *pgt, uint64_t iova,
		       uint64_t length)
{
	uint64_t limit = 1ULL << pgt->addr_width;

	if (!length || (iova | length) & (SIM_PAGE_SIZE - 1))
		return -EINVAL;
	if (iova >= limit || length > limit - iova)
		return -ERANGE;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Map                                                                 */
/* ------------------------------------------------------------------ */

struct map_ctx {
	struct sim_pgtable *pgt;
	uint64_t iova;		/* start of the request */
	uint64_t end;
	uint64_t hva;		/* hva of iova */
	uint64_t leaf_bits;
	struct pt_pool *pool;	/* NULL: dry run (check and count) */
	unsigned long need;	/* tables the live pass will allocate */
};

/* Can [addr, addr + level size) be one leaf of this level? */
static bool can_use_leaf(const struct map_ctx *c, unsigned int level,
			 uint64_t addr)
{
	uint64_t sz = LEVEL_SIZE(level);
	uint64_t hva = c->hva + (addr - c->iova);

	if (level > MAX_LEAF_LEVEL || !(c->pgt->pgsize_mask & sz))
		return false;
	return !((addr | hva) & (sz - 1)) && c->end - addr >= sz;
}

static pte_t leaf_pte(const struct map_ctx *c, unsigned int level,
		      uint64_t addr)
{
	pte_t e = (c->hva + (addr - c->iova)) | c->leaf_bits;

	return level > 1 ? e | SIM_PTE_PS : e;
}

/*
 * One routine for both passes so the dry run counts exactly the tables the
 * live pass takes.  In the dry run `table` is NULL for tables that do not
 * exist yet.  @pslot: the entry pointing to @table (NULL for the root),
 * whose count the entries made present here are added to.
 */
static int map_level(struct map_ctx *c, pte_t *table, pte_t *pslot,
		     unsigned int level, uint64_t addr, uint64_t end)
{
	uint64_t next;
	pte_t *slot, *child;
	pte_t e;
	int ret = 0, added = 0;

	for (; addr < end; addr = next) {
		next = block_end(addr, level, end);
		slot = table ? &table[pte_index(addr, level)] : NULL;
		e = slot ? pte_read(slot) : 0;
		if (pte_present(e) && pte_is_leaf(e, level)) {
			ret = -EEXIST;
			break;
		}
		if (!pte_present(e) && can_use_leaf(c, level, addr)) {
			if (c->pool) {
				pte_publish(slot, leaf_pte(c, level, addr));
				added++;
			}
			continue;
		}
		child = pte_present(e) ? pte_table(e) : NULL;
		if (!child && !c->pool) {
			c->need++;
		} else if (!child) {
			child = pool_take(c->pgt, c->pool);
			if (!child) {
				ret = -ENOMEM;	/* dry run miscounted */
				break;
			}
			pte_publish(slot, table_pte(child));
			added++;
		}
		ret = map_level(c, child, slot, level - 1, addr, next);
		if (ret)
			break;
	}
	count_add(pslot, added);
	return ret;
}

int sim_pgtable_map(struct sim_pgtable *pgt, uint64_t iova, uint64_t length,
		    uint64_t hva, uint64_t prot)
{
	struct map_ctx c = { .pgt = pgt, .iova = iova, .hva = hva };
	struct pt_pool pool;
	int ret;

	ret = check_range(pgt, iova, length);
	if (ret)
		return ret;
	if (!(prot & PTE_PERM_BITS) ||
	    (prot & ~(SIM_PROT_READ | SIM_PROT_WRITE | SIM_PROT_SNOOP)))
		return -EINVAL;
	if ((hva & (SIM_PAGE_SIZE - 1)) || hva + length < hva ||
	    ((hva + length - 1) & ~(SIM_PTE_ADDR_MASK | (SIM_PAGE_SIZE - 1))))
		return -EINVAL;
	c.end = iova + length;
	c.leaf_bits = prot | pgt->leaf_extra;

	ret = map_level(&c, pgt->root, NULL, pgt->levels, iova, c.end);
	if (ret)
		return ret;
	ret = pool_fill(pgt, &pool, c.need);
	if (ret)
		return ret;
	c.pool = &pool;
	ret = map_level(&c, pgt->root, NULL, pgt->levels, iova, c.end);
	pool_release(pgt, &pool);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Unmap                                                               */
/* ------------------------------------------------------------------ */

/* Number of leaf splits needed to cut the address space at x. */
static unsigned int splits_at(struct sim_pgtable *pgt, uint64_t x)
{
	struct sim_xlate xl;
	unsigned int level, n = 0;

	if (x >> pgt->addr_width || sim_pgtable_walk(pgt, x, &xl))
		return 0;
	for (level = xl.level; level > 1; level--) {
		if (!(x & (LEVEL_SIZE(level) - 1)))
			break;
		n++;
	}
	return n;
}

/* Build 512 next-level leaves translating exactly like leaf `e`. */
static void fill_split(pte_t *t, pte_t e, unsigned int level)
{
	unsigned int clevel = level - 1;
	uint64_t csize = LEVEL_SIZE(clevel);
	pte_t base = e & SIM_PTE_ADDR_MASK;
	pte_t flags = e & PTE_LEAF_FLAGS;
	unsigned int i;

	if (clevel > 1)
		flags |= SIM_PTE_PS;
	for (i = 0; i < PTES_PER_TABLE; i++)
		t[i] = (base + i * csize) | flags;
}

/* Replace the leaf in `slot` by an equivalent table, atomically. */
static pte_t split_leaf(struct sim_pgtable *pgt, struct pt_pool *pool,
			pte_t *slot, unsigned int level)
{
	pte_t *t = pool_take(pgt, pool);
	pte_t old = pte_read(slot);
	pte_t new;

	if (!t)
		return 0;	/* cannot happen: pool sized by splits_at() */
	new = table_pte(t) | (pte_t)PTES_PER_TABLE << PTE_COUNT_SHIFT;
	do {
		fill_split(t, old, level);
	} while (!__atomic_compare_exchange_n(slot, &old, new, false,
					      __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	pgt->splits++;
	return new;
}

/* Retire a whole unlinked subtree; returns the bytes it mapped. */
static uint64_t retire_subtree(struct sim_pgtable *pgt, pte_t *table,
			       unsigned int level, uint64_t addr)
{
	uint64_t bytes = 0;
	unsigned int i;
	pte_t e;

	for (i = 0; i < PTES_PER_TABLE; i++) {
		uint64_t at = addr + i * LEVEL_SIZE(level);

		e = pte_read(&table[i]);
		if (!pte_present(e))
			continue;
		if (pte_is_leaf(e, level)) {
			/*
			 * Collecting dirty bits: take the leaf with an
			 * exchange, so a walker that still holds this slot
			 * either set D before (reported) or finds it gone
			 * (faults).  Walkers only read retired tables, and
			 * a cleared PTE is what the unmap means anyway.
			 */
			if (pgt->collect)
				dirty_mark(pgt->collect, at,
					   __atomic_exchange_n(&table[i], 0,
							       __ATOMIC_ACQ_REL) &
					   SIM_PTE_D ? LEVEL_SIZE(level) : 0);
			bytes += LEVEL_SIZE(level);
		} else {
			bytes += retire_subtree(pgt, pte_table(e), level - 1,
						at);
		}
	}
	retire_table(pgt, table);
	return bytes;
}

/* @pslot: the entry pointing to @table (NULL for the root). */
static uint64_t unmap_level(struct sim_pgtable *pgt, struct pt_pool *pool,
			    pte_t *table, pte_t *pslot, unsigned int level,
			    uint64_t addr, uint64_t end)
{
	uint64_t next, bytes = 0;
	pte_t *slot, *child;
	int removed = 0;
	pte_t e;

	for (; addr < end; addr = next) {
		next = block_end(addr, level, end);
		slot = &table[pte_index(addr, level)];
		e = pte_read(slot);
		if (!pte_present(e))
			continue;
		if (pte_is_leaf(e, level)) {
			if (covers_block(addr, next, level)) {
				/* xchg: never lose A/D racing with DMA */
				e = __atomic_exchange_n(slot, 0,
							__ATOMIC_ACQ_REL);
				if (pgt->collect && (e & SIM_PTE_D))
					dirty_mark(pgt->collect, addr,
						   LEVEL_SIZE(level));
				bytes += LEVEL_SIZE(level);
				removed++;
				continue;
			}
			e = split_leaf(pgt, pool, slot, level);
			if (!e)
				continue;
		}
		child = pte_table(e);
		if (covers_block(addr, next, level)) {
			pte_publish(slot, 0);
			bytes += retire_subtree(pgt, child, level - 1, addr);
			removed++;
			continue;
		}
		bytes += unmap_level(pgt, pool, child, slot, level - 1, addr,
				     next);
		if (!pte_count(pte_read(slot))) {
			pte_publish(slot, 0);
			retire_table(pgt, child);
			removed++;
		}
	}
	count_add(pslot, -removed);
	return bytes;
}

/*
 * One 4 KiB leaf: the common case of a conversion storm once large pages
 * are split.  One walk, one exchange.  Returns false when the caller must
 * take the general path: no 4 KiB leaf there, or its table is now empty and
 * must be unlinked (*cleared tells whether the leaf is already gone).
 */
static int walk_slot(struct sim_pgtable *pgt, uint64_t iova, pte_t **slotp,
		     pte_t **parentp, unsigned int *levelp, pte_t *ep);

static bool unmap_one_leaf(struct sim_pgtable *pgt, uint64_t iova,
			   bool *cleared)
{
	unsigned int level;
	pte_t *slot, *parent, e;

	*cleared = false;
	if (walk_slot(pgt, iova, &slot, &parent, &level, &e) || level != 1)
		return false;
	e = __atomic_exchange_n(slot, 0, __ATOMIC_ACQ_REL); /* keep A/D races */
	if (pgt->collect && (e & SIM_PTE_D))
		dirty_mark(pgt->collect, iova & ~(SIM_SZ_4K - 1), SIM_SZ_4K);
	*cleared = true;
	/* a level-1 table always has a parent: there are >= 3 levels */
	count_add(parent, -1);
	return pte_count(pte_read(parent)) != 0;
}

int64_t sim_pgtable_unmap(struct sim_pgtable *pgt, uint64_t iova,
			  uint64_t length)
{
	struct pt_pool pool;
	bool cleared = false;
	uint64_t bytes;
	int ret;

	ret = check_range(pgt, iova, length);
	if (ret)
		return ret;
	if (length == SIM_SZ_4K && unmap_one_leaf(pgt, iova, &cleared))
		return SIM_SZ_4K;
	ret = pool_fill(pgt, &pool, splits_at(pgt, iova) +
				    splits_at(pgt, iova + length));
	if (ret)
		return ret;
	bytes = unmap_level(pgt, &pool, pgt->root, NULL, pgt->levels, iova,
			    iova + length);
	if (cleared)	/* the fast path took the leaf, this unlinked its table */
		bytes = SIM_SZ_4K;
	pool_release(pgt, &pool);
	if (pgt->nr_retired >= SIM_PGT_RECLAIM_BATCH) {
		sim_gp_synchronize();
		sim_pgtable_reclaim(pgt);
	}
	return (int64_t)bytes;
}

/* ------------------------------------------------------------------ */
/* Walk / translate                                                    */
/* ------------------------------------------------------------------ */

/* @parentp: the entry pointing to the leaf's table (NULL: the root's). */
static int walk_slot(struct sim_pgtable *pgt, uint64_t iova, pte_t **slotp,
		     pte_t **parentp, unsigned int *levelp, pte_t *ep)
{
	pte_t *table = pgt->root, *parent = NULL;
	unsigned int level;
	pte_t *slot;
	pte_t e;

	if (iova >> pgt->addr_width)
		return -ERANGE;
	for (level = pgt->levels; level >= 1; level--) {
		slot = &table[pte_index(iova, level)];
		e = pte_read(slot);
		if (!pte_present(e))
			return -ENOENT;
		if (pte_is_leaf(e, level)) {
			*slotp = slot;
			*parentp = parent;
			*levelp = level;
			*ep = e;
			return 0;
		}
		parent = slot;
		table = pte_table(e);
	}
	return -ENOENT;
}

static void fill_xlate(struct sim_xlate *x, uint64_t iova, pte_t e,
		       unsigned int level)
{
	x->size = LEVEL_SIZE(level);
	x->iova = iova & ~(x->size - 1);
	x->hva = e & SIM_PTE_ADDR_MASK;
	x->pte = e;
	x->level = level;
}

void sim_pgtable_prefetch(struct sim_pgtable *pgt, uint64_t iova)
{
	pte_t *table = pgt->root;
	unsigned int level;
	pte_t e;

	if (iova >> pgt->addr_width)
		return;
	sim_gp_read_lock();	/* the tables stay while it reads them */
	for (level = pgt->levels; level > 1; level--) {
		e = pte_read(&table[pte_index(iova, level)]);
		if (!pte_present(e) || pte_is_leaf(e, level))
			break;
		table = pte_table(e);
	}
	/* the entry of the lowest table reached: the leaf, or where it
	 * would be; a prefetch never faults and changes no state */
	__builtin_prefetch(&table[pte_index(iova, level)], 1, 3);
	sim_gp_read_unlock();
}

int sim_pgtable_walk(struct sim_pgtable *pgt, uint64_t iova,
		     struct sim_xlate *x)
{
	unsigned int level;
	pte_t *slot, *parent;
	pte_t e;
	int ret;

	ret = walk_slot(pgt, iova, &slot, &parent, &level, &e);
	if (!ret)
		fill_xlate(x, iova, e, level);
	return ret;
}

void sim_pgtable_set_dirtied(struct sim_pgtable *pgt, sim_dirtied_fn *fn,
			     void *cookie)
{
	pgt->dirtied_cookie = cookie;
	pgt->dirtied = fn;
}

int sim_pgtable_translate(struct sim_pgtable *pgt, uint64_t iova,
			  unsigned int access, struct sim_xlate *x)
{
	bool track = access & SIM_ACCESS_TRACK;
	pte_t need = 0, bits = track ? SIM_PTE_A : 0;
	unsigned int level;
	pte_t *slot, *parent;
	pte_t e, cur;
	int ret;

	if (access & SIM_ACCESS_READ)
		need |= SIM_PTE_R;
	if (access & SIM_ACCESS_WRITE) {
		need |= SIM_PTE_W;
		if (track)
			bits |= SIM_PTE_D;
	}
retry:
	ret = walk_slot(pgt, iova, &slot, &parent, &level, &e);
	if (ret)
		return ret;
	fill_xlate(x, iova, e, level);
	if ((e & need) != need)
		return -EACCES;
	while ((e & bits) != bits) {
		cur = e;
		if (__atomic_compare_exchange_n(slot, &cur, e | bits, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			if ((bits & ~e & SIM_PTE_D) && pgt->dirtied)
				pgt->dirtied(pgt->dirtied_cookie, x->iova,
					     x->size);
			e |= bits;
			break;
		}
		/* Only A/D changed under us: try again; anything else
		 * (split, unmap, remap) means walk again. */
		if ((cur ^ e) & ~(SIM_PTE_A | SIM_PTE_D))
			goto retry;
		e = cur;
	}
	x->pte = e;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Dirty tracking                                                      */
/* ------------------------------------------------------------------ */

/* The pages of [base, base+size) inside the context's range are dirty. */
static void dirty_mark(const struct dirty_ctx *c, uint64_t base,
		       uint64_t size)
{
	uint64_t lo = base > c->iova ? base : c->iova;
	uint64_t hi = base + size;

	hi = hi < c->end ? hi : c->end;
	if (!size || lo >= hi || !c->bitmap)
		return;
	bitmap_set_range(c->bitmap, (lo - c->iova) >> SIM_PAGE_SHIFT,
			 (hi - lo) >> SIM_PAGE_SHIFT);
}

static void dirty_leaf(const struct dirty_ctx *c, pte_t *slot, pte_t e,
		       unsigned int level, uint64_t addr)
{
	uint64_t base = addr & ~(LEVEL_SIZE(level) - 1);

	if (!(e & SIM_PTE_D))
		return;
	/* Clearing D of a leaf reaching outside the range would lose the
	 * dirtiness of its outside pages: keep it (over-report). */
	if (!(c->flags & SIM_DIRTY_NO_CLEAR) && base >= c->iova &&
	    base + LEVEL_SIZE(level) <= c->end)
		e = __atomic_fetch_and(slot, ~SIM_PTE_D, __ATOMIC_ACQ_REL);
	if (e & SIM_PTE_D)
		dirty_mark(c, base, LEVEL_SIZE(level));
}

/* What a walk of present leaves does at each one. */
typedef void leaf_action(const struct dirty_ctx *c, pte_t *slot, pte_t e,
			 unsigned int level, uint64_t addr);

/* Call @act on every present leaf that [addr, end) touches. */
static void walk_leaves(const struct dirty_ctx *c, leaf_action *act,
			pte_t *table, unsigned int level, uint64_t addr,
			uint64_t end)
{
	uint64_t next;
	pte_t *slot;
	pte_t e;

	for (; addr < end; addr = next) {
		next = block_end(addr, level, end);
		slot = &table[pte_index(addr, level)];
		e = pte_read(slot);
		if (!pte_present(e))
			continue;
		if (pte_is_leaf(e, level))
			act(c, slot, e, level, addr);
		else
			walk_leaves(c, act, pte_table(e), level - 1, addr,
				    next);
	}
}

int sim_pgtable_read_and_clear_dirty(struct sim_pgtable *pgt, uint64_t iova,
				     uint64_t length, uint64_t *bitmap,
				     unsigned int flags)
{
	struct dirty_ctx c = {
		.iova = iova, .end = iova + length, .bitmap = bitmap,
		.flags = flags,
	};
	int ret;

	ret = check_range(pgt, iova, length);
	if (ret)
		return ret;
	if (flags & ~(SIM_DIRTY_NO_CLEAR | SIM_DIRTY_DISCARD) ||
	    !bitmap != !!(flags & SIM_DIRTY_DISCARD) ||
	    (flags & SIM_DIRTY_DISCARD && flags & SIM_DIRTY_NO_CLEAR))
		return -EINVAL;
	walk_leaves(&c, dirty_leaf, pgt->root, pgt->levels, iova, c.end);
	return 0;
}

/* Set D on a present leaf (all of it, whatever part the range covers). */
static void mark_leaf(const struct dirty_ctx *c, pte_t *slot, pte_t e,
		      unsigned int level, uint64_t addr)
{
	(void)c, (void)e, (void)level, (void)addr;
	__atomic_fetch_or(slot, SIM_PTE_D, __ATOMIC_ACQ_REL);
}

int sim_pgtable_mark_dirty(struct sim_pgtable *pgt, uint64_t iova,
			   uint64_t length)
{
	struct dirty_ctx c = { .iova = iova, .end = iova + length };
	int ret = check_range(pgt, iova, length);

	if (ret)
		return ret;
	walk_leaves(&c, mark_leaf, pgt->root, pgt->levels, iova, c.end);
	return 0;
}

int64_t sim_pgtable_unmap_dirty(struct sim_pgtable *pgt, uint64_t iova,
				uint64_t length, uint64_t *bitmap,
				uint64_t bitmap_iova)
{
	struct dirty_ctx c = {
		.iova = bitmap_iova, .end = iova + length, .bitmap = bitmap,
	};
	int64_t ret;

	if (!bitmap || bitmap_iova > iova || bitmap_iova & (SIM_SZ_4K - 1))
		return -EINVAL;
	pgt->collect = &c;
	ret = sim_pgtable_unmap(pgt, iova, length);
	pgt->collect = NULL;
	return ret;
}

/* ------------------------------------------------------------------ */
/* Debug / accounting                                                  */
/* ------------------------------------------------------------------ */

/* @pslot: the entry pointing to @table (NULL for the root). */
static void stats_level(struct sim_pgt_stats *st, pte_t *table,
			pte_t *pslot, unsigned int level)
{
	unsigned int i, present = 0;
	pte_t e;

	for (i = 0; i < PTES_PER_TABLE; i++) {
		e = pte_read(&table[i]);
		if (!pte_present(e))
			continue;
		present++;
		if (!pte_is_leaf(e, level)) {
			stats_level(st, pte_table(e), &table[i], level - 1);
			continue;
		}
		st->mapped_bytes += LEVEL_SIZE(level);
		if (level == 1)
			st->leaves_4k++;
		else if (level == 2)
			st->leaves_2m++;
		else
			st->leaves_1g++;
	}
	if (pslot && pte_count(pte_read(pslot)) != present)
		st->bad_counts++;
}

void sim_pgtable_stats(struct sim_pgtable *pgt, struct sim_pgt_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->levels = pgt->levels;
	st->addr_width = pgt->addr_width;
	st->tables = pgt->nr_tables;
	st->pending = pgt->nr_retired;
	st->splits = pgt->splits;
	st->chunks = pt_arena_chunks(&pgt->arena);
	stats_level(st, pgt->root, NULL, pgt->levels);
}

unsigned int sim_pgtable_levels(const struct sim_pgtable *pgt)
{
	return pgt->levels;
}

unsigned int sim_pgtable_addr_width(const struct sim_pgtable *pgt)
{
	return pgt->addr_width;
}

uint64_t sim_pgtable_pgsize_mask(const struct sim_pgtable *pgt)
{
	return pgt->pgsize_mask;
}

bool sim_pgtable_enforces_coherency(const struct sim_pgtable *pgt)
{
	return pgt->leaf_extra & SIM_PTE_SNP;
}

void sim_pgtable_fail_alloc_after(struct sim_pgtable *pgt, int n)
{
	pgt->fail_after = n < 0 ? -1 : n;
}
