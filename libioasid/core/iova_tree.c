/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iova_tree - ordered set of non-overlapping IOVA areas of one IOAS.
 *
 * Layout: a B+tree. Leaves hold up to 128 areas as a key array (the first
 * IOVA of each area, searched on every descent) plus a payload array of
 * { last IOVA, file offset | kind | prot, backing or reason }: 32 bytes per
 * area. The file offset is page aligned, so its low 12 bits carry the prot
 * bits (0x7ff) and the BLOCKED flag (0x800).
 *
 * Inner nodes keep, for each child, a summary of the child's subtree:
 *   start - first IOVA of the subtree (also the separator key),
 *   last  - last IOVA of the subtree,
 *   gapf  - the largest free gap strictly inside the subtree (between two of
 *           its areas), OR'ed with the child's entry count and with flags
 *           telling which kinds of areas the subtree holds. Gaps between
 *           areas are multiples of the page size, so the low 12 bits are
 *           free for the count and the flags.
 * The gap between two sibling subtrees is start[j] - last[j - 1] - 1, so a
 * node knows every gap below it: the interior gaps of its children and the
 * gaps between them. That is the augmentation used by the IOVA allocator
 * (find the lowest fitting hole without scanning) and the kind flags let
 * searches for BLOCKED areas skip subtrees of mappings. Knowing a child's
 * range and count before touching it, a descent interpolates where the key
 * falls inside it and prefetches just those cache lines (prefetch_child()).
 *
 * A leaf maintains its own largest gap and BLOCKED count incrementally, so
 * its summary is O(1); so does an inner node for its gaps and kinds. Both
 * count how many of their gaps have the largest size, so a change that
 * shrinks one of them rescans the node only when it was the last one (a
 * random fill of evenly spaced areas splits a largest gap at every
 * insert); moving entries between siblings updates both from the entries
 * moved. Summaries are
 * refreshed bottom-up along the modified path and the walk stops at the
 * first level whose summary did not change. Nodes are split unevenly when
 * an insert falls at the very end (or start) of a full node, so that
 * ascending or descending fills pack nodes completely; other inserts into a
 * full leaf first try to share the load with a sibling. Deletions merge a
 * node that drops below half full with a sibling or borrow from it.
 *
 * Every operation descends once. An insert checks for overlaps on its way
 * down (on the parent of the leaves, before anything changes) and takes the
 * last child without searching when the key sorts after it (appends); a
 * removal finds its first piece by the descent of a lookup
 * (find_first_fast(), the recursive search only when that subtree does not
 * hold it) and removes the pieces leaf by leaf from there. Descents that
 * will write prefetch the tail of the leaf that is about to shift
 * (prefetch_child_wr()) together with the keys they search.
 *
 * Allocation for inserts is done up front (see tree_reserve()): one leaf and
 * one inner node per level is the worst case of any single insert, so once
 * the reserve is filled an operation cannot fail half way.
 */
#include "iova_tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define TREE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TREE_ASAN 1
#endif
#endif
#ifdef TREE_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)	ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)	((void)(p), (void)(n))
#define UNPOISON(p, n)	((void)(p), (void)(n))
#endif

#define PAGE_SZ		IOVA_TREE_PAGE_SIZE
#define PAGE_MASK_LO	(PAGE_SZ - 1)

/*
 * Array sizes. The fan-out actually used is t->cap (same for leaves and
 * inner nodes), LEAF_CAP unless a test asked for smaller nodes.
 */
#define LEAF_CAP	128
#define INNER_CAP	128
#define MIN_CAP		4
#define MAX_HEIGHT	IOVA_TREE_MAX_HEIGHT

/* offp: file offset | BLOCKED flag | prot bits */
#define OFFP_BLOCKED	0x800ULL
#define OFFP_PROT	((uint64_t)IOVA_PROT_MASK)
#define OFFP_OFFSET	(~PAGE_MASK_LO)

/*
 * gapf = largest interior gap | entry count of the child << GF_NR_SHIFT |
 * kind flags (same values as the IOVA_TREE_MAPPINGS/BLOCKED masks). The
 * count lets a descent predict where a key falls in the child and prefetch
 * before the child's header has arrived.
 */
#define GF_MAP		((uint64_t)IOVA_TREE_MAPPINGS)
#define GF_BLK		((uint64_t)IOVA_TREE_BLOCKED)
#define GF_KINDS	(GF_MAP | GF_BLK)
#define GF_NR_SHIFT	4
#define GF_NR_MASK	(0xffULL << GF_NR_SHIFT)
#define GF_LOW		PAGE_MASK_LO

struct lpay {
	uint64_t last;
	uint64_t offp;
	uintptr_t data;		/* backing pointer, or reason if BLOCKED */
};

/*
 * The header shares the first cache line with the first keys. maxgap and
 * nblk are kept up to date incrementally so that the summary of a leaf is
 * O(1) and does not touch every payload line after a small change.
 */
struct leaf {
	uint16_t nr;
	uint16_t nblk;		/* BLOCKED entries */
	uint16_t nmax;		/* how many gaps are maxgap long */
	uint8_t arena;		/* allocated from the tree's arena */
	uint64_t maxgap;	/* largest gap between two entries */
	uint64_t iova[LEAF_CAP];
	struct lpay pay[LEAF_CAP];
};

/* summary of child j but its first IOVA, which is start[j] */
struct islot {
	uint64_t last;
	uint64_t gapf;
	void *child;
};

/*
 * maxgap and flags cache the node's own summary (largest gap below it and
 * the kinds below it), updated incrementally by refresh().
 */
struct inner {
	uint16_t nr;
	uint16_t flags;
	uint16_t nmax;		/* how many of its gaps are maxgap long */
	uint8_t arena;		/* same place as in struct leaf */
	uint64_t maxgap;
	uint64_t start[INNER_CAP];
	struct islot slot[INNER_CAP];
};

struct summ {
	uint64_t start;
	uint64_t last;
	uint64_t gapf;
};

/* An area as stored: first IOVA + payload */
struct ent {
	uint64_t iova;
	struct lpay p;
};

/*
 * Node arena: without an allocator of the caller's, a tree past
 * ARENA_MIN_NODES takes its nodes from 2 MiB aligned chunks asking for
 * transparent huge pages, so that a descent through a large tree does not
 * also miss the TLB at every level (with 4 KiB pages a tree of 16M areas
 * spans 160,000 pages). Nodes are cache line aligned there. Small trees
 * (most IOASes) stay on malloc: a chunk is 2 MiB.
 */
#define CHUNK_SZ	(2ULL << 20)
#define CHUNK_HDR	64
#define NODE_SZ		((sizeof(struct leaf) + 63) & ~(size_t)63)
#define CHUNK_NODES	((uint32_t)((CHUNK_SZ - CHUNK_HDR) / NODE_SZ))
#define ARENA_MIN_NODES	128

struct chunk {
	struct chunk *next;	/* chunks with a free node */
	struct chunk *prev;
	void *free;		/* freed nodes, chained through their start */
	uint32_t used;		/* nodes handed out */
	uint32_t carved;	/* nodes ever handed out (the rest untouched) */
};

_Static_assert(sizeof(struct leaf) == sizeof(struct inner),
	       "one node size for the arena");
_Static_assert(sizeof(struct chunk) <= CHUNK_HDR, "chunk header");

struct iova_tree {
	void *root;		/* NULL when empty */
	int height;		/* levels; leaves are at level height - 1 */
	int cap;		/* max entries/children per node */
	struct iova_tree_ops ops;
	uint64_t gen;		/* bumped by every modification */
	uint64_t nr_map;
	uint64_t nr_blk;
	uint64_t pg_map;	/* pages; at most 2^52, cannot overflow */
	uint64_t pg_blk;
	uint64_t nr_leaves;	/* in the tree, spares not counted */
	uint64_t nr_inner;
	uint64_t mem;		/* every byte allocated, spares included */
	struct leaf *spare_leaf;
	struct inner *spare_inner;	/* chained through slot[0].child */
	int nr_spare_inner;
	bool no_arena;		/* the caller allocates, or mmap failed */
	struct chunk *partial;	/* chunks with a free node */
	uint64_t nr_chunks;
	uint64_t nr_empty;	/* chunks kept with no node in use */
	uint64_t arena_nodes;	/* nodes in use from chunks */
};

/* Request of the free-range search */
struct ffreq {
	uint64_t lo;		/* first usable IOVA (never 0) */
	uint64_t hi;		/* last usable IOVA */
	uint64_t len;
	uint64_t align;
};

/* ------------------------------------------------------------------ */
/* small helpers */

static inline unsigned int ent_kind(uint64_t offp)
{
	return (offp & OFFP_BLOCKED) ? IOVA_TREE_BLOCKED : IOVA_TREE_MAPPINGS;
}

static inline uint64_t gap_of(uint64_t gapf)
{
	return gapf & ~GF_LOW;
}

static inline int nr_of(uint64_t gapf)
{
	return (int)((gapf & GF_NR_MASK) >> GF_NR_SHIFT);
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t pages_to_bytes_sat(uint64_t pages)
{
	if (pages > (UINT64_MAX >> IOVA_TREE_PAGE_SHIFT))
		return UINT64_MAX;
	return pages << IOVA_TREE_PAGE_SHIFT;
}

/*
 * Number of elements of the sorted array a[0..n) that are <= x.
 * Branchless binary search: the loop has a fixed trip count for a given n
 * and the compiler turns the select into a cmov.
 */
static inline int count_le(const uint64_t *a, int n, uint64_t x)
{
	const uint64_t *base = a;

	if (n <= 0)
		return 0;
	while (n > 1) {
		int half = n / 2;

		base = base[half] <= x ? base + half : base;
		n -= half;
	}
	return (int)(base - a) + (*base <= x);
}

/*
 * count_le() starting from a guess @h: look at up to 4 neighbours on the
 * side of the guess where the answer lies, then fall back to a binary
 * search of the rest of that side.
 */
static inline int count_le_hint(const uint64_t *a, int n, uint64_t x, int h)
{
	int k;

	if (h < 0 || h >= n)
		return count_le(a, n, x);
	if (a[h] <= x) {
		for (k = h + 1; k < n && k <= h + 4; k++) {
			if (a[k] > x)
				return k;
		}
		if (k == n)
			return n;
		return k + count_le(a + k, n - k, x);
	}
	for (k = h - 1; k >= 0 && k >= h - 4; k--) {
		if (a[k] <= x)
			return k + 1;
	}
	if (k < 0)
		return 0;
	return count_le(a, k + 1, x);
}

/*
 * Before descending into child @j of @n towards @x, guess where @x falls in
 * the child by interpolating over the child's range and entry count (exact
 * for regularly spaced areas, as guest memory mapped page by page is, and
 * close otherwise) and start the cache misses the search will take there:
 * the key lines around it and the payload line of a leaf, or the slot line
 * of an inner node. Returns the guess for count_le_hint(). One memory round
 * trip per level instead of the two or more of a cold binary search, and
 * usually a few lines instead of the whole key array.
 */
static inline int prefetch_child_wr(const struct inner *n, int j, uint64_t x,
				    bool leafkid, bool wr)
{
	uint64_t s = n->start[j];
	uint64_t span = ((n->slot[j].last - s) >> IOVA_TREE_PAGE_SHIFT) + 1;
	int nr = nr_of(n->slot[j].gapf);
	uint64_t i = 0, lo, hi;

	if (x > s)
		i = ((x - s) >> IOVA_TREE_PAGE_SHIFT) * (uint64_t)nr / span;
	if (i >= (uint64_t)nr)
		i = nr - 1;
	lo = i >= 8 ? i - 8 : 0;
	hi = i + 8 < (uint64_t)nr ? i + 8 : (uint64_t)nr - 1;
	/*
	 * A hole covering a good part of the child makes the guess unreliable:
	 * then fetch the whole key array (what a cold binary search needs).
	 */
	if ((gap_of(n->slot[j].gapf) >> IOVA_TREE_PAGE_SHIFT) * 4 > span) {
		lo = 0;
		hi = nr - 1;
	}
	if (leafkid) {
		const struct leaf *l = n->slot[j].child;

		if (wr) {
			/*
			 * An insert or a removal shifts the entries from the
			 * key's position to the end: fetch them all now, in
			 * parallel with the search, not one line at a time
			 * behind it.
			 */
			uint64_t k = lo;

			hi = (uint64_t)nr - 1;
			__builtin_prefetch(&l->iova[0], 1);	/* summary */
			for (; k <= hi; k += 8)
				__builtin_prefetch(&l->iova[k], 1);
			for (k = i; k <= hi; k += 8) {
				__builtin_prefetch(&l->pay[k], 1);
				__builtin_prefetch(&l->pay[k + 2].data, 1);
				__builtin_prefetch(&l->pay[k + 5].offp, 1);
			}
		}
		for (; lo <= hi; lo += 8)
			__builtin_prefetch(&l->iova[lo]);
		__builtin_prefetch(&l->iova[hi]);
		__builtin_prefetch(&l->nr);
		__builtin_prefetch(&l->pay[i]);
		__builtin_prefetch(&l->pay[i].data);
	} else {
		const struct inner *c = n->slot[j].child;

		if (wr) {
			/* what refresh() reads of it on the way back up */
			__builtin_prefetch(&c->start[0], 1);
			__builtin_prefetch(&c->slot[nr - 1].last, 1);
		}
		for (; lo <= hi; lo += 8)
			__builtin_prefetch(&c->start[lo]);
		__builtin_prefetch(&c->start[hi]);
		__builtin_prefetch(&c->nr);
		__builtin_prefetch(&c->slot[i]);
		__builtin_prefetch(&c->slot[i].child);
	}
	return (int)i;
}

static inline int prefetch_child(const struct inner *n, int j, uint64_t x,
				 bool leafkid)
{
	return prefetch_child_wr(n, j, x, leafkid, false);
}

static inline void leaf_get(const struct leaf *l, int i, struct ent *e)
{
	e->iova = l->iova[i];
	e->p = l->pay[i];
}

static inline void leaf_set(struct leaf *l, int i, const struct ent *e)
{
	l->iova[i] = e->iova;
	l->pay[i] = e->p;
}

static void ent_to_area(const struct ent *e, struct iova_area *a)
{
	memset(a, 0, sizeof(*a));
	a->iova = e->iova;
	a->length = e->p.last - e->iova + 1;
	if (e->p.offp & OFFP_BLOCKED) {
		a->kind = IOVA_AREA_BLOCKED;
		a->reason = (uint32_t)e->p.data;
	} else {
		a->kind = IOVA_AREA_MAPPING;
		a->offset = e->p.offp & OFFP_OFFSET;
		a->prot = (uint32_t)(e->p.offp & OFFP_PROT);
		a->backing = (void *)e->p.data;
	}
}

/* The piece [pa, pb] of @e, offset moved along */
static void piece_of(const struct ent *e, uint64_t pa, uint64_t pb,
		     struct iova_area *a)
{
	ent_to_area(e, a);
	if (a->kind == IOVA_AREA_MAPPING)
		a->offset += pa - e->iova;
	a->iova = pa;
	a->length = pb - pa + 1;
}

/* ------------------------------------------------------------------ */
/* node memory */

static void *mem_alloc(struct iova_tree *t, size_t sz)
{
	void *p;

	if (t->ops.alloc)
		p = t->ops.alloc(t->ops.alloc_ctx, sz);
	else
		p = malloc(sz);
	if (p)
		t->mem += sz;
	return p;
}

static void mem_free(struct iova_tree *t, void *p, size_t sz)
{
	if (!p)
		return;
	if (t->ops.free)
		t->ops.free(t->ops.alloc_ctx, p, sz);
	else
		free(p);
	t->mem -= sz;
}

static void chunk_unlink(struct iova_tree *t, struct chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		t->partial = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void chunk_push(struct iova_tree *t, struct chunk *c)
{
	c->prev = NULL;
	c->next = t->partial;
	if (c->next)
		c->next->prev = c;
	t->partial = c;
}

static struct chunk *chunk_new(struct iova_tree *t)
{
	uint8_t *m = mmap(NULL, 2 * CHUNK_SZ, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a;
	struct chunk *c;

	if (m == MAP_FAILED)
		return NULL;
	/* keep the 2 MiB aligned middle: a huge page can back it */
	a = (uint8_t *)(((uintptr_t)m + CHUNK_SZ - 1) &
			~(uintptr_t)(CHUNK_SZ - 1));
	if (a > m)
		munmap(m, (size_t)(a - m));
	munmap(a + CHUNK_SZ, (size_t)(m + CHUNK_SZ - a));
#ifdef MADV_HUGEPAGE
	madvise(a, CHUNK_SZ, MADV_HUGEPAGE);	/* a hint: may fail */
#endif
	POISON(a + CHUNK_HDR, CHUNK_SZ - CHUNK_HDR);
	c = (struct chunk *)a;
	memset(c, 0, sizeof(*c));
	t->nr_chunks++;
	t->nr_empty++;
	chunk_push(t, c);
	return c;
}

static void chunk_del(struct iova_tree *t, struct chunk *c)
{
	chunk_unlink(t, c);
	UNPOISON(c, CHUNK_SZ);
	munmap(c, CHUNK_SZ);
	t->nr_chunks--;
	t->nr_empty--;
}

/* A node of the tree (leaf or inner), from the arena when there is one */
static void *node_alloc(struct iova_tree *t)
{
	struct chunk *c;
	uint8_t *p;

	if (t->no_arena || t->nr_leaves + t->nr_inner < ARENA_MIN_NODES) {
		p = mem_alloc(t, sizeof(struct leaf));
		if (p)
			((struct leaf *)p)->arena = 0;
		return p;
	}
	c = t->partial;
	if (!c) {
		c = chunk_new(t);
		if (!c) {
			t->no_arena = true;	/* no more tries: malloc */
			return node_alloc(t);
		}
	}
	if (c->free) {
		p = c->free;
		UNPOISON(p, NODE_SZ);
		c->free = *(void **)p;
	} else {
		p = (uint8_t *)c + CHUNK_HDR + (size_t)c->carved++ * NODE_SZ;
		UNPOISON(p, NODE_SZ);
	}
	if (!c->used++)
		t->nr_empty--;
	if (c->used == CHUNK_NODES)
		chunk_unlink(t, c);
	t->arena_nodes++;
	t->mem += sizeof(struct leaf);
	((struct leaf *)p)->arena = 1;
	return p;
}

static void node_free(struct iova_tree *t, void *p)
{
	struct chunk *c;

	if (!p)
		return;
	if (!((struct leaf *)p)->arena) {
		mem_free(t, p, sizeof(struct leaf));
		return;
	}
	c = (struct chunk *)((uintptr_t)p & ~(uintptr_t)(CHUNK_SZ - 1));
	if (c->used == CHUNK_NODES)
		chunk_push(t, c);
	*(void **)p = c->free;
	c->free = p;
	POISON(p, NODE_SZ);
	UNPOISON(p, sizeof(void *));
	t->arena_nodes--;
	t->mem -= sizeof(struct leaf);
	if (--c->used)
		return;
	/* keep one empty chunk, against mmap churn at a boundary */
	if (++t->nr_empty > 1)
		chunk_del(t, c);
}

/*
 * Make sure the next insert cannot fail: it may split one node per level
 * and add a new root, so it needs one leaf and 'height' inner nodes.
 */
static int tree_reserve(struct iova_tree *t)
{
	if (t->height >= MAX_HEIGHT)
		return -ENOMEM;	/* unreachable in practice: 2^23+ leaves */
	if (!t->spare_leaf) {
		t->spare_leaf = node_alloc(t);
		if (!t->spare_leaf)
			return -ENOMEM;
	}
	while (t->nr_spare_inner < t->height) {
		struct inner *n = node_alloc(t);

		if (!n)
			return -ENOMEM;
		n->slot[0].child = t->spare_inner;
		t->spare_inner = n;
		t->nr_spare_inner++;
	}
	return 0;
}

static struct leaf *take_leaf(struct iova_tree *t)
{
	struct leaf *l = t->spare_leaf;

	t->spare_leaf = NULL;
	l->nr = 0;
	l->nblk = 0;
	l->nmax = 0;
	l->maxgap = 0;
	t->nr_leaves++;
	return l;
}

static struct inner *take_inner(struct iova_tree *t)
{
	struct inner *n = t->spare_inner;

	t->spare_inner = n->slot[0].child;
	t->nr_spare_inner--;
	n->nr = 0;
	n->flags = 0;
	n->nmax = 0;
	n->maxgap = 0;
	t->nr_inner++;
	return n;
}

/* Freed nodes refill the reserve first, which spares malloc churn. */
static void drop_leaf(struct iova_tree *t, struct leaf *l)
{
	t->nr_leaves--;
	if (!t->spare_leaf)
		t->spare_leaf = l;
	else
		node_free(t, l);
}

static void drop_inner(struct iova_tree *t, struct inner *n)
{
	t->nr_inner--;
	if (t->nr_spare_inner <= t->height) {
		n->slot[0].child = t->spare_inner;
		t->spare_inner = n;
		t->nr_spare_inner++;
	} else {
		node_free(t, n);
	}
}

/* ------------------------------------------------------------------ */
/* leaf and inner node array surgery */

/* Gap between entries k - 1 and k */
static inline uint64_t leaf_gap(const struct leaf *l, int k)
{
	return l->iova[k] - l->pay[k - 1].last - 1;
}

/*
 * A node's largest gap is kept with the number of its gaps of that size,
 * so that losing one of them costs a rescan of the node only when it was
 * the last (a random fill of evenly spaced areas has all gaps equal: each
 * insert splits one of the largest). Remove gap @g from the count / add
 * it; after a change the caller rescans when the count dropped to 0.
 */
static inline void maxgap_del(uint64_t *maxgap, uint16_t *nmax, uint64_t g)
{
	if (g == *maxgap)
		(*nmax)--;
}

static inline void maxgap_add(uint64_t *maxgap, uint16_t *nmax, uint64_t g)
{
	if (g > *maxgap) {
		*maxgap = g;
		*nmax = 1;
	} else if (g == *maxgap) {
		(*nmax)++;
	}
}

/* Rescan the largest gap of @l and how many gaps have that size */
static void leaf_regaps(struct leaf *l)
{
	int k;

	l->maxgap = 0;
	l->nmax = 0;
	for (k = 1; k < (int)l->nr; k++)
		maxgap_add(&l->maxgap, &l->nmax, leaf_gap(l, k));
}

/* Add the gaps before entries [from, to] (clamped to the leaf) */
static void leaf_add_gaps(struct leaf *l, int from, int to)
{
	int k;

	if (from < 1)
		from = 1;
	if (to > (int)l->nr - 1)
		to = (int)l->nr - 1;
	for (k = from; k <= to; k++)
		maxgap_add(&l->maxgap, &l->nmax, leaf_gap(l, k));
}

/* Full recomputation after bulk moves (splits, merges, balancing) */
static void leaf_recalc(struct leaf *l)
{
	int i, nblk = 0;

	for (i = 0; i < (int)l->nr; i++)
		nblk += !!(l->pay[i].offp & OFFP_BLOCKED);
	l->nblk = (uint16_t)nblk;
	leaf_regaps(l);
}

/* Gap between children j - 1 and j */
static inline uint64_t inner_gap(const struct inner *n, int j)
{
	return n->start[j] - n->slot[j - 1].last - 1;
}

/* Full recomputation after slots were added, removed or moved */
static void inner_recalc(struct inner *n)
{
	uint64_t fl = 0;
	int j;

	n->maxgap = 0;
	n->nmax = 0;
	for (j = 0; j < (int)n->nr; j++) {
		maxgap_add(&n->maxgap, &n->nmax, gap_of(n->slot[j].gapf));
		if (j)
			maxgap_add(&n->maxgap, &n->nmax, inner_gap(n, j));
		fl |= n->slot[j].gapf & GF_KINDS;
	}
	n->flags = (uint16_t)fl;
}

/* Open a hole of @n entries at @pos */
static void leaf_open(struct leaf *l, int pos, int n)
{
	int tail = (int)l->nr - pos;

	memmove(&l->iova[pos + n], &l->iova[pos], tail * sizeof(l->iova[0]));
	memmove(&l->pay[pos + n], &l->pay[pos], tail * sizeof(l->pay[0]));
	l->nr += n;
}

/* Close @n entries at @pos */
static void leaf_close(struct leaf *l, int pos, int n)
{
	int tail = (int)l->nr - pos - n;

	memmove(&l->iova[pos], &l->iova[pos + n], tail * sizeof(l->iova[0]));
	memmove(&l->pay[pos], &l->pay[pos + n], tail * sizeof(l->pay[0]));
	l->nr -= n;
}

static void leaf_copy(struct leaf *d, int di, const struct leaf *s, int si,
		      int n)
{
	memcpy(&d->iova[di], &s->iova[si], n * sizeof(d->iova[0]));
	memcpy(&d->pay[di], &s->pay[si], n * sizeof(d->pay[0]));
}

static int leaf_count_blk(const struct leaf *l, int from, int n)
{
	int i, nblk = 0;

	for (i = from; i < from + n; i++)
		nblk += !!(l->pay[i].offp & OFFP_BLOCKED);
	return nblk;
}

/*
 * Even out two adjacent leaves, @a left of @b. The summaries follow the
 * entries that move: the part of a leaf that stays is not read again.
 */
static void leaf_balance(struct leaf *a, struct leaf *b)
{
	int want = ((int)a->nr + (int)b->nr) / 2;
	int k, x, nblk, anr = (int)a->nr;

	if (anr > want) {
		/* a's tail goes to the front of b */
		k = anr - want;
		for (x = want > 1 ? want : 1; x < anr; x++)
			maxgap_del(&a->maxgap, &a->nmax, leaf_gap(a, x));
		nblk = leaf_count_blk(a, want, k);
		leaf_open(b, 0, k);
		leaf_copy(b, 0, a, want, k);
		a->nr = want;
		a->nblk -= nblk;
		b->nblk += nblk;
		leaf_add_gaps(b, 1, k);
	} else if (anr < want) {
		/* b's head goes to the end of a */
		k = want - anr;
		for (x = 1; x <= k && x < (int)b->nr; x++)
			maxgap_del(&b->maxgap, &b->nmax, leaf_gap(b, x));
		nblk = leaf_count_blk(b, 0, k);
		leaf_copy(a, anr, b, 0, k);
		a->nr += k;
		leaf_close(b, 0, k);
		a->nblk += nblk;
		b->nblk -= nblk;
		leaf_add_gaps(a, anr, a->nr - 1);
	}
	if (!a->nmax)
		leaf_regaps(a);
	if (!b->nmax)
		leaf_regaps(b);
}

static void inner_open(struct inner *n, int pos, int k)
{
	size_t tail = (size_t)((int)n->nr - pos);

	memmove(&n->start[pos + k], &n->start[pos], tail * 8);
	memmove(&n->slot[pos + k], &n->slot[pos], tail * sizeof(n->slot[0]));
	n->nr += k;
}

static void inner_close(struct inner *n, int pos, int k)
{
	size_t tail = (size_t)((int)n->nr - pos - k);

	memmove(&n->start[pos], &n->start[pos + k], tail * 8);
	memmove(&n->slot[pos], &n->slot[pos + k], tail * sizeof(n->slot[0]));
	n->nr -= k;
}

static void inner_copy(struct inner *d, int di, const struct inner *s, int si,
		       int k)
{
	memcpy(&d->start[di], &s->start[si], k * 8);
	memcpy(&d->slot[di], &s->slot[si], k * sizeof(d->slot[0]));
}

static void inner_balance(struct inner *a, struct inner *b)
{
	int want = ((int)a->nr + (int)b->nr) / 2;
	int k;

	if ((int)a->nr > want) {
		k = (int)a->nr - want;
		inner_open(b, 0, k);
		inner_copy(b, 0, a, want, k);
		a->nr = want;
	} else if ((int)a->nr < want) {
		k = want - (int)a->nr;
		inner_copy(a, a->nr, b, 0, k);
		a->nr += k;
		inner_close(b, 0, k);
	}
	inner_recalc(a);
	inner_recalc(b);
}

/* ------------------------------------------------------------------ */
/* augmented summaries */

static void leaf_summ(const struct leaf *l, struct summ *s)
{
	uint64_t fl = (l->nblk ? GF_BLK : 0) | (l->nr > l->nblk ? GF_MAP : 0);

	s->start = l->iova[0];
	s->last = l->pay[l->nr - 1].last;
	s->gapf = l->maxgap | (uint64_t)l->nr << GF_NR_SHIFT | fl;
}

static void inner_summ(const struct inner *n, struct summ *s)
{
	s->start = n->start[0];
	s->last = n->slot[n->nr - 1].last;
	s->gapf = n->maxgap | (uint64_t)n->nr << GF_NR_SHIFT | n->flags;
}

static void node_summ(const void *node, bool is_leaf, struct summ *s)
{
	if (is_leaf)
		leaf_summ(node, s);
	else
		inner_summ(node, s);
}

/* Fill slot @j of @p from its child; the caller recalculates @p */
static void slot_set(struct inner *p, int j, bool leafkid)
{
	struct summ s;

	node_summ(p->slot[j].child, leafkid, &s);
	p->start[j] = s.start;
	p->slot[j].last = s.last;
	p->slot[j].gapf = s.gapf;
}

/*
 * The gaps of @p that depend on slot @j: its interior, and the gaps to its
 * neighbours (0 where there is no neighbour).
 */
static void slot_gaps(const struct inner *p, int j, uint64_t g[3])
{
	g[0] = gap_of(p->slot[j].gapf);
	g[1] = j > 0 ? inner_gap(p, j) : 0;
	g[2] = j + 1 < (int)p->nr ? inner_gap(p, j + 1) : 0;
}

/*
 * Recompute slot @j of @p from its child after the child changed; true if
 * the slot changed. @p's cached maxgap/flags follow in O(1), unless the
 * change shrank the gap that was the maximum or removed the last area of
 * a kind, which needs an O(node) recalculation.
 */
static bool refresh(struct inner *p, int j, bool leafkid)
{
	uint64_t old[3], new[3];
	struct summ s;
	bool recalc;
	int k;

	node_summ(p->slot[j].child, leafkid, &s);
	if (p->start[j] == s.start && p->slot[j].gapf == s.gapf) {
		if (p->slot[j].last == s.last)
			return false;
		if (j + 1 == (int)p->nr) {
			/* the last slot grew or shrank at its end (appends):
			 * no gap of p involves its last IOVA */
			p->slot[j].last = s.last;
			return true;
		}
	}
	slot_gaps(p, j, old);
	recalc = p->slot[j].gapf & ~s.gapf & GF_KINDS;
	p->start[j] = s.start;
	p->slot[j].last = s.last;
	p->slot[j].gapf = s.gapf;
	slot_gaps(p, j, new);
	for (k = 0; k < 3; k++) {
		/* the neighbour gaps exist only where there is a neighbour */
		if ((k == 1 && j == 0) || (k == 2 && j + 1 == (int)p->nr))
			continue;
		maxgap_del(&p->maxgap, &p->nmax, old[k]);
	}
	for (k = 0; k < 3; k++) {
		if ((k == 1 && j == 0) || (k == 2 && j + 1 == (int)p->nr))
			continue;
		maxgap_add(&p->maxgap, &p->nmax, new[k]);
	}
	if (recalc || !p->nmax) {
		inner_recalc(p);
		return true;
	}
	p->flags |= s.gapf & GF_KINDS;
	return true;
}

static inline uint32_t node_nr(const void *node, bool is_leaf)
{
	return is_leaf ? ((const struct leaf *)node)->nr :
			 ((const struct inner *)node)->nr;
}

/* ------------------------------------------------------------------ */
/* insertion */

/*
 * Insert into leaf @l (the caller made sure the key belongs here and does
 * not overlap). A full leaf is split and the new right half is returned in
 * *@sib. Appends and prepends split unevenly so that sequential fills leave
 * full leaves behind.
 */
static inline int leaf_pos(const struct leaf *l, uint64_t x, int hint)
{
	if (l->nr && x > l->iova[l->nr - 1])
		return l->nr;	/* an append */
	return count_le_hint(l->iova, l->nr, x, hint);
}

static void leaf_insert(struct iova_tree *t, struct leaf *l,
			const struct ent *e, void **sib, int hint)
{
	int pos = leaf_pos(l, e->iova, hint);
	int cap = t->cap, mid = (cap + 1) / 2;
	struct leaf *n;

	if ((int)l->nr < cap) {
		/* the gap the new entry splits */
		bool split = pos > 0 && pos < (int)l->nr;
		uint64_t old = split ? leaf_gap(l, pos) : 0;

		leaf_open(l, pos, 1);
		leaf_set(l, pos, e);
		l->nblk += !!(e->p.offp & OFFP_BLOCKED);
		if (split)
			maxgap_del(&l->maxgap, &l->nmax, old);
		leaf_add_gaps(l, pos, pos + 1);
		if (!l->nmax)
			leaf_regaps(l);
		return;
	}
	n = take_leaf(t);
	if (pos == cap) {
		leaf_set(n, 0, e);
		n->nr = 1;
	} else if (pos == 0) {
		leaf_copy(n, 0, l, 0, cap);
		n->nr = cap;
		leaf_set(l, 0, e);
		l->nr = 1;
	} else if (pos < mid) {
		leaf_copy(n, 0, l, mid - 1, cap - mid + 1);
		n->nr = cap - mid + 1;
		l->nr = mid - 1;
		leaf_open(l, pos, 1);
		leaf_set(l, pos, e);
	} else {
		leaf_copy(n, 0, l, mid, cap - mid);
		n->nr = cap - mid;
		l->nr = mid;
		leaf_open(n, pos - mid, 1);
		leaf_set(n, pos - mid, e);
	}
	leaf_recalc(l);
	leaf_recalc(n);
	*sib = n;
}

/*
 * Called on the parent of the leaves before descending into leaf @j with
 * @key. If that leaf is full, try to give the entry, or half of the load,
 * to a sibling with room instead of splitting. Returns the child to descend
 * into.
 */
static int leaf_make_room(struct iova_tree *t, struct inner *p, int j,
			  uint64_t key)
{
	struct leaf *l = p->slot[j].child;
	int cap = t->cap;
	struct leaf *s;
	int pos;

	if ((int)l->nr < cap)
		return j;
	pos = count_le(l->iova, l->nr, key);
	if (j + 1 < (int)p->nr) {
		s = p->slot[j + 1].child;
		/* key sorts after all of l and before all of s */
		if (pos == cap && (int)s->nr < cap)
			return j + 1;
		if (pos < cap && (int)s->nr <= cap - 2) {
			leaf_balance(l, s);
			refresh(p, j, true);
			refresh(p, j + 1, true);
			return key < s->iova[0] ? j : j + 1;
		}
	}
	if (j > 0 && pos > 0) {
		s = p->slot[j - 1].child;
		if ((int)s->nr <= cap - 2) {
			leaf_balance(s, l);
			refresh(p, j - 1, true);
			refresh(p, j, true);
			return key < l->iova[0] ? j - 1 : j;
		}
	}
	return j;
}

/*
 * Add @child as slot @q of @p. A full @p is split (unevenly when the new
 * slot is the last one) and the new right node is returned in *@sib.
 */
static void inner_add(struct iova_tree *t, struct inner *p, int q, void *child,
		      bool leafkid, void **sib)
{
	int cap = t->cap, mid = (cap + 1) / 2;
	struct inner *dst = p;
	struct inner *m = NULL;
	bool p_same = false;

	if ((int)p->nr == cap) {
		m = take_inner(t);
		if (q == cap) {
			dst = m;
			q = 0;
			p_same = true;	/* p keeps every slot it had */
		} else if (q < mid) {
			inner_copy(m, 0, p, mid - 1, cap - mid + 1);
			m->nr = cap - mid + 1;
			p->nr = mid - 1;
		} else {
			inner_copy(m, 0, p, mid, cap - mid);
			m->nr = cap - mid;
			p->nr = mid;
			dst = m;
			q -= mid;
		}
		*sib = m;
	}
	inner_open(dst, q, 1);
	dst->slot[q].child = child;
	slot_set(dst, q, leafkid);
	if (!m && q == (int)p->nr - 1 && q > 0) {
		/* an append (ascending fills): the summary only gains the new
		 * slot's gaps and kinds */
		maxgap_add(&p->maxgap, &p->nmax, gap_of(p->slot[q].gapf));
		maxgap_add(&p->maxgap, &p->nmax, inner_gap(p, q));
		p->flags |= (uint16_t)(p->slot[q].gapf & GF_KINDS);
	} else if (!p_same) {
		inner_recalc(p);
	}
	if (m)
		inner_recalc(m);
}

/*
 * Whether @e overlaps an entry of leaf @l or the entry right after it,
 * whose first IOVA is @next (0: none; a successor's IOVA is never 0).
 * Entries do not overlap each other, so only the predecessor of e->iova
 * and its successor can.
 */
static bool leaf_overlaps(const struct leaf *l, const struct ent *e,
			  uint64_t next, int hint)
{
	int pos = leaf_pos(l, e->iova, hint);
	uint64_t succ = pos < (int)l->nr ? l->iova[pos] : next;

	if (pos > 0 && l->pay[pos - 1].last >= e->iova)
		return true;
	return succ && succ <= e->p.last;
}

/*
 * Returns whether the summary of @node may have changed, so that the
 * callers stop recomputing summaries as soon as one level is unchanged.
 * (Balancing two children of @p never changes @p's own summary.)
 * @next is the first IOVA after @node's subtree (0: none).  With @check,
 * the overlap test is made in the same descent, on the parent of the
 * leaves and before anything changes: on overlap *@overlap is set and the
 * tree is left as it was.
 */
static bool ins_rec(struct iova_tree *t, void *node, int level,
		    const struct ent *e, uint64_t next, bool check,
		    bool *overlap, void **sib, int hint)
{
	struct inner *p = node;
	bool leafkid = level + 1 == t->height - 1;
	void *csib = NULL;
	bool changed;
	int j, j0;

	if (level == t->height - 1) {
		leaf_insert(t, node, e, sib, hint);
		return true;
	}
	if (e->iova > p->start[p->nr - 1])
		j = p->nr - 1;	/* appends (ascending fills): no search */
	else
		j = count_le_hint(p->start, p->nr, e->iova, hint) - 1;
	j = j > 0 ? j : 0;
	/* the same interpolated prefetch as a lookup's descent */
	hint = prefetch_child_wr(p, j, e->iova, leafkid, true);
	if (j + 1 < (int)p->nr)
		next = p->start[j + 1];
	if (leafkid) {
		if (check && leaf_overlaps(p->slot[j].child, e, next, hint)) {
			*overlap = true;
			return false;
		}
		j0 = j;
		j = leaf_make_room(t, p, j, e->iova);
		if (j != j0)
			hint = -1;	/* moved to a sibling: guess again */
	}
	changed = ins_rec(t, p->slot[j].child, level + 1, e, next, check,
			  overlap, &csib, hint);
	if (*overlap)
		return false;
	if (changed)
		changed = refresh(p, j, leafkid);
	if (csib) {
		inner_add(t, p, j + 1, csib, leafkid, sib);
		changed = true;
	}
	return changed;
}

/*
 * Insert an entry, in one descent.  With @check, refuse (return false,
 * nothing changed) when it overlaps an entry; without, the caller knows it
 * does not.  The reserve must be filled.
 */
static bool tree_insert_checked(struct iova_tree *t, const struct ent *e,
				bool check)
{
	bool overlap = false;
	void *sib = NULL;
	struct inner *r;
	struct leaf *l;

	if (!t->root) {
		l = take_leaf(t);
		leaf_set(l, 0, e);
		l->nr = 1;
		leaf_recalc(l);
		t->root = l;
		t->height = 1;
		return true;
	}
	if (check && t->height == 1 && leaf_overlaps(t->root, e, 0, -1))
		return false;
	ins_rec(t, t->root, 0, e, 0, check, &overlap, &sib, -1);
	if (overlap)
		return false;
	if (!sib)
		return true;
	r = take_inner(t);
	r->nr = 2;
	r->slot[0].child = t->root;
	r->slot[1].child = sib;
	slot_set(r, 0, t->height == 1);
	slot_set(r, 1, t->height == 1);
	inner_recalc(r);
	t->root = r;
	t->height++;
	return true;
}

/* Insert a non-overlapping entry. The reserve must be filled. */
static void tree_insert_ent(struct iova_tree *t, const struct ent *e)
{
	tree_insert_checked(t, e, false);
}

/* ------------------------------------------------------------------ */
/* search */

/*
 * Fill @p with the path to the first entry (in IOVA order) whose last >= @a,
 * whose first <= @b and whose kind is in @kinds. Subtrees without such a
 * kind are skipped via the summary flags; only subtrees straddling @a or @b
 * can be entered without success, so this is O(log n).
 */
static bool ff_rec(const struct iova_tree *t, void *node, int level,
		   uint64_t a, uint64_t b, unsigned int kinds,
		   struct iova_tree_path *p, int hint)
{
	p->node[level] = node;
	if (level == t->height - 1) {
		const struct leaf *l = node;
		int i = count_le_hint(l->iova, l->nr, a, hint);

		if (i > 0 && l->pay[i - 1].last >= a)
			i--;
		for (; i < (int)l->nr && l->iova[i] <= b; i++) {
			if (ent_kind(l->pay[i].offp) & kinds) {
				p->idx[level] = i;
				return true;
			}
		}
		return false;
	} else {
		const struct inner *n = node;
		int j = count_le_hint(n->start, n->nr, a, hint);

		j = j ? j - 1 : 0;
		if (n->slot[j].last < a)
			j++;
		for (; j < (int)n->nr && n->start[j] <= b; j++) {
			if (!(n->slot[j].gapf & kinds))
				continue;
			p->idx[level] = j;
			hint = prefetch_child(n, j, a,
					      level + 1 == t->height - 1);
			if (ff_rec(t, n->slot[j].child, level + 1, a, b, kinds,
				   p, hint))
				return true;
		}
		return false;
	}
}

/*
 * The common case of find_first(), without recursion: the descent of a
 * lookup towards @a, recording the path. It answers when the subtree that
 * would hold @a holds the first entry of the range (an entry containing
 * @a or starting after it in the same leaf); anything else (@a in a gap
 * at the end of a subtree, a kind filtered out) is left to ff_rec().
 */
static bool find_first_fast(const struct iova_tree *t, uint64_t a,
			    uint64_t b, unsigned int kinds,
			    struct iova_tree_path *p, bool wr)
{
	const void *node = t->root;
	const struct leaf *l;
	int lv, i, hint = -1;

	for (lv = 0; lv < t->height - 1; lv++) {
		const struct inner *n = node;

		i = count_le_hint(n->start, n->nr, a, hint);
		if (!i || n->slot[i - 1].last < a ||
		    !(n->slot[i - 1].gapf & kinds))
			return false;
		p->node[lv] = (void *)n;
		p->idx[lv] = i - 1;
		hint = prefetch_child_wr(n, i - 1, a, lv + 1 == t->height - 1,
					 wr);
		node = n->slot[i - 1].child;
	}
	l = node;
	i = count_le_hint(l->iova, l->nr, a, hint);
	if (i > 0 && l->pay[i - 1].last >= a)
		i--;
	if (i >= (int)l->nr || l->iova[i] > b ||
	    !(ent_kind(l->pay[i].offp) & kinds))
		return false;
	p->node[lv] = (void *)l;
	p->idx[lv] = i;
	return true;
}

static bool find_first_wr(const struct iova_tree *t, uint64_t a, uint64_t b,
			  unsigned int kinds, struct iova_tree_path *p,
			  bool wr)
{
	if (!t->root)
		return false;
	if (find_first_fast(t, a, b, kinds, p, wr))
		return true;
	return ff_rec(t, t->root, 0, a, b, kinds, p, -1);
}

static bool find_first(const struct iova_tree *t, uint64_t a, uint64_t b,
		       unsigned int kinds, struct iova_tree_path *p)
{
	return find_first_wr(t, a, b, kinds, p, false);
}

static inline struct leaf *path_leaf(const struct iova_tree *t,
				     const struct iova_tree_path *p, int *i)
{
	*i = p->idx[t->height - 1];
	return p->node[t->height - 1];
}

/* Advance @p to the next entry in IOVA order */
static bool path_next(const struct iova_tree *t, struct iova_tree_path *p)
{
	int lv = t->height - 1;
	const struct leaf *l = p->node[lv];

	if (++p->idx[lv] < (int)l->nr)
		return true;
	while (--lv >= 0) {
		const struct inner *n = p->node[lv];

		if (++p->idx[lv] < (int)n->nr)
			break;
	}
	if (lv < 0)
		return false;
	for (; lv < t->height - 1; lv++) {
		const struct inner *n = p->node[lv];

		p->node[lv + 1] = n->slot[p->idx[lv]].child;
		p->idx[lv + 1] = 0;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* free-range search (allocator) */

/* Lowest aligned start of a [len] block inside gap [gs, ge] and the window */
static bool gap_fit(uint64_t gs, uint64_t ge, const struct ffreq *r,
		    uint64_t *x)
{
	uint64_t s = max_u64(gs, r->lo);
	uint64_t e = min_u64(ge, r->hi);
	uint64_t xs;

	if (s > e)
		return false;
	xs = (s + r->align - 1) & ~(r->align - 1);
	if (xs < s || xs > e || e - xs < r->len - 1)
		return false;
	*x = xs;
	return true;
}

/*
 * Search the subtree at @node for the lowest fit. Children are visited in
 * IOVA order, and a child is entered only if its largest interior gap is
 * at least @len and it reaches into the window. A child can still fail
 * (window clipping at its edges, or a large enough gap with the wrong
 * alignment), in which case the search moves on to the next one.
 */
static bool ff_node(const struct iova_tree *t, const void *node, int level,
		    const struct ffreq *r, uint64_t *x)
{
	if (level == t->height - 1) {
		const struct leaf *l = node;
		int i = count_le(l->iova, l->nr, r->lo);

		for (i = i ? i : 1; i < (int)l->nr; i++) {
			uint64_t gs = l->pay[i - 1].last + 1;

			if (gs > r->hi)
				break;
			if (l->iova[i] - gs >= r->len &&
			    gap_fit(gs, l->iova[i] - 1, r, x))
				return true;
		}
		return false;
	} else {
		const struct inner *n = node;
		int j0 = count_le(n->start, n->nr, r->lo);
		int j;

		j0 = j0 ? j0 - 1 : 0;
		for (j = j0; j < (int)n->nr; j++) {
			if (j > j0) {
				/* the gap between child j - 1 and child j */
				uint64_t gs = n->slot[j - 1].last + 1;

				if (gs > r->hi)
					break;
				if (n->start[j] - gs >= r->len &&
				    gap_fit(gs, n->start[j] - 1, r, x))
					return true;
			}
			if (n->start[j] > r->hi)
				break;
			if (gap_of(n->slot[j].gapf) >= r->len &&
			    n->slot[j].last > r->lo &&
			    ff_node(t, n->slot[j].child, level + 1, r, x))
				return true;
		}
		return false;
	}
}

static int find_free(const struct iova_tree *t, const struct ffreq *r,
		     uint64_t *x)
{
	struct summ s;

	if (!t->root)
		return gap_fit(0, UINT64_MAX, r, x) ? 0 : -ENOSPC;
	node_summ(t->root, t->height == 1, &s);
	if (s.start > 0 && gap_fit(0, s.start - 1, r, x))
		return 0;
	if (ff_node(t, t->root, 0, r, x))
		return 0;
	if (s.last < UINT64_MAX && gap_fit(s.last + 1, UINT64_MAX, r, x))
		return 0;
	return -ENOSPC;
}

/* ------------------------------------------------------------------ */
/* removal */

/*
 * After entries of the leaf at the end of @p were removed or changed:
 * refresh the summaries up the path, merging or borrowing for nodes that
 * became less than half full and dropping empty ones, then shrink the root.
 * Node positions above the changed level do not move, so @p stays valid
 * for the walk up.
 */
static void rebalance(struct iova_tree *t, struct inner *par, int j,
		      bool leafkid)
{
	int cap = t->cap;
	int x = j > 0 ? j - 1 : j;
	void *a, *b;

	if (par->nr < 2) {
		refresh(par, j, leafkid);
		return;
	}
	a = par->slot[x].child;
	b = par->slot[x + 1].child;
	if ((int)(node_nr(a, leafkid) + node_nr(b, leafkid)) <= cap) {
		if (leafkid) {
			struct leaf *la = a, *lb = b;
			int anr = (int)la->nr;

			leaf_copy(la, la->nr, lb, 0, lb->nr);
			la->nr += lb->nr;
			/* la gains lb's gaps and the one between them */
			la->nblk += lb->nblk;
			if (lb->nmax && lb->maxgap > la->maxgap) {
				la->maxgap = lb->maxgap;
				la->nmax = lb->nmax;
			} else if (lb->nmax && lb->maxgap == la->maxgap) {
				la->nmax += lb->nmax;
			}
			leaf_add_gaps(la, anr, anr);
			if (!la->nmax)
				leaf_regaps(la);
			drop_leaf(t, lb);
		} else {
			struct inner *ia = a, *ib = b;

			inner_copy(ia, ia->nr, ib, 0, ib->nr);
			ia->nr += ib->nr;
			inner_recalc(ia);
			drop_inner(t, ib);
		}
		inner_close(par, x + 1, 1);
		slot_set(par, x, leafkid);
		inner_recalc(par);
		return;
	}
	if (leafkid)
		leaf_balance(a, b);
	else
		inner_balance(a, b);
	refresh(par, x, leafkid);
	refresh(par, x + 1, leafkid);
}

/* Give back the reserve (an empty tree keeps no chunk busy with it) */
static void drop_spares(struct iova_tree *t)
{
	node_free(t, t->spare_leaf);
	t->spare_leaf = NULL;
	while (t->spare_inner) {
		struct inner *n = t->spare_inner;

		t->spare_inner = n->slot[0].child;
		node_free(t, n);
	}
	t->nr_spare_inner = 0;
}

static void shrink_root(struct iova_tree *t)
{
	while (t->height > 1) {
		struct inner *r = t->root;

		if (r->nr > 1)
			return;
		t->root = r->nr ? r->slot[0].child : NULL;
		t->height = r->nr ? t->height - 1 : 0;
		drop_inner(t, r);
	}
	if (t->height == 1 && ((struct leaf *)t->root)->nr == 0) {
		drop_leaf(t, t->root);
		t->root = NULL;
		t->height = 0;
	}
	if (!t->root)
		drop_spares(t);
}

static void fix_up(struct iova_tree *t, struct iova_tree_path *p)
{
	int lv;

	for (lv = t->height - 2; lv >= 0; lv--) {
		struct inner *par = p->node[lv];
		int j = p->idx[lv];
		bool leafkid = lv == t->height - 2;
		void *c = par->slot[j].child;
		uint32_t cnr = node_nr(c, leafkid);

		if (cnr == 0) {
			if (leafkid)
				drop_leaf(t, c);
			else
				drop_inner(t, c);
			inner_close(par, j, 1);
			inner_recalc(par);
		} else if ((int)cnr < t->cap / 2) {
			rebalance(t, par, j, leafkid);
		} else if (!refresh(par, j, leafkid)) {
			break;	/* unchanged summary: ancestors unchanged too */
		}
	}
	shrink_root(t);
}

struct rm_ctx {
	uint64_t a;
	uint64_t b;
	unsigned int kinds;
	iova_tree_unmapped_fn cb;
	void *ctx;
	uint64_t pages;
};

static void count_area(struct iova_tree *t, uint64_t offp, int64_t nr,
		       int64_t pages)
{
	if (offp & OFFP_BLOCKED) {
		t->nr_blk += nr;
		t->pg_blk += pages;
	} else {
		t->nr_map += nr;
		t->pg_map += pages;
	}
}

/*
 * Hand the piece [pa, pb] of @e to the caller: @cuts get()s for the extra
 * pieces the cut creates, the unmapped callback, then the put() of the
 * piece.
 */
static void give_piece(struct iova_tree *t, struct rm_ctx *rc,
		       const struct ent *e, uint64_t pa, uint64_t pb, int cuts)
{
	bool map = !(e->p.offp & OFFP_BLOCKED);
	void *backing = (void *)e->p.data;
	uint64_t pages = (pb - pa + 1) >> IOVA_TREE_PAGE_SHIFT;
	struct iova_area piece;

	if (map && t->ops.get) {
		while (cuts--)
			t->ops.get(backing);
	}
	if (rc->cb) {
		piece_of(e, pa, pb, &piece);
		rc->cb(rc->ctx, &piece);
	}
	if (map && t->ops.put)
		t->ops.put(backing);
	count_area(t, e->p.offp, 0, -(int64_t)pages);
	rc->pages += pages;
}

/*
 * Remove/trim the matching entries of one leaf, starting at the entry @p
 * points to. Returns true when the range is finished, else sets *@next to
 * where the next leaf's pass must start.
 */
static bool leaf_remove(struct iova_tree *t, struct iova_tree_path *p,
			struct rm_ctx *rc, uint64_t *next)
{
	int r, w, i, nblk = 0;
	struct leaf *l = path_leaf(t, p, &i);
	int nr0 = (int)l->nr;
	uint64_t seen = 0, prev = i > 0 ? l->pay[i - 1].last : 0;
	struct ent e;

	/*
	 * The gaps before entries [i, r] are replaced by the gaps before the
	 * entries [i, w] left there: take the old ones out of the largest-gap
	 * count as they are read (the leaf is rewritten behind the reader).
	 */
	for (r = w = i; r < (int)l->nr && l->iova[r] <= rc->b; r++) {
		leaf_get(l, r, &e);
		if (r > 0)
			maxgap_del(&l->maxgap, &l->nmax, e.iova - prev - 1);
		prev = e.p.last;
		seen = e.p.last;
		if (!(ent_kind(e.p.offp) & rc->kinds)) {
			leaf_set(l, w++, &e);
			continue;
		}
		if (e.iova < rc->a) {
			/* keep the head: only the first entry can be here */
			give_piece(t, rc, &e, rc->a, e.p.last, 1);
			e.p.last = rc->a - 1;
			leaf_set(l, w++, &e);
		} else if (e.p.last > rc->b) {
			/* keep the tail, its file offset moves along */
			give_piece(t, rc, &e, e.iova, rc->b, 1);
			if (!(e.p.offp & OFFP_BLOCKED))
				e.p.offp += rc->b + 1 - e.iova;
			e.iova = rc->b + 1;
			leaf_set(l, w++, &e);
		} else {
			give_piece(t, rc, &e, e.iova, e.p.last, 0);
			count_area(t, e.p.offp, -1, 0);
			nblk += !!(e.p.offp & OFFP_BLOCKED);
		}
	}
	if (r > 0 && r < nr0)
		maxgap_del(&l->maxgap, &l->nmax, l->iova[r] - prev - 1);
	if (w < r)
		leaf_close(l, w, r - w);
	l->nblk -= nblk;
	leaf_add_gaps(l, i, w);
	if (!l->nmax)
		leaf_regaps(l);
	if (r < nr0 || r == i || seen >= rc->b)
		return true;
	*next = seen + 1;
	return false;
}

/*
 * Punch [a, b] out of the middle of the entry @p points to: it keeps the
 * head, a new entry takes the tail. The reserve must be filled.
 */
static void punch(struct iova_tree *t, struct iova_tree_path *p,
		  struct rm_ctx *rc)
{
	struct ent e, tail;
	int i;
	struct leaf *l = path_leaf(t, p, &i);

	leaf_get(l, i, &e);
	give_piece(t, rc, &e, rc->a, rc->b, 2);
	tail = e;
	tail.iova = rc->b + 1;
	if (!(e.p.offp & OFFP_BLOCKED))
		tail.p.offp += rc->b + 1 - e.iova;
	if (i + 1 < (int)l->nr)
		maxgap_del(&l->maxgap, &l->nmax, leaf_gap(l, i + 1));
	l->pay[i].last = rc->a - 1;
	leaf_add_gaps(l, i + 1, i + 1);
	if (!l->nmax)
		leaf_regaps(l);
	fix_up(t, p);
	tree_insert_ent(t, &tail);
	count_area(t, e.p.offp, 1, 0);
}

/*
 * @start: the path to the first piece, already found (by a walk of the
 * range since which the tree did not change), or NULL to find it here.
 */
static int remove_range_from(struct iova_tree *t, uint64_t a, uint64_t b,
			     unsigned int kinds, iova_tree_unmapped_fn cb,
			     void *ctx, uint64_t *removed,
			     const struct iova_tree_path *start)
{
	struct rm_ctx rc = { .a = a, .b = b, .kinds = kinds, .cb = cb,
			     .ctx = ctx };
	struct iova_tree_path p;
	uint64_t next = a;
	struct leaf *l;
	int i, ret;

	if (!kinds || (kinds & ~IOVA_TREE_ALL))
		return -EINVAL;
	if (start)
		p = *start;
	else if (!find_first_wr(t, a, b, kinds, &p, true))
		goto out;
	l = path_leaf(t, &p, &i);
	if (l->iova[i] < a && l->pay[i].last > b) {
		ret = tree_reserve(t);
		if (ret)
			return ret;
		punch(t, &p, &rc);
		goto out;
	}
	for (;;) {
		bool done = leaf_remove(t, &p, &rc, &next);

		fix_up(t, &p);
		if (done || !find_first(t, next, b, kinds, &p))
			break;
	}
out:
	if (rc.pages)
		t->gen++;
	if (removed)
		*removed = pages_to_bytes_sat(rc.pages);
	return 0;
}

static int remove_range(struct iova_tree *t, uint64_t a, uint64_t b,
			unsigned int kinds, iova_tree_unmapped_fn cb,
			void *ctx, uint64_t *removed)
{
	return remove_range_from(t, a, b, kinds, cb, ctx, removed, NULL);
}

/* ------------------------------------------------------------------ */
/* argument checks */

static int check_range(uint64_t iova, uint64_t length, uint64_t *last)
{
	if (!length || (iova & PAGE_MASK_LO) || (length & PAGE_MASK_LO))
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, last))
		return -EOVERFLOW;
	return 0;
}

static int check_kinds(unsigned int kinds)
{
	return (!kinds || (kinds & ~IOVA_TREE_ALL)) ? -EINVAL : 0;
}

/* Validate @a and pack it; a->iova is taken as given */
static int area_to_ent(const struct iova_area *a, struct ent *e)
{
	uint64_t end;
	int ret;

	if (a->kind != IOVA_AREA_MAPPING && a->kind != IOVA_AREA_BLOCKED)
		return -EINVAL;
	if (a->kind == IOVA_AREA_MAPPING &&
	    ((a->offset & PAGE_MASK_LO) || (a->prot & ~IOVA_PROT_MASK)))
		return -EINVAL;
	ret = check_range(a->iova, a->length, &e->p.last);
	if (ret)
		return ret;
	e->iova = a->iova;
	if (a->kind == IOVA_AREA_BLOCKED) {
		e->p.offp = OFFP_BLOCKED;
		e->p.data = a->reason;
		return 0;
	}
	if (__builtin_add_overflow(a->offset, a->length - 1, &end))
		return -EOVERFLOW;
	e->p.offp = a->offset | a->prot;
	e->p.data = (uintptr_t)a->backing;
	return 0;
}

static int make_ffreq(uint64_t min, uint64_t max, uint64_t length,
		      uint64_t alignment, struct ffreq *r)
{
	if (!length || (length & PAGE_MASK_LO) || !alignment ||
	    (alignment & (alignment - 1)) || min > max)
		return -EINVAL;
	r->align = alignment < PAGE_SZ ? PAGE_SZ : alignment;
	r->lo = max_u64(min, PAGE_SZ);	/* never hand out IOVA 0 */
	r->hi = max;
	r->len = length;
	return 0;
}

/* ------------------------------------------------------------------ */
/* public API */

int iova_tree_new(const struct iova_tree_ops *ops, struct iova_tree **out)
{
	struct iova_tree tmp = { 0 };
	struct iova_tree *t;

	tmp.cap = LEAF_CAP;
	if (ops) {
		if (!ops->alloc != !ops->free)
			return -EINVAL;
		if (ops->node_cap && (ops->node_cap < MIN_CAP ||
				      ops->node_cap > LEAF_CAP))
			return -EINVAL;
		if (ops->node_cap)
			tmp.cap = (int)ops->node_cap;
		tmp.ops = *ops;
		tmp.no_arena = ops->alloc != NULL;
	}
	t = mem_alloc(&tmp, sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = tmp;
	*out = t;
	return 0;
}

static void free_rec(struct iova_tree *t, void *node, int level)
{
	int i;

	if (level == t->height - 1) {
		struct leaf *l = node;

		for (i = 0; i < (int)l->nr && t->ops.put; i++) {
			if (!(l->pay[i].offp & OFFP_BLOCKED))
				t->ops.put((void *)l->pay[i].data);
		}
		node_free(t, l);
		return;
	}
	for (i = 0; i < (int)((struct inner *)node)->nr; i++)
		free_rec(t, ((struct inner *)node)->slot[i].child, level + 1);
	node_free(t, node);
}

void iova_tree_free(struct iova_tree *t)
{
	if (!t)
		return;
	if (t->root)
		free_rec(t, t->root, 0);
	drop_spares(t);
	while (t->partial)
		chunk_del(t, t->partial);	/* the kept empty one */
	if (t->ops.free)
		t->ops.free(t->ops.alloc_ctx, t, sizeof(*t));
	else
		free(t);
}

static int do_insert(struct iova_tree *t, const struct ent *e)
{
	struct iova_tree_path p;
	int ret;

	ret = tree_reserve(t);
	if (ret) {
		/* an overlap is reported first, as without the fused check */
		if (find_first(t, e->iova, e->p.last, IOVA_TREE_ALL, &p))
			goto overlap;
		return ret;
	}
	if (!tree_insert_checked(t, e, true))
		goto overlap;
	count_area(t, e->p.offp, 1,
		   (int64_t)((e->p.last - e->iova + 1) >> IOVA_TREE_PAGE_SHIFT));
	t->gen++;
	return 0;
overlap:
	if (find_first(t, e->iova, e->p.last, IOVA_TREE_BLOCKED, &p))
		return -EADDRINUSE;
	return -EEXIST;
}

int iova_tree_insert(struct iova_tree *t, const struct iova_area *a)
{
	struct ent e;
	int ret = area_to_ent(a, &e);

	if (ret)
		return ret;
	return do_insert(t, &e);
}

int iova_tree_find_free(const struct iova_tree *t, uint64_t min, uint64_t max,
			uint64_t length, uint64_t alignment, uint64_t *iova)
{
	struct ffreq r;
	int ret = make_ffreq(min, max, length, alignment, &r);

	if (ret)
		return ret;
	return find_free(t, &r, iova);
}

int iova_tree_alloc(struct iova_tree *t, uint64_t min, uint64_t max,
		    uint64_t alignment, const struct iova_area *a,
		    uint64_t *iova)
{
	struct iova_area tmp = *a;
	struct ffreq r;
	struct ent e;
	uint64_t x;
	int ret;

	/* validate everything but the IOVA, which is not chosen yet */
	tmp.iova = 0;
	ret = area_to_ent(&tmp, &e);
	if (ret)
		return ret;
	ret = make_ffreq(min, max, a->length, alignment, &r);
	if (ret)
		return ret;
	ret = find_free(t, &r, &x);
	if (ret)
		return ret;
	ret = tree_reserve(t);
	if (ret)
		return ret;
	e.iova = x;
	e.p.last = x + a->length - 1;
	tree_insert_ent(t, &e);
	count_area(t, e.p.offp, 1,
		   (int64_t)(a->length >> IOVA_TREE_PAGE_SHIFT));
	t->gen++;
	*iova = x;
	return 0;
}

int iova_tree_remove(struct iova_tree *t, uint64_t iova, uint64_t length,
		     unsigned int kinds, iova_tree_unmapped_fn unmapped,
		     void *ctx, uint64_t *removed)
{
	uint64_t last;
	int ret = check_range(iova, length, &last);

	if (!ret)
		ret = check_kinds(kinds);
	if (ret)
		return ret;
	return remove_range(t, iova, last, kinds, unmapped, ctx, removed);
}

int iova_tree_remove_all(struct iova_tree *t, unsigned int kinds,
			 iova_tree_unmapped_fn unmapped, void *ctx,
			 uint64_t *removed)
{
	int ret = check_kinds(kinds);

	if (ret)
		return ret;
	return remove_range(t, 0, UINT64_MAX, kinds, unmapped, ctx, removed);
}

/*
 * The walk of iova_tree_for_each_piece() (@fn) and iova_tree_walk_range()
 * (@afn, which also gets the whole area): @cur, if not NULL, records the
 * range and the path to its first piece.
 */
static int walk_range(const struct iova_tree *t, uint64_t iova,
		      uint64_t length, unsigned int kinds,
		      iova_tree_visit_fn fn, iova_tree_area_fn afn, void *ctx,
		      struct iova_tree_cursor *cur)
{
	struct iova_tree_path p;
	struct iova_area piece, whole;
	struct leaf *l;
	struct ent e;
	uint64_t b, gen;
	int i, ret = check_range(iova, length, &b);

	if (!ret)
		ret = check_kinds(kinds);
	if (ret)
		return ret;
	if (cur) {
		cur->tree = t;
		cur->gen = t->gen;
		cur->iova = iova;
		cur->last = b;
		cur->kinds = kinds;
		cur->found = false;
	}
	if (!find_first(t, iova, b, kinds, &p))
		return 0;
	if (cur) {
		cur->found = true;
		cur->path = p;
	}
	for (;;) {
		l = path_leaf(t, &p, &i);
		leaf_get(l, i, &e);
		if (e.iova > b)
			return 0;
		gen = t->gen;
		if (ent_kind(e.p.offp) & kinds) {
			piece_of(&e, max_u64(e.iova, iova),
				 min_u64(e.p.last, b), &piece);
			if (afn) {
				ent_to_area(&e, &whole);
				ret = afn(ctx, &piece, &whole);
			} else {
				ret = fn(ctx, &piece);
			}
			if (ret)
				return ret;
		}
		if (e.p.last >= b)
			return 0;
		if (t->gen != gen) {
			/* @fn changed the tree: the path is stale, find our
			 * place again after the piece just visited */
			if (!find_first(t, e.p.last + 1, b, kinds, &p))
				return 0;
			continue;
		}
		/* walk neighbours when all kinds match, else skip subtrees */
		if (kinds == IOVA_TREE_ALL) {
			if (!path_next(t, &p))
				return 0;
		} else if (!find_first(t, e.p.last + 1, b, kinds, &p)) {
			return 0;
		}
	}
}

int iova_tree_for_each_piece(const struct iova_tree *t, uint64_t iova,
			     uint64_t length, unsigned int kinds,
			     iova_tree_visit_fn fn, void *ctx)
{
	return walk_range(t, iova, length, kinds, fn, NULL, ctx, NULL);
}

int iova_tree_walk_range(const struct iova_tree *t, uint64_t iova,
			 uint64_t length, unsigned int kinds,
			 iova_tree_area_fn fn, void *ctx,
			 struct iova_tree_cursor *cur)
{
	if (!fn || !cur)
		return -EINVAL;
	return walk_range(t, iova, length, kinds, NULL, fn, ctx, cur);
}

int iova_tree_remove_walked(struct iova_tree *t,
			    const struct iova_tree_cursor *cur,
			    iova_tree_unmapped_fn unmapped, void *ctx,
			    uint64_t *removed)
{
	if (!cur || cur->tree != t)
		return -EINVAL;
	if (cur->gen != t->gen)	/* changed since: find the range again */
		return remove_range(t, cur->iova, cur->last, cur->kinds,
				    unmapped, ctx, removed);
	if (!cur->found) {
		if (removed)
			*removed = 0;
		return 0;
	}
	return remove_range_from(t, cur->iova, cur->last, cur->kinds,
				 unmapped, ctx, removed, &cur->path);
}

int iova_tree_first_overlap(const struct iova_tree *t, uint64_t iova,
			    uint64_t length, unsigned int kinds,
			    struct iova_area *out)
{
	struct iova_tree_path p;
	struct leaf *l;
	struct ent e;
	uint64_t last;
	int i, ret = check_range(iova, length, &last);

	if (!ret)
		ret = check_kinds(kinds);
	if (ret)
		return ret;
	if (!find_first(t, iova, last, kinds, &p))
		return -ENOENT;
	if (out) {
		l = path_leaf(t, &p, &i);
		leaf_get(l, i, &e);
		ent_to_area(&e, out);
	}
	return 0;
}

int iova_tree_lookup(const struct iova_tree *t, uint64_t iova,
		     struct iova_area *out)
{
	const void *node = t->root;
	const struct leaf *l;
	int lv, i, hint = -1;
	struct ent e;

	if (!node)
		return -ENOENT;
	for (lv = 0; lv < t->height - 1; lv++) {
		const struct inner *n = node;

		i = count_le_hint(n->start, n->nr, iova, hint);
		if (!i)
			return -ENOENT;
		hint = prefetch_child(n, i - 1, iova, lv + 1 == t->height - 1);
		node = n->slot[i - 1].child;
	}
	l = node;
	i = count_le_hint(l->iova, l->nr, iova, hint);
	if (!i || l->pay[i - 1].last < iova)
		return -ENOENT;
	if (out) {
		leaf_get(l, i - 1, &e);
		ent_to_area(&e, out);
	}
	return 0;
}

void iova_tree_stats(const struct iova_tree *t, struct iova_tree_stats *st)
{
	st->nr_mappings = t->nr_map;
	st->nr_blocked = t->nr_blk;
	st->bytes_mapped = pages_to_bytes_sat(t->pg_map);
	st->bytes_blocked = pages_to_bytes_sat(t->pg_blk);
	/* the arena's chunks whole, not only the nodes in use */
	st->mem_bytes = t->mem - t->arena_nodes * sizeof(struct leaf) +
			t->nr_chunks * CHUNK_SZ;
	st->height = (uint32_t)t->height;
	st->nr_leaves = t->nr_leaves;
	st->nr_inner = t->nr_inner;
}

uint64_t iova_tree_count(const struct iova_tree *t)
{
	return t->nr_map + t->nr_blk;
}

uint64_t iova_tree_bytes_mapped(const struct iova_tree *t)
{
	return pages_to_bytes_sat(t->pg_map);
}

void iova_tree_iter_start(struct iova_tree_iter *it, const struct iova_tree *t,
			  uint64_t iova)
{
	it->tree = t;
	it->gen = t->gen;
	it->valid = find_first(t, iova, UINT64_MAX, IOVA_TREE_ALL, &it->path);
}

int iova_tree_iter_next(struct iova_tree_iter *it, struct iova_area *out)
{
	const struct iova_tree *t = it->tree;
	struct leaf *l;
	struct ent e;
	int i;

	if (it->gen != t->gen)
		return -ESTALE;
	if (!it->valid)
		return -ENOENT;
	l = path_leaf(t, &it->path, &i);
	leaf_get(l, i, &e);
	ent_to_area(&e, out);
	it->valid = path_next(t, &it->path);
	return 0;
}

/* ------------------------------------------------------------------ */
/* validation */

struct vstate {
	bool have_prev;
	uint64_t prev_last;
	uint64_t nr_map, nr_blk, pg_map, pg_blk;
	uint64_t nr_leaves, nr_inner;
};

static int val_leaf(const struct iova_tree *t, const struct leaf *l,
		    struct vstate *vs)
{
	uint64_t gap;
	uint16_t nmax;
	int i, nblk;

	if (l->nr < 1 || (int)l->nr > t->cap)
		return -EUCLEAN;
	for (i = 0; i < (int)l->nr; i++) {
		uint64_t a = l->iova[i], z = l->pay[i].last;
		uint64_t offp = l->pay[i].offp;

		if ((a & PAGE_MASK_LO) || (z & PAGE_MASK_LO) != PAGE_MASK_LO ||
		    z < a)
			return -EUCLEAN;
		if (vs->have_prev && a <= vs->prev_last)
			return -EUCLEAN;
		if ((offp & OFFP_BLOCKED) && offp != OFFP_BLOCKED)
			return -EUCLEAN;
		vs->have_prev = true;
		vs->prev_last = z;
		if (offp & OFFP_BLOCKED) {
			vs->nr_blk++;
			vs->pg_blk += (z - a + 1) >> IOVA_TREE_PAGE_SHIFT;
		} else {
			vs->nr_map++;
			vs->pg_map += (z - a + 1) >> IOVA_TREE_PAGE_SHIFT;
		}
	}
	vs->nr_leaves++;
	gap = 0;
	nmax = 0;
	for (i = 1; i < (int)l->nr; i++)
		maxgap_add(&gap, &nmax, leaf_gap(l, i));
	if (gap != l->maxgap || nmax != l->nmax)
		return -EUCLEAN;
	for (i = 0, nblk = 0; i < (int)l->nr; i++)
		nblk += !!(l->pay[i].offp & OFFP_BLOCKED);
	if (nblk != l->nblk)
		return -EUCLEAN;
	return 0;
}

static int val_rec(const struct iova_tree *t, const void *node, int level,
		   struct vstate *vs)
{
	const struct inner *n = node;
	bool leafkid = level + 1 == t->height - 1;
	uint64_t gap = 0, fl = 0;
	uint16_t nmax = 0;
	struct summ s;
	int j, ret;

	if (level == t->height - 1)
		return val_leaf(t, node, vs);
	if (n->nr < 1 || (int)n->nr > t->cap || (level == 0 && n->nr < 2))
		return -EUCLEAN;
	for (j = 0; j < (int)n->nr; j++) {
		ret = val_rec(t, n->slot[j].child, level + 1, vs);
		if (ret)
			return ret;
		node_summ(n->slot[j].child, leafkid, &s);
		if (s.start != n->start[j] || s.last != n->slot[j].last ||
		    s.gapf != n->slot[j].gapf)
			return -EUCLEAN;
		maxgap_add(&gap, &nmax, gap_of(n->slot[j].gapf));
		if (j)
			maxgap_add(&gap, &nmax, inner_gap(n, j));
		fl |= n->slot[j].gapf & GF_KINDS;
	}
	if (gap != n->maxgap || nmax != n->nmax || fl != n->flags)
		return -EUCLEAN;
	vs->nr_inner++;
	return 0;
}

int iova_tree_validate(const struct iova_tree *t)
{
	struct vstate vs = { 0 };
	uint64_t mem;
	int ret;

	if (!t->root) {
		if (t->height != 0)
			return -EUCLEAN;
	} else {
		if (t->height < 1 || t->height > MAX_HEIGHT)
			return -EUCLEAN;
		ret = val_rec(t, t->root, 0, &vs);
		if (ret)
			return ret;
	}
	if (vs.nr_map != t->nr_map || vs.nr_blk != t->nr_blk ||
	    vs.pg_map != t->pg_map || vs.pg_blk != t->pg_blk ||
	    vs.nr_leaves != t->nr_leaves || vs.nr_inner != t->nr_inner)
		return -EUCLEAN;
	mem = sizeof(*t) + (vs.nr_leaves + !!t->spare_leaf) * sizeof(struct leaf) +
	      (vs.nr_inner + (uint64_t)t->nr_spare_inner) * sizeof(struct inner);
	if (mem != t->mem)
		return -EUCLEAN;
	return 0;
}
