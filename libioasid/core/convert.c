/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared/private conversion of a restricted IOAS (confidential guests).
 *
 * Mappings stay in the tree whatever the pages' state; only what the
 * hardware sees changes.  To private: the pages leave every domain and
 * IOTLB before the call returns.  To shared: they are mapped again from the
 * mapping that covers them.  Pages whose state does not change are never
 * touched, so DMA to them never sees a window (the page tables split large
 * leaves in place).  A batch is all or nothing.
 */
#include <errno.h>
#include <stdlib.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/ioas.h"
#include "core/iova_tree.h"
#include "core/sharedmap.h"
#include "util/hash.h"
#include "util/macros.h"

#define KNOWN_FLAGS (IOASID_CONVERT_PRIVATE | IOASID_CONVERT_SHARED)

struct convert {
	struct ioas *ioas;
	bool to_shared;
	struct core_ranges done;	/* runs whose state changed */
};

static int remember(struct core_ranges *f, uint64_t iova, uint64_t length)
{
	return core_ranges_push(f, iova, iova + length - 1);
}

static int map_piece(void *arg, const struct iova_area *piece)
{
	struct convert *c = arg;
	struct be_backing b;

	ioas_area_backing(piece, &b);
	return core_ops(c->ioas->core)->map(c->ioas->be, piece->iova,
					    piece->length, &b, piece->prot);
}

static int unmap_piece(void *arg, const struct iova_area *piece)
{
	struct convert *c = arg;

	return core_ops(c->ioas->core)->unmap(c->ioas->be, piece->iova,
					      piece->length, NULL, 0);
}

/* Make one run of pages visible or invisible to the hardware. */
static int apply_run(struct convert *c, uint64_t iova, uint64_t length,
		     bool shared)
{
	return iova_tree_for_each_piece(c->ioas->tree, iova, length,
					IOVA_TREE_MAPPINGS,
					shared ? map_piece : unmap_piece, c);
}

/* Put a run back the way it was (shared: visible, else invisible). */
static void restore_run(struct convert *c, uint64_t iova, uint64_t length,
			bool shared)
{
	apply_run(c, iova, length, false);	/* holes are harmless */
	if (shared)
		apply_run(c, iova, length, true);
}

static int flip_run(void *arg, uint64_t iova, uint64_t length)
{
	struct convert *c = arg;
	int r;

	r = apply_run(c, iova, length, c->to_shared);
	if (r == 0)
		r = remember(&c->done, iova, length);
	if (r < 0) {
		/* this run may be half applied */
		restore_run(c, iova, length, !c->to_shared);
		return r;
	}
	pthread_rwlock_wrlock(&c->ioas->lock);
	sharedmap_set(c->ioas->shared, iova, length, c->to_shared);
	pthread_rwlock_unlock(&c->ioas->lock);
	return 0;
}

static void undo(struct convert *c)
{
	for (uint32_t i = c->done.nr; i-- > 0;) {
		uint64_t iova = c->done.v[i].start;
		uint64_t len = c->done.v[i].last - iova + 1;

		restore_run(c, iova, len, !c->to_shared);
		pthread_rwlock_wrlock(&c->ioas->lock);
		sharedmap_set(c->ioas->shared, iova, len, !c->to_shared);
		pthread_rwlock_unlock(&c->ioas->lock);
	}
}

/* ---- to private in one batch: one invalidation for everything --------- */

struct hide {
	struct convert *c;
	struct core_ranges pieces;		/* mapped parts of the runs */
};

static int hide_piece(void *arg, const struct iova_area *piece)
{
	struct hide *h = arg;

	return remember(&h->pieces, piece->iova, piece->length);
}

static int hide_run(void *arg, uint64_t iova, uint64_t length)
{
	struct hide *h = arg;
	int r = remember(&h->c->done, iova, length);

	if (r == 0)
		r = iova_tree_for_each_piece(h->c->ioas->tree, iova, length,
					     IOVA_TREE_MAPPINGS, hide_piece, h);
	return r;
}

static int to_private_batched(struct convert *c,
			      const struct ioasid_iova_range *v, uint32_t nr)
{
	struct hide h = { .c = c };
	int r = 0;

	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = sharedmap_for_each_run(c->ioas->shared, v[i].start,
					   v[i].last - v[i].start + 1, true,
					   hide_run, &h);
	if (r == 0 && h.pieces.nr)
		r = core_ops(c->ioas->core)->hide_batch(c->ioas->be,
							h.pieces.v,
							h.pieces.nr);
	free(h.pieces.v);
	if (r < 0) {
		/*
		 * Only -ENOMEM splitting a large page gets here, with some
		 * pieces hidden: show every run again (unmap + map, so pages
		 * of these runs see a short window on this error path only).
		 */
		for (uint32_t i = 0; i < c->done.nr; i++)
			restore_run(c, c->done.v[i].start,
				    c->done.v[i].last - c->done.v[i].start + 1,
				    true);
		c->done.nr = 0;
		return r;
	}
	pthread_rwlock_wrlock(&c->ioas->lock);
	for (uint32_t i = 0; i < c->done.nr; i++)
		sharedmap_set(c->ioas->shared, c->done.v[i].start,
			      c->done.v[i].last - c->done.v[i].start + 1,
			      false);
	pthread_rwlock_unlock(&c->ioas->lock);
	return 0;
}

/* Mappings must cover a range without holes (state follows what is mapped). */
struct coverage {
	uint64_t next;
};

static int cover_piece(void *arg, const struct iova_area *piece)
{
	struct coverage *c = arg;

	if (piece->iova != c->next)
		return -ENOENT;
	c->next = piece->iova + piece->length;
	return 0;
}

static bool range_mapped(struct ioas *ioas, uint64_t start, uint64_t last)
{
	struct coverage c = { start };
	int r;

	r = iova_tree_for_each_piece(ioas->tree, start, last - start + 1,
				     IOVA_TREE_MAPPINGS, cover_piece, &c);
	return r == 0 && c.next - 1 == last;
}

/* Conversion state of every restricted IOAS of the session, in bytes. */
uint64_t ioas_session_state_bytes(struct session *s)
{
	struct ioas *x, *tmp;
	uint64_t bytes = 0;

	HASH_ITER(hh, s->core->ioas_table, x, tmp)
		if (x->owner == s && x->shared)
			bytes += sharedmap_mem_bytes(x->shared);
	return bytes;
}

/* Would making these ranges shared take more state than the quota? */
static int check_state_quota(struct ioas *ioas,
			     const struct ioasid_iova_range *v, uint32_t nr,
			     struct ioasid_op *op)
{
	struct session *s = ioas->owner;
	uint64_t limit = s->limits.max_conversion_state, used, budget;

	if (limit == UINT64_MAX)
		return 0;
	used = ioas_session_state_bytes(s);
	budget = used < limit ? limit - used : 0;
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t cost = sharedmap_reserve_cost(ioas->shared,
				v[i].start, v[i].last - v[i].start + 1, budget);

		if (cost > budget)
			return op_fail(op, ENOSPC, "quota of %llu bytes of "
				       "conversion state reached (%llu in "
				       "use); nothing changed",
				       (unsigned long long)limit,
				       (unsigned long long)used);
		budget -= cost;
	}
	return 0;
}

/*
 * A state image replays shared pages that lost their mapping, which no
 * mapping vouches for: bound the session's conversion state while such a
 * page is restored (the default max-conversion-state of ioasidd.conf), or
 * a crafted image could make the importer allocate without limit.
 */
#define REPLAY_UNMAPPED_STATE	(64ULL << 20)

static bool replay_unmapped_too_costly(struct ioas *ioas,
				       const struct ioasid_iova_range *v)
{
	uint64_t used = ioas_session_state_bytes(ioas->owner);
	uint64_t budget = used < REPLAY_UNMAPPED_STATE ?
			  REPLAY_UNMAPPED_STATE - used : 0;

	return sharedmap_reserve_cost(ioas->shared, v->start,
				      v->last - v->start + 1, budget) > budget;
}

static int check_batch(struct ioas *ioas, const struct ioasid_iova_range *v,
		       uint32_t nr, struct ioasid_op *op)
{
	for (uint32_t i = 0; i < nr; i++) {
		if (v[i].start > v[i].last)
			return op_fail(op, EINVAL, "range %u starts after it "
				       "ends", i);
		if (!IS_ALIGNED(v[i].start, SZ_4K) ||
		    !IS_ALIGNED(v[i].last + 1, SZ_4K))
			return op_fail(op, EINVAL, "range %u is not made of "
				       "whole 4 KiB pages", i);
		if (range_mapped(ioas, v[i].start, v[i].last))
			continue;
		if (!ioas->core->replaying)
			return op_fail(op, ENOENT, "range %u (IOVA 0x%llx-"
				       "0x%llx) is not all mapped in IOAS %u: "
				       "only mapped pages can be converted",
				       i, (unsigned long long)v[i].start,
				       (unsigned long long)v[i].last, ioas->id);
		if (replay_unmapped_too_costly(ioas, &v[i]))
			return op_fail(op, ENOSPC, "range %u (IOVA 0x%llx-"
				       "0x%llx) has no mapping and would take "
				       "the session past %llu bytes of "
				       "conversion state; a state image may "
				       "restore no more than that for pages "
				       "without a mapping", i,
				       (unsigned long long)v[i].start,
				       (unsigned long long)v[i].last,
				       (unsigned long long)REPLAY_UNMAPPED_STATE);
	}
	return 0;
}

static int check_convert(struct ioas *ioas,
			 const struct ioasid_iova_range *v, uint32_t nr,
			 struct ioasid_op *op)
{
	int r;

	if (op->flags & ~(uint32_t)KNOWN_FLAGS)
		return op_fail(op, EOPNOTSUPP, "unknown convert flags 0x%x",
			       op->flags);
	if (op->flags != IOASID_CONVERT_PRIVATE &&
	    op->flags != IOASID_CONVERT_SHARED)
		return op_fail(op, EINVAL, "convert to private or to shared, "
			       "not both or neither");
	if (!ioas->shared)
		return op_fail(op, EINVAL, "IOAS %u is not restricted: all its "
			       "pages are shared", ioas->id);
	if (op->in_len % sizeof(*v) || !nr)
		return op_fail(op, EINVAL, "no ranges to convert");
	r = check_batch(ioas, v, nr, op);
	if (r == 0 && op->flags == IOASID_CONVERT_SHARED)
		r = check_state_quota(ioas, v, nr, op);
	return r;
}

/* Flip every page of the batch; c->done remembers what was flipped. */
static int flip_batch(struct convert *c, const struct ioasid_iova_range *v,
		      uint32_t nr)
{
	struct ioas *ioas = c->ioas;
	int r = 0;

	for (uint32_t i = 0; c->to_shared && i < nr && r == 0; i++)
		r = sharedmap_reserve(ioas->shared, v[i].start,
				      v[i].last - v[i].start + 1);
	if (r == 0 && !c->to_shared && core_ops(ioas->core)->hide_batch)
		return to_private_batched(c, v, nr);
	for (uint32_t i = 0; i < nr && r == 0; i++)
		r = sharedmap_for_each_run(ioas->shared, v[i].start,
					   v[i].last - v[i].start + 1,
					   !c->to_shared, flip_run, c);
	return r;
}

/* Flip back what @c flipped; the reason for @r. */
static int convert_failed(struct convert *c, int r, struct ioasid_op *op)
{
	undo(c);
	sharedmap_trim(c->ioas->shared);
	free(c->done.v);
	if (r == -EPERM)
		return op_fail(op, EPERM, "the pages are private guest memory "
			       "in their guest_memfd and cannot be shared with "
			       "devices; nothing changed");
	return op_fail(op, -r, "conversion failed and was undone: %s",
		       strerror(-r));
}

int ioas_convert(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	const struct ioasid_iova_range *v = op->in;
	uint32_t nr = op->in_len / sizeof(*v);
	struct convert c = { .ioas = ioas };
	int r;

	r = check_convert(ioas, v, nr, op);
	if (r < 0)
		return r;
	c.to_shared = op->flags == IOASID_CONVERT_SHARED;
	r = flip_batch(&c, v, nr);
	if (r < 0)
		return convert_failed(&c, r, op);
	pthread_rwlock_wrlock(&ioas->lock);
	sharedmap_trim(ioas->shared);
	pthread_rwlock_unlock(&ioas->lock);
	op->out_bytes = 0;
	for (uint32_t i = 0; i < c.done.nr; i++)
		op->out_bytes += c.done.v[i].last - c.done.v[i].start + 1;
	free(c.done.v);
	if (op->out_bytes)
		__atomic_add_fetch(&ioas->nr_conversions, 1, __ATOMIC_RELAXED);
	return 0;
}

bool ioas_is_private(struct ioas *ioas, uint64_t iova)
{
	struct iova_area a;

	return ioas->shared && !sharedmap_test(ioas->shared, iova) &&
	       iova_tree_lookup(ioas->tree, iova, &a) == 0 &&
	       a.kind == IOVA_AREA_MAPPING;
}
