/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmap: the backend's record of the mappings the kernel holds, as a sorted
 * array (binary search, memmove on insert/remove: cheap for the hundreds
 * of mappings a VMM makes; a restricted IOAS adds pages mostly in IOVA
 * order, which appends).  See kcommon.h for why it exists.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/kcommon/kcommon.h"
#include "util/macros.h"

static uint64_t entry_last(const struct kmap_entry *e)
{
	return e->iova + (e->length - 1);
}

/* Index of the first entry that ends at or after @iova. */
static size_t find_first(const struct kmap *m, uint64_t iova)
{
	size_t lo = 0, hi = m->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (entry_last(&m->v[mid]) < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Grow array @v of @nr used entries to room for @more (capacity @cap). */
static int grow(struct kmap_entry **v, size_t nr, size_t *cap, size_t more)
{
	size_t c = *cap ? *cap : 16;
	void *p;

	if (nr + more <= *cap)
		return 0;
	while (c < nr + more)
		c *= 2;
	p = realloc(*v, c * sizeof(**v));
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

/* Make room for @more entries, so that later inserts cannot fail. */
static int reserve(struct kmap *m, size_t more)
{
	return grow(&m->v, m->nr, &m->cap, more);
}

/* Open a gap of @n entries at @at (capacity reserved). */
static void open_gap(struct kmap *m, size_t at, size_t n)
{
	memmove(&m->v[at + n], &m->v[at], (m->nr - at) * sizeof(*m->v));
	m->nr += n;
}

static void remove_entries(struct kmap *m, size_t at, size_t n)
{
	memmove(&m->v[at], &m->v[at + n], (m->nr - at - n) * sizeof(*m->v));
	m->nr -= n;
}

/* Does [iova, last] overlap an entry? */
static bool overlaps(const struct kmap *m, uint64_t iova, uint64_t last)
{
	size_t i = find_first(m, iova);

	return i < m->nr && m->v[i].iova <= last;
}

/* @out: the part [iova, iova+length) of @e (inside it). */
static void piece_of(const struct kmap_entry *e, uint64_t iova,
		     uint64_t length, struct kmap_entry *out)
{
	uint64_t delta = iova - e->iova;

	*out = *e;
	out->iova = iova;
	out->length = length;
	if (e->backing.file)
		out->backing.offset += delta;
	else
		out->backing.hva = (char *)e->backing.hva + delta;
}

/*
 * Unmap entries [i, j) from the kernel: one call for the span they cover
 * (holes between them are fine for both kernels), or one per entry when
 * the span is too long to express as a length.
 */
static int unmap_entries(const struct kmap *m, const struct kmap_ops *ops,
			 void *arg, size_t i, size_t j)
{
	uint64_t lo, hi;
	int r = 0;

	if (i >= j)
		return 0;
	lo = m->v[i].iova;
	hi = entry_last(&m->v[j - 1]);
	if (hi - lo < (1ULL << 62))
		return ops->unmap(arg, lo, hi - lo + 1);
	for (size_t k = i; k < j && r == 0; k++)
		r = ops->unmap(arg, m->v[k].iova, m->v[k].length);
	return r;
}

static int map_whole(struct kmap *m, const struct kmap_ops *ops, void *arg,
		     const struct kmap_entry *e)
{
	size_t at = find_first(m, e->iova);
	int r;

	r = ops->map(arg, e);
	if (r < 0)
		return r;
	open_gap(m, at, 1);
	m->v[at] = *e;
	return 0;
}

static int map_pages(struct kmap *m, const struct kmap_ops *ops, void *arg,
		     const struct kmap_entry *e)
{
	size_t n = e->length / SZ_4K, at = find_first(m, e->iova), done;
	int r = 0;

	open_gap(m, at, n);
	for (done = 0; done < n && r == 0; done++) {
		piece_of(e, e->iova + done * SZ_4K, SZ_4K, &m->v[at + done]);
		r = ops->map(arg, &m->v[at + done]);
	}
	if (r == 0)
		return 0;
	done--;			/* the page that failed is not mapped */
	if (done)
		unmap_entries(m, ops, arg, at, at + done);
	remove_entries(m, at, n);
	return r;
}

int kmap_map(struct kmap *m, const struct kmap_ops *ops, void *arg,
	     uint64_t iova, uint64_t length, const struct be_backing *backing,
	     uint32_t prot)
{
	struct kmap_entry e = {
		.iova = iova, .length = length, .backing = *backing,
		.prot = prot,
	};
	bool pages = m->per_page && length > SZ_4K;
	int r;

	if (!length || iova + (length - 1) < iova)
		return -EINVAL;
	if (overlaps(m, iova, iova + (length - 1)))
		return -EEXIST;
	if (pages && !IS_ALIGNED(iova | length, SZ_4K))
		return -EINVAL;
	r = reserve(m, pages ? length / SZ_4K : 1);
	if (r < 0)
		return r;
	return pages ? map_pages(m, ops, arg, &e) : map_whole(m, ops, arg, &e);
}

/*
 * A remap of kept pieces failed: put entries [i, j) back as they were.
 * Room for j - i lost entries was reserved before the kernel was asked.
 */
static void restore(struct kmap *m, const struct kmap_ops *ops, void *arg,
		    size_t i, size_t j)
{
	size_t k = i;

	while (k < j) {
		if (ops->map(arg, &m->v[k]) == 0) {
			k++;
			continue;
		}
		/* keep the record truthful: the kernel lost this one */
		if (ops->lost)
			ops->lost(arg, &m->v[k]);
		m->lost[m->nr_lost++] = m->v[k];
		remove_entries(m, k, 1);
		j--;
	}
}

static int reserve_lost(struct kmap *m, size_t n)
{
	return grow(&m->lost, m->nr_lost, &m->cap_lost, n);
}

size_t kmap_take_lost(struct kmap *m, struct ioasid_iova_range *out,
		      size_t cap)
{
	size_t n = min_t(size_t, m->nr_lost, cap);

	for (size_t k = 0; k < n; k++)
		out[k] = (struct ioasid_iova_range){
			m->lost[k].iova, entry_last(&m->lost[k]),
		};
	memmove(m->lost, m->lost + n, (m->nr_lost - n) * sizeof(*m->lost));
	m->nr_lost -= n;
	return n;
}

/* The pieces of entries [i, j) that stick out of [iova, last]. */
struct ends {
	struct kmap_entry head, tail;
	bool has_head, has_tail;
};

static void ends_of(const struct kmap *m, size_t i, size_t j, uint64_t iova,
		    uint64_t last, struct ends *x)
{
	uint64_t lo = m->v[i].iova, hi = entry_last(&m->v[j - 1]);

	x->has_head = lo < iova;
	x->has_tail = hi > last;
	if (x->has_head)
		piece_of(&m->v[i], lo, iova - lo, &x->head);
	if (x->has_tail)
		piece_of(&m->v[j - 1], last + 1, hi - last, &x->tail);
}

/* Entries [i, j) are gone from the kernel but for @x: record that. */
static void keep_ends(struct kmap *m, size_t i, size_t j,
		      const struct ends *x)
{
	remove_entries(m, i, j - i);
	if (x->has_head) {
		open_gap(m, i, 1);
		m->v[i++] = x->head;
	}
	if (x->has_tail) {
		open_gap(m, i, 1);
		m->v[i] = x->tail;
	}
}

/*
 * The kernel cuts: one call for exactly the range; then the record keeps
 * the outer pieces of the entries that stuck out, as the kernel does.
 */
static int kernel_cut(struct kmap *m, const struct kmap_ops *ops, void *arg,
		      uint64_t iova, uint64_t length, size_t i, size_t j)
{
	struct ends x;
	int r;

	ends_of(m, i, j, iova, iova + (length - 1), &x);
	r = reserve(m, 2);
	if (r == 0)
		r = ops->cut(arg, iova, length);
	if (r == 0)
		keep_ends(m, i, j, &x);
	return r;
}

int kmap_unmap(struct kmap *m, const struct kmap_ops *ops, void *arg,
	       uint64_t iova, uint64_t length)
{
	uint64_t last = iova + (length - 1);
	struct ends x;
	size_t i, j;
	int r;

	if (!length)
		return 0;
	i = find_first(m, iova);
	for (j = i; j < m->nr && m->v[j].iova <= last; j++)
		;
	if (i == j)
		return 0;
	if (m->kernel_cuts)
		return kernel_cut(m, ops, arg, iova, length, i, j);
	ends_of(m, i, j, iova, last, &x);
	/* the pieces that stay must fit in the record afterwards, and what
	 * a failed restore loses in the list of losses */
	r = reserve(m, 2) ?: reserve_lost(m, j - i);
	if (r == 0)
		r = unmap_entries(m, ops, arg, i, j);
	if (r < 0)
		return r;
	/* -- window: DMA to head/tail faults until they are mapped back -- */
	if (x.has_head)
		r = ops->map(arg, &x.head);
	if (r == 0 && x.has_tail) {
		r = ops->map(arg, &x.tail);
		if (r < 0 && x.has_head)
			ops->unmap(arg, x.head.iova, x.head.length);
	}
	if (r < 0) {
		restore(m, ops, arg, i, j);
		return r;
	}
	keep_ends(m, i, j, &x);
	return 0;
}

/* The backing of @dst_iova from the core's pieces of the copy. */
static bool backing_at(const struct be_piece *pieces, uint32_t nr,
		       uint64_t dst_iova, struct be_backing *out)
{
	for (uint32_t k = 0; k < nr; k++) {
		const struct be_piece *p = &pieces[k];
		uint64_t delta = dst_iova - p->iova;

		if (dst_iova < p->iova || delta >= p->length)
			continue;
		*out = p->backing;
		if (out->file)
			out->offset += delta;
		else
			out->hva = (char *)out->hva + delta;
		return true;
	}
	return false;
}

int kmap_copy(struct kmap *dst, const struct kmap *src, uint64_t dst_iova,
	      uint64_t src_iova, uint64_t length, uint32_t prot,
	      const struct be_piece *pieces, uint32_t nr_pieces,
	      int (*copy)(void *arg), void *arg)
{
	uint64_t src_last = src_iova + (length - 1), cur = src_iova;
	struct kmap_entry *v;
	size_t i, j, n;
	int r;

	if (!length || src_last < src_iova ||
	    dst_iova + (length - 1) < dst_iova)
		return -EINVAL;
	i = find_first(src, src_iova);
	for (j = i; j < src->nr && src->v[j].iova <= src_last; j++) {
		if (src->v[j].iova > cur)
			return -ENOENT;		/* a hole in the source */
		cur = entry_last(&src->v[j]) + 1;
	}
	if (i == j || cur - 1 < src_last)
		return -ENOENT;
	if (overlaps(dst, dst_iova, dst_iova + (length - 1)))
		return -EEXIST;
	n = j - i;
	/* collected first: @dst may be @src */
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		const struct kmap_entry *e = &src->v[i + k];
		uint64_t lo = e->iova > src_iova ? e->iova : src_iova;
		uint64_t hi = entry_last(e) < src_last ? entry_last(e) : src_last;

		piece_of(e, lo, hi - lo + 1, &v[k]);
		v[k].iova = dst_iova + (lo - src_iova);
		v[k].prot = prot;
		if (!backing_at(pieces, nr_pieces, v[k].iova, &v[k].backing)) {
			free(v);
			return -EINVAL;	/* the core's pieces do not cover it */
		}
	}
	r = reserve(dst, n);
	if (r == 0)
		r = copy(arg);
	if (r == 0) {
		size_t at = find_first(dst, dst_iova);

		open_gap(dst, at, n);
		memcpy(&dst->v[at], v, n * sizeof(*v));
	}
	free(v);
	return r;
}

int kmap_replay(const struct kmap *m, const struct kmap_ops *ops, void *arg)
{
	size_t k;
	int r = 0;

	for (k = 0; k < m->nr && r == 0; k++)
		r = ops->map(arg, &m->v[k]);
	if (r < 0 && k > 1)
		unmap_entries(m, ops, arg, 0, k - 1);
	return r;
}

void kmap_release(struct kmap *m)
{
	free(m->v);
	free(m->lost);
	m->v = NULL;
	m->lost = NULL;
	m->nr = m->cap = 0;
	m->nr_lost = m->cap_lost = 0;
}
