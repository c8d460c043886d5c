/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of libioasid/core/iova_tree.c plus a randomized model-based
 * test against a per-page reference of a 4096-page window.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../libioasid/core/iova_tree.h"

#define PG	IOVA_TREE_PAGE_SIZE
#define MiB	(1ULL << 20)
#define GiB	(1ULL << 30)

/* ------------------------------------------------------------------ */
/* refcounted fake backings and an event log */

struct bk {
	int refs;
	bool zero_seen;		/* refs hit 0 at some point */
};

enum ev_type { EV_GET, EV_PUT, EV_UNMAPPED };

struct event {
	enum ev_type type;
	void *backing;
	struct iova_area piece;
};

#define MAX_EVENTS 8192
static struct event events[MAX_EVENTS];
static int nr_events;

static void log_event(enum ev_type type, void *b, const struct iova_area *p)
{
	/* past the end only count: tests checking events stay far below */
	if (nr_events < MAX_EVENTS) {
		events[nr_events].type = type;
		events[nr_events].backing = b;
		if (p)
			events[nr_events].piece = *p;
	}
	nr_events++;
}

static void bk_get(void *b)
{
	struct bk *k = b;

	cr_assert_gt(k->refs, 0, "get() on a backing without references");
	k->refs++;
	log_event(EV_GET, b, NULL);
}

static void bk_put(void *b)
{
	struct bk *k = b;

	cr_assert_gt(k->refs, 0, "put() underflow");
	if (--k->refs == 0)
		k->zero_seen = true;
	log_event(EV_PUT, b, NULL);
}

static void on_unmapped(void *ctx, const struct iova_area *piece)
{
	(void)ctx;
	log_event(EV_UNMAPPED, piece->backing, piece);
}

/* allocator with fault injection and leak accounting */
struct falloc {
	long fail_after;	/* < 0: never; n: fail after n successes */
	long live;
	long fails;
};

static void *fa_alloc(void *ctx, size_t sz)
{
	struct falloc *f = ctx;

	if (f->fail_after == 0) {
		f->fails++;
		return NULL;
	}
	if (f->fail_after > 0)
		f->fail_after--;
	f->live++;
	return malloc(sz);
}

static void fa_free(void *ctx, void *p, size_t sz)
{
	struct falloc *f = ctx;

	(void)sz;
	f->live--;
	free(p);
}

static struct falloc fa;
static const struct iova_tree_ops test_ops = {
	.get = bk_get,
	.put = bk_put,
	.alloc = fa_alloc,
	.free = fa_free,
	.alloc_ctx = &fa,
};

static struct iova_tree *new_tree_cap(unsigned int cap)
{
	struct iova_tree_ops ops = test_ops;
	struct iova_tree *t = NULL;

	ops.node_cap = cap;
	fa.fail_after = -1;
	fa.live = 0;
	nr_events = 0;
	cr_assert_eq(iova_tree_new(&ops, &t), 0);
	cr_assert_not_null(t);
	return t;
}

static struct iova_tree *new_tree(void)
{
	return new_tree_cap(0);
}

static void free_tree(struct iova_tree *t)
{
	cr_assert_eq(iova_tree_validate(t), 0);
	iova_tree_free(t);
	cr_assert_eq(fa.live, 0, "leaked %ld allocations", fa.live);
}

static struct iova_area M(uint64_t iova, uint64_t len, struct bk *b,
			  uint64_t off, uint32_t prot)
{
	struct iova_area a = {
		.iova = iova, .length = len, .offset = off, .backing = b,
		.prot = prot, .kind = IOVA_AREA_MAPPING,
	};
	return a;
}

static struct iova_area B(uint64_t iova, uint64_t len, uint32_t reason)
{
	struct iova_area a = {
		.iova = iova, .length = len, .reason = reason,
		.kind = IOVA_AREA_BLOCKED,
	};
	return a;
}

static int block(struct iova_tree *t, uint64_t iova, uint64_t len,
		 uint32_t reason)
{
	struct iova_area a = B(iova, len, reason);

	return iova_tree_insert(t, &a);
}

/* Insert a mapping handing the tree a fresh reference */
static int map(struct iova_tree *t, uint64_t iova, uint64_t len, struct bk *b,
	       uint64_t off)
{
	struct iova_area a = M(iova, len, b, off, IOVA_PROT_READ);
	int ret;

	b->refs++;
	ret = iova_tree_insert(t, &a);
	if (ret)
		b->refs--;
	return ret;
}

static void expect_area(struct iova_tree *t, uint64_t iova, uint64_t start,
			uint64_t len, void *backing, uint64_t off)
{
	struct iova_area a;

	cr_assert_eq(iova_tree_lookup(t, iova, &a), 0, "no area at %#" PRIx64,
		     iova);
	cr_assert_eq(a.iova, start, "start %#" PRIx64 " != %#" PRIx64, a.iova,
		     start);
	cr_assert_eq(a.length, len, "length %#" PRIx64 " != %#" PRIx64,
		     a.length, len);
	cr_assert_eq(a.backing, backing);
	cr_assert_eq(a.offset, off, "offset %#" PRIx64 " != %#" PRIx64,
		     a.offset, off);
}

/* ------------------------------------------------------------------ */
/* creation and destruction */

Test(iova_tree, new_and_free_empty)
{
	struct iova_tree *t = new_tree();
	struct iova_tree_stats st;

	iova_tree_stats(t, &st);
	cr_assert_eq(st.nr_mappings, 0);
	cr_assert_eq(st.height, 0);
	cr_assert_eq(iova_tree_count(t), 0);
	cr_assert_eq(iova_tree_lookup(t, 0, NULL), -ENOENT);
	free_tree(t);
	iova_tree_free(NULL);
}

Test(iova_tree, new_errors)
{
	struct iova_tree_ops bad = { .alloc = fa_alloc };
	struct iova_tree *t = NULL;

	cr_assert_eq(iova_tree_new(&bad, &t), -EINVAL);
	bad = test_ops;
	bad.node_cap = 3;
	cr_assert_eq(iova_tree_new(&bad, &t), -EINVAL);
	bad.node_cap = 129;
	cr_assert_eq(iova_tree_new(&bad, &t), -EINVAL);
	fa.fail_after = 0;
	fa.live = 0;
	cr_assert_eq(iova_tree_new(&test_ops, &t), -ENOMEM);
	cr_assert_eq(fa.live, 0);
	/* NULL ops: plain malloc, no refcounting */
	cr_assert_eq(iova_tree_new(NULL, &t), 0);
	cr_assert_eq(iova_tree_insert(t, &(struct iova_area){
		.iova = PG, .length = PG, .kind = IOVA_AREA_MAPPING }), 0);
	cr_assert_eq(iova_tree_validate(t), 0);
	iova_tree_free(t);
}

Test(iova_tree, free_puts_every_mapping)
{
	struct iova_tree *t = new_tree();
	struct bk b1 = { 0 }, b2 = { 0 };
	int i;

	for (i = 0; i < 1000; i++)
		cr_assert_eq(map(t, (uint64_t)i * 2 * PG, PG,
				 i % 3 ? &b1 : &b2, 0), 0);
	cr_assert_eq(block(t, 1ULL << 40, PG,
								7), 0);
	cr_assert_eq(b1.refs + b2.refs, 1000);
	free_tree(t);
	cr_assert_eq(b1.refs, 0);
	cr_assert_eq(b2.refs, 0);
}

/* ------------------------------------------------------------------ */
/* insert */

Test(iova_tree, insert_einval)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	struct iova_area a;

	a = M(PG, 0, &b, 0, 0);
	cr_assert_eq(iova_tree_insert(t, &a), -EINVAL, "zero length");
	a = M(PG + 1, PG, &b, 0, 0);
	cr_assert_eq(iova_tree_insert(t, &a), -EINVAL, "unaligned iova");
	a = M(PG, PG + 512, &b, 0, 0);
	cr_assert_eq(iova_tree_insert(t, &a), -EINVAL, "unaligned length");
	a = M(PG, PG, &b, 100, 0);
	cr_assert_eq(iova_tree_insert(t, &a), -EINVAL, "unaligned offset");
	a = M(PG, PG, &b, 0, IOVA_PROT_MASK + 1);
	cr_assert_eq(iova_tree_insert(t, &a), -EINVAL, "prot");
	a = M(PG, PG, &b, 0, 0);
	a.kind = 0;
	cr_assert_eq(iova_tree_insert(t, &a), -EINVAL, "kind");
	a = B(PG, 3 * PG + 5, 1);
	cr_assert_eq(iova_tree_insert(t, &a), -EINVAL, "blocked length");
	/* all prot bits in the mask are stored */
	a = M(PG, PG, &b, 0, IOVA_PROT_MASK);
	b.refs = 1;
	cr_assert_eq(iova_tree_insert(t, &a), 0);
	cr_assert_eq(iova_tree_lookup(t, PG, &a), 0);
	cr_assert_eq(a.prot, IOVA_PROT_MASK);
	cr_assert_eq(iova_tree_count(t), 1);
	free_tree(t);
}

Test(iova_tree, insert_eoverflow_and_top_of_space)
{
	struct iova_tree *t = new_tree();
	uint64_t top = UINT64_MAX - PG + 1;	/* last page */
	struct iova_area a;
	struct bk b = { 0 };

	a = M(top, 2 * PG, &b, 0, 0);
	cr_assert_eq(iova_tree_insert(t, &a), -EOVERFLOW);
	a = M(PG, PG, &b, top, 0);
	b.refs++;
	cr_assert_eq(iova_tree_insert(t, &a), 0, "offset of last page is fine");
	a = M(3 * PG, 2 * PG, &b, top, 0);
	cr_assert_eq(iova_tree_insert(t, &a), -EOVERFLOW, "offset wraps");
	a = B(top - PG, 3 * PG, 0);
	cr_assert_eq(iova_tree_insert(t, &a), -EOVERFLOW);
	/* the very last page and IOVA 0 are both usable with a fixed IOVA */
	cr_assert_eq(map(t, top, PG, &b, 0), 0);
	cr_assert_eq(map(t, 0, PG, &b, 0), 0);
	expect_area(t, UINT64_MAX, top, PG, &b, 0);
	expect_area(t, 0, 0, PG, &b, 0);
	cr_assert_eq(iova_tree_count(t), 3);
	free_tree(t);
}

Test(iova_tree, insert_overlap_codes)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	struct iova_area a;

	cr_assert_eq(map(t, 16 * PG, 8 * PG, &b, 0), 0);	/* [16, 24) */
	cr_assert_eq(block(t, 40 * PG, 4 * PG,
								9), 0);
	/* EEXIST: exact, left, right, containing, contained */
	cr_assert_eq(map(t, 16 * PG, 8 * PG, &b, 0), -EEXIST);
	cr_assert_eq(map(t, 12 * PG, 5 * PG, &b, 0), -EEXIST);
	cr_assert_eq(map(t, 23 * PG, 5 * PG, &b, 0), -EEXIST);
	cr_assert_eq(map(t, 8 * PG, 32 * PG, &b, 0), -EEXIST);
	cr_assert_eq(map(t, 18 * PG, PG, &b, 0), -EEXIST);
	/* EADDRINUSE: blocked, and blocked wins over a mapping */
	cr_assert_eq(map(t, 43 * PG, PG, &b, 0), -EADDRINUSE);
	cr_assert_eq(map(t, 30 * PG, 11 * PG, &b, 0), -EADDRINUSE);
	cr_assert_eq(map(t, 20 * PG, 30 * PG, &b, 0), -EADDRINUSE);
	a = B(0, 17 * PG, 1);
	cr_assert_eq(iova_tree_insert(t, &a), -EEXIST, "blocked on mapping");
	a = B(44 * PG - PG, PG, 1);
	cr_assert_eq(iova_tree_insert(t, &a), -EADDRINUSE, "blocked on blocked");
	a = B(20 * PG, 30 * PG, 1);
	cr_assert_eq(iova_tree_insert(t, &a), -EADDRINUSE, "both: blocked wins");
	/* nothing changed, references untouched */
	cr_assert_eq(iova_tree_count(t), 2);
	cr_assert_eq(b.refs, 1);
	cr_assert_eq(nr_events, 0);
	/* touching neighbours are fine */
	cr_assert_eq(map(t, 15 * PG, PG, &b, 0), 0);
	cr_assert_eq(map(t, 24 * PG, 16 * PG, &b, 0), 0);
	cr_assert_eq(map(t, 44 * PG, PG, &b, 0), 0);
	cr_assert_eq(iova_tree_count(t), 5);
	cr_assert_eq(iova_tree_bytes_mapped(t), 26 * PG);
	free_tree(t);
}

Test(iova_tree, insert_enomem_leaves_tree_unchanged)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	uint64_t i, n = 0;
	int ret, fails = 0;

	/* fail every allocation in turn while filling */
	for (i = 0; i < 5000; i++) {
		fa.fail_after = (long)(i % 3);
		ret = map(t, (i * 7919 % 5000) * 2 * PG, PG, &b, 0);
		fa.fail_after = -1;
		if (ret == -ENOMEM) {
			fails++;
			cr_assert_eq(iova_tree_lookup(t, (i * 7919 % 5000) *
						      2 * PG, NULL), -ENOENT);
			ret = map(t, (i * 7919 % 5000) * 2 * PG, PG, &b, 0);
		}
		cr_assert_eq(ret, 0);
		n++;
		cr_assert_eq(iova_tree_count(t), n);
	}
	cr_assert_gt(fails, 10);
	cr_assert_eq(b.refs, 5000);
	cr_assert_eq(iova_tree_validate(t), 0);
	free_tree(t);
}

/* ------------------------------------------------------------------ */
/* allocation */

static struct iova_area A(uint64_t len, struct bk *b)
{
	return M(0, len, b, 0, IOVA_PROT_READ | IOVA_PROT_WRITE);
}

Test(iova_tree, alloc_basics)
{
	struct iova_tree *t = new_tree();
	struct bk b = { .refs = 100 };
	struct iova_area a = A(2 * PG, &b);
	uint64_t x;

	/* never IOVA 0, even when min is 0 */
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, PG, &a, &x), 0);
	cr_assert_eq(x, PG);
	expect_area(t, PG, PG, 2 * PG, &b, 0);
	/* next lowest hole */
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, PG, &a, &x), 0);
	cr_assert_eq(x, 3 * PG);
	/* alignment is honoured: lowest 2 MiB aligned */
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, 2 * MiB, &a, &x), 0);
	cr_assert_eq(x, 2 * MiB);
	/* alignment below a page is a page */
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, 1, &a, &x), 0);
	cr_assert_eq(x, 5 * PG);
	/* a hole exactly the size */
	cr_assert_eq(iova_tree_remove(t, 3 * PG, 2 * PG, IOVA_TREE_MAPPINGS,
				      NULL, NULL, NULL), 0);
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, PG, &a, &x), 0);
	cr_assert_eq(x, 3 * PG);
	/* window: min rounds up to the alignment, max is inclusive */
	cr_assert_eq(iova_tree_alloc(t, 5 * MiB + 1, 8 * MiB - 1, MiB, &a, &x),
		     0);
	cr_assert_eq(x, 6 * MiB);
	cr_assert_eq(iova_tree_alloc(t, 9 * MiB, 9 * MiB + 2 * PG - 1, PG, &a,
				     &x), 0);
	cr_assert_eq(x, 9 * MiB);
	cr_assert_eq(iova_tree_alloc(t, 9 * MiB, 9 * MiB + 2 * PG - 1, PG, &a,
				     &x), -ENOSPC);
	cr_assert_eq(iova_tree_alloc(t, 10 * MiB, 10 * MiB + 2 * PG - 2, PG,
				     &a, &x), -ENOSPC, "max is inclusive");
	/* top of the address space */
	cr_assert_eq(iova_tree_alloc(t, UINT64_MAX - 4 * PG, UINT64_MAX, PG, &a,
				     &x), 0);
	cr_assert_eq(x, UINT64_MAX - 4 * PG + 1);
	cr_assert_eq(iova_tree_alloc(t, UINT64_MAX - 4 * PG, UINT64_MAX, PG, &a,
				     &x), 0);
	cr_assert_eq(x, UINT64_MAX - 2 * PG + 1);
	cr_assert_eq(iova_tree_alloc(t, UINT64_MAX - 4 * PG, UINT64_MAX, PG, &a,
				     &x), -ENOSPC);
	cr_assert_eq(iova_tree_count(t), 8);
	/* 9 allocs took over 9 references, the removal put one */
	cr_assert_eq(b.refs, 99);
	free_tree(t);
	cr_assert_eq(b.refs, 91);
}

Test(iova_tree, alloc_errors)
{
	struct iova_tree *t = new_tree();
	struct bk b = { .refs = 1 };
	struct iova_area a = A(PG, &b);
	uint64_t x = 42;

	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, 0, &a, &x), -EINVAL);
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, 3 * PG, &a, &x),
		     -EINVAL);
	cr_assert_eq(iova_tree_alloc(t, 2 * PG, PG, PG, &a, &x), -EINVAL);
	a.length = 0;
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, PG, &a, &x), -EINVAL);
	a.length = PG + 8;
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, PG, &a, &x), -EINVAL);
	a = A(PG, &b);
	a.offset = UINT64_MAX - PG + 1;
	a.length = 2 * PG;
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, PG, &a, &x),
		     -EOVERFLOW);
	a = A(PG, &b);
	cr_assert_eq(iova_tree_find_free(t, 0, UINT64_MAX, PG, 6, &x), -EINVAL);
	cr_assert_eq(iova_tree_find_free(t, 0, UINT64_MAX, 0, PG, &x), -EINVAL);
	/* only page 0 in the window: ENOSPC, IOVA 0 is never handed out */
	cr_assert_eq(iova_tree_alloc(t, 0, PG - 1, PG, &a, &x), -ENOSPC);
	/* window full of blocked space */
	cr_assert_eq(block(t, PG, 16 * PG,
								3), 0);
	cr_assert_eq(iova_tree_alloc(t, 0, 17 * PG - 1, PG, &a, &x), -ENOSPC);
	cr_assert_eq(iova_tree_alloc(t, 0, 18 * PG - 1, PG, &a, &x), 0);
	cr_assert_eq(x, 17 * PG);
	cr_assert_eq(iova_tree_count(t), 2);
	free_tree(t);
	cr_assert_eq(b.refs, 0);
	/* ENOMEM: unchanged */
	t = new_tree();
	b.refs = 1;
	fa.fail_after = 0;
	cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, PG, &a, &x), -ENOMEM);
	fa.fail_after = -1;
	cr_assert_eq(iova_tree_count(t), 0);
	cr_assert_eq(x, 17 * PG, "out-param untouched on error");
	free_tree(t);
	cr_assert_eq(b.refs, 1);
}

Test(iova_tree, find_free_does_not_modify)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	uint64_t x;
	int i;

	for (i = 1; i < 100; i++)
		cr_assert_eq(map(t, (uint64_t)i * 4 * PG, 3 * PG, &b, 0), 0);
	/* holes are one page each: [4i + 3] */
	cr_assert_eq(iova_tree_find_free(t, 0, UINT64_MAX, PG, PG, &x), 0);
	cr_assert_eq(x, PG);
	cr_assert_eq(iova_tree_find_free(t, 4 * PG, UINT64_MAX, PG, PG, &x), 0);
	cr_assert_eq(x, 7 * PG);
	/* two pages fit only below 4 * PG or after the last area */
	cr_assert_eq(iova_tree_find_free(t, 4 * PG, UINT64_MAX, 2 * PG, PG, &x),
		     0);
	cr_assert_eq(x, (99 * 4 + 3) * PG);
	/* 8 KiB alignment: the one-page holes at odd pages 4i + 3 never fit */
	cr_assert_eq(iova_tree_find_free(t, 4 * PG, 390 * PG, PG, 2 * PG, &x),
		     -ENOSPC);
	cr_assert_eq(iova_tree_count(t), 99);
	free_tree(t);
}

/*
 * Allocation in a fragmented space must find the lowest hole even though
 * almost all holes are too small, and with alignment near-misses.
 */
Test(iova_tree, alloc_fragmented_lowest_fit)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	uint64_t i, x, n = 200000;

	/* areas of 3 pages every 4 pages: 1-page holes everywhere */
	for (i = 1; i <= n; i++)
		cr_assert_eq(map(t, i * 4 * PG, 3 * PG, &b, 0), 0);
	/* open one 2-page hole deep inside, misaligned for 16 KiB */
	cr_assert_eq(iova_tree_remove(t, (4 * 150000 + 2) * PG, PG,
				      IOVA_TREE_MAPPINGS, NULL, NULL, NULL), 0);
	cr_assert_eq(iova_tree_find_free(t, 4 * PG, UINT64_MAX, 2 * PG, PG,
					 &x), 0);
	cr_assert_eq(x, (4 * 150000 + 2) * PG);
	cr_assert_eq(iova_tree_find_free(t, 4 * PG, UINT64_MAX, 2 * PG, 2 * PG,
					 &x), 0);
	cr_assert_eq(x, (4 * 150000 + 2) * PG, "aligned inside the hole");
	cr_assert_eq(iova_tree_find_free(t, 4 * PG, UINT64_MAX, 2 * PG, 4 * PG,
					 &x), 0);
	cr_assert_eq(x, (4 * n + 4) * PG, "nothing aligned fits: after the end");
	cr_assert_eq(iova_tree_validate(t), 0);
	free_tree(t);
}

/* ------------------------------------------------------------------ */
/* removal */

Test(iova_tree, remove_whole_and_nothing)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	uint64_t rm = 1;

	cr_assert_eq(map(t, 16 * PG, 8 * PG, &b, 64 * PG), 0);
	cr_assert_eq(iova_tree_remove(t, 0, 16 * PG, IOVA_TREE_ALL, on_unmapped,
				      NULL, &rm), 0);
	cr_assert_eq(rm, 0);
	cr_assert_eq(nr_events, 0);
	cr_assert_eq(iova_tree_remove(t, 8 * PG, 32 * PG, IOVA_TREE_MAPPINGS,
				      on_unmapped, NULL, &rm), 0);
	cr_assert_eq(rm, 8 * PG);
	cr_assert_eq(nr_events, 2);
	cr_assert_eq(events[0].type, EV_UNMAPPED);
	cr_assert_eq(events[0].piece.iova, 16 * PG);
	cr_assert_eq(events[0].piece.length, 8 * PG);
	cr_assert_eq(events[0].piece.offset, 64 * PG);
	cr_assert_eq(events[1].type, EV_PUT);
	cr_assert_eq(b.refs, 0);
	cr_assert_eq(iova_tree_count(t), 0);
	free_tree(t);
}

Test(iova_tree, remove_trims_and_punches)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	uint64_t rm;

	cr_assert_eq(map(t, 100 * PG, 100 * PG, &b, 1000 * PG), 0);
	/* punch [150, 160): head keeps offset, tail offset moves */
	cr_assert_eq(iova_tree_remove(t, 150 * PG, 10 * PG, IOVA_TREE_MAPPINGS,
				      on_unmapped, NULL, &rm), 0);
	cr_assert_eq(rm, 10 * PG);
	expect_area(t, 100 * PG, 100 * PG, 50 * PG, &b, 1000 * PG);
	expect_area(t, 199 * PG, 160 * PG, 40 * PG, &b, 1060 * PG);
	cr_assert_eq(iova_tree_lookup(t, 155 * PG, NULL), -ENOENT);
	cr_assert_eq(b.refs, 2);
	/* events: get, get, unmapped, put */
	cr_assert_eq(nr_events, 4);
	cr_assert_eq(events[0].type, EV_GET);
	cr_assert_eq(events[1].type, EV_GET);
	cr_assert_eq(events[2].type, EV_UNMAPPED);
	cr_assert_eq(events[2].piece.offset, 1050 * PG);
	cr_assert_eq(events[3].type, EV_PUT);
	cr_assert(!b.zero_seen);
	/* remove across both: trims the head of one and tail of the other */
	nr_events = 0;
	cr_assert_eq(iova_tree_remove(t, 140 * PG, 30 * PG, IOVA_TREE_MAPPINGS,
				      on_unmapped, NULL, &rm), 0);
	cr_assert_eq(rm, 20 * PG);
	expect_area(t, 100 * PG, 100 * PG, 40 * PG, &b, 1000 * PG);
	expect_area(t, 170 * PG, 170 * PG, 30 * PG, &b, 1070 * PG);
	cr_assert_eq(nr_events, 6);
	cr_assert_eq(events[1].piece.iova, 140 * PG);
	cr_assert_eq(events[1].piece.length, 10 * PG);
	cr_assert_eq(events[1].piece.offset, 1040 * PG);
	cr_assert_eq(events[4].piece.iova, 160 * PG);
	cr_assert_eq(events[4].piece.length, 10 * PG);
	cr_assert_eq(events[4].piece.offset, 1060 * PG);
	cr_assert_eq(b.refs, 2);
	cr_assert(!b.zero_seen);
	cr_assert_eq(iova_tree_bytes_mapped(t), 70 * PG);
	free_tree(t);
}

Test(iova_tree, remove_kinds)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	struct iova_area a;
	uint64_t rm;

	cr_assert_eq(map(t, 0, 10 * PG, &b, 0), 0);
	cr_assert_eq(block(t, 10 * PG, 10 * PG,
								5), 0);
	cr_assert_eq(map(t, 20 * PG, 10 * PG, &b, 0), 0);
	/* blocked only: punch it, mappings untouched */
	cr_assert_eq(iova_tree_remove(t, 0, 15 * PG, IOVA_TREE_BLOCKED,
				      on_unmapped, NULL, &rm), 0);
	cr_assert_eq(rm, 5 * PG);
	cr_assert_eq(iova_tree_lookup(t, 15 * PG, &a), 0);
	cr_assert_eq(a.kind, IOVA_AREA_BLOCKED);
	cr_assert_eq(a.iova, 15 * PG);
	cr_assert_eq(a.reason, 5);
	cr_assert_eq(a.offset, 0, "blocked areas have no offset");
	cr_assert_eq(iova_tree_lookup(t, 5 * PG, &a), 0);
	cr_assert_eq(a.kind, IOVA_AREA_MAPPING);
	cr_assert_eq(a.length, 10 * PG);
	/* mappings only over everything: the blocked rest stays */
	cr_assert_eq(iova_tree_remove_all(t, IOVA_TREE_MAPPINGS, NULL, NULL,
					  &rm), 0);
	cr_assert_eq(rm, 20 * PG);
	cr_assert_eq(iova_tree_count(t), 1);
	cr_assert_eq(b.refs, 0);
	cr_assert_eq(iova_tree_remove_all(t, IOVA_TREE_ALL, NULL, NULL, &rm), 0);
	cr_assert_eq(rm, 5 * PG);
	cr_assert_eq(iova_tree_count(t), 0);
	cr_assert_eq(iova_tree_remove(t, 0, PG, 0, NULL, NULL, &rm), -EINVAL);
	cr_assert_eq(iova_tree_remove(t, 0, PG, 4, NULL, NULL, &rm), -EINVAL);
	cr_assert_eq(iova_tree_remove_all(t, 0, NULL, NULL, &rm), -EINVAL);
	free_tree(t);
}

Test(iova_tree, remove_errors)
{
	struct iova_tree *t = new_tree();
	uint64_t rm = 77;

	cr_assert_eq(iova_tree_remove(t, 0, 0, IOVA_TREE_ALL, NULL, NULL, &rm),
		     -EINVAL);
	cr_assert_eq(iova_tree_remove(t, 1, PG, IOVA_TREE_ALL, NULL, NULL, &rm),
		     -EINVAL);
	cr_assert_eq(iova_tree_remove(t, PG, 1, IOVA_TREE_ALL, NULL, NULL, &rm),
		     -EINVAL);
	cr_assert_eq(iova_tree_remove(t, UINT64_MAX - PG + 1, 2 * PG,
				      IOVA_TREE_ALL, NULL, NULL, &rm),
		     -EOVERFLOW);
	cr_assert_eq(rm, 77);
	cr_assert_eq(iova_tree_remove(t, UINT64_MAX - PG + 1, PG,
				      IOVA_TREE_ALL, NULL, NULL, &rm), 0);
	cr_assert_eq(rm, 0);
	free_tree(t);
}

Test(iova_tree, punch_enomem_is_atomic)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	uint64_t i, rm = 5;
	int ret, seen_enomem = 0;

	cr_assert_eq(map(t, 0, 1ULL << 30, &b, 0), 0);
	for (i = 0; i < 3000; i++) {
		uint64_t at = ((i * 2654435761ULL) % 262000 + 1) * PG;

		nr_events = 0;
		fa.fail_after = 0;
		ret = iova_tree_remove(t, at, PG, IOVA_TREE_MAPPINGS,
				       on_unmapped, NULL, &rm);
		fa.fail_after = -1;
		if (ret == -ENOMEM) {
			seen_enomem++;
			cr_assert_eq(nr_events, 0, "callbacks before ENOMEM");
			cr_assert_eq(iova_tree_validate(t), 0);
			ret = iova_tree_remove(t, at, PG, IOVA_TREE_MAPPINGS,
					       on_unmapped, NULL, &rm);
		}
		cr_assert_eq(ret, 0);
		cr_assert(rm == PG || rm == 0);
	}
	cr_assert_gt(seen_enomem, 0);
	cr_assert_eq((uint64_t)b.refs, iova_tree_count(t));
	/* trims and whole removals never allocate */
	fa.fail_after = 0;
	cr_assert_eq(iova_tree_remove_all(t, IOVA_TREE_ALL, NULL, NULL, &rm),
		     0);
	fa.fail_after = -1;
	cr_assert_eq(b.refs, 0);
	free_tree(t);
}

/* ------------------------------------------------------------------ */
/* queries */

static int collect(void *ctx, const struct iova_area *p)
{
	int *n = ctx;

	log_event(EV_UNMAPPED, p->backing, p);
	return ++(*n) == 100 ? 1234 : 0;
}

Test(iova_tree, for_each_piece)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	int n = 0, i;

	cr_assert_eq(map(t, 10 * PG, 10 * PG, &b, 0), 0);
	cr_assert_eq(block(t, 20 * PG, 5 * PG,
								1), 0);
	cr_assert_eq(map(t, 30 * PG, 10 * PG, &b, 100 * PG), 0);
	cr_assert_eq(iova_tree_for_each_piece(t, 15 * PG, 20 * PG,
					      IOVA_TREE_MAPPINGS, collect, &n),
		     0);
	cr_assert_eq(n, 2);
	cr_assert_eq(events[0].piece.iova, 15 * PG);
	cr_assert_eq(events[0].piece.length, 5 * PG);
	cr_assert_eq(events[0].piece.offset, 5 * PG);
	cr_assert_eq(events[1].piece.iova, 30 * PG);
	cr_assert_eq(events[1].piece.length, 5 * PG);
	cr_assert_eq(events[1].piece.offset, 100 * PG);
	n = 0;
	nr_events = 0;
	cr_assert_eq(iova_tree_for_each_piece(t, 0, 100 * PG, IOVA_TREE_ALL,
					      collect, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(events[1].piece.kind, IOVA_AREA_BLOCKED);
	cr_assert_eq(iova_tree_for_each_piece(t, 0, 1, IOVA_TREE_ALL,
					      collect, &n), -EINVAL);
	/* stop on a non-zero return */
	for (i = 0; i < 200; i++)
		cr_assert_eq(map(t, (1000 + 2 * (uint64_t)i) * PG, PG, &b, 0),
			     0);
	n = 0;
	nr_events = 0;
	cr_assert_eq(iova_tree_for_each_piece(t, 1000 * PG, 400 * PG,
					      IOVA_TREE_ALL, collect, &n),
		     1234);
	cr_assert_eq(n, 100);
	cr_assert_eq(iova_tree_count(t), 203, "nothing removed");
	free_tree(t);
}

/* A visitor that modifies the tree it walks (IOAS_COPY within one IOAS) */
struct mod_ctx {
	struct iova_tree *t;
	struct bk *b;
	uint64_t seen[2000];
	int n;
};

static int modifying_visitor(void *ctx, const struct iova_area *p)
{
	struct mod_ctx *m = ctx;

	uint64_t i;

	m->seen[m->n++] = p->iova;
	/* copy the piece far away, 3 times: splits nodes, grows the root */
	for (i = 0; i < 3; i++)
		cr_assert_eq(map(m->t, (1ULL << 40) + p->iova + i * PG, PG,
				 m->b, 0), 0);
	/* drop the next 3 areas (merges, frees nodes): the walk skips them */
	cr_assert_eq(iova_tree_remove(m->t, p->iova + PG, 6 * PG,
				      IOVA_TREE_MAPPINGS, NULL, NULL, NULL), 0);
	return 0;
}

Test(iova_tree, for_each_piece_visitor_may_modify)
{
	static struct mod_ctx m;
	struct iova_tree *t = new_tree_cap(4);
	struct bk b = { 0 };
	uint64_t i;
	int k;

	for (i = 0; i < 1000; i++)
		cr_assert_eq(map(t, i * 2 * PG, PG, &b, 0), 0);
	m.t = t;
	m.b = &b;
	m.n = 0;
	/* all kinds: the walk steps along the path instead of re-finding */
	cr_assert_eq(iova_tree_for_each_piece(t, 0, 2000 * PG, IOVA_TREE_ALL,
					      modifying_visitor, &m), 0);
	/* visits pages 0, (2, 4, 6 removed) 8, ...: every fourth area */
	cr_assert_eq(m.n, 250);
	for (k = 0; k < m.n; k++)
		cr_assert_eq(m.seen[k], (uint64_t)k * 8 * PG);
	cr_assert_eq(iova_tree_count(t), 1000);
	cr_assert_eq((uint64_t)b.refs, iova_tree_count(t));
	free_tree(t);
}

/* A visitor deleting what it was given and everything before it */
static int eating_visitor(void *ctx, const struct iova_area *p)
{
	struct mod_ctx *m = ctx;

	m->seen[m->n++] = p->iova;
	cr_assert_eq(iova_tree_remove(m->t, 0, p->iova + PG,
				      IOVA_TREE_MAPPINGS, NULL, NULL, NULL), 0);
	return 0;
}

Test(iova_tree, for_each_piece_visitor_may_free_nodes)
{
	static struct mod_ctx m;
	struct iova_tree *t = new_tree_cap(4);
	struct bk b = { 0 };
	uint64_t i;
	int k;

	for (i = 0; i < 1000; i++)
		cr_assert_eq(map(t, i * 2 * PG, PG, &b, 0), 0);
	/* a second spare leaf is not kept: freed leaves go back to malloc */
	m.t = t;
	m.b = &b;
	m.n = 0;
	cr_assert_eq(iova_tree_for_each_piece(t, 0, 2000 * PG, IOVA_TREE_ALL,
					      eating_visitor, &m), 0);
	cr_assert_eq(m.n, 1000);
	for (k = 0; k < m.n; k++)
		cr_assert_eq(m.seen[k], (uint64_t)k * 2 * PG);
	cr_assert_eq(iova_tree_count(t), 0);
	cr_assert_eq(b.refs, 0);
	free_tree(t);
}

Test(iova_tree, first_overlap)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	struct iova_area a;

	cr_assert_eq(map(t, 10 * PG, 10 * PG, &b, 0), 0);
	cr_assert_eq(block(t, 30 * PG, 5 * PG,
								1), 0);
	cr_assert_eq(iova_tree_first_overlap(t, 0, 10 * PG, IOVA_TREE_ALL, &a),
		     -ENOENT);
	cr_assert_eq(iova_tree_first_overlap(t, 0, 11 * PG, IOVA_TREE_ALL, &a),
		     0);
	cr_assert_eq(a.iova, 10 * PG);
	cr_assert_eq(a.length, 10 * PG, "whole area, not clipped");
	cr_assert_eq(iova_tree_first_overlap(t, 15 * PG, 40 * PG,
					     IOVA_TREE_BLOCKED, &a), 0);
	cr_assert_eq(a.iova, 30 * PG);
	cr_assert_eq(iova_tree_first_overlap(t, 20 * PG, 10 * PG,
					     IOVA_TREE_ALL, NULL), -ENOENT);
	cr_assert_eq(iova_tree_first_overlap(t, 25 * PG, 40 * PG,
					     IOVA_TREE_MAPPINGS, NULL), -ENOENT);
	cr_assert_eq(iova_tree_first_overlap(t, 19 * PG, PG,
					     IOVA_TREE_MAPPINGS, NULL), 0);
	cr_assert_eq(iova_tree_first_overlap(t, UINT64_MAX, PG, IOVA_TREE_ALL,
					     NULL), -EINVAL);
	cr_assert_eq(iova_tree_first_overlap(t, UINT64_MAX - PG + 1, 2 * PG,
					     IOVA_TREE_ALL, NULL), -EOVERFLOW);
	free_tree(t);
}

/*
 * Ascending fills take the append path (no search in a node when the key
 * sorts after its last entry). The overlap check must still see the last
 * area on that path, of either kind, and the nodes must come out packed.
 */
Test(iova_tree, append_fill_fast_path)
{
	struct iova_tree *t = new_tree_cap(4);
	struct iova_tree_stats st;
	struct bk b = { 0 };
	struct iova_area a;
	uint64_t i, n = 2000, s;

	for (i = 0; i < n; i++) {
		s = (3 * i + 1) * PG;
		if (i % 50 == 49)
			cr_assert_eq(block(t, s, 2 * PG, (uint32_t)i), 0);
		else
			cr_assert_eq(map(t, s, 2 * PG, &b, i * PG), 0);
		/* an append overlapping the last area's last page */
		cr_assert_eq(map(t, s + PG, 4 * PG, &b, 0),
			     i % 50 == 49 ? -EADDRINUSE : -EEXIST,
			     "append over area %" PRIu64, i);
	}
	cr_assert_eq(iova_tree_validate(t), 0);
	iova_tree_stats(t, &st);
	/* cap 4, uneven splits at the end: every leaf but the last is full */
	cr_assert_eq(st.nr_leaves, (n + 3) / 4, "%" PRIu64 " leaves",
		     st.nr_leaves);
	for (i = 0; i < n; i++) {
		s = (3 * i + 1) * PG;
		cr_assert_eq(iova_tree_lookup(t, s + PG, &a), 0);
		cr_assert_eq(a.iova, s);
		cr_assert_eq(iova_tree_lookup(t, s + 2 * PG, NULL), -ENOENT);
	}
	/* the gap right after the end and the one page before the last area */
	cr_assert_eq(map(t, (3 * n + 1) * PG, PG, &b, 0), 0);
	cr_assert_eq(map(t, (3 * n - 2) * PG, PG, &b, 0), -EADDRINUSE);
	cr_assert_eq(map(t, (3 * n) * PG, PG, &b, 0), 0);
	/* inserts into the gaps inside full leaves search for their place */
	for (i = 1; i < n; i += 7)
		cr_assert_eq(map(t, 3 * i * PG, PG, &b, 0), 0);
	cr_assert_eq(iova_tree_validate(t), 0);
	for (i = 1; i < n; i += 7) {
		cr_assert_eq(iova_tree_lookup(t, 3 * i * PG, &a), 0);
		cr_assert_eq(a.iova, 3 * i * PG);
	}
	cr_assert_eq(iova_tree_count(t), n + 2 + (n + 5) / 7);
	free_tree(t);
	cr_assert_eq(b.refs, 0);
}

/*
 * One removal over many leaves and levels: every piece of the requested
 * kind once, in IOVA order, the ends trimmed, the other kind untouched;
 * ranges starting in a gap at the end of a subtree, or on an area of the
 * other kind, find their first piece further on.
 */
/* n two-page areas 4 pages apart, every third one BLOCKED */
static void fill_every_third_blocked(struct iova_tree *t, struct bk *b,
				     uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		uint64_t s = (4 * i + 1) * PG;

		if (i % 3 == 2)
			cr_assert_eq(block(t, s, 2 * PG, 7), 0);
		else
			cr_assert_eq(map(t, s, 2 * PG, b, i * PG), 0);
	}
}

/* after removing the mappings from inside area 12 to inside area 589 */
static void expect_12_to_589_removed(struct iova_tree *t, struct bk *b,
				     uint64_t last)
{
	uint64_t i;

	expect_area(t, (4 * 12 + 1) * PG, (4 * 12 + 1) * PG, PG, b, 12 * PG);
	expect_area(t, last + PG, last + PG, PG, b, 589 * PG + PG);
	for (i = 13; i < 589; i++) {
		struct iova_area a;
		int r = iova_tree_lookup(t, (4 * i + 1) * PG, &a);

		if (i % 3 == 2)
			cr_assert(r == 0 && a.kind == IOVA_AREA_BLOCKED);
		else
			cr_assert_eq(r, -ENOENT);
	}
}

Test(iova_tree, remove_many_pieces_one_pass)
{
	struct iova_tree *t = new_tree_cap(4);
	struct bk b = { 0 };
	uint64_t i, n = 600, rm, first, last, want = 0, prev = 0;
	int k, pieces = 0;

	fill_every_third_blocked(t, &b, n);
	/*
	 * Cap 4 and an ascending fill: leaf k holds areas 4k..4k+3. A range
	 * starting in the gap after area 7, the end of leaf 1, finds area 9
	 * in leaf 2 (area 8 is BLOCKED).
	 */
	cr_assert_eq(iova_tree_remove(t, (4 * 7 + 3) * PG, 8 * PG,
				      IOVA_TREE_MAPPINGS, NULL, NULL, &rm), 0);
	cr_assert_eq(rm, 2 * PG);
	cr_assert_eq(iova_tree_lookup(t, (4 * 9 + 1) * PG, NULL), -ENOENT);
	cr_assert_eq(iova_tree_lookup(t, (4 * 8 + 1) * PG, NULL), 0);
	/* from the second page of area 12 to the first page of area 589 */
	first = (4 * 12 + 2) * PG;
	last = (4 * 589 + 1) * PG;
	for (i = 12; i <= 589; i++)
		if (i % 3 != 2)
			want += (i == 12 || i == 589) ? PG : 2 * PG;
	nr_events = 0;
	cr_assert_eq(iova_tree_remove(t, first, last - first + PG,
				      IOVA_TREE_MAPPINGS, on_unmapped, NULL,
				      &rm), 0);
	cr_assert_eq(rm, want);
	cr_assert_eq(iova_tree_validate(t), 0);
	for (k = 0; k < nr_events && k < MAX_EVENTS; k++) {
		if (events[k].type != EV_UNMAPPED)
			continue;
		cr_assert_gt(events[k].piece.iova, prev, "pieces in order");
		prev = events[k].piece.iova;
		pieces++;
	}
	cr_assert_eq(pieces, 386, "%d pieces", pieces);
	expect_12_to_589_removed(t, &b, last);
	/* start on a BLOCKED area, remove mappings only */
	cr_assert_eq(iova_tree_remove(t, (4 * 596 + 1) * PG, 12 * PG,
				      IOVA_TREE_MAPPINGS, NULL, NULL, &rm), 0);
	cr_assert_eq(rm, 4 * PG, "areas 597 and 598");
	cr_assert_eq(iova_tree_lookup(t, (4 * 596 + 1) * PG, NULL), 0);
	free_tree(t);
	cr_assert_eq(b.refs, 0);
}

struct walk_log {
	int pieces;
	int stop_at;		/* return 1 at this piece (0: never) */
	uint64_t bytes;
	uint64_t prev;
	bool bad_whole;
};

static int walk_visit(void *ctx, const struct iova_area *piece,
		      const struct iova_area *whole)
{
	struct walk_log *w = ctx;

	w->pieces++;
	w->bytes += piece->length;
	/* the piece lies in its whole area, same file offsets */
	if (whole->iova > piece->iova ||
	    whole->iova + whole->length < piece->iova + piece->length ||
	    whole->kind != piece->kind || whole->backing != piece->backing ||
	    (piece->kind == IOVA_AREA_MAPPING &&
	     whole->offset + (piece->iova - whole->iova) != piece->offset) ||
	    piece->iova <= w->prev)
		w->bad_whole = true;
	w->prev = piece->iova;
	return w->pieces == w->stop_at;
}

/*
 * An unmap's walk (the pieces with their whole areas) and the removal
 * that starts where the walk found the first piece: across many leaves,
 * with BLOCKED areas skipped, a cut inside one mapping, a tree changed in
 * between, and the errors.
 */
Test(iova_tree, walk_range_then_remove_walked)
{
	struct iova_tree *t = new_tree_cap(4), *t2 = NULL;
	struct iova_tree_cursor cur;
	struct walk_log w = { 0 };
	struct bk b = { 0 }, big = { 0 };
	uint64_t i, n = 600, rm, first, last, want = 0, before;
	int k, pieces = 0;

	cr_assert_eq(iova_tree_new(NULL, &t2), 0);
	fill_every_third_blocked(t, &b, n);
	/* from the second page of area 12 to the first page of area 589 */
	first = (4 * 12 + 2) * PG;
	last = (4 * 589 + 1) * PG;
	for (i = 12; i <= 589; i++)
		if (i % 3 != 2)
			want += (i == 12 || i == 589) ? PG : 2 * PG;
	cr_assert_eq(iova_tree_walk_range(t, first, last - first + PG,
					  IOVA_TREE_MAPPINGS, walk_visit, &w,
					  &cur), 0);
	cr_assert_eq(w.pieces, 386, "%d pieces", w.pieces);
	cr_assert_eq(w.bytes, want);
	cr_assert_not(w.bad_whole);
	nr_events = 0;
	cr_assert_eq(iova_tree_remove_walked(t, &cur, on_unmapped, NULL, &rm),
		     0);
	cr_assert_eq(rm, want);
	cr_assert_eq(iova_tree_validate(t), 0);
	for (k = 0; k < nr_events && k < MAX_EVENTS; k++)
		pieces += events[k].type == EV_UNMAPPED;
	cr_assert_eq(pieces, 386, "%d pieces", pieces);
	expect_12_to_589_removed(t, &b, last);

	/* a cut inside one mapping: its whole area is seen, two remain */
	cr_assert_eq(map(t, 1ULL << 40, 64 * PG, &big, 1000 * PG), 0);
	before = iova_tree_count(t);
	memset(&w, 0, sizeof(w));
	cr_assert_eq(iova_tree_walk_range(t, (1ULL << 40) + 10 * PG, 3 * PG,
					  IOVA_TREE_ALL, walk_visit, &w,
					  &cur), 0);
	cr_assert_eq(w.pieces, 1);
	cr_assert_not(w.bad_whole);
	cr_assert_eq(iova_tree_remove_walked(t, &cur, NULL, NULL, &rm), 0);
	cr_assert_eq(rm, 3 * PG);
	cr_assert_eq(iova_tree_count(t), before + 1);
	expect_area(t, 1ULL << 40, 1ULL << 40, 10 * PG, &big, 1000 * PG);
	expect_area(t, (1ULL << 40) + 13 * PG, (1ULL << 40) + 13 * PG,
		    51 * PG, &big, 1013 * PG);

	/* the tree changed between the walk and the removal */
	cr_assert_eq(iova_tree_walk_range(t, (1ULL << 40) + 20 * PG, 2 * PG,
					  IOVA_TREE_MAPPINGS, walk_visit, &w,
					  &cur), 0);
	cr_assert_eq(map(t, 1ULL << 41, PG, &b, 0), 0);
	cr_assert_eq(iova_tree_remove(t, (1ULL << 40) + 13 * PG, PG,
				      IOVA_TREE_ALL, NULL, NULL, &rm), 0);
	cr_assert_eq(iova_tree_remove_walked(t, &cur, NULL, NULL, &rm), 0);
	cr_assert_eq(rm, 2 * PG);
	cr_assert_eq(iova_tree_lookup(t, (1ULL << 40) + 21 * PG, NULL),
		     -ENOENT);
	cr_assert_eq(iova_tree_lookup(t, (1ULL << 40) + 22 * PG, NULL), 0);
	cr_assert_eq(iova_tree_validate(t), 0);

	/* nothing there; a visitor that stops; errors */
	cr_assert_eq(iova_tree_walk_range(t, 1ULL << 42, PG, IOVA_TREE_ALL,
					  walk_visit, &w, &cur), 0);
	rm = 1;
	cr_assert_eq(iova_tree_remove_walked(t, &cur, NULL, NULL, &rm), 0);
	cr_assert_eq(rm, 0);
	memset(&w, 0, sizeof(w));
	w.stop_at = 2;
	cr_assert_eq(iova_tree_walk_range(t, 0, 1ULL << 40, IOVA_TREE_ALL,
					  walk_visit, &w, &cur), 1);
	cr_assert_eq(w.pieces, 2);
	cr_assert_eq(iova_tree_remove_walked(t2, &cur, NULL, NULL, &rm),
		     -EINVAL);
	cr_assert_eq(iova_tree_walk_range(t, 0, PG, IOVA_TREE_ALL, NULL, &w,
					  &cur), -EINVAL);
	cr_assert_eq(iova_tree_walk_range(t, 0, PG, IOVA_TREE_ALL,
					  walk_visit, &w, NULL), -EINVAL);
	cr_assert_eq(iova_tree_walk_range(t, 1, PG, IOVA_TREE_ALL,
					  walk_visit, &w, &cur), -EINVAL);
	cr_assert_eq(iova_tree_walk_range(t, 0, PG, 0, walk_visit, &w, &cur),
		     -EINVAL);
	cr_assert_eq(iova_tree_remove_walked(t, NULL, NULL, NULL, &rm),
		     -EINVAL);
	iova_tree_free(t2);
	free_tree(t);
	cr_assert_eq(b.refs, 0);
	cr_assert_eq(big.refs, 0);
}

Test(iova_tree, lookup_edges)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	struct iova_area a;
	uint64_t i;

	for (i = 0; i < 10000; i++)
		cr_assert_eq(map(t, (3 * i + 1) * PG, 2 * PG, &b, i * PG), 0);
	for (i = 0; i < 10000; i += 7) {
		uint64_t s = (3 * i + 1) * PG;

		cr_assert_eq(iova_tree_lookup(t, s - 1, NULL), -ENOENT);
		cr_assert_eq(iova_tree_lookup(t, s, &a), 0);
		cr_assert_eq(a.iova, s);
		cr_assert_eq(a.offset, i * PG);
		cr_assert_eq(iova_tree_lookup(t, s + 2 * PG - 1, &a), 0);
		cr_assert_eq(a.iova, s);
		cr_assert_eq(iova_tree_lookup(t, s + 2 * PG, NULL), -ENOENT);
	}
	cr_assert_eq(iova_tree_lookup(t, 0, NULL), -ENOENT);
	cr_assert_eq(iova_tree_lookup(t, UINT64_MAX, NULL), -ENOENT);
	free_tree(t);
}

Test(iova_tree, iterator)
{
	struct iova_tree *t = new_tree();
	struct iova_tree_iter it;
	struct bk b = { 0 };
	struct iova_area a;
	uint64_t i, n = 0, prev = 0;

	iova_tree_iter_start(&it, t, 0);
	cr_assert_eq(iova_tree_iter_next(&it, &a), -ENOENT);
	for (i = 0; i < 5000; i++)
		cr_assert_eq(map(t, ((i * 7919) % 5000) * 4 * PG + PG, 2 * PG,
				 &b, 0), 0);
	iova_tree_iter_start(&it, t, 0);
	while (iova_tree_iter_next(&it, &a) == 0) {
		cr_assert_gt(a.iova, prev);
		prev = a.iova;
		n++;
	}
	cr_assert_eq(n, 5000);
	/* start inside an area: that area comes first */
	iova_tree_iter_start(&it, t, 100 * 4 * PG + 2 * PG);
	cr_assert_eq(iova_tree_iter_next(&it, &a), 0);
	cr_assert_eq(a.iova, 100 * 4 * PG + PG);
	/* start in a hole: the next one */
	iova_tree_iter_start(&it, t, 100 * 4 * PG + 3 * PG);
	cr_assert_eq(iova_tree_iter_next(&it, &a), 0);
	cr_assert_eq(a.iova, 101 * 4 * PG + PG);
	/* a modification invalidates it */
	cr_assert_eq(map(t, 1ULL << 40, PG, &b, 0), 0);
	cr_assert_eq(iova_tree_iter_next(&it, &a), -ESTALE);
	free_tree(t);
}

Test(iova_tree, stats_and_counts)
{
	struct iova_tree *t = new_tree();
	struct iova_tree_stats st;
	struct bk b = { 0 };

	cr_assert_eq(map(t, PG, 3 * PG, &b, 0), 0);
	cr_assert_eq(block(t, 8 * PG, 2 * PG,
								1), 0);
	iova_tree_stats(t, &st);
	cr_assert_eq(st.nr_mappings, 1);
	cr_assert_eq(st.nr_blocked, 1);
	cr_assert_eq(st.bytes_mapped, 3 * PG);
	cr_assert_eq(st.bytes_blocked, 2 * PG);
	cr_assert_eq(st.height, 1);
	cr_assert_eq(st.nr_leaves, 1);
	cr_assert_gt(st.mem_bytes, 0);
	cr_assert_eq(iova_tree_count(t), 2);
	free_tree(t);
}

Test(iova_tree, whole_address_space_saturates)
{
	struct iova_tree *t = new_tree();
	struct bk b = { 0 };
	uint64_t rm;

	cr_assert_eq(map(t, 0, 1ULL << 63, &b, 0), 0);
	cr_assert_eq(map(t, 1ULL << 63, (1ULL << 63) - PG, &b, 0), 0);
	cr_assert_eq(map(t, UINT64_MAX - PG + 1, PG, &b, 0), 0);
	cr_assert_eq(iova_tree_bytes_mapped(t), UINT64_MAX);
	cr_assert_eq(iova_tree_find_free(t, 0, UINT64_MAX, PG, PG, &rm),
		     -ENOSPC);
	cr_assert_eq(iova_tree_remove(t, PG, 2 * PG, IOVA_TREE_ALL, NULL, NULL,
				      &rm), 0);
	cr_assert_eq(rm, 2 * PG);
	cr_assert_eq(iova_tree_remove_all(t, IOVA_TREE_ALL, NULL, NULL, &rm),
		     0);
	cr_assert_eq(rm, UINT64_MAX - 2 * PG + 1);
	free_tree(t);
}

/* ------------------------------------------------------------------ */
/* scale: structure, memory, splits */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void shuffle(uint64_t *v, uint64_t n)
{
	uint64_t i;

	for (i = n - 1; i > 0; i--) {
		uint64_t j = rnd() % (i + 1), x = v[i];

		v[i] = v[j];
		v[j] = x;
	}
}

static double bytes_per_area(struct iova_tree *t)
{
	struct iova_tree_stats st;

	iova_tree_stats(t, &st);
	return (double)st.mem_bytes / (double)(st.nr_mappings + st.nr_blocked);
}

/*
 * Without an allocator of the caller's, a large tree takes its nodes from
 * its own 2 MiB chunks: fill, empty and refill one through many chunks
 * (4 entries per node: ~25,000 nodes, chunks of 992), checking contents,
 * references and that the chunks go back once empty.
 */
Test(iova_tree, arena_default_allocator)
{
	struct iova_tree_ops ops = { .get = bk_get, .put = bk_put,
				     .node_cap = 4 };
	uint64_t n = 50000, i, rm, mem_full, mem_rest;
	uint64_t *v = malloc(n * sizeof(*v));
	struct iova_tree_stats st;
	struct iova_tree *t = NULL;
	struct iova_area a;
	struct bk b = { 0 };
	int round;

	cr_assert_not_null(v);
	rng_state = 7;
	for (i = 0; i < n; i++)
		v[i] = i;
	shuffle(v, n);
	cr_assert_eq(iova_tree_new(&ops, &t), 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < n; i++)
			cr_assert_eq(map(t, (v[i] * 2 + 1) * PG, PG, &b,
					 v[i] * PG), 0);
		cr_assert_eq(iova_tree_validate(t), 0);
		iova_tree_stats(t, &st);
		/* nodes of 32 bytes per entry (4 KiB), chunks counted whole,
		 * at most one of them unused */
		cr_assert_geq(st.mem_bytes,
			      (st.nr_leaves + st.nr_inner) * 32 * 128);
		cr_assert_leq(st.mem_bytes,
			      (st.nr_leaves + st.nr_inner + 16) * 4224 +
			      2 * (2ULL << 20) + 4096,
			      "%" PRIu64 " bytes for %" PRIu64 " nodes",
			      st.mem_bytes, st.nr_leaves + st.nr_inner);
		mem_full = st.mem_bytes;
		for (i = 0; i < n; i++) {
			cr_assert_eq(iova_tree_lookup(t, (i * 2 + 1) * PG + 123,
						      &a), 0);
			cr_assert_eq(a.iova, (i * 2 + 1) * PG);
			cr_assert_eq(a.offset, i * PG);
			cr_assert_eq(iova_tree_lookup(t, (i * 2 + 2) * PG, &a),
				     -ENOENT);
		}
		/* cut one mapping in three: the tail needs a new node */
		cr_assert_eq(iova_tree_remove(t, 3 * PG, PG, IOVA_TREE_ALL,
					      NULL, NULL, &rm), 0);
		cr_assert_eq(rm, PG);
		cr_assert_eq(map(t, 3 * PG, PG, &b, PG), 0);
		/* 95% out in random order */
		shuffle(v, n);
		for (i = 0; i < n * 19 / 20; i++) {
			cr_assert_eq(iova_tree_remove(t, (v[i] * 2 + 1) * PG,
						      PG, IOVA_TREE_ALL, NULL,
						      NULL, &rm), 0);
			cr_assert_eq(rm, PG);
		}
		cr_assert_eq(iova_tree_validate(t), 0);
		iova_tree_stats(t, &st);
		mem_rest = st.mem_bytes;
		cr_log_info("arena round %d: %" PRIu64 " bytes full, %" PRIu64
			    " after 95%% removed", round, mem_full, mem_rest);
		/* a chunk goes back only when empty: no more than full */
		cr_assert_leq(mem_rest, mem_full);
		for (; i < n; i++)
			cr_assert_eq(iova_tree_lookup(t, (v[i] * 2 + 1) * PG,
						      &a), 0);
		cr_assert_eq(iova_tree_remove_all(t, IOVA_TREE_ALL, NULL, NULL,
						  &rm), 0);
		cr_assert_eq(rm, n / 20 * PG);
		cr_assert_eq(b.refs, 0);
		cr_assert_eq(iova_tree_validate(t), 0);
		/* emptied: one chunk is kept, the rest went back */
		iova_tree_stats(t, &st);
		cr_assert_leq(st.mem_bytes, (2ULL << 20) + 64 * 4224,
			      "%" PRIu64 " bytes left in an empty tree (%"
			      PRIu64 " leaves %" PRIu64 " inner, height %u)",
			      st.mem_bytes, st.nr_leaves, st.nr_inner,
			      st.height);
	}
	iova_tree_free(t);
	free(v);
}

/*
 * The arena's own allocation failing: this program is linked with
 * -Wl,--wrap=mmap,--wrap=malloc (Makefile.am), so that a test can make
 * the tree's chunk mappings, and then malloc too, run out.  Unarmed, both
 * pass straight through.
 */
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off);
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

static bool fail_mmap, fail_malloc;
static unsigned long mmap_refused;

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	if (fail_mmap) {
		mmap_refused++;
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap(addr, len, prot, flags, fd, off);
}

void *__wrap_malloc(size_t size)
{
	if (fail_malloc) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(size);
}

/* Insert 4 KiB mappings at odd pages from *@next on until one fails. */
static int fill_until_error(struct iova_tree *t, struct bk *b, uint64_t *next,
			    uint64_t max)
{
	int ret = 0;

	while (!ret && *next < max) {
		ret = map(t, (*next * 2 + 1) * PG, PG, b, *next * PG);
		if (!ret)
			(*next)++;
	}
	return ret;
}

static void expect_filled(struct iova_tree *t, uint64_t n)
{
	struct iova_area a;
	uint64_t i;

	cr_assert_eq(iova_tree_validate(t), 0);
	cr_assert_eq(iova_tree_count(t), n);
	for (i = 0; i < n; i++) {
		cr_assert_eq(iova_tree_lookup(t, (i * 2 + 1) * PG + 7, &a), 0);
		cr_assert_eq(a.offset, i * PG);
	}
	cr_assert_eq(iova_tree_lookup(t, (n * 2 + 1) * PG, &a), -ENOENT);
}

/*
 * No chunk to be had: a tree past the arena threshold takes its nodes from
 * malloc instead, silently, and chunks are not counted in mem_bytes.
 */
Test(iova_tree, arena_mmap_fails_malloc_instead)
{
	struct iova_tree_ops ops = { .get = bk_get, .put = bk_put,
				     .node_cap = 4 };
	struct iova_tree_stats st;
	struct iova_tree *t = NULL;
	struct bk b = { 0 };
	uint64_t n = 0, nodes, rm;

	cr_assert_eq(iova_tree_new(&ops, &t), 0);
	fail_mmap = true;
	cr_assert_eq(fill_until_error(t, &b, &n, 2000), 0);
	fail_mmap = false;
	cr_assert_gt(mmap_refused, 0, "the arena was never asked for");
	expect_filled(t, n);
	iova_tree_stats(t, &st);
	nodes = st.nr_leaves + st.nr_inner;
	cr_assert_gt(nodes, 300);
	/* the nodes (4 KiB each) and a small reserve, no 2 MiB chunk */
	cr_assert_leq(st.mem_bytes, (nodes + 32) * 4224,
		      "%" PRIu64 " bytes for %" PRIu64 " nodes", st.mem_bytes,
		      nodes);
	cr_assert_eq(iova_tree_remove_all(t, IOVA_TREE_ALL, NULL, NULL, &rm),
		     0);
	cr_assert_eq(rm, n * PG);
	cr_assert_eq(b.refs, 0);
	iova_tree_free(t);
}

/*
 * A tree on the arena whose next chunk cannot be mapped and whose malloc
 * fallback fails too: -ENOMEM, contents and references unchanged, and the
 * tree goes on once memory is back.
 */
Test(iova_tree, arena_out_of_memory_unchanged)
{
	struct iova_tree_ops ops = { .get = bk_get, .put = bk_put,
				     .node_cap = 4 };
	struct iova_tree_stats st;
	struct iova_tree *t = NULL;
	struct bk b = { 0 };
	uint64_t n = 0, mapped, rm;
	int refs;

	cr_assert_eq(iova_tree_new(&ops, &t), 0);
	cr_assert_eq(fill_until_error(t, &b, &n, 1000), 0);
	iova_tree_stats(t, &st);
	cr_assert_geq(st.mem_bytes, 2ULL << 20, "no chunk after %" PRIu64
		      " nodes", st.nr_leaves + st.nr_inner);
	/* a chunk holds ~500 nodes: this many 4-entry nodes need another */
	fail_mmap = fail_malloc = true;
	mapped = n;
	refs = b.refs;
	cr_assert_eq(fill_until_error(t, &b, &n, 100000), -ENOMEM);
	fail_mmap = fail_malloc = false;
	cr_assert_gt(n, mapped, "the chunk had no free node left");
	cr_assert_eq(b.refs, refs + (int)(n - mapped));
	expect_filled(t, n);
	cr_assert_eq(fill_until_error(t, &b, &n, n + 2000), 0);
	expect_filled(t, n);
	cr_assert_eq(iova_tree_remove_all(t, IOVA_TREE_ALL, NULL, NULL, &rm),
		     0);
	cr_assert_eq(rm, n * PG);
	cr_assert_eq(b.refs, 0);
	iova_tree_free(t);
}

Test(iova_tree, memory_per_area_random_sequential_descending)
{
	uint64_t n = 200000, i, rm;
	uint64_t *v = malloc(n * sizeof(*v));
	struct iova_tree *t;
	struct bk b = { 0 };
	double bpa;

	rng_state = 1;
	for (i = 0; i < n; i++)
		v[i] = i;
	shuffle(v, n);
	t = new_tree();
	for (i = 0; i < n; i++)
		cr_assert_eq(map(t, (v[i] * 2 + 1) * PG, PG, &b, 0), 0);
	bpa = bytes_per_area(t);
	cr_log_info("random: %.1f bytes/area", bpa);
	cr_assert_leq(bpa, 64.0, "random fill: %.1f bytes/area", bpa);
	cr_assert_eq(iova_tree_validate(t), 0);
	/* delete 90% in random order: merging keeps it bounded */
	for (i = 0; i < n * 9 / 10; i++)
		cr_assert_eq(iova_tree_remove(t, (v[i] * 2 + 1) * PG, PG,
					      IOVA_TREE_ALL, NULL, NULL, &rm),
			     0);
	bpa = bytes_per_area(t);
	cr_log_info("after 90%% random deletes: %.1f bytes/area", bpa);
	cr_assert_leq(bpa, 80.0, "after deletes: %.1f bytes/area", bpa);
	cr_assert_eq(iova_tree_validate(t), 0);
	free_tree(t);

	t = new_tree();
	for (i = 0; i < n; i++)
		cr_assert_eq(map(t, (i * 2 + 1) * PG, PG, &b, 0), 0);
	bpa = bytes_per_area(t);
	cr_log_info("ascending: %.1f bytes/area", bpa);
	cr_assert_leq(bpa, 34.0, "ascending fill: %.1f bytes/area", bpa);
	free_tree(t);

	t = new_tree();
	for (i = n; i > 0; i--)
		cr_assert_eq(map(t, (i * 2 + 1) * PG, PG, &b, 0), 0);
	bpa = bytes_per_area(t);
	cr_log_info("descending: %.1f bytes/area", bpa);
	cr_assert_leq(bpa, 34.0, "descending fill: %.1f bytes/area", bpa);
	free_tree(t);

	/* allocator fill (ascending by construction) */
	t = new_tree();
	for (i = 0; i < n; i++) {
		struct iova_area a = A(PG, &b);
		uint64_t x;

		b.refs++;
		cr_assert_eq(iova_tree_alloc(t, 0, UINT64_MAX, PG, &a, &x), 0);
	}
	bpa = bytes_per_area(t);
	cr_assert_leq(bpa, 34.0, "alloc fill: %.1f bytes/area", bpa);
	free_tree(t);
	free(v);
}

Test(iova_tree, split_storm)
{
	struct iova_tree *t = new_tree();
	uint64_t i, rm, total = 0, pages = (64 * GiB) / PG;
	struct bk b = { 0 };

	rng_state = 7;
	cr_assert_eq(map(t, GiB, 64 * GiB, &b, 0), 0);
	for (i = 0; i < 20000; i++) {
		uint64_t p = rnd() % pages;

		cr_assert_eq(iova_tree_remove(t, GiB + p * PG, PG,
					      IOVA_TREE_MAPPINGS, NULL, NULL,
					      &rm), 0);
		total += rm;
	}
	cr_assert_eq(iova_tree_bytes_mapped(t), 64 * GiB - total);
	cr_assert_eq((uint64_t)b.refs, iova_tree_count(t));
	cr_assert_leq(bytes_per_area(t), 64.0);
	cr_assert_eq(iova_tree_validate(t), 0);
	/* every remaining piece has offset == iova - GiB */
	{
		struct iova_tree_iter it;
		struct iova_area a;

		iova_tree_iter_start(&it, t, 0);
		while (iova_tree_iter_next(&it, &a) == 0)
			cr_assert_eq(a.offset, a.iova - GiB);
	}
	free_tree(t);
}

/* ------------------------------------------------------------------ */
/* randomized model-based test */

#define MW	4096		/* pages in the model window */

struct model {
	uint64_t base;		/* IOVA of page 0 */
	uint8_t kind[MW];	/* 0 free, else enum iova_area_kind */
	uint32_t id[MW];	/* area identity: tells areas apart */
	uint32_t val[MW];	/* backing index or blocked reason */
	uint64_t off[MW];	/* file offset of this page */
	uint16_t prot[MW];
	uint32_t next_id;
};

#define NR_BK 8
static struct bk pool[NR_BK];
static struct model *md;
static unsigned long long g_seed;
static int g_step;

/* what a run exercised, logged at the end */
static struct {
	long ins_ok, ins_err, alloc_ok, alloc_nospc, rm_pieces, punches;
	long enomem;
	uint32_t max_height;
	uint64_t max_areas;
} ms;

#define CHK(cond)							\
	cr_assert(cond, "seed=%llu step=%d: %s", g_seed, g_step,	\
		  #cond)
#define CHKEQ(a, b)							\
	cr_assert((a) == (b), "seed=%llu step=%d: %s (%lld) != %s (%lld)", \
		  g_seed, g_step, #a, (long long)(a), #b, (long long)(b))

static inline uint64_t pg_iova(uint64_t p)
{
	return md->base + p * PG;
}

static uint64_t rnd_len(void)
{
	uint64_t r = rnd() % 100;

	if (r < 60)
		return 1 + rnd() % 4;
	if (r < 95)
		return 1 + rnd() % 64;
	return 1 + rnd() % 600;
}

/* Area (by id) around page p: [*s, *e] pages */
static void m_area(uint64_t p, uint64_t *s, uint64_t *e)
{
	uint32_t id = md->id[p];

	*s = p;
	*e = p;
	while (*s > 0 && md->kind[*s - 1] && md->id[*s - 1] == id)
		(*s)--;
	while (*e + 1 < MW && md->kind[*e + 1] && md->id[*e + 1] == id)
		(*e)++;
}

static void m_to_area(uint64_t s, uint64_t e, struct iova_area *a)
{
	memset(a, 0, sizeof(*a));
	a->iova = pg_iova(s);
	a->length = (e - s + 1) * PG;
	a->kind = md->kind[s];
	if (a->kind == IOVA_AREA_MAPPING) {
		a->backing = &pool[md->val[s]];
		a->offset = md->off[s];
		a->prot = md->prot[s];
	} else {
		a->reason = md->val[s];
	}
}

static void same_area(const struct iova_area *x, const struct iova_area *y)
{
	CHKEQ(x->iova, y->iova);
	CHKEQ(x->length, y->length);
	CHKEQ(x->kind, y->kind);
	CHKEQ(x->backing == y->backing, 1);
	CHKEQ(x->offset, y->offset);
	CHKEQ(x->prot, y->prot);
	CHKEQ(x->reason, y->reason);
}

/* Full comparison of the tree against the model */
static void m_compare(struct iova_tree *t)
{
	static uint32_t seg[MW];
	struct iova_tree_iter it;
	struct iova_area a;
	uint64_t nareas = 0, mpages = 0, p, s, ord = 0, m_areas = 0;
	int refs[NR_BK] = { 0 };
	static uint8_t seen[MW];
	int i;

	CHKEQ(iova_tree_validate(t), 0);
	memset(seen, 0, sizeof(seen));
	iova_tree_iter_start(&it, t, 0);
	while (iova_tree_iter_next(&it, &a) == 0) {
		CHK(a.iova >= md->base);
		s = (a.iova - md->base) / PG;
		CHK(s + a.length / PG <= MW);
		ord++;
		for (p = s; p < s + a.length / PG; p++) {
			CHKEQ(a.kind, md->kind[p]);
			if (a.kind == IOVA_AREA_MAPPING) {
				CHKEQ(a.backing == &pool[md->val[p]], 1);
				CHKEQ(a.offset + (p - s) * PG, md->off[p]);
				CHKEQ(a.prot, md->prot[p]);
				mpages++;
			} else {
				CHKEQ(a.reason, md->val[p]);
			}
			seg[p] = (uint32_t)ord;
			seen[p] = 1;
		}
		if (a.kind == IOVA_AREA_MAPPING)
			refs[(struct bk *)a.backing - pool]++;
		nareas++;
	}
	for (p = 0; p < MW; p++) {
		CHKEQ(seen[p], md->kind[p] != 0);
		if (!md->kind[p])
			continue;
		if (p == 0 || !md->kind[p - 1] || md->id[p - 1] != md->id[p])
			m_areas++;
		else
			CHKEQ(seg[p], seg[p - 1]);
	}
	CHKEQ(nareas, m_areas);
	CHKEQ(iova_tree_count(t), nareas);
	CHKEQ(iova_tree_bytes_mapped(t), mpages * PG);
	for (i = 0; i < NR_BK; i++) {
		CHKEQ(pool[i].refs, refs[i]);
		CHK(!(pool[i].zero_seen && pool[i].refs));
		pool[i].zero_seen = false;
	}
}

/* expected insert result: range [s, s + n) in pages, may exceed window */
static int m_insert_check(uint64_t s, uint64_t n)
{
	uint64_t p;
	int ret = 0;

	for (p = s; p < s + n && p < MW; p++) {
		if (md->kind[p] == IOVA_AREA_BLOCKED)
			return -EADDRINUSE;
		if (md->kind[p])
			ret = -EEXIST;
	}
	return ret;
}

static void m_fill(uint64_t s, uint64_t n, const struct iova_area *a)
{
	uint64_t p;
	uint32_t id = md->next_id++;

	for (p = s; p < s + n; p++) {
		md->kind[p] = a->kind;
		md->id[p] = id;
		if (a->kind == IOVA_AREA_MAPPING) {
			md->val[p] = (uint32_t)((struct bk *)a->backing - pool);
			md->off[p] = a->offset + (p - s) * PG;
			md->prot[p] = (uint16_t)a->prot;
		} else {
			md->val[p] = a->reason;
			md->off[p] = 0;
			md->prot[p] = 0;
		}
	}
}

static void random_mapping(struct iova_area *a, uint64_t s, uint64_t n)
{
	uint64_t r = rnd() % 100;

	*a = M(pg_iova(s), n * PG, &pool[rnd() % NR_BK], 0,
	       (uint32_t)(rnd() % (IOVA_PROT_MASK + 1)));
	if (r < 70)
		a->offset = (rnd() % (1ULL << 28)) * PG;
	else if (r < 99)
		a->offset = (rnd() & ~(PG - 1));
	else
		a->offset = UINT64_MAX - PG + 1 - (rnd() % 4) * PG;
}

static void op_insert(struct iova_tree *t, bool blocked)
{
	uint64_t n = rnd_len(), s = rnd() % MW, end;
	struct iova_area a;
	int exp, ret;
	struct bk *k = NULL;

	if (s + n > MW)
		s = MW - n;
	if (blocked) {
		a = B(pg_iova(s), n * PG, (uint32_t)rnd());
	} else {
		random_mapping(&a, s, n);
		k = a.backing;
	}
	/* near the top of the space sometimes ask for a wrapping range */
	if (md->base + (uint64_t)MW * PG == 0 && rnd() % 50 == 0) {
		s = MW - 1 - rnd() % 4;
		a.iova = pg_iova(s);
	}
	exp = 0;
	if (__builtin_add_overflow(a.iova, a.length - 1, &end) ||
	    (!blocked && __builtin_add_overflow(a.offset, a.length - 1, &end)))
		exp = -EOVERFLOW;
	else if (s + n > MW)
		exp = -EINVAL;	/* cannot happen: would be EOVERFLOW */
	if (!exp)
		exp = m_insert_check(s, n);
	if (k)
		k->refs++;
	nr_events = 0;
	ret = iova_tree_insert(t, &a);
	if (ret == -ENOMEM && !exp && fa.fail_after == 0) {
		CHKEQ(nr_events, 0);
		if (k)
			k->refs--;
		ms.enomem++;
		return;
	}
	CHKEQ(ret, exp);
	CHKEQ(nr_events, 0);
	if (ret) {
		if (k)
			k->refs--;
		ms.ins_err++;
		return;
	}
	ms.ins_ok++;
	m_fill(s, n, &a);
}

static int64_t m_lowest_fit(uint64_t min, uint64_t max, uint64_t len,
			    uint64_t align)
{
	uint64_t lo = min < PG ? PG : min, x, p, q;

	if (align < PG)
		align = PG;
	for (x = (lo + align - 1) & ~(align - 1); x >= lo && x <= max &&
	     max - x >= len - 1; x += align) {
		if (x < md->base)
			continue;
		p = (x - md->base) / PG;
		for (q = p; q < p + len / PG; q++) {
			if (q >= MW || md->kind[q])
				break;
		}
		if (q == p + len / PG)
			return (int64_t)(x - md->base);
		if (x + align < x)
			break;
	}
	return -1;
}

static void op_alloc(struct iova_tree *t, bool modify)
{
	uint64_t n = rnd_len(), align = PG << (rnd() % 6), min, max, x = 0;
	uint64_t pmin = rnd() % MW, pmax = pmin + rnd() % (MW - pmin);
	struct iova_area a;
	struct bk *k;
	int64_t exp;
	int ret;

	if (rnd() % 4 == 0)
		pmin = 0;
	if (rnd() % 4 == 0)
		pmax = MW - 1;
	min = pg_iova(pmin) + (rnd() % 3 == 0 ? rnd() % PG : 0);
	max = pg_iova(pmax) + PG - 1 - (rnd() % 3 == 0 ? rnd() % PG : 0);
	if (rnd() % 8 == 0)
		align = 1 + rnd() % PG;	/* sub-page: treated as PG */
	if (align & (align - 1))
		align = 1;
	exp = m_lowest_fit(min, max, n * PG, align);
	if (min > max) {
		CHKEQ(iova_tree_find_free(t, min, max, n * PG, align, &x),
		      -EINVAL);
		return;
	}
	if (!modify) {
		ret = iova_tree_find_free(t, min, max, n * PG, align, &x);
		if (exp < 0) {
			CHKEQ(ret, -ENOSPC);
		} else {
			CHKEQ(ret, 0);
			CHKEQ(x, md->base + (uint64_t)exp);
		}
		return;
	}
	random_mapping(&a, 0, n);
	a.offset &= (1ULL << 40) - 1;
	k = a.backing;
	k->refs++;
	ret = iova_tree_alloc(t, min, max, align, &a, &x);
	if (ret == -ENOMEM && exp >= 0 && fa.fail_after == 0) {
		k->refs--;
		ms.enomem++;
		return;
	}
	if (exp < 0) {
		CHKEQ(ret, -ENOSPC);
		k->refs--;
		ms.alloc_nospc++;
		return;
	}
	ms.alloc_ok++;
	CHKEQ(ret, 0);
	CHKEQ(x, md->base + (uint64_t)exp);
	a.iova = x;
	m_fill((uint64_t)exp / PG, n, &a);
}

/* remove [s, s + n) pages of @kinds, checking pieces and callbacks */
static void do_remove(struct iova_tree *t, uint64_t s, uint64_t n,
		      unsigned int kinds)
{
	static struct iova_area exp[MW];
	int nexp = 0, i, k, gets = 0, exp_gets = 0, ret;
	uint64_t p, e = s + n - 1, ps, pe, as, ae, rm = 0, exp_rm = 0;
	bool punch = false;

	for (p = s; p <= e; p++) {
		if (!md->kind[p] || !(md->kind[p] & kinds))
			continue;
		m_area(p, &as, &ae);
		ps = p;
		pe = ae < e ? ae : e;
		m_to_area(as, ae, &exp[nexp]);
		exp[nexp].iova = pg_iova(ps);
		exp[nexp].length = (pe - ps + 1) * PG;
		if (exp[nexp].kind == IOVA_AREA_MAPPING) {
			exp[nexp].offset = md->off[ps];
			exp_gets += (as < ps) + (ae > pe);
		}
		punch = as < ps && ae > pe;
		exp_rm += pe - ps + 1;
		nexp++;
		p = pe;
	}
	nr_events = 0;
	ret = iova_tree_remove(t, pg_iova(s), n * PG, kinds, on_unmapped, NULL,
			       &rm);
	if (ret == -ENOMEM) {
		CHK(punch && fa.fail_after == 0);
		CHKEQ(nr_events, 0);
		ms.enomem++;
		return;
	}
	ms.rm_pieces += nexp;
	ms.punches += punch;
	CHKEQ(ret, 0);
	CHKEQ(rm, exp_rm * PG);
	/* events: unmapped pieces in order, each followed by its put */
	for (i = 0, k = 0; i < nr_events; i++) {
		if (events[i].type == EV_GET) {
			gets++;
			continue;
		}
		if (events[i].type != EV_UNMAPPED)
			continue;
		CHK(k < nexp);
		same_area(&events[i].piece, &exp[k]);
		if (exp[k].kind == IOVA_AREA_MAPPING) {
			CHK(i + 1 < nr_events);
			CHKEQ(events[i + 1].type, EV_PUT);
			CHKEQ(events[i + 1].backing == exp[k].backing, 1);
		}
		k++;
	}
	CHKEQ(k, nexp);
	CHKEQ(gets, exp_gets);
	/* apply to the model; a punched area's tail becomes a new area */
	if (punch) {
		uint32_t id = md->id[e + 1], nid = md->next_id++;

		for (p = e + 1; p < MW && md->kind[p] && md->id[p] == id; p++)
			md->id[p] = nid;
	}
	for (p = s; p <= e; p++) {
		if (md->kind[p] & kinds)
			md->kind[p] = 0;
	}
}

static void op_remove(struct iova_tree *t, unsigned int kinds, bool punch)
{
	uint64_t s = rnd() % MW, n = rnd_len(), as, ae;

	if (punch) {
		/* a small range inside (or at an edge of) an occupied area */
		if (!md->kind[s])
			return;
		m_area(s, &as, &ae);
		if (ae > as + 1)
			s = as + 1 + rnd() % (ae - as - 1);
		n = 1 + rnd() % 3;
	}
	if (s + n > MW)
		n = MW - s;
	do_remove(t, s, n, kinds);
}

static void op_queries(struct iova_tree *t)
{
	uint64_t p = rnd() % MW, s, e, n, q;
	unsigned int kinds = 1 + (unsigned int)(rnd() % 3);
	struct iova_tree_iter it;
	struct iova_area a, x;
	int ret, i;

	/* lookup */
	ret = iova_tree_lookup(t, pg_iova(p) + rnd() % PG, &a);
	if (!md->kind[p]) {
		CHKEQ(ret, -ENOENT);
	} else {
		CHKEQ(ret, 0);
		m_area(p, &s, &e);
		m_to_area(s, e, &x);
		same_area(&a, &x);
	}
	/* first overlap */
	n = rnd_len();
	if (p + n > MW)
		n = MW - p;
	ret = iova_tree_first_overlap(t, pg_iova(p), n * PG, kinds, &a);
	for (q = p; q < p + n; q++) {
		if (md->kind[q] & kinds)
			break;
	}
	if (q == p + n) {
		CHKEQ(ret, -ENOENT);
	} else {
		CHKEQ(ret, 0);
		m_area(q, &s, &e);
		m_to_area(s, e, &x);
		same_area(&a, &x);
	}
	/* iterator from a random IOVA: next few areas */
	iova_tree_iter_start(&it, t, pg_iova(p) + rnd() % PG);
	q = p;
	if (md->kind[q]) {
		m_area(q, &s, &e);
		q = s;
	}
	for (i = 0; i < 4; i++) {
		while (q < MW && !md->kind[q])
			q++;
		ret = iova_tree_iter_next(&it, &a);
		if (q == MW) {
			CHKEQ(ret, -ENOENT);
			break;
		}
		CHKEQ(ret, 0);
		m_area(q, &s, &e);
		m_to_area(s, e, &x);
		same_area(&a, &x);
		q = e + 1;
	}
}

static void model_run(unsigned long long seed, int steps, uint64_t base,
		      unsigned int cap)
{
	struct iova_tree *t;
	int i;
	uint64_t r, rm;

	g_seed = seed;
	rng_state = seed;
	cr_log_info("model: seed %llu base %#" PRIx64 " steps %d cap %u "
		    "(rerun: model_run(%lluULL, %d, %#" PRIx64 ", %u))",
		    seed, base, steps, cap, seed, steps, base, cap);
	md = calloc(1, sizeof(*md));
	cr_assert_not_null(md);
	md->base = base;
	md->next_id = 1;
	memset(&ms, 0, sizeof(ms));
	memset(pool, 0, sizeof(pool));
	t = new_tree_cap(cap);
	for (g_step = 0; g_step < steps; g_step++) {
		r = rnd() % 1000;
		/* ~15% of the steps run with every allocation failing */
		fa.fail_after = rnd() % 7 == 0 ? 0 : -1;
		if (r < 250)
			op_insert(t, false);
		else if (r < 400)
			op_alloc(t, true);
		else if (r < 470)
			op_alloc(t, false);
		else if (r < 600)
			op_remove(t, IOVA_TREE_MAPPINGS, false);
		else if (r < 780)
			op_remove(t, IOVA_TREE_MAPPINGS, true);
		else if (r < 820)
			op_insert(t, true);
		else if (r < 840)
			op_remove(t, IOVA_TREE_BLOCKED, rnd() % 2);
		else if (r < 860)
			op_remove(t, IOVA_TREE_ALL, rnd() % 2);
		else if (r < 999)
			op_queries(t);
		else {
			fa.fail_after = -1;
			CHKEQ(iova_tree_remove_all(t, IOVA_TREE_ALL, NULL, NULL,
						   &rm), 0);
			memset(md->kind, 0, sizeof(md->kind));
		}
		fa.fail_after = -1;
		m_compare(t);
		{
			struct iova_tree_stats st;

			iova_tree_stats(t, &st);
			if (st.height > ms.max_height)
				ms.max_height = st.height;
			if (iova_tree_count(t) > ms.max_areas)
				ms.max_areas = iova_tree_count(t);
		}
	}
	cr_log_info("seed %llu: inserts ok %ld err %ld, allocs ok %ld nospc %ld, "
		    "removed pieces %ld, punches %ld, enomem %ld, max height %u, "
		    "max areas %" PRIu64, seed, ms.ins_ok, ms.ins_err,
		    ms.alloc_ok, ms.alloc_nospc, ms.rm_pieces, ms.punches,
		    ms.enomem, ms.max_height, ms.max_areas);
	free_tree(t);
	for (i = 0; i < NR_BK; i++)
		CHKEQ(pool[i].refs, 0);
	free(md);
}

#define TOP_BASE (UINT64_MAX - MW * PG + 1)

/* node_cap 4 gives trees 4-5 levels deep from a few hundred areas */
Test(iova_tree_model, seed_1_cap4) { model_run(1, 12000, 0, 4); }
Test(iova_tree_model, seed_2) { model_run(2, 12000, 0, 0); }
Test(iova_tree_model, seed_3_top_cap4) { model_run(3, 12000, TOP_BASE, 4); }
Test(iova_tree_model, seed_4_cap5) { model_run(20240601, 12000, 64 * MiB, 5); }
Test(iova_tree_model, seed_5_top_cap8) { model_run(5, 12000, TOP_BASE, 8); }
Test(iova_tree_model, seed_6_cap4) { model_run(6, 12000, 0, 4); }
