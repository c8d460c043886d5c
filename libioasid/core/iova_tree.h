/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iova_tree - bookkeeping of the IOVA extents ("areas") of one IOAS.
 *
 * NOTES FOR THE INTEGRATOR
 *  - Self-contained: needs only libc (no other project headers, no libm, no
 *    threads), gnu11 (__builtin_add_overflow, __builtin_prefetch). Sources:
 *    libioasid/core/iova_tree.{c,h}. Tests: tests/test_iova_tree.c
 *    (criterion; link with iova_tree.c and -lcriterion; ~3 s plain, ~6 s
 *    under ASan+UBSan). Bench: bench/bench_iova_tree.c (standalone main,
 *    link with iova_tree.c only; build it with -O2; --quick for n <= 1M,
 *    ~1 min; the default also runs 16M areas, ~3-4 min and ~1.5 GB RAM).
 *    Both include this header as "../libioasid/core/iova_tree.h", so no -I
 *    is needed.
 *  - Not thread safe and no internal locking: the tree is single-writer. The
 *    IOAS layer must serialise every call with its own lock (readers may
 *    share a read lock among themselves only if no writer runs; the
 *    read-only functions take a const tree and never modify it).
 *  - Everything is 4 KiB granular (IOVA_TREE_PAGE_SIZE): iova, length and
 *    file offset must be multiples of 4096, length > 0, else -EINVAL.
 *  - Areas are never merged: two adjacent mappings stay two areas. One
 *    area is at most 2^64 - 4096 bytes (a u64 length): covering all 2^64
 *    bytes takes two areas, e.g. [0, 2^63) and [2^63, 2^64).
 *  - Fixed-IOVA insert checks, in this order: -EINVAL (bad arguments),
 *    -EOVERFLOW (iova + length - 1 or offset + length - 1 wraps),
 *    -EADDRINUSE (overlaps a BLOCKED area), -EEXIST (overlaps a MAPPING),
 *    -ENOMEM. Blocked-before-mapping follows Linux iommufd's
 *    iopt_check_iova(), which tests the reserved ranges before the areas
 *    (it returns -EINVAL there; we use -EADDRINUSE, the code iommufd uses
 *    for reserved-range clashes elsewhere). Inserting a BLOCKED area uses
 *    the same order, so two BLOCKED areas may not overlap either: a caller
 *    with overlapping reserved regions must merge/refcount them itself.
 *  - Reference counting of the opaque backing pointer (ops->get/put, either
 *    may be NULL): the tree owns exactly one reference per MAPPING area it
 *    stores. A successful insert takes over the caller's reference (on
 *    failure the caller keeps it). Cutting an area in two calls get() once;
 *    every removed piece calls put() once, after the unmapped callback for
 *    that piece. The get() of a cut comes before the put() of the piece cut
 *    off, so a refcount never drops to zero while an area still references
 *    the backing. Net effect: removing a whole area = 1 put; trimming one
 *    end = get + put; punching a hole = 2 get + 1 put. iova_tree_free()
 *    puts every remaining mapping.
 *  - Removal is atomic: the only removal that needs memory is punching a
 *    hole inside one area, and the tree preallocates the worst-case number
 *    of nodes before touching anything, so -ENOMEM leaves it unchanged and
 *    no callback has been called. Recommended IOAS unmap sequence (under
 *    the IOAS lock): optionally inspect with iova_tree_for_each_piece()
 *    (e.g. to enforce "unmap must cover whole mappings"), then
 *    iova_tree_remove() with an unmapped() callback that removes each piece
 *    from the hardware page tables; the callback runs before the piece
 *    leaves the tree and before its put(). The unmapped() callback and the
 *    get/put/alloc/free hooks must not call into the tree. Visitors of
 *    iova_tree_for_each_piece() may call anything, even modify the tree
 *    (e.g. IOAS_COPY within one IOAS): the walk then resumes after the
 *    piece just visited, against the current contents.
 *  - Byte totals (removed, bytes_mapped) saturate at UINT64_MAX: the only
 *    case is a tree covering all 2^64 bytes.
 *  - "Unchanged on error" is about the contents: a failed operation may
 *    still have grown the tree's small node reserve (mem_bytes).
 *  - Iterators are invalidated by any modification; iova_tree_iter_next()
 *    then returns -ESTALE instead of reading freed memory.
 *  - Memory (all node bytes / areas, iova_tree_stats().mem_bytes): ~33
 *    bytes per area after ascending/descending or allocator fills, ~38
 *    after random-order fills, below ~52 after heavy random deletion (nodes
 *    under half full are merged or borrowed from). No cap on the number of
 *    areas (the height limit of 24 is unreachable).
 *  - Node memory without ops->alloc: a tree of more than 128 nodes (about
 *    12,000 areas) takes further nodes from 2 MiB aligned chunks it maps
 *    itself with madvise(MADV_HUGEPAGE), so that a large tree sits on
 *    transparent huge pages where the system allows them (THP "madvise" or
 *    "always"; with "never" they are plain pages). A chunk is unmapped when
 *    its last node is freed (one empty chunk is kept); a tree that shrinks
 *    keeps a chunk that still holds one node, so memory comes back only as
 *    chunks empty, and all of it at iova_tree_free(). mem_bytes counts the
 *    chunks whole. If mmap fails the tree falls back to malloc. With
 *    ops->alloc every node comes from it, as before.
 *  - Speed: lookups interpolate where a key falls in each node, so they are
 *    fastest for regular layouts (guest RAM mapped page by page) and stay
 *    O(log n) otherwise. IOVA allocation is O(log n) through the gap
 *    augmentation; the exception is a space full of holes that are large
 *    enough but cannot hold an aligned block (length <= hole < length +
 *    alignment - 4 KiB), each of which below the answer is looked at.
 */
#ifndef IOASID_IOVA_TREE_H
#define IOASID_IOVA_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOVA_TREE_PAGE_SHIFT	12
#define IOVA_TREE_PAGE_SIZE	(1ULL << IOVA_TREE_PAGE_SHIFT)

/* Protection bits stored with a mapping; the tree only stores them. */
#define IOVA_PROT_READ		(1U << 0)
#define IOVA_PROT_WRITE		(1U << 1)
#define IOVA_PROT_MASK		0x7ffU	/* any bits in here are accepted */

enum iova_area_kind {
	IOVA_AREA_MAPPING = 1,
	IOVA_AREA_BLOCKED = 2,
};

/* Kind masks for the functions taking "kinds" */
#define IOVA_TREE_MAPPINGS	((unsigned int)IOVA_AREA_MAPPING)
#define IOVA_TREE_BLOCKED	((unsigned int)IOVA_AREA_BLOCKED)
#define IOVA_TREE_ALL		(IOVA_TREE_MAPPINGS | IOVA_TREE_BLOCKED)

/*
 * One area, or one piece of an area, copied in or out of the tree.
 * For MAPPING: backing, offset (file offset of @iova) and prot are used,
 * reason is 0. For BLOCKED: reason is used, backing/offset/prot are 0.
 */
struct iova_area {
	uint64_t iova;
	uint64_t length;
	uint64_t offset;
	void *backing;
	uint32_t prot;
	uint32_t reason;
	enum iova_area_kind kind;
};

struct iova_tree_ops {
	void (*get)(void *backing);	/* an area was cut: one more piece */
	void (*put)(void *backing);	/* a piece left the tree */
	/*
	 * Optional node allocator, e.g. for per-IOAS memory accounting and
	 * limits, or fault injection: both or neither. NULL: malloc/free.
	 * alloc may fail (NULL); the tree then returns -ENOMEM, unchanged.
	 */
	void *(*alloc)(void *alloc_ctx, size_t size);
	void (*free)(void *alloc_ctx, void *p, size_t size);
	void *alloc_ctx;
	/*
	 * Testing only: entries per node, 4..128, to get deep trees from few
	 * areas. 0 = the default (128), which is what production wants.
	 */
	unsigned int node_cap;
};

struct iova_tree_stats {
	uint64_t nr_mappings;
	uint64_t nr_blocked;
	uint64_t bytes_mapped;		/* saturating */
	uint64_t bytes_blocked;		/* saturating */
	uint64_t mem_bytes;		/* every byte the tree allocated */
	uint32_t height;		/* 0 = empty, 1 = a single leaf */
	uint64_t nr_leaves;
	uint64_t nr_inner;
};

struct iova_tree;

/* Called for each piece a removal takes out, before it leaves the tree. */
typedef void (*iova_tree_unmapped_fn)(void *ctx, const struct iova_area *piece);
/* Visitor: return 0 to continue, anything else stops and is returned. */
typedef int (*iova_tree_visit_fn)(void *ctx, const struct iova_area *piece);

/* @ops is copied; NULL means no refcounting and malloc. -EINVAL, -ENOMEM. */
int iova_tree_new(const struct iova_tree_ops *ops, struct iova_tree **out);
/* put()s every mapping, frees everything. NULL is a no-op. */
void iova_tree_free(struct iova_tree *t);

/*
 * Insert @a (kind MAPPING or BLOCKED) at the fixed IOVA a->iova.
 * -EINVAL: bad kind, alignment, zero length, prot outside IOVA_PROT_MASK;
 * -EOVERFLOW; -EADDRINUSE; -EEXIST; -ENOMEM. Unchanged on any error.
 */
int iova_tree_insert(struct iova_tree *t, const struct iova_area *a);

/*
 * Find the lowest IOVA x with x % @alignment == 0, x != 0,
 * [x, x + @length - 1] inside [@min, @max] (inclusive bounds) and free of
 * any area. @alignment is a power of two (values below 4096 mean 4096).
 * -EINVAL (bad length/alignment, min > max), -ENOSPC (no such hole).
 */
int iova_tree_find_free(const struct iova_tree *t, uint64_t min, uint64_t max,
			uint64_t length, uint64_t alignment, uint64_t *iova);

/*
 * iova_tree_find_free() + iova_tree_insert() of @a at the IOVA found, which
 * is also stored in *@iova. a->iova is ignored. -EINVAL, -EOVERFLOW (file
 * offset), -ENOSPC, -ENOMEM; unchanged on error.
 */
int iova_tree_alloc(struct iova_tree *t, uint64_t min, uint64_t max,
		    uint64_t alignment, const struct iova_area *a,
		    uint64_t *iova);

/*
 * Remove every piece of the areas of a kind in @kinds inside
 * [@iova, @iova + @length), cutting areas at the range ends; outside pieces
 * keep their backing, with the offset moved along. @unmapped (may be NULL)
 * sees each removed piece first. *@removed (may be NULL) gets the bytes
 * removed; 0 if nothing was there (not an error).
 * -EINVAL, -EOVERFLOW, -ENOMEM (only when a hole is punched inside one
 * area; then nothing changed).
 */
int iova_tree_remove(struct iova_tree *t, uint64_t iova, uint64_t length,
		     unsigned int kinds, iova_tree_unmapped_fn unmapped,
		     void *ctx, uint64_t *removed);
/* Same over the whole 64-bit space (cannot fail but for -EINVAL kinds). */
int iova_tree_remove_all(struct iova_tree *t, unsigned int kinds,
			 iova_tree_unmapped_fn unmapped, void *ctx,
			 uint64_t *removed);

/*
 * Call @fn for each piece (area clipped to the range) of a kind in @kinds
 * inside [@iova, @iova + @length), in IOVA order, without changing anything:
 * exactly the pieces iova_tree_remove() would remove. Returns 0, @fn's
 * non-zero return value, -EINVAL or -EOVERFLOW. @fn may modify the tree
 * (through a non-const pointer of its own); the walk then continues after
 * the piece it was given.
 */
int iova_tree_for_each_piece(const struct iova_tree *t, uint64_t iova,
			     uint64_t length, unsigned int kinds,
			     iova_tree_visit_fn fn, void *ctx);

/*
 * What iova_tree_remove() of the same range would remove, walked once so
 * that the removal need not search for it again: @fn gets each piece (as
 * iova_tree_for_each_piece() gives it) and the whole area it is cut from,
 * in IOVA order; a non-zero return stops the walk and is returned. *@cur
 * records the range and where its first piece is; then
 * iova_tree_remove_walked() removes exactly those pieces, starting there
 * without a descent when the tree has not changed since the walk (else
 * it searches as iova_tree_remove() does). An IOAS unmap that looks at
 * its pieces, unmaps them in hardware and then drops them from the tree
 * thus descends once. 0, @fn's return value, -EINVAL (also NULL @fn or
 * @cur), -EOVERFLOW. @fn must not modify the tree (if it does, the removal
 * only loses its shortcut).
 */
struct iova_tree_cursor;
typedef int (*iova_tree_area_fn)(void *ctx, const struct iova_area *piece,
				 const struct iova_area *whole);
int iova_tree_walk_range(const struct iova_tree *t, uint64_t iova,
			 uint64_t length, unsigned int kinds,
			 iova_tree_area_fn fn, void *ctx,
			 struct iova_tree_cursor *cur);
/*
 * Remove what the walk into @cur covered (see iova_tree_remove() for the
 * callbacks, *@removed and -ENOMEM). -EINVAL if @cur is another tree's.
 */
int iova_tree_remove_walked(struct iova_tree *t,
			    const struct iova_tree_cursor *cur,
			    iova_tree_unmapped_fn unmapped, void *ctx,
			    uint64_t *removed);

/*
 * Copy out the first area (lowest IOVA) of a kind in @kinds overlapping
 * [@iova, @iova + @length) (whole area, not clipped; @out may be NULL).
 * 0 if found, -ENOENT if the range is free of such areas, -EINVAL,
 * -EOVERFLOW.
 */
int iova_tree_first_overlap(const struct iova_tree *t, uint64_t iova,
			    uint64_t length, unsigned int kinds,
			    struct iova_area *out);

/* The area (any kind) containing @iova: 0 and *@out filled, or -ENOENT. */
int iova_tree_lookup(const struct iova_tree *t, uint64_t iova,
		     struct iova_area *out);

void iova_tree_stats(const struct iova_tree *t, struct iova_tree_stats *st);
uint64_t iova_tree_count(const struct iova_tree *t);	/* all kinds */
uint64_t iova_tree_bytes_mapped(const struct iova_tree *t);

/*
 * Check every structural invariant (ordering, no overlap, augmented
 * summaries, counters, memory accounting). 0 if sound, -EUCLEAN if not.
 * O(n); meant for tests and debugging.
 */
int iova_tree_validate(const struct iova_tree *t);

/* In-order iteration. Everything in here is private. */
#define IOVA_TREE_MAX_HEIGHT	24

struct iova_tree_path {
	void *node[IOVA_TREE_MAX_HEIGHT];
	int idx[IOVA_TREE_MAX_HEIGHT];
};

struct iova_tree_iter {
	const struct iova_tree *tree;
	uint64_t gen;
	bool valid;
	struct iova_tree_path path;
};

/* Filled by iova_tree_walk_range(); everything in here is private. */
struct iova_tree_cursor {
	const struct iova_tree *tree;
	uint64_t gen;
	uint64_t iova;
	uint64_t last;
	unsigned int kinds;
	bool found;
	struct iova_tree_path path;
};

/*
 * Position @it on the first area whose last byte is >= @iova, so an area
 * containing @iova comes first. Then iova_tree_iter_next() returns 0 and
 * fills *@out for each area in IOVA order, -ENOENT at the end, -ESTALE if
 * the tree was modified since iova_tree_iter_start().
 */
void iova_tree_iter_start(struct iova_tree_iter *it, const struct iova_tree *t,
			  uint64_t iova);
int iova_tree_iter_next(struct iova_tree_iter *it, struct iova_area *out);

#endif /* IOASID_IOVA_TREE_H */
